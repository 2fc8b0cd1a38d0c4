//! Conversions between ferroserve tensors and ONNX Runtime values: element
//! types, declared shapes, input views and the outputs a session returns
//! (tensors, and the `seq(map(...))` of scikit-learn's ZipMap).

use ferroserve_core::{half, DataType, Dim, Tensor, TensorData, TensorSpec};
use ort::session::SessionInputValue;
use ort::value::{
    DynMapValueType, DynValue, PrimitiveTensorElementType, Tensor as OrtTensor, TensorElementType,
    TensorRef, ValueType,
};

use crate::BackendError;

/// How an output of the session becomes a ferroserve tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputKind {
    /// A plain tensor, returned as it is.
    Tensor,
    /// A sequence of maps (one per row, as ZipMap produces), returned as an
    /// `[rows, keys]` tensor with columns in ascending key order.
    MapRows {
        /// Key type of each map (`Int64` or `String`).
        key: TensorElementType,
        /// Value type of each map (`Float32` or `Float64`).
        value: TensorElementType,
    },
}

/// The ferroserve type of an ONNX element type, if it has one.
pub(crate) fn data_type(ty: TensorElementType) -> Option<DataType> {
    Some(match ty {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Bfloat16 => DataType::Bf16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        TensorElementType::String => DataType::Bytes,
        _ => return None,
    })
}

/// Declared spec of an input (`is_input`) or output, and for outputs how to
/// convert it. Symbolic and unknown dimensions become [`Dim::Dynamic`].
pub(crate) fn spec_of(
    name: &str,
    ty: &ValueType,
    is_input: bool,
) -> Result<(TensorSpec, OutputKind), BackendError> {
    let role = if is_input { "input" } else { "output" };
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let datatype = data_type(*ty).ok_or_else(|| {
                BackendError::Load(format!(
                    "{role} '{name}' has element type {ty}, which ferroserve cannot serve"
                ))
            })?;
            let dims = shape
                .iter()
                .map(|&d| usize::try_from(d).map_or(Dim::Dynamic, Dim::Fixed))
                .collect();
            Ok((TensorSpec::new(name, datatype, dims), OutputKind::Tensor))
        }
        ValueType::Sequence(inner) if !is_input => match inner.as_ref() {
            ValueType::Map { key, value }
                if matches!(key, TensorElementType::Int64 | TensorElementType::String)
                    && matches!(
                        value,
                        TensorElementType::Float32 | TensorElementType::Float64
                    ) =>
            {
                let datatype = data_type(*value).unwrap_or(DataType::Fp32);
                let spec = TensorSpec::new(name, datatype, vec![Dim::Dynamic, Dim::Dynamic]);
                let kind = OutputKind::MapRows {
                    key: *key,
                    value: *value,
                };
                Ok((spec, kind))
            }
            _ => Err(unsupported_type(role, name, ty)),
        },
        _ => Err(unsupported_type(role, name, ty)),
    }
}

fn unsupported_type(role: &str, name: &str, ty: &ValueType) -> BackendError {
    BackendError::Load(format!(
        "{role} '{name}' has ONNX type {ty}, which ferroserve cannot serve (tensors, and sequences of maps from ZipMap, are supported)"
    ))
}

/// An ONNX Runtime input for `tensor`: a borrowed view of its data, except
/// for strings, which ONNX Runtime copies into its own string tensor.
pub(crate) fn input_value(tensor: &Tensor) -> Result<SessionInputValue<'_>, BackendError> {
    let shape = tensor.shape.clone();
    let failed = |e: ort::Error| {
        BackendError::Input(format!(
            "input '{}' cannot be passed to onnxruntime: {e}",
            tensor.name
        ))
    };
    macro_rules! view {
        ($data:expr) => {
            TensorRef::from_array_view((shape, $data.as_slice()))
                .map(SessionInputValue::from)
                .map_err(failed)
        };
    }
    match &tensor.data {
        TensorData::Bool(v) => view!(v),
        TensorData::Uint8(v) => view!(v),
        TensorData::Uint16(v) => view!(v),
        TensorData::Uint32(v) => view!(v),
        TensorData::Uint64(v) => view!(v),
        TensorData::Int8(v) => view!(v),
        TensorData::Int16(v) => view!(v),
        TensorData::Int32(v) => view!(v),
        TensorData::Int64(v) => view!(v),
        TensorData::Fp16(v) => view!(v),
        TensorData::Bf16(v) => view!(v),
        TensorData::Fp32(v) => view!(v),
        TensorData::Fp64(v) => view!(v),
        TensorData::Bytes(items) => {
            let strings = utf8_strings(&tensor.name, items)?;
            OrtTensor::from_string_array((shape, strings.as_slice()))
                .map(SessionInputValue::from)
                .map_err(failed)
        }
    }
}

/// The elements of a `BYTES` input as strings: ONNX strings are UTF-8
/// without NUL bytes.
fn utf8_strings(name: &str, items: &[Vec<u8>]) -> Result<Vec<String>, BackendError> {
    items
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                BackendError::Input(format!(
                    "input '{name}': element {index} is not valid UTF-8 ({e}); onnxruntime string tensors hold UTF-8 text"
                ))
            })?;
            if text.contains('\0') {
                return Err(BackendError::Input(format!(
                    "input '{name}': element {index} contains a NUL byte, which onnxruntime string tensors cannot hold"
                )));
            }
            Ok(text.to_string())
        })
        .collect()
}

/// Converts one session output to a ferroserve tensor called `name`.
pub(crate) fn output_tensor(
    name: &str,
    kind: OutputKind,
    value: &DynValue,
) -> Result<Tensor, BackendError> {
    let (shape, data) = match kind {
        OutputKind::Tensor => tensor_parts(name, value)?,
        OutputKind::MapRows { key, value: ty } => map_rows(name, key, ty, value)?,
    };
    Tensor::new(name, shape, data).map_err(|e| BackendError::Inference(e.message))
}

fn extraction_failed(name: &str, e: ort::Error) -> BackendError {
    BackendError::Inference(format!("cannot read output '{name}': {e}"))
}

fn tensor_parts(name: &str, value: &DynValue) -> Result<(Vec<usize>, TensorData), BackendError> {
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(BackendError::Inference(format!(
            "output '{name}' is {}, not a tensor",
            value.dtype()
        )));
    };
    fn copy<T: PrimitiveTensorElementType + Clone>(
        name: &str,
        value: &DynValue,
    ) -> Result<(Vec<usize>, Vec<T>), BackendError> {
        let (shape, data) = value
            .try_extract_tensor::<T>()
            .map_err(|e| extraction_failed(name, e))?;
        Ok((dims(name, shape)?, data.to_vec()))
    }
    macro_rules! copy {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = copy::<$t>(name, value)?;
            (shape, TensorData::$variant(data))
        }};
    }
    Ok(match ty {
        TensorElementType::Bool => copy!(bool, Bool),
        TensorElementType::Uint8 => copy!(u8, Uint8),
        TensorElementType::Uint16 => copy!(u16, Uint16),
        TensorElementType::Uint32 => copy!(u32, Uint32),
        TensorElementType::Uint64 => copy!(u64, Uint64),
        TensorElementType::Int8 => copy!(i8, Int8),
        TensorElementType::Int16 => copy!(i16, Int16),
        TensorElementType::Int32 => copy!(i32, Int32),
        TensorElementType::Int64 => copy!(i64, Int64),
        TensorElementType::Float16 => copy!(half::f16, Fp16),
        TensorElementType::Bfloat16 => copy!(half::bf16, Bf16),
        TensorElementType::Float32 => copy!(f32, Fp32),
        TensorElementType::Float64 => copy!(f64, Fp64),
        TensorElementType::String => {
            let (shape, strings) = value
                .try_extract_strings()
                .map_err(|e| extraction_failed(name, e))?;
            let bytes = strings.into_iter().map(String::into_bytes).collect();
            (dims(name, shape)?, TensorData::Bytes(bytes))
        }
        other => {
            return Err(BackendError::Inference(format!(
                "output '{name}' has element type {other}, which ferroserve cannot return"
            )))
        }
    })
}

fn dims(name: &str, shape: &[i64]) -> Result<Vec<usize>, BackendError> {
    shape
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                BackendError::Inference(format!("output '{name}' has a negative dimension {d}"))
            })
        })
        .collect()
}

/// A sequence of maps as an `[rows, keys]` table, columns in ascending key
/// order. Every row must have the same keys.
fn map_rows(
    name: &str,
    key: TensorElementType,
    ty: TensorElementType,
    value: &DynValue,
) -> Result<(Vec<usize>, TensorData), BackendError> {
    let maps = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(|e| extraction_failed(name, e))?;
    macro_rules! rows {
        ($k:ty, $v:ty) => {{
            let mut rows: Vec<Vec<($k, $v)>> = Vec::with_capacity(maps.len());
            for map in &maps {
                let mut pairs = map
                    .try_extract_key_values::<$k, $v>()
                    .map_err(|e| extraction_failed(name, e))?;
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                rows.push(pairs);
            }
            table(name, rows)?
        }};
    }
    Ok(match (key, ty) {
        (TensorElementType::Int64, TensorElementType::Float32) => {
            let (shape, data) = rows!(i64, f32);
            (shape, TensorData::Fp32(data))
        }
        (TensorElementType::String, TensorElementType::Float32) => {
            let (shape, data) = rows!(String, f32);
            (shape, TensorData::Fp32(data))
        }
        (TensorElementType::Int64, TensorElementType::Float64) => {
            let (shape, data) = rows!(i64, f64);
            (shape, TensorData::Fp64(data))
        }
        (TensorElementType::String, TensorElementType::Float64) => {
            let (shape, data) = rows!(String, f64);
            (shape, TensorData::Fp64(data))
        }
        _ => {
            return Err(BackendError::Inference(format!(
                "output '{name}' is a map of {key} to {ty}, which ferroserve cannot return"
            )))
        }
    })
}

/// Flattens rows of sorted `(key, value)` pairs; all rows must share keys.
fn table<K: PartialEq, V: Copy>(
    name: &str,
    rows: Vec<Vec<(K, V)>>,
) -> Result<(Vec<usize>, Vec<V>), BackendError> {
    let columns = rows.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(rows.len() * columns);
    for row in &rows {
        let same_keys = row.len() == columns
            && rows[0]
                .iter()
                .zip(row)
                .all(|((first, _), (key, _))| first == key);
        if !same_keys {
            return Err(BackendError::Inference(format!(
                "output '{name}': the maps of different rows have different keys"
            )));
        }
        data.extend(row.iter().map(|(_, v)| *v));
    }
    Ok((vec![rows.len(), columns], data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_a_table_in_key_order() {
        let rows = vec![vec![(0_i64, 0.1_f32), (1, 0.9)], vec![(0, 0.7), (1, 0.3)]];
        let (shape, data) = table("p", rows).expect("same keys");
        assert_eq!(shape, vec![2, 2]);
        assert_eq!(data, vec![0.1, 0.9, 0.7, 0.3]);
    }

    #[test]
    fn rows_with_different_keys_are_an_error() {
        let rows = vec![vec![(0_i64, 0.1_f32), (1, 0.9)], vec![(0, 0.7), (2, 0.3)]];
        assert!(table("p", rows).is_err());
        let empty: Vec<Vec<(i64, f32)>> = Vec::new();
        assert_eq!(table("p", empty).expect("no rows").0, vec![0, 0]);
    }

    #[test]
    fn strings_must_be_utf8_without_nul() {
        let error = utf8_strings("text", &[b"ok".to_vec(), vec![0xff]]).unwrap_err();
        assert!(
            error.to_string().contains("input 'text': element 1"),
            "{error}"
        );
        assert!(utf8_strings("text", &[b"a\0b".to_vec()]).is_err());
        assert_eq!(
            utf8_strings("text", &[b"cat".to_vec()]).expect("utf-8"),
            vec!["cat".to_string()]
        );
    }
}
