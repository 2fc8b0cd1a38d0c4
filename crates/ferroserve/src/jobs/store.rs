//! Where `ferroserve jobs` finds jobs: a server's job API, or the
//! registry of a data dir opened directly (read as the server shows jobs).

use anyhow::{bail, Context};
use ferroserve_jobs::JobStatus;
use ferroserve_registry::{JobFilter, Registry};
use reqwest::Method;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::api_client::{segment, ApiClient};
use crate::models::RegistryArgs;
use crate::registry::Access;

/// Job operations, each answering jobs as the API shows them.
pub trait JobStore {
    /// Jobs matching `filter`, newest first.
    fn list(&self, filter: &JobFilter) -> anyhow::Result<Vec<Value>>;
    /// One job.
    fn show(&self, id: &str) -> anyhow::Result<Value>;
    /// Cancels a job; answers it as it is afterwards.
    fn cancel(&self, id: &str) -> anyhow::Result<Value>;
}

/// The jobs of a server.
pub struct RemoteJobs {
    client: ApiClient,
}

impl RemoteJobs {
    /// The jobs of the server at `url`, changed as the CLI's key.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(RemoteJobs {
            client: ApiClient::new(url)?,
        })
    }
}

impl JobStore for RemoteJobs {
    fn list(&self, filter: &JobFilter) -> anyhow::Result<Vec<Value>> {
        let mut query = vec![("limit", filter.limit.to_string())];
        if let Some(state) = filter.state {
            query.push(("state", state.to_string()));
        }
        if let Some(model) = &filter.model {
            query.push(("model", model.clone()));
        }
        let answer: Value = self
            .client
            .call(Method::GET, "/api/v1/jobs", |r| r.query(&query))?;
        match answer["jobs"].as_array() {
            Some(jobs) => Ok(jobs.clone()),
            None => bail!("the server's job list has no \"jobs\""),
        }
    }

    fn show(&self, id: &str) -> anyhow::Result<Value> {
        self.client.get(&format!("/api/v1/jobs/{}", segment(id)))
    }

    fn cancel(&self, id: &str) -> anyhow::Result<Value> {
        self.client.call(
            Method::DELETE,
            &format!("/api/v1/jobs/{}", segment(id)),
            |r| r,
        )
    }
}

/// The jobs of a data dir's registry.
pub struct DirectJobs {
    runtime: Runtime,
    registry: Registry,
    actor: String,
}

impl DirectJobs {
    /// Opens the registry `args` names; a data dir without a registry is
    /// an error (it is not created).
    pub fn open(args: &RegistryArgs) -> anyhow::Result<Self> {
        let settings = args.settings();
        settings.check_exists()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let registry = runtime
            .block_on(Registry::connect(&settings.registry_url(Access::Existing)))
            .context("cannot open the registry")?;
        Ok(DirectJobs {
            runtime,
            registry,
            actor: args.actor(),
        })
    }
}

/// A job as the API shows it.
fn shown(job: ferroserve_registry::Job) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(JobStatus::new(job, None))?)
}

impl JobStore for DirectJobs {
    fn list(&self, filter: &JobFilter) -> anyhow::Result<Vec<Value>> {
        let jobs = self.runtime.block_on(self.registry.list_jobs(filter))?;
        jobs.into_iter().map(shown).collect()
    }

    fn show(&self, id: &str) -> anyhow::Result<Value> {
        let job = self.runtime.block_on(self.registry.job(id))?;
        shown(job)
    }

    fn cancel(&self, id: &str) -> anyhow::Result<Value> {
        let job = self
            .runtime
            .block_on(self.registry.cancel_job(id, &self.actor))?;
        shown(job)
    }
}
