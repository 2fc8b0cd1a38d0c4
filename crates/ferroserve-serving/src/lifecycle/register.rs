//! Registration of model versions: store the artifact, prove it loads and
//! read its signature, check the feature schema against it, then record a
//! version that is ready from its first moment.

use std::sync::Arc;

use ferroserve_backend::{EngineChoice, Engines, LoadOptions, ModelSource};
use ferroserve_core::{Dim, FeatureSchema, ModelSignature};
use ferroserve_monitor::webhook_target::WebhookAllowList;
use ferroserve_registry::{
    ArtifactStore, ModelVersion, NewVersion, Registry, RegistryError, Stage, Tags,
    VerifiedArtifact, VersionMeta,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Result, ServingError};

/// An artifact stored and checked by [`Lifecycle::upload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// sha256 of the bytes, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Artifact format (`onnx`).
    pub format: String,
    /// Inputs and outputs read from the file.
    pub signature: ModelSignature,
}

/// What a client sends to register a version of an uploaded artifact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterVersion {
    /// sha256 of an artifact uploaded before (`artifact_sha256` on the wire).
    #[serde(rename = "artifact_sha256")]
    pub artifact_digest: String,
    /// Description of the model, used when this registration creates it.
    pub description: Option<String>,
    /// Preferred engine (`onnxruntime` or `tract`).
    pub engine: Option<EngineChoice>,
    /// Feature schema, params, metrics, lineage, model card, reference
    /// profile and tags of the version.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// Stage to move the version to right away (others in it are archived).
    pub stage: Option<Stage>,
}

/// Registry, artifact store and engines together: the operations of the
/// model lifecycle that span more than one of them.
pub struct Lifecycle {
    registry: Registry,
    artifacts: ArtifactStore,
    engines: Arc<Engines>,
    /// Most input bytes one request may carry: an artifact whose single
    /// row needs more is refused.
    max_input_bytes: usize,
    webhook_allow: WebhookAllowList,
    /// Bounds the artifacts read whole at once (digest checks, engine
    /// loads), so parallel uploads or downloads of large models cannot
    /// exhaust memory or disk bandwidth together.
    artifact_slots: Arc<Semaphore>,
}

/// How many artifacts are hashed or loaded by an engine at once.
pub const ARTIFACT_SLOTS: usize = 2;

impl Lifecycle {
    /// Combines a connected registry, its artifact store and the engines
    /// used to check artifacts.
    pub fn new(registry: Registry, artifacts: ArtifactStore, engines: Arc<Engines>) -> Self {
        Lifecycle {
            registry,
            artifacts,
            engines,
            max_input_bytes: crate::DEFAULT_MAX_INPUT_BYTES,
            webhook_allow: WebhookAllowList::default(),
            artifact_slots: Arc::new(Semaphore::new(ARTIFACT_SLOTS)),
        }
    }

    /// Sets the most input bytes one request may carry (the server's body
    /// limit); uploads and registrations of artifacts whose single row
    /// needs more are refused.
    pub fn with_max_input_bytes(mut self, max_input_bytes: usize) -> Self {
        self.max_input_bytes = max_input_bytes;
        self
    }

    /// Lets serving configs send alerts to the internal hosts and networks
    /// of `allow` (by default webhooks reach public addresses only).
    pub fn with_webhook_allow(mut self, allow: WebhookAllowList) -> Self {
        self.webhook_allow = allow;
        self
    }

    /// Internal hosts and networks webhooks may reach.
    pub fn webhook_allow(&self) -> &WebhookAllowList {
        &self.webhook_allow
    }

    /// Waits for one of the [`ARTIFACT_SLOTS`]; hold it while an artifact
    /// is hashed or loaded.
    pub async fn artifact_slot(&self) -> Result<OwnedSemaphorePermit> {
        self.artifact_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServingError::CheckLost("the artifact slots were closed".to_owned()))
    }

    /// Checks, streaming and within an artifact slot, that the blob of
    /// `digest` still holds its bytes, and hands it out as a local file to
    /// stream or load from.
    pub async fn fetch_artifact(&self, digest: &str) -> Result<VerifiedArtifact> {
        let _slot = self.artifact_slot().await?;
        Ok(self.artifacts.fetch_verified(digest).await?)
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The engines artifacts are checked and served with.
    pub fn engines(&self) -> &Arc<Engines> {
        &self.engines
    }

    /// Stores an artifact and checks that an engine loads it. An artifact
    /// that does not load is removed again (unless a version already uses
    /// the same bytes) and refused with the engine's reason.
    pub async fn upload<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        expected_sha256: Option<&str>,
    ) -> Result<ArtifactInfo> {
        let sha256 = match expected_sha256 {
            Some(expected) => {
                self.artifacts.put_verified(reader, expected).await?;
                expected.to_owned()
            }
            None => self.artifacts.put_stream(reader).await?.0,
        };
        match self.inspect(&sha256, None).await {
            Ok(info) => Ok(info),
            Err(e) => {
                if !self.registry.referenced_digests().await?.contains(&sha256) {
                    self.artifacts.delete(&sha256).await?;
                }
                Err(e)
            }
        }
    }

    /// Loads a stored artifact with `engine` (default: the best available)
    /// and reads its signature; the artifact's digest is checked first. A
    /// signature whose single row needs more than a request body may carry
    /// is refused.
    pub async fn inspect(
        &self,
        sha256: &str,
        engine: Option<EngineChoice>,
    ) -> Result<ArtifactInfo> {
        if sha256.is_empty() {
            return Err(ServingError::invalid(
                "artifact_sha256 is required: upload the artifact first (POST /api/v1/artifacts)",
            ));
        }
        let _slot = self.artifact_slot().await?;
        let artifact = self.artifacts.fetch_verified(sha256).await?;
        let size = artifact.size();
        let engines = self.engines.clone();
        let choice = engine.unwrap_or(EngineChoice::Auto);
        let artifact_digest = sha256.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            // `artifact` keeps a remote blob's local copy until the load is done.
            let source = ModelSource::Artifact {
                digest: artifact_digest,
                path: artifact.path().to_owned(),
            };
            engines.load(choice, &source, &LoadOptions::default())
        })
        .await
        .map_err(|e| ServingError::CheckLost(e.to_string()))?
        .map_err(|source| ServingError::ArtifactUnloadable {
            digest: sha256.to_owned(),
            engine: choice,
            source,
        })?;
        loaded
            .signature()
            .check_sample_fits(self.max_input_bytes)
            .map_err(|e| ServingError::invalid(format!("artifact {sha256}: {}", e.message)))?;
        Ok(ArtifactInfo {
            sha256: sha256.to_owned(),
            size,
            format: "onnx".to_owned(),
            signature: loaded.signature().clone(),
        })
    }

    /// Registers a version of `model` (creating the model when it is new)
    /// from an uploaded artifact. The artifact is loaded to read its
    /// signature and the feature schema is checked against it before
    /// anything is written; the version is `ready` from the start.
    pub async fn register(
        &self,
        model: &str,
        request: RegisterVersion,
        actor: &str,
    ) -> Result<ModelVersion> {
        if request.stage == Some(Stage::Archived) {
            return Err(ServingError::invalid(
                "a new version cannot be registered straight into Archived",
            ));
        }
        let artifact = self
            .inspect(&request.artifact_digest, request.engine)
            .await?;
        if let Some(schema) = &request.meta.feature_schema {
            check_feature_schema(schema, &artifact.signature)?;
        }
        if let Some(profile) = &request.meta.reference_profile {
            check_profile(profile)?;
        }
        if let Some(plan) = self.plan_if_registered(model).await? {
            plan.check_new_version(model, &artifact.signature, request.stage)?;
        }
        self.ensure_model(model, request.description.as_deref(), actor)
            .await?;
        let new = NewVersion {
            artifact_digest: request.artifact_digest,
            artifact_size: i64::try_from(artifact.size)
                .map_err(|_| ServingError::invalid("artifact too large"))?,
            format: artifact.format,
            engine_hint: request.engine,
            signature: Some(artifact.signature),
            meta: request.meta,
        };
        let version = self
            .registry
            .create_ready_version(model, new, actor)
            .await?;
        match request.stage {
            Some(stage) if stage != Stage::None => Ok(self
                .registry
                .transition_stage(model, version.version, stage, true, actor)
                .await?),
            _ => Ok(version),
        }
    }

    /// Checks `profile` and stores it as the reference profile of `model`
    /// version `version` (what drift monitoring compares traffic with).
    pub async fn set_reference_profile(
        &self,
        model: &str,
        version: i64,
        profile: Value,
        actor: &str,
    ) -> Result<ModelVersion> {
        check_profile(&profile)?;
        Ok(self
            .registry
            .set_reference_profile(model, version, Some(profile), actor)
            .await?)
    }

    async fn ensure_model(
        &self,
        model: &str,
        description: Option<&str>,
        actor: &str,
    ) -> Result<()> {
        match self.registry.get_model(model).await {
            Ok(_) => Ok(()),
            Err(RegistryError::ModelNotFound(_)) => {
                let created = self
                    .registry
                    .create_model(model, description.unwrap_or(""), Tags::new(), actor)
                    .await;
                match created {
                    // Another registration created it meanwhile.
                    Ok(_) | Err(RegistryError::ModelExists(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Checks that a feature schema names each feature once and one feature
/// per column of the model's single two-dimensional input.
pub fn check_feature_schema(schema: &FeatureSchema, signature: &ModelSignature) -> Result<()> {
    schema.check()?;
    let [input] = signature.inputs.as_slice() else {
        return Err(ServingError::invalid(format!(
            "feature_schema needs a model with one input; this one has {}",
            signature.inputs.len()
        )));
    };
    match input.shape.as_slice() {
        [_, Dim::Fixed(columns)] if *columns != schema.features.len() => {
            Err(ServingError::invalid(format!(
                "feature_schema lists {} features but input '{}' has {columns} columns",
                schema.features.len(),
                input.name
            )))
        }
        [_, _] => Ok(()),
        shape => Err(ServingError::invalid(format!(
            "feature_schema needs a [rows, columns] input; input '{}' has shape {}",
            input.name,
            ferroserve_core::signature::format_shape(shape)
        ))),
    }
}

/// A reference profile must be one `ferroserve profile` would write: the
/// monitor bins and compares live traffic with it.
fn check_profile(profile: &Value) -> Result<()> {
    ferroserve_monitor::profile::ReferenceProfile::from_json(profile)
        .map(|_| ())
        .map_err(|e| ServingError::invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn artifact_reads_wait_for_a_free_slot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let registry = Registry::connect(&url).await.expect("registry");
        let artifacts = ArtifactStore::Local(ferroserve_registry::LocalArtifactStore::new(
            dir.path().join("artifacts"),
        ));
        let (digest, _) = artifacts
            .put_stream(&b"model bytes"[..])
            .await
            .expect("stored");
        let lifecycle = Lifecycle::new(registry, artifacts, Arc::new(Engines::discover(None)));

        let mut held = Vec::new();
        for _ in 0..ARTIFACT_SLOTS {
            held.push(lifecycle.artifact_slot().await.expect("a slot"));
        }
        assert!(
            lifecycle.fetch_artifact(&digest).now_or_never().is_none(),
            "every slot is taken: the read waits"
        );
        held.pop();
        let artifact = lifecycle.fetch_artifact(&digest).await.expect("read");
        assert_eq!(artifact.size(), 11);
    }
}
