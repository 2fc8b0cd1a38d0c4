//! API keys: created with a token shown once and stored as its hash,
//! listed, revoked, stamped when used, audited.

use ferroserve_core::{ModelPattern, Role};
use ferroserve_registry::api_keys::{token_hash, TOKEN_PREFIX};
use ferroserve_registry::{NewApiKey, Registry, RegistryError};

use crate::helpers::*;

fn key(name: &str, role: Role) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        role,
        models: vec![],
        expires_at: None,
    }
}

pub(crate) async fn api_keys_lifecycle(reg: Registry, _url: String) {
    assert!(!reg.has_usable_admin_key().await.expect("admin?"));
    let (ci, token) = reg
        .create_api_key(
            &NewApiKey {
                models: vec![ModelPattern::new("fraud-*").unwrap()],
                ..key("ci-deployer", Role::Deployer)
            },
            ACTOR,
        )
        .await
        .expect("create");
    assert!(token.starts_with(TOKEN_PREFIX));
    assert_eq!(ci.token_hash, token_hash(&token));
    assert!(!reg.has_usable_admin_key().await.expect("admin?"));
    let (admin, _) = reg
        .create_api_key(&key("root", Role::Admin), ACTOR)
        .await
        .expect("create admin");
    assert!(reg.has_usable_admin_key().await.expect("admin?"));

    let listed = reg.list_api_keys().await.expect("list");
    assert_eq!(listed.len(), 2);
    let stored = listed.iter().find(|k| k.id == ci.id).expect("listed");
    assert_eq!(stored, &ci, "what is read back is what was created");
    assert_eq!(stored.models[0].as_str(), "fraud-*");
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(&ci.token_hash), "hashes are not serialized");

    reg.touch_api_keys(&[(ci.id.clone(), 5_000)])
        .await
        .expect("touch");
    reg.touch_api_keys(&[(ci.id.clone(), 4_000)])
        .await
        .expect("touch older");
    let touched = reg.list_api_keys().await.unwrap();
    let touched = touched.iter().find(|k| k.id == ci.id).unwrap();
    assert_eq!(touched.last_used_at, Some(5_000), "never moves back");

    let revoked = reg.revoke_api_key(&admin.id, "bob").await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(revoked.unusable_at(0), Some("revoked"));
    assert!(!reg.has_usable_admin_key().await.expect("admin?"));
    let again = reg.revoke_api_key(&admin.id, "bob").await.expect("again");
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "revoking twice keeps the first time"
    );

    let err = reg.revoke_api_key("nope", "bob").await.unwrap_err();
    assert!(matches!(err, RegistryError::ApiKeyNotFound(_)), "{err}");
    let err = reg
        .create_api_key(&key("bad name!", Role::Reader), ACTOR)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("API key name"), "{err}");
    let err = reg
        .create_api_key(
            &NewApiKey {
                expires_at: Some(1),
                ..key("old", Role::Reader)
            },
            ACTOR,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");

    let provisioned = format!("{TOKEN_PREFIX}{}", "ab".repeat(32));
    let adopted = reg
        .adopt_api_key(&key("ops", Role::Admin), &provisioned, ACTOR)
        .await
        .expect("adopt");
    assert_eq!(adopted.token_hash, token_hash(&provisioned));
    let again = reg
        .adopt_api_key(&key("ops2", Role::Admin), &provisioned, ACTOR)
        .await
        .unwrap_err();
    assert!(matches!(again, RegistryError::Conflict(_)), "{again}");
    let weak = reg
        .adopt_api_key(&key("weak", Role::Admin), "fsk_password", ACTOR)
        .await
        .unwrap_err();
    assert!(weak.to_string().contains("hex digits"), "{weak}");
    reg.revoke_api_key(&adopted.id, "bob")
        .await
        .expect("revoke");

    let events = last_event(&reg, "").await;
    assert_eq!(events.action.as_str(), "revoke_api_key");
    assert_eq!(events.actor, "bob");
    assert!(!events
        .after
        .unwrap()
        .to_string()
        .contains(&admin.token_hash));
}

/// Keys created at once, each in a transaction that reads before it
/// writes, all succeed: none fails with "database is locked".
pub(crate) async fn concurrent_key_creations_all_succeed(reg: Registry, _url: String) {
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let reg = reg.clone();
            tokio::spawn(async move {
                reg.create_api_key(&key(&format!("k{i}"), Role::Reader), ACTOR)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("create key");
    }
    assert_eq!(reg.list_api_keys().await.expect("list").len(), 24);
}
