//! FP16 and BF16 tensors through the HTTP front end: metadata, JSON and
//! binary inference in and out, KServe v1 rows, and the errors for numbers
//! a half type cannot hold.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use ferroserve_core::half::{bf16, f16};
use serde_json::{json, Value};

/// `2 * x + 0.5` as `scale_fp16.onnx` computes it: each step rounded to FP16.
fn fp16_model(x: f64) -> f16 {
    let x = f16::from_f64(x);
    f16::from_f32(f16::from_f32(x.to_f32() * 2.0).to_f32() + 0.5)
}

/// `2 * x + 0.5` as `scale_bf16.onnx` computes it: in FP32 between Casts.
fn bf16_model(x: f64) -> bf16 {
    bf16::from_f32(bf16::from_f64(x).to_f32() * 2.0 + 0.5)
}

async fn half_app() -> axum::Router {
    default_app(vec![testdata("scale_fp16"), testdata("scale_bf16")]).await
}

fn ok_json(reply: &Reply) -> Value {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The `data` numbers of output 0, read as the FP32 values the server
/// writes half values as (their shortest FP32 spelling).
fn output_numbers(v: &Value) -> Vec<f32> {
    v["outputs"][0]["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|n| n.as_f64().expect("a number") as f32)
        .collect()
}

const FP16_INPUT: [f64; 4] = [1.5, -3.0, 0.1, 1000.0];
const BF16_INPUT: [f64; 4] = [1.5, -3.0, 0.1, 1e6];

#[tokio::test]
async fn metadata_names_fp16_and_bf16() {
    let app = half_app().await;
    for (model, datatype) in [("scale_fp16", "FP16"), ("scale_bf16", "BF16")] {
        let meta = ok_json(&get(&app, &format!("/v2/models/{model}")).await);
        assert_eq!(
            meta["inputs"],
            json!([{"name": "x", "datatype": datatype, "shape": [-1, 2]}])
        );
        assert_eq!(meta["outputs"][0]["datatype"], datatype);
    }
}

/// A model, its datatype, four input values and what the model makes of one.
type JsonCase = (&'static str, &'static str, [f64; 4], fn(f64) -> f32);

#[tokio::test]
async fn fp16_and_bf16_round_trip_as_json() {
    let app = half_app().await;
    let cases: [JsonCase; 2] = [
        ("scale_fp16", "FP16", FP16_INPUT, |x| fp16_model(x).to_f32()),
        ("scale_bf16", "BF16", BF16_INPUT, |x| bf16_model(x).to_f32()),
    ];
    for (model, datatype, input, expected) in cases {
        let request = json!({"inputs": [
            {"name": "x", "shape": [2, 2], "datatype": datatype, "data": [[input[0], input[1]], [input[2], input[3]]]}]});
        let v = ok_json(&post_json(&app, &format!("/v2/models/{model}/infer"), request).await);
        assert_eq!(v["outputs"][0]["datatype"], datatype);
        assert_eq!(v["outputs"][0]["shape"], json!([2, 2]));
        let want: Vec<f32> = input.iter().map(|&x| expected(x)).collect();
        assert_eq!(output_numbers(&v), want, "{model}");
    }
    // The numbers read back are exactly the half values: 0.1 went in as the
    // nearest FP16 (0.0999755859375); 2 * it + 0.5 = 0.699951171875 lies
    // halfway between two FP16 values and rounds to the even one.
    assert_eq!(fp16_model(0.1).to_f64(), 0.7001953125);
}

/// A binary infer request for `x` of `datatype`, output `y` in binary form
/// when `binary_out`.
fn binary_request(model: &str, datatype: &str, bytes: &[u8], binary_out: bool) -> Request<Body> {
    let header = json!({
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": datatype,
                    "parameters": {"binary_data_size": bytes.len()}}],
        "outputs": [{"name": "y", "parameters": {"binary_data": binary_out}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend_from_slice(bytes);
    Request::post(format!("/v2/models/{model}/infer"))
        .header("inference-header-content-length", header.len())
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn fp16_round_trips_as_little_endian_binary() {
    let app = half_app().await;
    let bytes: Vec<u8> = FP16_INPUT
        .iter()
        .flat_map(|&x| f16::from_f64(x).to_le_bytes())
        .collect();
    let reply = send(&app, binary_request("scale_fp16", "FP16", &bytes, true)).await;
    let (header, tail) = reply.binary_parts();
    assert_eq!(header["outputs"][0]["datatype"], "FP16");
    assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 8);
    let want: Vec<u8> = FP16_INPUT
        .iter()
        .flat_map(|&x| fp16_model(x).to_le_bytes())
        .collect();
    assert_eq!(tail, want.as_slice());

    // Binary in, JSON out: the same values as numbers.
    let reply = send(&app, binary_request("scale_fp16", "FP16", &bytes, false)).await;
    let numbers = output_numbers(&ok_json(&reply));
    let want: Vec<f32> = FP16_INPUT.iter().map(|&x| fp16_model(x).to_f32()).collect();
    assert_eq!(numbers, want);
}

#[tokio::test]
async fn bf16_round_trips_as_little_endian_binary() {
    let app = half_app().await;
    let bytes: Vec<u8> = BF16_INPUT
        .iter()
        .flat_map(|&x| bf16::from_f64(x).to_le_bytes())
        .collect();
    let reply = send(&app, binary_request("scale_bf16", "BF16", &bytes, true)).await;
    let (header, tail) = reply.binary_parts();
    assert_eq!(header["outputs"][0]["datatype"], "BF16");
    assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 8);
    let got: Vec<f64> = tail
        .chunks_exact(2)
        .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f64())
        .collect();
    let want: Vec<f64> = BF16_INPUT.iter().map(|&x| bf16_model(x).to_f64()).collect();
    assert_eq!(got, want);
    assert_eq!(got[3], 1_998_848.0, "1e6 is past FP16 but inside BF16");
}

#[tokio::test]
async fn numbers_a_half_type_cannot_hold_are_400s_naming_input_and_element() {
    let app = half_app().await;
    let cases = [
        (
            "scale_fp16",
            json!({"name": "x", "shape": [1, 2], "datatype": "FP16", "data": [1, 70000]}),
            "input 'x': element 1: 70000 is not a valid FP16 (finite FP16 values lie within ±65504)",
        ),
        (
            "scale_bf16",
            json!({"name": "x", "shape": [1, 2], "datatype": "BF16", "data": [-1e39, 0]}),
            "input 'x': element 0: -1e39 is not a valid BF16 (finite BF16 values lie within ±3.3895314e38)",
        ),
        (
            "scale_fp16",
            json!({"name": "x", "shape": [1, 2], "datatype": "FP16", "data": [1, "2"]}),
            "input 'x': element 1: \"2\" is not a valid FP16",
        ),
        (
            "scale_fp16",
            json!({"name": "x", "shape": [1, 2], "datatype": "BF16", "data": [1, 2]}),
            "input 'x': expected datatype FP16 but got BF16",
        ),
    ];
    for (model, input, message) in cases {
        let reply = post_json(
            &app,
            &format!("/v2/models/{model}/infer"),
            json!({ "inputs": [input] }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{message}");
        assert_eq!(reply.error(), message);
    }
    let reply = send(&app, binary_request("scale_fp16", "FP16", &[0; 7], true)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "input 'x': binary data has 7 bytes but shape needs 8 (4 FP16 elements of 2 bytes)"
    );
}

#[tokio::test]
async fn kserve_v1_rows_of_fp16_and_bf16() {
    let app = half_app().await;
    for (model, expected) in [("scale_fp16", [3.5, -5.5]), ("scale_bf16", [3.5, -5.5])] {
        let reply = post_json(
            &app,
            &format!("/v1/models/{model}:predict"),
            json!({"instances": [[1.5, -3.0]]}),
        )
        .await;
        assert_eq!(ok_json(&reply)["predictions"], json!([expected]), "{model}");
    }
}
