//! The routing table of one model, read by the route stage on every
//! request that names no version: the arms of an A/B split or of a
//! running rollout (canary first, so a sticky caller who reached the
//! canary stays there as its weight grows), the sticky header, the shadow
//! lane, and whether callers may pin a version.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::rollout::live::LiveRollout;
use crate::rollout::window::Side;
use crate::shadow::ShadowLane;
use crate::ServedVersion;

/// Routing resolution: shares are counted in parts per million.
const PARTS: u64 = 1_000_000;

/// One version that takes a share of the requests naming no version.
pub struct RoutingArm {
    /// The version.
    pub served: Arc<ServedVersion>,
    /// Its variant name (`stable`, `canary`, or the A/B variant).
    pub variant: Arc<str>,
    /// Its side when a rollout routes.
    pub side: Option<Side>,
    /// Upper bound (exclusive) of its share, in parts per million.
    upto: u64,
}

/// An arm as the routing is built: a version, its share and its names.
pub struct ArmSpec {
    /// The version.
    pub served: Arc<ServedVersion>,
    /// Its share against the other arms' (0 leaves it out).
    pub weight: u64,
    /// Its variant name.
    pub variant: Arc<str>,
    /// Its side when a rollout routes.
    pub side: Option<Side>,
}

/// Where a caller lands among the arms: a hash of its sticky header value,
/// else a random draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StickyKey(u64);

impl StickyKey {
    /// The key of a sticky header value: the same on every replica and
    /// across restarts (SHA-256, not a per-process hash).
    pub fn of(value: &str) -> StickyKey {
        let digest = Sha256::digest(value.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        StickyKey(u64::from_be_bytes(first) % PARTS)
    }

    /// A random key, for callers without a sticky value.
    pub fn random() -> StickyKey {
        StickyKey(rand::random::<u64>() % PARTS)
    }
}

/// The routing of one model besides its default version.
pub struct Routing {
    arms: Vec<RoutingArm>,
    sticky_header: Option<Arc<str>>,
    allow_pinning: bool,
    shadow: Option<Arc<ShadowLane>>,
    rollout: Option<Arc<LiveRollout>>,
}

impl Routing {
    /// Routing that sends everything to the default version, pins allowed.
    pub fn new(allow_pinning: bool) -> Routing {
        Routing {
            arms: Vec::new(),
            sticky_header: None,
            allow_pinning,
            shadow: None,
            rollout: None,
        }
    }

    /// Splits requests naming no version over `arms` by weight; arms with
    /// no weight are left out.
    pub fn with_arms(mut self, arms: Vec<ArmSpec>) -> Routing {
        let total: u64 = arms.iter().map(|arm| arm.weight).sum();
        self.arms.clear();
        if total == 0 {
            return self;
        }
        let mut cumulative = 0;
        for arm in arms.into_iter().filter(|arm| arm.weight > 0) {
            cumulative += arm.weight;
            self.arms.push(RoutingArm {
                served: arm.served,
                variant: arm.variant,
                side: arm.side,
                upto: cumulative * PARTS / total,
            });
        }
        self
    }

    /// Keeps callers on one arm by the value of `header`.
    pub fn with_sticky_header(mut self, header: Option<&str>) -> Routing {
        self.sticky_header = header.map(Arc::from);
        self
    }

    /// Sends copies of some requests to `lane`.
    pub fn with_shadow(mut self, lane: Option<Arc<ShadowLane>>) -> Routing {
        self.shadow = lane;
        self
    }

    /// Records the figures of `rollout`'s arms.
    pub fn with_rollout(mut self, rollout: Option<Arc<LiveRollout>>) -> Routing {
        self.rollout = rollout;
        self
    }

    /// The arm a caller with `key` lands on; `None` when nothing is split.
    pub fn pick(&self, key: StickyKey) -> Option<&RoutingArm> {
        self.arms
            .iter()
            .find(|arm| key.0 < arm.upto)
            .or(self.arms.last())
    }

    /// Whether anything is split.
    pub fn splits(&self) -> bool {
        !self.arms.is_empty()
    }

    /// The header that keeps a caller on one arm.
    pub fn sticky_header(&self) -> Option<&Arc<str>> {
        self.sticky_header.as_ref()
    }

    /// Whether callers may name a version.
    pub fn allow_pinning(&self) -> bool {
        self.allow_pinning
    }

    /// The shadow lane, when one gets copies.
    pub fn shadow(&self) -> Option<&Arc<ShadowLane>> {
        self.shadow.as_ref()
    }

    /// The rollout whose figures the arms record.
    pub fn rollout(&self) -> Option<&Arc<LiveRollout>> {
        self.rollout.as_ref()
    }
}

/// The version a call was routed to, and how.
pub struct Picked {
    /// The version.
    pub served: Arc<ServedVersion>,
    /// The variant name, when a split chose it.
    pub variant: Option<Arc<str>>,
    /// The rollout side, when a rollout chose it.
    pub side: Option<Side>,
    /// The model's routing, when it has any.
    pub routing: Option<Arc<Routing>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_keys_are_stable_and_spread() {
        assert_eq!(StickyKey::of("user-1"), StickyKey::of("user-1"));
        assert_ne!(StickyKey::of("user-1"), StickyKey::of("user-2"));
        let below_half = (0..1000)
            .filter(|i| StickyKey::of(&format!("user-{i}")).0 < PARTS / 2)
            .count();
        assert!(
            (450..=550).contains(&below_half),
            "{below_half} of 1000 below half"
        );
    }
}
