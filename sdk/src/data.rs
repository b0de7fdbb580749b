//! Reading package data (`/data`) a piece at a time, so an environment with
//! large data reads only the task it needs (e.g. through an offset index).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Reads `len` bytes of `path` starting at `offset`. A `len` over `max_len` is
/// refused (`InvalidData`) before anything is allocated, so a corrupt index
/// cannot make the guest allocate without bound.
pub fn read_range(path: &Path, offset: u64, len: u64, max_len: u64) -> std::io::Result<Vec<u8>> {
    if len > max_len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a record of {len} bytes is over the {max_len}-byte limit"),
        ));
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_range_and_refuses_oversized_or_missing_ones() {
        let path = std::env::temp_dir().join(format!("envhub-sdk-data-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").expect("write");
        assert_eq!(read_range(&path, 3, 4, 16).expect("read"), b"3456");
        assert_eq!(read_range(&path, 3, 40, 16).expect_err("over limit").kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(read_range(&path, 8, 4, 16).expect_err("past end").kind(), std::io::ErrorKind::UnexpectedEof);
        let _ = std::fs::remove_file(&path);
        assert!(read_range(&path, 0, 1, 16).is_err());
    }
}
