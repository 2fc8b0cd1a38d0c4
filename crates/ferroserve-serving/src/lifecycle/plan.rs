//! What the registry says a model should serve (its versions, aliases and
//! serving config), and the check every change of it passes before it is
//! made: the model keeps a version to serve unless the caller asks to
//! unload it, and a new serving version keeps the interface clients call.

use std::collections::BTreeMap;
use std::fmt;

use ferroserve_core::{ModelSignature, TensorSpec};
use ferroserve_registry::{ModelVersion, Stage, VersionStatus};

use super::config::{ModelServingConfig, ServeTarget};
use crate::error::{Result, ServingError};

/// A registry change that may move which version of a model serves.
#[derive(Debug, Clone)]
pub enum ServingChange<'a> {
    /// A new serving config.
    Config(&'a ModelServingConfig),
    /// An alias pointed at a version.
    SetAlias {
        /// Alias name.
        alias: &'a str,
        /// Version it points to.
        version: i64,
    },
    /// An alias removed.
    DeleteAlias(&'a str),
    /// A version moved to a stage.
    Stage {
        /// Version moved.
        version: i64,
        /// Stage it moves to.
        stage: Stage,
        /// Whether the other versions in Staging or Production are archived.
        archive_existing: bool,
    },
    /// A version deleted, with the aliases pointing at it.
    DeleteVersion(i64),
}

impl fmt::Display for ServingChange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServingChange::Config(config) => {
                write!(f, "the serving config (serve: {})", config.serve)
            }
            ServingChange::SetAlias { alias, version } => {
                write!(f, "pointing alias '{alias}' at version {version}")
            }
            ServingChange::DeleteAlias(alias) => write!(f, "deleting alias '{alias}'"),
            ServingChange::Stage { version, stage, .. } => {
                write!(f, "moving version {version} to {stage}")
            }
            ServingChange::DeleteVersion(version) => write!(f, "deleting version {version}"),
        }
    }
}

/// Whether a change may leave a model with no version to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenNothingServes {
    /// Refuse the change (the default).
    #[default]
    Refuse,
    /// Make the change and stop serving the model: the caller asked to unload it.
    Unload,
}

impl WhenNothingServes {
    /// `Unload` when the caller asked to unload, else `Refuse`.
    pub fn unload_if(asked: bool) -> Self {
        if asked {
            WhenNothingServes::Unload
        } else {
            WhenNothingServes::Refuse
        }
    }
}

/// The registry's side of serving one model.
#[derive(Debug, Clone)]
pub struct ServingPlan {
    /// Every version of the model.
    pub versions: Vec<ModelVersion>,
    /// Alias → version.
    pub aliases: BTreeMap<String, i64>,
    /// The serving config in force.
    pub config: ModelServingConfig,
}

impl ServingPlan {
    /// The version that should answer requests naming none.
    pub fn target(&self) -> Option<i64> {
        self.config.target_version(&self.versions, &self.aliases)
    }

    /// Every version to load: the target and what the version policy adds.
    pub fn wanted(&self) -> Vec<i64> {
        let mut wanted = self.config.wanted_versions(&self.versions, self.target());
        wanted.extend(
            self.config
                .traffic
                .versions()
                .into_iter()
                .filter(|n| self.is_ready(*n)),
        );
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    }

    /// Whether `version` exists and is ready.
    fn is_ready(&self, version: i64) -> bool {
        self.versions
            .iter()
            .any(|v| v.version == version && v.status == VersionStatus::Ready)
    }

    /// Why the traffic rules of `self.config` cannot be served: a version
    /// they name is missing or not ready, or (unless interface changes are
    /// allowed) a split version's interface differs from the target's.
    fn traffic_problem(&self) -> Option<String> {
        let traffic = &self.config.traffic;
        for version in traffic.versions() {
            if !self.is_ready(version) {
                let state = match self.versions.iter().find(|v| v.version == version) {
                    None => format!("does not exist ({})", self.version_list()),
                    Some(v) => format!("is {}, not ready", v.status.as_str()),
                };
                return Some(format!("traffic names version {version}, which {state}"));
            }
        }
        if self.config.allow_interface_change {
            return None;
        }
        let target = self.target()?;
        let serving = self.signature_of(target)?;
        traffic.split.iter().find_map(|arm| {
            let candidate = self.signature_of(arm.version)?;
            same_interface(&serving, &candidate)
                .err()
                .map(|difference| {
                    format!(
                        "traffic.split version {} has another interface than version {target} \
                     ({difference}); set allow_interface_change to allow it",
                        arm.version
                    )
                })
        })
    }

    /// The plan as it will be once `change` is made.
    pub fn after(&self, change: &ServingChange<'_>) -> ServingPlan {
        let mut next = self.clone();
        match change {
            ServingChange::Config(config) => next.config = (*config).clone(),
            ServingChange::SetAlias { alias, version } => {
                next.aliases.insert((*alias).to_owned(), *version);
            }
            ServingChange::DeleteAlias(alias) => {
                next.aliases.remove(*alias);
            }
            ServingChange::Stage {
                version,
                stage,
                archive_existing,
            } => {
                let archives =
                    *archive_existing && matches!(stage, Stage::Staging | Stage::Production);
                for v in &mut next.versions {
                    if v.version == *version {
                        v.stage = *stage;
                    } else if archives && v.stage == *stage {
                        v.stage = Stage::Archived;
                    }
                }
            }
            ServingChange::DeleteVersion(version) => {
                next.versions.retain(|v| v.version != *version);
                next.aliases.retain(|_, v| v != version);
            }
        }
        next
    }

    /// Why the serving config selects no version, e.g. "alias 'nope' does
    /// not exist (aliases: champion → 2)".
    pub fn why_nothing_serves(&self) -> String {
        let version_state = |number: i64| match self.versions.iter().find(|v| v.version == number) {
            None => format!("version {number} does not exist ({})", self.version_list()),
            Some(v) if v.status != VersionStatus::Ready => {
                format!("version {number} is {}, not ready", v.status.as_str())
            }
            Some(_) => format!("version {number} is ready"),
        };
        match &self.config.serve {
            ServeTarget::Production => "no ready version is in Production".to_owned(),
            ServeTarget::Staging => "no ready version is in Staging".to_owned(),
            ServeTarget::Latest => "no version is ready".to_owned(),
            ServeTarget::Alias(alias) => match self.aliases.get(alias) {
                None => format!("alias '{alias}' does not exist ({})", self.alias_list()),
                Some(v) => format!("alias '{alias}' points to {}", version_state(*v)),
            },
            ServeTarget::Version(v) => version_state(*v),
        }
    }

    /// Checks `change` of `model` against this plan and returns the plan
    /// after it, or why it is refused: it would leave the model with
    /// nothing to serve (unless `when_nothing` is `Unload`), a new serving
    /// config names an alias or version that selects nothing, or the
    /// version that would serve next has another interface than the one
    /// serving now (unless the config allows interface changes).
    pub fn check(
        &self,
        model: &str,
        change: &ServingChange<'_>,
        when_nothing: WhenNothingServes,
    ) -> Result<ServingPlan> {
        let after = self.after(change);
        if let ServingChange::Config(_) = change {
            if let Some(problem) = after.traffic_problem() {
                return Err(ServingError::conflict(format!(
                    "{change} cannot serve model '{model}': {problem}"
                )));
            }
        }
        match (self.target(), after.target()) {
            (_, None) if when_nothing == WhenNothingServes::Unload => {}
            (Some(now), None) => {
                return Err(ServingError::conflict(format!(
                    "{change} would leave model '{model}' with nothing to serve: {}; it serves \
                     version {now} now. To stop serving it on purpose, ask to unload it \
                     (--unload, or unload=true in the API)",
                    after.why_nothing_serves()
                )))
            }
            (None, None) if names_a_version(change) => {
                return Err(ServingError::conflict(format!(
                    "{change} selects nothing to serve for model '{model}': {}",
                    after.why_nothing_serves()
                )))
            }
            (Some(now), Some(next)) if now != next && !after.config.allow_interface_change => {
                if let Some(difference) = self.interface_difference(now, &after, next) {
                    return Err(ServingError::conflict(format!(
                        "{change} would swap version {next} of model '{model}' in for version \
                         {now}, but its interface differs ({difference}); clients of version \
                         {now} would break. Set allow_interface_change in the serving config \
                         to allow it"
                    )));
                }
            }
            _ => {}
        }
        Ok(after)
    }

    /// Checks a version about to be registered with `signature` into
    /// `stage`: when it would serve at once (the config serves that stage,
    /// or the latest version), its interface must match the serving one.
    pub fn check_new_version(
        &self,
        model: &str,
        signature: &ModelSignature,
        stage: Option<Stage>,
    ) -> Result<()> {
        let serves_at_once = match self.config.serve {
            ServeTarget::Latest => true,
            ServeTarget::Production => stage == Some(Stage::Production),
            ServeTarget::Staging => stage == Some(Stage::Staging),
            ServeTarget::Alias(_) | ServeTarget::Version(_) => false,
        };
        let Some(now) = self.target().filter(|_| serves_at_once) else {
            return Ok(());
        };
        if self.config.allow_interface_change {
            return Ok(());
        }
        let Some(serving) = self.signature_of(now) else {
            return Ok(());
        };
        match same_interface(&serving, signature) {
            Ok(()) => Ok(()),
            Err(difference) => Err(ServingError::conflict(format!(
                "the new version of model '{model}' would serve at once in place of version \
                 {now}, but its interface differs ({difference}); clients of version {now} \
                 would break. Register it without a stage, or set allow_interface_change in \
                 the serving config to allow it"
            ))),
        }
    }

    fn interface_difference(&self, now: i64, after: &ServingPlan, next: i64) -> Option<String> {
        let serving = self.signature_of(now)?;
        let candidate = after.signature_of(next)?;
        same_interface(&serving, &candidate).err()
    }

    /// The signature recorded for `version` at registration, if any.
    fn signature_of(&self, version: i64) -> Option<ModelSignature> {
        self.versions
            .iter()
            .find(|v| v.version == version)?
            .signature
            .clone()
    }

    fn version_list(&self) -> String {
        if self.versions.is_empty() {
            return "the model has no versions".to_owned();
        }
        let numbers: Vec<String> = self
            .versions
            .iter()
            .map(|v| v.version.to_string())
            .collect();
        format!("versions: {}", numbers.join(", "))
    }

    fn alias_list(&self) -> String {
        if self.aliases.is_empty() {
            return "the model has no aliases".to_owned();
        }
        let pairs: Vec<String> = self
            .aliases
            .iter()
            .map(|(alias, v)| format!("{alias} → {v}"))
            .collect();
        format!("aliases: {}", pairs.join(", "))
    }
}

/// Whether `change` is a serving config that names one alias or version.
fn names_a_version(change: &ServingChange<'_>) -> bool {
    matches!(
        change,
        ServingChange::Config(ModelServingConfig {
            serve: ServeTarget::Alias(_) | ServeTarget::Version(_),
            ..
        })
    )
}

/// Whether a new version can take the place of the served one: the same
/// input names, types and shapes, and the served outputs still there.
pub fn same_interface(
    served: &ModelSignature,
    candidate: &ModelSignature,
) -> std::result::Result<(), String> {
    if served.inputs != candidate.inputs {
        return Err(format!(
            "inputs {} became {}",
            describe(&served.inputs),
            describe(&candidate.inputs)
        ));
    }
    for output in &served.outputs {
        match candidate.output(&output.name) {
            Some(o) if o.datatype == output.datatype => {}
            Some(o) => {
                return Err(format!(
                    "output '{}' changed from {} to {}",
                    output.name, output.datatype, o.datatype
                ))
            }
            None => return Err(format!("output '{}' is gone", output.name)),
        }
    }
    Ok(())
}

fn describe(specs: &[TensorSpec]) -> String {
    let parts: Vec<String> = specs
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s.name,
                s.datatype,
                ferroserve_core::signature::format_shape(&s.shape)
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroserve_core::{DataType, Dim};
    use serde_json::json;

    fn signature(input_columns: usize, output: DataType) -> ModelSignature {
        ModelSignature {
            inputs: vec![TensorSpec::new(
                "input",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(input_columns)],
            )],
            outputs: vec![
                TensorSpec::new("label", output, vec![Dim::Dynamic]),
                TensorSpec::new(
                    "probabilities",
                    DataType::Fp32,
                    vec![Dim::Dynamic, Dim::Fixed(3)],
                ),
            ],
        }
    }

    /// A ready version of `iris` with `columns` input columns.
    fn version(n: i64, stage: Stage, columns: usize) -> ModelVersion {
        ModelVersion {
            model: "iris".into(),
            signature: Some(signature(columns, DataType::Int64)),
            ..super::super::config::tests::version(n, stage, VersionStatus::Ready)
        }
    }

    /// iris: v1 Archived, v2 Production, v3 Staging (same interface), v4
    /// with five input columns; alias champion → 2.
    fn plan(serve: serde_json::Value) -> ServingPlan {
        ServingPlan {
            versions: vec![
                version(1, Stage::Archived, 4),
                version(2, Stage::Production, 4),
                version(3, Stage::Staging, 4),
                version(4, Stage::None, 5),
            ],
            aliases: BTreeMap::from([("champion".to_owned(), 2)]),
            config: ModelServingConfig::from_value(&json!({ "serve": serve })).expect("valid"),
        }
    }

    fn config(value: serde_json::Value) -> ModelServingConfig {
        ModelServingConfig::from_value(&value).expect("valid")
    }

    fn refused(plan: &ServingPlan, change: ServingChange<'_>) -> String {
        plan.check("iris", &change, WhenNothingServes::Refuse)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn configs_selecting_nothing_are_refused_naming_what_is_missing() {
        let plan = plan(json!("production"));
        let nope = config(json!({"serve": {"alias": "nope"}}));
        let err = refused(&plan, ServingChange::Config(&nope));
        assert!(
            err.contains("alias 'nope' does not exist (aliases: champion → 2)"),
            "{err}"
        );
        assert!(err.contains("serves version 2 now"), "{err}");
        let pinned = config(json!({"serve": {"version": 99}}));
        let err = refused(&plan, ServingChange::Config(&pinned));
        assert!(
            err.contains("version 99 does not exist (versions: 1, 2, 3, 4)"),
            "{err}"
        );
        let empty = ServingPlan {
            versions: vec![version(2, Stage::Production, 4)],
            ..plan.clone()
        };
        let staging = config(json!({"serve": "staging"}));
        let err = refused(&empty, ServingChange::Config(&staging));
        assert!(err.contains("no ready version is in Staging"), "{err}");
        // Asked for on purpose, the same change goes through.
        let after = plan
            .check(
                "iris",
                &ServingChange::Config(&nope),
                WhenNothingServes::Unload,
            )
            .expect("unload asked");
        assert_eq!(after.target(), None);
    }

    #[test]
    fn traffic_rules_name_ready_versions_with_the_served_interface() {
        let plan = plan(json!("production"));
        let split = |arms: serde_json::Value| {
            config(json!({"serve": "production", "traffic": {"split": arms}}))
        };
        let missing = split(json!([{"version": 2, "weight": 1}, {"version": 9, "weight": 1}]));
        let err = refused(&plan, ServingChange::Config(&missing));
        assert!(
            err.contains("traffic names version 9, which does not exist"),
            "{err}"
        );
        let other_interface =
            split(json!([{"version": 2, "weight": 1}, {"version": 4, "weight": 1}]));
        let err = refused(&plan, ServingChange::Config(&other_interface));
        assert!(
            err.contains("traffic.split version 4 has another interface"),
            "{err}"
        );
        let shadow = config(json!({"traffic": {"shadow": {"version": 4, "percent": 5}}}));
        let after = plan
            .check(
                "iris",
                &ServingChange::Config(&shadow),
                WhenNothingServes::Refuse,
            )
            .expect("a shadow may have another interface: it only gets copies");
        assert_eq!(
            after.wanted(),
            vec![2, 4],
            "the shadow version is loaded too"
        );
        let good = split(json!([{"version": 2, "weight": 1}, {"version": 3, "weight": 1}]));
        let after = plan
            .check(
                "iris",
                &ServingChange::Config(&good),
                WhenNothingServes::Refuse,
            )
            .expect("ready versions with the same interface");
        assert_eq!(after.wanted(), vec![2, 3]);
    }

    #[test]
    fn a_typo_is_refused_even_when_nothing_serves_yet() {
        let mut plan = plan(json!("production"));
        plan.versions.retain(|v| v.stage != Stage::Production);
        assert_eq!(plan.target(), None);
        let nope = config(json!({"serve": {"alias": "nope"}}));
        let err = refused(&plan, ServingChange::Config(&nope));
        assert!(err.contains("selects nothing to serve"), "{err}");
        // Waiting for a first Production version is fine.
        let tuned = config(json!({"engine": "tract"}));
        plan.check(
            "iris",
            &ServingChange::Config(&tuned),
            WhenNothingServes::Refuse,
        )
        .expect("nothing served before, nothing after, no name given");
    }

    #[test]
    fn removing_what_the_config_names_is_refused() {
        let champion = plan(json!({"alias": "champion"}));
        let err = refused(&champion, ServingChange::DeleteAlias("champion"));
        assert!(
            err.starts_with("deleting alias 'champion' would leave"),
            "{err}"
        );
        let err = refused(&champion, ServingChange::DeleteVersion(2));
        assert!(err.contains("alias 'champion' does not exist"), "{err}");
        let production = plan(json!("production"));
        let archive = ServingChange::Stage {
            version: 2,
            stage: Stage::Archived,
            archive_existing: true,
        };
        let err = refused(&production, archive);
        assert!(err.contains("no ready version is in Production"), "{err}");
        let staging = plan(json!("staging"));
        let promote = ServingChange::Stage {
            version: 3,
            stage: Stage::Production,
            archive_existing: true,
        };
        let err = refused(&staging, promote.clone());
        assert!(err.contains("no ready version is in Staging"), "{err}");
        // The same promotion is fine when Production is what serves.
        let after = production
            .check("iris", &promote, WhenNothingServes::Refuse)
            .expect("v3 takes over");
        assert_eq!(after.target(), Some(3));
        assert_eq!(after.versions[1].stage, Stage::Archived, "v2 archived");
        // Deleting an unrelated alias is fine.
        champion
            .check(
                "iris",
                &ServingChange::DeleteAlias("other"),
                WhenNothingServes::Refuse,
            )
            .expect("not the served alias");
    }

    #[test]
    fn a_new_serving_version_must_keep_the_interface() {
        let production = plan(json!("production"));
        let promote = ServingChange::Stage {
            version: 4,
            stage: Stage::Production,
            archive_existing: true,
        };
        let err = refused(&production, promote.clone());
        assert!(
            err.contains("swap version 4 of model 'iris' in for version 2"),
            "{err}"
        );
        assert!(
            err.contains("inputs [input FP32 [-1, 4]] became [input FP32 [-1, 5]]"),
            "{err}"
        );
        let champion = plan(json!({"alias": "champion"}));
        let err = refused(
            &champion,
            ServingChange::SetAlias {
                alias: "champion",
                version: 4,
            },
        );
        assert!(err.contains("interface differs"), "{err}");
        let pinned = config(json!({"serve": {"version": 4}}));
        assert!(refused(&production, ServingChange::Config(&pinned)).contains("interface differs"));
        let allowed = config(json!({"serve": {"version": 4}, "allow_interface_change": true}));
        production
            .check(
                "iris",
                &ServingChange::Config(&allowed),
                WhenNothingServes::Refuse,
            )
            .expect("allowed by the new config");
        // A version that does not serve may have any interface.
        production
            .check(
                "iris",
                &ServingChange::Stage {
                    version: 4,
                    stage: Stage::Staging,
                    archive_existing: true,
                },
                WhenNothingServes::Refuse,
            )
            .expect("staging is not served");
    }

    #[test]
    fn new_versions_serving_at_once_are_checked() {
        let five = signature(5, DataType::Int64);
        let four = signature(4, DataType::Int64);
        let production = plan(json!("production"));
        let err = production
            .check_new_version("iris", &five, Some(Stage::Production))
            .expect_err("would serve at once");
        assert!(err.to_string().contains("in place of version 2"), "{err}");
        production
            .check_new_version("iris", &five, None)
            .expect("not served until promoted");
        production
            .check_new_version("iris", &four, Some(Stage::Production))
            .expect("same interface");
        // Serving the latest version (v4, five columns), a new one serves at once.
        plan(json!("latest"))
            .check_new_version("iris", &four, None)
            .expect_err("latest serves it at once");
    }

    #[test]
    fn same_interface_allows_extra_outputs_only() {
        let served = signature(4, DataType::Int64);
        assert_eq!(same_interface(&served, &served), Ok(()));
        let mut more = served.clone();
        more.outputs
            .push(TensorSpec::new("score", DataType::Fp32, vec![Dim::Dynamic]));
        assert_eq!(same_interface(&served, &more), Ok(()));
        let err = same_interface(&served, &signature(5, DataType::Int64)).unwrap_err();
        assert!(err.contains("[-1, 5]"), "{err}");
        let err = same_interface(&served, &signature(4, DataType::Fp32)).unwrap_err();
        assert!(
            err.contains("output 'label' changed from INT64 to FP32"),
            "{err}"
        );
        let mut fewer = served.clone();
        fewer.outputs.pop();
        let err = same_interface(&served, &fewer).unwrap_err();
        assert!(err.contains("output 'probabilities' is gone"), "{err}");
    }
}
