//! API keys on the command line's side: the key the CLI presents to a
//! server (`FERROSERVE_API_KEY`, else the admin key a server wrote to the
//! data dir), and the admin key a server makes at its first start, so the
//! README's commands work on a fresh data dir without a setup step.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferroserve_core::Role;
use ferroserve_registry::api_keys::is_token;
use ferroserve_registry::{NewApiKey, Registry};

/// Variable holding the key the CLI sends to servers.
pub const API_KEY_ENV: &str = "FERROSERVE_API_KEY";

/// File of the data dir holding the admin key made at first start.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// The key to present to a server: `FERROSERVE_API_KEY`, else the admin
/// key in the data dir (`FERROSERVE_DATA_DIR`, else `./data`), else none.
pub fn api_key() -> Option<String> {
    if let Ok(key) = std::env::var(API_KEY_ENV) {
        let key = key.trim();
        if !key.is_empty() {
            return Some(key.to_owned());
        }
    }
    let data_dir = std::env::var_os("FERROSERVE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"));
    std::fs::read_to_string(data_dir.join(ADMIN_KEY_FILE))
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|key| !key.is_empty())
}

/// Makes an admin key when the registry has no usable one and logs the
/// path of `DATA_DIR/admin.key` (never the token). A token already in that
/// file (an operator provisioning it from a secret store, as `fsk_` and 64
/// hex digits) becomes the key; otherwise a new token is written there
/// (mode 0600).
pub async fn ensure_admin_key(registry: &Registry, data_dir: &Path) -> anyhow::Result<()> {
    if registry.has_usable_admin_key().await? {
        return Ok(());
    }
    let spec = NewApiKey {
        name: "admin".into(),
        role: Role::Admin,
        models: Vec::new(),
        expires_at: None,
    };
    let path = data_dir.join(ADMIN_KEY_FILE);
    let provisioned = std::fs::read_to_string(&path)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|token| is_token(token));
    let adopted = match &provisioned {
        Some(token) => registry
            .adopt_api_key(&spec, token, "ferroserve")
            .await
            .ok(),
        None => None,
    };
    let key = match adopted {
        Some(key) => key,
        None => {
            let (key, token) = registry.create_api_key(&spec, "ferroserve").await?;
            write_secret(&path, &token)?;
            key
        }
    };
    tracing::warn!(
        path = %path.display(),
        key_id = %key.id,
        "the registry held no admin API key: made one; its token is in this file (mode 0600), \
         which the CLI uses on this data dir; store it elsewhere and delete the file when you \
         run this server for others"
    );
    Ok(())
}

/// Writes `text` to `path` readable by its owner only: a private temporary
/// file, synced, renamed over `path`, and the folder synced.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let temporary = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot move the key into {}", path.display()))?;
    std::fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync {}", folder.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secrets_are_private_and_replace_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ADMIN_KEY_FILE);
        write_secret(&path, "one").unwrap();
        write_secret(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
