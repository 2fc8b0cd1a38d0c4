//! Rollouts judged over the whole service: two replicas on one PostgreSQL
//! registry and one artifact folder, every request sent to the one that
//! does not lead. The leader, which answers none of them, takes a healthy
//! canary through its steps and rolls back a canary failing on the other
//! replica, on the figures each replica shares through the registry; the
//! rollout's status (gates included) reads alike through either replica.

mod common;

use std::time::Duration;

use common::fleet::SharedRegistry;
use common::load::Load;
use common::registry_api::promote;
use common::rollout::{
    decision_actions, inject_faults, register_iris_version, rollout_action, rollout_status,
    start_rollout, stepping_rollout, wait_for_rollout_state, STEP_MIN_REQUESTS,
};
use common::{wait_until, Server};
use serde_json::json;

/// Requests for iris `server` answered, from its `/metrics`.
fn iris_requests(server: &Server) -> f64 {
    server.metric_sum("ferroserve_requests_total", &["model=\"iris\""])
}

#[test]
fn a_rollout_advances_and_rolls_back_on_the_figures_of_every_replica() {
    let shared = SharedRegistry::start();
    let replica = || shared.replica(&["--enable-fault-injection"]);
    let leader = replica();
    leader.wait_for_metric("ferroserve_leader 1");
    let follower = replica();
    follower.wait_for_metric("ferroserve_leader 0");

    let stable = register_iris_version(&leader, "stable");
    promote(&leader, "iris", stable);
    // Uneven traffic: all of it on the follower.
    let load = Load::start(&follower.base, 2);
    load.wait_for_answers(50);

    let healthy = register_iris_version(&leader, "healthy canary");
    start_rollout(&leader, &stepping_rollout(healthy, 1));
    // The follower judges nothing, yet its status shows the leader's gates.
    let mut follower_gates = Vec::new();
    let (done, _) = wait_for_rollout_state(&leader, "completed", Duration::from_secs(120), |_| {
        let seen = rollout_status(&follower);
        if let Some(gates) = seen["gates"].as_array().filter(|g| !g.is_empty()) {
            follower_gates.clone_from(gates);
        }
    });
    let names: Vec<&str> = follower_gates
        .iter()
        .filter_map(|g| g["gate"].as_str())
        .collect();
    assert!(
        names.contains(&"error_rate") && names.contains(&"p99_ratio"),
        "the follower's status showed the gates: {follower_gates:?}"
    );
    for gate in &follower_gates {
        assert!(gate["consecutive_failures"].is_u64(), "{gate}");
        assert!(gate["limit"].is_number(), "{gate}");
    }
    assert_eq!(
        decision_actions(&done),
        ["started", "stepped", "completed"],
        "{done:#}"
    );
    for decision in &done["decisions"].as_array().expect("decisions")[1..] {
        let figures = &decision["figures"];
        assert_eq!(figures["replicas"], 2, "{decision:#}");
        let canary = figures["canary"]["requests"].as_u64().unwrap_or(0);
        assert!(canary >= STEP_MIN_REQUESTS, "{decision:#}");
    }
    assert_eq!(
        iris_requests(&leader),
        0.0,
        "the leader judged figures it answered none of"
    );

    let failing = register_iris_version(&leader, "failing canary");
    start_rollout(&leader, &stepping_rollout(failing, 60));
    // Paused through the follower, the rollout shows no gates anywhere
    // (the last check was of the step before the pause); resumed, the
    // leader's checks show again.
    let gates_seen = |server: &Server| {
        rollout_status(server)["gates"]
            .as_array()
            .map_or(0, Vec::len)
    };
    wait_until("the follower shows the gates", || gates_seen(&follower) > 0);
    rollout_action(&follower, "pause", "paused");
    for server in [&follower, &leader] {
        let status = rollout_status(server);
        assert_eq!(status["state"], "paused", "{status:#}");
        assert_eq!(status["gates"], json!([]), "{status:#}");
    }
    rollout_action(&follower, "resume", "progressing");
    wait_until("the follower shows the gates again", || {
        gates_seen(&follower) > 0
    });
    inject_faults(&follower, failing, &json!({"error_rate": 0.5}));
    let (done, _) = wait_for_rollout_state(&leader, "rolled_back", Duration::from_secs(60), |_| {});
    let last = done["decisions"]
        .as_array()
        .and_then(|d| d.last())
        .expect("a decision");
    assert_eq!(last["action"], "rolled_back", "{done:#}");
    assert!(
        last["reason"].as_str().unwrap_or("").contains("error_rate"),
        "{last:#}"
    );
    assert_eq!(last["figures"]["replicas"], 2, "{last:#}");
    assert!(
        last["figures"]["canary"]["errors"].as_u64().unwrap_or(0) > 0,
        "{last:#}"
    );
    assert_eq!(iris_requests(&leader), 0.0);

    // Either replica reports the same rollout.
    let seen = rollout_status(&follower);
    assert_eq!(seen["state"], "rolled_back", "{seen:#}");
    assert_eq!(seen["decisions"], done["decisions"]);
    let samples = load.stop();
    assert!(
        samples.iter().any(|s| s.status == 200),
        "the follower answered"
    );
    drop((leader, follower));
    drop(shared);
}
