//! The API keys a server accepts: every key of the registry, held in
//! memory and re-read every poll interval, so a key created or revoked on
//! one replica takes effect on every replica within that interval (at once
//! on the replica that made the change). When keys were last used is
//! gathered here and written back on the same beat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ferroserve_core::{Credential, Principal};
use ferroserve_registry::api_keys::{now_ms, token_hash, TOKEN_PREFIX};
use ferroserve_registry::changes::tick_or_change;
use ferroserve_registry::{ApiKey, Registry, RegistryError};

use super::failure::{AuthFailure, FailureReason};

/// A stored key with the principal it stands for.
struct Entry {
    key: ApiKey,
    principal: Arc<Principal>,
}

/// The keys of a registry, by the hash of their token.
pub struct KeyRing {
    registry: Registry,
    by_hash: RwLock<Arc<HashMap<String, Entry>>>,
    last_used: Mutex<HashMap<String, i64>>,
}

impl KeyRing {
    /// Reads every key of `registry`.
    pub async fn load(registry: Registry) -> Result<Arc<KeyRing>, RegistryError> {
        let ring = Arc::new(KeyRing {
            registry,
            by_hash: RwLock::new(Arc::new(HashMap::new())),
            last_used: Mutex::new(HashMap::new()),
        });
        ring.refresh().await?;
        Ok(ring)
    }

    /// The registry the keys live in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads the keys again.
    pub async fn refresh(&self) -> Result<(), RegistryError> {
        let keys = self.registry.list_api_keys().await?;
        let by_hash = keys
            .into_iter()
            .map(|key| {
                let principal = Arc::new(Principal::new(
                    key.name.as_str(),
                    key.role,
                    key.models.clone(),
                    Credential::ApiKey { id: key.id.clone() },
                ));
                (key.token_hash.clone(), Entry { key, principal })
            })
            .collect();
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(by_hash);
        Ok(())
    }

    /// Whether `token` looks like one of this server's API keys (else it
    /// may be a JWT).
    pub fn is_api_key(token: &str) -> bool {
        token.starts_with(TOKEN_PREFIX)
    }

    /// The principal `token` stands for, or why it stands for none.
    pub fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthFailure> {
        let hash = token_hash(token);
        let keys = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let entry = keys
            .get(&hash)
            // The map finds the entry by hash; this compares the hashes again
            // in constant time, so no timing depends on how much matched.
            .filter(|e| {
                constant_time_eq::constant_time_eq(e.key.token_hash.as_bytes(), hash.as_bytes())
            })
            .ok_or_else(|| {
                AuthFailure::new(FailureReason::UnknownKey, "the API key is not known")
            })?;
        let key = &entry.key;
        let now = now_ms();
        match key.unusable_at(now) {
            Some("revoked") => Err(AuthFailure::new(
                FailureReason::RevokedKey,
                format!("API key '{}' was revoked", key.name),
            )),
            Some(_) => Err(AuthFailure::new(
                FailureReason::ExpiredKey,
                format!("API key '{}' has expired", key.name),
            )),
            None => {
                let mut used = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
                match used.get_mut(&key.id) {
                    Some(at) => *at = now,
                    None => {
                        used.insert(key.id.clone(), now);
                    }
                }
                Ok(entry.principal.clone())
            }
        }
    }

    /// Writes when keys were last used to the registry.
    pub async fn flush_last_used(&self) -> Result<(), RegistryError> {
        let used: Vec<(String, i64)> =
            std::mem::take(&mut *self.last_used.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        if used.is_empty() {
            return Ok(());
        }
        self.registry.touch_api_keys(&used).await
    }

    /// Re-reads the keys and writes their use every `every`, and at once
    /// when the registry notifies a change (a key made or revoked through
    /// another replica), until the runtime stops; a registry error is
    /// logged and retried on the next beat (the keys read last stay in
    /// force meanwhile).
    pub fn follow(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let ring = Arc::downgrade(self);
        let mut feed = self.registry.change_feed();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick_or_change(&mut tick, feed.as_mut()).await;
                let Some(ring) = ring.upgrade() else { return };
                if let Err(e) = ring.flush_last_used().await {
                    tracing::warn!(error = %e, "cannot record when API keys were last used");
                }
                if let Err(e) = ring.refresh().await {
                    tracing::warn!(error = %e, "cannot re-read the API keys; keeping the ones read last");
                }
            }
        })
    }
}
