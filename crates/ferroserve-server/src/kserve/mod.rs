//! KServe v2 / Open Inference Protocol: wire formats and HTTP handlers.

pub(crate) mod elements;
pub(crate) mod repository;
pub mod request;
pub mod response;
pub(crate) mod routes;
