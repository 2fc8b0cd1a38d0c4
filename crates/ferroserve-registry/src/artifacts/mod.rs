//! Content-addressed artifact stores: a local folder
//! ([`LocalArtifactStore`]) or an S3-compatible object store
//! ([`ObjectArtifactStore`]), chosen by URL through [`ArtifactStore`].
//!
//! A blob is named by the sha256 of its bytes, `sha256/ab/cdef...` (the
//! first two hex digits name a sub-folder), under the store's root or
//! prefix. Uploads are written to a temporary file and hashed on the way
//! before they enter the store, so a blob name never holds partial or
//! unverified bytes; reads check the digest again.
//!
//! Users may also put data files (batch job inputs) in the store's
//! location with their own tools, outside `sha256/`, `tmp/` and `jobs/`: they are
//! named by URI ([`ArtifactStore::data_path`]) and copied out as they are
//! ([`ArtifactStore::download_data`]).

mod data;
mod local;
mod named;
mod object;
mod staging;
mod verified;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncRead;

pub use local::LocalArtifactStore;
pub use named::{FileStream, NamedChild, NamedEntry, NamedFiles};
pub use object::ObjectArtifactStore;
pub use verified::VerifiedArtifact;

use crate::error::{RegistryError, Result};
use crate::validate;

/// What a cleanup of an artifact store removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Temporary files of interrupted uploads.
    pub temp_files: usize,
    /// Blobs that no version references.
    pub unreferenced_blobs: usize,
}

impl CleanupReport {
    /// Logs what was removed from `store`, if anything.
    fn log(&self, store: &str) {
        if *self != CleanupReport::default() {
            tracing::info!(
                store,
                temp_files = self.temp_files,
                unreferenced_blobs = self.unreferenced_blobs,
                "artifact store cleaned up"
            );
        }
    }
}

/// An artifact store of either kind.
#[derive(Debug, Clone)]
pub enum ArtifactStore {
    /// Blobs in a local folder.
    Local(LocalArtifactStore),
    /// Blobs in an S3-compatible object store.
    Object(ObjectArtifactStore),
}

impl ArtifactStore {
    /// Opens the store at `url`:
    ///
    /// - `file:///ABS/DIR` or a plain path: a local folder;
    /// - `s3://BUCKET[/PREFIX]`: an S3-compatible bucket, with credentials,
    ///   region and endpoint from the standard `AWS_*` environment variables
    ///   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
    ///   `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`...).
    ///
    /// `work_dir` holds the temporary files of uploads to a remote store
    /// (in its `artifact-uploads` folder); a local store keeps them in its
    /// own `tmp` folder.
    pub fn from_url(url: &str, work_dir: &Path) -> Result<Self> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store = ObjectArtifactStore::s3_from_env(bucket, prefix, work_dir)?;
            return Ok(ArtifactStore::Object(store));
        }
        let path = match url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => path,
            Some(_) => {
                return Err(RegistryError::Invalid(format!(
                    "artifact store URL '{url}' is not an absolute file URL: \
                     use file:///ABS/DIR (three slashes)"
                )))
            }
            None if url.contains("://") || url.is_empty() => {
                return Err(RegistryError::Invalid(format!(
                    "artifact store URL '{url}' is not supported: use a folder path, \
                     file:///ABS/DIR or s3://BUCKET[/PREFIX]"
                )))
            }
            None => url,
        };
        Ok(ArtifactStore::Local(LocalArtifactStore::new(path)))
    }

    /// Where the store is, without secrets, e.g. `file:///var/artifacts`
    /// or `s3://models/prod`.
    pub fn describe(&self) -> String {
        match self {
            ArtifactStore::Local(s) => s.location(),
            ArtifactStore::Object(s) => s.location(),
        }
    }

    /// Resolves a data URI to a path inside the store, for
    /// [`download_data`](Self::download_data). Accepted forms:
    ///
    /// - `artifacts:/REL/PATH`;
    /// - the store's location, as [`describe`](Self::describe) prints it,
    ///   followed by `/REL/PATH`: `file:///ABS/ROOT/REL/PATH` (or the plain
    ///   path `/ABS/ROOT/REL/PATH`) for a local store,
    ///   `s3://BUCKET/PREFIX/REL/PATH` for an S3 one.
    ///
    /// `REL/PATH` is taken as written (no percent-decoding). Refused with
    /// [`RegistryError::Invalid`], saying what is wrong and which forms are
    /// accepted: another scheme or a location outside this store, an empty
    /// path, `.` or `..` or empty components, an absolute path, backslashes,
    /// control characters, and paths under the store's own `sha256/`, `jobs/` and
    /// `tmp/` folders.
    pub fn data_path(&self, uri: &str) -> Result<String> {
        let locations = match self {
            ArtifactStore::Local(s) => s.locations(),
            ArtifactStore::Object(s) => vec![s.location()],
        };
        data::resolve(uri, &locations)
    }

    /// The area `dir` of the store (`jobs`), holding files by name beside
    /// the blobs: a folder of a local store, a key prefix of an object store.
    pub fn named(&self, dir: &str) -> NamedFiles {
        match self {
            ArtifactStore::Local(s) => NamedFiles::in_folder(s.root(), dir),
            ArtifactStore::Object(s) => s.named(dir),
        }
    }

    /// Copies the data file at `rel` (as [`data_path`](Self::data_path)
    /// returns it) to the local file `to`, created or truncated, without
    /// holding it in memory; returns its size in bytes.
    ///
    /// A missing file is [`RegistryError::DataMissing`]; a file of more
    /// than `limit` bytes is refused ([`RegistryError::Invalid`]), before
    /// copying when the store tells its size and while copying otherwise.
    /// On failure `to` is removed.
    pub async fn download_data(&self, rel: &str, to: &Path, limit: u64) -> Result<u64> {
        match self {
            ArtifactStore::Local(s) => s.download_data(rel, to, limit).await,
            ArtifactStore::Object(s) => s.download_data(rel, to, limit).await,
        }
    }

    /// Stores everything `reader` yields; returns its sha256 (hex) and
    /// size. Storing bytes that are already present keeps one copy.
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
    ) -> Result<(String, u64)> {
        match self {
            ArtifactStore::Local(s) => s.put_stream(reader).await,
            ArtifactStore::Object(s) => s.put_stream(reader).await,
        }
    }

    /// Like [`put_stream`](Self::put_stream), but refuses the bytes, and
    /// leaves nothing behind, unless their sha256 is `expected`; returns
    /// their size.
    pub async fn put_verified<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        expected: &str,
    ) -> Result<u64> {
        match self {
            ArtifactStore::Local(s) => s.put_verified(reader, expected).await,
            ArtifactStore::Object(s) => s.put_verified(reader, expected).await,
        }
    }

    /// Checks, streaming, that a blob still hashes to `digest`, and hands
    /// it out as a local file (see [`VerifiedArtifact`]): a missing blob is
    /// [`RegistryError::ArtifactMissing`], a corrupted one
    /// [`RegistryError::ArtifactCorrupted`].
    pub async fn fetch_verified(&self, digest: &str) -> Result<VerifiedArtifact> {
        match self {
            ArtifactStore::Local(s) => s.fetch_verified(digest).await,
            ArtifactStore::Object(s) => s.fetch_verified(digest).await,
        }
    }

    /// Like [`fetch_verified`](Self::fetch_verified), then reads the bytes
    /// into memory: for small blobs and tools, never for serving paths.
    pub async fn open_verified(&self, digest: &str) -> Result<Vec<u8>> {
        let artifact = self.fetch_verified(digest).await?;
        blocking("read", move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut artifact.into_file(), &mut bytes)
                .map_err(|e| RegistryError::Io(format!("cannot read a verified artifact: {e}")))?;
            Ok(bytes)
        })
        .await
    }

    /// Whether the blob of `digest` is in the store (its bytes unchecked).
    pub async fn exists(&self, digest: &str) -> Result<bool> {
        match self {
            ArtifactStore::Local(s) => s.exists(digest).await,
            ArtifactStore::Object(s) => s.exists(digest).await,
        }
    }

    /// Removes the blob of `digest`; a missing blob is not an error.
    pub async fn delete(&self, digest: &str) -> Result<()> {
        match self {
            ArtifactStore::Local(s) => s.delete(digest).await,
            ArtifactStore::Object(s) => s.delete(digest).await,
        }
    }

    /// Removes the temporary files of interrupted uploads (those no upload
    /// holds locked), and the blobs whose digest is not in `referenced`
    /// that are at least `min_age` old: `min_age` protects blobs stored but
    /// not yet registered (by another process or replica, say).
    pub async fn cleanup(
        &self,
        referenced: &HashSet<String>,
        min_age: Duration,
    ) -> Result<CleanupReport> {
        match self {
            ArtifactStore::Local(s) => s.cleanup(referenced, min_age).await,
            ArtifactStore::Object(s) => s.cleanup(referenced, min_age).await,
        }
    }
}

/// The three parts of a blob's name: `sha256`, the first two hex digits,
/// and the rest.
fn blob_parts(digest: &str) -> Result<[&str; 3]> {
    validate::sha256_hex("artifact digest", digest)?;
    Ok(["sha256", &digest[..2], &digest[2..]])
}

/// The digest a blob's sub-folder and file name spell, if they spell one:
/// anything else in the store is not ours to remove.
fn digest_from_parts(dir: &str, file: &str) -> Option<String> {
    let digest = format!("{dir}{file}");
    (dir.len() == 2 && validate::sha256_hex("blob name", &digest).is_ok()).then_some(digest)
}

/// Runs blocking filesystem work off the async workers.
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RegistryError::Io(format!("artifact {what} task failed: {e}")))?
}

/// Whether something last modified at `modified_ms` (unix ms) is at least
/// `min_age` old; a time in the future is young.
fn old_enough(modified_ms: i64, min_age: Duration) -> bool {
    let min_age = i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    crate::db::now_ms().saturating_sub(modified_ms) >= min_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_round_trip() {
        let digest = "ab".repeat(32);
        let [kind, dir, file] = blob_parts(&digest).expect("valid digest");
        assert_eq!((kind, dir), ("sha256", "ab"));
        assert_eq!(digest_from_parts(dir, file), Some(digest));
        assert_eq!(digest_from_parts("ab", "not-a-blob"), None);
        assert_eq!(digest_from_parts("a", &"b".repeat(63)), None);
        assert!(blob_parts("../../etc/passwd").is_err());
    }

    #[test]
    fn urls_choose_the_store() {
        let work = Path::new("/tmp/work");
        let local = ArtifactStore::from_url("/var/artifacts", work).expect("plain path");
        assert_eq!(local.describe(), "file:///var/artifacts");
        let local = ArtifactStore::from_url("file:///var/artifacts", work).expect("file URL");
        assert!(matches!(local, ArtifactStore::Local(_)));
        let relative = ArtifactStore::from_url("data/artifacts", work).expect("relative path");
        assert_eq!(relative.describe(), "data/artifacts");
        for bad in [
            "file://relative/dir",
            "gs://bucket",
            "",
            "s3://",
            "s3:///prefix",
        ] {
            let e = ArtifactStore::from_url(bad, work).expect_err(bad);
            assert!(e.to_string().contains("artifact store"), "{bad}: {e}");
        }
    }

    #[test]
    fn ages() {
        let now = crate::db::now_ms();
        assert!(old_enough(now - 10_000, Duration::from_secs(5)));
        assert!(!old_enough(now - 1_000, Duration::from_secs(5)));
        assert!(!old_enough(now + 60_000, Duration::ZERO));
        assert!(old_enough(now, Duration::ZERO));
    }
}
