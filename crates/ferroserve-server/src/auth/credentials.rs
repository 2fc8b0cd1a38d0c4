//! The credentials a request presents: `Authorization: Bearer TOKEN`, else
//! `X-API-Key: TOKEN` (over HTTP; gRPC metadata carries the same two).

use axum::http::{header, HeaderMap};

/// Header carrying an API key, for clients that do not use `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Longest accepted token, in bytes (a JWT with a few claims is well
/// under this; an API key is 68).
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a request presents.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No credentials.
    Nothing,
    /// A token (an API key or a JWT).
    Token(&'a str),
    /// Something that is not a usable token; the text says what.
    Malformed(&'static str),
}

/// The credentials in `headers`.
pub fn presented(headers: &HeaderMap) -> Presented<'_> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Ok(text) = value.to_str() else {
            return Presented::Malformed("the Authorization header is not ASCII text");
        };
        let Some((scheme, token)) = text.trim().split_once(' ') else {
            return Presented::Malformed("the Authorization header must be 'Bearer TOKEN'");
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Presented::Malformed(
                "the Authorization header must use the Bearer scheme ('Bearer TOKEN')",
            );
        }
        return token_of(token.trim());
    }
    match headers.get(API_KEY_HEADER).map(|v| v.to_str()) {
        None => Presented::Nothing,
        Some(Err(_)) => Presented::Malformed("the X-API-Key header is not ASCII text"),
        Some(Ok(token)) => token_of(token.trim()),
    }
}

fn token_of(token: &str) -> Presented<'_> {
    if token.is_empty() {
        Presented::Malformed("the token is empty")
    } else if token.len() > MAX_TOKEN_BYTES {
        Presented::Malformed("the token is longer than 8 KiB")
    } else {
        Presented::Token(token)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn bearer_and_api_key_headers_carry_tokens() {
        assert_eq!(presented(&HeaderMap::new()), Presented::Nothing);
        let bearer = with("authorization", "Bearer abc");
        assert_eq!(presented(&bearer), Presented::Token("abc"));
        let lower = with("authorization", "bearer  abc ");
        assert_eq!(presented(&lower), Presented::Token("abc"));
        assert_eq!(presented(&with("x-api-key", "k1")), Presented::Token("k1"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_malformed() {
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "token"] {
            assert!(
                matches!(
                    presented(&with("authorization", value)),
                    Presented::Malformed(_)
                ),
                "{value}"
            );
        }
        assert!(matches!(
            presented(&with("x-api-key", " ")),
            Presented::Malformed(_)
        ));
    }
}
