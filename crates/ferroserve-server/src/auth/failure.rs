//! Why a request was refused for its credentials: a reason (a metric label)
//! and a message for the caller. Every refusal is counted
//! (`ferroserve_auth_failures_total{reason}`) and logged with the client's
//! address, at most once a second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use ferroserve_core::telemetry::AUTH_FAILURES;
use ferroserve_core::{ErrorKind, InferError};

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// None were sent and anonymous callers may not use the route.
    Missing,
    /// The header was not a usable token.
    Malformed,
    /// No API key has this token.
    UnknownKey,
    /// The key has expired.
    ExpiredKey,
    /// The key was revoked.
    RevokedKey,
    /// The JWT did not verify (signature, issuer, audience, expiry, claims).
    BadJwt,
    /// The principal's role does not grant the route's access.
    Role,
    /// The principal is limited to other models.
    Model,
}

impl FailureReason {
    /// The metric label.
    pub fn as_label(self) -> &'static str {
        match self {
            FailureReason::Missing => "missing",
            FailureReason::Malformed => "malformed",
            FailureReason::UnknownKey => "unknown_key",
            FailureReason::ExpiredKey => "expired_key",
            FailureReason::RevokedKey => "revoked_key",
            FailureReason::BadJwt => "bad_jwt",
            FailureReason::Role => "role",
            FailureReason::Model => "model",
        }
    }

    /// Whether this is a 403 (known caller, not allowed) rather than a 401.
    fn is_forbidden(self) -> bool {
        matches!(self, FailureReason::Role | FailureReason::Model)
    }
}

/// A refusal: why, and what to tell the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// Why.
    pub reason: FailureReason,
    /// What the caller is told.
    pub message: String,
}

impl AuthFailure {
    /// A refusal for `reason`.
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        AuthFailure {
            reason,
            message: message.into(),
        }
    }

    /// Counts and (rate-limited) logs the refusal, and makes it the error
    /// answered: 401 (with `WWW-Authenticate: Bearer`) or 403.
    pub fn into_error(self, peer: Option<SocketAddr>, method: &str, path: &str) -> InferError {
        metrics::counter!(AUTH_FAILURES, "reason" => self.reason.as_label()).increment(1);
        if log_now() {
            let client = peer.map(|p| p.ip().to_string()).unwrap_or_default();
            tracing::warn!(
                reason = self.reason.as_label(),
                client = %client,
                method,
                path,
                message = %self.message,
                "request refused for its credentials (at most one such line a second)"
            );
        }
        let kind = if self.reason.is_forbidden() {
            ErrorKind::PermissionDenied
        } else {
            ErrorKind::Unauthenticated
        };
        InferError::new(kind, self.message)
    }
}

/// Whether a refusal may be logged now: at most one line a second, so a
/// flood of bad credentials cannot flood the log.
fn log_now() -> bool {
    static LAST_SECOND: AtomicU64 = AtomicU64::new(0);
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    LAST_SECOND.swap(second, Ordering::Relaxed) != second
}
