//! MLflow's wire conventions: JSON bodies for POST and query strings for
//! GET (both protobuf messages as JSON: int64 as a number or a string,
//! doubles as numbers or `"NaN"`/`"Infinity"`), and errors as
//! `{"error_code", "message"}` with the status MLflow gives each code.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_core::ErrorKind;
use ferroserve_registry::RegistryError;
use ferroserve_serving::ServingError;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::management::extract::{parse_json, BodyBytes};

/// An error as MLflow's clients expect it.
#[derive(Debug)]
pub(crate) struct MlflowError {
    /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, ...).
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// What a handler of the MLflow API returns.
pub(crate) type MlflowResult = Result<Json<Value>, MlflowError>;

impl MlflowError {
    /// `INVALID_PARAMETER_VALUE`: the request is wrong, and `message` says how.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        MlflowError {
            code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
        }
    }

    /// `ENDPOINT_NOT_FOUND`: this server has no such MLflow call.
    pub(crate) fn endpoint_not_found(path: &str) -> Self {
        MlflowError {
            code: "ENDPOINT_NOT_FOUND",
            message: format!("this server does not offer the MLflow call {path}"),
        }
    }

    /// `RESOURCE_DOES_NOT_EXIST`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        MlflowError {
            code: "RESOURCE_DOES_NOT_EXIST",
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.code {
            "RESOURCE_DOES_NOT_EXIST" | "ENDPOINT_NOT_FOUND" => StatusCode::NOT_FOUND,
            "PERMISSION_DENIED" => StatusCode::FORBIDDEN,
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "TEMPORARILY_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            "INTERNAL_ERROR" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code, "message": self.message});
        (self.status(), Json(body)).into_response()
    }
}

impl From<RegistryError> for MlflowError {
    fn from(e: RegistryError) -> Self {
        let code = match &e {
            RegistryError::ExperimentExists(_) | RegistryError::ModelExists(_) => {
                "RESOURCE_ALREADY_EXISTS"
            }
            _ => code_of(e.kind()),
        };
        MlflowError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<ServingError> for MlflowError {
    /// A registry error keeps its MLflow code (`RESOURCE_ALREADY_EXISTS`
    /// for a taken name); the rest go by their kind.
    fn from(e: ServingError) -> Self {
        match e {
            ServingError::Registry(e) => e.into(),
            other => ApiError::from(other).into(),
        }
    }
}

impl From<ApiError> for MlflowError {
    fn from(ApiError(e): ApiError) -> Self {
        MlflowError {
            code: code_of(e.kind),
            message: e.message,
        }
    }
}

/// MLflow's error code for a ferroserve error kind.
fn code_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "RESOURCE_DOES_NOT_EXIST",
        ErrorKind::Conflict => "INVALID_STATE",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::Unavailable | ErrorKind::Overloaded => "TEMPORARILY_UNAVAILABLE",
        ErrorKind::Internal => "INTERNAL_ERROR",
        _ => "INVALID_PARAMETER_VALUE",
    }
}

/// A POST body: a protobuf message as JSON, decoded into `T`.
pub(crate) struct MlflowBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MlflowBody<T> {
    type Rejection = MlflowError;

    async fn from_request(request: Request, state: &S) -> Result<Self, MlflowError> {
        let BodyBytes(bytes) = BodyBytes::from_request(request, state).await?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            &b"{}"[..]
        } else {
            &bytes[..]
        };
        // The management API's decoding, which names the field at fault.
        Ok(MlflowBody(parse_json(bytes)?))
    }
}

/// A GET query string: a protobuf message's fields as parameters.
pub(crate) struct MlflowQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for MlflowQuery<T> {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, MlflowError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| MlflowQuery(query.0))
            .map_err(|e| MlflowError::invalid(format!("malformed request: {}", e.body_text())))
    }
}

/// A `{key, value}` pair of a tag or param list.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct KeyValue {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: String,
}

/// A `[{key, value}, ...]` list as a map (a later key wins).
pub(crate) fn tag_map(tags: Vec<KeyValue>) -> std::collections::BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// `[{key, value}, ...]` of `pairs`.
pub(crate) fn key_values<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    pairs
        .into_iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect()
}

/// An int64 field: a JSON number or a string of digits (protobuf JSON
/// allows both; query strings only have strings).
pub(crate) fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Text(String),
    }
    match Option::<Int>::deserialize(d)? {
        None => Ok(None),
        Some(Int::Number(n)) => Ok(Some(n)),
        Some(Int::Text(text)) if text.is_empty() => Ok(None),
        Some(Int::Text(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("'{text}' is not an integer"))),
    }
}

/// A double field: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"`
/// (or a number as a string). The number is read from its text, rounded
/// correctly, so that a value logged comes back exactly (serde_json's own
/// float parsing may be a bit off in the last place). Only for bodies
/// decoded straight from JSON (no `flatten` above the field).
pub(crate) fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    let text = raw.get().trim();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted,
        None => text,
    };
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        other => other
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("'{other}' is not a number"))),
    }
}

/// A double as protobuf JSON writes it: a number, or `"NaN"`,
/// `"Infinity"`, `"-Infinity"`.
pub(crate) fn double_json(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(x)
    }
}

/// An id MLflow sends as a string of digits (an experiment id).
pub(crate) fn numeric_id(what: &str, id: &str) -> Result<i64, MlflowError> {
    id.trim()
        .parse()
        .map_err(|_| MlflowError::not_found(format!("{what} '{id}' does not exist")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Numbers {
        #[serde(default, deserialize_with = "int64")]
        step: Option<i64>,
        #[serde(deserialize_with = "double")]
        value: f64,
    }

    #[test]
    fn numbers_come_as_protobuf_json_writes_them() {
        let parsed: Numbers =
            serde_json::from_value(json!({"step": "12", "value": "NaN"})).expect("strings");
        assert_eq!(parsed.step, Some(12));
        assert!(parsed.value.is_nan());
        let parsed: Numbers =
            serde_json::from_str(r#"{"step": 3, "value": 0.09090909090909091}"#).expect("numbers");
        assert_eq!(parsed.value, 1.0 / 11.0, "read exactly");
        let parsed: Numbers =
            serde_json::from_str(r#"{"step": 3, "value": 0.5}"#).expect("numbers");
        assert_eq!((parsed.step, parsed.value), (Some(3), 0.5));
        let parsed: Numbers = serde_json::from_str(r#"{"value": "-Infinity"}"#).expect("inf");
        assert_eq!((parsed.step, parsed.value), (None, f64::NEG_INFINITY));
        assert!(serde_json::from_str::<Numbers>(r#"{"step": "x", "value": 1}"#).is_err());
        assert_eq!(double_json(f64::INFINITY), json!("Infinity"));
        assert_eq!(double_json(1.5), json!(1.5));
    }

    #[test]
    fn errors_carry_mlflow_codes_and_statuses() {
        let e = MlflowError::from(RegistryError::RunNotFound("abc".into()));
        assert_eq!(
            (e.code, e.status()),
            ("RESOURCE_DOES_NOT_EXIST", StatusCode::NOT_FOUND)
        );
        let e = MlflowError::from(RegistryError::ExperimentExists("x".into()));
        assert_eq!(
            (e.code, e.status()),
            ("RESOURCE_ALREADY_EXISTS", StatusCode::BAD_REQUEST)
        );
        let e = MlflowError::from(RegistryError::Invalid("bad".into()));
        assert_eq!(e.code, "INVALID_PARAMETER_VALUE");
    }
}
