//! The soak and fault suite. For a fixed time (`ENVHUB_SOAK_SECONDS`,
//! default 20) a hub process, on loopback only, takes honest publishers and
//! readers alongside eight hostile uploaders (gzip bombs, self-tests that
//! spin to their budget, malformed and truncated archives, uploads under a
//! read-only token). Then it is killed (SIGKILL) mid-publish and restarted.
//!
//! It prints the read latencies under attack and the hub's peak RSS, and
//! checks that the hub stayed under 512 MiB, that every read was answered,
//! and that every publish it acknowledged survived the kill, whole.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The hostile uploads, one of each kind, and the token each goes with.
fn hostile_uploads(admin_of_mallory: &str, reader: &str) -> Vec<(&'static str, Vec<u8>, String)> {
    // A module that spins forever in its first call: the self-test runs
    // until its whole budget is spent.
    let spin = br#"(module
        (memory (export "memory") 1)
        (func (export "_start") (loop $l (br $l))))"#;
    let math = math_package();
    let mallory = admin_of_mallory.to_owned();
    vec![
        ("bomb", bomb("mallory/bomb", "0.1.0", 256 << 20), mallory.clone()),
        ("spin", variant("mallory/spin", "0.1.0", None, Some(spin)), mallory.clone()),
        ("truncated", math[..math.len() / 2].to_vec(), mallory.clone()),
        ("garbage", (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(), mallory.clone()),
        ("read-only", bomb("mallory/ro", "0.1.0", 256 << 20), reader.to_owned()),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[test]
fn under_attack_then_killed_the_hub_keeps_every_acknowledged_publish() {
    let seconds: u64 = std::env::var("ENVHUB_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hub");
    let storage = envhub_hub::StorageConfig::Embedded { dir: data.clone() };
    // Rates are limited per address and every client here is 127.0.0.1,
    // so the limit is off (it is tested on its own); the budgets are small
    // so spinning uploads come round often.
    let flags = [
        "--max-concurrent-publishes",
        "2",
        "--rate-limit",
        "0",
        "--self-test-fuel",
        "3000000000",
        "--self-test-seconds",
        "10",
    ];
    let server = spawn(&data, &storage, &flags);
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token").trim().to_owned();
    let hub = Arc::new(hub_at(&server.url, &admin));
    let math = math_package();
    assert_eq!(hub.publish(Some(&admin), &math).status, 201);
    let math_blob = format!("/api/v1/blobs/sha256/{}", sha256_hex(&math));
    let mallory = hub.token("mallory", &["publish-new"], &["mallory/*"], None);
    let reader = hub.token("mallory", &["read"], &["*"], None);
    let alice = hub.token("alice", &["publish-new", "publish-update"], &["alice/*"], None);

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut threads = Vec::new();

    // Eight hostile uploaders, each going round the kinds from its own start.
    let kinds = Arc::new(hostile_uploads(&mallory, &reader));
    let hostile_answers = Arc::new(Mutex::new(std::collections::BTreeMap::<String, usize>::new()));
    for n in 0..8 {
        let (hub, kinds, stop, answers) = (hub.clone(), kinds.clone(), stop.clone(), hostile_answers.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = n;
            while !stop.load(Ordering::Relaxed) {
                let (kind, bytes, token) = &kinds[i % kinds.len()];
                let r = hub.publish(Some(token), bytes);
                assert!(r.status != 201 || *kind == "bomb", "a hostile {kind} upload was accepted: {}", r.text());
                assert!(r.status < 500 || r.status == 503, "{kind}: {} {}", r.status, r.text());
                if let Ok(mut a) = answers.lock() {
                    *a.entry(format!("{kind} {}", r.status)).or_default() += 1;
                }
                i += 1;
            }
        }));
    }
    // Two honest publishers; what the hub acknowledges must survive.
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String, String)>::new()));
    for p in 0..2 {
        let (hub, stop, acked, alice) = (hub.clone(), stop.clone(), acknowledged.clone(), alice.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (name, version) = (format!("alice/honest-{p}"), format!("0.1.{n}"));
                let archive = variant(&name, &version, None, None);
                let r = hub.publish(Some(&alice), &archive);
                match r.status {
                    201 => {
                        acked.lock().expect("acks").push((name, version, sha256_hex(&archive)));
                        n += 1;
                    }
                    503 => std::thread::sleep(Duration::from_millis(200)),
                    other => panic!("an honest publish got {other}: {}", r.text()),
                }
            }
        }));
    }
    // Four readers, timing every answer.
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    for r in 0..4 {
        let (hub, stop, lat, blob) = (hub.clone(), stop.clone(), latencies.clone(), math_blob.clone());
        threads.push(std::thread::spawn(move || {
            let paths = ["/api/v1/packages/envhub/math", "/api/v1/search?q=alice", blob.as_str(), "/"];
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                let path = paths[i % paths.len()];
                let started = Instant::now();
                let reply = hub.get(path, &[]);
                let took = started.elapsed();
                assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
                lat.lock().expect("latencies").push(took);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a soak thread failed");
    }
    let peak_mib = status_kib(&server.child.id().to_string(), "VmHWM:") / 1024;
    let mut lat = latencies.lock().expect("latencies").clone();
    lat.sort();
    let acked = acknowledged.lock().expect("acks").clone();
    let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
    println!(
        "soak {seconds} s, 8 hostile uploaders: {} reads, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; hub peak RSS {peak_mib} MiB; {} honest publishes acknowledged; hostile answers {:?}",
        lat.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        acked.len(),
        hostile_answers.lock().expect("answers"),
    );
    if p99 > Duration::from_millis(100) {
        println!("note: read p99 is over the 100 ms target on this machine");
    }
    assert!(peak_mib < 512, "the hub's peak RSS was {peak_mib} MiB under attack");
    assert!(!lat.is_empty() && !acked.is_empty(), "the soak did no work");
    // A hang, not noise: no read may take seconds.
    assert!(p99 < Duration::from_secs(2), "read p99 {p99:?}");

    // Killed mid-publish: what was acknowledged stays, whole.
    let mut server = server;
    let last = variant("alice/killed", "0.1.0", None, None);
    let _conn = partial_upload(&server.url, &alice, &last, last.len());
    std::thread::sleep(Duration::from_millis(30));
    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
    drop(server);
    let server = spawn(&data, &storage, &flags);
    let hub = hub_at(&server.url, &admin);
    for (name, version, hex) in &acked {
        let index = hub.get(&format!("/api/v1/packages/{name}"), &[]);
        assert_eq!(index.status, 200, "{name} is gone after the kill");
        let listed = index.json()["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .any(|v| v["version"] == version.as_str() && v["digest"] == format!("sha256:{hex}").as_str());
        assert!(listed, "{name} {version} is gone after the kill");
        let blob = hub.get(&format!("/api/v1/blobs/sha256/{hex}"), &[]);
        assert_eq!(sha256_hex(&blob.body), *hex, "{name} {version}'s blob is damaged");
    }
    let killed = hub.get("/api/v1/packages/alice/killed", &[]);
    assert!(killed.status == 404 || killed.status == 200, "{}", killed.text());
    if killed.status == 200 {
        assert_eq!(hub.get(&format!("/api/v1/blobs/sha256/{}", sha256_hex(&last)), &[]).body, last);
    }
    // Nothing the attack or the kill left blocks the next honest publish.
    let r = hub.publish(Some(&alice), &variant("alice/after", "0.1.0", None, None));
    assert_eq!(r.status, 201, "{}", r.text());
}
