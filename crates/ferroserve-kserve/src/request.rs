//! Decoding of KServe v2 infer requests: the JSON form, and the binary
//! tensor extension where a JSON header is followed by raw tensor bytes.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use ferroserve_core::{
    tensor::element_count, DataType, InferError, InferRequest, RequestedOutput, Tensor, TensorData,
    MAX_REQUEST_KEY_BYTES,
};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::elements::{check_declared_count, decode_binary, decode_json, DataSeed};

/// Request-level parameters understood by the server.
pub const BINARY_DATA_OUTPUT: &str = "binary_data_output";
const BINARY_DATA_SIZE: &str = "binary_data_size";
const BINARY_DATA: &str = "binary_data";

struct RequestJson<'a> {
    id: Option<String>,
    parameters: BTreeMap<String, serde_json::Value>,
    inputs: Vec<InputJson<'a>>,
    outputs: Vec<OutputJson>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum RequestField {
    Id,
    Parameters,
    Inputs,
    Outputs,
    #[serde(other)]
    Other,
}

/// Reads the request object; `budget` (the JSON's length) travels to each
/// input, so none is decoded in place for more elements than the body holds.
struct RequestVisitor<'a> {
    budget: usize,
    lifetime: PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> Visitor<'de> for RequestVisitor<'a> {
    type Value = RequestJson<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an infer request object with inputs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestJson<'a>, A::Error> {
        let (mut id, mut parameters, mut inputs, mut outputs) =
            (None, BTreeMap::new(), None, Vec::new());
        while let Some(field) = map.next_key::<RequestField>()? {
            match field {
                RequestField::Id => id = map.next_value()?,
                RequestField::Parameters => parameters = map.next_value()?,
                RequestField::Inputs => {
                    inputs = Some(map.next_value_seed(InputsSeed {
                        budget: self.budget,
                        lifetime: PhantomData,
                    })?)
                }
                RequestField::Outputs => outputs = map.next_value()?,
                RequestField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RequestJson {
            id,
            parameters,
            inputs: inputs.ok_or_else(|| de::Error::missing_field("inputs"))?,
            outputs,
        })
    }
}

/// The `inputs` array, each input read with the request's byte budget.
struct InputsSeed<'a> {
    budget: usize,
    lifetime: PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for InputsSeed<'a> {
    type Value = Vec<InputJson<'a>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for InputsSeed<'a> {
    type Value = Vec<InputJson<'a>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of inputs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut inputs = Vec::new();
        while let Some(input) = seq.next_element_seed(InputVisitor {
            budget: self.budget,
            lifetime: PhantomData,
        })? {
            inputs.push(input);
        }
        Ok(inputs)
    }
}

struct InputJson<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    parameters: BTreeMap<String, serde_json::Value>,
    data: Option<InputData<'a>>,
}

/// The `data` of an input: already decoded when its datatype and shape came
/// first (one pass over the numbers), else kept raw for decoding afterwards.
enum InputData<'a> {
    Decoded(TensorData),
    Raw(&'a RawValue),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum InputField {
    Name,
    Shape,
    Datatype,
    Parameters,
    Data,
    #[serde(other)]
    Other,
}

/// Reads one input object; its `data` is decoded in place when name, shape
/// and datatype came first and the shape's element count fits `budget`.
struct InputVisitor<'a> {
    budget: usize,
    lifetime: PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for InputVisitor<'a> {
    type Value = InputJson<'a>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for InputVisitor<'a> {
    type Value = InputJson<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an input object with name, shape, datatype and data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InputJson<'a>, A::Error> {
        let (mut name, mut shape, mut datatype) =
            (None::<String>, None::<Vec<i64>>, None::<String>);
        let mut parameters = BTreeMap::new();
        let mut data = None;
        while let Some(field) = map.next_key::<InputField>()? {
            match field {
                InputField::Name => name = Some(map.next_value()?),
                InputField::Shape => shape = Some(map.next_value()?),
                InputField::Datatype => datatype = Some(map.next_value()?),
                InputField::Parameters => parameters = map.next_value()?,
                InputField::Data => {
                    let plan = match (&name, &shape, &datatype) {
                        (Some(n), Some(s), Some(d)) => {
                            in_place_plan(s, d, self.budget).map(|p| (n, p))
                        }
                        _ => None,
                    };
                    data = Some(match plan {
                        Some((input, (datatype, count))) => {
                            InputData::Decoded(map.next_value_seed(DataSeed {
                                input,
                                datatype,
                                count,
                            })?)
                        }
                        None => InputData::Raw(map.next_value()?),
                    });
                }
                InputField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(InputJson {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            shape: shape.ok_or_else(|| de::Error::missing_field("shape"))?,
            datatype: datatype.ok_or_else(|| de::Error::missing_field("datatype"))?,
            parameters,
            data,
        })
    }
}

/// Datatype and element count when both are valid and the count fits in
/// `budget` bytes of JSON; otherwise the input is decoded afterwards, where
/// the error is reported with full context.
fn in_place_plan(shape: &[i64], datatype: &str, budget: usize) -> Option<(DataType, usize)> {
    let datatype = datatype.parse().ok()?;
    let dims = shape
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<_>>>()?;
    let count = element_count(&dims)?;
    (count <= budget).then_some((datatype, count))
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: BTreeMap<String, serde_json::Value>,
}

/// Decodes a request body. `json_len` is the value of the
/// `Inference-Header-Content-Length` header when present: the first
/// `json_len` bytes are the JSON header and the rest holds binary tensors.
pub fn decode_request(body: &[u8], json_len: Option<usize>) -> Result<InferRequest, InferError> {
    let (header, mut binary) = match json_len {
        Some(len) if len > body.len() => {
            return Err(InferError::invalid(format!(
                "Inference-Header-Content-Length is {len} but the body has only {} bytes",
                body.len()
            )))
        }
        Some(len) => body.split_at(len),
        None => (body, &[][..]),
    };
    let header = std::str::from_utf8(header)
        .map_err(|e| InferError::invalid(format!("request JSON is not valid UTF-8: {e}")))?;
    let mut deserializer = serde_json::Deserializer::from_str(header);
    let parsed = deserializer
        .deserialize_map(RequestVisitor {
            budget: header.len(),
            lifetime: PhantomData,
        })
        .and_then(|parsed| deserializer.end().map(|()| parsed))
        .map_err(|e| InferError::invalid(format!("invalid infer request JSON: {e}")))?;
    if let Some(id) = parsed
        .id
        .as_ref()
        .filter(|id| id.len() > MAX_REQUEST_KEY_BYTES)
    {
        return Err(InferError::invalid(format!(
            "request id is {} bytes; at most {MAX_REQUEST_KEY_BYTES}",
            id.len()
        )));
    }
    if parsed.inputs.is_empty() {
        return Err(InferError::invalid("request has no inputs"));
    }
    let mut inputs = Vec::with_capacity(parsed.inputs.len());
    for input in parsed.inputs {
        inputs.push(decode_input(input, &mut binary)?);
    }
    if !binary.is_empty() {
        return Err(InferError::invalid(format!(
            "{} bytes of binary data follow the request JSON but no input claims them",
            binary.len()
        )));
    }
    let default_binary = flag(&parsed.parameters, BINARY_DATA_OUTPUT, "request")?.unwrap_or(false);
    let outputs = parsed
        .outputs
        .into_iter()
        .map(|o| {
            let binary_data = flag(&o.parameters, BINARY_DATA, &format!("output '{}'", o.name))?
                .unwrap_or(default_binary);
            Ok(RequestedOutput {
                name: o.name,
                binary_data,
            })
        })
        .collect::<Result<Vec<_>, InferError>>()?;
    Ok(InferRequest {
        id: parsed.id,
        inputs,
        outputs,
        parameters: parsed.parameters,
    })
}

/// What input `name` declares: its element type (from `datatype`), its
/// shape (from the wire's signed dimensions) and the element count the
/// shape needs; refused, naming the input, when the type is unknown, a
/// dimension negative or the count beyond `usize`. Every protocol checks
/// a claimed shape here before it sizes anything by it.
pub fn declared_input(
    name: &str,
    datatype: &str,
    shape: &[i64],
) -> Result<(DataType, Vec<usize>, usize), InferError> {
    let datatype: DataType = datatype
        .parse()
        .map_err(|e| InferError::invalid(format!("input '{name}': {e}")))?;
    let dims = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| {
            InferError::invalid(format!(
                "input '{name}': shape {shape:?} has a negative dimension"
            ))
        })?;
    let count = element_count(&dims).ok_or_else(|| {
        InferError::invalid(format!("input '{name}': shape {dims:?} is too large"))
    })?;
    Ok((datatype, dims, count))
}

fn decode_input(input: InputJson<'_>, binary: &mut &[u8]) -> Result<Tensor, InferError> {
    let name = input.name;
    let (datatype, shape, count) = declared_input(&name, &input.datatype, &input.shape)?;
    let binary_size = match input.parameters.get(BINARY_DATA_SIZE) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    InferError::invalid(format!(
                "input '{name}': parameter binary_data_size must be a non-negative integer, got {v}"
            ))
                })?,
        ),
    };
    let data = match (binary_size, input.data) {
        (None, Some(InputData::Decoded(data))) => data,
        (Some(_), Some(_)) => {
            return Err(InferError::invalid(format!(
                "input '{name}': give either 'data' or binary_data_size, not both"
            )))
        }
        (Some(size), None) => {
            if size > binary.len() {
                return Err(InferError::invalid(format!(
                    "input '{name}': binary_data_size is {size} but only {} bytes of binary data remain",
                    binary.len()
                )));
            }
            let (mine, rest) = binary.split_at(size);
            *binary = rest;
            decode_binary(&name, datatype, mine, count)?
        }
        (None, Some(InputData::Raw(raw))) => {
            check_declared_count(&name, &shape, count, raw.get().len())?;
            decode_json(&name, datatype, raw.get(), count)?
        }
        (None, None) => {
            return Err(InferError::invalid(format!(
                "input '{name}': no 'data' and no binary_data_size"
            )))
        }
    };
    Tensor::new(name, shape, data)
}

fn flag(
    parameters: &BTreeMap<String, serde_json::Value>,
    key: &str,
    owner: &str,
) -> Result<Option<bool>, InferError> {
    match parameters.get(key) {
        None => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(InferError::invalid(format!(
            "{owner}: parameter {key} must be true or false, got {other}"
        ))),
    }
}

/// The shortest `timeout` parameter a client may set, in microseconds
/// (1 ms): a shorter deadline could only ever fail.
pub const MIN_TIMEOUT_US: u64 = 1_000;

/// The request's `timeout` parameter in microseconds (Triton's convention),
/// if any; at least [`MIN_TIMEOUT_US`].
pub fn timeout_parameter(request: &InferRequest) -> Result<Option<u64>, InferError> {
    let Some(v) = request.parameters.get("timeout") else {
        return Ok(None);
    };
    let us = v.as_u64().ok_or_else(|| {
        InferError::invalid(format!(
            "parameter timeout must be a whole number of microseconds, got {v}"
        ))
    })?;
    if us < MIN_TIMEOUT_US {
        return Err(InferError::invalid(format!(
            "parameter timeout must be at least {MIN_TIMEOUT_US} microseconds (1 ms), got {us}"
        )));
    }
    Ok(Some(us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroserve_core::TensorData;

    #[test]
    fn a_request_id_over_the_key_limit_is_refused() {
        let body = |id: &str| {
            format!(
                r#"{{"id":"{id}","inputs":[{{"name":"x","shape":[1],"datatype":"FP32","data":[1]}}]}}"#
            )
        };
        let longest = "i".repeat(MAX_REQUEST_KEY_BYTES);
        assert!(decode_request(body(&longest).as_bytes(), None).is_ok());
        let e = decode_request(body(&format!("{longest}i")).as_bytes(), None).expect_err("long id");
        assert!(
            e.message.contains("request id is 257 bytes; at most 256"),
            "{}",
            e.message
        );
    }

    #[test]
    fn timeout_parameter_below_one_millisecond_is_refused() {
        let with_timeout = |t: u64| {
            let body = format!(
                r#"{{"inputs":[{{"name":"x","shape":[1],"datatype":"FP32","data":[1]}}],"parameters":{{"timeout":{t}}}}}"#
            );
            timeout_parameter(&decode_request(body.as_bytes(), None).expect("valid"))
        };
        for t in [0, 999] {
            let e = with_timeout(t).expect_err("below the floor");
            assert!(
                e.message.contains("at least 1000 microseconds"),
                "{}",
                e.message
            );
        }
        assert_eq!(with_timeout(1000).expect("floor"), Some(1000));
    }

    #[test]
    fn decodes_json_request() {
        let body = br#"{"id":"r1","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}],
            "outputs":[{"name":"label"},{"name":"p","parameters":{"binary_data":true}}]}"#;
        let req = decode_request(body, None).expect("valid");
        assert_eq!(req.id.as_deref(), Some("r1"));
        assert_eq!(req.inputs[0].shape, vec![2, 2]);
        assert_eq!(
            req.inputs[0].data,
            TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0])
        );
        assert!(!req.outputs[0].binary_data);
        assert!(req.outputs[1].binary_data);
    }

    #[test]
    fn decodes_binary_extension() {
        let header = br#"{"inputs":[{"name":"a","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}},
            {"name":"b","shape":[1],"datatype":"FP64","data":[0.5]}],"parameters":{"binary_data_output":true},
            "outputs":[{"name":"y"}]}"#;
        let mut body = header.to_vec();
        body.extend_from_slice(&7i32.to_le_bytes());
        body.extend_from_slice(&(-3i32).to_le_bytes());
        let req = decode_request(&body, Some(header.len())).expect("valid");
        assert_eq!(req.inputs[0].data, TensorData::Int32(vec![7, -3]));
        assert_eq!(req.inputs[1].data, TensorData::Fp64(vec![0.5]));
        assert!(req.outputs[0].binary_data, "request-level default applies");
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases: [(&[u8], Option<usize>, &str); 8] = [
            (b"{", None, "invalid infer request JSON"),
            (br#"{"inputs":[]}"#, None, "request has no inputs"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}"#, None, "input 'x': unknown datatype \"FLOAT\""),
            (br#"{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}"#, None, "negative dimension"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#, None, "no 'data' and no binary_data_size"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}"#, None, "only 0 bytes of binary data remain"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#, Some(999), "Inference-Header-Content-Length is 999"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":1}}"#, None, "binary_data_output must be true or false"),
        ];
        for (body, len, expected) in cases {
            let err = decode_request(body, len).unwrap_err();
            assert!(
                err.message.contains(expected),
                "{expected:?} not in {:?}",
                err.message
            );
        }
    }

    #[test]
    fn data_before_datatype_decodes_the_same() {
        let late = br#"{"inputs":[{"data":[[1,2]],"name":"x","shape":[1,2],"datatype":"INT32"}]}"#;
        let early = br#"{"inputs":[{"name":"x","shape":[1,2],"datatype":"INT32","data":[[1,2]]}]}"#;
        let late = decode_request(late, None).expect("valid");
        assert_eq!(
            late.inputs,
            decode_request(early, None).expect("valid").inputs
        );
        assert_eq!(late.inputs[0].data, TensorData::Int32(vec![1, 2]));
    }

    #[test]
    fn in_place_errors_name_the_input_and_element() {
        let body = br#"{"inputs":[{"name":"x","shape":[3],"datatype":"INT32","data":[1,2,true]}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert!(
            err.message
                .contains("input 'x': element 2: true is not a valid INT32"),
            "{err}"
        );
        let body = br#"{"inputs":[{"name":"x","shape":[3],"datatype":"INT32","data":[1,2]}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert!(
            err.message
                .contains("input 'x': shape needs 3 elements but data has 2"),
            "{err}"
        );
        let body = br#"{"inputs":[{"name":"x","shape":[3],"datatype":"INT32"}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert!(err.message.contains("no 'data'"), "{err}");
        let body = br#"{"inputs":[{"shape":[3],"datatype":"INT32","data":[1,2,3]}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert!(err.message.contains("missing field `name`"), "{err}");
    }

    #[test]
    fn leftover_binary_is_rejected() {
        let header = br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#;
        let mut body = header.to_vec();
        body.extend_from_slice(&[0; 4]);
        let err = decode_request(&body, Some(header.len())).unwrap_err();
        assert!(err.message.contains("no input claims them"));
    }

    #[test]
    fn a_shape_the_body_cannot_hold_is_refused_before_decoding() {
        let body = br#"{"inputs":[{"name":"input","shape":[10000000000000000],"datatype":"FP32","data":[]}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert_eq!(
            err.message,
            "input 'input': shape [10000000000000000] declares 10000000000000000 elements but the request holds only 2 bytes of data for them"
        );
        // Data before the shape: decoded afterwards, refused the same way.
        let body =
            br#"{"inputs":[{"data":[1,2],"name":"x","shape":[1000,1000],"datatype":"INT8"}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert!(err.message.contains("declares 1000000 elements"), "{err}");
    }

    #[test]
    fn zero_element_shapes_whose_rows_overflow_are_refused() {
        let body = br#"{"inputs":[{"name":"x","shape":[0,8589934592,8589934592],"datatype":"FP32","data":[]}]}"#;
        let err = decode_request(body, None).unwrap_err();
        assert!(err.message.contains("is too large"), "{err}");
    }

    /// Dimensions from small to far past any memory.
    fn huge_shape() -> impl proptest::strategy::Strategy<Value = Vec<i64>> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                2 => 0i64..4,
                1 => Just(1i64 << 33),
                1 => Just(10_000_000_000_000_000),
                1 => Just(i64::MAX),
            ],
            1..5,
        )
    }

    proptest::proptest! {
        #[test]
        fn huge_shapes_with_little_data_are_errors_not_allocations(
            shape in huge_shape(),
            datatype in proptest::sample::select(DataType::ALL.to_vec()),
            data in proptest::sample::select(vec!["[]", "[0]", "[[0],[0]]", "0", "[[]]"]),
            data_first in proptest::bool::ANY,
        ) {
            let shape_text = serde_json::to_string(&shape).expect("numbers");
            let fields = [
                format!(r#""name":"x","shape":{shape_text},"datatype":"{datatype}""#),
                format!(r#""data":{data}"#),
            ];
            let input = if data_first {
                format!("{{{},{}}}", fields[1], fields[0])
            } else {
                format!("{{{},{}}}", fields[0], fields[1])
            };
            let body = format!(r#"{{"inputs":[{input}]}}"#);
            let count = shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<_>>>()
                .and_then(|dims| element_count(&dims));
            let decoded = decode_request(body.as_bytes(), None);
            if count.is_none_or(|n| n > 2) {
                let err = decoded.expect_err("more elements than the data holds");
                proptest::prop_assert!(err.message.contains("input 'x': "), "{}", err);
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(0u8..=255, 0..256), len in proptest::option::of(0usize..300)) {
            let _ = decode_request(&body, len);
        }
    }
}
