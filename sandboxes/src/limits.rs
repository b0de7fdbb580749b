//! Per-call resource limits of an environment module.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied to every call of a module. A package's manifest may set
/// them (section `[limits]`), within the host's [`HostMaxima`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Instructions a call may execute, counted as wasmtime fuel. This is the
    /// deterministic limit: the same call stops at the same point everywhere.
    pub fuel: u64,
    /// Bytes of linear memory an instance may hold.
    pub memory_bytes: u64,
    /// Elements of a table (function pointers).
    pub table_elements: u64,
    /// Bytes a call may write to stdout (its response).
    pub stdout_bytes: u64,
    /// Bytes of stderr kept for error reports; more is an error too.
    pub stderr_bytes: u64,
    /// Wall-clock backstop in milliseconds. Hitting it is reported as a
    /// deadline, which, unlike fuel, depends on the machine.
    pub deadline_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 4_000_000_000,
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            stdout_bytes: 16 << 20,
            stderr_bytes: 64 << 10,
            deadline_ms: 30_000,
        }
    }
}

impl Limits {
    /// The deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// Checks these limits against what the host allows, naming the first
    /// field that is over.
    pub fn check(&self, maxima: &HostMaxima) -> Result<(), String> {
        let over = |field: &str, v: u64, max: u64| -> Result<(), String> {
            if v > max { Err(format!("limits.{field} = {v} is over the host maximum {max}")) } else { Ok(()) }
        };
        over("fuel", self.fuel, maxima.fuel)?;
        over("memory_bytes", self.memory_bytes, maxima.memory_bytes)?;
        over("table_elements", self.table_elements, maxima.table_elements)?;
        over("stdout_bytes", self.stdout_bytes, maxima.output_bytes)?;
        over("stderr_bytes", self.stderr_bytes, maxima.output_bytes)?;
        over("deadline_ms", self.deadline_ms, maxima.deadline_ms)?;
        if self.fuel == 0 || self.memory_bytes == 0 || self.stdout_bytes == 0 || self.deadline_ms == 0 {
            return Err("limits.fuel, memory_bytes, stdout_bytes and deadline_ms must be positive".to_owned());
        }
        Ok(())
    }
}

/// The most any module may ask for on this host.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostMaxima {
    /// Most fuel per call.
    pub fuel: u64,
    /// Most linear memory per instance; also the pooling allocator's slot size.
    pub memory_bytes: u64,
    /// Most table elements.
    pub table_elements: u64,
    /// Most bytes per output stream.
    pub output_bytes: u64,
    /// Longest wall-clock backstop.
    pub deadline_ms: u64,
}

impl Default for HostMaxima {
    fn default() -> Self {
        HostMaxima {
            fuel: 1_000_000_000_000,
            memory_bytes: 4 << 30,
            table_elements: 10_000_000,
            output_bytes: 256 << 20,
            deadline_ms: 600_000,
        }
    }
}
