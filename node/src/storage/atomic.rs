//! Replacing a whole file so a crash leaves either the old or the new content, never a mix:
//! write a temporary file, fsync it, rename it over the target, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
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
pub fn write_tmp(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    fsync(&file)?;
    Ok(tmp)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_tmp(path, bytes)?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory, making renames and file creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fsync(&File::open(dir)?)
}

/// Flushes a file (data and metadata) to the device.
///
/// Under madsim a simulated crash kills the node's tasks but not the machine: what was written
/// survives as it would a SIGKILL, so the flush to the device is skipped to keep simulated runs
/// fast. The order of writes, which is what the persistence contract is about, is unchanged.
pub fn fsync(file: &File) -> io::Result<()> {
    if cfg!(madsim) {
        return Ok(());
    }
    file.sync_all()
}

/// Flushes a file's data (and the metadata needed to read it back) to the device; see [`fsync`].
pub fn fdatasync(file: &File) -> io::Result<()> {
    if cfg!(madsim) {
        return Ok(());
    }
    file.sync_data()
}
