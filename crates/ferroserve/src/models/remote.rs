//! Remote mode: the server's management API (`/api/v1/...`) through an
//! [`ApiClient`].

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use ferroserve_registry::{
    AuditFilter, AuditOrder, AuditPage, ModelVersion, RegisteredModel, Stage,
};
use ferroserve_serving::lifecycle::{ArtifactInfo, RegisterVersion};
use reqwest::blocking::Body;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::FaultChange;
use super::files::file_sha256;
use super::store::{Changed, ConfigRevision, ModelDetail, ModelStore};
use crate::api_client::{segment, ApiClient};

/// A server's management API.
pub struct RemoteModels {
    api: ApiClient,
}

/// `{"version": ModelVersion, "serving": ServingStatus}`.
#[derive(Deserialize)]
struct VersionAnswer {
    version: ModelVersion,
    serving: Option<Value>,
}

impl RemoteModels {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(RemoteModels {
            api: ApiClient::new(base)?,
        })
    }

    fn version_change(&self, path: &str, body: &Value) -> anyhow::Result<Changed<ModelVersion>> {
        let answer: VersionAnswer = self.api.send_json(Method::POST, path, body)?;
        Ok(Changed {
            value: answer.version,
            serving: answer.serving,
        })
    }
}

impl ModelStore for RemoteModels {
    fn upload(&self, path: &Path) -> anyhow::Result<ArtifactInfo> {
        // The digest lets the server refuse bytes damaged on the way.
        let sha256 = file_sha256(path)?;
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        self.api
            .call(
                Method::POST,
                &format!("/api/v1/artifacts?sha256={sha256}"),
                |r| {
                    r.header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(Body::from(file))
                },
            )
            .with_context(|| format!("cannot upload {}", path.display()))
    }

    fn register(
        &self,
        model: &str,
        request: &RegisterVersion,
    ) -> anyhow::Result<Changed<ModelVersion>> {
        let body = serde_json::to_value(request)?;
        self.version_change(
            &format!("/api/v1/models/{}/versions", segment(model)),
            &body,
        )
    }

    fn list(&self) -> anyhow::Result<Vec<RegisteredModel>> {
        #[derive(Deserialize)]
        struct Answer {
            models: Vec<RegisteredModel>,
        }
        Ok(self.api.get::<Answer>("/api/v1/models")?.models)
    }

    fn model(&self, model: &str) -> anyhow::Result<ModelDetail> {
        #[derive(Deserialize)]
        struct ModelAnswer {
            #[serde(flatten)]
            model: RegisteredModel,
            #[serde(default)]
            aliases: std::collections::BTreeMap<String, i64>,
        }
        #[derive(Deserialize)]
        struct VersionsAnswer {
            versions: Vec<ModelVersion>,
        }
        let path = format!("/api/v1/models/{}", segment(model));
        let answer: ModelAnswer = self.api.get(&path)?;
        let versions: VersionsAnswer = self.api.get(&format!("{path}/versions"))?;
        Ok(ModelDetail {
            model: answer.model,
            aliases: answer.aliases,
            versions: versions.versions,
        })
    }

    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion> {
        self.api.get(&format!(
            "/api/v1/models/{}/versions/{version}",
            segment(model)
        ))
    }

    fn promote(
        &self,
        model: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        unload: bool,
    ) -> anyhow::Result<Changed<ModelVersion>> {
        self.version_change(
            &format!(
                "/api/v1/models/{}/versions/{version}/stage{}",
                segment(model),
                unload_query(unload)
            ),
            &json!({"stage": stage, "archive_existing": archive_existing}),
        )
    }

    fn set_alias(&self, model: &str, alias: &str, version: i64) -> anyhow::Result<Changed<()>> {
        let answer: Value = self.api.send_json(
            Method::PUT,
            &format!(
                "/api/v1/models/{}/aliases/{}",
                segment(model),
                segment(alias)
            ),
            &json!({ "version": version }),
        )?;
        Ok(serving_only(answer))
    }

    fn delete_alias(&self, model: &str, alias: &str, unload: bool) -> anyhow::Result<Changed<()>> {
        let answer: Value = self.api.call(
            Method::DELETE,
            &format!(
                "/api/v1/models/{}/aliases/{}{}",
                segment(model),
                segment(alias),
                unload_query(unload)
            ),
            |r| r,
        )?;
        Ok(serving_only(answer))
    }

    fn rollback(&self, model: &str) -> anyhow::Result<Changed<ModelVersion>> {
        self.version_change(
            &format!("/api/v1/models/{}/rollback", segment(model)),
            &json!({}),
        )
    }

    fn history_page(&self, model: &str, filter: &AuditFilter) -> anyhow::Result<AuditPage> {
        let order = match filter.order {
            AuditOrder::Asc => "asc",
            AuditOrder::Desc => "desc",
        };
        let mut query = format!("order={order}");
        let params = [
            ("since", filter.since),
            ("after_id", filter.after_id),
            ("before_id", filter.before_id),
            ("limit", filter.limit),
        ];
        for (name, value) in params {
            if let Some(value) = value {
                query += &format!("&{name}={value}");
            }
        }
        self.api.get(&format!(
            "/api/v1/models/{}/history?{query}",
            segment(model)
        ))
    }

    fn serving(&self, model: &str) -> anyhow::Result<Option<Value>> {
        self.api
            .get(&format!("/api/v1/models/{}/serving", segment(model)))
            .map(Some)
    }

    fn delete_model(&self, model: &str) -> anyhow::Result<()> {
        self.api.send(
            &Method::DELETE,
            &format!("/api/v1/models/{}", segment(model)),
            |r| r,
        )?;
        Ok(())
    }

    fn rename_model(&self, model: &str, new_name: &str) -> anyhow::Result<RegisteredModel> {
        self.api.send_json(
            Method::POST,
            &format!("/api/v1/models/{}/rename", segment(model)),
            &json!({ "name": new_name }),
        )
    }

    fn serving_config(&self, model: &str) -> anyhow::Result<ConfigRevision> {
        self.api
            .get(&format!("/api/v1/models/{}/serving-config", segment(model)))
    }

    fn set_serving_config(
        &self,
        model: &str,
        config: Value,
        unload: bool,
    ) -> anyhow::Result<Changed<ConfigRevision>> {
        let mut answer: Value = self.api.send_json(
            Method::PUT,
            &format!(
                "/api/v1/models/{}/serving-config{}",
                segment(model),
                unload_query(unload)
            ),
            &config,
        )?;
        let serving = answer.get_mut("serving").map(Value::take);
        // The answer holds the stored revision (`{"revision": {...}}`),
        // or its number and config side by side.
        let stored = match answer.get_mut("revision").map(Value::take) {
            Some(Value::Object(revision)) => Value::Object(revision),
            Some(number) => json!({"revision": number, "config": answer["config"].take()}),
            None => Value::Null,
        };
        let value: ConfigRevision = serde_json::from_value(stored)
            .context("the server's answer to a serving-config change has no revision and config")?;
        Ok(Changed { value, serving })
    }

    fn faults(&self, model: &str, version: &str, change: &FaultChange) -> anyhow::Result<Value> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/faults",
            segment(model),
            segment(version)
        );
        match change {
            FaultChange::Show => self.api.get(&path),
            FaultChange::Set(spec) => self.api.send_json(Method::PUT, &path, spec),
            FaultChange::Clear => self.api.call(Method::DELETE, &path, |r| r),
        }
    }
}

/// An answer whose only interesting part is the serving status.
fn serving_only(mut answer: Value) -> Changed<()> {
    Changed {
        value: (),
        serving: answer.get_mut("serving").map(Value::take),
    }
}

/// The query that allows a change to leave a model with nothing to serve.
fn unload_query(unload: bool) -> &'static str {
    if unload {
        "?unload=true"
    } else {
        ""
    }
}
