//! The file system a guest sees, made host-independent and bounded: the
//! WASI preview 1 functions that report or change files are wrapped around
//! wasmtime-wasi's own (which do the work), in the guest's linker.
//!
//! Determinism: what `fd_readdir`, `fd_filestat_get` and `path_filestat_get`
//! report depends on no host. Listings come sorted by name (`.` and `..`
//! first); inode numbers are given in the order the guest first sees each
//! file (1, 2, ...), so they tell files apart as the host's do without
//! showing them; access and change times and file modification times are 0
//! (the epoch); a directory's modification time counts, in seconds, the
//! names created, removed or renamed in this instance so far (so caches
//! that watch a directory's time, like Python's import system, still see
//! new files); directories report size 0 and one link, whatever the host's
//! file system says.
//!
//! The disk quota ([`FsState::with_quota`], for a nested run's writable
//! `/work`): a write, truncation or new name that would take the bytes
//! counted past the quota fails with `EDQUOT` and changes nothing. Counted:
//! each regular file's size rounded up to [`BLOCK`] bytes, as the guest
//! grows it (writes, `fd_pwrite` past the end, growing truncations; sparse
//! files count their full size), [`NAME_BYTES`] plus the name's length for
//! each name created (file, directory, link) and [`BLOCK`] more for each
//! directory. Truncating a file gives its bytes back; deleting or renaming
//! over one does not, since an open descriptor can keep its bytes on disk.
//! So the bytes the guest has on disk under `/work` stay within the quota
//! plus the file system's own metadata for them (extent trees, indirect
//! blocks: well under 1% of the data on ext4, xfs or tmpfs).

use std::collections::HashMap;

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::types::{self, Errno, Fd, Filestat, Filetype, Lookupflags, Oflags};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 as _;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::{GuestMemory, GuestPtr};

use super::{HostState, WASI_MODULE};
use crate::SandboxError;

/// Granularity at which file sizes are counted against the quota: the
/// block size of common file systems.
pub const BLOCK: u64 = 4096;

/// Bytes counted for each name created, beside the name itself: roughly an
/// inode and a directory entry.
pub const NAME_BYTES: u64 = 512;

/// Largest directory listing read at once, in bytes (about 100,000 names).
const MAX_LISTING: usize = 64 << 20;

/// Size of a WASI `dirent` header.
const DIRENT: usize = 24;

/// A guest's view of its files: the inode numbers it has been shown, the
/// count of name changes, and the disk quota of its writable directory.
#[derive(Debug, Default)]
pub(crate) struct FsState {
    /// Host identity (wasmtime-wasi's hash of device and inode) -> the
    /// number the guest sees.
    inodes: HashMap<u64, u64>,
    /// Names created, removed or renamed so far: directories' mtime.
    changes: u64,
    quota: Option<Quota>,
}

#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u64,
    used: u64,
}

/// Bytes `size` takes counted in whole blocks.
fn blocks(size: u64) -> u64 {
    size.div_ceil(BLOCK).saturating_mul(BLOCK)
}

impl FsState {
    /// A state with a quota of `limit` bytes, of which the files already in
    /// the directory (their sizes) take their share.
    pub(crate) fn with_quota(limit: u64, existing: impl IntoIterator<Item = (usize, u64)>) -> FsState {
        let used = existing.into_iter().map(|(name, size)| blocks(size).saturating_add(NAME_BYTES + name as u64)).sum();
        FsState { quota: Some(Quota { limit, used }), ..FsState::default() }
    }

    /// Bytes counted against the quota, if there is one.
    #[cfg(test)]
    pub(crate) fn quota_used(&self) -> Option<u64> {
        self.quota.map(|q| q.used)
    }

    fn inode(&mut self, host: u64) -> u64 {
        let next = self.inodes.len() as u64 + 1;
        *self.inodes.entry(host).or_insert(next)
    }

    /// Refuses `bytes` more if they would pass the quota.
    fn check(&self, bytes: u64) -> Result<(), Errno> {
        match self.quota {
            Some(q) if q.used.saturating_add(bytes) > q.limit => Err(Errno::Dquot),
            _ => Ok(()),
        }
    }

    fn charge(&mut self, bytes: u64) {
        if let Some(q) = &mut self.quota {
            q.used = q.used.saturating_add(bytes);
        }
    }

    fn credit(&mut self, bytes: u64) {
        if let Some(q) = &mut self.quota {
            q.used = q.used.saturating_sub(bytes);
        }
    }

    /// `stat` as the guest sees it (see the module docs).
    fn present(&mut self, mut stat: Filestat) -> Filestat {
        stat.ino = self.inode(stat.ino);
        stat.atim = 0;
        stat.ctim = 0;
        stat.mtim = 0;
        if stat.filetype == Filetype::Directory {
            stat.size = 0;
            stat.nlink = 1;
            stat.mtim = self.changes.saturating_mul(1_000_000_000);
        }
        stat
    }
}

/// The guest's memory and its state, as wasmtime-wasi's own functions take them.
fn parts<'a>(caller: &'a mut Caller<'_, HostState>) -> wasmtime::Result<(GuestMemory<'a>, &'a mut HostState)> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("missing required memory export");
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    state.wasi.set_hostcall_fuel(fuel);
    Ok((GuestMemory::Unshared(bytes), state))
}

/// The errno of a result, or the trap it carries.
fn errno<T>(result: Result<T, types::Error>) -> wasmtime::Result<i32> {
    match result {
        Ok(_) => Ok(0),
        Err(e) => Ok(e.downcast()? as i32),
    }
}

fn path_ptr(ptr: i32, len: i32) -> GuestPtr<str> {
    GuestPtr::new((ptr as u32, len as u32))
}

/// Length of the first non-empty buffer of `iovs`: what wasmtime-wasi's
/// `fd_write` writes. `None` when the list cannot be read (the write itself
/// then fails).
fn first_write_len(memory: &GuestMemory<'_>, iovs: i32, iovs_len: i32) -> Option<u64> {
    let list: GuestPtr<[types::Ciovec]> = GuestPtr::new((iovs as u32, iovs_len as u32));
    for iov in list.iter() {
        let iov = memory.read(iov.ok()?).ok()?;
        if iov.buf_len > 0 {
            return Some(u64::from(iov.buf_len));
        }
    }
    Some(0)
}

/// Before a write of `len` bytes to `fd` (at `at`, or its position): the
/// file's size, or `None` when it is no regular file (or the write will fail
/// anyway). Refuses a write that would pass the quota.
fn before_write(
    state: &mut HostState,
    memory: &mut GuestMemory<'_>,
    fd: i32,
    len: Option<u64>,
    at: Option<u64>,
) -> Result<Option<u64>, Errno> {
    if state.fs.quota.is_none() {
        return Ok(None);
    }
    let (fd, wasi) = (Fd::from(fd as u32), &mut state.wasi);
    let Ok(stat) = in_tokio(wasi.fd_filestat_get(memory, fd)) else { return Ok(None) };
    if stat.filetype != Filetype::RegularFile {
        return Ok(None);
    }
    let Some(len) = len else { return Ok(None) };
    let append = in_tokio(wasi.fd_fdstat_get(memory, fd)).is_ok_and(|s| s.fs_flags.contains(types::Fdflags::APPEND));
    let start = match (append, at) {
        (true, _) => stat.size,
        (false, Some(at)) => at,
        (false, None) => wasi.fd_tell(memory, fd).unwrap_or(stat.size),
    };
    let end = start.saturating_add(len);
    state.fs.check(blocks(end).saturating_sub(blocks(stat.size)))?;
    Ok(Some(stat.size))
}

/// After a write that succeeded: charges what the file grew by.
fn after_write(state: &mut HostState, memory: &mut GuestMemory<'_>, fd: i32, size_before: u64) {
    let after = in_tokio(state.wasi.fd_filestat_get(memory, Fd::from(fd as u32))).map(|s| s.size);
    // If the file cannot be stat'ed now, count the write as the largest it could be.
    let after = after.unwrap_or(u64::MAX);
    state.fs.charge(blocks(after).saturating_sub(blocks(size_before)));
}

/// Runs `op` (which creates the name `path`, of `extra` more bytes) if the
/// quota allows it, and charges it if it succeeded.
fn creating(
    caller: &mut Caller<'_, HostState>,
    path_len: i32,
    extra: u64,
    op: impl FnOnce(&mut HostState, &mut GuestMemory<'_>) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let (mut memory, state) = parts(caller)?;
    let cost = NAME_BYTES.saturating_add(path_len.max(0) as u64).saturating_add(extra);
    if let Err(e) = state.fs.check(cost) {
        return Ok(e as i32);
    }
    let status = op(state, &mut memory)?;
    if status == 0 {
        state.fs.charge(cost);
        state.fs.changes += 1;
    }
    Ok(status)
}

/// Runs `op`, which removes or renames a name, counting it if it succeeded.
fn changing(
    caller: &mut Caller<'_, HostState>,
    op: impl FnOnce(&mut HostState, &mut GuestMemory<'_>) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let (mut memory, state) = parts(caller)?;
    let status = op(state, &mut memory)?;
    if status == 0 {
        state.fs.changes += 1;
    }
    Ok(status)
}

/// A directory's entries as wasmtime-wasi lists them (read into host
/// memory), sorted by name with `.` and `..` first and renumbered, encoded
/// from entry `cookie` on.
fn sorted_listing(state: &mut HostState, fd: i32, cookie: u64) -> Result<Vec<u8>, types::Error> {
    let mut scratch = vec![0u8; 64 << 10];
    let len = loop {
        let mut memory = GuestMemory::Unshared(&mut scratch);
        let cap = u32::try_from(memory_len(&memory)).map_err(|_| Errno::Nomem)?;
        let n = in_tokio(state.wasi.fd_readdir(&mut memory, Fd::from(fd as u32), GuestPtr::new(0), cap, 0))?;
        if n < cap {
            break n as usize;
        }
        if scratch.len() >= MAX_LISTING {
            return Err(Errno::Nomem.into());
        }
        scratch = vec![0u8; scratch.len() * 4];
    };
    let mut entries: Vec<(u64, u8, &[u8])> = Vec::new();
    let mut at = 0;
    while at + DIRENT <= len {
        let word = |i: usize| u64::from_le_bytes(scratch[i..i + 8].try_into().unwrap_or([0; 8]));
        let ino = word(at + 8);
        let namlen = u32::from_le_bytes(scratch[at + 16..at + 20].try_into().unwrap_or([0; 4])) as usize;
        let kind = scratch[at + 20];
        let name = scratch.get(at + DIRENT..at + DIRENT + namlen).ok_or(Errno::Io)?;
        entries.push((ino, kind, name));
        at += DIRENT + namlen;
    }
    let rank = |name: &[u8]| match name {
        b"." => 0,
        b".." => 1,
        _ => 2,
    };
    entries.sort_by(|a, b| (rank(a.2), a.2).cmp(&(rank(b.2), b.2)));
    let mut out = Vec::new();
    for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(usize::try_from(cookie).unwrap_or(usize::MAX)) {
        out.extend_from_slice(&(i as u64 + 1).to_le_bytes());
        out.extend_from_slice(&state.fs.inode(ino).to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&[kind, 0, 0, 0]);
        out.extend_from_slice(name);
    }
    Ok(out)
}

fn memory_len(memory: &GuestMemory<'_>) -> usize {
    match memory {
        GuestMemory::Unshared(b) => b.len(),
        GuestMemory::Shared(b) => b.len(),
    }
}

/// Wraps wasmtime-wasi's file functions in `linker` (which must have them,
/// and allow shadowing) as the module docs say.
pub(crate) fn link(linker: &mut Linker<HostState>) -> Result<(), SandboxError> {
    let fail = |name: &str, e: wasmtime::Error| SandboxError::Host(format!("cannot link {name}: {e}"));
    linker
        .func_wrap(
            WASI_MODULE,
            "fd_write",
            |mut caller: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, out: i32| -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let len = first_write_len(&memory, iovs, iovs_len);
                let size = match before_write(state, &mut memory, fd, len, None) {
                    Ok(size) => size,
                    Err(e) => return Ok(e as i32),
                };
                let status = in_tokio(p1::fd_write(&mut state.wasi, &mut memory, fd, iovs, iovs_len, out))?;
                if let (0, Some(size)) = (status, size) {
                    after_write(state, &mut memory, fd, size);
                }
                Ok(status)
            },
        )
        .map_err(|e| fail("fd_write", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "fd_pwrite",
            |mut caller: Caller<'_, HostState>,
             fd: i32,
             iovs: i32,
             iovs_len: i32,
             offset: i64,
             out: i32|
             -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let len = first_write_len(&memory, iovs, iovs_len);
                let size = match before_write(state, &mut memory, fd, len, Some(offset as u64)) {
                    Ok(size) => size,
                    Err(e) => return Ok(e as i32),
                };
                let status = in_tokio(p1::fd_pwrite(&mut state.wasi, &mut memory, fd, iovs, iovs_len, offset, out))?;
                if let (0, Some(size)) = (status, size) {
                    after_write(state, &mut memory, fd, size);
                }
                Ok(status)
            },
        )
        .map_err(|e| fail("fd_pwrite", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "fd_filestat_set_size",
            |mut caller: Caller<'_, HostState>, fd: i32, size: i64| -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let before = match before_write(state, &mut memory, fd, Some(0), Some(size as u64)) {
                    Ok(before) => before,
                    Err(e) => return Ok(e as i32),
                };
                let status = in_tokio(p1::fd_filestat_set_size(&mut state.wasi, &mut memory, fd, size))?;
                if let (0, Some(before)) = (status, before) {
                    let (old, new) = (blocks(before), blocks(size as u64));
                    if new >= old { state.fs.charge(new - old) } else { state.fs.credit(old - new) }
                }
                Ok(status)
            },
        )
        .map_err(|e| fail("fd_filestat_set_size", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_open",
            |mut caller: Caller<'_, HostState>,
             dirfd: i32,
             dirflags: i32,
             path: i32,
             path_len: i32,
             oflags: i32,
             base: i64,
             inheriting: i64,
             fdflags: i32,
             out: i32|
             -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let flags = Oflags::from_bits_truncate(oflags as u16);
                let name = path_ptr(path, path_len);
                let lookup = Lookupflags::from_bits_truncate(dirflags as u32);
                let old = in_tokio(state.wasi.path_filestat_get(&mut memory, Fd::from(dirfd as u32), lookup, name));
                let creates = flags.contains(Oflags::CREAT) && old.is_err();
                let cost = NAME_BYTES.saturating_add(path_len.max(0) as u64);
                if creates && let Err(e) = state.fs.check(cost) {
                    return Ok(e as i32);
                }
                let status = in_tokio(p1::path_open(
                    &mut state.wasi,
                    &mut memory,
                    dirfd,
                    dirflags,
                    path,
                    path_len,
                    oflags,
                    base,
                    inheriting,
                    fdflags,
                    out,
                ))?;
                if status == 0 {
                    if creates {
                        state.fs.charge(cost);
                        state.fs.changes += 1;
                    } else if let Ok(old) = old
                        && flags.contains(Oflags::TRUNC)
                        && old.filetype == Filetype::RegularFile
                    {
                        state.fs.credit(blocks(old.size));
                    }
                }
                Ok(status)
            },
        )
        .map_err(|e| fail("path_open", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_create_directory",
            |mut caller: Caller<'_, HostState>, dirfd: i32, path: i32, path_len: i32| -> wasmtime::Result<i32> {
                creating(&mut caller, path_len, BLOCK, |state, memory| {
                    in_tokio(p1::path_create_directory(&mut state.wasi, memory, dirfd, path, path_len))
                })
            },
        )
        .map_err(|e| fail("path_create_directory", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_symlink",
            |mut caller: Caller<'_, HostState>,
             old: i32,
             old_len: i32,
             dirfd: i32,
             path: i32,
             path_len: i32|
             -> wasmtime::Result<i32> {
                creating(&mut caller, path_len, blocks(old_len.max(0) as u64), |state, memory| {
                    in_tokio(p1::path_symlink(&mut state.wasi, memory, old, old_len, dirfd, path, path_len))
                })
            },
        )
        .map_err(|e| fail("path_symlink", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_link",
            |mut caller: Caller<'_, HostState>,
             old_fd: i32,
             old_flags: i32,
             old: i32,
             old_len: i32,
             new_fd: i32,
             new: i32,
             new_len: i32|
             -> wasmtime::Result<i32> {
                creating(&mut caller, new_len, 0, |state, memory| {
                    in_tokio(p1::path_link(
                        &mut state.wasi,
                        memory,
                        old_fd,
                        old_flags,
                        old,
                        old_len,
                        new_fd,
                        new,
                        new_len,
                    ))
                })
            },
        )
        .map_err(|e| fail("path_link", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_unlink_file",
            |mut caller: Caller<'_, HostState>, dirfd: i32, path: i32, path_len: i32| -> wasmtime::Result<i32> {
                changing(&mut caller, |state, memory| {
                    in_tokio(p1::path_unlink_file(&mut state.wasi, memory, dirfd, path, path_len))
                })
            },
        )
        .map_err(|e| fail("path_unlink_file", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_remove_directory",
            |mut caller: Caller<'_, HostState>, dirfd: i32, path: i32, path_len: i32| -> wasmtime::Result<i32> {
                changing(&mut caller, |state, memory| {
                    in_tokio(p1::path_remove_directory(&mut state.wasi, memory, dirfd, path, path_len))
                })
            },
        )
        .map_err(|e| fail("path_remove_directory", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_rename",
            |mut caller: Caller<'_, HostState>,
             old_fd: i32,
             old: i32,
             old_len: i32,
             new_fd: i32,
             new: i32,
             new_len: i32|
             -> wasmtime::Result<i32> {
                changing(&mut caller, |state, memory| {
                    in_tokio(p1::path_rename(&mut state.wasi, memory, old_fd, old, old_len, new_fd, new, new_len))
                })
            },
        )
        .map_err(|e| fail("path_rename", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "fd_filestat_get",
            |mut caller: Caller<'_, HostState>, fd: i32, out: i32| -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let stat = match in_tokio(state.wasi.fd_filestat_get(&mut memory, Fd::from(fd as u32))) {
                    Ok(stat) => state.fs.present(stat),
                    Err(e) => return errno(Err::<(), _>(e)),
                };
                errno(memory.write(GuestPtr::<Filestat>::new(out as u32), stat).map_err(types::Error::from))
            },
        )
        .map_err(|e| fail("fd_filestat_get", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "path_filestat_get",
            |mut caller: Caller<'_, HostState>,
             dirfd: i32,
             flags: i32,
             path: i32,
             path_len: i32,
             out: i32|
             -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let lookup = Lookupflags::from_bits_truncate(flags as u32);
                let name = path_ptr(path, path_len);
                let stat =
                    match in_tokio(state.wasi.path_filestat_get(&mut memory, Fd::from(dirfd as u32), lookup, name)) {
                        Ok(stat) => state.fs.present(stat),
                        Err(e) => return errno(Err::<(), _>(e)),
                    };
                errno(memory.write(GuestPtr::<Filestat>::new(out as u32), stat).map_err(types::Error::from))
            },
        )
        .map_err(|e| fail("path_filestat_get", e))?;
    linker
        .func_wrap(
            WASI_MODULE,
            "fd_readdir",
            |mut caller: Caller<'_, HostState>,
             fd: i32,
             buf: i32,
             buf_len: i32,
             cookie: i64,
             out: i32|
             -> wasmtime::Result<i32> {
                let (mut memory, state) = parts(&mut caller)?;
                let listing = match sorted_listing(state, fd, cookie as u64) {
                    Ok(listing) => listing,
                    Err(e) => return errno(Err::<(), _>(e)),
                };
                let n = listing.len().min(buf_len as u32 as usize);
                let written = GuestPtr::<[u8]>::new((buf as u32, n as u32));
                let result = memory
                    .copy_from_slice(&listing[..n], written)
                    .and_then(|()| memory.write(GuestPtr::<u32>::new(out as u32), n as u32))
                    .map_err(types::Error::from);
                errno(result)
            },
        )
        .map_err(|e| fail("fd_readdir", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counts_blocks_and_names() {
        let mut fs = FsState::with_quota(3 * BLOCK, [(3, 1)]);
        assert_eq!(fs.quota_used(), Some(BLOCK + NAME_BYTES + 3));
        assert!(fs.check(BLOCK).is_ok());
        fs.charge(BLOCK);
        assert_eq!(fs.check(BLOCK), Err(Errno::Dquot));
        fs.credit(2 * BLOCK);
        assert!(fs.check(BLOCK).is_ok());
        assert!(FsState::default().check(u64::MAX).is_ok(), "no quota, no limit");
    }

    #[test]
    fn inodes_are_numbered_in_the_order_seen() {
        let mut fs = FsState::default();
        assert_eq!((fs.inode(0xdead), fs.inode(0xbeef), fs.inode(0xdead)), (1, 2, 1));
    }
}
