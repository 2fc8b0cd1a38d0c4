//! `ferroserve predict`: a small KServe client for one request.

use anyhow::{anyhow, bail, Context};
use ferroserve_core::json::nested_shape;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::api_client::{segment, ApiClient, ApiError};
use crate::cli::PredictArgs;

/// Sends the request and prints the response.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.url)?;
    let answer = predict(&api, &args).map_err(|e| unknown_model_hint(e, &api, &args.model))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn predict(api: &ApiClient, args: &PredictArgs) -> anyhow::Result<Value> {
    let text = match args.data.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => args.data.clone(),
    };
    let data: Value = serde_json::from_str(&text).context("--data is not valid JSON")?;
    let model = segment(&args.model);
    let model_path = match &args.version {
        Some(v) => format!("/v2/models/{model}/versions/{}", segment(v)),
        None => format!("/v2/models/{model}"),
    };
    let (path, body) = if data.get("instances").is_some() {
        (format!("/v1/models/{model}:predict"), data)
    } else if data.get("inputs").is_some() {
        (format!("{model_path}/infer"), data)
    } else if let Value::Array(rows) = data {
        let metadata: Value = api.get(&model_path)?;
        let input = &metadata["inputs"][0];
        let shape = nested_shape(&Value::Array(rows.clone()));
        let body = json!({"inputs": [{"name": input["name"], "datatype": input["datatype"], "shape": shape, "data": rows}]});
        (format!("{model_path}/infer"), body)
    } else {
        bail!("--data must be a KServe v2 request, a v1 request or a list of rows");
    };
    api.send_json(Method::POST, &path, &body)
}

/// For a model the server does not know, what to check; other errors as
/// they are.
fn unknown_model_hint(error: anyhow::Error, api: &ApiClient, model: &str) -> anyhow::Error {
    match error.downcast_ref::<ApiError>() {
        Some(refusal)
            if refusal.status == StatusCode::NOT_FOUND
                && refusal.message.contains(&format!("'{model}'")) =>
        {
            let base = api.base();
            anyhow!(
                "{}: the server at {base} does not serve it (ferroserve models list --url {base} lists the registered models)",
                refusal.message
            )
        }
        _ => error,
    }
}
