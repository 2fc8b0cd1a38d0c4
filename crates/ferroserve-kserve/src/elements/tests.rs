//! Decoding and encoding tests: JSON and binary elements of every type,
//! and the errors that name the input and the element.

use super::*;

#[test]
fn nested_and_flat_json_decode_alike() {
    let flat = decode_json("x", DataType::Fp32, "[1, 2.5, 3, 4]", 4).expect("flat");
    let nested = decode_json("x", DataType::Fp32, "[[1, 2.5], [3, 4]]", 4).expect("nested");
    assert_eq!(flat, nested);
    assert_eq!(flat, TensorData::Fp32(vec![1.0, 2.5, 3.0, 4.0]));
}

#[test]
fn json_errors_name_input_element_and_type() {
    let err = decode_json("x", DataType::Int64, "[1, 2.5]", 2).unwrap_err();
    assert_eq!(
        err.message,
        "input 'x': element 1: 2.5 is not a valid INT64"
    );
    let err = decode_json("x", DataType::Int32, "[1, 3000000000]", 2).unwrap_err();
    assert!(
        err.message.contains("3000000000 is not a valid INT32"),
        "{err}"
    );
    let err = decode_json("x", DataType::Bool, "[true, 1]", 2).unwrap_err();
    assert!(
        err.message.contains("element 1: 1 is not a valid BOOL"),
        "{err}"
    );
    let err = decode_json("x", DataType::Fp32, "[1, null]", 2).unwrap_err();
    assert!(err.message.contains("null is not a valid FP32"), "{err}");
    let err = decode_json("x", DataType::Fp32, "[1, 2, 3]", 2).unwrap_err();
    assert!(
        err.message.contains("more elements than the shape allows"),
        "{err}"
    );
    let err = decode_json("x", DataType::Fp32, "[1]", 2).unwrap_err();
    assert!(
        err.message.contains("needs 2 elements but data has 1"),
        "{err}"
    );
    let err = decode_json("x", DataType::Fp32, "[1e300]", 1).unwrap_err();
    assert_eq!(
        err.message,
        "input 'x': element 0: 1e300 is not a valid FP32 (finite FP32 values lie within ±3.4028235e38)"
    );
}

#[test]
fn half_floats_from_json_round_to_nearest() {
    let data = decode_json("h", DataType::Fp16, "[1, 0.1, -2.5, 65504]", 4).expect("fits");
    let expected = [1.0, 0.1, -2.5, 65504.0].map(f16::from_f64).to_vec();
    assert_eq!(data, TensorData::Fp16(expected));
    let data = decode_json("b", DataType::Bf16, "[[1e38], [-3]]", 2).expect("fits");
    assert_eq!(
        data,
        TensorData::Bf16(vec![bf16::from_f64(1e38), bf16::from_f64(-3.0)])
    );
}

#[test]
fn half_float_range_errors_name_input_element_and_range() {
    let err = decode_json("h", DataType::Fp16, "[1, 2, 3, 70000]", 4).unwrap_err();
    assert_eq!(
        err.message,
        "input 'h': element 3: 70000 is not a valid FP16 (finite FP16 values lie within ±65504)"
    );
    let err = decode_json("h", DataType::Fp16, "[-1e5]", 1).unwrap_err();
    assert!(
        err.message
            .contains("element 0: -100000 is not a valid FP16"),
        "{err}"
    );
    let err = decode_json("b", DataType::Bf16, "[0, 1e39]", 2).unwrap_err();
    assert_eq!(
        err.message,
        "input 'b': element 1: 1e39 is not a valid BF16 (finite BF16 values lie within ±3.3895314e38)"
    );
    let err = decode_json("b", DataType::Bf16, r#"[0, "1"]"#, 2).unwrap_err();
    assert_eq!(
        err.message,
        "input 'b': element 1: \"1\" is not a valid BF16"
    );
    let err = decode_json("h", DataType::Fp16, "[null]", 1).unwrap_err();
    assert_eq!(
        err.message,
        "input 'h': element 0: null is not a valid FP16"
    );
}

#[test]
fn half_floats_encode_little_endian_two_bytes_each() {
    let mut bytes = Vec::new();
    let data = TensorData::Fp16(vec![f16::ONE, f16::NEG_INFINITY]);
    encode_binary(&data, &mut bytes).expect("fixed size");
    assert_eq!(bytes, [0x00, 0x3c, 0x00, 0xfc]);
    bytes.clear();
    encode_binary(&TensorData::Bf16(vec![bf16::ONE]), &mut bytes).expect("fixed size");
    assert_eq!(bytes, [0x80, 0x3f]);
    let err = decode_binary("h", DataType::Fp16, &[0; 3], 2).unwrap_err();
    assert_eq!(
        err.message,
        "input 'h': binary data has 3 bytes but shape needs 4 (2 FP16 elements of 2 bytes)"
    );
}

#[test]
fn bytes_from_json_strings() {
    let data = decode_json("t", DataType::Bytes, r#"["cat", "dög"]"#, 2).expect("ok");
    assert_eq!(
        data,
        TensorData::Bytes(vec![b"cat".to_vec(), "dög".as_bytes().to_vec()])
    );
}

#[test]
fn binary_round_trips_every_type() {
    let samples = vec![
        TensorData::Bool(vec![true, false]),
        TensorData::Uint8(vec![1, 255]),
        TensorData::Uint16(vec![1, 65535]),
        TensorData::Uint32(vec![1, 7]),
        TensorData::Uint64(vec![1, u64::MAX]),
        TensorData::Int8(vec![-1, 5]),
        TensorData::Int16(vec![-1, 5]),
        TensorData::Int32(vec![-1, 5]),
        TensorData::Int64(vec![-1, i64::MIN]),
        TensorData::Fp16(vec![f16::from_f32(1.5), f16::MIN_POSITIVE_SUBNORMAL]),
        TensorData::Bf16(vec![bf16::from_f32(-0.25), bf16::MAX]),
        TensorData::Fp32(vec![1.5, -0.25]),
        TensorData::Fp64(vec![1e-300, 2.0]),
        TensorData::Bytes(vec![b"ab".to_vec(), Vec::new()]),
    ];
    for data in samples {
        let mut bytes = Vec::new();
        encode_binary(&data, &mut bytes).expect("short elements");
        let back = decode_binary("x", data.datatype(), &bytes, data.len()).expect("decodes");
        assert_eq!(back, data);
    }
}

#[test]
fn binary_size_mismatch_is_explained() {
    let err = decode_binary("x", DataType::Fp32, &[0; 7], 2).unwrap_err();
    assert_eq!(
        err.message,
        "input 'x': binary data has 7 bytes but shape needs 8 (2 FP32 elements of 4 bytes)"
    );
    let err = decode_binary("x", DataType::Bytes, &[9, 0, 0, 0, 1], 1).unwrap_err();
    assert!(err.message.contains("BYTES length 9 exceeds"), "{err}");
    let err = decode_binary("x", DataType::Bytes, &[1, 0], 1).unwrap_err();
    assert!(err.message.contains("truncated"), "{err}");
}

#[test]
fn a_length_past_the_prefix_is_an_error_not_truncated() {
    let too_long = usize::try_from(u64::from(u32::MAX) + 1).expect("64-bit");
    let err = bytes_length_prefix(3, too_long).unwrap_err();
    assert!(
        err.message.contains("BYTES element 3 has 4294967296 bytes"),
        "{err}"
    );
    assert_eq!(bytes_length_prefix(0, 5).expect("fits"), [5, 0, 0, 0]);
}

#[test]
fn a_count_the_bytes_cannot_hold_is_refused_first() {
    let err = check_declared_count("x", &[10_000_000_000_000_000], 10_000_000_000_000_000, 2)
        .unwrap_err();
    assert_eq!(
        err.message,
        "input 'x': shape [10000000000000000] declares 10000000000000000 elements but the request holds only 2 bytes of data for them"
    );
    check_declared_count("x", &[2], 2, 5).expect("fits");
}

proptest::proptest! {
    #[test]
    fn arbitrary_json_never_panics(text in ".{0,64}", n in 0usize..8) {
        for dt in DataType::ALL {
            let _ = decode_json("x", dt, &text, n);
        }
    }

    #[test]
    fn arbitrary_binary_never_panics(bytes in proptest::collection::vec(0u8..=255, 0..64), n in 0usize..16) {
        for dt in DataType::ALL {
            let _ = decode_binary("x", dt, &bytes, n);
        }
    }
}
