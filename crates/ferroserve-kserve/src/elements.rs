//! Typed decoding of tensor elements from JSON (nested or flat arrays) and
//! from the little-endian binary tensor encoding, with errors that name the
//! input and the element.
//!
//! The binary encoding is also the gRPC protocol's `raw_input_contents` /
//! `raw_output_contents` (the only form FP16 and BF16 take there):
//! [`decode_binary`] and [`encode_binary`] serve both front ends.

use std::fmt;

use ferroserve_core::half::{bf16, f16};
use ferroserve_core::{DataType, InferError, TensorData};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};

/// A scalar type that can be read from a JSON value.
trait JsonElement: Sized {
    const TYPE: DataType;
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    /// Why a number was refused when it is a number of the wrong size
    /// (floats: the finite range), added to the element's error.
    fn range_note() -> Option<&'static str> {
        None
    }
}

impl JsonElement for bool {
    const TYPE: DataType = DataType::Bool;
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
}

impl JsonElement for Vec<u8> {
    const TYPE: DataType = DataType::Bytes;
    fn from_str(v: &str) -> Option<Self> {
        Some(v.as_bytes().to_vec())
    }
}

/// Floats take any JSON number that rounds to a finite value of their
/// type (to nearest, ties to even); a number past the largest finite value
/// is an error rather than an infinity, for every float width alike.
macro_rules! float_element {
    ($t:ty, $dt:ident, $max:literal, |$x:ident| $narrow:expr) => {
        impl JsonElement for $t {
            const TYPE: DataType = DataType::$dt;
            #[allow(clippy::cast_precision_loss)]
            fn from_u64(v: u64) -> Option<Self> {
                <Self as JsonElement>::from_f64(v as f64)
            }
            #[allow(clippy::cast_precision_loss)]
            fn from_i64(v: i64) -> Option<Self> {
                <Self as JsonElement>::from_f64(v as f64)
            }
            #[allow(clippy::cast_possible_truncation)]
            fn from_f64($x: f64) -> Option<Self> {
                let narrowed: $t = $narrow;
                narrowed.is_finite().then_some(narrowed)
            }
            fn range_note() -> Option<&'static str> {
                Some($max)
            }
        }
    };
}
float_element!(f16, Fp16, "finite FP16 values lie within ±65504", |v| {
    f16::from_f64(v)
});
float_element!(
    bf16,
    Bf16,
    "finite BF16 values lie within ±3.3895314e38",
    |v| bf16::from_f64(v)
);
float_element!(
    f32,
    Fp32,
    "finite FP32 values lie within ±3.4028235e38",
    |v| v as f32
);
float_element!(
    f64,
    Fp64,
    "finite FP64 values lie within ±1.7976931348623157e308",
    |v| v
);

macro_rules! int_element {
    ($t:ty, $dt:expr) => {
        impl JsonElement for $t {
            const TYPE: DataType = $dt;
            fn from_u64(v: u64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_i64(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_f64(v: f64) -> Option<Self> {
                // Accept 3.0 for an integer input, refuse 3.5.
                if v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64 {
                    Some(v as $t)
                } else {
                    None
                }
            }
        }
    };
}
int_element!(u8, DataType::Uint8);
int_element!(u16, DataType::Uint16);
int_element!(u32, DataType::Uint32);
int_element!(u64, DataType::Uint64);
int_element!(i8, DataType::Int8);
int_element!(i16, DataType::Int16);
int_element!(i32, DataType::Int32);
int_element!(i64, DataType::Int64);

/// ` (finite FP16 values lie within ±65504)` after a refused number, or
/// nothing.
struct RangeNote(Option<&'static str>);

impl fmt::Display for RangeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(note) => write!(f, " ({note})"),
            None => Ok(()),
        }
    }
}

/// Appends every scalar of an arbitrarily nested JSON array to a vector.
struct Flatten<'v, T> {
    input: &'v str,
    out: &'v mut Vec<T>,
    limit: usize,
}

impl<'de, T: JsonElement> DeserializeSeed<'de> for Flatten<'_, T> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<T: JsonElement> Flatten<'_, T> {
    /// Pushes one element; a refused number of a float type says the
    /// type's finite range, since a number it refuses is one too large.
    fn push<E: de::Error>(
        self,
        value: Option<T>,
        shown: fmt::Arguments<'_>,
        number: bool,
    ) -> Result<(), E> {
        match value {
            Some(v) if self.out.len() < self.limit => {
                self.out.push(v);
                Ok(())
            }
            Some(_) => Err(E::custom(format_args!(
                "input '{}': more elements than the shape allows ({})",
                self.input, self.limit
            ))),
            None => Err(E::custom(format_args!(
                "input '{}': element {}: {shown} is not a valid {}{}",
                self.input,
                self.out.len(),
                T::TYPE,
                RangeNote(T::range_note().filter(|_| number)),
            ))),
        }
    }
}

impl<'de, T: JsonElement> Visitor<'de> for Flatten<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} values", T::TYPE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (input, limit) = (self.input, self.limit);
        while seq
            .next_element_seed(Flatten {
                input,
                out: &mut *self.out,
                limit,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.push(T::from_bool(v), format_args!("{v}"), false)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.push(T::from_u64(v), format_args!("{v}"), true)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.push(T::from_i64(v), format_args!("{v}"), true)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.push(
            T::from_f64(v),
            format_args!("{}", ferroserve_core::json::float_text(v)),
            true,
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.push(T::from_str(v), format_args!("{v:?}"), false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.push(None, format_args!("null"), false)
    }
}

/// Reads `count` elements of `datatype` (flat or nested) from any serde
/// deserializer, so the same code serves a whole `data` fragment and a value
/// met while streaming through the request.
fn decode_elements<'de, D: de::Deserializer<'de>>(
    input: &str,
    datatype: DataType,
    count: usize,
    deserializer: D,
) -> Result<TensorData, D::Error> {
    fn collect<'de, T: JsonElement, D: de::Deserializer<'de>>(
        input: &str,
        count: usize,
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        // `count` comes from a shape the client wrote: reserve no more than
        // a bounded start, and let the vector grow with the elements read.
        let mut out = Vec::with_capacity(count.min(MAX_RESERVED_ELEMENTS));
        Flatten {
            input,
            out: &mut out,
            limit: count,
        }
        .deserialize(deserializer)?;
        Ok(out)
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(collect(input, count, deserializer)?),
        DataType::Uint8 => TensorData::Uint8(collect(input, count, deserializer)?),
        DataType::Uint16 => TensorData::Uint16(collect(input, count, deserializer)?),
        DataType::Uint32 => TensorData::Uint32(collect(input, count, deserializer)?),
        DataType::Uint64 => TensorData::Uint64(collect(input, count, deserializer)?),
        DataType::Int8 => TensorData::Int8(collect(input, count, deserializer)?),
        DataType::Int16 => TensorData::Int16(collect(input, count, deserializer)?),
        DataType::Int32 => TensorData::Int32(collect(input, count, deserializer)?),
        DataType::Int64 => TensorData::Int64(collect(input, count, deserializer)?),
        DataType::Fp16 => TensorData::Fp16(collect(input, count, deserializer)?),
        DataType::Bf16 => TensorData::Bf16(collect(input, count, deserializer)?),
        DataType::Fp32 => TensorData::Fp32(collect(input, count, deserializer)?),
        DataType::Fp64 => TensorData::Fp64(collect(input, count, deserializer)?),
        DataType::Bytes => TensorData::Bytes(collect(input, count, deserializer)?),
    })
}

fn short_count_message(input: &str, count: usize, got: usize) -> String {
    format!("input '{input}': shape needs {count} elements but data has {got}")
}

/// serde_json appends " at line 1 column 17", which points into the `data`
/// fragment rather than the request; keep only the message.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Most elements reserved ahead of reading them (512 KiB of FP64), whatever
/// the shape promises.
const MAX_RESERVED_ELEMENTS: usize = 1 << 16;

/// Refuses a shape whose `count` elements cannot be in `available` bytes
/// of JSON (each element takes at least one byte), before anything is
/// decoded or reserved for it: the error names the input, the shape, the
/// count and the bytes there are.
pub fn check_declared_count(
    input: &str,
    shape: &[usize],
    count: usize,
    available: usize,
) -> Result<(), InferError> {
    if count <= available {
        return Ok(());
    }
    Err(InferError::invalid(format!(
        "input '{input}': shape {shape:?} declares {count} elements but the request holds only {available} bytes of data for them"
    )))
}

/// Decodes a JSON `data` value (flat or nested array, or a single scalar) of
/// `datatype` holding exactly `count` elements.
pub fn decode_json(
    input: &str,
    datatype: DataType,
    json: &str,
    count: usize,
) -> Result<TensorData, InferError> {
    // Every refusal names the input, also serde's own ("invalid type: map").
    let invalid = |e: serde_json::Error| {
        let message = strip_position(&e);
        let prefix = format!("input '{input}': ");
        InferError::invalid(if message.starts_with(&prefix) {
            message
        } else {
            prefix + &message
        })
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let data = decode_elements(input, datatype, count, &mut de).map_err(invalid)?;
    de.end().map_err(invalid)?;
    if data.len() != count {
        return Err(InferError::invalid(short_count_message(
            input,
            count,
            data.len(),
        )));
    }
    Ok(data)
}

/// Decodes the `data` value of input `input` in place while the request is
/// parsed, when its datatype and shape came before it (as clients write them).
pub struct DataSeed<'s> {
    /// Input name, for error messages.
    pub input: &'s str,
    /// Declared element type.
    pub datatype: DataType,
    /// Element count the shape needs.
    pub count: usize,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = TensorData;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<TensorData, D::Error> {
        let data = decode_elements(self.input, self.datatype, self.count, deserializer)?;
        if data.len() != self.count {
            return Err(de::Error::custom(short_count_message(
                self.input,
                self.count,
                data.len(),
            )));
        }
        Ok(data)
    }
}

/// Decodes `count` elements of `datatype` from the binary tensor encoding:
/// little-endian fixed-size elements, or for `BYTES` each element as a
/// 4-byte little-endian length followed by its bytes.
pub fn decode_binary(
    input: &str,
    datatype: DataType,
    bytes: &[u8],
    count: usize,
) -> Result<TensorData, InferError> {
    let wrong_size = |size: usize| {
        InferError::invalid(format!(
            "input '{input}': binary data has {} bytes but shape needs {} ({count} {datatype} elements of {size} bytes)",
            bytes.len(),
            count.saturating_mul(size)
        ))
    };
    macro_rules! fixed {
        ($t:ty, $variant:ident) => {{
            const SIZE: usize = std::mem::size_of::<$t>();
            if Some(bytes.len()) != count.checked_mul(SIZE) {
                return Err(wrong_size(SIZE));
            }
            TensorData::$variant(
                bytes
                    .chunks_exact(SIZE)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk has SIZE bytes")))
                    .collect(),
            )
        }};
    }
    Ok(match datatype {
        DataType::Bool => {
            if bytes.len() != count {
                return Err(wrong_size(1));
            }
            TensorData::Bool(bytes.iter().map(|&b| b != 0).collect())
        }
        DataType::Uint8 => fixed!(u8, Uint8),
        DataType::Uint16 => fixed!(u16, Uint16),
        DataType::Uint32 => fixed!(u32, Uint32),
        DataType::Uint64 => fixed!(u64, Uint64),
        DataType::Int8 => fixed!(i8, Int8),
        DataType::Int16 => fixed!(i16, Int16),
        DataType::Int32 => fixed!(i32, Int32),
        DataType::Int64 => fixed!(i64, Int64),
        DataType::Fp16 => fixed!(f16, Fp16),
        DataType::Bf16 => fixed!(bf16, Bf16),
        DataType::Fp32 => fixed!(f32, Fp32),
        DataType::Fp64 => fixed!(f64, Fp64),
        DataType::Bytes => TensorData::Bytes(decode_binary_strings(input, bytes, count)?),
    })
}

fn decode_binary_strings(
    input: &str,
    mut bytes: &[u8],
    count: usize,
) -> Result<Vec<Vec<u8>>, InferError> {
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    while !bytes.is_empty() {
        let element = out.len();
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| {
            InferError::invalid(format!(
                "input '{input}': element {element}: truncated BYTES length prefix"
            ))
        })?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(InferError::invalid(format!(
                "input '{input}': element {element}: BYTES length {len} exceeds the {} bytes left",
                rest.len()
            )));
        }
        out.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    if out.len() != count {
        return Err(InferError::invalid(format!(
            "input '{input}': binary data holds {} BYTES elements but shape needs {count}",
            out.len()
        )));
    }
    Ok(out)
}

/// Appends the binary tensor encoding of `data` to `out`; a `BYTES`
/// element longer than its 4-byte length prefix can say is an error.
pub fn encode_binary(data: &TensorData, out: &mut Vec<u8>) -> Result<(), InferError> {
    macro_rules! le {
        ($v:expr) => {{
            out.reserve(std::mem::size_of_val($v.as_slice()));
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }};
    }
    match data {
        TensorData::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        TensorData::Uint8(v) => out.extend_from_slice(v),
        TensorData::Uint16(v) => le!(v),
        TensorData::Uint32(v) => le!(v),
        TensorData::Uint64(v) => le!(v),
        TensorData::Int8(v) => le!(v),
        TensorData::Int16(v) => le!(v),
        TensorData::Int32(v) => le!(v),
        TensorData::Int64(v) => le!(v),
        TensorData::Fp16(v) => le!(v),
        TensorData::Bf16(v) => le!(v),
        TensorData::Fp32(v) => le!(v),
        TensorData::Fp64(v) => le!(v),
        TensorData::Bytes(v) => {
            for (element, s) in v.iter().enumerate() {
                out.extend_from_slice(&bytes_length_prefix(element, s.len())?);
                out.extend_from_slice(s);
            }
        }
    }
    Ok(())
}

/// The 4-byte little-endian length prefix of `BYTES` element `element`.
fn bytes_length_prefix(element: usize, len: usize) -> Result<[u8; 4], InferError> {
    u32::try_from(len).map(u32::to_le_bytes).map_err(|_| {
        InferError::internal(format!(
            "BYTES element {element} has {len} bytes, more than a binary length prefix can hold ({})",
            u32::MAX
        ))
    })
}

#[cfg(test)]
mod tests;
