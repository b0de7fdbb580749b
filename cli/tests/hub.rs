//! `envhub serve`, `login`, `token create`, `publish`, `pull` (lockfile,
//! `--locked`, yanked versions, digest checks), `search`, `yank`, and
//! `owner/name@REQ` arguments, end to end over loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use envhub_sandbox::package::{Package, pack};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace")
}

fn math_package() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("envhub/envhub-math-0.1.0.envpkg"));
    }
    candidates.push(workspace().join("target/envhub/envhub-math-0.1.0.envpkg"));
    candidates.into_iter().find(|p| p.is_file()).expect("the math package: run scripts/build-guests.sh first")
}

/// The math package as another version.
fn math_version(dir: &Path, version: &str) -> PathBuf {
    let package = Package::from_file(&math_package()).expect("package");
    let mut manifest = package.manifest.clone();
    manifest.package.version = version.parse().expect("version");
    let data = dir.join(format!("data-{version}"));
    envhub_sandbox::package::unpack_data(&package, &data).expect("unpack the data");
    let bytes = pack(&manifest.to_toml(), &package.module, package.readme.as_deref(), Some(&data)).expect("pack");
    let path = dir.join(format!("math-{version}.envpkg"));
    std::fs::write(&path, bytes).expect("write package");
    path
}

struct Served {
    child: Child,
    url: String,
    data: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(home: &Path) -> Served {
    let data = home.join("hub-data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(["serve", "--data", &data.display().to_string(), "--addr", "127.0.0.1:0"])
        .env("ENVHUB_HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("envhub serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = loop {
        let line = lines.next().expect("serve printed its address").expect("line");
        if let Some(url) = line.strip_prefix("envhub hub listening on ") {
            break url.trim().to_owned();
        }
    };
    Served { child, url, data }
}

fn envhub(home: &Path, cwd: &Path, hub: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(args)
        .current_dir(cwd)
        .env("ENVHUB_HOME", home)
        .env("ENVHUB_HUB", hub)
        .env_remove("ENVHUB_TOKEN")
        .env_remove("ENVHUB_LOCKED")
        .stdin(Stdio::null())
        .output()
        .expect("run envhub")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure; stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(base: &Path, name: &str) -> PathBuf {
    let p = base.join(name);
    std::fs::create_dir_all(&p).expect("mkdir");
    p
}

#[test]
fn publish_pull_lock_yank_and_resolve() {
    let base = tempfile::tempdir().expect("tempdir");
    let base = base.path();
    let home = tmp(base, "home");
    let hub = serve(&tmp(base, "server-home"));
    let admin = std::fs::read_to_string(hub.data.join("admin-token")).expect("admin token").trim().to_owned();
    let url = hub.url.as_str();

    // Login stores the token, user-only.
    ok(&envhub(&home, base, url, &["login", "--hub", url, "--token", &admin]));
    let creds = home.join("credentials.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&creds).expect("credentials").permissions().mode() & 0o777, 0o600);
    }
    let bad = err(&envhub(&tmp(base, "other-home"), base, url, &["login", "--hub", url, "--token", "ehub_wrong"]));
    assert!(bad.contains("401"), "{bad}");

    // Tokens.
    let out = ok(&envhub(
        &home,
        base,
        url,
        &["token", "create", "--login", "alice", "--scope", "publish-new,yank", "--pattern", "alice/*"],
    ));
    assert!(out.trim().starts_with("ehub_"), "{out}");

    // Publish, and a republish is refused.
    let pkg = math_package();
    let out = ok(&envhub(&home, base, url, &["publish", &pkg.display().to_string()]));
    assert!(out.contains("published envhub/math 0.1.0 sha256:"), "{out}");
    let again = err(&envhub(&home, base, url, &["publish", &pkg.display().to_string()]));
    assert!(again.contains("409") && again.contains("already published"), "{again}");
    let v011 = math_version(base, "0.1.1");
    ok(&envhub(&home, base, url, &["publish", &v011.display().to_string()]));

    // Search.
    let out = ok(&envhub(&home, base, url, &["search", "math"]));
    assert!(out.contains("envhub/math") && out.contains("0.1.1"), "{out}");

    // Pull pins the highest match in envhub.lock and caches it by digest.
    let project_a = tmp(base, "a");
    let out = ok(&envhub(&home, &project_a, url, &["pull", "envhub/math@0.1"]));
    assert!(out.contains("envhub/math 0.1.1 sha256:"), "{out}");
    let lock = std::fs::read_to_string(project_a.join("envhub.lock")).expect("lockfile");
    let parsed: toml::Value = toml::from_str(&lock).expect("lockfile is TOML");
    let entry = &parsed["package"][0];
    assert_eq!(entry["name"].as_str(), Some("envhub/math"));
    assert_eq!(entry["version"].as_str(), Some("0.1.1"));
    assert_eq!(entry["source"].as_str(), Some(url));
    let digest_011 = entry["digest"].as_str().expect("digest").to_owned();
    assert!(home.join("packages/sha256").join(format!("{}.envpkg", &digest_011[7..])).is_file());

    // Every environment command takes owner/name@REQ.
    let out = ok(&envhub(&home, &project_a, url, &["info", "envhub/math@0.1"]));
    assert!(out.contains(&digest_011), "info resolves through the lockfile: {out}");

    // Yank 0.1.1: new resolutions skip it, the lockfile still gets it.
    ok(&envhub(&home, base, url, &["yank", "envhub/math@0.1.1"]));
    let project_b = tmp(base, "b");
    let out = ok(&envhub(&home, &project_b, url, &["pull", "envhub/math@0.1"]));
    assert!(out.contains("envhub/math 0.1.0 "), "a yanked version is skipped: {out}");
    let none = err(&envhub(&home, &project_b, url, &["pull", "envhub/math@=0.1.1"]));
    assert!(none.contains("yanked"), "{none}");
    let fresh_home = tmp(base, "fresh-home");
    let out = ok(&envhub(&fresh_home, &project_a, url, &["pull", "--locked", "envhub/math@0.1"]));
    assert!(out.contains("0.1.1") && out.contains("(locked)"), "the lockfile still downloads a yanked version: {out}");
    let missing = err(&envhub(&fresh_home, &tmp(base, "c"), url, &["pull", "--locked", "envhub/math"]));
    assert!(missing.contains("--locked"), "{missing}");
    ok(&envhub(&home, base, url, &["yank", "--undo", "envhub/math@0.1.1"]));

    // A blob tampered with in storage: the pull fails on the digest and runs nothing.
    let hex = &digest_011[7..];
    let blob = hub.data.join("blobs/sha256").join(&hex[..2]).join(hex);
    let mut bytes = std::fs::read(&blob).expect("stored blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, bytes).expect("tamper");
    let victim_home = tmp(base, "victim-home");
    let project_d = tmp(base, "d");
    let out = envhub(&victim_home, &project_d, url, &["test", "envhub/math@=0.1.1"]);
    let stderr = err(&out);
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "nothing ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!victim_home.join("packages/sha256").join(format!("{hex}.envpkg")).exists(), "nothing was cached");
}
