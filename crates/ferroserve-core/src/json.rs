//! JSON helpers: the shape of tensors written as nested arrays, the name
//! of a value's type for messages, and numbers written as JSON writes them.

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

/// A float in the shortest text that reads back to the same value: plain
/// digits for everyday magnitudes (`50`, `0.25`), an exponent for very
/// large or small ones (`1e300`, `1e-7`), as JavaScript writes numbers.
/// Messages and files echo numbers through it: Rust's `{}` alone writes
/// all 301 digits of 1e300. NaN and infinities read `NaN`, `inf`, `-inf`.
pub fn float_text(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude.is_finite() && (magnitude >= 1e16 || (magnitude != 0.0 && magnitude < 1e-5)) {
        format!("{value:e}")
    } else {
        value.to_string()
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
    fn floats_are_written_short_and_read_back_exactly() {
        for (value, text) in [
            (1e300, "1e300"),
            (-1e300, "-1e300"),
            (1e-7, "1e-7"),
            (0.1, "0.1"),
            (2.5, "2.5"),
            (50.0, "50"),
            (123_456.0, "123456"),
            (1e16, "1e16"),
            (f64::MAX, "1.7976931348623157e308"),
        ] {
            assert_eq!(float_text(value), text);
            assert_eq!(float_text(value).parse::<f64>(), Ok(value));
        }
        assert_eq!(float_text(f64::NAN), "NaN");
        assert_eq!(float_text(f64::INFINITY), "inf");
    }

    #[test]
    fn shapes_of_scalars_vectors_and_matrices() {
        assert_eq!(nested_shape(&json!(1.0)), Vec::<usize>::new());
        assert_eq!(nested_shape(&json!([1, 2, 3])), vec![3]);
        assert_eq!(nested_shape(&json!([[1, 2], [3, 4], [5, 6]])), vec![3, 2]);
        assert_eq!(nested_shape(&json!([])), vec![0]);
    }
}
