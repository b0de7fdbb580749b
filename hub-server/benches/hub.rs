//! Pulls per second of a 1 MB package from the hub under concurrent load
//! (`wrk` on loopback), against nginx serving the same file in the same run,
//! and publish latency. Run by `scripts/bench-hub.sh` (which installs wrk and
//! nginx); not a timed test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use envhub_hub::{Hub, HubConfig};
use envhub_sandbox::package::{Package, pack};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn math_package() -> Vec<u8> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("envhub/envhub-math-0.1.0.envpkg"));
    }
    candidates.push(workspace().join("target/envhub/envhub-math-0.1.0.envpkg"));
    let path = candidates.iter().find(|p| p.is_file()).expect("the math package: run scripts/build-guests.sh");
    std::fs::read(path).expect("read")
}

/// The math package padded with incompressible data to about `size` bytes.
fn padded(version: &str, size: usize, seed: u64) -> Vec<u8> {
    let base = Package::from_bytes(&math_package()).expect("package");
    let mut manifest = base.manifest.clone();
    manifest.package.name = "bench/padded".parse().expect("name");
    manifest.package.version = version.parse().expect("version");
    let dir = tempfile::tempdir().expect("tempdir");
    envhub_sandbox::package::unpack_data(&base, dir.path()).expect("unpack the data");
    let pad = size.saturating_sub(base.size as usize);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let noise: Vec<u8> = (0..pad)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.path().join("padding.bin"), noise).expect("padding");
    pack(&manifest.to_toml(), &base.module, base.readme.as_deref(), Some(dir.path())).expect("pack")
}

fn wrk(url: &str, seconds: u64, connections: u32) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", url])
        .output()
        .expect("run wrk (scripts/bench-hub.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    if text.contains("Non-2xx") {
        panic!("wrk saw errors:\n{text}");
    }
    rps
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: u32 = std::env::var("BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (addr, admin) = rt.block_on(async {
        let hub = Hub::open(HubConfig::embedded(&dir.path().join("hub"))).await.expect("hub");
        let admin = hub.new_admin_token().expect("admin").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(hub.serve(listener));
        (addr, admin)
    });
    let base = format!("http://{addr}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();

    // Publish latency (each publish includes the sandboxed self-test).
    let mut latencies = Vec::new();
    let mut archive = Vec::new();
    for i in 0..5 {
        archive = padded(&format!("1.0.{i}"), 1 << 20, i);
        let t = Instant::now();
        let r = agent
            .post(format!("{base}/api/v1/packages"))
            .header("Authorization", format!("Bearer {admin}"))
            .send(&archive[..])
            .expect("publish");
        assert_eq!(r.status().as_u16(), 201, "publish failed");
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let hex = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&archive))
    };

    // nginx serving the same file.
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("logs")).expect("www");
    std::fs::write(www.join("pkg.envpkg"), &archive).expect("file");
    let nginx_port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes auto; pid {w}/nginx.pid; error_log {w}/logs/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n\
               client_body_temp_path {w}/tmp; proxy_temp_path {w}/tmp; fastcgi_temp_path {w}/tmp; uwsgi_temp_path {w}/tmp; scgi_temp_path {w}/tmp;\n\
               server {{ listen 127.0.0.1:{nginx_port}; root {w}; }} }}\n",
            w = www.display()
        ),
    )
    .expect("nginx.conf");
    let mut nginx = Command::new("nginx")
        .args(["-c", &conf.display().to_string(), "-p", &www.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx (scripts/bench-hub.sh installs it)");
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/pkg.envpkg");
    for _ in 0..100 {
        if agent.get(&nginx_url).call().is_ok_and(|r| r.status().as_u16() == 200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let hub_url = format!("{base}/api/v1/blobs/sha256/{hex}");
    let hub_rps = wrk(&hub_url, seconds, connections);
    let nginx_rps = wrk(&nginx_url, seconds, connections);
    let _ = nginx.kill();
    let _ = nginx.wait();

    let mb = archive.len() as f64 / 1e6;
    println!("package: {} bytes; wrk -t2 -c{connections} -d{seconds}s on loopback", archive.len());
    println!("hub   pulls/s: {hub_rps:>9.1}  ({:.0} MB/s)", hub_rps * mb);
    println!("nginx pulls/s: {nginx_rps:>9.1}  ({:.0} MB/s)", nginx_rps * mb);
    println!("hub / nginx:   {:>9.2}x  (target >= 0.5x)", hub_rps / nginx_rps);
    println!(
        "publish latency (1 MB, incl. sandboxed self-test): median {:.0} ms, min {:.0} ms, max {:.0} ms",
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies[0].as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
    );
}
