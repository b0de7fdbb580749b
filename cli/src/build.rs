//! `envhub build`: compile an environment crate for wasm32-wasip1 and pack it
//! with its manifest, README and data into a deterministic package.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use envhub_sandbox::package::{Manifest, Package, pack};
use serde_json::Value;

/// Arguments of `envhub build`.
#[derive(clap::Args)]
pub struct Args {
    /// The environment crate (a directory with envhub.toml and Cargo.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the package (default: <cargo target dir>/envhub/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the crate's wasm32-wasip1 binary and returns its path. Source paths
/// are remapped so the module's bytes do not depend on where it was built.
/// The same settings are in `scripts/build-guests.sh`; keep them in step.
fn compile(dir: &Path, workspace_root: &Path) -> Result<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let flags = [
        format!("--remap-path-prefix={}=/envhub/src", workspace_root.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    ]
    .join("\u{1f}");
    let manifest_path = dir.join("Cargo.toml").canonicalize().context("finding Cargo.toml")?;
    let mut child = cargo()
        .args(["build", "--release", "--target", "wasm32-wasip1", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest_path)
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        // Guests run many times and are small: whole-program optimisation
        // makes them smaller and faster.
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running `cargo build`")?;
    let stdout = child.stdout.take().context("no cargo stdout")?;
    let mut wasm = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading cargo output")?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        if msg["reason"] == "compiler-artifact"
            && msg["manifest_path"].as_str().map(Path::new) == Some(manifest_path.as_path())
            && msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"))
            && let Some(exe) = msg["executable"].as_str()
        {
            wasm.push(PathBuf::from(exe));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("`cargo build` failed (is the target installed? `rustup target add wasm32-wasip1`)");
    }
    match wasm.len() {
        1 => Ok(wasm.remove(0)),
        0 => bail!("{} has no bin target: an environment is a WASI command (src/main.rs)", manifest_path.display()),
        _ => bail!("{} has several bin targets; an environment crate needs exactly one", manifest_path.display()),
    }
}

/// Runs `envhub build` and returns the package path.
pub fn run(args: Args) -> Result<PathBuf> {
    let dir = envhub_client::resolve::crate_dir(&args.dir)
        .with_context(|| format!("no envhub.toml in {}", args.dir.display()))?;
    if dir != args.dir {
        eprintln!("using the environment in {}", dir.display());
    }
    let manifest_path = dir.join("envhub.toml");
    let manifest_text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = Manifest::parse(&manifest_text).with_context(|| format!("in {}", manifest_path.display()))?;
    if manifest.is_python() {
        return crate::build_python::run(&dir, &manifest, args.out);
    }
    let meta = envhub_client::resolve::cargo_metadata(&dir)?;
    let workspace_root = PathBuf::from(meta["workspace_root"].as_str().unwrap_or("."));
    let target_dir = PathBuf::from(meta["target_directory"].as_str().unwrap_or("target"));

    let wasm_path = compile(&dir, &workspace_root)?;
    let module = std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let readme = read_readme(&dir)?;
    let data_dir = dir.join("data");
    let archive = pack(&manifest_text, &module, readme.as_deref(), data_dir.is_dir().then_some(data_dir.as_path()))?;
    let package = Package::from_bytes(&archive)?;

    let out = match args.out {
        Some(out) if out.is_dir() => out.join(envhub_client::resolve::package_file_name(&manifest)),
        Some(out) => out,
        None => target_dir.join("envhub").join(envhub_client::resolve::package_file_name(&manifest)),
    };
    check_and_write(&manifest, &archive, &package, &out)?;
    Ok(out)
}

/// The README card of the environment in `dir`, if it has one.
pub fn read_readme(dir: &Path) -> Result<Option<String>> {
    let path = dir.join("README.md");
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?))
}

/// Loads the built package in the sandbox, checks that it describes itself as
/// the manifest does, and writes it to `out`.
pub fn check_and_write(manifest: &Manifest, archive: &[u8], package: &Package, out: &Path) -> Result<()> {
    let sandbox = crate::home::sandbox()?;
    let loaded = sandbox.load_package(package, &envhub_client::home::data_dir())?;
    let info = loaded.info().context("the built environment failed its `info` call")?;
    let (name, version) = (manifest.package.name.to_string(), manifest.package.version.to_string());
    if info.name != name || info.version != version {
        bail!(
            "the environment calls itself {}@{} but envhub.toml says {name}@{version}; make them agree",
            info.name,
            info.version
        );
    }
    envhub_sandbox::fs::write_atomic(out, archive).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "built {name}@{version} -> {} ({} bytes, {} data files, {})",
        out.display(),
        archive.len(),
        package.data.len(),
        package.digest_string()
    );
    Ok(())
}
