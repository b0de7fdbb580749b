#!/usr/bin/env bash
# Builds the `code:python` runtime from source, with package-registry inputs
# only, and checks it against the pinned sha256s:
#
#   sandboxes/runtimes/python/python.wasm          CPython 3.11.2, -O2, WASI
#       reactor exporting envhub_init / envhub_run (envhub_python.c)
#   sandboxes/runtimes/python/lib/python311.zip    its standard library
#       (sources and unchecked-hash .pyc, stored, fixed times)
#
# Inputs: Debian 12's clang/lld/llvm 16, wasi-libc and libclang-rt wasm32
# builtins (installed here with apt when missing, which needs root), and the
# upstream CPython 3.11.2 tarball from Debian's python3.11 source package
# (`apt-get source --download-only`, checked against its sha256 below).
# The build runs in $ENVHUB_FETCH_CACHE/cpython-wasi (default
# ~/.cache/envhub/cpython-wasi) and takes about 5 minutes on 2 cores; once
# both outputs are in place with the pinned hashes nothing is rebuilt.
#
#   scripts/build-python.sh            # build (if needed) and verify
#   ENVHUB_PYTHON_UNPINNED=1 scripts/build-python.sh
#                                      # accept other hashes (a different
#                                      # toolchain); prints them to pin
set -euo pipefail

CPYTHON_VERSION="3.11.2"
CPYTHON_ORIG="python3.11_${CPYTHON_VERSION}.orig.tar.gz"
CPYTHON_ORIG_SHA256="2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
# The outputs, as built by the toolchain below; the sandbox pins the same
# values (sandboxes/src/code.rs).
PYTHON_WASM_SHA256="8f91b1907a724125ec4fb800faebe1dc7ebcd6a73dabe471b4d5fda03f7f478f"
STDLIB_ZIP_SHA256="77cdf6987a5291ef7b315886d30935080ed9bc41321b7945d46f163ec6af8fa3"
TOOLCHAIN_PACKAGES=(clang-16 lld-16 llvm-16 libclang-rt-16-dev-wasm32 wasi-libc)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/sandboxes/runtimes/python"
CACHE="${ENVHUB_FETCH_CACHE:-${HOME}/.cache/envhub}/cpython-wasi"
JOBS="$(nproc 2>/dev/null || echo 2)"

pinned() {
    echo "${PYTHON_WASM_SHA256}  ${OUT}/python.wasm" | sha256sum --check --status 2>/dev/null \
        && echo "${STDLIB_ZIP_SHA256}  ${OUT}/lib/python311.zip" | sha256sum --check --status 2>/dev/null
}
if pinned; then
    exit 0
fi

# --- Toolchain --------------------------------------------------------------
missing=()
for p in "${TOOLCHAIN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "build-python: missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
        exit 1
    fi
    echo "build-python: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Source: the upstream tarball inside Debian's source package -------------
mkdir -p "$CACHE"
if ! echo "${CPYTHON_ORIG_SHA256}  ${CACHE}/${CPYTHON_ORIG}" | sha256sum --check --status 2>/dev/null; then
    if ! apt-get source --print-uris python3.11 >/dev/null 2>&1; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "build-python: apt has no deb-src entries; add them or put ${CPYTHON_ORIG} in ${CACHE}" >&2
            exit 1
        fi
        cat >/etc/apt/sources.list.d/envhub-deb-src.sources <<'EOT'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
        apt-get update -qq
    fi
    (cd "$CACHE" && apt-get source --download-only -qq python3.11 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    echo "${CPYTHON_ORIG_SHA256}  ${CACHE}/${CPYTHON_ORIG}" | sha256sum --check --quiet || {
        echo "build-python: ${CPYTHON_ORIG} does not have the pinned sha256; delete it and retry" >&2
        exit 1
    }
fi

# --- Build ----------------------------------------------------------------
SRC="${CACHE}/Python-${CPYTHON_VERSION}"
BUILD="${CACHE}/build"
SYSROOT="${CACHE}/sysroot"
if [[ ! -f "$SRC/configure" ]]; then
    tar -xzf "${CACHE}/${CPYTHON_ORIG}" -C "$CACHE"
fi
# A sysroot with wasi-libc only, so no native header or library (zlib, uuid,
# ...) from /usr/include or /usr/lib leaks into the build.
mkdir -p "$SYSROOT/include" "$SYSROOT/lib"
ln -sfn /usr/include/wasm32-wasi "$SYSROOT/include/wasm32-wasi"
ln -sfn /usr/lib/wasm32-wasi "$SYSROOT/lib/wasm32-wasi"

CC="clang-16 --target=wasm32-wasi --sysroot=${SYSROOT}"
if [[ ! -f "$BUILD/Makefile" ]]; then
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    # Reproducible bytes from any directory: configure is run by a relative
    # path (so VPATH and __FILE__ are relative), __DATE__/__TIME__ come from
    # SOURCE_DATE_EPOCH, and no debug info is emitted.
    (cd "$BUILD" && SOURCE_DATE_EPOCH=946684800 CONFIG_SITE="$SRC/Tools/wasm/config.site-wasm32-wasi" \
        CC="$CC" CPP="$CC -E" AR=llvm-ar-16 RANLIB=llvm-ranlib-16 \
        OPT="-DNDEBUG -fwrapv -O2 -Wall" CFLAGS="-Wno-int-conversion" \
        PKG_CONFIG_PATH="" PKG_CONFIG_LIBDIR="${SYSROOT}/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="${SYSROOT}" \
        "../Python-${CPYTHON_VERSION}/configure" -C --host=wasm32-unknown-wasi --build="$("$SRC/config.guess")" \
        --with-build-python=/usr/bin/python3.11 --prefix=/usr/local --disable-test-modules --with-pymalloc \
        >configure.log 2>&1) || {
        tail -30 "$BUILD/configure.log" >&2
        echo "build-python: configure failed (log: $BUILD/configure.log)" >&2
        exit 1
    }
fi
cat >"$BUILD/envhub.mk" <<EOT
include Makefile
envhub_python.o: ${OUT}/envhub_python.c
	\$(CC) -c \$(PY_STDMODULE_CFLAGS) -ffile-prefix-map=${OUT}=/envhub -o \$@ \$<
envhub_python.wasm: envhub_python.o \$(LIBRARY_DEPS)
	\$(LINKCC) \$(PY_CORE_LDFLAGS) -mexec-model=reactor -Wl,--strip-all -o \$@ envhub_python.o \$(BLDLIBRARY) \$(LIBS) \$(MODLIBS) \$(SYSLIBS)
EOT
SOURCE_DATE_EPOCH=946684800 make -C "$BUILD" -f envhub.mk -j"$JOBS" envhub_python.wasm pybuilddir.txt >"$BUILD/make.log" 2>&1 || {
    tail -30 "$BUILD/make.log" >&2
    echo "build-python: make failed (log: $BUILD/make.log)" >&2
    exit 1
}

# --- Standard library zip -------------------------------------------------
mkdir -p "$OUT/lib"
/usr/bin/python3.11 - "$SRC/Lib" "$BUILD/$(cat "$BUILD/pybuilddir.txt")" "$OUT/lib/python311.zip.tmp" "$CACHE" <<'PY'
import importlib.util, marshal, os, pprint, sys, zipfile
lib, builddir, out, cache = sys.argv[1:]
skip_dirs = {"test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "venv", "__pycache__",
             "site-packages", "pydoc_data"}
files = []
for d, dirs, names in os.walk(lib):
    dirs[:] = sorted(x for x in dirs if x not in skip_dirs)
    for n in names:
        if n.endswith(".py"):
            full = os.path.join(d, n)
            files.append((os.path.relpath(full, lib), full))
# sysconfig's data for this build
for n in os.listdir(builddir):
    if n.startswith("_sysconfigdata_") and n.endswith(".py"):
        files.append((n, os.path.join(builddir, n)))
files.sort()

def entry(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info

with zipfile.ZipFile(out, "w") as z:
    for rel, full in files:
        with open(full, "rb") as f:
            source = f.read()
        if rel.startswith("_sysconfigdata_"):
            # The build's paths, made the same for every build directory.
            ns = {}
            exec(source, ns)
            values = {k: v.replace(cache, "/cpython-wasi") if isinstance(v, str) else v
                      for k, v in ns["build_time_vars"].items()}
            source = ("# build-time configuration (scripts/build-python.sh; build paths normalised)\n"
                      "build_time_vars = " + pprint.pformat(values) + "\n").encode()
        z.writestr(entry(rel), source)
        try:
            code = compile(source, "/usr/local/lib/python311.zip/" + rel, "exec", dont_inherit=True, optimize=0)
        except SyntaxError:
            continue  # files that are data, not modules (e.g. lib2to3 fixtures)
        flags = 0b01  # hash-based, unchecked: no mtime in the file
        data = bytearray(importlib.util.MAGIC_NUMBER)
        data += flags.to_bytes(4, "little")
        data += importlib.util.source_hash(source)
        data += marshal.dumps(code)
        z.writestr(entry(rel[:-3] + ".pyc"), bytes(data))
print(f"build-python: standard library: {len(files)} modules")
PY
llvm-strip-16 --strip-all -o "$OUT/python.wasm.tmp" "$BUILD/envhub_python.wasm" 2>/dev/null \
    || cp "$BUILD/envhub_python.wasm" "$OUT/python.wasm.tmp"
mv "$OUT/python.wasm.tmp" "$OUT/python.wasm"
mv "$OUT/lib/python311.zip.tmp" "$OUT/lib/python311.zip"

if ! pinned; then
    got_wasm="$(sha256sum "$OUT/python.wasm" | cut -d' ' -f1)"
    got_zip="$(sha256sum "$OUT/lib/python311.zip" | cut -d' ' -f1)"
    echo "build-python: built python.wasm ${got_wasm}, python311.zip ${got_zip}" >&2
    echo "build-python: pinned            ${PYTHON_WASM_SHA256}, ${STDLIB_ZIP_SHA256}" >&2
    dpkg-query -W "${TOOLCHAIN_PACKAGES[@]}" >&2 || true
    if [[ -z "${ENVHUB_PYTHON_UNPINNED:-}" ]]; then
        echo "build-python: the build does not match the pinned hashes (another toolchain?); rewards computed with it would not be reproducible elsewhere. Set ENVHUB_PYTHON_UNPINNED=1 to use it anyway." >&2
        exit 1
    fi
fi
echo "build-python: CPython ${CPYTHON_VERSION} for WASI in ${OUT}"
