//! Registry changes that move what a model serves (stages, aliases,
//! rollback, version deletes, serving configs), each checked against the
//! model's serving plan before it is written: none leaves a model with
//! nothing to serve unless the caller asks to unload it, and none swaps in
//! a version with another interface unless the serving config allows it.

use ferroserve_core::secrets::restore_serving_config_secrets;
use ferroserve_registry::{ModelVersion, ServingConfigRevision, Stage};
use serde_json::Value;

use super::config::ModelServingConfig;
use super::plan::{ServingChange, ServingPlan, WhenNothingServes};
use super::register::Lifecycle;
use crate::error::{Result, ServingError};

impl Lifecycle {
    /// What the registry says `model` should serve: its versions, aliases
    /// and serving config.
    pub async fn plan(&self, model: &str) -> Result<ServingPlan> {
        let registry = self.registry();
        let versions = registry.list_versions(model).await?;
        let aliases = registry.aliases(model).await?;
        let (config, _) = self.serving_config(model).await?;
        Ok(ServingPlan {
            versions,
            aliases,
            config,
        })
    }

    /// The plan of `model`, or `None` when no such model is registered.
    pub(crate) async fn plan_if_registered(&self, model: &str) -> Result<Option<ServingPlan>> {
        match self.registry().get_model(model).await {
            Ok(_) => self.plan(model).await.map(Some),
            Err(ferroserve_registry::RegistryError::ModelNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `version` of `model` to `stage` once the plan check passes.
    pub async fn transition_stage(
        &self,
        model: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        when_nothing: WhenNothingServes,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.registry().get_version(model, version).await?;
        let change = ServingChange::Stage {
            version,
            stage,
            archive_existing,
        };
        self.plan(model)
            .await?
            .check(model, &change, when_nothing)?;
        Ok(self
            .registry()
            .transition_stage(model, version, stage, archive_existing, actor)
            .await?)
    }

    /// Moves Production back to the version that was in Production before
    /// the current one (the current one is archived), once the plan check
    /// passes: a rollback to a version with another interface is refused.
    pub async fn rollback(&self, model: &str, actor: &str) -> Result<ModelVersion> {
        let target = self.registry().rollback_target(model).await?.ok_or_else(|| {
            ServingError::conflict(format!(
                "model '{model}' has no earlier Production version that is still ready to roll back to"
            ))
        })?;
        self.transition_stage(
            model,
            target,
            Stage::Production,
            true,
            WhenNothingServes::Refuse,
            actor,
        )
        .await
    }

    /// Points `alias` of `model` at `version` once the plan check passes.
    pub async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        actor: &str,
    ) -> Result<()> {
        self.registry().get_version(model, version).await?;
        let change = ServingChange::SetAlias { alias, version };
        self.plan(model)
            .await?
            .check(model, &change, WhenNothingServes::Refuse)?;
        Ok(self
            .registry()
            .set_alias(model, alias, version, actor)
            .await?)
    }

    /// Removes `alias` of `model` once the plan check passes.
    pub async fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        when_nothing: WhenNothingServes,
        actor: &str,
    ) -> Result<()> {
        let change = ServingChange::DeleteAlias(alias);
        self.plan(model)
            .await?
            .check(model, &change, when_nothing)?;
        Ok(self.registry().delete_alias(model, alias, actor).await?)
    }

    /// Deletes `version` of `model` once the plan check passes.
    pub async fn delete_version(
        &self,
        model: &str,
        version: i64,
        when_nothing: WhenNothingServes,
        actor: &str,
    ) -> Result<()> {
        self.registry().get_version(model, version).await?;
        let change = ServingChange::DeleteVersion(version);
        self.plan(model)
            .await?
            .check(model, &change, when_nothing)?;
        Ok(self
            .registry()
            .delete_version(model, version, actor)
            .await?)
    }

    /// Checks and stores a new revision of `model`'s serving config: it
    /// must parse, its webhook must reach a public or allowed host (see
    /// [`Lifecycle::with_webhook_allow`]), and it must pass the plan check
    /// against the registry. Webhook secrets sent redacted (`"***"`) keep
    /// their stored values.
    pub async fn set_serving_config(
        &self,
        model: &str,
        mut config: Value,
        when_nothing: WhenNothingServes,
        actor: &str,
    ) -> Result<ServingConfigRevision> {
        self.registry().get_model(model).await?;
        let stored = self.registry().serving_config(model).await?;
        restore_serving_config_secrets(&mut config, stored.as_ref().map(|r| &r.config))
            .map_err(ServingError::Invalid)?;
        let parsed = ModelServingConfig::from_value(&config)?;
        if let Some(webhook) = &parsed.monitoring.webhook {
            webhook
                .check_target(self.webhook_allow())
                .await
                .map_err(|e| {
                    ServingError::Invalid(format!("serving config: monitoring.webhook: {e}"))
                })?;
        }
        if !parsed.traffic.split.is_empty() {
            if let Some(rollout) = self.registry().active_rollout(model).await? {
                return Err(ServingError::conflict(format!(
                    "model '{model}' is rolling out version {} (rollout {}, {}); a static \
                     traffic split would fight it. Finish or abort the rollout first",
                    rollout.canary_version,
                    rollout.id,
                    rollout.state.as_str()
                )));
            }
        }
        let change = ServingChange::Config(&parsed);
        self.plan(model)
            .await?
            .check(model, &change, when_nothing)?;
        Ok(self
            .registry()
            .set_serving_config(model, config, actor)
            .await?)
    }

    /// The current serving config of `model` and its revision (`{}` and
    /// `None` when none was ever set).
    pub async fn serving_config(&self, model: &str) -> Result<(ModelServingConfig, Option<i64>)> {
        match self.registry().serving_config(model).await? {
            Some(revision) => Ok((
                ModelServingConfig::from_value(&revision.config)?,
                Some(revision.revision),
            )),
            None => Ok((ModelServingConfig::default(), None)),
        }
    }
}
