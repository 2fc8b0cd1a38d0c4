//! Content-addressed artifact store on an S3-compatible object store.
//!
//! Layout: `PREFIX/sha256/ab/cdef...` in the bucket. An upload is written
//! to a temporary file in the work folder while it is hashed, then sent
//! under its digest's key: in one request when small, as a multipart
//! upload when large, and not at all when the key already holds an object
//! of that size (dedup). A key therefore only ever holds complete bytes
//! whose digest was checked before they were sent.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio_util::io::StreamReader;

use super::staging::{self, Staged};
use super::verified::VerifiedArtifact;
use super::{blob_parts, blocking, data, digest_from_parts, old_enough, CleanupReport};
use crate::error::{RegistryError, Result};

/// Uploads from this size on are multipart, in parts of this size (S3
/// wants parts of at least 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// Artifacts stored by their sha256 in an object store.
#[derive(Clone)]
pub struct ObjectArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// The store's address for messages, e.g. `s3://bucket` (no secrets).
    base: String,
    prefix: Key,
    /// Temporary files of uploads in progress.
    uploads: PathBuf,
}

/// Shows the location only: the client's configuration may hold secrets.
impl fmt::Debug for ObjectArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectArtifactStore")
            .field("location", &self.location())
            .field("uploads", &self.uploads)
            .finish_non_exhaustive()
    }
}

impl ObjectArtifactStore {
    /// A store keeping its blobs under `prefix` of `store`, and the
    /// temporary files of its uploads in `work_dir/artifact-uploads`.
    /// `base` names `store` in messages, e.g. `s3://bucket`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        base: &str,
        prefix: &str,
        work_dir: &Path,
    ) -> Result<Self> {
        let prefix = Key::parse(prefix.trim_matches('/')).map_err(|e| {
            RegistryError::Invalid(format!(
                "artifact store prefix '{prefix}' of {base} is not a valid object path: {e}"
            ))
        })?;
        Ok(ObjectArtifactStore {
            store,
            base: base.trim_end_matches('/').to_owned(),
            prefix,
            uploads: work_dir.join("artifact-uploads"),
        })
    }

    /// A store in S3 bucket `bucket`, configured by the standard `AWS_*`
    /// environment variables (credentials, `AWS_DEFAULT_REGION`,
    /// `AWS_ENDPOINT_URL` for S3-compatible servers, `AWS_ALLOW_HTTP`).
    pub fn s3_from_env(bucket: &str, prefix: &str, work_dir: &Path) -> Result<Self> {
        let base = format!("s3://{bucket}");
        if bucket.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "artifact store URL '{base}/{prefix}' names no bucket: use s3://BUCKET[/PREFIX]"
            )));
        }
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| {
                RegistryError::Invalid(format!("cannot set up the artifact store {base}: {e}"))
            })?;
        Self::new(Arc::new(s3), &base, prefix, work_dir)
    }

    /// Where the blobs are, e.g. `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        if self.prefix.as_ref().is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, self.prefix)
        }
    }

    /// The area `dir` under the prefix (see [`NamedFiles`](super::NamedFiles)).
    pub fn named(&self, dir: &str) -> super::NamedFiles {
        super::NamedFiles::in_objects(self.store.clone(), &self.base, &self.prefix, dir)
    }

    /// The key of the blob of `digest` (whether or not it exists).
    pub fn blob_key(&self, digest: &str) -> Result<Key> {
        Ok(blob_parts(digest)?
            .iter()
            .fold(self.prefix.clone(), |key, part| key.join(*part)))
    }

    /// Stores everything `reader` yields; returns its sha256 (hex) and size.
    /// Storing bytes that are already present keeps one copy.
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
    ) -> Result<(String, u64)> {
        let staged = staging::stage(&self.uploads, reader).await?;
        let stored = (staged.digest.clone(), staged.size);
        self.commit(staged).await?;
        Ok(stored)
    }

    /// Like [`put_stream`](Self::put_stream), but refuses the bytes, and
    /// leaves nothing behind, unless their sha256 is `expected`.
    pub async fn put_verified<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        expected: &str,
    ) -> Result<u64> {
        let staged = staging::stage_verified(&self.uploads, reader, expected).await?;
        let size = staged.size;
        self.commit(staged).await?;
        Ok(size)
    }

    /// Downloads a blob to a temporary file in the work folder, hashing it
    /// on the way, and hands it out when it still holds the bytes of
    /// `digest`; a missing or corrupted blob is refused.
    pub async fn fetch_verified(&self, digest: &str) -> Result<VerifiedArtifact> {
        let key = self.blob_key(digest)?;
        let location = self.url(&key);
        let found = match self.store.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                tracing::error!(digest, location, "artifact missing from the store");
                return Err(RegistryError::ArtifactMissing {
                    digest: digest.to_owned(),
                    path: location,
                });
            }
            Err(e) => return Err(self.error("cannot read", &key, e)),
        };
        let stream = found
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()));
        let staged = staging::stage(&self.uploads, StreamReader::new(stream)).await?;
        let digest = digest.to_owned();
        blocking("read", move || {
            let path = staged.file.path().to_owned();
            VerifiedArtifact::check(&digest, path, &location, Some(staged.file))
        })
        .await
    }

    /// Whether the blob of `digest` is in the store (its bytes unchecked).
    pub async fn exists(&self, digest: &str) -> Result<bool> {
        Ok(self.stored_size(&self.blob_key(digest)?).await?.is_some())
    }

    /// Removes the blob of `digest`; a missing blob is not an error.
    pub async fn delete(&self, digest: &str) -> Result<()> {
        let key = self.blob_key(digest)?;
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("cannot delete", &key, e)),
        }
    }

    /// Downloads the data file at `rel` (a path relative to the prefix,
    /// checked as [`ArtifactStore::data_path`](super::ArtifactStore::data_path)
    /// does) to `to` chunk by chunk, `limit` bytes at most; returns its
    /// size. A missing object is [`RegistryError::DataMissing`]; on
    /// failure `to` is removed.
    pub async fn download_data(&self, rel: &str, to: &Path, limit: u64) -> Result<u64> {
        data::checked(rel)?;
        // Parsed, not joined part by part: joining would percent-encode
        // characters such as `[` that a key written by other tools holds
        // as they are.
        let full = if self.prefix.as_ref().is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        let key = Key::parse(&full).map_err(|e| {
            RegistryError::Invalid(format!("data path '{rel}' is not a valid object key: {e}"))
        })?;
        let uri = self.url(&key);
        let found = match self.store.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(RegistryError::DataMissing { uri })
            }
            Err(e) => return Err(self.error("cannot read", &key, e)),
        };
        if found.meta.size > limit {
            return Err(data::too_large(&uri, Some(found.meta.size), limit));
        }
        let size = data::write_limited(found.into_stream(), &uri, to, limit).await?;
        tracing::debug!(key = %key, size, "data file downloaded");
        Ok(size)
    }

    /// Removes the temporary files of the work folder written, and the
    /// blobs whose digest is not in `referenced` stored, at least `min_age`
    /// ago. Objects under the prefix that are not blobs are left
    /// alone.
    ///
    /// Run it on start, before uploads are accepted: an upload in progress
    /// would lose its temporary file.
    pub async fn cleanup(
        &self,
        referenced: &HashSet<String>,
        min_age: Duration,
    ) -> Result<CleanupReport> {
        let uploads = self.uploads.clone();
        let temp_files = blocking("cleanup", move || staging::remove_temp_files(&uploads)).await?;
        let blobs = self.prefix.clone().join("sha256");
        let listed: Vec<_> = self
            .store
            .list(Some(&blobs))
            .try_collect()
            .await
            .map_err(|e| self.error("cannot list", &blobs, e))?;
        let mut unreferenced_blobs = 0;
        for object in listed {
            let parts: Vec<_> = object.location.parts().collect();
            let digest = match parts.as_slice() {
                [.., dir, file] => digest_from_parts(dir.as_ref(), file.as_ref()),
                _ => None,
            };
            let Some(digest) = digest else { continue };
            if referenced.contains(&digest)
                || !old_enough(object.last_modified.timestamp_millis(), min_age)
            {
                continue;
            }
            self.delete(&digest).await?;
            unreferenced_blobs += 1;
        }
        let report = CleanupReport {
            temp_files,
            unreferenced_blobs,
        };
        report.log(&self.location());
        Ok(report)
    }

    /// Sends a verified temporary file under its digest's key, unless an
    /// object of that size is already there. The temporary file is removed
    /// either way.
    async fn commit(&self, staged: Staged) -> Result<()> {
        let key = self.blob_key(&staged.digest)?;
        if self.stored_size(&key).await? == Some(staged.size) {
            tracing::debug!(key = %key, "artifact already stored");
            return Ok(());
        }
        upload_file(&self.store, &key, staged.file.path())
            .await
            .map_err(|e| RegistryError::Io(format!("{e} ({})", self.url(&key))))?;
        tracing::info!(key = %key, size = staged.size, "artifact uploaded");
        Ok(())
    }

    /// Size of the object at `key`, or `None` when there is none.
    async fn stored_size(&self, key: &Key) -> Result<Option<u64>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("cannot look at", key, e)),
        }
    }

    fn url(&self, key: &Key) -> String {
        format!("{}/{key}", self.base)
    }

    fn error(&self, what: &str, key: &Key, e: object_store::Error) -> RegistryError {
        RegistryError::Io(format!("{what} {}: {e}", self.url(key)))
    }
}

/// Sends the local file `from` as `key`: in one request when small, as a
/// multipart upload of `PART_SIZE` parts beyond that (aborted on failure,
/// so no part is left behind).
pub(super) async fn upload_file(
    store: &Arc<dyn ObjectStore>,
    key: &Key,
    from: &Path,
) -> std::result::Result<(), String> {
    let mut source = tokio::fs::File::open(from)
        .await
        .map_err(|e| format!("cannot open the file to upload: {e}"))?;
    let mut writer = BufWriter::with_capacity(store.clone(), key.clone(), PART_SIZE)
        .with_max_concurrency(UPLOAD_CONCURRENCY);
    if let Err(e) = tokio::io::copy(&mut source, &mut writer).await {
        // Drops the parts already sent of a multipart upload.
        let _ = writer.abort().await;
        return Err(format!("cannot upload: {e}"));
    }
    writer
        .shutdown()
        .await
        .map_err(|e| format!("cannot complete the upload: {e}"))
}
