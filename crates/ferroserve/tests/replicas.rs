//! Replicas sharing one PostgreSQL registry and one artifact store follow
//! each other's changes as they commit: with polling slowed to a minute, a
//! promotion made through one of three replicas is served by the two
//! others within a second, because the registry notifies it
//! (LISTEN/NOTIFY), and no request of the traffic on all three fails.

mod common;

use std::time::{Duration, Instant};

use common::fleet::SharedRegistry;
use common::load::{client, iris_request, send, Load};
use common::registry_api::{iris_variant, promote, register};
use common::Server;
use serde_json::json;

/// How fast a change must reach another replica.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The version `server` answers iris with (`None` while it answers no 200).
fn served_version(server: &Server) -> Option<String> {
    let (status, body) = send(
        client()
            .post(format!("{}/v2/models/iris/infer", server.base))
            .json(&iris_request()),
    );
    (status == 200).then(|| body["model_version"].as_str().unwrap_or("").to_owned())
}

/// How long after `since` until `server` answers with `version` (polled
/// every 5 ms, for at most 30 s).
fn time_until_served(server: &Server, version: &str, since: Instant) -> Duration {
    let until = since + Duration::from_secs(30);
    loop {
        if served_version(server).as_deref() == Some(version) {
            return since.elapsed();
        }
        assert!(Instant::now() < until, "version {version} never served");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_promotion_through_one_replica_is_served_by_the_others_within_a_second_under_load() {
    let shared = SharedRegistry::start();
    let replica = || shared.replica(&["--registry-poll-ms", "60000"]);
    let (a, b, c) = (replica(), replica(), replica());
    let others = [&b, &c];

    let first = register(&a, "iris", iris_variant("v1"));
    let promoted = Instant::now();
    promote(&a, "iris", first);
    for replica in [&a, &b, &c] {
        time_until_served(replica, &first.to_string(), promoted);
    }
    // Traffic on every replica while versions change under it.
    let loads: Vec<Load> = [&a, &b, &c]
        .iter()
        .map(|replica| Load::start(&replica.base, 1))
        .collect();

    let mut figures = Vec::new();
    for label in ["v2", "v3", "v4"] {
        let version = register(&a, "iris", iris_variant(label));
        promote(&a, "iris", version);
        let answered = Instant::now();
        for replica in others {
            let took = time_until_served(replica, &version.to_string(), answered);
            assert!(
                took < PROPAGATION,
                "{} served version {version} {took:?} after the promotion through {} answered",
                replica.base,
                a.base
            );
            figures.push(took);
        }
        assert_eq!(served_version(&a), Some(version.to_string()));
    }
    eprintln!("promotions through A served by B and C after {figures:?}");

    // And the other way: a rollback through B reaches A and C as quickly.
    let (status, body) = send(
        client()
            .post(format!("{}/api/v1/models/iris/rollback", b.base))
            .header("x-ferroserve-actor", "e2e"),
    );
    assert_eq!(status, 200, "rollback: {body}");
    let answered = Instant::now();
    let back = body["version"]["version"].clone();
    assert_eq!(back, json!(first + 2), "{body}");
    for replica in [&a, &c] {
        let took = time_until_served(replica, &back.to_string(), answered);
        assert!(
            took < PROPAGATION,
            "{} followed B's rollback after {took:?}",
            replica.base
        );
    }
    for load in loads {
        load.stop_expecting_no_failure(10);
    }
    drop((a, b, c));
    drop(shared);
}
