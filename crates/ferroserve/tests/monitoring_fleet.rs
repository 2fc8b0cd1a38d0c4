//! Monitoring over the whole service: three replicas on one PostgreSQL
//! registry pool their drift windows there. Rows sent a third to each
//! replica fill one window of the service (closed by the leader from every
//! replica's part), and a shift of the inputs sent through all three fires
//! the alert once: one webhook call and one `monitor_alert` in the audit
//! log. Every replica answers drift reads with the service's windows.
//! Feedback sent through a replica other than the one that served the
//! prediction labels it, once, and the service has one online accuracy
//! over every label, whose floor alerts once.

mod common;

use std::time::Duration;

use common::drift::{
    drift, fired, iris_rows, is_watched, recorded_alerts, send_identified_rows, send_rows,
    shifted_rows, watched_iris, watched_iris_alerting, Identified, WINDOW,
};
use common::fleet::SharedRegistry;
use common::load::{client, send};
use common::webhook::Webhook;
use common::{wait_until, Server};
use serde_json::{json, Value};

/// Three replicas on `shared` that may call a webhook on this host; the
/// first leads.
fn three_replicas(shared: &SharedRegistry) -> (Server, Server, Server) {
    let replica = || shared.replica(&["--webhook-allow", "127.0.0.1"]);
    let leader = replica();
    leader.wait_for_metric("ferroserve_leader 1");
    (leader, replica(), replica())
}

/// Waits until every replica at `bases` watches iris `version` against
/// its profile.
fn wait_until_watched(bases: &[&str], version: i64) {
    for base in bases {
        wait_until("every replica watches iris against its profile", || {
            is_watched(&drift(base, "iris", version))
        });
    }
}

#[test]
fn a_drift_shift_through_every_replica_fires_the_alert_once() {
    let webhook = Webhook::start();
    let shared = SharedRegistry::start();
    let (leader, b, c) = three_replicas(&shared);
    let bases = [leader.base.as_str(), b.base.as_str(), c.base.as_str()];

    let version = watched_iris(&leader, "iris", &webhook.url);
    wait_until_watched(&bases, version);

    // In distribution, a third through each replica: one window of the
    // service, closed by the leader, without an alert.
    send_rows(&bases, "iris", &iris_rows());
    wait_until("the leader closes the service's first window", || {
        drift(&leader.base, "iris", version)["windows_closed"] == 1
    });
    let first = drift(&leader.base, "iris", version);
    assert_eq!(first["latest"]["rows"], WINDOW, "{first:#}");
    assert_eq!(first["latest"]["dataset_drift"], false, "{first:#}");
    assert_eq!(fired(&first), 0);
    for base in &bases[1..] {
        assert!(
            drift(base, "iris", version)["observed_requests"].as_u64() >= Some(4),
            "each replica took its third in"
        );
        // Every replica answers drift reads with the service's windows.
        wait_until("the other replicas report the service's window", || {
            drift(base, "iris", version)["latest"] == first["latest"]
        });
    }

    // Shifted petal length through all three: one alert for the service.
    send_rows(&bases, "iris", &shifted_rows());
    let alerts = webhook.wait_for(1);
    assert_eq!(alerts[0]["rule"], "feature_psi", "{alerts:?}");
    assert_eq!(alerts[0]["figures"]["max_psi_feature"], "petal_length");
    assert_eq!(alerts[0]["figures"]["window"]["rows"], WINDOW);
    // Every replica hands its rows over each second: give them time to
    // fire a second alert, if they could.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(webhook.received().len(), 1, "{:?}", webhook.received());
    assert_eq!(
        recorded_alerts(&c.base, "iris"),
        1,
        "one alert in the audit log"
    );
    for base in bases {
        wait_until("every replica reports the one alert", || {
            fired(&drift(base, "iris", version)) == 1
        });
    }
    drop((leader, b, c));
    drop(shared);
}

/// Feedback for `sent` through `base`, the truth of request `i` given by
/// `truth(i, predicted)`; returns the answer.
fn feedback_through(
    base: &str,
    sent: &[(usize, &Identified)],
    truth: impl Fn(usize, &[i64]) -> Vec<i64>,
) -> Value {
    let entries: Vec<Value> = sent
        .iter()
        .map(|(i, s)| json!({"request_id": s.request_id, "labels": truth(*i, &s.predicted)}))
        .collect();
    let (status, answer) = send(
        client()
            .post(format!("{base}/api/v1/models/iris/feedback"))
            .json(&json!({ "feedback": entries })),
    );
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn feedback_through_any_replica_gives_one_online_accuracy_for_the_service() {
    let webhook = Webhook::start();
    let shared = SharedRegistry::start();
    let (leader, b, c) = three_replicas(&shared);
    let bases = [leader.base.as_str(), b.base.as_str(), c.base.as_str()];
    let floor = json!([{"rule": "accuracy_below", "floor": 0.9, "min_count": 100}]);
    let version = watched_iris_alerting(&leader, "iris", &webhook.url, floor);
    wait_until_watched(&bases, version);

    // 15 requests of 10 rows, each through the next replica.
    let sent = send_identified_rows(&bases, "iris", &iris_rows(), "q");
    // The truth is the answer for the first 10 requests and another class
    // for the last 5: 100 of 150 rows right.
    let truth = |i: usize, predicted: &[i64]| -> Vec<i64> {
        if i < 10 {
            predicted.to_vec()
        } else {
            predicted.iter().map(|p| (p + 1) % 3).collect()
        }
    };
    // The feedback on what a replica served goes through the next one.
    for served_by in 0..bases.len() {
        let served: Vec<(usize, &Identified)> = sent
            .iter()
            .enumerate()
            .filter(|(i, _)| i % bases.len() == served_by)
            .collect();
        let through = bases[(served_by + 1) % bases.len()];
        let answer = feedback_through(through, &served, truth);
        assert_eq!(answer["accepted"], 5, "{answer:#}");
        assert_eq!(answer["labeled_rows"], 50, "{answer:#}");
        assert_eq!(answer["unknown"], json!([]), "{answer:#}");
    }

    // One online accuracy over the 150 labels, read through any replica.
    for base in bases {
        wait_until(
            "every replica reports the service's online accuracy",
            || {
                let report = drift(base, "iris", version);
                report["labeled_rows"] == 150
                    && report["quality"]["accuracy"].as_f64() == Some(100.0 / 150.0)
            },
        );
    }
    let alerts = webhook.wait_for(1);
    assert_eq!(alerts[0]["rule"], "accuracy_below", "{alerts:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(webhook.received().len(), 1, "{:?}", webhook.received());
    assert_eq!(
        recorded_alerts(&b.base, "iris"),
        1,
        "one alert in the audit log"
    );

    // Labeled once: the same feedback through yet another replica is told so.
    let first = [(0, &sent[0])];
    let again = feedback_through(&c.base, &first, truth);
    assert_eq!(again["accepted"], 0, "{again:#}");
    assert_eq!(again["already_labeled"], json!(["q-0"]), "{again:#}");
    drop((leader, b, c));
    drop(shared);
}
