//! KServe v2 / Open Inference Protocol: wire formats and HTTP handlers.

pub(crate) mod elements;
pub(crate) mod repository;
pub mod request;
pub mod response;
pub(crate) mod routes;

/// Header carrying the length of the JSON part of a body with binary tensors.
pub const HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";
