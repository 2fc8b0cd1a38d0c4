//! Data files in the artifact store: files that users put in the store's
//! location with their own tools (`aws s3 cp`, `cp`), outside its
//! content-addressed areas, read by batch jobs as their input. Resolving
//! their URIs, and copying them out within a size limit.

use std::fmt::Display;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use futures::{Stream, TryStreamExt};
use tokio::io::AsyncWriteExt;

use super::staging::{io_err, TempFile};
use crate::durable;
use crate::error::{RegistryError, Result};

/// The scheme of store-relative data URIs: `artifacts:/REL/PATH`.
const SCHEME: &str = "artifacts:";

/// Top folders of the store that belong to the store itself, with what
/// they hold.
const OWN_AREAS: [(&str, &str); 3] = [
    ("sha256", "content-addressed artifact blobs"),
    ("tmp", "uploads in progress"),
    ("jobs", "the inputs and results of jobs"),
];

/// Resolves `uri` to a path relative to the store: `artifacts:/REL/PATH`,
/// or one of `locations` (the store's location spelled in each accepted
/// way, the first as `describe()` prints it) followed by `/REL/PATH`.
pub(super) fn resolve(uri: &str, locations: &[String]) -> Result<String> {
    let location = locations
        .first()
        .expect("a store has a location")
        .trim_end_matches('/');
    let refuse = |what: String| {
        RegistryError::Invalid(format!(
            "{what}; use {SCHEME}/REL/PATH or {location}/REL/PATH, with REL/PATH \
             relative to the store and outside its sha256/, tmp/ and jobs/ folders"
        ))
    };
    if uri.is_empty() {
        return Err(refuse("the data URI is empty".to_owned()));
    }
    let rel = if let Some(rest) = uri.strip_prefix(SCHEME) {
        rest.strip_prefix('/').ok_or_else(|| {
            refuse(format!(
                "data URI '{uri}' has no '/' after {SCHEME} (the path starts at the store's root)"
            ))
        })?
    } else if let Some(rest) = locations.iter().find_map(|l| under(uri, l)) {
        rest
    } else {
        let scheme = uri.split_once("://").map(|(scheme, _)| scheme);
        let known = locations
            .iter()
            .any(|l| l.split_once("://").map(|(s, _)| s) == scheme);
        return Err(match scheme {
            Some(scheme) if !known => refuse(format!(
                "data URI '{uri}' uses the {scheme}:// scheme, but the artifact store is at {location}"
            )),
            _ => refuse(format!(
                "data URI '{uri}' is outside the artifact store at {location}"
            )),
        });
    };
    check(rel).map_err(|reason| refuse(format!("data URI '{uri}' {reason}")))?;
    Ok(rel.to_owned())
}

/// What follows `location` and a `/` in `uri`; `uri` being `location`
/// itself leaves an empty path.
fn under<'a>(uri: &'a str, location: &str) -> Option<&'a str> {
    match uri.strip_prefix(location.trim_end_matches('/'))? {
        "" => Some(""),
        rest => rest.strip_prefix('/'),
    }
}

/// Checks a store-relative data path; the error says what is wrong with it.
pub(super) fn check(rel: &str) -> std::result::Result<(), String> {
    if rel.is_empty() {
        return Err("names no file (the path after the store's location is empty)".into());
    }
    if rel.contains('\\') {
        return Err("contains a backslash (separate folders with '/')".into());
    }
    if rel.starts_with('/') {
        return Err("has an absolute path after the store's location".into());
    }
    if rel.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err("has a '.' or '..' component".into());
    }
    if parts.contains(&"") {
        return Err("has an empty component ('//' or a trailing '/')".into());
    }
    if let Some((area, holds)) = OWN_AREAS.iter().find(|(area, _)| parts[0] == *area) {
        return Err(format!(
            "is under the store's own {area}/ folder, which holds {holds}, not data files"
        ));
    }
    Ok(())
}

/// Like [`check`], as the error of a download of `rel`.
pub(super) fn checked(rel: &str) -> Result<()> {
    check(rel).map_err(|reason| RegistryError::Invalid(format!("data path '{rel}' {reason}")))
}

/// The error of a data file of `size` bytes (more than `limit` bytes when
/// `None`: found while copying) over the limit.
pub(super) fn too_large(uri: &str, size: Option<u64>, limit: u64) -> RegistryError {
    let size = match size {
        Some(size) => format!("{size} bytes"),
        None => format!("more than {limit} bytes"),
    };
    RegistryError::Invalid(format!(
        "data file {uri} is {size}; at most {limit} are accepted (max_job_input_bytes)"
    ))
}

/// Copies `reader` (the data file `uri`) to a new or truncated file `to`,
/// `limit` bytes at most; returns the size. `to` is removed on failure.
pub(super) fn copy_limited(reader: impl Read, uri: &str, to: &Path, limit: u64) -> Result<u64> {
    let mut file = fs::File::create(to).map_err(|e| io_err("cannot create", to, e))?;
    let guard = TempFile::new(to.to_owned());
    // One byte past the limit tells a file that grew past it.
    let mut reader = reader.take(limit.saturating_add(1));
    let size = io::copy(&mut reader, &mut file).map_err(|e| copy_err(uri, to, e))?;
    if size > limit {
        return Err(too_large(uri, None, limit));
    }
    file.sync_all().map_err(|e| io_err("cannot write", to, e))?;
    durable::fsync_parent(to).map_err(|e| io_err("cannot sync the folder of", to, e))?;
    guard.keep();
    Ok(size)
}

/// Writes the chunks of `stream` (the data file `uri`) to a new or
/// truncated file `to`, `limit` bytes at most; returns the size. `to` is
/// removed on failure, and when the future is dropped half-way.
pub(super) async fn write_limited<C, E>(
    stream: impl Stream<Item = std::result::Result<C, E>>,
    uri: &str,
    to: &Path,
    limit: u64,
) -> Result<u64>
where
    C: AsRef<[u8]>,
    E: Display,
{
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| io_err("cannot create", to, e))?;
    let guard = TempFile::new(to.to_owned());
    let mut size = 0u64;
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| RegistryError::Io(format!("cannot read {uri}: {e}")))?
    {
        let chunk = chunk.as_ref();
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(uri, None, limit));
        }
        file.write_all(chunk)
            .await
            .map_err(|e| io_err("cannot write", to, e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| io_err("cannot write", to, e))?;
    let parent_synced = {
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || durable::fsync_parent(&to))
            .await
            .map_err(io::Error::other)
            .and_then(|synced| synced)
    };
    parent_synced.map_err(|e| io_err("cannot sync the folder of", to, e))?;
    guard.keep();
    Ok(size)
}

/// A failed copy: where to goes to the log only (it is a server folder).
fn copy_err(uri: &str, to: &Path, e: io::Error) -> RegistryError {
    tracing::error!(uri, to = %to.display(), error = %e, "cannot copy a data file");
    RegistryError::Io(format!("cannot copy {uri} into the job's folder: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> Vec<String> {
        vec!["s3://bucket/prefix".to_owned()]
    }

    #[test]
    fn both_forms_resolve() {
        let local = vec!["file:///srv/store".to_owned(), "/srv/store".to_owned()];
        for uri in [
            "artifacts:/datasets/day1.csv",
            "file:///srv/store/datasets/day1.csv",
            "/srv/store/datasets/day1.csv",
        ] {
            assert_eq!(resolve(uri, &local).expect(uri), "datasets/day1.csv");
        }
        assert_eq!(
            resolve("s3://bucket/prefix/data/sha256/x [1].csv", &s3()).expect("s3"),
            "data/sha256/x [1].csv"
        );
        let root = vec!["s3://bucket".to_owned()];
        assert_eq!(resolve("s3://bucket/a.csv", &root).expect("root"), "a.csv");
        assert_eq!(
            resolve("artifacts:/sha256x/a", &root).expect("not the blob area"),
            "sha256x/a"
        );
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        for (uri, says) in [
            ("", "is empty"),
            ("gs://bucket/prefix/a.csv", "uses the gs:// scheme"),
            ("s3://other/prefix/a.csv", "outside the artifact store"),
            ("s3://bucket/prefix2/a.csv", "outside the artifact store"),
            ("artifacts:a.csv", "no '/' after artifacts:"),
            ("artifacts:/", "names no file"),
            ("s3://bucket/prefix", "names no file"),
            ("s3://bucket/prefix/", "names no file"),
            ("artifacts://etc/passwd", "absolute path"),
            ("artifacts:/a\\b.csv", "backslash"),
            ("artifacts:/a/../../b.csv", "'..' component"),
            ("artifacts:/./b.csv", "'.' or"),
            ("artifacts:/a//b.csv", "empty component"),
            ("artifacts:/a/", "empty component"),
            ("artifacts:/a\u{0}b", "control character"),
            ("artifacts:/sha256/ab/cd", "own sha256/ folder"),
            ("s3://bucket/prefix/tmp/upload", "own tmp/ folder"),
            ("artifacts:/tmp", "own tmp/ folder"),
            ("artifacts:/jobs/0f/output/00000000", "own jobs/ folder"),
        ] {
            let e = resolve(uri, &s3()).expect_err(uri).to_string();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(
                e.contains("use artifacts:/REL/PATH or s3://bucket/prefix/REL/PATH"),
                "{uri}: {e}"
            );
        }
    }

    #[test]
    fn copies_stop_at_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let to = dir.path().join("input");
        let size = copy_limited(&[7u8; 100][..], "artifacts:/a", &to, 100).expect("at limit");
        assert_eq!((size, fs::read(&to).expect("read").len()), (100, 100));
        let e = copy_limited(&[7u8; 101][..], "artifacts:/a", &to, 100).expect_err("over");
        assert!(e.to_string().contains("is more than 100 bytes"), "{e}");
        assert!(!to.exists(), "a partial file is left");
    }

    #[tokio::test]
    async fn streams_stop_at_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let to = dir.path().join("input");
        let chunks = || {
            futures::stream::iter(
                [vec![1u8; 60], vec![2u8; 60]].map(Ok::<_, std::convert::Infallible>),
            )
        };
        let size = write_limited(chunks(), "s3://b/a", &to, 120)
            .await
            .expect("at limit");
        assert_eq!((size, fs::read(&to).expect("read").len()), (120, 120));
        let e = write_limited(chunks(), "s3://b/a", &to, 119)
            .await
            .expect_err("over");
        assert!(
            e.to_string()
                .contains("is more than 119 bytes; at most 119 are accepted"),
            "{e}"
        );
        assert!(!to.exists(), "a partial file is left");
        let failing = futures::stream::iter([Ok(vec![1u8; 10]), Err("connection reset")]);
        let e = write_limited(failing, "s3://b/a", &to, 100)
            .await
            .expect_err("read error");
        assert!(e.to_string().contains("connection reset"), "{e}");
        assert!(!to.exists(), "a partial file is left");
    }
}
