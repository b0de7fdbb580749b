//! A killed server leaves no visible version: the hub binary is killed
//! (SIGKILL) mid-upload and mid-check, restarted on the same data, and the
//! package is either absent or whole.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use envhub_hub::StorageConfig;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data: &Path, storage: &StorageConfig) -> Server {
    let mut args = vec!["--data".to_owned(), data.display().to_string(), "--addr".into(), "127.0.0.1:0".into()];
    if let StorageConfig::ScaleOut { database_url, s3 } = storage {
        for (flag, value) in [
            ("--database-url", database_url),
            ("--s3-endpoint", &s3.endpoint),
            ("--s3-bucket", &s3.bucket),
            ("--s3-prefix", &s3.prefix),
        ] {
            args.extend([flag.to_owned(), value.clone()]);
        }
    }
    let access = match storage {
        StorageConfig::ScaleOut { s3, .. } => (s3.access_key.clone(), s3.secret_key.clone()),
        StorageConfig::Embedded { .. } => (String::new(), String::new()),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub-hub"))
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", access.0)
        .env("AWS_SECRET_ACCESS_KEY", access.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn envhub-hub");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("the hub printed its address").expect("line");
        if let Some(url) = line.strip_prefix("envhub hub listening on ") {
            break url.trim().to_owned();
        }
    };
    Server { child, url }
}

fn hub_at(url: &str, admin: &str) -> TestHub {
    TestHub { url: url.to_owned(), admin: admin.to_owned(), config: envhub_hub::HubConfig::embedded(Path::new(".")) }
}

/// Sends the request line, headers and the first `sent` bytes of `archive`.
fn partial_upload(url: &str, token: &str, archive: &[u8], sent: usize) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /api/v1/packages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        archive.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    for chunk in archive[..sent].chunks(16 * 1024) {
        stream.write_all(chunk).expect("body");
        std::thread::sleep(Duration::from_millis(5));
    }
    stream.flush().expect("flush");
    stream
}

#[test]
fn a_killed_server_leaves_no_visible_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, backend) in backends(dir.path()).into_iter().enumerate() {
        eprintln!("backend: {}", backend.label);
        killed_mid_publish(&dir.path().join(format!("hub-{i}")), &backend.storage);
    }
}

fn killed_mid_publish(data: &Path, storage: &StorageConfig) {
    let archive = math_package();
    let hex = sha256_hex(&archive);

    // Killed mid-upload.
    let mut server = spawn(data, storage);
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token").trim().to_owned();
    let _conn = partial_upload(&server.url, &admin, &archive, archive.len() / 2);
    std::thread::sleep(Duration::from_millis(200));
    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    drop(server);

    let server = spawn(data, storage);
    let hub = hub_at(&server.url, &admin);
    assert_eq!(hub.get("/api/v1/packages/envhub/math", &[]).status, 404, "a half upload published nothing");

    // Killed after the whole body arrived (while checking or storing).
    let mut server = server;
    let _conn = partial_upload(&server.url, &admin, &archive, archive.len());
    std::thread::sleep(Duration::from_millis(30));
    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    drop(server);

    let server = spawn(data, storage);
    let hub = hub_at(&server.url, &admin);
    let index = hub.get("/api/v1/packages/envhub/math", &[]);
    if index.status == 200 {
        // The publish completed before the kill: then it is whole.
        let blob = hub.get(&format!("/api/v1/blobs/sha256/{hex}"), &[]);
        assert_eq!(blob.body, archive);
    } else {
        assert_eq!(index.status, 404);
        // Nothing half-done blocks a real publish.
        let r = hub.publish(Some(&admin), &archive);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let blob = hub.get(&format!("/api/v1/blobs/sha256/{hex}"), &[]);
    assert_eq!(sha256_hex(&blob.body), hex, "the stored blob is whole");
}
