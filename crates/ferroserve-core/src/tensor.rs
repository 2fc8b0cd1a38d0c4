//! Named, shaped tensors with typed storage, and the row operations the
//! batcher needs (concatenate along the batch dimension, split it again).

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

use crate::{DataType, InferError};

/// Typed, flat (row-major) element storage of a tensor. Serde forms exist
/// for compact stores (the shared result cache), not for the wire protocols.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TensorData {
    /// `BOOL` elements.
    Bool(Vec<bool>),
    /// `UINT8` elements.
    Uint8(Vec<u8>),
    /// `UINT16` elements.
    Uint16(Vec<u16>),
    /// `UINT32` elements.
    Uint32(Vec<u32>),
    /// `UINT64` elements.
    Uint64(Vec<u64>),
    /// `INT8` elements.
    Int8(Vec<i8>),
    /// `INT16` elements.
    Int16(Vec<i16>),
    /// `INT32` elements.
    Int32(Vec<i32>),
    /// `INT64` elements.
    Int64(Vec<i64>),
    /// `FP32` elements.
    Fp32(Vec<f32>),
    /// `FP64` elements.
    Fp64(Vec<f64>),
    /// `BYTES` elements (each a byte string).
    Bytes(Vec<Vec<u8>>),
    // The half types come last so that the serde forms of the older
    // variants (their variant indices in the shared cache) do not move.
    /// `FP16` elements (stored by their bits in serde forms).
    Fp16(#[serde(with = "crate::half_bits::f16_vec")] Vec<f16>),
    /// `BF16` elements (stored by their bits in serde forms).
    Bf16(#[serde(with = "crate::half_bits::bf16_vec")] Vec<bf16>),
}

/// Applies `$body` to the vector inside any [`TensorData`] variant, rebuilding
/// the same variant when `$wrap` is given.
macro_rules! each_variant {
    ($value:expr, $v:ident => $body:expr) => {
        match $value {
            TensorData::Bool($v) => $body,
            TensorData::Uint8($v) => $body,
            TensorData::Uint16($v) => $body,
            TensorData::Uint32($v) => $body,
            TensorData::Uint64($v) => $body,
            TensorData::Int8($v) => $body,
            TensorData::Int16($v) => $body,
            TensorData::Int32($v) => $body,
            TensorData::Int64($v) => $body,
            TensorData::Fp16($v) => $body,
            TensorData::Bf16($v) => $body,
            TensorData::Fp32($v) => $body,
            TensorData::Fp64($v) => $body,
            TensorData::Bytes($v) => $body,
        }
    };
    ($value:expr, $v:ident => wrap $body:expr) => {
        match $value {
            TensorData::Bool($v) => TensorData::Bool($body),
            TensorData::Uint8($v) => TensorData::Uint8($body),
            TensorData::Uint16($v) => TensorData::Uint16($body),
            TensorData::Uint32($v) => TensorData::Uint32($body),
            TensorData::Uint64($v) => TensorData::Uint64($body),
            TensorData::Int8($v) => TensorData::Int8($body),
            TensorData::Int16($v) => TensorData::Int16($body),
            TensorData::Int32($v) => TensorData::Int32($body),
            TensorData::Int64($v) => TensorData::Int64($body),
            TensorData::Fp16($v) => TensorData::Fp16($body),
            TensorData::Bf16($v) => TensorData::Bf16($body),
            TensorData::Fp32($v) => TensorData::Fp32($body),
            TensorData::Fp64($v) => TensorData::Fp64($body),
            TensorData::Bytes($v) => TensorData::Bytes($body),
        }
    };
}

impl TensorData {
    /// The element type.
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp16(_) => DataType::Fp16,
            TensorData::Bf16(_) => DataType::Bf16,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    /// An empty storage of `datatype` with room for `capacity` elements.
    pub fn with_capacity(datatype: DataType, capacity: usize) -> TensorData {
        match datatype {
            DataType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DataType::Uint8 => TensorData::Uint8(Vec::with_capacity(capacity)),
            DataType::Uint16 => TensorData::Uint16(Vec::with_capacity(capacity)),
            DataType::Uint32 => TensorData::Uint32(Vec::with_capacity(capacity)),
            DataType::Uint64 => TensorData::Uint64(Vec::with_capacity(capacity)),
            DataType::Int8 => TensorData::Int8(Vec::with_capacity(capacity)),
            DataType::Int16 => TensorData::Int16(Vec::with_capacity(capacity)),
            DataType::Int32 => TensorData::Int32(Vec::with_capacity(capacity)),
            DataType::Int64 => TensorData::Int64(Vec::with_capacity(capacity)),
            DataType::Fp16 => TensorData::Fp16(Vec::with_capacity(capacity)),
            DataType::Bf16 => TensorData::Bf16(Vec::with_capacity(capacity)),
            DataType::Fp32 => TensorData::Fp32(Vec::with_capacity(capacity)),
            DataType::Fp64 => TensorData::Fp64(Vec::with_capacity(capacity)),
            DataType::Bytes => TensorData::Bytes(Vec::with_capacity(capacity)),
        }
    }

    /// An empty storage of `datatype` with room for `capacity` elements,
    /// or an error when that much memory cannot be had: never a panic or
    /// an abort, whatever `capacity` is.
    pub fn try_with_capacity(
        datatype: DataType,
        capacity: usize,
    ) -> Result<TensorData, InferError> {
        let mut data = TensorData::with_capacity(datatype, 0);
        each_variant!(&mut data, v => v.try_reserve_exact(capacity)).map_err(|e| {
            InferError::invalid(format!("cannot hold {capacity} {datatype} elements: {e}"))
        })?;
        Ok(data)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        each_variant!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the elements of `other`, which must have the same type.
    pub fn extend_from(&mut self, other: &TensorData) -> Result<(), InferError> {
        macro_rules! ext {
            ($($variant:ident),*) => {
                match (&mut *self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => a.extend_from_slice(b),)*
                    (a, b) => {
                        return Err(InferError::invalid(format!(
                            "cannot join a {} tensor with a {} tensor",
                            a.datatype(),
                            b.datatype()
                        )))
                    }
                }
            };
        }
        ext!(
            Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Fp16, Bf16, Fp32, Fp64,
            Bytes
        );
        Ok(())
    }

    /// A copy of the elements `start..end`.
    ///
    /// # Panics
    /// When the range is out of bounds; callers slice by validated shapes.
    pub fn slice(&self, start: usize, end: usize) -> TensorData {
        each_variant!(self, v => wrap v[start..end].to_vec())
    }

    /// Total size of the elements in bytes (string lengths for `BYTES`).
    pub fn byte_size(&self) -> usize {
        match self {
            TensorData::Bytes(v) => v.iter().map(Vec::len).sum(),
            other => other.len() * other.datatype().element_size().unwrap_or(1),
        }
    }
}

/// A named tensor: shape plus row-major data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Input or output name, as in the model signature.
    pub name: String,
    /// Dimensions; the product equals the element count.
    pub shape: Vec<usize>,
    /// Elements.
    pub data: TensorData,
}

impl Tensor {
    /// Builds a tensor after checking that `shape` accounts for every element.
    pub fn new(
        name: impl Into<String>,
        shape: Vec<usize>,
        data: TensorData,
    ) -> Result<Tensor, InferError> {
        let name = name.into();
        let expected = element_count(&shape).ok_or_else(|| {
            InferError::invalid(format!("tensor '{name}': shape {shape:?} is too large"))
        })?;
        if expected != data.len() {
            return Err(InferError::invalid(format!(
                "tensor '{name}': shape {shape:?} needs {expected} elements but {} were given",
                data.len()
            )));
        }
        Ok(Tensor { name, shape, data })
    }

    /// Element type.
    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }

    /// Size of the first (batch) dimension; 1 for a scalar.
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row (product of all but the first dimension). Saturates
    /// at `usize::MAX` for a shape [`Tensor::new`] refuses; code that sizes
    /// or indexes storage by it uses [`Tensor::checked_row_len`].
    pub fn row_len(&self) -> usize {
        element_count(self.shape.get(1..).unwrap_or_default()).unwrap_or(usize::MAX)
    }

    /// Elements per row, or an error naming the tensor when the product
    /// of the dimensions after the first overflows.
    pub fn checked_row_len(&self) -> Result<usize, InferError> {
        element_count(self.shape.get(1..).unwrap_or_default()).ok_or_else(|| self.too_large())
    }

    fn too_large(&self) -> InferError {
        InferError::invalid(format!(
            "tensor '{}': shape {:?} is too large",
            self.name, self.shape
        ))
    }

    /// Joins tensors along the first dimension. All parts must share name,
    /// type and the dimensions after the first.
    pub fn concat_rows(parts: &[&Tensor]) -> Result<Tensor, InferError> {
        let first = parts
            .first()
            .ok_or_else(|| InferError::internal("concat_rows called with no tensors"))?;
        let rows = parts
            .iter()
            .try_fold(0usize, |sum, t| sum.checked_add(t.rows()))
            .ok_or_else(|| first.too_large())?;
        let capacity = rows
            .checked_mul(first.checked_row_len()?)
            .ok_or_else(|| first.too_large())?;
        // The parts hold the elements already, so this never reserves more
        // than they do unless their shapes lie; then cap what is reserved.
        let held: usize = parts.iter().map(|t| t.data.len()).sum();
        let mut data = TensorData::with_capacity(first.datatype(), capacity.min(held));
        for part in parts {
            if part.shape.get(1..) != first.shape.get(1..) {
                return Err(InferError::invalid(format!(
                    "input '{}': shape {:?} cannot be batched with shape {:?}",
                    first.name, part.shape, first.shape
                )));
            }
            data.extend_from(&part.data)?;
        }
        let mut shape = first.shape.clone();
        if let Some(d) = shape.first_mut() {
            *d = rows;
        }
        Tensor::new(first.name.clone(), shape, data)
    }

    /// This tensor's rows repeated `times` times along the first
    /// dimension; a size that overflows is an error, not an allocation.
    pub fn repeat_rows(&self, times: usize) -> Result<Tensor, InferError> {
        let rows = self
            .rows()
            .checked_mul(times)
            .filter(|_| !self.shape.is_empty())
            .ok_or_else(|| self.too_large())?;
        let capacity = self
            .data
            .len()
            .checked_mul(times)
            .ok_or_else(|| self.too_large())?;
        let mut data = TensorData::try_with_capacity(self.datatype(), capacity).map_err(|e| {
            InferError::new(e.kind, format!("tensor '{}': {}", self.name, e.message))
        })?;
        for _ in 0..times {
            data.extend_from(&self.data)?;
        }
        let mut shape = self.shape.clone();
        shape[0] = rows;
        Tensor::new(self.name.clone(), shape, data)
    }

    /// Rows `start..end` of this tensor as a new tensor.
    pub fn slice_rows(&self, start: usize, end: usize) -> Result<Tensor, InferError> {
        if start > end || end > self.rows() || self.shape.is_empty() {
            return Err(InferError::internal(format!(
                "tensor '{}': rows {start}..{end} out of range for shape {:?}",
                self.name, self.shape
            )));
        }
        let row_len = self.checked_row_len()?;
        let (Some(from), Some(to)) = (start.checked_mul(row_len), end.checked_mul(row_len)) else {
            return Err(self.too_large());
        };
        if to > self.data.len() {
            return Err(InferError::internal(format!(
                "tensor '{}': shape {:?} needs more than its {} elements",
                self.name,
                self.shape,
                self.data.len()
            )));
        }
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Ok(Tensor {
            name: self.name.clone(),
            shape,
            data: self.data.slice(from, to),
        })
    }
}

/// Product of the dimensions, or `None` on overflow. A row's length (the
/// product of the dimensions after the first) must fit too: `[0, 2^33, 2^33]`
/// counts no elements, but its rows would overflow every later product, so
/// no part of the server can be handed such a shape.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    let product = |dims: &[usize]| dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    product(shape.get(1..).unwrap_or_default())?;
    product(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor::new("x", shape, TensorData::Fp32(data)).expect("valid tensor")
    }

    #[test]
    fn a_shape_whose_rows_overflow_counts_nothing_even_with_no_elements() {
        assert_eq!(element_count(&[0, 2, 2, usize::MAX / 3]), None);
        assert_eq!(element_count(&[0, 1 << 33, 1 << 33]), None);
        assert_eq!(element_count(&[usize::MAX / 3, 0]), Some(0));
        assert_eq!(element_count(&[]), Some(1));
        let err = Tensor::new("x", vec![0, 2, 2, usize::MAX / 3], TensorData::Fp32(vec![]));
        assert!(err.unwrap_err().message.contains("is too large"));
    }

    #[test]
    fn shape_must_match_element_count() {
        let err = Tensor::new("x", vec![2, 3], TensorData::Fp32(vec![0.0; 5])).unwrap_err();
        assert!(err.message.contains("needs 6 elements but 5"), "{err}");
    }

    #[test]
    fn overflowing_shape_is_rejected() {
        let err = Tensor::new("x", vec![usize::MAX, 2], TensorData::Fp32(vec![])).unwrap_err();
        assert!(err.message.contains("too large"));
    }

    #[test]
    fn a_zero_row_shape_whose_rows_overflow_is_rejected() {
        let huge = 1usize << 33;
        let err = Tensor::new("x", vec![0, huge, huge], TensorData::Fp32(vec![])).unwrap_err();
        assert!(err.message.contains("too large"), "{err}");
        let built = Tensor {
            name: "x".into(),
            shape: vec![0, huge, huge],
            data: TensorData::Fp32(vec![]),
        };
        assert_eq!(built.row_len(), usize::MAX);
        assert!(built.checked_row_len().is_err());
        assert!(built.slice_rows(0, 0).is_err());
        assert!(Tensor::concat_rows(&[&built, &built]).is_err());
    }

    #[test]
    fn rows_repeat_with_checked_sizes() {
        let one = f32_tensor(vec![1, 2], vec![1.0, 2.0]);
        let three = one.repeat_rows(3).expect("small");
        assert_eq!(three.shape, vec![3, 2]);
        assert_eq!(
            three.data,
            TensorData::Fp32(vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
        );
        let err = one.repeat_rows(usize::MAX).unwrap_err();
        assert!(err.message.contains("too large"), "{err}");
        let one_value = f32_tensor(vec![1], vec![1.0]);
        let err = one_value.repeat_rows(usize::MAX).unwrap_err();
        assert!(err.message.starts_with("tensor 'x': cannot hold"), "{err}");
        let scalar = f32_tensor(vec![], vec![1.0]);
        assert!(
            scalar.repeat_rows(2).is_err(),
            "a scalar has no rows to repeat"
        );
    }

    #[test]
    fn concat_then_slice_round_trips() {
        let a = f32_tensor(vec![1, 2], vec![1.0, 2.0]);
        let b = f32_tensor(vec![2, 2], vec![3.0, 4.0, 5.0, 6.0]);
        let joined = Tensor::concat_rows(&[&a, &b]).expect("same shapes");
        assert_eq!(joined.shape, vec![3, 2]);
        assert_eq!(joined.slice_rows(0, 1).expect("in range"), a);
        assert_eq!(joined.slice_rows(1, 3).expect("in range"), b);
    }

    #[test]
    fn half_precision_rows_join_and_split_like_any_other() {
        let halves = |v: &[f32]| TensorData::Fp16(v.iter().map(|&x| f16::from_f32(x)).collect());
        let a = Tensor::new("h", vec![1, 2], halves(&[1.0, 2.0])).expect("valid");
        let b = Tensor::new("h", vec![1, 2], halves(&[-0.5, 65504.0])).expect("valid");
        let joined = Tensor::concat_rows(&[&a, &b]).expect("same shapes");
        assert_eq!(joined.data, halves(&[1.0, 2.0, -0.5, 65504.0]));
        assert_eq!(joined.slice_rows(1, 2).expect("row 1"), b);
        assert_eq!(joined.data.byte_size(), 8);
        let brain =
            Tensor::new("h", vec![1, 2], TensorData::Bf16(vec![bf16::ONE; 2])).expect("valid");
        let err = Tensor::concat_rows(&[&a, &brain]).unwrap_err();
        assert_eq!(err.message, "cannot join a FP16 tensor with a BF16 tensor");
        assert_eq!(brain.repeat_rows(2).expect("small").data.len(), 4);
    }

    #[test]
    fn concat_rejects_mixed_shapes_and_types() {
        let a = f32_tensor(vec![1, 2], vec![1.0, 2.0]);
        let b = f32_tensor(vec![1, 3], vec![1.0, 2.0, 3.0]);
        assert!(Tensor::concat_rows(&[&a, &b]).is_err());
        let c = Tensor::new("x", vec![1, 2], TensorData::Int64(vec![1, 2])).expect("valid");
        assert!(Tensor::concat_rows(&[&a, &c]).is_err());
    }

    #[test]
    fn slice_out_of_range_is_an_error() {
        let a = f32_tensor(vec![1, 2], vec![1.0, 2.0]);
        assert!(a.slice_rows(0, 2).is_err());
    }

    /// Shapes with small dimensions, and now and then a huge one.
    fn shape() -> impl proptest::strategy::Strategy<Value = Vec<usize>> {
        use proptest::prelude::*;
        proptest::collection::vec(prop_oneof![8 => 0usize..5, 1 => Just(usize::MAX / 3)], 0..5)
    }

    proptest::proptest! {
        #[test]
        fn a_shape_is_accepted_exactly_when_it_counts_the_elements(
            shape in shape(),
            len in 0usize..40,
        ) {
            let made = Tensor::new("x", shape.clone(), TensorData::Fp32(vec![0.5; len]));
            match element_count(&shape) {
                Some(count) if count == len => proptest::prop_assert!(made.is_ok()),
                _ => {
                    let err = made.expect_err("a shape that does not count the elements");
                    proptest::prop_assert_eq!(err.kind, crate::ErrorKind::InvalidInput);
                    proptest::prop_assert!(err.message.starts_with("tensor 'x': shape"), "{}", err);
                }
            }
        }

        #[test]
        fn any_row_range_slices_or_is_refused_and_slices_join_back(
            rows in 0usize..6,
            width in 0usize..4,
            start in 0usize..8,
            end in 0usize..8,
        ) {
            let data: Vec<f32> = (0..rows * width).map(|i| i as f32).collect();
            let tensor = f32_tensor(vec![rows, width], data);
            match tensor.slice_rows(start, end) {
                Ok(slice) => {
                    proptest::prop_assert!(start <= end && end <= rows);
                    proptest::prop_assert_eq!(slice.shape.clone(), vec![end - start, width]);
                    let head = tensor.slice_rows(0, start).expect("rows before");
                    let tail = tensor.slice_rows(end, rows).expect("rows after");
                    let joined = Tensor::concat_rows(&[&head, &slice, &tail]).expect("same widths");
                    proptest::prop_assert_eq!(joined, tensor);
                }
                Err(_) => proptest::prop_assert!(start > end || end > rows),
            }
        }
    }
}
