//! Gzip bombs against the hub's memory, alone in this test binary so the
//! process's peak resident set is the hub's own.
//!
//! Each upload is a valid package (the math module) whose data file inflates
//! from under a megabyte to half a gigabyte. Held in memory, four at once
//! would take 2 GiB; streamed to disk they take what the buffers take.

mod common;

use common::*;

#[test]
fn concurrent_gzip_bombs_are_unpacked_to_disk_not_memory() {
    const BOMB: u64 = 512 << 20;
    const UPLOADS: usize = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backends(dir.path()).remove(0);
    let mut cfg = config(&backend, dir.path());
    cfg.module_cache_dir = Some(dir.path().join("modules"));
    cfg.max_concurrent_publishes = UPLOADS;
    cfg.rate_limit = None;
    let hub = std::sync::Arc::new(start(cfg));
    let bombs: Vec<Vec<u8>> = (0..UPLOADS).map(|i| bomb("mallory/bomb", &format!("0.1.{i}"), BOMB)).collect();
    assert!(bombs[0].len() < 16 << 20, "the bomb is {} bytes compressed", bombs[0].len());

    // Measure from here: the peak resident set since this point.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (Linux 4.0+)");
    let before = status_kib("self", "VmHWM:");
    let handles: Vec<_> = bombs
        .into_iter()
        .map(|bomb| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let r = hub.publish(Some(&hub.admin), &bomb);
                (r.status, r.text())
            })
        })
        .collect();
    for h in handles {
        let (status, text) = h.join().expect("upload thread");
        assert_eq!(status, 201, "{text}");
    }
    let grown_mib = status_kib("self", "VmHWM:").saturating_sub(before) / 1024;
    println!("peak RSS grew by {grown_mib} MiB for {UPLOADS} concurrent uploads inflating to {} MiB each", BOMB >> 20);
    assert!(grown_mib < 256, "the hub's peak RSS grew by {grown_mib} MiB");
    // The unpacked data goes away with the checks.
    assert_emptied(&dir.path().join("work/check-data"));
}
