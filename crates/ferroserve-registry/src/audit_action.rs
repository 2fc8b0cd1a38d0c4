//! What an audit event records was done: the actions of the registry and of
//! the layers that record their events in its log.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The action of an audit event, stored and serialized as its snake_case
/// name (`"create_version"`, `"serving_swapped"`, ...).
///
/// A stored name this build does not know (written by a newer release, or
/// recorded by another program) reads as [`AuditAction::Other`], so the
/// history stays readable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A model was created.
    CreateModel,
    /// A model was deleted.
    DeleteModel,
    /// A model was renamed (recorded under both names).
    RenameModel,
    /// A model's tag was set.
    SetModelTag,
    /// A model's tag was removed.
    DeleteModelTag,
    /// A model's description was replaced.
    SetModelDescription,
    /// A version was registered.
    CreateVersion,
    /// A version was deleted.
    DeleteVersion,
    /// A pending version was verified.
    MarkVersionReady,
    /// A pending version failed verification.
    MarkVersionFailed,
    /// A version moved to another stage.
    TransitionStage,
    /// A version's tag was set.
    SetVersionTag,
    /// A version's tag was removed.
    DeleteVersionTag,
    /// A version's model card was replaced.
    SetModelCard,
    /// A version's reference profile was replaced.
    SetReferenceProfile,
    /// An alias was set.
    SetAlias,
    /// An alias was removed.
    DeleteAlias,
    /// A model's serving config got a new revision.
    SetServingConfig,
    /// A batch or async inference job was created.
    CreateJob,
    /// Cancelling a job was requested.
    CancelJob,
    /// The server swapped the version a model serves.
    ServingSwapped,
    /// The server could not swap a version in.
    ServingFailed,
    /// A model serves another version than the registry selects.
    ServingDegraded,
    /// A model serves what the registry selects again.
    ServingRecovered,
    /// A monitoring alert fired.
    MonitorAlert,
    /// A model was loaded through the repository API.
    ModelLoaded,
    /// A model was unloaded through the repository API.
    ModelUnloaded,
    /// An API key was created.
    CreateApiKey,
    /// An API key was revoked.
    RevokeApiKey,
    /// A rollout of a canary version started.
    RolloutStarted,
    /// A rollout moved its canary to another step.
    RolloutStepped,
    /// A rollout was paused.
    RolloutPaused,
    /// A paused rollout was resumed.
    RolloutResumed,
    /// A rollout waits for approval before it promotes its canary.
    RolloutAwaitingApproval,
    /// A rollout was rolled back to its stable version (a gate failed).
    RolloutRolledBack,
    /// A rollout completed: its canary was promoted.
    RolloutCompleted,
    /// A rollout was aborted.
    RolloutAborted,
    /// Any other action: 1-64 characters of `[a-z_]` when recorded.
    Other(String),
}

impl AuditAction {
    /// Every named action (all but [`AuditAction::Other`]).
    pub const NAMED: [AuditAction; 37] = [
        AuditAction::CreateModel,
        AuditAction::DeleteModel,
        AuditAction::RenameModel,
        AuditAction::SetModelTag,
        AuditAction::DeleteModelTag,
        AuditAction::SetModelDescription,
        AuditAction::CreateVersion,
        AuditAction::DeleteVersion,
        AuditAction::MarkVersionReady,
        AuditAction::MarkVersionFailed,
        AuditAction::TransitionStage,
        AuditAction::SetVersionTag,
        AuditAction::DeleteVersionTag,
        AuditAction::SetModelCard,
        AuditAction::SetReferenceProfile,
        AuditAction::SetAlias,
        AuditAction::DeleteAlias,
        AuditAction::SetServingConfig,
        AuditAction::CreateJob,
        AuditAction::CancelJob,
        AuditAction::ServingSwapped,
        AuditAction::ServingFailed,
        AuditAction::ServingDegraded,
        AuditAction::ServingRecovered,
        AuditAction::MonitorAlert,
        AuditAction::ModelLoaded,
        AuditAction::ModelUnloaded,
        AuditAction::CreateApiKey,
        AuditAction::RevokeApiKey,
        AuditAction::RolloutStarted,
        AuditAction::RolloutStepped,
        AuditAction::RolloutPaused,
        AuditAction::RolloutResumed,
        AuditAction::RolloutAwaitingApproval,
        AuditAction::RolloutRolledBack,
        AuditAction::RolloutCompleted,
        AuditAction::RolloutAborted,
    ];

    /// The name as stored and shown, e.g. `serving_swapped`.
    pub fn as_str(&self) -> &str {
        match self {
            AuditAction::CreateModel => "create_model",
            AuditAction::DeleteModel => "delete_model",
            AuditAction::RenameModel => "rename_model",
            AuditAction::SetModelTag => "set_model_tag",
            AuditAction::DeleteModelTag => "delete_model_tag",
            AuditAction::SetModelDescription => "set_model_description",
            AuditAction::CreateVersion => "create_version",
            AuditAction::DeleteVersion => "delete_version",
            AuditAction::MarkVersionReady => "mark_version_ready",
            AuditAction::MarkVersionFailed => "mark_version_failed",
            AuditAction::TransitionStage => "transition_stage",
            AuditAction::SetVersionTag => "set_version_tag",
            AuditAction::DeleteVersionTag => "delete_version_tag",
            AuditAction::SetModelCard => "set_model_card",
            AuditAction::SetReferenceProfile => "set_reference_profile",
            AuditAction::SetAlias => "set_alias",
            AuditAction::DeleteAlias => "delete_alias",
            AuditAction::SetServingConfig => "set_serving_config",
            AuditAction::CreateJob => "create_job",
            AuditAction::CancelJob => "cancel_job",
            AuditAction::ServingSwapped => "serving_swapped",
            AuditAction::ServingFailed => "serving_failed",
            AuditAction::ServingDegraded => "serving_degraded",
            AuditAction::ServingRecovered => "serving_recovered",
            AuditAction::MonitorAlert => "monitor_alert",
            AuditAction::ModelLoaded => "model_loaded",
            AuditAction::ModelUnloaded => "model_unloaded",
            AuditAction::CreateApiKey => "create_api_key",
            AuditAction::RevokeApiKey => "revoke_api_key",
            AuditAction::RolloutStarted => "rollout_started",
            AuditAction::RolloutStepped => "rollout_stepped",
            AuditAction::RolloutPaused => "rollout_paused",
            AuditAction::RolloutResumed => "rollout_resumed",
            AuditAction::RolloutAwaitingApproval => "rollout_awaiting_approval",
            AuditAction::RolloutRolledBack => "rollout_rolled_back",
            AuditAction::RolloutCompleted => "rollout_completed",
            AuditAction::RolloutAborted => "rollout_aborted",
            AuditAction::Other(name) => name,
        }
    }
}

impl From<&str> for AuditAction {
    /// The named action of this name, else [`AuditAction::Other`].
    fn from(name: &str) -> Self {
        AuditAction::NAMED
            .into_iter()
            .find(|action| action.as_str() == name)
            .unwrap_or_else(|| AuditAction::Other(name.to_owned()))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for AuditAction {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for AuditAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for AuditAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(AuditAction::from(name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_kept() {
        for action in AuditAction::NAMED {
            assert_eq!(AuditAction::from(action.as_str()), action);
            let json = serde_json::to_string(&action).expect("serializes");
            assert_eq!(json, format!("\"{action}\""));
            let back: AuditAction = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, action);
        }
        let other: AuditAction = serde_json::from_str("\"retrained\"").expect("parses");
        assert_eq!(other, AuditAction::Other("retrained".into()));
        assert_eq!(other, "retrained");
    }

    #[test]
    fn named_actions_have_distinct_names() {
        let names: std::collections::HashSet<&str> =
            AuditAction::NAMED.iter().map(AuditAction::as_str).collect();
        assert_eq!(names.len(), AuditAction::NAMED.len());
        assert_eq!(
            AuditAction::from("rollout_awaiting_approval"),
            AuditAction::RolloutAwaitingApproval
        );
        assert_eq!(
            AuditAction::RolloutRolledBack.as_str(),
            "rollout_rolled_back"
        );
    }
}
