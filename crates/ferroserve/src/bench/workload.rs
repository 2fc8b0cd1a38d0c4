//! The workload: for each model of the mix, its infer URL and a pool of
//! pre-encoded bodies (HTTP or gRPC), and how a request picks its model and
//! body.

use anyhow::{bail, Context};
use ferroserve_core::TensorSpec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use super::encode::{encode, Body};
use super::inputs::{file_inputs, random_inputs, resolve_shapes};
use super::keys::{KeyPicker, ModelPicker};
use super::rows::Rows;
use super::settings::Settings;
use crate::api_client::{segment, ApiClient};

/// One model of the mix.
#[derive(Debug)]
pub struct ModelLoad {
    /// `.../v2/models/{name}/infer`, parsed once (reqwest would parse a
    /// string on every request).
    pub infer_url: reqwest::Url,
    /// Distinct bodies.
    pub bodies: Vec<Body>,
    /// Which body a request sends.
    pub keys: KeyPicker,
}

/// Every model of the mix and how requests choose among them.
#[derive(Debug)]
pub struct Workload {
    /// Models, in flag order.
    pub models: Vec<ModelLoad>,
    picker: ModelPicker,
}

impl Workload {
    /// Picks the model and body of the next request.
    pub fn pick(&self, rng: &mut impl Rng) -> (&ModelLoad, &Body) {
        let model = &self.models[self.picker.pick(rng)];
        (model, &model.bodies[model.keys.pick(rng)])
    }
}

#[derive(Deserialize)]
struct Metadata {
    inputs: Vec<TensorSpec>,
}

/// Reads each model's metadata from the server and builds its bodies.
pub fn build(
    api: &ApiClient,
    settings: &Settings,
    rows: Option<&Rows>,
) -> anyhow::Result<Workload> {
    let mut rng = SmallRng::seed_from_u64(settings.seed);
    let mut models = Vec::with_capacity(settings.models.len());
    for model in &settings.models {
        let specs = inputs_of(api, &model.name)?;
        let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        for name in settings.shapes.keys() {
            if !known.contains(&name.as_str()) && settings.models.len() == 1 {
                bail!(
                    "--shape {name}=...: model {} has no input {name:?} (its inputs: {})",
                    model.name,
                    known.join(", ")
                );
            }
        }
        let shapes = resolve_shapes(&model.name, &specs, settings.batch_rows, &settings.shapes)?;
        let inputs = match rows {
            Some(rows) => file_inputs(
                &model.name,
                &specs,
                &shapes,
                rows,
                settings.batch_rows,
                settings.keys,
            )?,
            None => (0..settings.keys)
                .map(|_| random_inputs(&specs, &shapes, &mut rng))
                .collect(),
        };
        let bodies: Vec<Body> = inputs
            .iter()
            .map(|i| encode(&model.name, i, settings.protocol))
            .collect();
        models.push(ModelLoad {
            infer_url: infer_url(&settings.url, &model.name)?,
            keys: KeyPicker::new(bodies.len(), settings.key_dist, settings.zipf_s)?,
            bodies,
        });
    }
    let weights: Vec<f64> = settings.models.iter().map(|m| m.weight).collect();
    Ok(Workload {
        models,
        picker: ModelPicker::new(&weights)?,
    })
}

fn infer_url(base: &str, model: &str) -> anyhow::Result<reqwest::Url> {
    let url = format!("{base}/v2/models/{model}/infer");
    reqwest::Url::parse(&url).with_context(|| format!("--url {base}: {url} is not a valid URL"))
}

/// The inputs `model` declares in its KServe v2 metadata.
fn inputs_of(api: &ApiClient, model: &str) -> anyhow::Result<Vec<TensorSpec>> {
    let metadata: Metadata = api
        .get(&format!("/v2/models/{}", segment(model)))
        .with_context(|| format!("cannot read the metadata of model {model}"))?;
    if metadata.inputs.is_empty() {
        bail!("model {model} declares no inputs");
    }
    Ok(metadata.inputs)
}
