//! KServe v2 / Open Inference Protocol: HTTP handlers (the wire format is
//! the `ferroserve-kserve` crate).

pub(crate) mod async_submit;
pub(crate) mod routes;
