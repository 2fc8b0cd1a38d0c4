//! What only the local folder store does: its layout and its root.

use std::collections::HashSet;
use std::time::Duration;

use ferroserve_registry::{ArtifactStore, LocalArtifactStore, RegistryError};

use crate::common::{files_under, sha};

#[tokio::test]
async fn blobs_live_under_root_by_digest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let (digest, _) = store.put_stream(&b"model"[..]).await.expect("put");
    assert_eq!(digest, sha(b"model"));
    let path = store.blob_path(&digest).expect("path");
    assert_eq!(
        path,
        dir.path()
            .join("sha256")
            .join(&digest[..2])
            .join(&digest[2..])
    );
    assert_eq!(files_under(dir.path()), [path]);
    assert!(store.blob_path("../../etc/passwd").is_err());
}

#[tokio::test]
async fn same_size_corruption_is_repaired_by_storing_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalArtifactStore::new(dir.path());
    let (digest, _) = store.put_stream(&b"good model"[..]).await.expect("put");
    let path = store.blob_path(&digest).expect("path");
    std::fs::write(&path, b"evil model").expect("corrupt");
    assert!(store.fetch_verified(&digest).await.is_err());
    store.put_stream(&b"good model"[..]).await.expect("repair");
    let verified = store.fetch_verified(&digest).await.expect("repaired");
    // The blob itself is handed out: nothing is copied or read into memory.
    assert_eq!(verified.path(), path);
    assert_eq!(std::fs::read(verified.path()).expect("read"), b"good model");
}

#[tokio::test]
async fn cleaning_an_absent_store_is_fine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        ArtifactStore::from_url(&dir.path().join("absent").display().to_string(), dir.path())
            .expect("plain path");
    let report = store
        .cleanup(&HashSet::new(), Duration::ZERO)
        .await
        .expect("cleanup");
    assert_eq!((report.temp_files, report.unreferenced_blobs), (0, 0));
    assert!(!dir.path().join("absent").exists());
}

#[tokio::test]
async fn data_files_are_named_by_plain_paths_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("artifacts");
    std::fs::create_dir_all(root.join("datasets/day1")).expect("mkdir");
    std::fs::write(root.join("datasets/day1.csv"), b"a,b\n1,2\n").expect("write");
    let store = ArtifactStore::from_url(&root.display().to_string(), dir.path()).expect("store");
    let rel = store
        .data_path(&format!("{}/datasets/day1.csv", root.display()))
        .expect("plain path");
    assert_eq!(rel, "datasets/day1.csv");
    let to = dir.path().join("input");
    assert_eq!(store.download_data(&rel, &to, 8).await.expect("copy"), 8);

    let e = store
        .download_data("datasets/day1", &to, 8)
        .await
        .expect_err("a folder");
    assert!(e.to_string().contains("names a folder, not a file"), "{e}");
    // A file where a folder is expected is simply missing.
    let e = store
        .download_data("datasets/day1.csv/x", &to, 8)
        .await
        .expect_err("under a file");
    assert!(matches!(e, RegistryError::DataMissing { .. }), "{e}");
}

#[cfg(unix)]
#[tokio::test]
async fn data_files_behind_links_that_leave_the_store_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("artifacts");
    std::fs::create_dir_all(root.join("datasets")).expect("mkdir");
    std::fs::write(dir.path().join("secret"), b"registry bytes").expect("write");
    std::fs::write(root.join("datasets/inside.csv"), b"a\n1\n").expect("write");
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("datasets/out.csv"))
        .expect("link out");
    std::os::unix::fs::symlink(
        root.join("datasets/inside.csv"),
        root.join("datasets/in.csv"),
    )
    .expect("link in");
    let store = LocalArtifactStore::new(&root);
    let to = dir.path().join("input");
    let e = store
        .download_data("datasets/out.csv", &to, 1000)
        .await
        .expect_err("leaves the store");
    assert!(e.to_string().contains("outside the artifact store"), "{e}");
    assert!(!to.exists());
    assert_eq!(
        store
            .download_data("datasets/in.csv", &to, 1000)
            .await
            .expect("a link inside the store"),
        4
    );
}

#[tokio::test]
async fn a_store_holding_the_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(data_dir.join("artifacts")).expect("mkdir");
    let e = LocalArtifactStore::new(&data_dir)
        .refuse_containing(&data_dir)
        .expect_err("the data dir itself");
    assert!(e.to_string().contains("holds the data dir"), "{e}");
    assert!(LocalArtifactStore::new(dir.path())
        .refuse_containing(&data_dir)
        .is_err());
    LocalArtifactStore::new(data_dir.join("artifacts"))
        .refuse_containing(&data_dir)
        .expect("a store inside the data dir is the default");
}
