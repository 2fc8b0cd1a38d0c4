//! Who is calling: the identity that rate limits and idempotency keys are
//! scoped by. An API key (`Authorization: Bearer …` or `X-Api-Key`) names
//! the client by a hash of the key (never the key itself); otherwise the
//! peer's IP address does.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// Header carrying an API key, for clients that do not use `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// A bounded, printable client identity: `key:<hash>`, `ip:<address>` or
/// `anonymous`; it never contains the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// The identity of a request with these headers from `peer`.
    pub fn from_request(headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientId {
        if let Some(key) = api_key(headers) {
            let hash = blake3::hash(key.as_bytes());
            return ClientId(format!("key:{}", &hash.to_hex()[..16]).into());
        }
        match peer {
            Some(peer) => ClientId(format!("ip:{}", peer.ip()).into()),
            None => ClientId("anonymous".into()),
        }
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

fn api_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

impl ClientId {
    /// The identity of the request with these `parts` (the peer address
    /// axum records per connection is absent when a router is driven
    /// without a socket, as in tests).
    pub fn of(parts: &Parts) -> ClientId {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        ClientId::from_request(&parts.headers, peer)
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
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn api_keys_are_hashed_and_win_over_the_address() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 7], 4000)));
        let mut headers = HeaderMap::new();
        assert_eq!(
            ClientId::from_request(&headers, peer).as_str(),
            "ip:10.0.0.7"
        );
        assert_eq!(ClientId::from_request(&headers, None).as_str(), "anonymous");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        let by_bearer = ClientId::from_request(&headers, peer);
        assert!(by_bearer.as_str().starts_with("key:"), "{by_bearer}");
        assert!(!by_bearer.as_str().contains("s3cret"));
        let mut other = HeaderMap::new();
        other.insert(API_KEY_HEADER, HeaderValue::from_static("s3cret"));
        assert_eq!(ClientId::from_request(&other, None), by_bearer);
    }
}
