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
    serve_with(home, &[])
}

fn serve_with(home: &Path, extra: &[&str]) -> Served {
    let data = home.join("hub-data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(["serve", "--data", &data.display().to_string(), "--addr", "127.0.0.1:0"])
        .args(extra)
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

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key) PEM files.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("a self-signed certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

#[test]
fn https_end_to_end_with_a_ca_cert_and_refused_without() {
    let base = tempfile::tempdir().expect("tempdir");
    let base = base.path();
    let (cert, key) = self_signed(&tmp(base, "tls"));
    let hub = serve_with(
        &tmp(base, "server-home"),
        &["--tls-cert", &cert.display().to_string(), "--tls-key", &key.display().to_string()],
    );
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    let admin = std::fs::read_to_string(hub.data.join("admin-token")).expect("admin token").trim().to_owned();
    let url = hub.url.as_str();
    let home = tmp(base, "home");
    let ca = cert.display().to_string();

    // Without the CA the certificate is not trusted, and the error says so.
    let refused = err(&envhub(&home, base, url, &["login", "--hub", url, "--token", &admin]));
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    assert!(!home.join("credentials.toml").exists(), "a failed login stored credentials");

    // With it: login, publish and pull over HTTPS.
    ok(&envhub(&home, base, url, &["--ca-cert", &ca, "login", "--hub", url, "--token", &admin]));
    let pkg = math_package();
    let out = ok(&envhub(&home, base, url, &["--ca-cert", &ca, "publish", &pkg.display().to_string()]));
    assert!(out.contains("published envhub/math 0.1.0"), "{out}");
    let project = tmp(base, "project");
    let out = ok(&envhub(&home, &project, url, &["--ca-cert", &ca, "pull", "envhub/math@0.1"]));
    assert!(out.contains("envhub/math 0.1.0 sha256:"), "{out}");
    // ENVHUB_CA_CERT does what --ca-cert does.
    let mut by_env = Command::new(env!("CARGO_BIN_EXE_envhub"));
    by_env.args(["search", "math"]).current_dir(base).env("ENVHUB_HOME", &home).env("ENVHUB_HUB", url);
    let out = ok(&by_env.env("ENVHUB_CA_CERT", &ca).output().expect("run envhub"));
    assert!(out.contains("envhub/math"), "{out}");
    // A plain-HTTP client gets no answer it could mistake for the hub's.
    let plain = url.replacen("https://", "http://", 1);
    assert!(!envhub(&home, base, &plain, &["search", "math"]).status.success());
}

/// A loopback server that records the `Authorization` header of every
/// request it gets and answers 404.
fn recording_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let auth = text
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .map(str::to_owned)
                .unwrap_or_else(|| "(none)".to_owned());
            if let Ok(mut seen) = log.lock() {
                seen.push(auth);
            }
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn a_lockfile_source_never_gets_the_users_token() {
    let base = tempfile::tempdir().expect("tempdir");
    let base = base.path();
    let hub = serve(&tmp(base, "server-home"));
    let admin = std::fs::read_to_string(hub.data.join("admin-token")).expect("admin token").trim().to_owned();
    let url = hub.url.as_str();
    let home = tmp(base, "home");
    ok(&envhub(&home, base, url, &["login", "--hub", url, "--token", &admin]));
    ok(&envhub(&home, base, url, &["publish", &math_package().display().to_string()]));
    let project = tmp(base, "project");
    ok(&envhub(&home, &project, url, &["pull", "envhub/math@0.1"]));

    // A lockfile (from a pull request, say) points its source elsewhere.
    let (evil, seen) = recording_server();
    let lock = project.join("envhub.lock");
    let text = std::fs::read_to_string(&lock).expect("lockfile").replace(url, &evil);
    assert!(text.contains(&evil), "{text}");
    std::fs::write(&lock, text).expect("lockfile");
    let clean_home = |h: &Path| {
        // Only the credentials stay: the download must really happen.
        for entry in std::fs::read_dir(h).expect("home").flatten() {
            if entry.file_name() != "credentials.toml" {
                let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    };
    clean_home(&home);
    for token_env in [None, Some(admin.as_str())] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_envhub"));
        cmd.args(["pull", "envhub/math@0.1", "--locked"]).current_dir(&project).env("ENVHUB_HOME", &home);
        cmd.env_remove("ENVHUB_HUB").env_remove("ENVHUB_TOKEN");
        if let Some(t) = token_env {
            cmd.env("ENVHUB_TOKEN", t);
        }
        let out = cmd.output().expect("run envhub");
        assert!(!out.status.success(), "the pull from a 404 source succeeded");
    }
    let seen = seen.lock().expect("log").clone();
    assert!(!seen.is_empty(), "the lockfile's source was never asked");
    assert!(seen.iter().all(|a| a == "(none)"), "a token went to the lockfile's source: {seen:?}");
}
