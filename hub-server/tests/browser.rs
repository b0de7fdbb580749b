//! The web pages in headless Chromium: a screenshot that is a real picture,
//! and the rendered DOM holding the README text, the digest and the pull line.
//! Skipped with a loud message when Chromium is absent, except in CI
//! (`CI` set), where `scripts/ci-services.sh` installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENVHUB_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn run_chromium(chromium: &Path, profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1200,900",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd.args(extra).arg(url);
    cmd.output().expect("run chromium")
}

#[test]
fn the_environment_page_renders_in_chromium() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed: scripts/ci-services.sh installs it in CI");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: chromium is not installed (apt-get install chromium) — the web pages were NOT tested in a browser !!!!!!!!\n"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backends(dir.path()).remove(0);
    let hub = start(config(&backend, dir.path()));
    let archive = math_package();
    let r = hub.publish(Some(&hub.admin), &archive);
    assert_eq!(r.status, 201, "{}", r.text());
    let digest = format!("sha256:{}", sha256_hex(&archive));
    let url = format!("{}/packages/envhub/math", hub.url);

    let shot = std::env::var_os("ENVHUB_SCREENSHOT").map_or_else(|| dir.path().join("page.png"), PathBuf::from);
    let out =
        run_chromium(&chromium, &dir.path().join("profile-1"), &[&format!("--screenshot={}", shot.display())], &url);
    assert!(shot.is_file(), "no screenshot; chromium said: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("read png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 20_000, "the screenshot is suspiciously small ({} bytes): a blank page?", png.len());

    let out = run_chromium(&chromium, &dir.path().join("profile-2"), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Math problems whose answers are checked exactly"), "README text missing: {dom}");
    assert!(dom.contains(&digest), "digest missing");
    assert!(dom.contains("envhub pull envhub/math@0.1.0"), "pull line missing");
    assert!(dom.contains("passed"), "self-test result missing");

    let out = run_chromium(&chromium, &dir.path().join("profile-3"), &["--dump-dom"], &format!("{}/?q=math", hub.url));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("href=\"/packages/envhub/math\""), "search results missing: {dom}");
}
