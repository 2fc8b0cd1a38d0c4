//! API keys: created with a random token that is shown once, stored as the
//! token's SHA-256 hash, listed, revoked, and stamped with when they were
//! last used. Key changes are audit events under the model name `""`
//! (they belong to no model).

use ferroserve_core::{ModelPattern, Role};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::validate;

/// Prefix of every API key token, so a leaked token is recognisable (and
/// told apart from a JWT).
pub const TOKEN_PREFIX: &str = "fsk_";

/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Most model patterns one key may carry.
pub const MAX_KEY_PATTERNS: usize = 64;

/// What a new key is: its name, role, model patterns and lifetime.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// A name for people and the audit log.
    pub name: String,
    /// What the key may do.
    pub role: Role,
    /// Models it is limited to (empty: every model).
    pub models: Vec<ModelPattern>,
    /// When it stops working (unix ms), if ever.
    pub expires_at: Option<i64>,
}

/// A stored API key (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// The key's id, used to revoke it.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Models it is limited to (empty: every model).
    pub models: Vec<ModelPattern>,
    /// Hex SHA-256 of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// When it was created (unix ms).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it stops working (unix ms), if ever.
    pub expires_at: Option<i64>,
    /// When it was revoked (unix ms), if it was.
    pub revoked_at: Option<i64>,
    /// When a request last used it (unix ms; recorded within a poll
    /// interval), if ever.
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// Why the key cannot be used at `now_ms`, if it cannot.
    pub fn unusable_at(&self, now_ms: i64) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("revoked")
        } else if self.expires_at.is_some_and(|at| at <= now_ms) {
            Some("expired")
        } else {
            None
        }
    }
}

/// The current time in unix ms, the clock key times are kept in.
pub fn now_ms() -> i64 {
    db::now_ms()
}

/// The expiry (unix ms) of a key made now to live for `lifetime`.
pub fn expiry_after(lifetime: std::time::Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX))
}

/// The hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` looks like a token this registry makes.
pub fn is_token(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == 2 * TOKEN_BYTES && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A fresh random token.
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

const KEY_COLUMNS: &str = "id, name, role, models, token_hash, created_at, created_by, \
                           expires_at, revoked_at, last_used_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    let id: String = row.try_get("id")?;
    let unreadable = |field: &str, reason: String| {
        RegistryError::Invalid(format!(
            "API key '{id}' has an unreadable {field} in the registry database: {reason}"
        ))
    };
    let role: String = row.try_get("role")?;
    let role = role
        .parse()
        .map_err(|e| unreadable("role", format!("{e}")))?;
    let models: String = row.try_get("models")?;
    let models =
        serde_json::from_str(&models).map_err(|e| unreadable("model list", e.to_string()))?;
    Ok(ApiKey {
        name: row.try_get("name")?,
        role,
        models,
        token_hash: row.try_get("token_hash")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
        id,
    })
}

impl Registry {
    /// Creates a key; returns it with its token, which is stored nowhere
    /// and cannot be shown again.
    pub async fn create_api_key(&self, key: &NewApiKey, actor: &str) -> Result<(ApiKey, String)> {
        let token = new_token();
        let stored = self.insert_api_key(key, &token, actor).await?;
        Ok((stored, token))
    }

    /// Creates a key whose token was made elsewhere (an operator's secret
    /// store provisioning the first admin key): it must look like a token
    /// this registry makes (`fsk_` and 64 hex digits) and be new.
    pub async fn adopt_api_key(&self, key: &NewApiKey, token: &str, actor: &str) -> Result<ApiKey> {
        if !is_token(token) {
            return Err(RegistryError::Invalid(format!(
                "an API key token must be '{TOKEN_PREFIX}' and {} hex digits",
                2 * TOKEN_BYTES
            )));
        }
        self.insert_api_key(key, token, actor).await
    }

    async fn insert_api_key(&self, key: &NewApiKey, token: &str, actor: &str) -> Result<ApiKey> {
        validate::key_name(&key.name)?;
        if key.models.len() > MAX_KEY_PATTERNS {
            return Err(RegistryError::Invalid(format!(
                "an API key may carry at most {MAX_KEY_PATTERNS} model patterns (got {})",
                key.models.len()
            )));
        }
        let now = db::now_ms();
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(RegistryError::Invalid(
                "an API key's expiry must be in the future".into(),
            ));
        }
        let stored = ApiKey {
            id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            name: key.name.clone(),
            role: key.role,
            models: key.models.clone(),
            token_hash: token_hash(token),
            created_at: now,
            created_by: actor.to_owned(),
            expires_at: key.expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        let mut tx = self.write_transaction().await?;
        let taken = sqlx::query("SELECT id FROM api_keys WHERE token_hash = $1")
            .bind(&stored.token_hash)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(RegistryError::Conflict(
                "this token already belongs to a key (perhaps a revoked one)".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, models, token_hash, created_at, created_by, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&stored.id)
        .bind(&stored.name)
        .bind(stored.role.as_str())
        .bind(db::to_text(&stored.models)?)
        .bind(&stored.token_hash)
        .bind(now)
        .bind(actor)
        .bind(stored.expires_at)
        .execute(&mut *tx)
        .await?;
        db::record(
            &mut tx,
            now,
            key_event(AuditAction::CreateApiKey, actor, &stored),
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Every key, newest first, revoked and expired ones included.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes key `id` (revoking a revoked key changes nothing); returns
    /// the key as it now is.
    pub async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<ApiKey> {
        let now = db::now_ms();
        let mut tx = self.write_transaction().await?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| RegistryError::ApiKeyNotFound(id.to_owned()))?;
        let mut key = key_from_row(&row)?;
        if key.revoked_at.is_none() {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            key.revoked_at = Some(now);
            db::record(
                &mut tx,
                now,
                key_event(AuditAction::RevokeApiKey, actor, &key),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(key)
    }

    /// Records that keys were used: each `(id, unix ms)` moves the key's
    /// `last_used_at` forward (never back).
    pub async fn touch_api_keys(&self, used: &[(String, i64)]) -> Result<()> {
        for (id, at) in used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(*at)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Whether some admin key is usable now.
    pub async fn has_usable_admin_key(&self) -> Result<bool> {
        let now = db::now_ms();
        Ok(self
            .list_api_keys()
            .await?
            .iter()
            .any(|k| k.role == Role::Admin && k.unusable_at(now).is_none()))
    }
}

/// The audit event of a key change: the key as it is, without its hash.
fn key_event<'a>(action: AuditAction, actor: &'a str, key: &ApiKey) -> Audit<'a> {
    Audit {
        actor,
        action,
        model: "",
        version: None,
        before: None,
        after: Some(json!({
            "id": key.id,
            "name": key.name,
            "role": key.role,
            "models": key.models,
            "expires_at": key.expires_at,
            "revoked_at": key.revoked_at,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a).len(), 64);
        assert!(is_token(&a));
        assert!(!is_token("fsk_short") && !is_token(&a[1..]));
    }
}
