//! A killed server leaves no visible version: the hub binary is killed
//! (SIGKILL) mid-upload and mid-check, restarted on the same data, and the
//! package is either absent or whole.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use envhub_hub::StorageConfig;

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
    let mut server = spawn(data, storage, &[]);
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token").trim().to_owned();
    let _conn = partial_upload(&server.url, &admin, &archive, archive.len() / 2);
    std::thread::sleep(Duration::from_millis(200));
    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    drop(server);

    let server = spawn(data, storage, &[]);
    let hub = hub_at(&server.url, &admin);
    assert_eq!(hub.get("/api/v1/packages/envhub/math", &[]).status, 404, "a half upload published nothing");

    // Killed after the whole body arrived (while checking or storing).
    let mut server = server;
    let _conn = partial_upload(&server.url, &admin, &archive, archive.len());
    std::thread::sleep(Duration::from_millis(30));
    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    drop(server);

    let server = spawn(data, storage, &[]);
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
