//! The `traffic` field of a registry serving config: an A/B split over
//! versions, sticky by a request header; a shadow version that gets a copy
//! of some requests; and whether callers may pin a version.

use serde::{Deserialize, Serialize};

use crate::rollout::settings::check_header_name;
use crate::shadow::ShadowPolicy;

/// Most versions one A/B split may name.
pub const MAX_SPLIT_ARMS: usize = 16;

/// Most weight one arm may carry (weights are shares, not percents).
pub const MAX_ARM_WEIGHT: u32 = 1_000_000;

/// The static traffic rules of a model, e.g.
/// `{"split": [{"version": 2, "weight": 70}, {"version": 3, "weight": 30}],
/// "sticky_header": "X-User-ID"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficPolicy {
    /// A/B test: requests naming no version go to these versions by
    /// weight (empty: the serving target takes them all).
    pub split: Vec<SplitArm>,
    /// Header whose value keeps one caller on one version of the split
    /// (a hash of it chooses); absent or missing: chosen at random.
    pub sticky_header: Option<String>,
    /// A version that also gets a copy of some requests, after the answer.
    pub shadow: Option<ShadowPolicy>,
    /// Whether callers may name a version (URL or `x-model-version`).
    pub allow_pinning: bool,
}

impl Default for TrafficPolicy {
    fn default() -> Self {
        TrafficPolicy {
            split: Vec::new(),
            sticky_header: None,
            shadow: None,
            allow_pinning: true,
        }
    }
}

/// One version of an A/B split and its share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitArm {
    /// Registry version number.
    pub version: i64,
    /// Share of the requests, against the other arms' weights.
    pub weight: u32,
    /// Name of the variant in metrics and responses; `v{version}` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl SplitArm {
    /// The variant name: the one given, else `v{version}`.
    pub fn variant_name(&self) -> String {
        self.variant
            .clone()
            .unwrap_or_else(|| format!("v{}", self.version))
    }
}

impl TrafficPolicy {
    /// Checks the rules; the error names the field (`traffic.split[1].weight ...`).
    pub fn validate(&self) -> Result<(), String> {
        if self.split.len() == 1 || self.split.len() > MAX_SPLIT_ARMS {
            return Err(format!(
                "traffic.split must name between 2 and {MAX_SPLIT_ARMS} versions, got {}",
                self.split.len()
            ));
        }
        let mut variants: Vec<String> = Vec::new();
        for (i, arm) in self.split.iter().enumerate() {
            if arm.version < 1 {
                return Err(format!(
                    "traffic.split[{i}].version must be a version number (1 or more), got {}",
                    arm.version
                ));
            }
            if !(1..=MAX_ARM_WEIGHT).contains(&arm.weight) {
                return Err(format!(
                    "traffic.split[{i}].weight must be between 1 and {MAX_ARM_WEIGHT}, got {}",
                    arm.weight
                ));
            }
            if self.split[..i].iter().any(|a| a.version == arm.version) {
                return Err(format!(
                    "traffic.split[{i}].version {} is named twice",
                    arm.version
                ));
            }
            let variant = arm.variant_name();
            if !valid_variant(&variant) {
                return Err(format!(
                    "traffic.split[{i}].variant must be 1-32 characters of [A-Za-z0-9_.-], got '{variant}'"
                ));
            }
            if variants.contains(&variant) {
                return Err(format!(
                    "traffic.split[{i}].variant '{variant}' is used twice"
                ));
            }
            variants.push(variant);
        }
        if let Some(header) = &self.sticky_header {
            check_header_name(header).map_err(|why| format!("traffic.sticky_header: {why}"))?;
        }
        if let Some(shadow) = &self.shadow {
            shadow.validate()?;
            if self.split.iter().any(|a| a.version == shadow.version) {
                return Err(format!(
                    "traffic.shadow.version {} is also in traffic.split; a shadow only gets copies",
                    shadow.version
                ));
            }
        }
        Ok(())
    }

    /// Versions these rules need loaded: the split's and the shadow's.
    pub fn versions(&self) -> Vec<i64> {
        self.split
            .iter()
            .map(|a| a.version)
            .chain(self.shadow.as_ref().map(|s| s.version))
            .collect()
    }
}

/// Whether `name` can label a variant in metrics and responses.
fn valid_variant(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<TrafficPolicy, String> {
        let policy: TrafficPolicy = serde_json::from_value(value).map_err(|e| e.to_string())?;
        policy.validate()?;
        Ok(policy)
    }

    #[test]
    fn a_split_needs_two_distinct_positive_arms() {
        let ok = parse(json!({"split": [{"version": 1, "weight": 70}, {"version": 2, "weight": 30, "variant": "b"}],
            "sticky_header": "X-User-ID"}))
        .expect("valid");
        assert_eq!(ok.split[0].variant_name(), "v1");
        assert_eq!(ok.split[1].variant_name(), "b");
        assert!(ok.allow_pinning, "pinning is allowed by default");
        let one = parse(json!({"split": [{"version": 1, "weight": 1}]})).unwrap_err();
        assert!(one.contains("traffic.split must name between 2"), "{one}");
        let zero =
            parse(json!({"split": [{"version": 1, "weight": 0}, {"version": 2, "weight": 1}]}))
                .unwrap_err();
        assert!(zero.contains("traffic.split[0].weight"), "{zero}");
        let twice =
            parse(json!({"split": [{"version": 1, "weight": 1}, {"version": 1, "weight": 1}]}))
                .unwrap_err();
        assert!(
            twice.contains("traffic.split[1].version 1 is named twice"),
            "{twice}"
        );
        let header = parse(json!({"sticky_header": "X User"})).unwrap_err();
        assert!(header.contains("traffic.sticky_header"), "{header}");
        let variant = parse(json!({"split": [{"version": 1, "weight": 1, "variant": "a b"}, {"version": 2, "weight": 1}]}))
            .unwrap_err();
        assert!(variant.contains("traffic.split[0].variant"), "{variant}");
    }

    #[test]
    fn a_shadow_is_not_also_an_arm() {
        let err = parse(
            json!({"split": [{"version": 1, "weight": 1}, {"version": 2, "weight": 1}],
            "shadow": {"version": 2, "percent": 10}}),
        )
        .unwrap_err();
        assert!(err.contains("traffic.shadow.version 2"), "{err}");
        let ok = parse(json!({"shadow": {"version": 3, "percent": 10}})).expect("valid");
        assert_eq!(ok.versions(), vec![3]);
    }
}
