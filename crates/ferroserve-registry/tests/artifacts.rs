//! The local artifact store: digests, dedup, verification and crash cleanup.

use std::collections::HashSet;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{LocalArtifactStore, RegistryError};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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

#[tokio::test]
async fn put_and_open_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let data = vec![7u8; 200_000]; // several read chunks
    let (digest, size) = store.put_stream(&data[..]).await.expect("put");
    assert_eq!((digest.as_str(), size), (sha(&data).as_str(), 200_000));
    let path = store.blob_path(&digest).expect("path");
    assert!(path.starts_with(dir.path().join("sha256").join(&digest[..2])));
    assert_eq!(
        path.file_name().expect("name").to_string_lossy(),
        &digest[2..]
    );
    assert_eq!(store.open_verified(&digest).await.expect("open"), data);
    // Nothing left in tmp/.
    assert!(files_under(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn identical_bytes_are_stored_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let (a, _) = store.put_stream(&b"model bytes"[..]).await.expect("put");
    let (b, _) = store
        .put_stream(&b"model bytes"[..])
        .await
        .expect("put again");
    assert_eq!(a, b);
    let size = store
        .put_verified(&b"model bytes"[..], &a)
        .await
        .expect("put verified");
    assert_eq!(size, 11);
    assert_eq!(files_under(dir.path()).len(), 1);
}

#[tokio::test]
async fn digest_mismatch_leaves_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let wrong = sha(b"something else");
    let e = store
        .put_verified(&b"model bytes"[..], &wrong)
        .await
        .expect_err("mismatch");
    assert_eq!(
        e,
        RegistryError::DigestMismatch {
            expected: wrong,
            actual: sha(b"model bytes")
        }
    );
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(files_under(dir.path()).is_empty());
    assert!(store.put_verified(&b"x"[..], "not-a-digest").await.is_err());
}

#[tokio::test]
async fn corrupted_and_missing_blobs_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let (digest, _) = store.put_stream(&b"good model"[..]).await.expect("put");
    let path = store.blob_path(&digest).expect("path");
    std::fs::write(&path, b"evil model").expect("corrupt");
    let e = store.open_verified(&digest).await.expect_err("corrupted");
    assert!(matches!(e, RegistryError::ArtifactCorrupted { .. }), "{e}");
    assert!(e.to_string().contains("is corrupted"), "{e}");

    // Storing the same bytes again repairs the corrupted blob.
    store
        .put_stream(&b"good model"[..])
        .await
        .expect("put again");
    assert_eq!(
        store.open_verified(&digest).await.expect("repaired"),
        b"good model"
    );

    std::fs::remove_file(&path).expect("remove");
    let e = store.open_verified(&digest).await.expect_err("missing");
    assert!(matches!(e, RegistryError::ArtifactMissing { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(store.open_verified("../../etc/passwd").await.is_err());
}

#[tokio::test]
async fn cleanup_removes_temp_files_and_unreferenced_blobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let (keep, _) = store.put_stream(&b"registered"[..]).await.expect("put");
    let (drop_me, _) = store.put_stream(&b"orphan"[..]).await.expect("put");
    // What an upload interrupted by a crash leaves behind.
    std::fs::write(dir.path().join("tmp").join("interrupted"), b"half a mod").expect("temp");
    let referenced = HashSet::from([keep.clone()]);
    let report = store.cleanup(&referenced).await.expect("cleanup");
    assert_eq!((report.temp_files, report.unreferenced_blobs), (1, 1));
    assert!(store.open_verified(&keep).await.is_ok());
    assert!(store.open_verified(&drop_me).await.is_err());
    assert_eq!(files_under(dir.path()).len(), 1);
    // Cleaning an empty or absent store is fine.
    let empty = LocalArtifactStore::new(dir.path().join("absent"));
    assert_eq!(
        empty
            .cleanup(&referenced)
            .await
            .expect("cleanup")
            .temp_files,
        0
    );
}
