//! Content-addressed artifact store on a local folder.
//!
//! Layout: `ROOT/sha256/ab/cdef...` (the first two hex digits of the sha256
//! name a sub-folder) and `ROOT/tmp/` for uploads in progress. A blob is
//! written to a temporary file, hashed while it is written, fsynced, then
//! renamed into place, so a blob path never holds a partial file. A crash
//! leaves at most a temporary file, which [`LocalArtifactStore::cleanup`]
//! removes on the next start.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{RegistryError, Result};
use crate::validate;

const CHUNK: usize = 64 * 1024;

/// Artifacts stored by their sha256 under a root folder.
#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    root: PathBuf,
}

/// What [`LocalArtifactStore::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Temporary files of interrupted uploads.
    pub temp_files: usize,
    /// Blobs that no version references.
    pub unreferenced_blobs: usize,
}

/// Removes a temporary file when dropped, unless it was kept; this also
/// covers an upload future that is cancelled half-way.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("path is taken only by keep()")
    }

    fn keep(mut self) -> PathBuf {
        self.0.take().expect("keep() is called once")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> RegistryError {
    RegistryError::Io(format!("{what} {}: {e}", path.display()))
}

impl LocalArtifactStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalArtifactStore { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        validate::sha256_hex("artifact digest", digest)?;
        Ok(self
            .root
            .join("sha256")
            .join(&digest[..2])
            .join(&digest[2..]))
    }

    /// Stores everything `reader` yields; returns its sha256 (hex) and size.
    /// Storing bytes that are already present keeps one copy.
    pub async fn put_stream<R: AsyncRead + Unpin>(&self, reader: R) -> Result<(String, u64)> {
        let (temp, digest, size) = self.write_temp(reader).await?;
        self.commit(temp, &digest).await?;
        Ok((digest, size))
    }

    /// Like [`put_stream`](Self::put_stream), but refuses the bytes, and
    /// leaves nothing behind, unless their sha256 is `expected`.
    pub async fn put_verified<R: AsyncRead + Unpin>(
        &self,
        reader: R,
        expected: &str,
    ) -> Result<u64> {
        validate::sha256_hex("expected artifact digest", expected)?;
        let (temp, digest, size) = self.write_temp(reader).await?;
        if digest != expected {
            return Err(RegistryError::DigestMismatch {
                expected: expected.to_owned(),
                actual: digest,
            });
        }
        self.commit(temp, &digest).await?;
        Ok(size)
    }

    /// Reads a blob and checks it still hashes to `digest`; a missing or
    /// corrupted blob is refused.
    pub async fn open_verified(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let digest = digest.to_owned();
        tokio::task::spawn_blocking(move || {
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(RegistryError::ArtifactMissing {
                        digest,
                        path: path.display().to_string(),
                    })
                }
                Err(e) => return Err(io_err("cannot read", &path, e)),
            };
            let actual = hex::encode(Sha256::digest(&bytes));
            if actual != digest {
                return Err(RegistryError::ArtifactCorrupted {
                    digest,
                    path: path.display().to_string(),
                    actual,
                });
            }
            Ok(bytes)
        })
        .await
        .map_err(|e| RegistryError::Io(format!("artifact read task failed: {e}")))?
    }

    /// Removes every temporary file and every blob whose digest is not in
    /// `referenced`.
    ///
    /// Run it on start, before uploads are accepted: an upload in progress
    /// or a blob not yet registered would be removed.
    pub async fn cleanup(&self, referenced: &HashSet<String>) -> Result<CleanupReport> {
        let root = self.root.clone();
        let referenced = referenced.clone();
        tokio::task::spawn_blocking(move || cleanup_blocking(&root, &referenced))
            .await
            .map_err(|e| RegistryError::Io(format!("artifact cleanup task failed: {e}")))?
    }

    async fn write_temp<R: AsyncRead + Unpin>(
        &self,
        mut reader: R,
    ) -> Result<(TempFile, String, u64)> {
        let dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err("cannot create", &dir, e))?;
        let temp = TempFile(Some(dir.join(uuid::Uuid::new_v4().simple().to_string())));
        let mut file = tokio::fs::File::create(temp.path())
            .await
            .map_err(|e| io_err("cannot create", temp.path(), e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buf).await.map_err(|e| {
                RegistryError::Io(format!("reading the artifact upload failed: {e}"))
            })?;
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
        Ok((temp, hex::encode(hasher.finalize()), size))
    }

    /// Moves a verified temporary file to its blob path. An existing blob
    /// is kept when it is intact and replaced when it is corrupted.
    async fn commit(&self, temp: TempFile, digest: &str) -> Result<()> {
        let target = self.blob_path(digest)?;
        let digest = digest.to_owned();
        tokio::task::spawn_blocking(move || {
            if hash_file(&target).ok().as_deref() == Some(digest.as_str()) {
                return Ok(()); // dropping `temp` removes the duplicate
            }
            let dir = target.parent().expect("blob paths have a parent folder");
            fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
            let from = temp.keep();
            if let Err(e) = fs::rename(&from, &target) {
                let _ = fs::remove_file(&from);
                return Err(io_err("cannot move artifact to", &target, e));
            }
            // Make the rename itself durable.
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("cannot fsync", dir, e))
        })
        .await
        .map_err(|e| RegistryError::Io(format!("artifact commit task failed: {e}")))?
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Entries of a folder; a missing folder has none.
fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(it) => it
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| io_err("cannot list", dir, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("cannot list", dir, e)),
    }
}

fn cleanup_blocking(root: &Path, referenced: &HashSet<String>) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    for entry in entries(&root.join("tmp"))? {
        let path = entry.path();
        fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
        report.temp_files += 1;
    }
    for prefix in entries(&root.join("sha256"))? {
        let prefix_name = prefix.file_name().to_string_lossy().into_owned();
        for blob in entries(&prefix.path())? {
            let digest = format!("{prefix_name}{}", blob.file_name().to_string_lossy());
            if !referenced.contains(&digest) {
                let path = blob.path();
                fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
                report.unreferenced_blobs += 1;
            }
        }
    }
    if report != CleanupReport::default() {
        tracing::info!(
            temp_files = report.temp_files,
            unreferenced_blobs = report.unreferenced_blobs,
            "artifact store cleaned up"
        );
    }
    Ok(report)
}
