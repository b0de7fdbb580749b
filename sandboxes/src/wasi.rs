//! The deterministic WASI world a guest sees: fixed clocks, a random stream
//! seeded by the request, stdin holding the request, capped stdout/stderr, no
//! environment, no arguments, no network and at most a read-only `/data`.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use envhub_sdk::Rng;
use sha2::{Digest, Sha256};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::SandboxError;

/// Seconds since the Unix epoch that the guest's wall clock always reads:
/// 2000-01-01T00:00:00Z.
pub const FIXED_WALL_CLOCK_SECS: u64 = 946_684_800;

pub(crate) struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(FIXED_WALL_CLOCK_SECS)
    }
}

pub(crate) struct FixedMonotonicClock;

impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// WASI's random source for one call, seeded from the request bytes.
pub(crate) struct SeededRandom(Rng);

impl SeededRandom {
    /// A random source drawing from `rng`.
    pub(crate) fn new(rng: Rng) -> Self {
        SeededRandom(rng)
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u64() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

/// The seed of a call's random stream: a hash of the whole request, so the
/// stream follows the request's `seed` field and nothing else.
pub(crate) fn request_seed(request: &[u8]) -> [u8; 32] {
    Sha256::digest(request).into()
}

/// The guest's stdio pipes, kept by the host to read after the call.
pub(crate) struct Stdio {
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

/// Builds the WASI context of one call. Pipes get one byte more than the
/// limit, so a full pipe means the guest tried to write past the limit.
pub(crate) fn context(
    request: &[u8],
    stdout_limit: u64,
    stderr_limit: u64,
    data_dir: Option<&Path>,
) -> Result<(WasiP1Ctx, Stdio), SandboxError> {
    let cap = |limit: u64| usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let stdio =
        Stdio { stdout: MemoryOutputPipe::new(cap(stdout_limit)), stderr: MemoryOutputPipe::new(cap(stderr_limit)) };
    let seed = request_seed(request);
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdin(MemoryInputPipe::new(request.to_vec()))
        .stdout(stdio.stdout.clone())
        .stderr(stdio.stderr.clone())
        .wall_clock(FixedWallClock)
        .monotonic_clock(FixedMonotonicClock)
        .secure_random(SeededRandom(Rng::derive(0, &[b"secure", &seed])))
        .insecure_random(SeededRandom(Rng::derive(0, &[b"insecure", &seed])))
        .insecure_random_seed(u128::from_le_bytes(seed[..16].try_into().unwrap_or([0; 16])))
        .allow_blocking_current_thread(true)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(dir) = data_dir {
        builder
            .preopened_dir(dir, "/data", FsPerms::ReadOnly)
            .map_err(|e| SandboxError::Host(format!("cannot open data directory {}: {e}", dir.display())))?;
    }
    Ok((builder.build_p1(), stdio))
}
