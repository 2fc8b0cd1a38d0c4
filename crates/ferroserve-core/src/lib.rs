//! Shared vocabulary of ferroserve: tensors, data types, model signatures,
//! feature schemas, inference requests and responses, and error kinds.
//!
//! Nothing in this crate does I/O or depends on an async runtime.

pub mod datatype;
pub mod error;
pub mod json;
pub mod request;
pub mod schema;
pub mod signature;
pub mod tensor;

pub use datatype::DataType;
pub use error::{ErrorKind, InferError};
pub use request::{InferRequest, InferResponse, RequestedOutput};
pub use schema::{FeatureSchema, FeatureSpec};
pub use signature::{Dim, ModelSignature, TensorSpec};
pub use tensor::{Tensor, TensorData};
