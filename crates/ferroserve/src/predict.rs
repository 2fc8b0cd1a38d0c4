//! `ferroserve predict`: a small KServe client for one request.

use anyhow::{bail, Context};
use ferroserve_core::json::nested_shape;
use serde_json::{json, Value};

use crate::cli::PredictArgs;

/// Sends the request and prints the response.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answer = runtime.block_on(predict(&args))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

async fn predict(args: &PredictArgs) -> anyhow::Result<Value> {
    let text = match args.data.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => args.data.clone(),
    };
    let data: Value = serde_json::from_str(&text).context("--data is not valid JSON")?;
    let base = args.url.trim_end_matches('/');
    let model_path = match &args.version {
        Some(v) => format!("{}/versions/{v}", args.model),
        None => args.model.clone(),
    };
    let client = reqwest::Client::new();
    let (url, body) = if data.get("instances").is_some() {
        (format!("{base}/v1/models/{}:predict", args.model), data)
    } else if data.get("inputs").is_some() {
        (format!("{base}/v2/models/{model_path}/infer"), data)
    } else if let Value::Array(rows) = data {
        let metadata: Value = get_json(
            &client,
            &format!("{base}/v2/models/{model_path}"),
            &args.model,
        )
        .await?;
        let input = &metadata["inputs"][0];
        let shape = nested_shape(&Value::Array(rows.clone()));
        let body = json!({"inputs": [{"name": input["name"], "datatype": input["datatype"], "shape": shape, "data": rows}]});
        (format!("{base}/v2/models/{model_path}/infer"), body)
    } else {
        bail!("--data must be a KServe v2 request, a v1 request or a list of rows");
    };
    let response = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        bail!(failure(&url, status, &answer, &args.model));
    }
    Ok(answer)
}

/// The error for a failed answer: the server's own message, and for a
/// model it does not know, what to check.
fn failure(url: &str, status: reqwest::StatusCode, answer: &Value, model: &str) -> String {
    let message = answer["error"].as_str().unwrap_or("no error message");
    if status == reqwest::StatusCode::NOT_FOUND && message.contains(&format!("'{model}'")) {
        let base = url.split("/v1/").next().unwrap_or(url);
        let base = base.split("/v2/").next().unwrap_or(base);
        return format!(
            "{message}: the server at {base} does not serve it (ferroserve models list --url {base} lists the registered models)"
        );
    }
    format!("{url} answered {status}: {message}")
}

async fn get_json(client: &reqwest::Client, url: &str, model: &str) -> anyhow::Result<Value> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let value: Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        bail!(failure(url, status, &value, model));
    }
    Ok(value)
}
