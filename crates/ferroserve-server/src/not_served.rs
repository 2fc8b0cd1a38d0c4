//! Why a model or version that a request names is not served although the
//! registry knows it. The registry is read only here, on the error path of
//! a request; a served version never waits for it.

use std::sync::Arc;

use ferroserve_core::{ErrorKind, InferError};
use ferroserve_registry::VersionStatus;
use ferroserve_serving::ServedVersion;

use crate::state::AppState;

/// The version that serves `model` (and `version`, when named), or why
/// none does, explained with the registry when it knows the name.
pub(crate) async fn find(
    state: &AppState,
    model: &str,
    version: Option<&str>,
) -> Result<Arc<ServedVersion>, InferError> {
    match state.manager.get(model, version) {
        Ok(served) => Ok(served),
        Err(e) => Err(explain(state, model, version, e).await),
    }
}

/// `error` (from the serving table) with its message made precise when the
/// model or version it calls unknown is registered but not loaded; any
/// other error, or a registry that cannot answer, leaves it as it was.
pub(crate) async fn explain(
    state: &AppState,
    model: &str,
    version: Option<&str>,
    error: InferError,
) -> InferError {
    if error.kind != ErrorKind::NotFound {
        return error;
    }
    let Some(controller) = &state.controller else {
        return error;
    };
    let registry = controller.lifecycle().registry();
    let message = match version {
        Some(text) => {
            let Ok(number) = text.parse::<i64>() else {
                return error;
            };
            match registry.get_version(model, number).await {
                Ok(found) => version_message(model, number, found.stage.as_str(), &found.status),
                Err(_) => return error,
            }
        }
        None => match registry.get_model(model).await {
            Ok(_) => format!(
                "model '{model}' is registered but none of its versions is loaded on this \
                 server; GET /api/v1/models/{model}/serving says why"
            ),
            Err(_) => return error,
        },
    };
    InferError::not_found(message)
}

/// The message for a registered version that is not loaded.
fn version_message(model: &str, version: i64, stage: &str, status: &VersionStatus) -> String {
    let registered = format!(
        "version {version} of model '{model}' exists in the registry (stage {stage}, status {}) \
         but is not loaded on this server",
        status.as_str()
    );
    match status {
        VersionStatus::Ready => format!(
            "{registered}: a server loads the version its serving config serves and those \
             its version_policy keeps. To keep version {version} loaded, add \
             \"version_policy\": {{\"specific\": [{version}]}} to the serving config of \
             '{model}' (`ferroserve models config {model}` prints the current one)"
        ),
        VersionStatus::Pending => format!("{registered}: it is still being verified"),
        VersionStatus::Failed { reason } => {
            format!("{registered}: it failed verification and cannot be served ({reason})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_version_says_how_to_keep_it_loaded() {
        let m = version_message("iris", 1, "Archived", &VersionStatus::Ready);
        assert!(m.contains("exists in the registry (stage Archived"), "{m}");
        assert!(m.contains("not loaded"), "{m}");
        assert!(m.contains(r#""version_policy": {"specific": [1]}"#), "{m}");
        let m = version_message(
            "iris",
            2,
            "None",
            &VersionStatus::Failed {
                reason: "bad file".into(),
            },
        );
        assert!(m.contains("failed verification"), "{m}");
        assert!(m.contains("bad file"), "{m}");
    }
}
