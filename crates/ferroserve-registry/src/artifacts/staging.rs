//! Uploads in progress: bytes written to a temporary file and hashed on the
//! way, the file removed unless the store keeps it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{RegistryError, Result};
use crate::validate;

/// Read size of uploads and hashing.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Removes a temporary file when dropped, unless it was kept; this also
/// covers an upload future that is cancelled half-way. An upload's file is
/// also locked (`flock`) for as long as its guard lives, so that another
/// process's cleanup tells it from the leftovers of a crash.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: Option<PathBuf>,
    _lock: Option<fs::File>,
}

impl TempFile {
    /// Guards `path`: the file there is removed when the guard is dropped.
    pub(crate) fn new(path: PathBuf) -> Self {
        TempFile {
            path: Some(path),
            _lock: None,
        }
    }

    /// Creates a new file in `dir`, locked while the guard lives, and
    /// returns the guard with the file opened for writing.
    ///
    /// A cleanup (recovery, which runs whenever a replica starts leading,
    /// uploads or not) may find the file between its creation and its
    /// lock, take it for debris, lock it and remove it. So the lock is
    /// taken, and then the name checked to still be this file's; when
    /// either fails, another name is tried. Once both hold, no cleanup can
    /// take the file: it removes only files it could lock.
    fn create_locked(dir: &Path) -> io::Result<(Self, tokio::fs::File)> {
        use std::os::unix::fs::MetadataExt;
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let path = dir.join(uuid::Uuid::new_v4().simple().to_string());
            let file = fs::File::create(&path)?;
            let locked =
                rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok();
            let ours = locked
                && fs::metadata(&path).is_ok_and(|named| {
                    file.metadata()
                        .is_ok_and(|held| (held.dev(), held.ino()) == (named.dev(), named.ino()))
                });
            if !ours {
                continue; // A cleanup has it, or removed it: leave it to that.
            }
            let writer = tokio::fs::File::from_std(file.try_clone()?);
            let guard = TempFile {
                path: Some(path),
                _lock: Some(file),
            };
            return Ok((guard, writer));
        }
        Err(io::Error::other(format!(
            "{ATTEMPTS} new temporary files in a row were taken by a cleanup"
        )))
    }

    pub(crate) fn path(&self) -> &Path {
        self.path.as_deref().expect("path is taken only by keep()")
    }

    /// Hands the file over to the caller, who then owns its removal.
    pub(crate) fn keep(mut self) -> PathBuf {
        self.path.take().expect("keep() is called once")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// An upload written in full to a temporary file.
pub(crate) struct Staged {
    pub(crate) file: TempFile,
    /// sha256 of the bytes, lowercase hex.
    pub(crate) digest: String,
    pub(crate) size: u64,
}

/// A file error of the store. The full path goes to the log; the message,
/// which clients may see, names the file by its last parts only
/// (`sha256/ab/cdef...`), never by the server's folders.
pub(crate) fn io_err(what: &str, path: &Path, e: io::Error) -> RegistryError {
    tracing::error!(path = %path.display(), error = %e, "artifact store: {what}");
    let parts: Vec<_> = path.iter().rev().take(3).collect();
    let short: Vec<_> = parts.iter().rev().map(|p| p.to_string_lossy()).collect();
    RegistryError::Io(format!("{what} {}: {e}", short.join("/")))
}

/// Writes everything `reader` yields to a new file in `dir`, hashing it on
/// the way, and fsyncs it.
pub(crate) async fn stage<R: AsyncRead + Unpin>(dir: &Path, mut reader: R) -> Result<Staged> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_err("cannot create", dir, e))?;
    let (temp, mut file) =
        TempFile::create_locked(dir).map_err(|e| io_err("cannot create a file in", dir, e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| RegistryError::Io(format!("reading the artifact upload failed: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .await
            .map_err(|e| io_err("cannot write", temp.path(), e))?;
        size += n as u64;
    }
    file.sync_all()
        .await
        .map_err(|e| io_err("cannot fsync", temp.path(), e))?;
    Ok(Staged {
        file: temp,
        digest: hex::encode(hasher.finalize()),
        size,
    })
}

/// Like [`stage`], but refuses the bytes, and leaves nothing behind, unless
/// their sha256 is `expected`.
pub(crate) async fn stage_verified<R: AsyncRead + Unpin>(
    dir: &Path,
    reader: R,
    expected: &str,
) -> Result<Staged> {
    validate::sha256_hex("expected artifact digest", expected)?;
    let staged = stage(dir, reader).await?;
    if staged.digest != expected {
        return Err(RegistryError::DigestMismatch {
            expected: expected.to_owned(),
            actual: staged.digest,
        });
    }
    Ok(staged)
}

/// Entries of a folder; a missing folder has none.
pub(crate) fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(it) => it
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| io_err("cannot list", dir, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("cannot list", dir, e)),
    }
}

/// Removes the files of the temporary folder `dir` that no upload holds
/// (an upload in progress, in this process or another, keeps its file
/// locked; a crash leaves it unlocked); returns how many.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in entries(dir)? {
        let path = entry.path();
        let Ok(file) = fs::File::open(&path) else {
            continue; // Gone meanwhile (its upload finished).
        };
        let free =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
        if !free {
            continue;
        }
        fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
        removed += 1;
    }
    Ok(removed)
}

/// When `path` was last modified, in unix ms.
pub(crate) fn modified_ms(path: &Path) -> Result<i64> {
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| io_err("cannot read the modification time of", path, e))?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Uploads staged while a cleanup sweeps their folder over and over
    /// (a replica that starts leading mid-upload) all keep their files.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cleanup_running_beside_uploads_takes_none_of_their_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let uploads = dir.path().join("uploads");
        let stop = Arc::new(AtomicBool::new(false));
        let sweeper = {
            let (uploads, stop) = (uploads.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut caught = 0;
                while !stop.load(Ordering::Relaxed) {
                    caught += remove_temp_files(&uploads).unwrap_or(0);
                }
                caught
            })
        };
        for i in 0..300u32 {
            let bytes = i.to_le_bytes();
            let staged = stage(&uploads, &bytes[..]).await.expect("staged");
            assert_eq!(
                fs::read(staged.file.path()).expect("the staged file is there"),
                bytes
            );
        }
        stop.store(true, Ordering::Relaxed);
        // Files the sweeper caught between their creation and their lock
        // were given up by their uploads, which took another name.
        let _caught = sweeper.join().expect("sweeper");
        assert!(entries(&uploads).expect("listed").is_empty());
    }
}
