//! Data files that users put in the store's location with their own tools
//! (batch job inputs): named by URI and copied out as they are.

use ferroserve_core::ErrorKind;
use ferroserve_registry::RegistryError;

use crate::common::TestStore;

pub(crate) async fn data_objects_are_read_by_uri(t: TestStore) {
    // Several MiB: copied in many chunks, never held whole.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 5u32)
        .map(|i| (i % 253) as u8)
        .collect();
    t.write_raw("datasets/day1.csv", &data).await;
    let out = tempfile::tempdir().expect("temp dir");
    let location = t.store.describe();
    for (n, uri) in [
        "artifacts:/datasets/day1.csv".to_string(),
        format!("{location}/datasets/day1.csv"),
    ]
    .iter()
    .enumerate()
    {
        let rel = t.store.data_path(uri).expect(uri);
        assert_eq!(rel, "datasets/day1.csv");
        let to = out.path().join(format!("input-{n}"));
        let size = t
            .store
            .download_data(&rel, &to, data.len() as u64)
            .await
            .expect(uri);
        assert_eq!(size, data.len() as u64);
        assert!(
            std::fs::read(&to).expect("read") == data,
            "{uri}: bytes differ"
        );
    }

    // Names are taken as written, and an existing file is truncated.
    t.write_raw("datasets/2024-01/part [1].jsonl", b"{\"x\": 1}\n")
        .await;
    let rel = t
        .store
        .data_path(&format!("{location}/datasets/2024-01/part [1].jsonl"))
        .expect("odd name");
    let to = out.path().join("input-0");
    let size = t
        .store
        .download_data(&rel, &to, 100)
        .await
        .expect("odd name");
    assert_eq!(size, 9);
    assert_eq!(std::fs::read(&to).expect("read"), b"{\"x\": 1}\n");

    t.write_raw("empty.parquet", b"").await;
    let rel = t
        .store
        .data_path("artifacts:/empty.parquet")
        .expect("empty");
    let size = t.store.download_data(&rel, &to, 0).await.expect("empty");
    assert_eq!((size, std::fs::metadata(&to).expect("meta").len()), (0, 0));

    // Data files are not blobs, and reading them leaves nothing behind.
    assert!(t.stored().await.is_empty());
    assert!(t.temp_files().is_empty());
}

pub(crate) async fn bad_data_uris_are_refused(t: TestStore) {
    let location = t.store.describe();
    for (uri, says) in [
        (String::new(), "is empty".to_string()),
        (
            "gs://bucket/data/a.csv".into(),
            format!("uses the gs:// scheme, but the artifact store is at {location}"),
        ),
        (
            format!("{location}-other/a.csv"),
            format!("is outside the artifact store at {location}"),
        ),
        ("artifacts:a.csv".into(), "no '/' after artifacts:".into()),
        ("artifacts:/".into(), "names no file".into()),
        (location.clone(), "names no file".into()),
        (format!("{location}/"), "names no file".into()),
        ("artifacts://etc/passwd".into(), "absolute path".into()),
        (format!("{location}//etc/passwd"), "absolute path".into()),
        ("artifacts:/data\\a.csv".into(), "backslash".into()),
        (
            "artifacts:/data/../../secret".into(),
            "'.' or '..' component".into(),
        ),
        (
            format!("{location}/./a.csv"),
            "'.' or '..' component".into(),
        ),
        ("artifacts:/data//a.csv".into(), "empty component".into()),
        (
            "artifacts:/sha256/ab/cdef".into(),
            "store's own sha256/ folder".into(),
        ),
        (
            format!("{location}/tmp/upload"),
            "store's own tmp/ folder".into(),
        ),
    ] {
        let e = t.store.data_path(&uri).expect_err(&uri);
        assert!(matches!(e, RegistryError::Invalid(_)), "{uri}: {e:?}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let message = e.to_string();
        assert!(message.contains(&says), "{uri}: {message}");
        assert!(
            message.contains(&format!("use artifacts:/REL/PATH or {location}/REL/PATH")),
            "{uri}: {message}"
        );
    }

    // A path that did not come from data_path is checked again.
    let out = tempfile::tempdir().expect("temp dir");
    let to = out.path().join("input");
    for rel in ["../secret", "/etc/passwd", "sha256/ab/cd", ""] {
        let e = t.store.download_data(rel, &to, 1000).await.expect_err(rel);
        assert!(matches!(e, RegistryError::Invalid(_)), "{rel}: {e:?}");
        assert!(!to.exists());
    }
}

pub(crate) async fn missing_and_oversized_data_objects(t: TestStore) {
    let location = t.store.describe();
    let out = tempfile::tempdir().expect("temp dir");
    let to = out.path().join("input");

    let rel = t
        .store
        .data_path("artifacts:/datasets/missing.csv")
        .expect("a missing file has a path");
    let e = t
        .store
        .download_data(&rel, &to, 1000)
        .await
        .expect_err("missing");
    let uri = format!("{location}/datasets/missing.csv");
    assert_eq!(e, RegistryError::DataMissing { uri: uri.clone() });
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!("data file {uri} does not exist in the artifact store")
    );
    assert!(!to.exists());

    t.write_raw("datasets/big.csv", &[b'x'; 100_000]).await;
    let rel = t
        .store
        .data_path("artifacts:/datasets/big.csv")
        .expect("path");
    let e = t
        .store
        .download_data(&rel, &to, 99_999)
        .await
        .expect_err("over the limit");
    assert!(matches!(e, RegistryError::Invalid(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "data file {location}/datasets/big.csv is 100000 bytes; \
             at most 99999 are accepted (max_job_input_bytes)"
        )
    );
    assert!(!to.exists(), "a partial file is left");
    let size = t
        .store
        .download_data(&rel, &to, 100_000)
        .await
        .expect("at the limit");
    assert_eq!(size, 100_000);
    assert!(t.temp_files().is_empty());
}
