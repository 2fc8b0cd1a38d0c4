//! The bundled iris example, compiled into the binary so that `ferroserve
//! serve` answers out of the box: on first start (an empty registry) it is
//! registered as `iris` version 1 and promoted to Production.

use std::collections::BTreeMap;

use anyhow::Context;
use ferroserve_core::FeatureSchema;
use ferroserve_registry::{Stage, VersionMeta};
use ferroserve_serving::lifecycle::{Lifecycle, RegisterVersion, SERVER_ACTOR};

const MODEL: &[u8] = include_bytes!("../../../examples/iris/model.onnx");
const FEATURES: &str = include_str!("../../../examples/iris/features.json");
const CARD: &str = include_str!("../../../examples/iris/README.md");
/// Made from examples/iris/iris.csv by `ferroserve profile` (see the README).
const PROFILE: &str = include_str!("../../../examples/iris/profile.json");

/// Registers the iris example in Production when the registry holds no
/// model yet; does nothing otherwise.
pub async fn seed_registry(lifecycle: &Lifecycle) -> anyhow::Result<()> {
    let registry = lifecycle.registry();
    if !registry
        .list_models()
        .await
        .context("cannot list registered models")?
        .is_empty()
    {
        return Ok(());
    }
    let artifact = lifecycle
        .upload(MODEL, None)
        .await
        .context("cannot store the bundled iris model")?;
    let request = RegisterVersion {
        artifact_digest: artifact.sha256,
        description: Some("Iris flower classifier (the bundled example)".to_owned()),
        meta: VersionMeta {
            feature_schema: Some(
                FeatureSchema::from_json(FEATURES).context("bundled iris feature schema")?,
            ),
            params: BTreeMap::from([
                ("estimator".to_owned(), "RandomForestClassifier".to_owned()),
                ("n_estimators".to_owned(), "10".to_owned()),
                ("max_depth".to_owned(), "4".to_owned()),
                ("random_state".to_owned(), "0".to_owned()),
            ]),
            model_card: Some(CARD.to_owned()),
            reference_profile: Some(
                serde_json::from_str(PROFILE).context("bundled iris reference profile")?,
            ),
            ..VersionMeta::default()
        },
        stage: Some(Stage::Production),
        ..RegisterVersion::default()
    };
    let version = lifecycle
        .register("iris", request, SERVER_ACTOR)
        .await
        .context("cannot register the bundled iris model")?;
    tracing::info!(
        model = "iris",
        version = version.version,
        "registered the bundled example"
    );
    Ok(())
}
