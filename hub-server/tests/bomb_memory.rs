//! Gzip bombs against the hub's memory, alone in this test binary so the
//! process's peak resident set is the hub's own.
//!
//! Each upload is a valid package (the math module) whose data file inflates
//! from under a megabyte to half a gigabyte. Held in memory, four at once
//! would take 2 GiB; streamed to disk they take what the buffers take.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use common::*;

/// Writes a package to `path` whose `data/zeros.bin` is `size` zero bytes,
/// streamed (never held), with the math package's manifest at `version`.
fn write_bomb(path: &Path, version: &str, size: u64) {
    let math = envhub_sandbox::package::Package::from_bytes(&math_package()).expect("math package");
    let mut manifest = math.manifest.clone();
    manifest.package.name = "mallory/bomb".parse().expect("name");
    manifest.package.version = version.parse().expect("version");
    let text = manifest.to_toml();
    let file = std::fs::File::create(path).expect("create");
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut append = |name: &str, size: u64, reader: &mut dyn Read| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, reader).expect("append");
    };
    append("envhub.toml", text.len() as u64, &mut text.as_bytes());
    append("module.wasm", math.module.len() as u64, &mut math.module.as_slice());
    append("data/zeros.bin", size, &mut std::io::repeat(0).take(size));
    tar.into_inner().expect("tar").finish().expect("gzip").flush().expect("flush");
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

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
    let bombs: Vec<Vec<u8>> = (0..UPLOADS)
        .map(|i| {
            let path = dir.path().join(format!("bomb-{i}.envpkg"));
            write_bomb(&path, &format!("0.1.{i}"), BOMB);
            std::fs::read(&path).expect("read the bomb")
        })
        .collect();
    assert!(bombs[0].len() < 16 << 20, "the bomb is {} bytes compressed", bombs[0].len());

    // Measure from here: the peak resident set since this point.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (Linux 4.0+)");
    let before = status_kib("VmHWM:");
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
    let grown_mib = status_kib("VmHWM:").saturating_sub(before) / 1024;
    println!("peak RSS grew by {grown_mib} MiB for {UPLOADS} concurrent uploads inflating to {} MiB each", BOMB >> 20);
    assert!(grown_mib < 256, "the hub's peak RSS grew by {grown_mib} MiB");
    // The unpacked data goes away with the checks.
    assert_emptied(&dir.path().join("work/check-data"));
}
