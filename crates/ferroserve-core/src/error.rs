//! Error kinds shared by every layer, mapped once to an HTTP status and a
//! metric label.

/// What went wrong, independent of the protocol that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request was malformed or did not match the model's signature.
    InvalidInput,
    /// The model or version does not exist.
    NotFound,
    /// The request conflicts with the current state (a name already taken,
    /// a version still in Production).
    Conflict,
    /// The request body exceeds the configured limit.
    PayloadTooLarge,
    /// The request is well formed but cannot be processed as sent (an
    /// idempotency key reused with a different request).
    Unprocessable,
    /// The batch queue of the model is full; retry later.
    QueueFull,
    /// A rate limit of the client or the model is exhausted; retry later.
    RateLimited,
    /// The server or the model is at its concurrency limit; retry later.
    Overloaded,
    /// The model is not ready (loading, failed, or shutting down).
    Unavailable,
    /// The request's deadline passed before it could be answered.
    DeadlineExceeded,
    /// The client stopped sending its request (a body that stalled).
    RequestTimeout,
    /// The engine does not support what the model asks for.
    Unsupported,
    /// The request carries no credentials, or credentials that are not
    /// valid (unknown, expired or revoked key, bad token).
    Unauthenticated,
    /// The caller is known but its role or model patterns do not allow
    /// the request.
    PermissionDenied,
    /// The server's disk is too full to keep what the request brings.
    InsufficientStorage,
    /// A bug or an engine failure.
    Internal,
}

impl ErrorKind {
    /// HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unprocessable => 422,
            ErrorKind::QueueFull | ErrorKind::RateLimited | ErrorKind::Overloaded => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::DeadlineExceeded => 504,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::Unsupported => 501,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::InsufficientStorage => 507,
            ErrorKind::Internal => 500,
        }
    }

    /// Short label used in metrics and logs.
    pub fn as_label(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::InsufficientStorage => "insufficient_storage",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error on the inference path: a kind and a message that says what was
/// wrong and where. Cloneable, so one failure can be sent to every request of
/// a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InferError {
    /// Category, deciding the status code.
    pub kind: ErrorKind,
    /// Human-readable explanation.
    pub message: String,
    /// When the caller may usefully retry (`Retry-After`), if known.
    pub retry_after: Option<std::time::Duration>,
}

impl InferError {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        InferError {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Tells the caller when a retry may succeed.
    pub fn with_retry_after(mut self, retry_after: std::time::Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// `Retry-After` in whole seconds (rounded up, at least 1): the error's
    /// own hint, else 1 s for overload refusals, else none.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self.retry_after {
            Some(wait) => Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
            None if self.is_overload() => Some(1),
            None => None,
        }
    }

    /// Whether the caller should retry later: the server refused the request
    /// to protect itself (queue full, rate or concurrency limit).
    pub fn is_overload(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::QueueFull | ErrorKind::RateLimited | ErrorKind::Overloaded
        )
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}
