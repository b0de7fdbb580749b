//! The capability `code:python`: the import `envhub::run_code(req_ptr,
//! req_len, out_ptr, out_cap) -> i32` (ABI in `envhub_sdk::host`), which runs
//! a program on the pinned Python runtime ([`crate::runtime::python`]).

use envhub_sdk::EnvError;
use envhub_sdk::host::RunCode;
use envhub_sdk::protocol::Response;
use sha2::{Digest, Sha256};
use wasmtime::{Caller, Extern, Linker};

use super::CAPABILITY_MODULE;
use crate::SandboxError;
use crate::runtime::HostState;
use crate::runtime::python::run;

/// Largest request (program, stdin and files) the host reads, in bytes.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// Adds `envhub::run_code` to `linker`.
pub(crate) fn link(linker: &mut Linker<HostState>) -> Result<(), SandboxError> {
    linker
        .func_wrap(CAPABILITY_MODULE, "run_code", host_run_code)
        .map_err(|e| SandboxError::Host(format!("cannot link run_code: {e}")))?;
    Ok(())
}

fn guest_range(ptr: i32, len: i32, memory_len: usize) -> wasmtime::Result<std::ops::Range<usize>> {
    let (Ok(ptr), Ok(len)) = (u32::try_from(ptr), u32::try_from(len)) else {
        wasmtime::bail!("run_code: negative pointer or length");
    };
    let (start, len) = (ptr as usize, len as usize);
    match start.checked_add(len) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => wasmtime::bail!("run_code: buffer {start}+{len} is outside the guest's memory"),
    }
}

/// The import `envhub::run_code(req_ptr, req_len, out_ptr, out_cap) -> i32`
/// (ABI in `envhub_sdk::host`). Bad pointers trap the caller; everything
/// about the request or the program is answered in the JSON.
fn host_run_code(
    mut caller: Caller<'_, HostState>,
    req_ptr: i32,
    req_len: i32,
    out_ptr: i32,
    out_cap: i32,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("run_code: the caller exports no memory");
    };
    let request = {
        let data = memory.data(&caller);
        let range = guest_range(req_ptr, req_len, data.len())?;
        if range.len() > MAX_REQUEST_BYTES {
            wasmtime::bail!("run_code: request of {} bytes is over {MAX_REQUEST_BYTES}", range.len());
        }
        data[range].to_vec()
    };
    let key: [u8; 32] = Sha256::digest(&request).into();
    let Some(call) = caller.data_mut().code.as_mut() else {
        wasmtime::bail!("run_code: capability `code:python` is not available to this module");
    };
    let answer = match call.pending.take() {
        Some((k, answer)) if k == key => answer,
        _ => {
            let host = call.host.clone();
            let fuel_left = caller.get_fuel().unwrap_or(0);
            let result = serde_json::from_slice::<RunCode>(&request)
                .map_err(|e| EnvError::bad_request(format!("run_code request: {e}")))
                .and_then(|req| run(&host, &req, &key, fuel_left));
            if let Ok(r) = &result {
                caller.set_fuel(fuel_left.saturating_sub(r.fuel_used))?;
            }
            serde_json::to_vec(&Response::from(result))?
        }
    };
    let n = i32::try_from(answer.len())
        .map_err(|_| wasmtime::Error::msg(format!("run_code: answer of {} bytes is too large", answer.len())))?;
    let range = guest_range(out_ptr, out_cap, memory.data_size(&caller))?;
    if answer.len() <= range.len() {
        memory.data_mut(&mut caller)[range.start..range.start + answer.len()].copy_from_slice(&answer);
    } else if let Some(call) = caller.data_mut().code.as_mut() {
        call.pending = Some((key, answer));
    }
    Ok(n)
}
