//! Builds a model's routing table from its serving config's traffic rules
//! and its running rollout, over the versions about to be installed; the
//! live rollout window and the shadow lane of the previous table are kept
//! when they still apply, so a reconcile loses no figures.

use std::sync::Arc;

use ferroserve_registry::Rollout;

use super::config::ModelServingConfig;
use crate::manager::{ModelEntry, VersionKey};
use crate::rollout::live::LiveRollout;
use crate::rollout::window::Side;
use crate::rollout::RolloutSettings;
use crate::shadow::ShadowLane;
use crate::traffic::{ArmSpec, Routing};
use crate::{ModelManager, ServedVersion};

/// What a model's routing was built from, kept between reconciles.
#[derive(Default, Clone)]
pub(super) struct RoutingParts {
    /// The rollout window in force.
    pub(super) live: Option<Arc<LiveRollout>>,
    /// The shadow lane in force.
    pub(super) shadow: Option<Arc<ShadowLane>>,
}

/// The routing of `model` over `entry` under `config` and `rollout` (a
/// running rollout whose stable version is the target), reusing what
/// `previous` still fits; `None` when everything goes to the default.
pub(super) fn build(
    model: &str,
    config: &ModelServingConfig,
    rollout: Option<&Rollout>,
    entry: &ModelEntry,
    previous: &RoutingParts,
    manager: &Arc<ModelManager>,
) -> (Option<Arc<Routing>>, RoutingParts) {
    let traffic = &config.traffic;
    let served = |version: i64| served_in(entry, version);
    let mut routing = Routing::new(traffic.allow_pinning);
    let mut parts = RoutingParts::default();
    let rollout_sides =
        rollout.and_then(|r| Some((r, served(r.stable_version)?, served(r.canary_version)?)));
    if let Some((rollout, stable, canary)) = rollout_sides {
        let settings = RolloutSettings::from_value(&rollout.settings).unwrap_or_default();
        let weight = settings.weight_at(rollout.step);
        let live = previous
            .live
            .clone()
            .filter(|live| live.is(rollout.id, rollout.step, weight))
            .unwrap_or_else(|| {
                Arc::new(LiveRollout::new(
                    rollout.id,
                    rollout.step,
                    weight,
                    &stable,
                    &canary,
                ))
            });
        routing = routing
            .with_arms(vec![
                ArmSpec {
                    served: canary,
                    weight: u64::from(weight),
                    variant: Arc::from("canary"),
                    side: Some(Side::Canary),
                },
                ArmSpec {
                    served: stable,
                    weight: u64::from(100 - weight.min(100)),
                    variant: Arc::from("stable"),
                    side: Some(Side::Stable),
                },
            ])
            .with_sticky_header(settings.sticky_header.as_deref())
            .with_rollout(Some(live.clone()));
        parts.live = Some(live);
    } else if !traffic.split.is_empty() {
        let arms = traffic
            .split
            .iter()
            .filter_map(|arm| {
                Some(ArmSpec {
                    served: served(arm.version)?,
                    weight: u64::from(arm.weight),
                    variant: Arc::from(arm.variant_name()),
                    side: None,
                })
            })
            .collect();
        routing = routing
            .with_arms(arms)
            .with_sticky_header(traffic.sticky_header.as_deref());
    }
    if let Some(policy) = &traffic.shadow {
        if let Some(version) = served(policy.version) {
            let lane = previous
                .shadow
                .clone()
                .filter(|lane| lane.policy() == policy && lane.version() == version.version())
                .unwrap_or_else(|| ShadowLane::new(model, version, policy, manager.clone()));
            routing = routing.with_shadow(Some(lane.clone()));
            parts.shadow = Some(lane);
        }
    }
    let plain = !routing.splits() && routing.shadow().is_none() && routing.allow_pinning();
    ((!plain).then(|| Arc::new(routing)), parts)
}

/// The served instance of `version` in `entry`.
fn served_in(entry: &ModelEntry, version: i64) -> Option<Arc<ServedVersion>> {
    entry
        .versions
        .get(&VersionKey(version.to_string()))
        .and_then(|v| v.served.clone())
}
