//! Content-addressed artifact store on a local folder.
//!
//! Layout: `ROOT/sha256/ab/cdef...` and `ROOT/tmp/` for uploads in
//! progress. A blob is written to a temporary file, hashed while it is
//! written, fsynced, then renamed into place, so a blob path never holds a
//! partial file. A crash leaves at most a temporary file, which
//! [`LocalArtifactStore::cleanup`] removes on the next start.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncRead;

use super::staging::{self, io_err, modified_ms, Staged};
use super::verified::{hash_reader, VerifiedArtifact};
use super::{blob_parts, blocking, data, digest_from_parts, old_enough, CleanupReport};
use crate::durable;
use crate::error::{RegistryError, Result};

/// Artifacts stored by their sha256 under a root folder.
#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    root: PathBuf,
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

    /// Where the store is: `file:///ABS/ROOT`, or the root as given when
    /// it is relative.
    pub fn location(&self) -> String {
        if self.root.is_absolute() {
            format!("file://{}", self.root.display())
        } else {
            self.root.display().to_string()
        }
    }

    /// The spellings of the store's location that data URIs may start
    /// with: [`location`](Self::location) first, then the plain root.
    pub(super) fn locations(&self) -> Vec<String> {
        let mut locations = vec![self.location()];
        if self.root.is_absolute() {
            locations.push(self.root.display().to_string());
        }
        locations
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(blob_parts(digest)?
            .iter()
            .fold(self.root.clone(), |path, part| path.join(part)))
    }

    /// Stores everything `reader` yields; returns its sha256 (hex) and size.
    /// Storing bytes that are already present keeps one copy.
    pub async fn put_stream<R: AsyncRead + Unpin>(&self, reader: R) -> Result<(String, u64)> {
        let staged = staging::stage(&self.tmp_dir(), reader).await?;
        let stored = (staged.digest.clone(), staged.size);
        self.commit(staged).await?;
        Ok(stored)
    }

    /// Like [`put_stream`](Self::put_stream), but refuses the bytes, and
    /// leaves nothing behind, unless their sha256 is `expected`.
    pub async fn put_verified<R: AsyncRead + Unpin>(
        &self,
        reader: R,
        expected: &str,
    ) -> Result<u64> {
        let staged = staging::stage_verified(&self.tmp_dir(), reader, expected).await?;
        let size = staged.size;
        self.commit(staged).await?;
        Ok(size)
    }

    /// Hashes a blob, streaming, and hands it out as a file when it still
    /// holds the bytes of `digest`; a missing or corrupted blob is refused.
    pub async fn fetch_verified(&self, digest: &str) -> Result<VerifiedArtifact> {
        let path = self.blob_path(digest)?;
        let digest = digest.to_owned();
        let location = format!("{}/{}", self.location(), blob_parts(&digest)?.join("/"));
        blocking("read", move || {
            VerifiedArtifact::check(&digest, path, &location, None)
        })
        .await
    }

    /// Whether the blob of `digest` is in the store (its bytes unchecked).
    pub async fn exists(&self, digest: &str) -> Result<bool> {
        let path = self.blob_path(digest)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("cannot look at", &path, e)),
        }
    }

    /// Removes the blob of `digest`; a missing blob is not an error.
    pub async fn delete(&self, digest: &str) -> Result<()> {
        let path = self.blob_path(digest)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("cannot remove", &path, e)),
        }
    }

    /// Copies the data file at `rel` (a path relative to the root, checked
    /// as [`ArtifactStore::data_path`](super::ArtifactStore::data_path)
    /// does) to `to`, `limit` bytes at most; returns its size. A missing
    /// file is [`RegistryError::DataMissing`]; on failure `to` is removed.
    pub async fn download_data(&self, rel: &str, to: &Path, limit: u64) -> Result<u64> {
        data::checked(rel)?;
        let from = rel
            .split('/')
            .fold(self.root.clone(), |path, part| path.join(part));
        let uri = format!("{}/{rel}", self.location());
        let to = to.to_owned();
        let root = self.root.clone();
        blocking("download", move || {
            refuse_escape(&root, &from, &uri)?;
            let source = match fs::File::open(&from) {
                Ok(source) => source,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Err(RegistryError::DataMissing { uri });
                }
                Err(e) => return Err(io_err("cannot open", &from, e)),
            };
            let meta = source
                .metadata()
                .map_err(|e| io_err("cannot look at", &from, e))?;
            if meta.is_dir() {
                return Err(RegistryError::Invalid(format!(
                    "data URI {uri} names a folder, not a file"
                )));
            }
            if meta.len() > limit {
                return Err(data::too_large(&uri, Some(meta.len()), limit));
            }
            data::copy_limited(source, &uri, &to, limit)
        })
        .await
    }

    /// Removes the temporary files no upload holds, and the blobs whose
    /// digest is not in `referenced` last modified at least `min_age` ago.
    pub async fn cleanup(
        &self,
        referenced: &HashSet<String>,
        min_age: Duration,
    ) -> Result<CleanupReport> {
        let root = self.root.clone();
        let referenced = referenced.clone();
        let report = blocking("cleanup", move || {
            Ok(CleanupReport {
                temp_files: staging::remove_temp_files(&root.join("tmp"))?,
                unreferenced_blobs: remove_unreferenced(&root, &referenced, min_age)?,
            })
        })
        .await?;
        report.log(&self.root.display().to_string());
        Ok(report)
    }

    /// Refuses a store whose folder holds `data_dir` (the server's own
    /// state: registry database, job files), which data URIs would
    /// otherwise expose.
    pub fn refuse_containing(&self, data_dir: &Path) -> Result<()> {
        let (Ok(root), Ok(data)) = (fs::canonicalize(&self.root), fs::canonicalize(data_dir))
        else {
            return Ok(()); // A store not created yet holds nothing.
        };
        if data.starts_with(&root) {
            return Err(RegistryError::Invalid(format!(
                "the artifact store {} holds the data dir {}: its files (the registry, \
                 job requests) would be readable as data URIs; choose a store outside it",
                self.location(),
                data_dir.display()
            )));
        }
        Ok(())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Moves a verified temporary file to its blob path. An existing blob
    /// is kept when it is intact and replaced when it is corrupted.
    async fn commit(&self, staged: Staged) -> Result<()> {
        let target = self.blob_path(&staged.digest)?;
        blocking("commit", move || {
            if hash_file(&target).ok().as_deref() == Some(staged.digest.as_str()) {
                return Ok(()); // dropping `staged` removes the duplicate
            }
            let dir = target.parent().expect("blob paths have a parent folder");
            // `sha256/` is synced too when `ab/` is new in it.
            durable::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
            let from = staged.file.keep();
            if let Err(e) = fs::rename(&from, &target) {
                let _ = fs::remove_file(&from);
                return Err(io_err("cannot move artifact to", &target, e));
            }
            // Make the rename itself durable.
            durable::fsync_dir(dir).map_err(|e| io_err("cannot fsync", dir, e))
        })
        .await
    }
}

/// Refuses a data file that resolves (through symbolic links) to a place
/// outside the store's `root`. A missing file is left for the open to report.
fn refuse_escape(root: &Path, file: &Path, uri: &str) -> Result<()> {
    let (Ok(root), Ok(real)) = (fs::canonicalize(root), fs::canonicalize(file)) else {
        return Ok(());
    };
    if real.starts_with(&root) {
        return Ok(());
    }
    tracing::warn!(uri, target = %real.display(), "data URI leads outside the artifact store");
    Err(RegistryError::Invalid(format!(
        "data URI {uri} leads outside the artifact store (through a symbolic link); \
         only files inside the store can be read"
    )))
}

fn hash_file(path: &Path) -> io::Result<String> {
    Ok(hash_reader(&mut fs::File::open(path)?)?.0)
}

/// Removes the old enough blobs under `root` that are not referenced;
/// returns how many.
fn remove_unreferenced(
    root: &Path,
    referenced: &HashSet<String>,
    min_age: Duration,
) -> Result<usize> {
    let mut removed = 0;
    for prefix in staging::entries(&root.join("sha256"))? {
        let prefix_name = prefix.file_name().to_string_lossy().into_owned();
        for blob in staging::entries(&prefix.path())? {
            let name = blob.file_name().to_string_lossy().into_owned();
            let Some(digest) = digest_from_parts(&prefix_name, &name) else {
                continue;
            };
            let path = blob.path();
            if referenced.contains(&digest) || !old_enough(modified_ms(&path)?, min_age) {
                continue;
            }
            fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}
