//! Crash-safe file system steps: a new file or folder survives a power
//! loss only once the folder that names it is synced too, so every create
//! and rename here syncs the parent folder as well.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Syncs the folder `dir`, so that the entries created, renamed or removed
/// in it are on disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs the folder holding `path` (the current folder for a bare name).
pub fn fsync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fsync_dir(parent),
        _ => fsync_dir(Path::new(".")),
    }
}

/// Creates `dir` and the missing folders above it, syncing each new
/// folder's parent so that none of them can vanish after a crash.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fsync_parent(dir),
        // Made meanwhile by someone else, who syncs it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the file `path` (failing when it exists) and syncs its folder:
/// the file's name is on disk when this returns.
pub fn create_new(path: &Path) -> io::Result<File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    fsync_parent(path)?;
    Ok(file)
}

/// Replaces `path` with `bytes` all at once: written to a temporary file
/// beside it, synced, renamed over `path`, and the folder synced. After a
/// crash `path` holds either its old content or `bytes`, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file path has a name"))?;
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    fsync_parent(path)
}

/// Writes `bytes` to `path` (created or truncated) and syncs the file and
/// its folder, so that the content is on disk when this returns.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fsync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_files_are_made_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a/b/c");
        create_dir_all(&deep).expect("create");
        create_dir_all(&deep).expect("again");
        assert!(deep.is_dir());
        let file = deep.join("owner-id");
        write_atomic(&file, b"one").expect("write");
        write_atomic(&file, b"two").expect("replace");
        assert_eq!(fs::read(&file).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(&deep).expect("list").collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        write_synced(&deep.join("body"), b"x").expect("write");
        assert!(create_new(&deep.join("body")).is_err());
        create_new(&deep.join("new")).expect("new file");
    }
}
