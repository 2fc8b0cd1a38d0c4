//! What every artifact store does: digests, dedup, verification, deletion
//! and crash cleanup.

use std::collections::HashSet;
use std::time::Duration;

use ferroserve_core::ErrorKind;
use ferroserve_registry::RegistryError;

use crate::common::{blob_name, sha, TestStore};

pub(crate) async fn put_and_open_round_trip(t: TestStore) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect(); // several chunks
    let (digest, size) = t.store.put_stream(&data[..]).await.expect("put");
    assert_eq!((digest.as_str(), size), (sha(&data).as_str(), 200_000));
    assert_eq!(t.stored().await, [blob_name(&digest)]);
    assert_eq!(t.store.open_verified(&digest).await.expect("open"), data);
    assert!(t.store.exists(&digest).await.expect("exists"));
    assert!(t.temp_files().is_empty());
    let (empty, size) = t.store.put_stream(&b""[..]).await.expect("empty");
    assert_eq!((empty.as_str(), size), (sha(b"").as_str(), 0));
    assert!(t
        .store
        .open_verified(&empty)
        .await
        .expect("open")
        .is_empty());
}

pub(crate) async fn identical_bytes_are_stored_once(t: TestStore) {
    let (a, _) = t.store.put_stream(&b"model bytes"[..]).await.expect("put");
    let (b, _) = t
        .store
        .put_stream(&b"model bytes"[..])
        .await
        .expect("put again");
    assert_eq!(a, b);
    let size = t
        .store
        .put_verified(&b"model bytes"[..], &a)
        .await
        .expect("put verified");
    assert_eq!(size, 11);
    assert_eq!(t.stored().await, [blob_name(&a)]);
    assert!(t.temp_files().is_empty());
}

pub(crate) async fn digest_mismatch_leaves_nothing(t: TestStore) {
    let wrong = sha(b"something else");
    let e = t
        .store
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
    assert!(t.stored().await.is_empty());
    assert!(t.temp_files().is_empty());
    let e = t
        .store
        .put_verified(&b"x"[..], "not-a-digest")
        .await
        .expect_err("bad digest");
    assert!(e.to_string().contains("not a sha256 digest"), "{e}");
}

pub(crate) async fn corrupted_and_missing_blobs_are_refused(t: TestStore) {
    let (digest, _) = t.store.put_stream(&b"good model"[..]).await.expect("put");
    t.write_raw(&blob_name(&digest), b"evil model, longer")
        .await;
    let e = t.store.open_verified(&digest).await.expect_err("corrupted");
    assert!(matches!(e, RegistryError::ArtifactCorrupted { .. }), "{e}");
    assert!(e.to_string().contains("is corrupted"), "{e}");
    // Clients see the digest, never where the server keeps the blob.
    assert!(!e.to_string().contains(&blob_name(&digest)), "{e}");
    assert!(e.to_string().contains(&sha(b"evil model, longer")), "{e}");

    // Storing the same bytes again repairs the corrupted blob.
    t.store
        .put_stream(&b"good model"[..])
        .await
        .expect("put again");
    assert_eq!(
        t.store.open_verified(&digest).await.expect("repaired"),
        b"good model"
    );
    // A verified blob is a local file to stream or load from, not bytes in memory.
    let verified = t.store.fetch_verified(&digest).await.expect("verified");
    assert_eq!(verified.size(), 10);
    assert_eq!(std::fs::read(verified.path()).expect("file"), b"good model");
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut verified.into_file(), &mut streamed).expect("read");
    assert_eq!(streamed, b"good model");

    t.remove_raw(&digest).await;
    let e = t.store.open_verified(&digest).await.expect_err("missing");
    assert!(matches!(e, RegistryError::ArtifactMissing { .. }), "{e}");
    assert!(e.to_string().contains("is missing"), "{e}");
    assert!(!e.to_string().contains(&blob_name(&digest)), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(!t.store.exists(&digest).await.expect("exists"));
    assert!(t.store.open_verified("../../etc/passwd").await.is_err());
}

pub(crate) async fn delete_and_exists(t: TestStore) {
    let (digest, _) = t.store.put_stream(&b"old model"[..]).await.expect("put");
    assert!(t.store.exists(&digest).await.expect("exists"));
    t.store.delete(&digest).await.expect("delete");
    assert!(!t.store.exists(&digest).await.expect("exists"));
    assert!(t.stored().await.is_empty());
    t.store
        .delete(&digest)
        .await
        .expect("deleting twice is fine");
    assert!(matches!(
        t.store.open_verified(&digest).await,
        Err(RegistryError::ArtifactMissing { .. })
    ));
    assert!(t.store.delete("../x").await.is_err());
    assert!(t.store.exists("ABC").await.is_err());
}

pub(crate) async fn cleanup_removes_temp_files_and_unreferenced_blobs(t: TestStore) {
    let (keep, _) = t.store.put_stream(&b"registered"[..]).await.expect("put");
    let (orphan, _) = t.store.put_stream(&b"orphan"[..]).await.expect("put");
    // What an upload interrupted by a crash leaves behind: an unlocked file.
    std::fs::create_dir_all(&t.temp_dir).expect("temp dir");
    std::fs::write(t.temp_dir.join("interrupted"), b"half a mod").expect("temp");
    // An upload in progress (here or in another process) holds its lock.
    let in_progress = t.temp_dir.join("in-progress");
    let held = std::fs::File::create(&in_progress).expect("temp");
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).expect("lock");
    // Not a blob: never removed.
    t.write_raw("sha256/zz/notes.txt", b"not ours").await;
    let referenced = HashSet::from([keep.clone()]);

    // Young blobs stay: another process (a `models register` on the same
    // data dir) may have stored them and not registered them yet. Unlocked
    // temporary files go at once, however young; locked ones stay.
    let report = t
        .store
        .cleanup(&referenced, Duration::from_secs(3600))
        .await
        .expect("cleanup");
    assert_eq!((report.temp_files, report.unreferenced_blobs), (1, 0));
    assert!(t.store.exists(&orphan).await.expect("exists"));
    assert_eq!(t.temp_files(), vec![in_progress.clone()]);

    drop(held);
    let report = t
        .store
        .cleanup(&referenced, Duration::ZERO)
        .await
        .expect("cleanup");
    assert_eq!((report.temp_files, report.unreferenced_blobs), (1, 1));
    assert!(t.temp_files().is_empty());
    assert!(t.store.open_verified(&keep).await.is_ok());
    assert!(!t.store.exists(&orphan).await.expect("exists"));
    assert_eq!(
        t.stored().await,
        [blob_name(&keep), "sha256/zz/notes.txt".to_string()]
    );
}
