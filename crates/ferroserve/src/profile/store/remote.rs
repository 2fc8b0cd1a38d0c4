//! Remote mode: a server's management API, through the client of
//! `ferroserve models`. Versions come from
//! `GET /api/v1/models/{m}/versions[/{v}]`, the artifact from
//! `GET .../versions/{v}/artifact`, and the profile goes to
//! `PUT .../versions/{v}/profile`.

use anyhow::bail;
use ferroserve_registry::ModelVersion;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::VersionStore;
use crate::api_client::{segment, ApiClient};

/// A server's management API.
pub(super) struct RemoteStore {
    api: ApiClient,
}

impl RemoteStore {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub(super) fn new(base: &str) -> anyhow::Result<Self> {
        Ok(RemoteStore {
            api: ApiClient::new(base)?,
        })
    }

    fn version_path(model: &str, version: i64) -> String {
        format!("/api/v1/models/{}/versions/{version}", segment(model))
    }
}

impl VersionStore for RemoteStore {
    fn versions(&self, model: &str) -> anyhow::Result<Vec<ModelVersion>> {
        #[derive(Deserialize)]
        struct Answer {
            versions: Vec<ModelVersion>,
        }
        let answer: Answer = self
            .api
            .get(&format!("/api/v1/models/{}/versions", segment(model)))?;
        Ok(answer.versions)
    }

    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion> {
        self.api.get(&Self::version_path(model, version))
    }

    fn artifact(&self, version: &ModelVersion) -> anyhow::Result<Vec<u8>> {
        let path = format!(
            "{}/artifact",
            Self::version_path(&version.model, version.version)
        );
        let bytes = self.api.get_bytes(&path)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if digest != version.artifact_digest {
            bail!(
                "the artifact of {} version {} arrived damaged: sha256 {digest}, expected {}",
                version.model,
                version.version,
                version.artifact_digest
            );
        }
        Ok(bytes)
    }

    fn store_profile(&self, version: &ModelVersion, profile: &Value) -> anyhow::Result<()> {
        let path = format!(
            "{}/profile",
            Self::version_path(&version.model, version.version)
        );
        self.api.put_json_no_content(&path, profile)
    }

    fn describe(&self) -> String {
        self.api.base().to_owned()
    }
}
