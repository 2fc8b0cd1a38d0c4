//! The KServe v2 / Open Inference Protocol wire format: requests decoded
//! from JSON or binary tensors in one pass, responses encoded the same
//! ways, and which outputs a request wants back in binary form. Pure
//! functions over bytes: the HTTP front end and asynchronous inference jobs
//! share them.

pub mod binary_choice;
pub mod elements;
pub mod request;
pub mod response;

pub use binary_choice::BinaryChoice;
pub use request::{declared_input, decode_request, timeout_parameter, BINARY_DATA_OUTPUT};
pub use response::{encode_response, EncodedResponse};
