//! Failures when a server's answer to a change shows that the version
//! asked for does not serve (it failed to load, warm up or swap in, or
//! the server keeps serving another one and reports the model degraded),
//! so that scripts see a non-zero exit.

use ferroserve_registry::{ModelVersion, Stage};
use ferroserve_serving::lifecycle::{ModelServingConfig, ServeTarget};
use serde::Deserialize;
use serde_json::Value;

use super::store::ModelStore;

/// What a change asked for, to tell whether the version should now serve.
pub enum Asked<'a> {
    /// The version moved to a stage.
    Stage(Stage),
    /// An alias now points to the version.
    Alias(&'a str),
    /// The version was registered, into this stage if any.
    Registered(Option<Stage>),
}

impl Asked<'_> {
    /// Whether a model served per `target` should now serve the version.
    fn selected_by(&self, target: &ServeTarget) -> bool {
        let stage_served = |stage: &Option<Stage>| match target {
            ServeTarget::Production => *stage == Some(Stage::Production),
            ServeTarget::Staging => *stage == Some(Stage::Staging),
            _ => false,
        };
        match self {
            Asked::Stage(stage) => stage_served(&Some(*stage)),
            Asked::Alias(alias) => matches!(target, ServeTarget::Alias(a) if a == alias),
            Asked::Registered(stage) => *target == ServeTarget::Latest || stage_served(stage),
        }
    }
}

/// The parts of a `ServingStatus` the warnings need.
#[derive(Debug, Default, Deserialize)]
struct ServingView {
    serving_version: Option<String>,
    #[serde(default)]
    failures: Vec<Failure>,
    #[serde(default)]
    degraded: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Failure {
    version: i64,
    reason: String,
}

fn view(serving: Option<&Value>) -> Option<ServingView> {
    serving
        .filter(|s| !s.is_null())
        .and_then(|s| serde_json::from_value(s.clone()).ok())
}

/// Fails when `version` should serve after the change but the server
/// serves another one, or reports the model degraded; prints the failure
/// reasons it gives on stderr.
pub fn check(
    store: &dyn ModelStore,
    model: &str,
    serving: Option<&Value>,
    version: i64,
    asked: &Asked<'_>,
) -> anyhow::Result<()> {
    let Some(view) = view(serving) else {
        return Ok(());
    };
    fail_if_degraded(model, &view)?;
    if view.serving_version.as_deref() == Some(version.to_string().as_str()) {
        return Ok(());
    }
    let failed = view.failures.iter().any(|f| f.version == version);
    // Without a failure, whether the version should serve depends on what
    // the model's serving config selects.
    let expected = failed
        || store
            .serving_config(model)
            .ok()
            .and_then(|c| ModelServingConfig::from_value(&c.config).ok())
            .is_some_and(|c| asked.selected_by(&c.serve));
    if expected {
        print_failures(&view);
        anyhow::bail!(
            "the registry was changed, but {model} version {version} is not serving: the server serves {}",
            serving_label(&view)
        );
    }
    Ok(())
}

/// After a registration: how to get the new version served, when the
/// model's serving config does not select it (a version is not served
/// until promoted, unless the config serves `latest`). `None` when it
/// serves, or should ([`check`] warns when it should but does not).
pub fn unserved_hint(
    store: &dyn ModelStore,
    version: &ModelVersion,
    serving: Option<&Value>,
    asked: &Asked<'_>,
) -> Option<String> {
    let number = version.version;
    let label = number.to_string();
    if view(serving).is_some_and(|v| v.serving_version.as_deref() == Some(label.as_str())) {
        return None;
    }
    let target = store
        .serving_config(&version.model)
        .ok()
        .and_then(|c| ModelServingConfig::from_value(&c.config).ok())
        .map(|c| c.serve)
        .unwrap_or_default();
    if asked.selected_by(&target) {
        return None;
    }
    let model = &version.model;
    let serves = match &target {
        ServeTarget::Production => "its Production version".to_owned(),
        ServeTarget::Staging => "its Staging version".to_owned(),
        ServeTarget::Latest => "its newest version".to_owned(),
        ServeTarget::Alias(alias) => format!("the version of alias {alias}"),
        ServeTarget::Version(v) => format!("version {v}"),
    };
    Some(format!(
        "not served yet: {model} serves {serves}; to serve this one, run\n  ferroserve models promote {model} {number} --stage Production"
    ))
}

/// After a change that names no version: fails when the server reports
/// the model degraded, and warns about versions it could not serve.
pub fn report_failures(model: &str, serving: Option<&Value>) -> anyhow::Result<()> {
    let Some(view) = view(serving) else {
        return Ok(());
    };
    fail_if_degraded(model, &view)?;
    if !view.failures.is_empty() {
        eprintln!("warning: the server could not serve every version of {model} it should");
        print_failures(&view);
    }
    Ok(())
}

fn fail_if_degraded(model: &str, view: &ServingView) -> anyhow::Result<()> {
    match &view.degraded {
        Some(reason) => {
            print_failures(view);
            anyhow::bail!(
                "the registry was changed, but the server did not follow: {model} is degraded: {reason}"
            )
        }
        None => Ok(()),
    }
}

fn serving_label(view: &ServingView) -> String {
    view.serving_version
        .as_deref()
        .map_or_else(|| "no version".to_owned(), |v| format!("version {v}"))
}

fn print_failures(view: &ServingView) {
    for failure in &view.failures {
        eprintln!("  version {}: {}", failure.version, failure.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_matter_when_the_config_selects_them() {
        let production = ServeTarget::Production;
        assert!(Asked::Stage(Stage::Production).selected_by(&production));
        assert!(!Asked::Stage(Stage::Staging).selected_by(&production));
        assert!(Asked::Stage(Stage::Staging).selected_by(&ServeTarget::Staging));
        let champion = ServeTarget::Alias("champion".into());
        assert!(Asked::Alias("champion").selected_by(&champion));
        assert!(!Asked::Alias("challenger").selected_by(&champion));
        assert!(!Asked::Alias("champion").selected_by(&production));
        assert!(Asked::Registered(None).selected_by(&ServeTarget::Latest));
        assert!(Asked::Registered(Some(Stage::Production)).selected_by(&production));
        assert!(!Asked::Registered(None).selected_by(&production));
        assert!(!Asked::Stage(Stage::Production).selected_by(&ServeTarget::Version(1)));
    }

    #[test]
    fn serving_status_parts_are_read_leniently() {
        let status = serde_json::json!({"model": "m", "serving_version": "1",
            "failures": [{"version": 2, "reason": "bad"}], "origin": "registry",
            "degraded": "version 2 cannot serve; still serving version 1"});
        let view = view(Some(&status)).expect("parses");
        assert_eq!(view.serving_version.as_deref(), Some("1"));
        assert_eq!(view.failures[0].reason, "bad");
        let err = fail_if_degraded("m", &view).expect_err("degraded");
        assert!(
            err.to_string()
                .contains("m is degraded: version 2 cannot serve"),
            "{err}"
        );
        assert!(super::view(Some(&Value::Null)).is_none());
    }
}
