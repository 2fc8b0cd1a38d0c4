//! Tensors written as nested JSON arrays: their shape.

use serde_json::Value;

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
