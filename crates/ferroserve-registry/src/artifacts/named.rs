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

/// A file or folder directly under a folder of an area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedChild {
    /// Its name within the folder.
    pub name: String,
    /// Whether it is a folder.
    pub is_dir: bool,
    /// Its size in bytes (0 for a folder).
    pub size: u64,
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

    /// Stores what `stream` yields as `name`, refusing (and keeping
    /// nothing) past `limit` bytes; returns the size. The bytes go through
    /// a temporary file (beside the file in a folder area, in the system's
    /// temporary folder for an object store), so a reader never sees part.
    pub async fn put_stream<C, E>(
        &self,
        name: &str,
        stream: impl futures::Stream<Item = std::result::Result<C, E>>,
        limit: u64,
    ) -> Result<u64>
    where
        C: AsRef<[u8]>,
        E: fmt::Display,
    {
        let parts = checked(name)?;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match &self.area {
            Area::Folder(dir) => {
                let path = local(dir, &parts);
                let parent = path.parent().expect("a named file has a folder").to_owned();
                let file_name = path.file_name().unwrap_or_default().to_string_lossy();
                let temp = parent.join(format!("{file_name}.tmp-{unique}"));
                let created = parent.clone();
                blocking("create", move || {
                    durable::create_dir_all(&created)
                        .map_err(|e| io_err("cannot create", &created, e))
                })
                .await?;
                // Removed on failure; renamed into place once whole.
                let size = data::write_limited(stream, name, &temp, limit).await?;
                blocking("store", move || {
                    std::fs::rename(&temp, &path).map_err(|e| io_err("cannot store", &path, e))?;
                    durable::fsync_parent(&path).map_err(|e| io_err("cannot sync", &path, e))
                })
                .await?;
                Ok(size)
            }
            Area::Object { .. } => {
                let temp = std::env::temp_dir().join(format!("ferroserve-upload-{unique}"));
                let _removed_when_done = super::staging::TempFile::new(temp.clone());
                let size = data::write_limited(stream, name, &temp, limit).await?;
                self.put_file(name, &temp).await?;
                Ok(size)
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

    /// Removes `dir` and everything under it, or the file `dir` (nothing
    /// there is fine).
    pub async fn remove_all(&self, dir: &str) -> Result<()> {
        let parts = checked(dir)?;
        match &self.area {
            Area::Folder(root) => {
                let path = local(root, &parts);
                blocking("remove", move || {
                    let removed = if path.is_file() {
                        std::fs::remove_file(&path)
                    } else {
                        std::fs::remove_dir_all(&path)
                    };
                    match removed {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            Err(io_err("cannot remove", &path, e))
                        }
                        _ => Ok(()),
                    }
                })
                .await
            }
            Area::Object { store, .. } => {
                let prefix = self.key(&parts);
                let mut keys: Vec<Key> = store
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await
                    .map_err(|e| self.error("cannot list", &prefix, e))?;
                keys.push(prefix);
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

    /// What is directly under the folder `dir` (the area itself when
    /// empty), by name; nothing when there is no such folder.
    pub async fn children(&self, dir: &str) -> Result<Vec<NamedChild>> {
        let parts = if dir.is_empty() {
            Vec::new()
        } else {
            checked(dir)?
        };
        let mut children = match &self.area {
            Area::Folder(root) => {
                let path = local(root, &parts);
                blocking("list", move || {
                    let entries = match std::fs::read_dir(&path) {
                        Ok(entries) => entries,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                            ) =>
                        {
                            return Ok(Vec::new())
                        }
                        Err(e) => return Err(io_err("cannot list", &path, e)),
                    };
                    let mut children = Vec::new();
                    for entry in entries {
                        let entry = entry.map_err(|e| io_err("cannot list", &path, e))?;
                        let name = entry.file_name().to_string_lossy().into_owned();
                        // Files still being written have a temporary name.
                        if name.contains(".tmp-") {
                            continue;
                        }
                        let meta = entry
                            .metadata()
                            .map_err(|e| io_err("cannot read", &path, e))?;
                        children.push(NamedChild {
                            name,
                            is_dir: meta.is_dir(),
                            size: if meta.is_dir() { 0 } else { meta.len() },
                        });
                    }
                    Ok(children)
                })
                .await?
            }
            Area::Object { store, .. } => {
                let key = self.key(&parts);
                let listed = store
                    .list_with_delimiter(Some(&key))
                    .await
                    .map_err(|e| self.error("cannot list", &key, e))?;
                let name_of = |location: &Key| location.filename().unwrap_or_default().to_owned();
                listed
                    .common_prefixes
                    .iter()
                    .map(|dir| NamedChild {
                        name: name_of(dir),
                        is_dir: true,
                        size: 0,
                    })
                    .chain(listed.objects.iter().map(|file| NamedChild {
                        name: name_of(&file.location),
                        is_dir: false,
                        size: file.size,
                    }))
                    .collect()
            }
        };
        children.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(children)
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
            let children = area.children("j1").await.expect("children");
            let listed: Vec<(&str, bool, u64)> = children
                .iter()
                .map(|c| (c.name.as_str(), c.is_dir, c.size))
                .collect();
            assert_eq!(listed, [("input.csv", false, 8), ("output", true, 0)]);
            assert!(area.children("j9").await.expect("none").is_empty());
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
            let chunks =
                futures::stream::iter([Ok::<_, std::io::Error>(&b"ab"[..]), Ok(&b"c"[..])]);
            let size = area.put_stream("j3/f", chunks, 3).await.expect("stream");
            assert_eq!(
                (size, area.get("j3/f").await.expect("get").as_deref()),
                (3, Some(&b"abc"[..]))
            );
            let over = futures::stream::iter([Ok::<_, std::io::Error>(&b"abcd"[..])]);
            assert!(
                area.put_stream("j3/g", over, 3).await.is_err(),
                "over the limit"
            );
            assert!(
                area.get("j3/g").await.expect("get").is_none(),
                "nothing kept"
            );
            let listed: Vec<String> = area
                .children("j3")
                .await
                .expect("children")
                .into_iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(listed, ["f"], "no temporary file left");
            area.remove_all("j3").await.expect("remove");
            area.remove_all("j2/request.body")
                .await
                .expect("remove a file");
            assert!(area.get("j2/request.body").await.expect("gone").is_none());
            area.put("j2/request.body", Bytes::from_static(b"{}"))
                .await
                .expect("j2 again");
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
