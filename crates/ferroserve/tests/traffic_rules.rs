//! End-to-end tests of the static traffic rules on the real binary, each
//! with online load running throughout: a sticky A/B split keeps each user
//! on one version at the weights; a failing shadow never changes a primary
//! answer; pinning routes to the version named and can be switched off. No
//! request fails because of routing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::load::iris_request;
use common::recording_load::{record, RecordingLoad, Reply};
use common::rollout::{
    api, faults_of, inject_faults, long_rollout_of_v2, register_iris_version, rollout_action,
    server_with_loaded_v2, set_serving_config, start_rollout, LOAD_THREADS,
};
use common::{admin_client, Server};
use reqwest::Method;
use serde_json::{json, Value};

#[test]
fn a_sticky_ab_split_keeps_each_user_on_one_version_at_the_weights() {
    let server = Server::start(&[]);
    assert_eq!(register_iris_version(&server, "variant b"), 2);
    let load = RecordingLoad::start(&server.base, 2);
    load.wait_for_replies(30, Duration::from_secs(60));
    set_serving_config(
        &server,
        &json!({"serve": "production", "traffic": {
            "split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
            "sticky_header": "X-User-ID"}}),
    );

    let client = admin_client();
    let url = format!("{}/v2/models/iris/infer", server.base);
    let mut seen: BTreeMap<String, BTreeSet<(String, Option<String>)>> = BTreeMap::new();
    for _round in 0..10 {
        for user in 0..100 {
            let user = format!("user-{user}");
            let reply = record(
                client
                    .post(&url)
                    .header("X-User-ID", &user)
                    .json(&iris_request()),
            );
            assert_eq!(reply.status, 200, "{user}: {}", reply.describe());
            seen.entry(user)
                .or_default()
                .insert((reply.version, reply.variant));
        }
    }
    let mut on_v2 = 0;
    for (user, answers) in &seen {
        assert_eq!(answers.len(), 1, "{user} saw {answers:?}");
        let (version, variant) = answers.iter().next().expect("one answer");
        assert_eq!(
            variant.as_deref(),
            Some(format!("v{version}").as_str()),
            "{user}: the variant header names the version"
        );
        on_v2 += usize::from(version == "2");
    }
    // Each user sent 10 of the 1,000 requests.
    let share_v2 = on_v2 as f64 * 10.0 / 1000.0;
    assert!(
        (0.45..=0.55).contains(&share_v2),
        "version 2 answered {:.0} % of the requests, not 50 ± 5",
        share_v2 * 100.0
    );

    load.wait_for_replies(50, Duration::from_secs(60));
    let replies = load.stop_expecting_no_failure(80);
    // Without the header the split is at random, over both versions.
    let late: Vec<&Reply> = replies.iter().rev().take(50).collect();
    for version in ["1", "2"] {
        assert!(
            late.iter().any(|r| r.version == version),
            "version {version} answers requests with no user id"
        );
    }
    for variant in ["v1", "v2"] {
        let label = format!("variant=\"{variant}\"");
        let counted = server.metric_sum(
            "ferroserve_requests_total",
            &["model=\"iris\"", label.as_str()],
        );
        assert!(counted > 0.0, "ferroserve_requests_total with {label}");
    }
}

#[test]
fn a_shadow_failing_every_request_never_changes_a_primary_answer() {
    let server = server_with_loaded_v2();
    let client = admin_client();
    let url = format!("{}/v2/models/iris/infer", server.base);
    let rows = [
        [5.1, 3.5, 1.4, 0.2],
        [5.7, 2.8, 4.1, 1.3],
        [6.3, 3.3, 6.0, 2.5],
    ];
    let request_for = |row: &[f64; 4]| json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]});
    let without_shadow: Vec<Value> = rows
        .iter()
        .map(|row| {
            let reply = record(client.post(&url).json(&request_for(row)));
            assert_eq!(reply.status, 200, "{}", reply.describe());
            reply.body["outputs"].clone()
        })
        .collect();

    let load = RecordingLoad::start(&server.base, LOAD_THREADS);
    load.wait_for_replies(30, Duration::from_secs(60));
    inject_faults(&server, 2, &json!({"error_rate": 1.0}));
    set_serving_config(
        &server,
        &json!({"serve": "production", "version_policy": {"latest": 2},
                "traffic": {"shadow": {"version": 2, "percent": 100}}}),
    );
    assert_eq!(
        faults_of(&server, 2)["error_rate"],
        1.0,
        "the shadow is the loaded version with the fault"
    );
    for _ in 0..10 {
        for (row, expected) in rows.iter().zip(&without_shadow) {
            let reply = record(client.post(&url).json(&request_for(row)));
            assert_eq!(
                (reply.status, reply.version.as_str()),
                (200, "1"),
                "{}",
                reply.describe()
            );
            assert_eq!(
                &reply.body["outputs"], expected,
                "the shadow changed an answer"
            );
        }
    }

    let give_up = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let (status, body) = api(&server, Method::GET, "/api/v1/models/iris/shadow", None);
        assert_eq!(status, 200, "{body}");
        if body["shadow"]["errors"].as_u64().unwrap_or(0) >= 50 {
            break body;
        }
        assert!(
            Instant::now() < give_up,
            "the shadow never counted 50 errors: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let shadow = &report["shadow"];
    assert_eq!(shadow["version"], 2, "{report:#}");
    assert_eq!(shadow["ok"], 0, "{report:#}");
    assert_eq!(shadow["error_rate"], 1.0, "{report:#}");
    let errors = server.metric_sum(
        "ferroserve_shadow_requests_total",
        &["model=\"iris\"", "version=\"2\"", "outcome=\"error\""],
    );
    assert!(errors > 0.0, "shadow errors in /metrics");

    load.wait_for_replies(50, Duration::from_secs(60));
    let replies = load.stop_expecting_no_failure(80);
    let others: Vec<&Reply> = replies.iter().filter(|r| r.version != "1").collect();
    assert!(
        others.is_empty(),
        "only version 1 answers: {:?}",
        others.first()
    );
}

#[test]
fn pinning_routes_to_the_version_named_unless_switched_off() {
    let server = Server::start(&[]);
    assert_eq!(register_iris_version(&server, "pinned"), 2);
    let load = RecordingLoad::start(&server.base, 2);
    load.wait_for_replies(30, Duration::from_secs(60));
    let split = json!([{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]);
    set_serving_config(
        &server,
        &json!({"serve": "production", "traffic": {"split": split}}),
    );
    let client = admin_client();
    let infer = format!("{}/v2/models/iris/infer", server.base);
    let pinned = |version: &str| {
        record(
            client
                .post(&infer)
                .header("x-model-version", version)
                .json(&iris_request()),
        )
    };
    let by_url = |version: &str| {
        let url = format!("{}/v2/models/iris/versions/{version}/infer", server.base);
        record(client.post(url).json(&iris_request()))
    };
    for _ in 0..20 {
        for version in ["1", "2"] {
            for reply in [pinned(version), by_url(version)] {
                assert_eq!(
                    (reply.status, reply.version.as_str()),
                    (200, version),
                    "pinned to {version} under a split: {}",
                    reply.describe()
                );
            }
        }
    }

    set_serving_config(
        &server,
        &json!({"serve": "production", "traffic": {"split": split, "allow_pinning": false}}),
    );
    for reply in [pinned("1"), by_url("1"), pinned("2")] {
        assert_eq!(reply.status, 403, "{}", reply.describe());
        assert!(
            reply.error().contains("allow_pinning"),
            "the refusal names the switch: {}",
            reply.describe()
        );
    }

    // During a rollout, pinning (allowed again) reaches either version.
    set_serving_config(&server, &json!({"serve": "production"}));
    start_rollout(&server, &long_rollout_of_v2());
    for _ in 0..20 {
        for version in ["1", "2"] {
            let reply = pinned(version);
            assert_eq!(
                (reply.status, reply.version.as_str()),
                (200, version),
                "pinned to {version} during a rollout: {}",
                reply.describe()
            );
        }
    }
    rollout_action(&server, "abort", "aborted");
    load.stop_expecting_no_failure(50);
}
