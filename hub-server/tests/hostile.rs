//! The hub against hostile clients: uploads refused before they are read,
//! bounded publishes, budgets, cleanup, private reads, rate limits, caps.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use envhub_hub::{HubConfig, RateLimit};
use serde_json::json;

/// A hub on the embedded backend with work files (and its module cache)
/// under `dir`, configured by `adjust`.
fn hub_with(dir: &Path, adjust: impl FnOnce(&mut HubConfig)) -> TestHub {
    let backend = backends(dir).remove(0);
    let mut cfg = config(&backend, dir);
    cfg.module_cache_dir = Some(dir.join("modules"));
    adjust(&mut cfg);
    start(cfg)
}

/// Opens a publish over a raw connection: sends the headers (announcing
/// `length` bytes) and `first` bytes of body, and leaves the rest unsent.
fn stalled_publish(hub: &TestHub, token: &str, length: usize, first: &[u8]) -> std::net::TcpStream {
    let addr = hub.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /api/v1/packages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(first).expect("first bytes");
    stream
}

/// The status line of what the hub answers on `stream`, within `wait`.
fn status_line(stream: &mut std::net::TcpStream, wait: Duration) -> String {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&reply).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_token_without_the_publish_scope_is_refused_before_its_upload_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    let reader = hub.token("mallory", &["read"], &["*"], None);
    // The client announces 60 MB and sends none of it: the answer comes at
    // once, without waiting for (or storing) the body.
    let started = Instant::now();
    let mut stream = stalled_publish(&hub, &reader, 60 << 20, b"");
    let line = status_line(&mut stream, Duration::from_secs(8));
    assert!(line.contains(" 403 "), "{line}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    assert!(files_under(&dir.path().join("work/uploads")).is_empty());
    // A whole archive under that token: the same 403, and nothing kept.
    let r = hub.publish(Some(&reader), &math_package());
    assert_eq!((r.status, r.code().as_str()), (403, "missing_scope"), "{}", r.text());
    assert_eq!(hub.get("/api/v1/packages/envhub/math", &[]).status, 404);
    // No token at all: 401, also before reading.
    let r = hub.publish(None, &math_package());
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn a_full_hub_answers_busy_with_retry_after_and_frees_the_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| {
        c.max_concurrent_uploads = 1;
        c.publish_wait = Duration::from_millis(200);
    });
    let archive = math_package();
    // One upload takes the only upload slot and stalls half-way.
    let holder = stalled_publish(&hub, &hub.admin, archive.len(), &archive[..archive.len() / 2]);
    std::thread::sleep(Duration::from_millis(300));
    let busy = hub.publish(Some(&hub.admin), &variant("envhub/other", "0.1.0", None, None));
    assert_eq!((busy.status, busy.code().as_str()), (503, "busy"), "{}", busy.text());
    assert!(busy.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n > 0)));
    // The stalled upload goes away; its slot is free again.
    drop(holder);
    let mut accepted = 0;
    for _ in 0..50 {
        let r = hub.publish(Some(&hub.admin), &variant("envhub/other", "0.1.0", None, None));
        if r.status == 201 {
            accepted += 1;
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(accepted, 1);
}

#[test]
fn uploads_still_arriving_hold_no_check_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| {
        c.max_concurrent_publishes = 1;
        c.publish_wait = Duration::from_millis(200);
    });
    let archive = math_package();
    // Three clients trickle their uploads; the one check slot stays free.
    let trickling: Vec<_> = (0..3).map(|_| stalled_publish(&hub, &hub.admin, archive.len(), &archive[..10])).collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = hub.publish(Some(&hub.admin), &archive);
    assert_eq!(r.status, 201, "{}", r.text());
    drop(trickling);
}

#[test]
fn one_client_may_have_only_so_many_uploads_in_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| c.uploads_per_address = 2);
    let archive = math_package();
    let first = stalled_publish(&hub, &hub.admin, archive.len(), &archive[..10]);
    let _second = stalled_publish(&hub, &hub.admin, archive.len(), &archive[..10]);
    std::thread::sleep(Duration::from_millis(300));
    let r = hub.publish(Some(&hub.admin), &archive);
    assert_eq!((r.status, r.code().as_str()), (429, "too_many_uploads"), "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // One of the two goes away: this client may upload again.
    drop(first);
    let mut status = 0;
    for _ in 0..50 {
        status = hub.publish(Some(&hub.admin), &archive).status;
        if status != 429 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 201);
}

#[test]
fn an_upload_its_token_may_not_publish_is_refused_before_anything_is_unpacked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    // alice may publish new names under alice/ only; mallory's name, and a
    // new version of a name she does not own, are refused from the manifest.
    let alice = hub.token("alice", &["publish-new", "publish-update"], &["alice/*"], None);
    let r = hub.publish(Some(&alice), &bomb("mallory/bomb", "0.1.0", 64 << 20));
    assert_eq!((r.status, r.code().as_str()), (403, "name_not_covered"), "{}", r.text());
    // Nothing was unpacked for it: the hub has not even made its check dir.
    assert!(!dir.path().join("work/check-data").exists());
    assert_emptied(&dir.path().join("work/uploads"));
    assert_eq!(hub.publish(Some(&hub.admin), &variant("envhub/owned", "0.1.0", None, None)).status, 201);
    let anyone = hub.token("alice", &["publish-new", "publish-update"], &["*"], None);
    let r = hub.publish(Some(&anyone), &bomb("envhub/owned", "0.2.0", 64 << 20));
    assert_eq!((r.status, r.code().as_str()), (403, "not_owner"), "{}", r.text());
    // A version already taken, also from the manifest.
    let r = hub.publish(Some(&hub.admin), &bomb("envhub/owned", "0.1.0", 64 << 20));
    assert_eq!((r.status, r.code().as_str()), (409, "version_exists"), "{}", r.text());
    assert!(files_under(&dir.path().join("work/check-data")).is_empty());
}

#[test]
fn an_upload_that_stalls_is_dropped_with_408_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| {
        c.max_concurrent_publishes = 1;
        c.upload_idle_timeout = Duration::from_secs(1);
    });
    let archive = math_package();
    let mut stream = stalled_publish(&hub, &hub.admin, archive.len(), &archive[..1000]);
    let line = status_line(&mut stream, Duration::from_secs(10));
    assert!(line.contains(" 408 "), "{line}");
    assert!(files_under(&dir.path().join("work/uploads")).is_empty());
    // The slot it held is free.
    assert_eq!(hub.publish(Some(&hub.admin), &archive).status, 201);
}

#[test]
fn a_self_test_over_its_budget_is_refused_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| c.self_test_fuel = 20_000);
    let r = hub.publish(Some(&hub.admin), &math_package());
    assert_eq!((r.status, r.code().as_str()), (422, "self_test_failed"), "{}", r.text());
    assert!(r.message().contains("budget"), "{}", r.message());
    assert_eq!(hub.get("/api/v1/packages/envhub/math", &[]).status, 404);
    for left in ["work/uploads", "work/check-data", "modules"] {
        assert_emptied(&dir.path().join(left));
    }
}

#[test]
fn an_accepted_publish_leaves_only_what_the_hub_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    assert_eq!(hub.publish(Some(&hub.admin), &math_package()).status, 201);
    for left in ["work/uploads", "work/check-data", "modules"] {
        assert_emptied(&dir.path().join(left));
    }
}

#[test]
fn a_private_hub_shows_each_reader_only_the_names_it_covers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| c.public_read = false);
    let math = math_package();
    let geometry = variant("alice/geometry", "0.3.0", None, None);
    assert_eq!(hub.publish(Some(&hub.admin), &math).status, 201);
    assert_eq!(hub.publish(Some(&hub.admin), &geometry).status, 201);
    let alice = format!("Bearer {}", hub.token("alice", &["read"], &["alice/*"], None));
    let auth = [("Authorization", alice.as_str())];
    let head = |path: &str, headers: &[(&str, &str)]| -> u16 {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut call = agent.head(format!("{}{path}", hub.url));
        for (k, v) in headers {
            call = call.header(*k, *v);
        }
        call.call().expect("HEAD").status().as_u16()
    };
    let math_blob = format!("/api/v1/blobs/sha256/{}", sha256_hex(&math));
    let geometry_blob = format!("/api/v1/blobs/sha256/{}", sha256_hex(&geometry));
    // Anonymous HEADs are refused like GETs.
    for path in ["/api/v1/packages/alice/geometry", geometry_blob.as_str(), "/api/v1/search?q=", "/"] {
        assert_eq!(head(path, &[]), 401, "HEAD {path}");
    }
    // Alice reads her names, by GET and HEAD, index and blob...
    assert_eq!(head("/api/v1/packages/alice/geometry", &auth), 200);
    assert_eq!(hub.get(&geometry_blob, &auth).body, geometry);
    assert_eq!(head(&geometry_blob, &auth), 200);
    // ...and nothing of another's, not even by digest.
    assert_eq!(head("/api/v1/packages/envhub/math", &auth), 403);
    assert_eq!(hub.get(&math_blob, &auth).status, 403);
    assert_eq!(head(&math_blob, &auth), 403);
    assert_eq!(hub.get("/packages/envhub/math", &auth).status, 403);
    // Search and the web index list only what she may read.
    let names: Vec<String> = hub.get("/api/v1/search?q=", &auth).json()["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, vec!["alice/geometry".to_owned()]);
    let page = hub.get("/", &auth).text();
    assert!(page.contains("alice/geometry") && !page.contains("envhub/math"), "{page}");
}

#[test]
fn revoking_a_token_needs_its_owner_or_the_revoke_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    let create = |login: &str, scopes: &[&str]| {
        let body = json!({"login": login, "scopes": scopes, "patterns": ["*"]});
        let r = hub.send("POST", "/api/v1/tokens", Some(&hub.admin), Some(body));
        assert_eq!(r.status, 201, "{}", r.text());
        let v = r.json();
        (v["token"].as_str().expect("secret").to_owned(), v["record"]["id"].as_str().expect("id").to_owned())
    };
    let (alice, _) = create("alice", &["publish-new"]);
    let (alice_ci, alice_ci_id) = create("alice", &["read"]);
    let (bob, bob_id) = create("bob", &["publish-new", "revoke-tokens"]);
    let revoke = |who: &str, id: &str| hub.send("DELETE", &format!("/api/v1/tokens/{id}"), Some(who), None);
    // Another login's token: never, even with the scope.
    assert_eq!(revoke(&bob, &alice_ci_id).status, 403);
    // One's own other token: only with revoke-tokens.
    let r = revoke(&alice, &alice_ci_id);
    assert_eq!((r.status, r.code().as_str()), (403, "missing_scope"), "{}", r.text());
    assert_eq!(hub.get("/api/v1/me", &[("Authorization", &format!("Bearer {alice_ci}"))]).status, 200);
    // A token may always revoke itself; the admin may revoke any.
    assert_eq!(revoke(&alice_ci, &alice_ci_id).status, 200);
    assert_eq!(hub.get("/api/v1/me", &[("Authorization", &format!("Bearer {alice_ci}"))]).status, 401);
    assert_eq!(revoke(&hub.admin, &bob_id).status, 200);
    assert_eq!(hub.get("/api/v1/me", &[("Authorization", &format!("Bearer {bob}"))]).status, 401);
}

#[test]
fn the_admin_token_file_is_narrowed_to_its_owner_on_every_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    let file = hub.config.work_dir.join(envhub_hub::ADMIN_TOKEN_FILE);
    let mode = |p: &Path| std::fs::metadata(p).expect("token file").permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(std::fs::read_to_string(&file).expect("read").trim(), hub.admin);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let again = tokio::runtime::Runtime::new().expect("runtime").block_on(envhub_hub::Hub::open(hub.config.clone()));
    let again = again.expect("reopen");
    assert_eq!(again.new_admin_token(), None, "a second start creates no token");
    assert_eq!(mode(&file), 0o600);
}

#[test]
fn search_is_paged_and_its_limit_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    for name in ["a/one", "a/two", "a/three"] {
        assert_eq!(hub.publish(Some(&hub.admin), &variant(name, "0.1.0", None, None)).status, 201);
    }
    let names = |query: &str| -> Vec<String> {
        hub.get(&format!("/api/v1/search?{query}"), &[]).json()["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names("q=a/&limit=2"), ["a/one", "a/three"]);
    assert_eq!(names("q=a/&limit=2&offset=2"), ["a/two"]);
    assert_eq!(names("q=a/&limit=2&offset=3"), Vec::<String>::new());
    let r = hub.get("/api/v1/search?q=a/&limit=1000000", &[]).json();
    assert_eq!(r["limit"], json!(envhub_hub::api::MAX_SEARCH_LIMIT));
    let long = "x".repeat(5000);
    let r = hub.get(&format!("/api/v1/search?q={long}"), &[]);
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn readmes_and_descriptions_over_their_caps_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |_| {});
    let readme = "# big\n".repeat(envhub_sandbox::package::MAX_README_BYTES / 6 + 10);
    let r = hub.publish(Some(&hub.admin), &variant("envhub/big", "0.1.0", Some(&readme), None));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_package"), "{}", r.text());
    assert!(r.message().contains("README"), "{}", r.message());

    let package = envhub_sandbox::package::Package::from_bytes(&math_package()).expect("package");
    let mut manifest = package.manifest.clone();
    manifest.package.description = "d".repeat(envhub_sandbox::package::MAX_DESCRIPTION_BYTES + 1);
    let text = manifest.to_toml();
    // Packing refuses it already; a hand-made archive is refused by the hub.
    assert!(envhub_sandbox::package::pack(&text, &package.module, None, None).is_err());
    let archive = raw_archive(&[("envhub.toml", text.as_bytes()), ("module.wasm", &package.module)]);
    let r = hub.publish(Some(&hub.admin), &archive);
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_package"), "{}", r.text());
    assert!(r.message().contains("description"), "{}", r.message());
}

#[test]
fn a_client_over_its_rate_is_told_when_to_come_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| c.rate_limit = RateLimit::new(1, 5));
    for _ in 0..5 {
        assert_eq!(hub.get("/api/v1/search?q=", &[]).status, 200);
    }
    let r = hub.get("/api/v1/search?q=", &[]);
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"), "{}", r.text());
    assert!(r.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| (1..=2).contains(&n))));
    // Made-up tokens do not buy a new allowance: the address is still limited.
    let r = hub.get("/api/v1/search?q=", &[("Authorization", "Bearer made-up")]);
    assert_eq!(r.status, 429);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(hub.get("/api/v1/search?q=", &[]).status, 200);
}

#[test]
fn a_request_not_answered_within_the_deadline_gets_503_but_a_publish_has_its_own() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub_with(dir.path(), |c| c.request_timeout = Duration::from_secs(1));
    let envhub_hub::StorageConfig::Embedded { dir: data } = &hub.config.storage else { panic!("embedded storage") };
    // Another process holds the database's write lock: a token creation
    // waits on SQLite's busy timeout (5 s), past the hub's deadline.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let url = format!("sqlite://{}", data.join("hub.db").display());
    let mut holder = rt.block_on(sqlx::SqliteConnection::connect(&url)).expect("a second connection");
    rt.block_on(sqlx::query("BEGIN IMMEDIATE").execute(&mut holder)).expect("take the write lock");
    let body = json!({"login": "bob", "scopes": ["read"], "patterns": ["*"]});
    let started = Instant::now();
    let r = hub.send("POST", "/api/v1/tokens", Some(&hub.admin), Some(body.clone()));
    assert_eq!((r.status, r.code().as_str()), (503, "timeout"), "{}", r.text());
    assert!(r.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n > 0)));
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
    // Reads go on meanwhile (WAL), and a publish, bounded by its own
    // deadlines, is not cut off at the request deadline.
    assert_eq!(hub.get("/api/v1/search?q=x", &[]).status, 200);
    rt.block_on(sqlx::query("ROLLBACK").execute(&mut holder)).expect("release");
    assert_eq!(hub.send("POST", "/api/v1/tokens", Some(&hub.admin), Some(body)).status, 201);
    let r = hub.publish(Some(&hub.admin), &math_package());
    assert_eq!(r.status, 201, "{}", r.text());
}
