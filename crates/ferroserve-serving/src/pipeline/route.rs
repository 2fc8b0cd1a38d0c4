//! Route: which loaded version answers a call — the caller's pinned
//! version (when the model allows pins), else an arm of the model's
//! rollout or A/B split (sticky by a header's value, else at random), else
//! its default. A model or version that is not served is explained with
//! the registry, on the error path only.

use std::sync::Arc;

use ferroserve_core::{ErrorKind, InferError};
use ferroserve_registry::{Registry, VersionStatus};

use crate::manager::InFlight;
use crate::rollout::window::Side;
use crate::traffic::Routing;
use crate::ModelManager;

/// A call entered into the version that answers it.
pub(crate) struct Routed {
    /// The hold on the version.
    pub(crate) held: InFlight,
    /// The variant a split or rollout chose.
    pub(crate) variant: Option<Arc<str>>,
    /// The rollout side, when a rollout chose.
    pub(crate) side: Option<Side>,
    /// The model's routing (shadow lane, rollout window).
    pub(crate) routing: Option<Arc<Routing>>,
}

/// Finds the version that answers `model` (`version` when pinned, else,
/// for online calls (`split`), by the model's routing with the caller's
/// `sticky` value) and enters the request into it; a version closed
/// meanwhile (retired by a swap) is looked up again. Jobs' calls go to the
/// default version: a canary is judged on live traffic.
pub(crate) async fn route(
    manager: &ModelManager,
    registry: Option<&Registry>,
    model: &str,
    version: Option<&str>,
    sticky: Option<&str>,
    split: bool,
) -> Result<Routed, InferError> {
    // Twice at most: a swap publishes the new table before it retires the
    // old version, so the second lookup finds the new one.
    for _ in 0..2 {
        let picked = match manager.pick(model, version, sticky, split) {
            Ok(picked) => picked,
            Err(e) => return Err(explain(registry, model, version, e).await),
        };
        if let Some(held) = picked.served.enter() {
            return Ok(Routed {
                held,
                variant: picked.variant,
                side: picked.side,
                routing: picked.routing,
            });
        }
    }
    Err(InferError::new(
        ErrorKind::Unavailable,
        format!("model '{model}' is being swapped; try again"),
    ))
}

/// The served version of `model` (`version`), not entered: for metadata.
pub(crate) async fn find(
    manager: &ModelManager,
    registry: Option<&Registry>,
    model: &str,
    version: Option<&str>,
) -> Result<Arc<crate::ServedVersion>, InferError> {
    match manager.get(model, version) {
        Ok(served) => Ok(served),
        Err(e) => Err(explain(registry, model, version, e).await),
    }
}

/// `error` (from the serving table) with its message made precise when the
/// model or version it calls unknown is registered but not loaded; any
/// other error, or a registry that cannot answer, leaves it as it was.
async fn explain(
    registry: Option<&Registry>,
    model: &str,
    version: Option<&str>,
    error: InferError,
) -> InferError {
    if error.kind != ErrorKind::NotFound {
        return error;
    }
    let Some(registry) = registry else {
        return error;
    };
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
