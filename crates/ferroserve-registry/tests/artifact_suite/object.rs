//! What only the S3 store does: its location, multipart uploads, and its
//! configuration errors.

use std::path::Path;

use ferroserve_registry::ArtifactStore;

use crate::common::{blob_name, sha, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_its_location_without_secrets() {
    let t = TestStore::s3().await;
    let location = t.store.describe();
    assert!(location.starts_with("s3://t-"), "{location}");
    assert!(location.ends_with("/models/prod"), "{location}");
    assert!(!location.contains("testing"), "{location}");
    let debug = format!("{:?}", t.store);
    assert!(debug.contains(&location), "{debug}");
    assert!(!debug.contains("testing"), "the secret key shows: {debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_artifacts_go_up_in_parts() {
    let t = TestStore::s3().await;
    // Past the 8 MiB part size: a multipart upload of two parts.
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 17u32)
        .map(|i| (i % 241) as u8)
        .collect();
    let size = t
        .store
        .put_verified(&data[..], &sha(&data))
        .await
        .expect("put");
    assert_eq!(size, data.len() as u64);
    assert_eq!(t.stored().await, [blob_name(&sha(&data))]);
    assert_eq!(
        t.store.open_verified(&sha(&data)).await.expect("open"),
        data
    );
    assert!(t.temp_files().is_empty());
}

#[test]
fn urls_without_a_bucket_are_refused() {
    for url in ["s3://", "s3:///prefix"] {
        let e = ArtifactStore::from_url(url, Path::new("/tmp")).expect_err(url);
        assert!(e.to_string().contains("names no bucket"), "{url}: {e}");
    }
}
