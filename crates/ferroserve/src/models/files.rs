//! Local files the CLI reads: their digests, their `file://` URIs, and the
//! JSON documents given as flags.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api_client::percent_encode;

/// sha256 of a file, lowercase hex, read in chunks.
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `file://` URI of an absolute path.
pub fn file_uri(absolute: &Path) -> String {
    format!(
        "file://{}",
        percent_encode(&absolute.to_string_lossy(), b"/")
    )
}

/// Reads a JSON document; `what` names the flag in errors.
pub fn read_json(path: &Path, what: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{what}: cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{what}: {} is not valid JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_a_path_may_hold() {
        assert_eq!(
            file_uri(Path::new("/data/my runs/iris#1.csv")),
            "file:///data/my%20runs/iris%231.csv"
        );
        assert_eq!(percent_encode("a/b", b""), "a%2Fb");
    }

    #[test]
    fn digests_match_sha256sum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abc.txt");
        std::fs::write(&path, "abc").expect("write");
        assert_eq!(
            file_sha256(&path).expect("digest"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
