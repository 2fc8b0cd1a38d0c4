//! Triton's statistics of served versions: of every model, of every
//! served version of one model, or of one version.

use ferroserve_core::InferError;
use ferroserve_serving::stats::VersionStatistics;

use crate::state::AppState;

/// Statistics of every served version of every model (`model` `None`), of
/// every served version of `model` (`version` `None`), or of one version;
/// in model, then version order. A model or version that is not served is
/// an error as in the model metadata (NotFound when unknown, as Triton
/// answers).
pub async fn statistics(
    state: &AppState,
    model: Option<&str>,
    version: Option<&str>,
) -> Result<Vec<VersionStatistics>, InferError> {
    let Some(model) = model else {
        return Ok(served_versions(state, None));
    };
    if let Some(version) = version {
        let served = state.pipeline.find(model, Some(version)).await?;
        return Ok(vec![served.statistics()]);
    }
    let all = served_versions(state, Some(model));
    if all.is_empty() {
        // Explains why nothing is served (unknown, or still loading).
        let served = state.pipeline.find(model, None).await?;
        return Ok(vec![served.statistics()]);
    }
    Ok(all)
}

/// Statistics of the served versions of `model`, or of every model.
fn served_versions(state: &AppState, model: Option<&str>) -> Vec<VersionStatistics> {
    let snapshot = state.manager().snapshot();
    snapshot
        .iter()
        .filter(|(name, _)| model.is_none_or(|m| m == name.as_str()))
        .flat_map(|(_, entry)| entry.versions.values())
        .filter_map(|v| v.served.as_ref().map(|served| served.statistics()))
        .collect()
}
