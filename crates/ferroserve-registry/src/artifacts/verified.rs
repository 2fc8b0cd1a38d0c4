//! Blobs checked against their digest and handed out as local files, so
//! that downloads and model loads stream from disk instead of holding the
//! whole artifact in memory.

use std::fs;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::staging::{io_err, TempFile, CHUNK};
use crate::error::{RegistryError, Result};

/// A blob whose bytes were hashed (streaming, a chunk at a time) and found
/// to match its digest. It is a local file: the blob itself for a local
/// store, a temporary copy for a remote one (removed when this is dropped).
#[derive(Debug)]
pub struct VerifiedArtifact {
    path: PathBuf,
    file: fs::File,
    size: u64,
    /// The temporary copy of a remote blob, removed on drop.
    _copy: Option<TempFile>,
}

impl VerifiedArtifact {
    /// Where the verified bytes are on this machine. The file stays there at
    /// least as long as this value lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The open file, positioned at its start: read it rather than opening
    /// the path again, and the bytes are the ones that were verified.
    pub fn into_file(self) -> fs::File {
        self.file
    }

    /// Hashes the file at `path` and keeps it when it holds the bytes of
    /// `digest`. A missing file is [`RegistryError::ArtifactMissing`], other
    /// bytes [`RegistryError::ArtifactCorrupted`]. `location` names the blob
    /// in logs; messages never carry server paths.
    pub(crate) fn check(
        digest: &str,
        path: PathBuf,
        location: &str,
        copy: Option<TempFile>,
    ) -> Result<VerifiedArtifact> {
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::error!(digest, location, "artifact missing from the store");
                return Err(RegistryError::ArtifactMissing {
                    digest: digest.to_owned(),
                    path: location.to_owned(),
                });
            }
            Err(e) => return Err(io_err("cannot open", &path, e)),
        };
        let (actual, size) = hash_reader(&mut file).map_err(|e| io_err("cannot read", &path, e))?;
        if actual != digest {
            tracing::error!(digest, actual, location, "artifact corrupted in the store");
            return Err(RegistryError::ArtifactCorrupted {
                digest: digest.to_owned(),
                path: location.to_owned(),
                actual,
            });
        }
        file.rewind()
            .map_err(|e| io_err("cannot rewind", &path, e))?;
        Ok(VerifiedArtifact {
            path,
            file,
            size,
            _copy: copy,
        })
    }
}

/// sha256 (hex) and length of everything `reader` yields, read a chunk at a
/// time.
pub(crate) fn hash_reader(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}
