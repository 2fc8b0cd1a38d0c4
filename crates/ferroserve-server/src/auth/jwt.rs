//! JSON Web Tokens from an identity provider, verified offline: against the
//! keys of a JWKS document (a file, or a URL fetched at start and every
//! few minutes after), with RS256, ES256 or HS256, a required expiry, and
//! the issuer and audience the server is told to expect. The principal is
//! the token's subject, its role the configured claim, and its model
//! patterns an optional claim (a list, or a space-separated string).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use ferroserve_core::{Credential, ModelPattern, Principal, Role};

use super::failure::{AuthFailure, FailureReason};

/// How often a JWKS URL (or file) is read again.
const JWKS_REFRESH: Duration = Duration::from_secs(300);

/// Algorithms a token may be signed with.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::HS256];

/// What the server expects of a JWT.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Where the keys are: a file path, or an `http(s)://` URL.
    pub jwks: String,
    /// The `iss` a token must carry, if any is required.
    pub issuer: Option<String>,
    /// The `aud` a token must carry, if any is required.
    pub audience: Option<String>,
    /// The claim holding the role (`reader`, `predictor`, ...).
    pub role_claim: String,
    /// The claim holding model patterns, if tokens may carry them.
    pub models_claim: String,
}

/// A usable verification key: its `kid` (if any), algorithm and key.
type VerificationKey = (Option<String>, Algorithm, DecodingKey);

/// Verifies tokens against the keys read last.
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: RwLock<Arc<Vec<VerificationKey>>>,
}

impl JwtVerifier {
    /// Reads the keys `settings` name; fails when they cannot be read or
    /// none is usable.
    pub async fn load(settings: JwtSettings) -> Result<Arc<JwtVerifier>, String> {
        let keys = read_keys(&settings.jwks).await?;
        Ok(Arc::new(JwtVerifier {
            settings,
            keys: RwLock::new(Arc::new(keys)),
        }))
    }

    /// Reads the keys again every few minutes (a provider rotates them),
    /// keeping the ones read last when that fails.
    pub fn follow(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let verifier = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(JWKS_REFRESH).await;
                let Some(verifier) = verifier.upgrade() else {
                    return;
                };
                match read_keys(&verifier.settings.jwks).await {
                    Ok(keys) => {
                        *verifier.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot re-read the JWKS; keeping the keys read last")
                    }
                }
            }
        })
    }

    /// The principal `token` stands for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        let bad =
            |why: String| AuthFailure::new(FailureReason::BadJwt, format!("JWT refused: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(describe(e.kind())))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(bad(format!(
                "algorithm {:?} is not accepted (RS256, ES256, HS256)",
                header.alg
            )));
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let candidates = keys.iter().filter(|(kid, alg, _)| {
            *alg == header.alg && (header.kid.is_none() || kid.as_deref() == header.kid.as_deref())
        });
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        match &self.settings.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let mut last = bad("no key of the JWKS matches the token's algorithm and key id".into());
        for (_, _, key) in candidates {
            match jsonwebtoken::decode::<Value>(token, key, &validation) {
                Ok(data) => return self.principal(&data.claims).map_err(bad),
                Err(e) => last = bad(describe(e.kind())),
            }
        }
        Err(last)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, String> {
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or("its 'sub' claim must be a string of 1-256 characters")?;
        let role_claim = &self.settings.role_claim;
        let role: Role = claims[role_claim.as_str()]
            .as_str()
            .ok_or_else(|| format!("it has no '{role_claim}' claim naming a role"))?
            .parse()
            .map_err(|e| format!("claim '{role_claim}': {e}"))?;
        let patterns: Vec<String> = match &claims[self.settings.models_claim.as_str()] {
            Value::Null => Vec::new(),
            Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    format!("claim '{}' must list strings", self.settings.models_claim)
                })?,
            _ => {
                return Err(format!(
                    "claim '{}' must be a list or a space-separated string",
                    self.settings.models_claim
                ))
            }
        };
        let models = patterns
            .iter()
            .map(|p| ModelPattern::new(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Principal::new(
            format!("jwt:{subject}"),
            role,
            models,
            Credential::Jwt,
        ))
    }
}

/// A caller-facing reason for a verification error.
fn describe(kind: &JwtErrorKind) -> String {
    match kind {
        JwtErrorKind::InvalidSignature => "its signature does not verify".into(),
        JwtErrorKind::ExpiredSignature => "it has expired".into(),
        JwtErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        JwtErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        JwtErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        JwtErrorKind::MissingRequiredClaim(c) => format!("it lacks the '{c}' claim"),
        JwtErrorKind::InvalidAlgorithm => "its algorithm does not match the key".into(),
        _ => "it is not a well-formed JWT".into(),
    }
}

/// The usable keys of the JWKS at `source`.
async fn read_keys(source: &str) -> Result<Vec<VerificationKey>, String> {
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client for the JWKS: {e}"))?;
        client
            .get(source)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("cannot fetch the JWKS from {source}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("cannot read the JWKS from {source}: {e}"))?
    } else {
        tokio::fs::read_to_string(source)
            .await
            .map_err(|e| format!("cannot read the JWKS file {source}: {e}"))?
    };
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("the JWKS at {source} is not a JWK set: {e}"))?;
    let keys: Vec<_> = set.keys.iter().filter_map(usable).collect();
    if keys.is_empty() {
        return Err(format!(
            "the JWKS at {source} holds no RS256, ES256 or HS256 key"
        ));
    }
    Ok(keys)
}

/// A key of the set with the algorithm it verifies, if it is one of ours.
fn usable(jwk: &Jwk) -> Option<VerificationKey> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (P::RSA(_), _) => Algorithm::RS256,
        (P::EllipticCurve(_), _) => Algorithm::ES256,
        (P::OctetKey(_), _) => Algorithm::HS256,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((jwk.common.key_id.clone(), alg, key))
}
