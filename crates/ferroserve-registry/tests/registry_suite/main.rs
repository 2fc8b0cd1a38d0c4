//! The registry test suite: every test runs on a temporary SQLite file and
//! on a fresh database of a temporary PostgreSQL server.

mod aliases;
mod api_keys;
mod audit;
mod changes;
mod common;
#[path = "../support/dependency.rs"]
mod dependency;
mod helpers;
mod job_leases;
mod jobs;
mod leader;
mod models;
mod monitor_feedback;
mod monitor_pool;
mod recovery;
mod rollout_checks;
mod rollout_fixtures;
mod rollout_shares;
mod rollouts;
mod serving_config;
mod stages;
mod tracking;
mod versions;

macro_rules! on_both_backends {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = crate::common::sqlite().await;
                    crate::$module::$name(t.registry.clone(), t.url.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = crate::common::postgres().await;
                    crate::$module::$name(t.registry.clone(), t.url.clone()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    models::models_crud,
    models::delete_model_rules,
    models::rename_moves_the_model_and_refuses_while_it_runs,
    versions::version_numbers_and_fields,
    versions::concurrent_versions_get_distinct_numbers,
    versions::status_changes,
    versions::version_metadata,
    versions::ready_versions,
    versions::delete_version_rules,
    versions::unreadable_stored_fields_name_the_version,
    stages::stage_transitions,
    aliases::aliases_and_resolve,
    audit::audit_log,
    changes::change_feed,
    leader::leadership,
    audit::audit_pages_newest_first_with_a_cursor,
    audit::reconnect_keeps_data,
    audit::recorded_events,
    audit::audit_pages_are_bounded_by_bytes,
    serving_config::serving_config_revisions,
    serving_config::concurrent_serving_configs_get_distinct_revisions,
    recovery::rollback_target_walks_production_history,
    recovery::stale_pending_versions_fail,
    jobs::jobs_create_get_list,
    jobs::job_validation,
    job_leases::job_claims,
    jobs::job_checkpoints,
    jobs::job_cancels,
    jobs::job_finishes,
    jobs::unfinished_and_cleanup,
    job_leases::job_leases,
    api_keys::api_keys_lifecycle,
    api_keys::concurrent_key_creations_all_succeed,
    rollouts::rollout_start_and_read,
    rollouts::one_active_rollout_per_model,
    rollouts::rollout_moves_compare_and_set,
    rollouts::rollout_steps_decisions_and_audit,
    rollouts::rollout_validation,
    rollouts::rollout_decisions_are_capped,
    rollouts::rollouts_go_with_their_model,
    rollout_shares::rollout_shares_per_replica_and_step,
    rollout_checks::rollout_checks_keep_the_last_per_rollout,
    monitor_pool::windows_pool_parts_and_close_once,
    monitor_feedback::predictions_are_found_and_labeled_once,
    tracking::experiments_are_named_once_and_deleted_with_their_runs,
    tracking::runs_log_params_metrics_tags_and_inputs,
    tracking::logged_models_are_created_pending_and_finalized,
);
