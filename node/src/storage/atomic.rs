//! Replacing a whole file so a crash leaves either the old or the new content, never a mix:
//! write a temporary file, fsync it, rename it over the target, fsync the directory.

use super::disk::{Disk, parent};
use std::io;
use std::path::{Path, PathBuf};

/// The suffix of temporary files; `Storage::open` removes leftovers of an interrupted replace.
pub const TMP_SUFFIX: &str = ".tmp";

/// The temporary path used while replacing `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Writes `bytes` to `path.tmp` and fsyncs it, without renaming: the first half of a replace
/// (tests use it alone to stage a crash between the write and the rename).
pub fn write_tmp(disk: &mut dyn Disk, path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let tmp = tmp_path(path);
    disk.write(&tmp, bytes)?;
    disk.sync_file(&tmp)?;
    Ok(tmp)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn replace(disk: &mut dyn Disk, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_tmp(disk, path, bytes)?;
    disk.rename(&tmp, path)?;
    disk.sync_dir(parent(path))
}
