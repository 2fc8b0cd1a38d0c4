//! Who is calling: the identity that rate limits, idempotency keys,
//! feedback and jobs are scoped by. An authenticated caller is named by its
//! principal (an API key's name, `jwt:<subject>` for a JWT); a caller
//! without credentials by the peer's IP address (`ip:<address>`). Key names
//! cannot contain `:`, so the three never collide.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ferroserve_core::Principal;

use crate::auth::Caller;

/// A bounded, printable client identity: a key's name, `jwt:<subject>`,
/// `ip:<address>` or `anonymous`; it never contains a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// The identity of `principal` calling from `peer`.
    pub fn from_principal(principal: Option<&Principal>, peer: Option<SocketAddr>) -> ClientId {
        match principal {
            Some(p) if !p.is_anonymous() => ClientId(p.shared_name()),
            _ => match peer {
                Some(peer) => ClientId(format!("ip:{}", peer.ip()).into()),
                None => ClientId("anonymous".into()),
            },
        }
    }

    /// The identity of the request with these `parts` (the peer address
    /// axum records per connection is absent when a router is driven
    /// without a socket, as in tests).
    pub fn of(parts: &Parts) -> ClientId {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let principal = Caller::of(parts);
        ClientId::from_principal(principal.as_deref(), peer)
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity as shared text (no copy).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientId::of(parts))
    }
}

#[cfg(test)]
mod tests {
    use ferroserve_core::{Credential, Role};

    use super::*;

    #[test]
    fn principals_win_over_the_address() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 7], 4000)));
        let anonymous = Principal::anonymous(Role::Predictor);
        assert_eq!(
            ClientId::from_principal(Some(&anonymous), peer).as_str(),
            "ip:10.0.0.7"
        );
        assert_eq!(ClientId::from_principal(None, None).as_str(), "anonymous");
        let key = Principal::new(
            "ci",
            Role::Predictor,
            vec![],
            Credential::ApiKey { id: "k1".into() },
        );
        assert_eq!(ClientId::from_principal(Some(&key), peer).as_str(), "ci");
        let jwt = Principal::new("jwt:alice", Role::Reader, vec![], Credential::Jwt);
        assert_eq!(
            ClientId::from_principal(Some(&jwt), peer).as_str(),
            "jwt:alice"
        );
    }
}
