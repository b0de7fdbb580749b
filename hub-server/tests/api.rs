//! The hub's HTTP API over loopback, on every configured storage backend.

mod common;

use common::*;
use serde_json::json;

/// Runs `f` against a fresh hub on each backend.
fn each_backend(f: impl Fn(&TestHub, &str)) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, backend) in backends(dir.path()).into_iter().enumerate() {
        let work = dir.path().join(format!("b{i}"));
        let hub = start(config(&backend, &work));
        f(&hub, backend.label);
    }
}

#[test]
fn publish_index_and_immutable_blob() {
    each_backend(|hub, label| {
        let archive = math_package();
        let hex = sha256_hex(&archive);
        let r = hub.publish_with(Some(&hub.admin), &archive, &[("X-Envhub-Digest", &format!("sha256:{hex}"))]);
        assert_eq!(r.status, 201, "{label}: {}", r.text());
        assert_eq!(r.json()["digest"], json!(format!("sha256:{hex}")));
        assert_eq!(r.json()["self_test"]["passed"], json!(true), "{label}");

        let index = hub.get("/api/v1/packages/envhub/math", &[]);
        assert_eq!(index.status, 200, "{label}");
        let v = &index.json()["versions"][0];
        assert_eq!(v["version"], json!("0.1.0"));
        assert_eq!(v["digest"], json!(format!("sha256:{hex}")));
        assert_eq!(v["size"], json!(archive.len()));
        assert_eq!(v["yanked"], json!(false));
        assert!(v["published_at"].as_i64().is_some_and(|t| t > 1_600_000_000));
        assert!(v["self_test"]["tasks"].as_u64().is_some_and(|n| n > 0), "{label}: {v}");
        assert_eq!(index.json()["owners"], json!(["admin"]));

        let blob = hub.get(&format!("/api/v1/blobs/sha256/{hex}"), &[]);
        assert_eq!(blob.status, 200, "{label}");
        assert_eq!(blob.body, archive, "{label}: the blob is the archive");
        assert_eq!(blob.header("cache-control"), Some("public, max-age=31536000, immutable"));
        let etag = blob.header("etag").expect("etag").to_owned();
        assert_eq!(etag, format!("\"sha256:{hex}\""));
        assert_eq!(hub.get(&format!("/api/v1/blobs/sha256/{hex}"), &[("If-None-Match", &etag)]).status, 304);
        let missing = hub.get(&format!("/api/v1/blobs/sha256/{}", "0".repeat(64)), &[]);
        assert_eq!((missing.status, missing.code().as_str()), (404, "not_found"));
        assert_eq!(hub.get("/api/v1/blobs/sha256/xyz", &[]).code(), "invalid_digest");
        assert_eq!(hub.get("/api/v1/packages/envhub/nothing", &[]).status, 404);
    });
}

#[test]
fn a_published_version_is_never_overwritten() {
    each_backend(|hub, label| {
        assert_eq!(hub.publish(Some(&hub.admin), &math_package()).status, 201, "{label}");
        let again = hub.publish(Some(&hub.admin), &math_package());
        assert_eq!((again.status, again.code().as_str()), (409, "version_exists"), "{label}: {}", again.text());
        assert!(again.message().contains("0.1.0"), "{}", again.message());
        // Other bytes, same version (also with build metadata): still refused.
        for version in ["0.1.0", "0.1.0+rebuild"] {
            let other = variant("envhub/math", version, Some("# changed\n"), None);
            let r = hub.publish(Some(&hub.admin), &other);
            assert_eq!(r.status, 409, "{label} {version}: {}", r.text());
        }
        let index = hub.get("/api/v1/packages/envhub/math", &[]).json();
        assert_eq!(index["versions"].as_array().map(Vec::len), Some(1));
    });
}

#[test]
fn a_digest_header_that_does_not_match_is_refused() {
    each_backend(|hub, label| {
        let wrong = format!("sha256:{}", "ab".repeat(32));
        let r = hub.publish_with(Some(&hub.admin), &math_package(), &[("X-Envhub-Digest", &wrong)]);
        assert_eq!((r.status, r.code().as_str()), (400, "digest_mismatch"), "{label}: {}", r.text());
        assert!(r.message().contains(&wrong));
        let r = hub.publish_with(Some(&hub.admin), &math_package(), &[("X-Envhub-Digest", "md5:00")]);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_digest"));
        assert_eq!(hub.get("/api/v1/packages/envhub/math", &[]).status, 404, "nothing was published");
    });
}

#[test]
fn tokens_need_the_scope_the_name_and_time() {
    each_backend(|hub, label| {
        let archive = variant("alice/demo", "1.0.0", None, None);
        // No token, a malformed header, an unknown token: 401.
        let r = hub.publish(None, &archive);
        assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"), "{label}");
        let r = hub.publish(Some("ehub_nonsense"), &archive);
        assert_eq!(r.status, 401, "{label}");
        // Wrong name pattern: 403 naming the name.
        let bob = hub.token("bob", &["publish-new", "publish-update"], &["bob/*"], None);
        let r = hub.publish(Some(&bob), &archive);
        assert_eq!((r.status, r.code().as_str()), (403, "name_not_covered"), "{label}: {}", r.text());
        assert!(r.message().contains("alice/demo"));
        // Missing scope: 403 naming the scope.
        let alice_update_only = hub.token("alice", &["publish-update"], &["alice/*"], None);
        let r = hub.publish(Some(&alice_update_only), &archive);
        assert_eq!((r.status, r.code().as_str()), (403, "missing_scope"), "{label}");
        assert!(r.message().contains("publish-new"));
        // Expired: 403.
        let expired = hub.token("alice", &["publish-new"], &["alice/*"], Some(-1));
        let r = hub.publish(Some(&expired), &archive);
        assert_eq!((r.status, r.code().as_str()), (403, "token_expired"), "{label}");
        // The right token publishes; its login owns the package.
        let alice = hub.token("alice", &["publish-new", "publish-update", "yank", "change-owners"], &["alice/*"], None);
        assert_eq!(hub.publish(Some(&alice), &archive).status, 201, "{label}");
        assert_eq!(hub.get("/api/v1/packages/alice/demo/owners", &[]).json()["owners"], json!(["alice"]));
        // Someone else with every scope on `*` but not an owner: 403.
        let mallory = hub.token("mallory", &["publish-update", "yank"], &["*"], None);
        let r = hub.publish(Some(&mallory), &variant("alice/demo", "1.0.1", None, None));
        assert_eq!((r.status, r.code().as_str()), (403, "not_owner"), "{label}: {}", r.text());
        let r = hub.send("PUT", "/api/v1/packages/alice/demo/1.0.0/yank", Some(&mallory), None);
        assert_eq!((r.status, r.code().as_str()), (403, "not_owner"), "{label}");
        // Only admins create tokens.
        let r = hub.send("POST", "/api/v1/tokens", Some(&alice), Some(json!({"login": "x", "scopes": ["read"]})));
        assert_eq!((r.status, r.code().as_str()), (403, "not_admin"));
        let r = hub.send("POST", "/api/v1/tokens", Some(&hub.admin), Some(json!({"login": "x", "scopes": ["root"]})));
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_scope"));
        // The token's record never shows its hash.
        let me = hub.get("/api/v1/me", &[("Authorization", &format!("Bearer {alice}"))]).json();
        assert_eq!(me["token"]["login"], json!("alice"));
        assert!(me["token"].get("hash").is_none());
        // Revoked tokens are unknown; others' tokens are not yours to revoke.
        let id = me["token"]["id"].as_str().expect("id").to_owned();
        let r = hub.send("DELETE", &format!("/api/v1/tokens/{id}"), Some(&mallory), None);
        assert_eq!((r.status, r.code().as_str()), (403, "not_admin"));
        assert_eq!(hub.send("DELETE", &format!("/api/v1/tokens/{id}"), Some(&alice), None).status, 200);
        assert_eq!(hub.publish(Some(&alice), &variant("alice/demo", "1.0.2", None, None)).status, 401, "{label}");
    });
}

#[test]
fn yanked_versions_are_skipped_by_latest_and_still_download() {
    each_backend(|hub, label| {
        let t = &hub.admin;
        for v in ["0.1.0", "0.2.0"] {
            assert_eq!(hub.publish(Some(t), &variant("envhub/algebra", v, None, None)).status, 201, "{label}");
        }
        let r = hub.send("PUT", "/api/v1/packages/envhub/algebra/0.2.0/yank", Some(t), None);
        assert_eq!(r.status, 200, "{label}: {}", r.text());
        let index = hub.get("/api/v1/packages/envhub/algebra", &[]).json();
        assert_eq!(index["latest"], json!("0.1.0"));
        assert_eq!(index["versions"][1]["yanked"], json!(true));
        let digest = index["versions"][1]["digest"].as_str().expect("digest").to_owned();
        assert_eq!(
            hub.get(&format!("/api/v1/blobs/sha256/{}", &digest[7..]), &[]).status,
            200,
            "yanked still downloads"
        );
        let hits = hub.get("/api/v1/search?q=algebra", &[]).json();
        assert_eq!(hits["packages"][0]["latest"], json!("0.1.0"));
        // Unyank.
        assert_eq!(hub.send("DELETE", "/api/v1/packages/envhub/algebra/0.2.0/yank", Some(t), None).status, 200);
        assert_eq!(hub.get("/api/v1/packages/envhub/algebra", &[]).json()["latest"], json!("0.2.0"));
        // Yanking needs the scope; unknown versions are 404; bad versions 400.
        let no_yank = hub.token("admin", &["publish-update"], &["*"], None);
        let r = hub.send("PUT", "/api/v1/packages/envhub/algebra/0.2.0/yank", Some(&no_yank), None);
        assert_eq!((r.status, r.code().as_str()), (403, "missing_scope"));
        assert_eq!(hub.send("PUT", "/api/v1/packages/envhub/algebra/9.9.9/yank", Some(t), None).status, 404);
        let r = hub.send("PUT", "/api/v1/packages/envhub/algebra/1.0/yank", Some(t), None);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_version"));
    });
}

#[test]
fn owners_can_be_added_and_removed_but_not_all() {
    each_backend(|hub, label| {
        let t = &hub.admin;
        assert_eq!(hub.publish(Some(t), &math_package()).status, 201, "{label}");
        let path = "/api/v1/packages/envhub/math/owners";
        let r = hub.send("PUT", path, Some(t), Some(json!({"logins": ["bob"]})));
        assert_eq!(r.json()["owners"], json!(["admin", "bob"]), "{label}");
        // bob now publishes updates.
        let bob = hub.token("bob", &["publish-update"], &["envhub/*"], None);
        assert_eq!(hub.publish(Some(&bob), &variant("envhub/math", "0.1.1", None, None)).status, 201);
        let r = hub.send("DELETE", path, Some(t), Some(json!({"logins": ["admin"]})));
        assert_eq!(r.json()["owners"], json!(["bob"]));
        let r = hub.send("DELETE", path, Some(t), Some(json!({"logins": ["bob"]})));
        assert_eq!((r.status, r.code().as_str()), (400, "last_owner"));
        let r = hub.send("PUT", path, Some(&bob), Some(json!({"logins": ["eve"]})));
        assert_eq!((r.status, r.code().as_str()), (403, "missing_scope"));
        // Malformed bodies and unknown endpoints answer in the error format too.
        let r = hub.send("PUT", path, Some(t), Some(json!({"users": ["eve"]})));
        assert_eq!((r.status, r.code().as_str()), (422, "invalid_json"), "{}", r.text());
        assert!(r.message().contains("logins"), "{}", r.message());
        let r = hub.get("/api/v1/nothing", &[]);
        assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
        let r = hub.get("/api/v1/search?limit=many", &[]);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_query"));
    });
}

#[test]
fn bad_uploads_are_refused_with_the_reason() {
    each_backend(|hub, label| {
        let t = Some(hub.admin.as_str());
        let r = hub.publish(t, b"this is not a gzip'd tar");
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_package"), "{label}: {}", r.text());
        assert!(r.message().contains("archive"), "{}", r.message());

        // A valid tar.gz without envhub.toml.
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "README.md", &b"hello"[..]).expect("append");
        let no_manifest = tar.into_inner().expect("tar").finish().expect("gz");
        let r = hub.publish(t, &no_manifest);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_package"), "{label}");
        assert!(r.message().contains("envhub.toml"), "{}", r.message());

        // A manifest and a module that is not WebAssembly.
        let bad_wasm = variant("envhub/broken", "0.1.0", None, Some(b"\0asm but not really"));
        let r = hub.publish(t, &bad_wasm);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_module"), "{label}: {}", r.text());

        // An empty body.
        assert_eq!(hub.publish(t, b"").status, 400);
        assert_eq!(hub.get("/api/v1/search?q=", &[]).json()["packages"], json!([]), "{label}: nothing published");
    });
}

#[test]
fn uploads_over_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backends(dir.path()).remove(0);
    let mut cfg = config(&backend, dir.path());
    cfg.max_package_bytes = 100_000;
    let hub = start(cfg);
    let archive = math_package();
    // Declared too large: refused before the body is read.
    let head = format!("Content-Length: {}\r\n", archive.len());
    let reply = raw_publish(&hub, &head, b"");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"too_large\"") && reply.contains("100000"), "{reply}");
    // Streamed (chunked, no length): refused once the limit is passed.
    let mut body = Vec::new();
    for chunk in archive[..150_000].chunks(10_000) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let reply = raw_publish(&hub, "Transfer-Encoding: chunked\r\n", &body);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"too_large\""), "{reply}");
}

/// A publish over a raw connection; the whole reply as text.
fn raw_publish(hub: &TestHub, headers: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = hub.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /api/v1/packages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n{headers}\r\n",
        hub.admin
    );
    stream.write_all(head.as_bytes()).expect("head");
    let _ = stream.write_all(body);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn a_failing_self_test_refuses_the_package() {
    // A module that loads but whose `info` is not valid protocol output.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit (i32.const 3))))"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backends(dir.path()).remove(0);
    let hub = start(config(&backend, dir.path()));
    let wasm = wat.as_bytes();
    let r = hub.publish(Some(&hub.admin), &variant("envhub/bad", "0.1.0", None, Some(wasm)));
    assert_eq!((r.status, r.code().as_str()), (422, "self_test_failed"), "{}", r.text());
    assert_eq!(hub.get("/api/v1/packages/envhub/bad", &[]).status, 404);
}

#[test]
fn search_finds_by_name_and_description() {
    each_backend(|hub, label| {
        let t = Some(hub.admin.as_str());
        assert_eq!(hub.publish(t, &math_package()).status, 201);
        assert_eq!(hub.publish(t, &variant("alice/geometry", "0.3.0", None, None)).status, 201);
        let names = |q: &str| -> Vec<String> {
            hub.get(&format!("/api/v1/search?q={q}"), &[]).json()["packages"]
                .as_array()
                .expect("packages")
                .iter()
                .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(names("geo"), ["alice/geometry"], "{label}");
        assert_eq!(names("envhub%2FMATH"), ["envhub/math"], "{label}: case-insensitive, by name");
        assert_eq!(names("math%20problems"), ["alice/geometry", "envhub/math"], "{label}: by description");
        assert_eq!(names(""), ["alice/geometry", "envhub/math"]);
        assert!(names("word%25problems").is_empty(), "LIKE wildcards are literal");
        assert!(names("zzz").is_empty());
    });
}

#[test]
fn concurrent_publishes_of_one_version_have_one_winner() {
    each_backend(|hub, label| {
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let archive = variant("envhub/race", "1.0.0", Some(&format!("# racer {i}\n")), None);
                    s.spawn(move || hub.publish(Some(&hub.admin), &archive).status)
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{label}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|&&s| s == 409).count(), 5, "{label}: {statuses:?}");
        let index = hub.get("/api/v1/packages/envhub/race", &[]).json();
        assert_eq!(index["versions"].as_array().map(Vec::len), Some(1));
    });
}

#[test]
fn web_pages_show_the_card_versions_and_pull_line() {
    each_backend(|hub, label| {
        let readme = "# Algebra\n\nSolve *linear* equations.\n\n<script>alert('x')</script>\n";
        let archive = variant("envhub/algebra", "0.2.0", Some(readme), None);
        assert_eq!(hub.publish(Some(&hub.admin), &archive).status, 201, "{label}");
        let digest = format!("sha256:{}", sha256_hex(&archive));
        let index = hub.get("/", &[]).text();
        assert!(index.contains("href=\"/packages/envhub/algebra\""), "{index}");
        assert!(index.contains("name=\"q\""));
        let page = hub.get("/packages/envhub/algebra", &[]);
        assert_eq!(page.status, 200);
        let html = page.text();
        assert!(html.contains("<em>linear</em>"), "{html}");
        assert!(!html.contains("<script>"), "raw HTML in the README is escaped: {html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains(&digest));
        assert!(html.contains("envhub pull envhub/algebra@0.2.0"));
        assert!(html.contains("passed"));
        assert_eq!(hub.get("/packages/envhub/none", &[]).status, 404);
        assert!(hub.get("/?q=%3Cb%3E", &[]).text().contains("&lt;b&gt;"), "the query is escaped");
    });
}

#[test]
fn a_private_hub_needs_the_read_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backends(dir.path()).remove(0);
    let mut cfg = config(&backend, dir.path());
    cfg.public_read = false;
    let hub = start(cfg);
    let archive = math_package();
    assert_eq!(hub.publish(Some(&hub.admin), &archive).status, 201);
    let blob = format!("/api/v1/blobs/sha256/{}", sha256_hex(&archive));
    let bearer = |t: &str| format!("Bearer {t}");

    assert_eq!(hub.get("/api/v1/packages/envhub/math", &[]).status, 401);
    assert_eq!(hub.get(&blob, &[]).status, 401);
    assert_eq!(hub.get("/api/v1/search?q=", &[]).status, 401);
    assert_eq!(hub.get("/packages/envhub/math", &[]).status, 401);

    let reader = hub.token("carol", &["read"], &["envhub/*"], None);
    assert_eq!(hub.get("/api/v1/packages/envhub/math", &[("Authorization", &bearer(&reader))]).status, 200);
    assert_eq!(hub.get(&blob, &[("Authorization", &bearer(&reader))]).body, archive);

    let elsewhere = hub.token("carol", &["read"], &["bob/*"], None);
    let r = hub.get("/api/v1/packages/envhub/math", &[("Authorization", &bearer(&elsewhere))]);
    assert_eq!((r.status, r.code().as_str()), (403, "name_not_covered"));

    let writer = hub.token("carol", &["publish-new"], &["envhub/*"], None);
    let r = hub.get(&blob, &[("Authorization", &bearer(&writer))]);
    assert_eq!((r.status, r.code().as_str()), (403, "missing_scope"));
}
