//! Reading one feature value out of a tensor, as the monitor and the batch
//! jobs' outputs see it.

use crate::TensorData;

/// One feature value of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Missing (NaN in a float tensor).
    Null,
    /// A number (integers and booleans too).
    Number(f64),
    /// A string (BYTES tensors).
    Text(&'a [u8]),
}

/// Element `index` of `data` as a feature value.
pub fn value_at(data: &TensorData, index: usize) -> Value<'_> {
    let number = |v: f64| {
        if v.is_nan() {
            Value::Null
        } else {
            Value::Number(v)
        }
    };
    match data {
        TensorData::Bool(v) => Value::Number(f64::from(u8::from(v[index]))),
        TensorData::Uint8(v) => Value::Number(v[index].into()),
        TensorData::Uint16(v) => Value::Number(v[index].into()),
        TensorData::Uint32(v) => Value::Number(v[index].into()),
        TensorData::Uint64(v) => Value::Number(v[index] as f64),
        TensorData::Int8(v) => Value::Number(v[index].into()),
        TensorData::Int16(v) => Value::Number(v[index].into()),
        TensorData::Int32(v) => Value::Number(v[index].into()),
        TensorData::Int64(v) => Value::Number(v[index] as f64),
        TensorData::Fp32(v) => number(widen(v[index])),
        TensorData::Fp64(v) => number(v[index]),
        TensorData::Bytes(v) => Value::Text(&v[index]),
    }
}

/// An FP32 value as the decimal it was most likely written as (its
/// shortest round-trip form, `1.3` rather than `1.2999999523`), so that
/// values sent as FP32 compare with a profile built from the same decimals
/// in double precision: a value on a bin edge stays on it.
fn widen(value: f32) -> f64 {
    if !value.is_finite() {
        return value.into();
    }
    value.to_string().parse().unwrap_or(value.into())
}
