//! Monitoring over the whole service: three replicas on one PostgreSQL
//! registry pool their drift windows there. Rows sent a third to each
//! replica fill one window of the service (closed by the leader from every
//! replica's part), and a shift of the inputs sent through all three fires
//! the alert once: one webhook call and one `monitor_alert` in the audit
//! log. Every replica answers drift reads with the service's windows.

mod common;

use std::time::Duration;

use common::drift::{
    drift, fired, iris_rows, is_watched, recorded_alerts, send_rows, shifted_rows, wait_until,
    watched_iris, WINDOW,
};
use common::fleet::SharedRegistry;
use common::webhook::Webhook;

#[test]
fn a_drift_shift_through_every_replica_fires_the_alert_once() {
    let webhook = Webhook::start();
    let shared = SharedRegistry::start();
    let replica = || shared.replica(&["--webhook-allow", "127.0.0.1"]);
    let leader = replica();
    leader.wait_for_metric("ferroserve_leader 1");
    let (b, c) = (replica(), replica());
    let bases = [leader.base.as_str(), b.base.as_str(), c.base.as_str()];

    let version = watched_iris(&leader, "iris", &webhook.url);
    for base in bases {
        wait_until("every replica watches iris against its profile", || {
            is_watched(&drift(base, "iris", version))
        });
    }

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
