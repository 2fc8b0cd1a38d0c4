//! `ferroserve profile`: builds the reference data profile of a model
//! version from a training sample (CSV, JSON lines or Parquet), with the
//! distribution of the model's predictions on it, and stores it on the
//! version in the registry for drift monitoring.

mod args;
mod predict;
mod sample;
mod store;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ferroserve_backend::{EngineChoice, Engines};
use ferroserve_core::FeatureSchema;
use ferroserve_monitor::profile::{ProfileOptions, ReferenceProfile};
use ferroserve_registry::ModelVersion;
use ferroserve_tabular::{Excluded, Format};

pub use args::{format_parser, ProfileArgs};

/// Runs `ferroserve profile`.
pub fn run(args: ProfileArgs) -> anyhow::Result<()> {
    // Shows what opening the registry warns about, nothing chattier; a
    // missing ONNX Runtime is no news when tract runs the model.
    crate::logging::init(
        crate::logging::LogFormat::Text,
        "warn,ferroserve_backend=error",
    );
    let format = match args.format {
        Some(format) => format,
        None => Format::from_path(&args.data)?,
    };
    let given_schema = args.schema.as_deref().map(read_schema).transpose()?;
    let mut reader = ferroserve_tabular::open(&args.data, format)?;
    let file = args.data.display().to_string();

    let engines = Arc::new(Engines::discover(args.registry.ort_library.as_deref()));
    let store = store::open(&args.registry, engines.clone())?;
    let version = store::resolve(store.as_ref(), &args.model)?;
    let label = format!("{} version {}", version.model, version.version);

    let schema = match given_schema {
        Some(schema) => Some(schema),
        None => version.meta.feature_schema.clone(),
    };
    let excluded = Excluded {
        target: args.target.as_deref(),
        exclude: &args.exclude,
    };
    let features = ferroserve_tabular::select(&file, reader.columns(), schema.as_ref(), &excluded)?;
    let predictor = if args.no_predictions {
        None
    } else {
        let bytes = store.artifact(&version)?;
        let engine = engine_for(args.engine, &version);
        let model = predict::load(&engines, engine, bytes, &label)?;
        let predictor = predict::Predictor::new(
            model.as_ref(),
            features.clone(),
            args.prediction_output.as_deref(),
        )
        .with_context(|| format!("cannot feed the sample to the model of {label}"))?;
        Some(predictor)
    };

    let profile = sample::profile(reader.as_mut(), &file, &features, predictor, options(&args))?;
    let json = profile.to_json();
    if let Some(out) = &args.out {
        // The struct keeps its field order (the JSON value sorts keys).
        let text = serde_json::to_string_pretty(&profile)? + "\n";
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    store
        .store_profile(&version, &json)
        .with_context(|| format!("cannot store the profile on {label}"))?;
    println!(
        "{}",
        summary(
            &profile,
            &file,
            &label,
            &store.describe(),
            args.out.as_deref()
        )
    );
    Ok(())
}

/// The engine that runs the model, chosen as `serve` chooses it: `--engine`,
/// else the version's engine hint, else `auto` (ONNX Runtime when present,
/// else tract).
fn engine_for(given: Option<EngineChoice>, version: &ModelVersion) -> EngineChoice {
    given.or(version.engine_hint).unwrap_or(EngineChoice::Auto)
}

/// `--bins` and `--max-categories` over the defaults.
fn options(args: &ProfileArgs) -> ProfileOptions {
    let defaults = ProfileOptions::default();
    ProfileOptions {
        bins: args.bins.unwrap_or(defaults.bins),
        max_categories: args.max_categories.unwrap_or(defaults.max_categories),
    }
}

/// The feature schema in `--schema FILE`.
fn read_schema(path: &Path) -> anyhow::Result<FeatureSchema> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--schema: cannot read {}", path.display()))?;
    FeatureSchema::from_json(&text).with_context(|| format!("--schema {}", path.display()))
}

/// The line printed when the profile is stored.
fn summary(
    profile: &ReferenceProfile,
    file: &str,
    label: &str,
    registry: &str,
    out: Option<&Path>,
) -> String {
    let prediction = match &profile.prediction {
        Some(p) => format!(" and prediction `{}`", p.name),
        None => String::new(),
    };
    let written = match out {
        Some(out) => format!("; wrote {}", out.display()),
        None => String::new(),
    };
    format!(
        "profiled {} rows, {} features{prediction} of {file}; stored on {label} ({registry}){written}",
        profile.rows,
        profile.features.len()
    )
}
