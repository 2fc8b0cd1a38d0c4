//! Shared vocabulary of ferroserve: tensors, data types, model signatures,
//! feature schemas, engine choices, sample cells, inference requests and responses, error
//! kinds, roles and principals, and the names of every exported metric.
//!
//! Nothing in this crate does I/O or depends on an async runtime.

pub mod auth;
pub mod cells;
pub mod datatype;
pub mod engine;
pub mod error;
pub mod feature_values;
pub mod half_bits;
pub mod json;
pub mod request;
pub mod schema;
pub mod secrets;
pub mod signature;
pub mod telemetry;
pub mod tensor;

/// The half-precision element types (`f16`, `bf16`) of FP16 and BF16 tensors.
pub use half;

pub use auth::{Access, Credential, ModelPattern, Principal, Role, UnknownRole};
pub use cells::{Cell, ColumnSpec, FeatureKind};
pub use datatype::DataType;
pub use engine::{EngineChoice, UnknownEngine};
pub use error::{ErrorKind, InferError};
pub use request::{InferRequest, InferResponse, RequestedOutput, MAX_REQUEST_KEY_BYTES};
pub use schema::{FeatureSchema, FeatureSpec};
pub use signature::{Dim, ModelSignature, TensorSpec};
pub use tensor::{Tensor, TensorData};
