//! Test harness: an artifact store on a temporary folder or in a fresh
//! bucket of the temporary S3 server, with direct access to what it stored
//! so that tests can look behind its back and damage it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use ferroserve_registry::ArtifactStore;

use crate::moto;

pub(crate) fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Where the store under test keeps its bytes.
pub(crate) enum Raw {
    /// The root folder of a local store.
    Local(PathBuf),
    /// A client of the bucket, and the store's prefix in it.
    S3 {
        client: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

pub(crate) struct TestStore {
    pub(crate) store: ArtifactStore,
    pub(crate) raw: Raw,
    /// Where temporary files of uploads go.
    pub(crate) temp_dir: PathBuf,
    _dir: tempfile::TempDir,
}

static NEXT_BUCKET: AtomicUsize = AtomicUsize::new(0);

impl TestStore {
    pub(crate) fn local() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("artifacts");
        let store = ArtifactStore::from_url(
            &format!("file://{}", root.display()),
            &dir.path().join("work"),
        )
        .expect("local store");
        TestStore {
            store,
            temp_dir: root.join("tmp"),
            raw: Raw::Local(root),
            _dir: dir,
        }
    }

    /// A store in a new bucket, under a prefix; the test fails, saying how
    /// to install it, when moto_server is not installed.
    pub(crate) async fn s3() -> Self {
        let server = moto::server();
        let bucket = format!(
            "t-{}-{}",
            std::process::id(),
            NEXT_BUCKET.fetch_add(1, Ordering::SeqCst)
        );
        server.create_bucket(&bucket).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let prefix = "models/prod".to_string();
        let store = ArtifactStore::from_url(&format!("s3://{bucket}/{prefix}/"), dir.path())
            .expect("S3 store");
        let client = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .expect("S3 client");
        TestStore {
            store,
            temp_dir: dir.path().join("artifact-uploads"),
            raw: Raw::S3 {
                client: Arc::new(client),
                prefix,
            },
            _dir: dir,
        }
    }

    /// Replaces the bytes stored at `relative` (e.g. `sha256/ab/cd...`),
    /// under that name as written, as other tools (`aws s3 cp`) would.
    pub(crate) async fn write_raw(&self, relative: &str, bytes: &[u8]) {
        match &self.raw {
            Raw::Local(root) => {
                let path = root.join(relative);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, bytes).expect("write");
            }
            Raw::S3 { client, prefix } => {
                // Parsed, not `Key::from`, which would percent-encode `[` and such.
                let key = Key::parse(format!("{prefix}/{relative}")).expect("object key");
                client
                    .put(&key, PutPayload::from(bytes.to_vec()))
                    .await
                    .expect("put");
            }
        }
    }

    /// Removes the blob of `digest` behind the store's back.
    pub(crate) async fn remove_raw(&self, digest: &str) {
        let relative = blob_name(digest);
        match &self.raw {
            Raw::Local(root) => std::fs::remove_file(root.join(relative)).expect("remove"),
            Raw::S3 { client, prefix } => client
                .delete(&Key::from(format!("{prefix}/{relative}")))
                .await
                .expect("delete"),
        }
    }

    /// Names (relative to the root or prefix) of everything under `sha256/`.
    pub(crate) async fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.raw {
            Raw::Local(root) => files_under(&root.join("sha256"))
                .iter()
                .map(|p| {
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string()
                })
                .collect(),
            Raw::S3 { client, prefix } => {
                let objects: Vec<_> = client
                    .list(Some(&Key::from(format!("{prefix}/sha256"))))
                    .try_collect()
                    .await
                    .expect("list");
                objects
                    .iter()
                    .map(|o| o.location.as_ref()[prefix.len() + 1..].to_string())
                    .collect()
            }
        };
        names.sort();
        names
    }

    /// Temporary files of uploads.
    pub(crate) fn temp_files(&self) -> Vec<PathBuf> {
        files_under(&self.temp_dir)
    }
}

/// `sha256/ab/cdef...`: where the store keeps a blob.
pub(crate) fn blob_name(digest: &str) -> String {
    format!("sha256/{}/{}", &digest[..2], &digest[2..])
}
