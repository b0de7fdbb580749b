//! The `run_code` capability (`code:python`): programs run in a fresh nested
//! CPython sandbox; every misbehaviour comes back as a result naming the limit
//! it hit, nothing outside the sandbox changes, and the host keeps serving.
//! Needs `scripts/fetch-python.sh` (run by `scripts/build-guests.sh`).

use std::sync::OnceLock;

use envhub_sandbox::{CodeConfig, CodeLimitsConfig, Limits, LoadOptions, Sandbox, SandboxConfig, SandboxError};
use envhub_sdk::host::{CodeLimits, CodeResult, LimitHit, RunCode};
use envhub_sdk::{ErrorKind, Response};

/// One sandbox for the whole file, so the runtime compiles once (and comes
/// from the on-disk cache after the first run).
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(envhub_tests::test_sandbox)
}

fn python(code: &str) -> RunCode {
    let mut r = RunCode::python(code);
    r.limits = CodeLimits { fuel: Some(3_000_000_000), memory_bytes: Some(64 << 20), output_bytes: Some(64 << 10) };
    r
}

fn run(code: &str) -> CodeResult {
    sandbox().run_code(&python(code)).expect("run")
}

/// After each hostile program, the same sandbox still runs a good one.
fn still_serving() {
    let r = run("print('still here')");
    assert!(r.success(), "{r:?}");
    assert_eq!(r.stdout, "still here\n");
}

#[test]
fn prints_reads_stdin_and_exits() {
    let mut req = python("import sys\ndata = sys.stdin.read()\nprint(data.upper(), end='')\nsys.exit(3)");
    req.stdin = "hello\n".into();
    let r = sandbox().run_code(&req).expect("run");
    assert_eq!((r.stdout.as_str(), r.exit_code, r.limit), ("HELLO\n", Some(3), LimitHit::None), "{r:?}");
    assert!(r.fuel_used > 0);

    let r = run("import sys; sys.exit(-1)");
    assert_eq!(r.exit_code, Some(-1), "{r:?}");
    let r = run("import sys; sys.exit('bye')");
    assert_eq!((r.exit_code, r.stderr.as_str()), (Some(1), "bye\n"), "{r:?}");
    let r = run("raise ValueError('boom')");
    assert_eq!(r.exit_code, Some(1));
    assert!(r.stderr.contains("ValueError: boom") && r.stderr.contains("main.py\", line 1"), "{}", r.stderr);
}

#[test]
fn runs_are_deterministic() {
    let code = "import random, time, os, uuid\nprint(random.random(), time.time(), time.monotonic(), hash('abc'), os.urandom(4).hex(), uuid.uuid4())";
    let a = run(code);
    let b = run(code);
    assert!(a.success(), "{a:?}");
    assert_eq!(a, b);
    assert!(a.stdout.contains("946684800.0"), "fixed wall clock: {}", a.stdout);
    let version = run("import sys; print(sys.version_info[:3])");
    assert_eq!(version.stdout, "(3, 11, 2)\n");
}

/// Every run starts from the same initialised interpreter: what one run
/// changes (modules, builtins, `sys`, files) is gone in the next, and the
/// `random` module is reseeded per request, not frozen in the snapshot.
#[test]
fn runs_start_fresh_from_the_snapshot() {
    let tamper = "import sys, builtins, json, random\n\
                  sys.tampered = True; builtins.len = lambda x: 0; json.dumps = None\n\
                  sys.modules['math'] = None; open('left.txt', 'w').write('x')\n\
                  random.seed(1); print('tampered')";
    assert_eq!(run(tamper).stdout, "tampered\n");
    let r = run("import sys, json, math, os\n\
                 print(hasattr(sys, 'tampered'), len('abc'), json.dumps([1]), math.sqrt(4), os.listdir('.'))");
    assert_eq!(r.stdout, "False 3 [1] 2.0 []\n", "{r:?}");

    let a = run("import random; print(random.random())  # a");
    let b = run("import random; print(random.random())  # b");
    assert!(a.success() && b.success());
    assert_ne!(a.stdout, b.stdout, "random is seeded per request");
    let seeded = run("import random; random.seed(1); print(random.random())");
    assert_eq!(seeded.stdout, "0.13436424411240122\n", "CPython's own Mersenne Twister");
}

/// A setup runs once per host: runs with it start from the interpreter it
/// left (paying the fuel it took), each from the same state, and a failing
/// setup refuses the run with its traceback.
#[test]
fn setups_are_prepared_once_and_shared() {
    let setup = "import json\nprint('setup output is discarded')\nCOUNT = [0]\n\
                 def bump():\n    COUNT[0] += 1\n    return COUNT[0]\n\
                 TABLE = {i: str(i) * 3 for i in range(20000)}\n";
    let with_setup = |code: &str| {
        let mut req = python(code);
        req.setup = Some(setup.into());
        sandbox().run_code(&req).expect("run")
    };
    let program = "import envhub_setup as s\nprint(s.bump(), s.bump(), s.TABLE[12345])";
    let a = with_setup(program);
    assert_eq!(a.stdout, "1 2 123451234512345\n", "{a:?}");
    let b = with_setup(program);
    assert_eq!(a, b, "every run starts from the setup's state, not the previous run's");

    // The same work inline pays for building the table every time.
    let inline = run(&format!("{setup}\n{}", program.replace("import envhub_setup as s\n", "").replace("s.", "")));
    assert_eq!(inline.stdout, "setup output is discarded\n1 2 123451234512345\n", "{inline:?}");
    assert!(a.fuel_used * 2 > inline.fuel_used, "setup charged: {} vs {}", a.fuel_used, inline.fuel_used);

    // Without the setup there is no such module.
    let r = run("import envhub_setup");
    assert!(r.stderr.contains("ModuleNotFoundError"), "{r:?}");

    let mut req = python("print(1)");
    req.setup = Some("raise RuntimeError('bad setup')".into());
    let err = sandbox().run_code(&req).expect_err("refused").to_string();
    assert!(err.contains("setup failed") && err.contains("RuntimeError: bad setup"), "{err}");
    let mut req = python("print(1)");
    req.setup = Some("while True:\n    pass".into());
    let r = sandbox().run_code(&req).expect("run");
    assert_eq!((r.limit, r.exit_code, r.fuel_used), (LimitHit::Fuel, None, 3_000_000_000), "{r:?}");
    still_serving();
}

/// A setup is part of the run that asks for it: it runs within the run's
/// fuel (its caller's, for a guest) and is charged the fuel it took, the
/// same whether it was made for this run or found prepared, so results do
/// not depend on what ran on the host before.
#[test]
fn setups_are_charged_the_same_whether_made_or_cached() {
    let setup = |tag: &str| format!("# {tag}\nTABLE = {{i: str(i) * 3 for i in range(60000)}}\n");
    let request = |setup: &str, fuel: u64| {
        let mut r = python("import envhub_setup as s\nprint(len(s.TABLE))");
        r.setup = Some(setup.into());
        r.limits.fuel = Some(fuel);
        r
    };
    let first = setup("charged-1");
    let made = sandbox().run_code(&request(&first, 3_000_000_000)).expect("run");
    let cached = sandbox().run_code(&request(&first, 3_000_000_000)).expect("run");
    assert!(made.success() && made.stdout == "60000\n", "{made:?}");
    assert_eq!(made, cached, "a cached setup is charged what it took when made");
    let alone = run("import json\nprint(60000)");
    assert!(made.fuel_used > alone.fuel_used * 4, "setup charged: {} vs {}", made.fuel_used, alone.fuel_used);

    // Less fuel than the setup takes: out of fuel before the program
    // starts, all of it spent, made or cached alike.
    let tight = made.fuel_used / 2;
    let second = setup("charged-2");
    let short_made = sandbox().run_code(&request(&second, tight)).expect("run");
    assert_eq!((short_made.limit, short_made.exit_code, short_made.fuel_used), (LimitHit::Fuel, None, tight));
    assert!(sandbox().run_code(&request(&second, 3_000_000_000)).expect("run").success());
    let short_cached = sandbox().run_code(&request(&second, tight)).expect("run");
    assert_eq!(short_made, short_cached);

    // A guest's fuel bounds the setups it causes too.
    for tag in ["charged-2", "charged-3"] {
        let mut req = RunCode::python("import envhub_setup");
        req.setup = Some(setup(tag));
        let json = serde_json::to_string(&req).expect("json");
        let module = load_guest(&abi_guest(&json, "(local.get $n)"), tight, vec!["code:python".into()]).expect("load");
        let out = module.call_raw(b"").expect("call");
        let answer: Response<CodeResult> = serde_json::from_slice(&out.stdout).expect("answer");
        let result = answer.into_result().expect("ok");
        assert_eq!(result.limit, LimitHit::Fuel, "{tag}: {result:?}");
        assert!(result.fuel_used < tight && out.fuel_used == tight, "{tag}: {result:?} {out:?}");
    }
    still_serving();
}

#[test]
fn files_are_given_in_a_throwaway_work_dir() {
    let mut req = python(
        "import os, helper\nprint(os.getcwd(), sorted(os.listdir('.')), open('data/in.txt').read(), helper.VALUE)\n\
         open('out.txt', 'w').write('written')\nprint(open('/work/out.txt').read())",
    );
    req.files.insert("data/in.txt".into(), "input".into());
    req.files.insert("helper.py".into(), "VALUE = 42".into());
    let r = sandbox().run_code(&req).expect("run");
    assert!(r.success(), "{r:?}");
    assert_eq!(r.stdout, "/work ['data', 'helper.py'] input 42\nwritten\n");
    // A later run sees none of it.
    let r = run("import os; print(os.listdir('.'))");
    assert_eq!(r.stdout, "[]\n");
}

#[test]
fn refused_requests_are_typed_errors() {
    let mut req = python("print(1)");
    req.language = "ruby".into();
    let err = sandbox().run_code(&req).expect_err("refused");
    assert!(matches!(&err, SandboxError::Guest(e) if e.kind == ErrorKind::BadRequest), "{err}");
    for bad in ["../escape.txt", "/etc/passwd", ""] {
        let mut req = python("print(1)");
        req.files.insert(bad.into(), "x".into());
        let err = sandbox().run_code(&req).expect_err("refused");
        assert!(matches!(&err, SandboxError::Guest(e) if e.kind == ErrorKind::BadRequest), "{bad}: {err}");
    }
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let r = run("while True:\n    pass");
    assert_eq!((r.limit, r.exit_code), (LimitHit::Fuel, None), "{r:?}");
    assert_eq!(r.fuel_used, 3_000_000_000);
    still_serving();
}

#[test]
fn memory_bombs_hit_the_memory_limit() {
    for code in [
        "x = bytearray(1 << 30)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))",
        "s = 'x'\nwhile True:\n    s = s + s",
    ] {
        let r = run(code);
        assert_eq!(r.limit, LimitHit::Memory, "{code}: {r:?}");
        assert_ne!(r.exit_code, Some(0), "{code}: {r:?}");
    }
    still_serving();
}

#[test]
fn recursion_bombs_stop() {
    // Python's own recursion limit.
    let r = run("def f(n):\n    return f(n + 1)\nf(0)");
    assert_eq!((r.limit, r.exit_code), (LimitHit::None, Some(1)), "{r:?}");
    assert!(r.stderr.contains("RecursionError"), "{}", r.stderr);
    // Without it, a sandbox limit stops the program.
    let r = run("import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)");
    assert!(matches!(r.limit, LimitHit::Memory | LimitHit::Stack | LimitHit::Fuel), "{r:?}");
    assert_ne!(r.exit_code, Some(0));
    // Deeply nested data in C code.
    let r = run("import json\njson.loads('[' * 200000 + ']' * 200000)");
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    still_serving();
}

#[test]
fn output_floods_are_cut_at_the_limit() {
    for code in ["while True:\n    print('x' * 1000)", "import sys\nwhile True:\n    sys.stderr.write('y' * 1000)"] {
        let r = run(code);
        assert_eq!(r.limit, LimitHit::Output, "{code}: {r:?}");
        assert!(r.stdout.len() <= 64 << 10 && r.stderr.len() <= 64 << 10);
        assert!(r.stdout.len() == 64 << 10 || r.stderr.len() == 64 << 10, "{code}");
    }
    still_serving();
}

#[test]
fn no_files_outside_the_work_dir_and_no_network() {
    let marker = format!("envhub-escape-{}", std::process::id());
    let code = format!(
        "import os, socket\nresults = []\n\
         for path in ['/etc/passwd', '/tmp/{marker}', '../{marker}', '/work/../{marker}', '/{marker}']:\n\
         \x20   try:\n\x20       open(path, 'w').write('x')\n\x20       results.append('wrote ' + path)\n\
         \x20   except OSError as e:\n\x20       results.append('refused')\n\
         try:\n    print(os.listdir('/'))\nexcept OSError:\n    results.append('no root')\n\
         try:\n    socket.create_connection(('127.0.0.1', 80), timeout=1)\n    results.append('connected')\n\
         except Exception:\n    results.append('no network')\n\
         try:\n    import subprocess\n    subprocess.run(['ls'])\n    results.append('spawned')\n\
         except Exception:\n    results.append('no processes')\n\
         print(results)"
    );
    let r = run(&code);
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(
        !r.stdout.contains("wrote") && !r.stdout.contains("connected") && !r.stdout.contains("spawned"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("no network") && r.stdout.contains("no processes"), "{}", r.stdout);
    for dir in [std::env::temp_dir(), std::env::current_dir().expect("cwd"), "/".into()] {
        assert!(!dir.join(&marker).exists(), "{} escaped", dir.join(&marker).display());
    }
    still_serving();
}

#[test]
fn deadline_backstop_is_reported() {
    let config = SandboxConfig {
        code: CodeConfig {
            limits: CodeLimitsConfig { deadline_ms: 300, ..CodeLimitsConfig::default() },
            ..CodeConfig::default()
        },
        cache_dir: Some(envhub_tests::target_dir().join("envhub-test-cache")),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::new(config).expect("sandbox");
    let mut req = RunCode::python("while True:\n    pass");
    req.limits.fuel = Some(1_000_000_000_000);
    let r = sb.run_code(&req).expect("run");
    assert_eq!((r.limit, r.exit_code), (LimitHit::Deadline, None), "{r:?}");
    assert!(sb.run_code(&RunCode::python("print(1)")).expect("run").success());
}

#[test]
fn fuel_is_capped_by_the_host_maximum() {
    let mut req = python("while True:\n    pass");
    req.limits.fuel = Some(u64::MAX);
    let config = SandboxConfig {
        code: CodeConfig {
            limits: CodeLimitsConfig { max_fuel: 1_000_000_000, ..CodeLimitsConfig::default() },
            ..CodeConfig::default()
        },
        cache_dir: Some(envhub_tests::target_dir().join("envhub-test-cache")),
        ..SandboxConfig::default()
    };
    let r = Sandbox::new(config).expect("sandbox").run_code(&req).expect("run");
    assert_eq!((r.limit, r.fuel_used), (LimitHit::Fuel, 1_000_000_000));
}

/// A raw guest calling `envhub::run_code` with the ABI: asks with a 4-byte
/// buffer, gets the size, asks again, and prints the answer.
fn abi_guest(request: &str, second_cap: &str) -> String {
    let escaped: String = request.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "envhub" "run_code" (func $run (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 1024) "{escaped}")
  (func (export "_start")
    (local $n i32)
    (local.set $n (call $run (i32.const 1024) (i32.const {len}) (i32.const 65536) (i32.const 4)))
    (local.set $n (call $run (i32.const 1024) (i32.const {len}) (i32.const 65536) {second_cap}))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
        len = request.len()
    )
}

fn load_guest(wat: &str, fuel: u64, capabilities: Vec<String>) -> Result<envhub_sandbox::EnvModule, SandboxError> {
    let limits = Limits { fuel, ..Limits::default() };
    sandbox().load(wat.as_bytes(), LoadOptions { limits, capabilities, data_dir: None })
}

#[test]
fn guest_abi_retries_with_a_larger_buffer_and_pays_the_fuel() {
    let request = serde_json::to_string(&RunCode::python("print('from the guest')")).expect("json");
    let module =
        load_guest(&abi_guest(&request, "(local.get $n)"), 4_000_000_000, vec!["code:python".into()]).expect("load");
    let out = module.call_raw(b"").expect("call");
    let answer: Response<CodeResult> = serde_json::from_slice(&out.stdout).expect("answer");
    let result = answer.into_result().expect("ok");
    assert_eq!(result.stdout, "from the guest\n");
    // The nested run's fuel is charged to the caller (once: the retry reuses the answer).
    assert!(out.fuel_used >= result.fuel_used && out.fuel_used < result.fuel_used + 1_000_000, "{out:?}");

    // A caller with little fuel left cannot give its program more: the run
    // stops at the caller's remaining fuel, which is then all spent.
    let endless = serde_json::to_string(&RunCode::python("while True:\n    pass")).expect("json");
    let module =
        load_guest(&abi_guest(&endless, "(local.get $n)"), 50_000_000, vec!["code:python".into()]).expect("load");
    let out = module.call_raw(b"").expect("call");
    let answer: Response<CodeResult> = serde_json::from_slice(&out.stdout).expect("answer");
    let result = answer.into_result().expect("ok");
    assert_eq!(result.limit, LimitHit::Fuel, "{result:?}");
    assert!(result.fuel_used < 50_000_000 && out.fuel_used == 50_000_000, "{result:?} {out:?}");

    // A bad buffer traps the caller, not the host.
    let module = load_guest(&abi_guest(&request, "(i32.const 2147483647)"), 4_000_000_000, vec!["code:python".into()])
        .expect("load");
    let err = module.call_raw(b"").expect_err("trap");
    assert!(matches!(err, SandboxError::Trap { .. }), "{err}");

    // A refused request is an answer, not a trap.
    let module =
        load_guest(&abi_guest("{\"language\": 1}", "(local.get $n)"), 4_000_000_000, vec!["code:python".into()])
            .expect("load");
    let out = module.call_raw(b"").expect("call");
    let answer: Response<CodeResult> = serde_json::from_slice(&out.stdout).expect("answer");
    assert_eq!(answer.into_result().expect_err("refused").kind, ErrorKind::BadRequest);
    still_serving();
}

#[test]
fn undeclared_run_code_is_refused() {
    let request = serde_json::to_string(&RunCode::python("print(1)")).expect("json");
    let err = load_guest(&abi_guest(&request, "(local.get $n)"), 1_000_000, vec![]).err().expect("refused");
    assert!(
        matches!(&err, SandboxError::UndeclaredCapability { capability, .. } if capability == "code:python"),
        "{err}"
    );
}

/// Rewards are reproducible on one runtime only: other files are refused with
/// the command that rebuilds the pinned one; accepted on request, a module
/// that is not the runtime fails when it is snapshotted, with a typed error.
#[test]
fn runtimes_other_than_the_pinned_one_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("lib")).expect("mkdir");
    let empty_module = b"\0asm\x01\0\0\0";
    std::fs::write(dir.path().join("python.wasm"), empty_module).expect("write");
    std::fs::write(dir.path().join("lib/python311.zip"), b"not a zip").expect("write");
    let sandbox = |allow_unpinned| {
        Sandbox::new(SandboxConfig {
            code: CodeConfig { runtime_dir: Some(dir.path().into()), allow_unpinned, ..CodeConfig::default() },
            ..SandboxConfig::default()
        })
        .expect("sandbox")
    };
    if std::env::var_os("ENVHUB_PYTHON_UNPINNED").is_none() {
        let err = sandbox(false).run_code(&RunCode::python("print(1)")).expect_err("refused").to_string();
        assert!(err.contains("python.wasm has sha256") && err.contains("scripts/build-python.sh"), "{err}");
    }
    let err = sandbox(true).run_code(&RunCode::python("print(1)")).expect_err("not a runtime").to_string();
    assert!(err.contains("snapshot:"), "{err}");
}

/// A sandbox whose runs may keep `quota` bytes in `/work`.
fn sandbox_with_quota(quota: u64) -> Sandbox {
    let config = SandboxConfig {
        code: CodeConfig {
            limits: CodeLimitsConfig { disk_quota_bytes: quota, ..CodeLimitsConfig::default() },
            ..CodeConfig::default()
        },
        cache_dir: Some(envhub_tests::target_dir().join("envhub-test-cache")),
        ..SandboxConfig::default()
    };
    Sandbox::new(config).expect("sandbox")
}

/// `/work` has a disk quota (64 MiB by default): writing past it fails in
/// the program with EDQUOT, and what is on disk stays within it.
#[test]
fn work_dir_writes_stop_at_the_disk_quota() {
    let flood = "import os, errno\n\
                 try:\n\
                 \x20   with open('big', 'wb') as f:\n\
                 \x20       for i in range(200):\n\
                 \x20           f.write(b'x' * (1 << 20))\n\
                 \x20   print('wrote all')\n\
                 except OSError as e:\n\
                 \x20   print('refused', e.errno == errno.EDQUOT)\n\
                 print(os.stat('big').st_size)";
    let r = run(flood);
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("refused True"), "{r:?}");
    let size: u64 = lines.next().and_then(|l| l.parse().ok()).expect("size");
    assert!((60 << 20..=64 << 20).contains(&size), "{size}");
    still_serving();

    let sb = sandbox_with_quota(1 << 20);
    let code = "import os, errno\nout = []\n\
                def attempt(name, f):\n\
                \x20   try:\n\x20       f()\n\x20       out.append(name + ' ok')\n\
                \x20   except OSError as e:\n\x20       out.append(name + (' refused' if e.errno == errno.EDQUOT else ' other %r' % e))\n\
                def write(name, n, mode='wb'):\n\
                \x20   with open(name, mode) as f:\n\x20       f.write(b'x' * n)\n\
                # Rewriting a file gives its bytes back first.\n\
                for i in range(8):\n\x20   attempt('rewrite', lambda: write('a', 600 << 10))\n\
                attempt('second file', lambda: write('b', 600 << 10))\n\
                attempt('append', lambda: write('a', 600 << 10, 'ab'))\n\
                def sparse():\n\
                \x20   with open('s', 'wb') as f:\n\x20       f.seek(1 << 40)\n\x20       f.write(b'z')\n\
                attempt('sparse', sparse)\n\
                def grow():\n\
                \x20   with open('t', 'wb') as f:\n\x20       f.truncate(1 << 30)\n\
                attempt('truncate up', grow)\n\
                def dirs():\n\
                \x20   for i in range(100000):\n\x20       os.mkdir('d%d' % i)\n\
                attempt('dirs', dirs)\n\
                total = sum(os.stat(n).st_size for n in os.listdir('.'))\n\
                print(out, total <= 1 << 20)";
    let r = sb.run_code(&python(code)).expect("run");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        format!(
            "[{}, 'second file refused', 'append refused', 'sparse refused', 'truncate up refused', 'dirs refused'] True\n",
            ["'rewrite ok'"; 8].join(", ")
        ),
        "{r:?}"
    );
    // The request's own files count too.
    let mut req = python("open('more', 'wb').write(b'y' * 4096)");
    req.files.insert("given.txt".into(), "z".repeat(1 << 20));
    let r = sb.run_code(&req).expect("run");
    assert!(r.exit_code == Some(1) && r.stderr.contains("OSError"), "{r:?}");
}

/// What a program sees of its files does not depend on the host: listings
/// are sorted, inode numbers are given in the order files are first seen,
/// and times are fixed (a directory's counts the names changed in it).
#[test]
fn file_listings_and_stats_do_not_depend_on_the_host() {
    let code = "import os\n\
                names = ['f%02d' % ((i * 7) % 30) for i in range(30)]\n\
                for n in names:\n\x20   open(n, 'w').write(n)\n\
                os.mkdir('sub')\n\
                print(os.listdir('.') == sorted(os.listdir('.')), len(os.listdir('.')))\n\
                stats = [os.stat(n) for n in sorted(os.listdir('.'))]\n\
                print([s.st_ino for s in stats][:5], len({s.st_ino for s in stats}))\n\
                print(sorted({(s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns) for s in stats[:-1]}))\n\
                d = os.stat('.')\n\
                print(d.st_size, d.st_nlink, d.st_mtime, os.stat('sub').st_mtime)\n\
                print([e.name for e in os.scandir('.')][:3], os.path.samefile('f01', 'f01'), os.path.samefile('f01', 'f02'))";
    let mut req = python(code);
    req.files.insert("given.txt".into(), "g".into());
    let a = sandbox().run_code(&req).expect("run");
    let b = sandbox().run_code(&req).expect("run");
    assert_eq!(a.exit_code, Some(0), "{a:?}");
    assert_eq!(a, b, "the same program sees the same files");
    let lines: Vec<&str> = a.stdout.lines().collect();
    assert_eq!(lines[0], "True 32", "{}", a.stdout);
    assert!(lines[1].ends_with(" 32"), "distinct inodes: {}", a.stdout);
    assert_eq!(lines[2], "[(0, 0, 0)]", "{}", a.stdout);
    // 30 files and a directory created: directories' times count them.
    assert_eq!(lines[3], "0 1 31.0 31.0", "{}", a.stdout);
    assert_eq!(lines[4], "['f00', 'f01', 'f02'] True False", "{}", a.stdout);
}
