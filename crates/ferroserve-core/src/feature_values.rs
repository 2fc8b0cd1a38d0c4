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

/// Element `index` of `data` as a feature value; `Null` past the end (a
/// tensor whose shape and data disagree is missing the value, and reading
/// it must never panic).
pub fn value_at(data: &TensorData, index: usize) -> Value<'_> {
    let number = |v: f64| {
        if v.is_nan() {
            Value::Null
        } else {
            Value::Number(v)
        }
    };
    let value = match data {
        TensorData::Bool(v) => v.get(index).map(|b| Value::Number(f64::from(u8::from(*b)))),
        TensorData::Uint8(v) => v.get(index).map(|x| Value::Number((*x).into())),
        TensorData::Uint16(v) => v.get(index).map(|x| Value::Number((*x).into())),
        TensorData::Uint32(v) => v.get(index).map(|x| Value::Number((*x).into())),
        TensorData::Uint64(v) => v.get(index).map(|x| Value::Number(*x as f64)),
        TensorData::Int8(v) => v.get(index).map(|x| Value::Number((*x).into())),
        TensorData::Int16(v) => v.get(index).map(|x| Value::Number((*x).into())),
        TensorData::Int32(v) => v.get(index).map(|x| Value::Number((*x).into())),
        TensorData::Int64(v) => v.get(index).map(|x| Value::Number(*x as f64)),
        TensorData::Fp16(v) => v.get(index).map(|x| number(widen(x.to_f32()))),
        TensorData::Bf16(v) => v.get(index).map(|x| number(widen(x.to_f32()))),
        TensorData::Fp32(v) => v.get(index).map(|x| number(widen(*x))),
        TensorData::Fp64(v) => v.get(index).map(|x| number(*x)),
        TensorData::Bytes(v) => v.get(index).map(|x| Value::Text(x)),
    };
    value.unwrap_or(Value::Null)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_past_the_end_is_missing_not_a_panic() {
        assert_eq!(value_at(&TensorData::Int64(vec![7]), 0), Value::Number(7.0));
        assert_eq!(value_at(&TensorData::Int64(vec![7]), 1), Value::Null);
        assert_eq!(value_at(&TensorData::Fp32(Vec::new()), 0), Value::Null);
        assert_eq!(value_at(&TensorData::Bytes(Vec::new()), 3), Value::Null);
    }

    #[test]
    fn half_values_are_numbers_and_nan_is_missing() {
        use half::{bf16, f16};
        let fp16 = TensorData::Fp16(vec![f16::from_f32(1.5), f16::NAN]);
        assert_eq!(value_at(&fp16, 0), Value::Number(1.5));
        assert_eq!(value_at(&fp16, 1), Value::Null);
        let bf16 = TensorData::Bf16(vec![bf16::from_f32(-2.0), bf16::NAN]);
        assert_eq!(value_at(&bf16, 0), Value::Number(-2.0));
        assert_eq!(value_at(&bf16, 1), Value::Null);
    }
}
