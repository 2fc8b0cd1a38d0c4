//! Files kept by name in an area of the artifact store beside the blobs
//! (`jobs/` holds the inputs, results and answers of jobs), so that every
//! replica sharing the store reads and writes the same files: a job
//! submitted on one replica can run, and be read, on any other.
//!
//! A file is written whole (a local file through a temporary name and a
//! rename, an object in one request or a multipart upload), so a reader
//! never sees part of one; writing a name again replaces it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio_util::io::ReaderStream;

use super::staging::io_err;
use super::{blocking, data, object};
use crate::durable;
use crate::error::{RegistryError, Result};

/// A stream of a file's bytes.
pub type FileStream = BoxStream<'static, Result<Bytes>>;

/// One named area of an artifact store.
#[derive(Clone)]
pub struct NamedFiles {
    area: Area,
}

#[derive(Clone)]
enum Area {
    /// Files under a local (possibly shared) folder.
    Folder(PathBuf),
    /// Objects under a key prefix of an object store.
    Object {
        store: Arc<dyn ObjectStore>,
        /// The store's address for messages, e.g. `s3://bucket`.
        base: String,
        prefix: Key,
    },
}

/// Shows the location only: an object store's client may hold secrets.
impl fmt::Debug for NamedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NamedFiles").field(&self.describe()).finish()
    }
}

/// A name's last part and its modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEntry {
    /// The top-level name (a job id under `jobs/`).
    pub name: String,
    /// When anything under it was last modified (unix ms).
    pub modified_ms: i64,
}

impl NamedFiles {
    /// The area `dir` of a local store's `root`.
    pub(super) fn in_folder(root: &Path, dir: &str) -> Self {
        NamedFiles {
            area: Area::Folder(root.join(dir)),
        }
    }

    /// The area `dir` under `prefix` of an object store.
    pub(super) fn in_objects(
        store: Arc<dyn ObjectStore>,
        base: &str,
        prefix: &Key,
        dir: &str,
    ) -> Self {
        NamedFiles {
            area: Area::Object {
                store,
                base: base.to_owned(),
                prefix: prefix.clone().join(dir),
            },
        }
    }

    /// A local area of its own under `dir` (for one-process tools and tests).
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        NamedFiles {
            area: Area::Folder(dir.into()),
        }
    }

    /// Where the area is, for messages: a folder or `s3://bucket/prefix/jobs`.
    pub fn describe(&self) -> String {
        match &self.area {
            Area::Folder(dir) => dir.display().to_string(),
            Area::Object { base, prefix, .. } => format!("{base}/{prefix}"),
        }
    }

    /// Writes `bytes` as `name` (`JOB/output/00000001`), replacing what was there.
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<()> {
        let parts = checked(name)?;
        match &self.area {
            Area::Folder(dir) => {
                let path = local(dir, &parts);
                blocking("write", move || {
                    let parent = path.parent().expect("a named file has a folder");
                    durable::create_dir_all(parent)
                        .map_err(|e| io_err("cannot create", parent, e))?;
                    durable::write_atomic(&path, &bytes)
                        .map_err(|e| io_err("cannot write", &path, e))
                })
                .await
            }
            Area::Object { store, .. } => {
                let key = self.key(&parts);
                store
                    .put(&key, PutPayload::from_bytes(bytes))
                    .await
                    .map(drop)
                    .map_err(|e| self.error("cannot write", &key, e))
            }
        }
    }

    /// Stores the local file `from` as `name`: linked (or copied) into a
    /// local area, uploaded to an object store. `from` is left as it is.
    pub async fn put_file(&self, name: &str, from: &Path) -> Result<()> {
        let parts = checked(name)?;
        match &self.area {
            Area::Folder(dir) => {
                let (path, from) = (local(dir, &parts), from.to_owned());
                blocking("store", move || {
                    let parent = path.parent().expect("a named file has a folder");
                    durable::create_dir_all(parent)
                        .map_err(|e| io_err("cannot create", parent, e))?;
                    link_or_copy(&from, &path)
                })
                .await
            }
            Area::Object { store, .. } => {
                let key = self.key(&parts);
                object::upload_file(store, &key, from)
                    .await
                    .map_err(|e| RegistryError::Io(format!("{e} ({})", self.url(&key))))
            }
        }
    }

    /// The local path of `name` when the area is a folder (the file may
    /// not exist); `None` for an object store.
    pub fn local_path(&self, name: &str) -> Result<Option<PathBuf>> {
        let parts = checked(name)?;
        Ok(match &self.area {
            Area::Folder(dir) => Some(local(dir, &parts)),
            Area::Object { .. } => None,
        })
    }

    /// Reads the whole of `name` (a small file); `None` when it is missing.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let Some(stream) = self.open(name).await? else {
            return Ok(None);
        };
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(Some(Bytes::from(chunks.concat())))
    }

    /// Streams `name`; `None` when it is missing.
    pub async fn open(&self, name: &str) -> Result<Option<FileStream>> {
        let parts = checked(name)?;
        match &self.area {
            Area::Folder(dir) => {
                let path = local(dir, &parts);
                match tokio::fs::File::open(&path).await {
                    Ok(file) => {
                        let shown = name.to_owned();
                        Ok(Some(
                            ReaderStream::new(file)
                                .map_err(move |e| {
                                    RegistryError::Io(format!("cannot read {shown}: {e}"))
                                })
                                .boxed(),
                        ))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("cannot open", &path, e)),
                }
            }
            Area::Object { store, .. } => {
                let key = self.key(&parts);
                match store.get(&key).await {
                    Ok(found) => {
                        let url = self.url(&key);
                        Ok(Some(
                            found
                                .into_stream()
                                .map_err(move |e| {
                                    RegistryError::Io(format!("cannot read {url}: {e}"))
                                })
                                .boxed(),
                        ))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.error("cannot read", &key, e)),
                }
            }
        }
    }

    /// Copies `name` to the local file `to`; `false` when `name` is missing.
    pub async fn fetch(&self, name: &str, to: &Path) -> Result<bool> {
        let Some(stream) = self.open(name).await? else {
            return Ok(false);
        };
        data::write_limited(stream, name, to, u64::MAX).await?;
        Ok(true)
    }

    /// Removes `dir` and everything under it (nothing there is fine).
    pub async fn remove_all(&self, dir: &str) -> Result<()> {
        let parts = checked(dir)?;
        match &self.area {
            Area::Folder(root) => {
                let path = local(root, &parts);
                blocking("remove", move || match std::fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(io_err("cannot remove", &path, e))
                    }
                    _ => Ok(()),
                })
                .await
            }
            Area::Object { store, .. } => {
                let prefix = self.key(&parts);
                let keys: Vec<Key> = store
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await
                    .map_err(|e| self.error("cannot list", &prefix, e))?;
                for key in keys {
                    match store.delete(&key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(self.error("cannot remove", &key, e)),
                    }
                }
                Ok(())
            }
        }
    }

    /// The top-level names of the area, each with the last time anything
    /// under it changed.
    pub async fn entries(&self) -> Result<Vec<NamedEntry>> {
        match &self.area {
            Area::Folder(root) => {
                let root = root.clone();
                blocking("list", move || {
                    let entries = match std::fs::read_dir(&root) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                        Err(e) => return Err(io_err("cannot list", &root, e)),
                    };
                    Ok(entries
                        .filter_map(|entry| {
                            let entry = entry.ok()?;
                            let modified = entry.metadata().ok()?.modified().ok()?;
                            let modified_ms = modified
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as i64);
                            Some(NamedEntry {
                                name: entry.file_name().to_string_lossy().into_owned(),
                                modified_ms,
                            })
                        })
                        .collect())
                })
                .await
            }
            Area::Object { store, prefix, .. } => {
                let listed: Vec<_> = store
                    .list(Some(prefix))
                    .try_collect()
                    .await
                    .map_err(|e| self.error("cannot list", prefix, e))?;
                let mut newest = std::collections::BTreeMap::<String, i64>::new();
                for meta in listed {
                    let Some(first) = meta
                        .location
                        .prefix_match(prefix)
                        .and_then(|mut p| p.next())
                    else {
                        continue;
                    };
                    let at = meta.last_modified.timestamp_millis();
                    let entry = newest.entry(first.as_ref().to_owned()).or_insert(at);
                    *entry = (*entry).max(at);
                }
                Ok(newest
                    .into_iter()
                    .map(|(name, modified_ms)| NamedEntry { name, modified_ms })
                    .collect())
            }
        }
    }

    fn key(&self, parts: &[&str]) -> Key {
        match &self.area {
            Area::Object { prefix, .. } => parts.iter().fold(prefix.clone(), |key, p| key.join(*p)),
            Area::Folder(_) => unreachable!("keys are for object areas"),
        }
    }

    fn url(&self, key: &Key) -> String {
        match &self.area {
            Area::Object { base, .. } => format!("{base}/{key}"),
            Area::Folder(dir) => dir.display().to_string(),
        }
    }

    fn error(&self, what: &str, key: &Key, e: object_store::Error) -> RegistryError {
        RegistryError::Io(format!("{what} {}: {e}", self.url(key)))
    }
}

/// The parts of `name`: letters, digits, `.`, `_` and `-` between slashes,
/// with no empty, `.` or `..` part. Names are made by the server (job ids
/// are UUIDs), so anything else is a bug, refused before it touches a path.
fn checked(name: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = name.split('/').collect();
    let fine = |part: &&str| {
        !part.is_empty()
            && *part != "."
            && *part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if parts.iter().all(fine) {
        Ok(parts)
    } else {
        Err(RegistryError::Invalid(format!(
            "'{name}' is not a valid stored file name"
        )))
    }
}

fn local(root: &Path, parts: &[&str]) -> PathBuf {
    parts
        .iter()
        .fold(root.to_path_buf(), |path, p| path.join(p))
}

/// Links `from` as `to` (no copy on one file system), else copies it
/// through a temporary name; either way `to` is whole and synced.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(from), std::fs::canonicalize(to)) {
        if a == b {
            return Ok(()); // Already stored there.
        }
    }
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        let temp = to.with_extension(format!("tmp-{}", std::process::id()));
        let copied = std::fs::copy(from, &temp)
            .and_then(|_| std::fs::File::open(&temp)?.sync_all())
            .and_then(|()| std::fs::rename(&temp, to));
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&temp);
            return Err(io_err("cannot copy to", to, e));
        }
    }
    durable::fsync_parent(to).map_err(|e| io_err("cannot sync the folder of", to, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn areas(dir: &Path) -> [NamedFiles; 2] {
        [
            NamedFiles::local(dir.join("jobs")),
            NamedFiles::in_objects(
                Arc::new(InMemory::new()),
                "memory://",
                &Key::from("p"),
                "jobs",
            ),
        ]
    }

    #[tokio::test]
    async fn files_are_written_read_listed_and_removed_in_both_kinds_of_area() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("input.csv");
        std::fs::write(&input, "a,b\n1,2\n").expect("input");
        for area in areas(dir.path()) {
            assert_eq!(area.get("j1/output/00000000").await.expect("get"), None);
            area.put("j1/output/00000000", Bytes::from_static(b"row\n1\n"))
                .await
                .expect("put");
            area.put("j1/output/00000000", Bytes::from_static(b"row\n2\n"))
                .await
                .expect("replace");
            area.put_file("j1/input.csv", &input)
                .await
                .expect("put file");
            assert_eq!(
                area.get("j1/output/00000000")
                    .await
                    .expect("get")
                    .as_deref(),
                Some(&b"row\n2\n"[..])
            );
            let copy = dir.path().join("copy.csv");
            assert!(area.fetch("j1/input.csv", &copy).await.expect("fetch"));
            assert_eq!(std::fs::read(&copy).expect("copy"), b"a,b\n1,2\n");
            assert!(!area.fetch("j2/input.csv", &copy).await.expect("missing"));
            area.put("j2/request.body", Bytes::from_static(b"{}"))
                .await
                .expect("j2");
            let names: Vec<String> = area
                .entries()
                .await
                .expect("list")
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert_eq!(names.len(), 2, "{} lists {names:?}", area.describe());
            area.remove_all("j1").await.expect("remove");
            area.remove_all("j1").await.expect("removing twice is fine");
            assert_eq!(area.get("j1/input.csv").await.expect("gone"), None);
            assert!(area.get("j2/request.body").await.expect("kept").is_some());
        }
    }

    #[test]
    fn names_that_could_leave_the_area_are_refused() {
        for bad in ["", "../x", "a//b", "a/./b", "/abs", "a\\b", "a b", "j1/.."] {
            assert!(checked(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            checked("j-1/output/0.part").expect("fine"),
            ["j-1", "output", "0.part"]
        );
    }
}
