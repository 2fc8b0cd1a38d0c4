//! JSON helpers: the shape of tensors written as nested arrays, and the
//! name of a value's type for messages.

use serde_json::Value;

/// The JSON type of a value as messages name it: "null", "a boolean",
/// "a number", "a string", "an array" or "an object".
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Dimensions of a nested JSON array, following first elements (`[]` for a
/// scalar, `[3, 2]` for `[[1, 2], [3, 4], [5, 6]]`).
pub fn nested_shape(value: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut current = value;
    while let Value::Array(items) = current {
        shape.push(items.len());
        match items.first() {
            Some(first) => current = first,
            None => break,
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_of_scalars_vectors_and_matrices() {
        assert_eq!(nested_shape(&json!(1.0)), Vec::<usize>::new());
        assert_eq!(nested_shape(&json!([1, 2, 3])), vec![3]);
        assert_eq!(nested_shape(&json!([[1, 2], [3, 4], [5, 6]])), vec![3, 2]);
        assert_eq!(nested_shape(&json!([])), vec![0]);
    }
}
