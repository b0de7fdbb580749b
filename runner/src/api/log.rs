//! The append-only log under the trajectory API: one JSON line per record,
//! synced before a change is acknowledged, cut back to the last good record
//! when an append fails, locked against a second server, and rewritten
//! (compacted) from a snapshot when most of it is dead.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::RunnerError;

/// Where log records go: a file, or (in tests) a writer that fails on cue.
pub(crate) trait LogFile: Write + Send {
    /// Makes everything written so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file back to `len` bytes; later writes go after them.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl LogFile for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // Opened in append mode, so the next write lands at the new end.
        self.set_len(len)
    }
}

/// An open log.
pub(crate) struct Log {
    file: Box<dyn LogFile>,
    /// Bytes of whole records: where the next one starts.
    len: u64,
    /// Set once a failed append could not be cut back.
    broken: Option<String>,
    name: String,
}

impl Log {
    /// A log over `file`, whose first `len` bytes are whole records.
    pub(crate) fn new(file: Box<dyn LogFile>, len: u64, name: impl Into<String>) -> Self {
        Log { file, len, broken: None, name: name.into() }
    }

    /// Bytes of whole records.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `lines` (whole records, each ending in `\n`) as one unit and
    /// syncs them. On failure the log is cut back to where it was, so a
    /// full disk leaves no partial record for later appends to follow.
    pub(crate) fn append(&mut self, lines: &[u8]) -> Result<(), RunnerError> {
        if let Some(reason) = &self.broken {
            return Err(RunnerError::LogBroken { path: self.name.clone(), reason: reason.clone() });
        }
        let written = self.file.write_all(lines).and_then(|()| self.file.flush()).and_then(|()| self.file.sync());
        match written {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(undo) = self.file.truncate(self.len).and_then(|()| self.file.sync()) {
                    self.broken = Some(undo.to_string());
                }
                Err(RunnerError::io(&self.name, e))
            }
        }
    }
}

/// Opens (creating) the log at `path` and takes its exclusive lock.
pub(crate) fn open_locked(path: &Path) -> Result<File, RunnerError> {
    // A compaction renames a new file over the path; a lock taken on the
    // file it replaced guards nothing, so look again.
    for _ in 0..16 {
        let file =
            OpenOptions::new().read(true).append(true).create(true).open(path).map_err(|e| RunnerError::io(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(RunnerError::LogLocked { path: path.display().to_string() });
            }
            Err(TryLockError::Error(e)) => return Err(RunnerError::io(path, e)),
        }
        if is_at(&file, path)? {
            return Ok(file);
        }
    }
    Err(RunnerError::io(path, io::Error::other("the log kept being replaced while opening it")))
}

#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> Result<bool, RunnerError> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata().map_err(|e| RunnerError::io(path, e))?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(open.dev() == now.dev() && open.ino() == now.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RunnerError::io(path, e)),
    }
}

#[cfg(not(unix))]
fn is_at(_file: &File, _path: &Path) -> Result<bool, RunnerError> {
    Ok(true)
}

/// Reads the whole records of `file` (from its start), handing each line
/// and its offset to `each`, and cuts off a torn last line (a crash
/// mid-append). Returns the length of the whole records.
pub(crate) fn replay(
    file: &File,
    path: &Path,
    mut each: impl FnMut(&[u8], u64) -> Result<(), RunnerError>,
) -> Result<u64, RunnerError> {
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut len = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| RunnerError::io(path, e))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        each(&line, len)?;
        len += n as u64;
    }
    file.set_len(len).map_err(|e| RunnerError::io(path, e))?;
    Ok(len)
}

/// A log rewritten by [`rewrite`].
pub(crate) struct Rewritten {
    /// The new log file, locked, now at the path.
    pub(crate) file: File,
    /// Its length.
    pub(crate) len: u64,
    /// Whether the rename was made durable; the new file is the log either
    /// way, since the path already names it.
    pub(crate) dir_synced: Result<(), RunnerError>,
}

/// Writes `lines` to a new locked file beside `path`, syncs it and renames
/// it over `path`: the log then holds exactly those records. On failure
/// the old log stays as it was.
pub(crate) fn rewrite(path: &Path, lines: impl Iterator<Item = Vec<u8>>) -> Result<Rewritten, RunnerError> {
    let tmp = temp_beside(path);
    let written = write_new(&tmp, lines).and_then(|(file, len)| {
        std::fs::rename(&tmp, path).map_err(|e| RunnerError::io(path, e))?;
        Ok((file, len))
    });
    match written {
        Ok((file, len)) => Ok(Rewritten { file, len, dir_synced: sync_dir(path) }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_new(tmp: &Path, lines: impl Iterator<Item = Vec<u8>>) -> Result<(File, u64), RunnerError> {
    let io = |e| RunnerError::io(tmp, e);
    let file = OpenOptions::new().read(true).append(true).create_new(true).open(tmp).map_err(io)?;
    file.try_lock().map_err(|e| RunnerError::io(tmp, io::Error::other(e.to_string())))?;
    let mut out = BufWriter::new(&file);
    let mut len = 0u64;
    for line in lines {
        out.write_all(&line).map_err(io)?;
        len += line.len() as u64;
    }
    out.flush().map_err(io)?;
    drop(out);
    file.sync_all().map_err(io)?;
    Ok((file, len))
}

/// A name beside `path` that no other writer uses.
fn temp_beside(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.compact-{}-{nanos}", std::process::id()))
}

/// Makes a rename in `path`'s directory durable.
fn sync_dir(path: &Path) -> Result<(), RunnerError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| RunnerError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A disk that holds `room` bytes: a write past it stores what fits and
    /// then fails with `StorageFull`, as a full file system does.
    #[derive(Clone, Default)]
    pub(crate) struct SmallDisk {
        pub(crate) bytes: Arc<Mutex<Vec<u8>>>,
        pub(crate) room: Arc<AtomicUsize>,
    }

    impl Write for SmallDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.lock().map_err(|_| io::Error::other("poisoned"))?;
            let free = self.room.load(Ordering::SeqCst).saturating_sub(bytes.len());
            if free == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
            }
            let n = buf.len().min(free);
            bytes.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl LogFile for SmallDisk {
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }

        fn truncate(&mut self, len: u64) -> io::Result<()> {
            let mut bytes = self.bytes.lock().map_err(|_| io::Error::other("poisoned"))?;
            bytes.truncate(usize::try_from(len).map_err(io::Error::other)?);
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_leaves_no_partial_record_behind() {
        let disk = SmallDisk::default();
        disk.room.store(12, Ordering::SeqCst);
        let mut log = Log::new(Box::new(disk.clone()), 0, "test.log");
        log.append(b"{\"a\":1}\n").unwrap();
        // Only 4 of these 8 bytes fit: the append fails and is cut back.
        let err = log.append(b"{\"b\":2}\n").unwrap_err();
        assert!(matches!(&err, RunnerError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull), "{err}");
        assert_eq!(disk.bytes.lock().unwrap().as_slice(), b"{\"a\":1}\n");
        assert_eq!(log.len(), 8);
        // Space comes back: the next record follows the last good one.
        disk.room.store(1 << 20, Ordering::SeqCst);
        log.append(b"{\"c\":3}\n").unwrap();
        assert_eq!(disk.bytes.lock().unwrap().as_slice(), b"{\"a\":1}\n{\"c\":3}\n");
        assert_eq!(log.len(), 16);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.log");
        let first = open_locked(&path).unwrap();
        let err = open_locked(&path).unwrap_err();
        assert!(matches!(err, RunnerError::LogLocked { .. }), "{err}");
        assert!(err.to_string().contains("another trajectory API server"), "{err}");
        drop(first);
        open_locked(&path).unwrap();
    }

    #[test]
    fn a_rewrite_replaces_the_log_and_keeps_it_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.log");
        let old = open_locked(&path).unwrap();
        std::fs::write(&path, b"old\nold\nold\n").unwrap();
        let new = rewrite(&path, [b"new\n".to_vec()].into_iter()).unwrap();
        drop(old);
        assert_eq!(new.len, 4);
        assert!(new.dir_synced.is_ok());
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        assert!(matches!(open_locked(&path), Err(RunnerError::LogLocked { .. })));
        drop(new);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }
}
