//! Replicas sharing one PostgreSQL registry and one artifact store follow
//! each other's changes as they commit: with polling slowed to a minute, a
//! promotion made through one replica is served by the other within a
//! second, because the registry notifies it (LISTEN/NOTIFY).

mod common;

use std::time::{Duration, Instant};

use common::load::{client, iris_request, send};
use common::pg::TempPostgres;
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
fn a_promotion_through_one_replica_is_served_by_another_within_a_second() {
    let postgres = TempPostgres::start();
    let registry = postgres.url("postgres");
    let artifacts = tempfile::tempdir().expect("shared artifact folder");
    let store = artifacts.path().to_str().expect("UTF-8 path");
    let replica = || {
        Server::start(&[
            "--registry-url",
            &registry,
            "--artifact-store",
            store,
            "--registry-poll-ms",
            "60000",
            "--no-example",
        ])
    };
    let a = replica();
    let b = replica();

    let first = register(&a, "iris", iris_variant("v1"));
    let promoted = Instant::now();
    promote(&a, "iris", first);
    time_until_served(&b, &first.to_string(), promoted);

    let mut figures = Vec::new();
    for label in ["v2", "v3", "v4"] {
        let version = register(&a, "iris", iris_variant(label));
        promote(&a, "iris", version);
        let answered = Instant::now();
        let took = time_until_served(&b, &version.to_string(), answered);
        assert!(
            took < PROPAGATION,
            "replica B served version {version} {took:?} after A's promotion answered"
        );
        figures.push(took);
        assert_eq!(served_version(&a), Some(version.to_string()));
    }
    eprintln!("promotion through A served by B after {figures:?}");

    // And back: a change through B reaches A as quickly.
    let (status, body) = send(
        client()
            .post(format!("{}/api/v1/models/iris/rollback", b.base))
            .header("x-ferroserve-actor", "e2e"),
    );
    assert_eq!(status, 200, "rollback: {body}");
    let answered = Instant::now();
    let back = body["version"]["version"].clone();
    assert_eq!(back, json!(first + 2), "{body}");
    let took = time_until_served(&a, &back.to_string(), answered);
    assert!(
        took < PROPAGATION,
        "replica A followed B's rollback after {took:?}"
    );
    drop((a, b));
    drop(postgres);
}
