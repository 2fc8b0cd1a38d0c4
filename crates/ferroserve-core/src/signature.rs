//! Model signatures: the names, types and shapes of a model's inputs and
//! outputs, and the checks a request must pass against them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DataType, InferError, Tensor};

/// One dimension of a declared tensor shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// Any size (`-1` in KServe metadata; a symbolic dimension in ONNX).
    Dynamic,
}

impl Dim {
    /// KServe metadata form: the size, or `-1` when dynamic.
    pub fn as_i64(self) -> i64 {
        match self {
            Dim::Fixed(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Dim::Dynamic => -1,
        }
    }

    /// Reads the KServe metadata form (negative means dynamic).
    pub fn from_i64(value: i64) -> Dim {
        usize::try_from(value).map_or(Dim::Dynamic, Dim::Fixed)
    }

    /// Whether `size` fits this dimension.
    pub fn accepts(self, size: usize) -> bool {
        match self {
            Dim::Fixed(n) => n == size,
            Dim::Dynamic => true,
        }
    }
}

impl Serialize for Dim {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Dim::from_i64)
    }
}

/// Declared input or output of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub datatype: DataType,
    /// Declared shape; the first dimension is the batch dimension when dynamic.
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// Builds a spec.
    pub fn new(name: impl Into<String>, datatype: DataType, shape: Vec<Dim>) -> Self {
        TensorSpec {
            name: name.into(),
            datatype,
            shape,
        }
    }

    /// Whether the first dimension is dynamic, so rows of several requests
    /// can be stacked.
    pub fn has_dynamic_batch(&self) -> bool {
        matches!(self.shape.first(), Some(Dim::Dynamic))
    }

    /// Checks that `tensor` has this spec's type and a shape it accepts.
    pub fn check(&self, tensor: &Tensor) -> Result<(), InferError> {
        if tensor.datatype() != self.datatype {
            return Err(InferError::invalid(format!(
                "input '{}': expected datatype {} but got {}",
                self.name,
                self.datatype,
                tensor.datatype()
            )));
        }
        let fits = tensor.shape.len() == self.shape.len()
            && self
                .shape
                .iter()
                .zip(&tensor.shape)
                .all(|(dim, &size)| dim.accepts(size));
        if !fits {
            return Err(InferError::invalid(format!(
                "input '{}': expected shape {} but got {:?}",
                self.name,
                format_shape(&self.shape),
                tensor.shape
            )));
        }
        Ok(())
    }
}

impl TensorSpec {
    /// The shape of one sample: the declared dimensions with dynamic ones
    /// set to 1.
    pub fn sample_shape(&self) -> Vec<usize> {
        self.shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Dynamic => 1,
            })
            .collect()
    }

    /// Bytes the smallest call of this input carries in binary form (a
    /// `BYTES` element at least its 4-byte length prefix), or `None` when
    /// the count overflows.
    pub fn sample_bytes(&self) -> Option<usize> {
        let count = crate::tensor::element_count(&self.sample_shape())?;
        count.checked_mul(self.datatype.element_size().unwrap_or(4))
    }
}

/// Formats a declared shape as KServe does, `[-1, 4]`.
pub fn format_shape(shape: &[Dim]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.as_i64().to_string()).collect();
    format!("[{}]", dims.join(", "))
}

impl fmt::Display for TensorSpec {
    /// `input FP32 [-1, 4]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.name,
            self.datatype,
            format_shape(&self.shape)
        )
    }
}

/// Inputs and outputs of a model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelSignature {
    /// Declared inputs, in the order the engine expects them.
    pub inputs: Vec<TensorSpec>,
    /// Declared outputs, in the order the engine produces them.
    pub outputs: Vec<TensorSpec>,
}

impl fmt::Display for ModelSignature {
    /// `inputs: input FP32 [-1, 4]; outputs: label INT64 [-1]`, as logs show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |specs: &[TensorSpec]| {
            specs
                .iter()
                .map(TensorSpec::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "inputs: {}; outputs: {}",
            list(&self.inputs),
            list(&self.outputs)
        )
    }
}

impl ModelSignature {
    /// Whether requests can be stacked along the first dimension: every input
    /// and output has a dynamic first dimension.
    pub fn supports_batching(&self) -> bool {
        !self.inputs.is_empty()
            && self.inputs.iter().all(TensorSpec::has_dynamic_batch)
            && self.outputs.iter().all(TensorSpec::has_dynamic_batch)
    }

    /// The declared input called `name`.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|s| s.name == name)
    }

    /// The declared output called `name`.
    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|s| s.name == name)
    }

    /// Checks request tensors against the declared inputs and returns them in
    /// declaration order. Every input must be given exactly once, with the
    /// declared type and a fitting shape; when batching, all inputs must agree
    /// on the number of rows.
    pub fn validate_inputs(&self, mut given: Vec<Tensor>) -> Result<Vec<Tensor>, InferError> {
        self.check_inputs(&given)?;
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            if let Some(index) = given.iter().position(|t| t.name == spec.name) {
                ordered.push(given.swap_remove(index));
            }
        }
        Ok(ordered)
    }

    /// The checks of [`ModelSignature::validate_inputs`] on borrowed
    /// tensors, for paths that answer without running the model.
    pub fn check_inputs(&self, given: &[Tensor]) -> Result<(), InferError> {
        for tensor in given {
            if self.input(&tensor.name).is_none() {
                return Err(InferError::invalid(format!(
                    "unexpected input '{}'; the model's inputs are {}",
                    tensor.name,
                    self.input_names()
                )));
            }
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let mut named = given.iter().filter(|t| t.name == spec.name);
            let tensor = named.next().ok_or_else(|| {
                InferError::invalid(format!(
                    "missing input '{}' ({} {})",
                    spec.name,
                    spec.datatype,
                    format_shape(&spec.shape)
                ))
            })?;
            if named.next().is_some() {
                return Err(InferError::invalid(format!(
                    "input '{}' is given more than once",
                    spec.name
                )));
            }
            spec.check(tensor)?;
            ordered.push(tensor);
        }
        if self.supports_batching() {
            let rows = ordered[0].rows();
            if let Some(odd) = ordered.iter().find(|t| t.rows() != rows) {
                return Err(InferError::invalid(format!(
                    "input '{}' has {} rows but input '{}' has {rows}; all inputs need the same batch size",
                    odd.name,
                    odd.rows(),
                    ordered[0].name
                )));
            }
        }
        Ok(())
    }

    /// Checks that every requested output name exists and is asked for
    /// once, so a request never names more outputs than the model has.
    pub fn validate_output_names<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<(), InferError> {
        let mut seen: Vec<&str> = Vec::new();
        for name in names {
            if self.output(name).is_none() {
                return Err(InferError::invalid(format!(
                    "unknown output '{name}'; the model's outputs are {}",
                    self.output_names()
                )));
            }
            if seen.contains(&name) {
                return Err(InferError::invalid(format!(
                    "output '{name}' is requested more than once"
                )));
            }
            seen.push(name);
        }
        Ok(())
    }

    /// Refuses a signature whose smallest call (one row, dynamic
    /// dimensions 1) needs more than `max_bytes` of input: no request
    /// body could carry it, and warming it up would allocate it.
    pub fn check_sample_fits(&self, max_bytes: usize) -> Result<(), InferError> {
        for spec in &self.inputs {
            let needs = spec.sample_bytes();
            if needs.is_none_or(|bytes| bytes > max_bytes) {
                let needs = needs.map_or_else(
                    || "more bytes than memory holds".into(),
                    |b| format!("{b} bytes"),
                );
                return Err(InferError::invalid(format!(
                    "input '{}' ({} {}) needs {needs} for a single row, more than the {max_bytes}-byte limit on a request body, so the model could never be called",
                    spec.name,
                    spec.datatype,
                    format_shape(&spec.shape)
                )));
            }
        }
        Ok(())
    }

    fn input_names(&self) -> String {
        quoted_names(&self.inputs)
    }

    fn output_names(&self) -> String {
        quoted_names(&self.outputs)
    }
}

fn quoted_names(specs: &[TensorSpec]) -> String {
    let names: Vec<String> = specs.iter().map(|s| format!("'{}'", s.name)).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorData;

    fn iris() -> ModelSignature {
        ModelSignature {
            inputs: vec![TensorSpec::new(
                "input",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(4)],
            )],
            outputs: vec![TensorSpec::new(
                "label",
                DataType::Int64,
                vec![Dim::Dynamic],
            )],
        }
    }

    #[test]
    fn signatures_display_as_names_types_and_shapes() {
        let text = iris().to_string();
        assert!(
            text.starts_with("inputs: input FP32 [-1, 4]; outputs: "),
            "{text}"
        );
        assert!(!text.contains("TensorSpec"), "{text}");
    }

    fn input(shape: Vec<usize>) -> Tensor {
        let n = crate::tensor::element_count(&shape).expect("a small shape");
        Tensor::new("input", shape, TensorData::Fp32(vec![0.0; n])).expect("valid")
    }

    #[test]
    fn accepts_matching_inputs() {
        let out = iris()
            .validate_inputs(vec![input(vec![3, 4])])
            .expect("valid");
        assert_eq!(out[0].shape, vec![3, 4]);
        assert!(iris().supports_batching());
    }

    #[test]
    fn reports_wrong_shape_with_expected_and_got() {
        let err = iris().validate_inputs(vec![input(vec![3, 5])]).unwrap_err();
        assert_eq!(
            err.message,
            "input 'input': expected shape [-1, 4] but got [3, 5]"
        );
    }

    #[test]
    fn reports_wrong_type_missing_and_unknown_inputs() {
        let wrong = Tensor::new("input", vec![1, 4], TensorData::Fp64(vec![0.0; 4])).expect("ok");
        let err = iris().validate_inputs(vec![wrong]).unwrap_err();
        assert!(err.message.contains("expected datatype FP32 but got FP64"));
        let err = iris().validate_inputs(vec![]).unwrap_err();
        assert!(err.message.contains("missing input 'input'"));
        let other = Tensor::new("x", vec![1], TensorData::Fp32(vec![0.0])).expect("ok");
        let err = iris()
            .validate_inputs(vec![input(vec![1, 4]), other])
            .unwrap_err();
        assert!(err.message.contains("unexpected input 'x'"));
        let err = iris()
            .validate_inputs(vec![input(vec![1, 4]), input(vec![1, 4])])
            .unwrap_err();
        assert!(err.message.contains("more than once"));
    }

    #[test]
    fn unknown_output_is_reported() {
        let err = iris()
            .validate_output_names(["probs"].into_iter())
            .unwrap_err();
        assert!(err.message.contains("unknown output 'probs'"));
        iris()
            .validate_output_names(["label"].into_iter())
            .expect("known");
    }

    #[test]
    fn a_row_no_body_can_carry_is_refused() {
        let huge = ModelSignature {
            inputs: vec![TensorSpec::new(
                "x",
                DataType::Fp32,
                vec![Dim::Fixed(1), Dim::Fixed(1 << 46)],
            )],
            outputs: vec![],
        };
        let err = huge.check_sample_fits(64 << 20).unwrap_err();
        assert!(
            err.message.starts_with(
                "input 'x' (FP32 [1, 70368744177664]) needs 281474976710656 bytes for a single row"
            ),
            "{err}"
        );
        let overflowing = ModelSignature {
            inputs: vec![TensorSpec::new(
                "x",
                DataType::Fp64,
                vec![Dim::Fixed(1 << 40), Dim::Fixed(1 << 40)],
            )],
            outputs: vec![],
        };
        let err = overflowing.check_sample_fits(usize::MAX).unwrap_err();
        assert!(
            err.message.contains("more bytes than memory holds"),
            "{err}"
        );
        iris()
            .check_sample_fits(16)
            .expect("4 FP32 values fit in 16 bytes");
        assert!(iris().check_sample_fits(15).is_err());
    }

    #[test]
    fn an_output_requested_twice_is_refused() {
        let err = iris()
            .validate_output_names(["label", "label"].into_iter())
            .unwrap_err();
        assert_eq!(err.message, "output 'label' is requested more than once");
    }

    #[test]
    fn inputs_are_checked_without_taking_them() {
        let given = vec![input(vec![2, 5])];
        let err = iris().check_inputs(&given).unwrap_err();
        assert!(err.message.contains("expected shape [-1, 4]"), "{err}");
        iris().check_inputs(&[input(vec![2, 4])]).expect("fits");
    }

    #[test]
    fn fixed_batch_models_are_not_batched() {
        let mut sig = iris();
        sig.inputs[0].shape[0] = Dim::Fixed(1);
        assert!(!sig.supports_batching());
    }
}
