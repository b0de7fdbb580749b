//! A guest that misbehaves on request, for the sandbox's hostile-module tests.
//!
//! Its stdin is `{"mode": "..."}`; most modes never answer properly.

use std::io::{Read, Write};

fn respond(body: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{{\"ok\":{body}}}").as_bytes());
    let _ = out.flush();
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 { 0 } else { 1 + recurse(std::hint::black_box(n - 1)) }
}

fn outcome<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "\"allowed\"".to_owned(),
        Err(e) => json_str(&format!("denied: {e}")),
    }
}

fn main() {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let mode = input.split("\"mode\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("");
    match mode {
        "ok" => respond("{\"fine\":true}"),
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut v: Vec<u8> = Vec::new();
            // Rust caps one allocation at isize::MAX: 2 GiB on wasm32.
            v.resize(0x7FFF_0000, 1);
            respond(&format!("{}", v.len()));
        }
        "alloc_chunks" => {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            loop {
                chunks.push(vec![1u8; 16 << 20]);
            }
        }
        "recurse" => respond(&format!("{}", recurse(std::hint::black_box(u64::MAX)))),
        "read_passwd" => respond(&outcome(std::fs::read("/etc/passwd"))),
        "read_escape" => respond(&outcome(std::fs::read("/data/../../etc/passwd"))),
        "read_data" => match std::fs::read_to_string("/data/hello.txt") {
            Ok(s) => respond(&json_str(&s)),
            Err(e) => respond(&json_str(&format!("error: {e}"))),
        },
        "write_data" => respond(&outcome(std::fs::write("/data/new.txt", b"x"))),
        "flood" => {
            let line = vec![b'x'; 1 << 20];
            let mut out = std::io::stdout().lock();
            for _ in 0..100 {
                if out.write_all(&line).is_err() {
                    break;
                }
            }
        }
        "flood_stderr" => {
            for _ in 0..1_000_000 {
                eprintln!("noise noise noise noise noise noise");
            }
        }
        "garbage" => print!("this is not json"),
        "nothing" => {}
        "panic" => panic!("the guest gave up"),
        "exit" => std::process::exit(3),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(30));
            respond("\"slept\"");
        }
        "clock" => {
            use std::hash::BuildHasher;
            let wall =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let hashed = std::collections::hash_map::RandomState::new().hash_one(42u64);
            let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            let args = std::env::args().count();
            respond(&format!(
                "{{\"wall\":{wall},\"random\":{hashed},\"env\":{},\"args\":{args},\"input\":{}}}",
                env.len(),
                json_str(&input)
            ));
        }
        // A protocol `info` (no mode), so hosts that load environments by
        // their `info` (the Python package, the servers) can load this guest.
        "" if input.contains("\"op\":\"info\"") => respond(
            "{\"name\":\"test/hostile\",\"version\":\"0.1.0\",\"splits\":{\"modes\":null},\"max_turns\":1,\"reward_components\":[{\"name\":\"ok\",\"weight\":1.0}]}",
        ),
        other => respond(&json_str(&format!("unknown mode {other}"))),
    }
}
