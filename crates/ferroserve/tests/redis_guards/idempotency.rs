//! Idempotency keys shared through a real `redis-server` by two stores, as
//! two replicas would: an answer kept by one replays on the other, another
//! body is a mismatch on either, and a request in flight on one makes the
//! other wait for its answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use ferroserve_serving::guard::idempotency::{
    Claim, IdempotencyConfig, IdempotencyStore, StoredResponse,
};

/// A store over its own link to `redis`, as one replica holds.
fn replica(redis: &RedisServer) -> IdempotencyStore {
    IdempotencyStore::new(IdempotencyConfig::default(), Some(redis.link()))
}

/// Two replicas whose links are both up: a probe answer kept by one
/// replays on the other only once both go through Redis (this crate has
/// no redis client of its own to send a PING).
async fn two_replicas(redis: &RedisServer) -> (IdempotencyStore, IdempotencyStore) {
    let (a, b) = (replica(redis), replica(redis));
    let until = Instant::now() + Duration::from_secs(5);
    for probe in 0.. {
        assert!(Instant::now() < until, "redis links never connected");
        let key = format!("probe-{probe}");
        if let Ok(Claim::First(guard)) = a.claim(&key, [0; 32], soon()).await {
            guard.complete(Some(answer("probe"))).await;
            if let Ok(Claim::Replay(_)) = b.claim(&key, [0; 32], soon()).await {
                return (a, b);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!("the probe loop only ends by returning or failing")
}

fn answer(body: &str) -> StoredResponse {
    StoredResponse {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: body.as_bytes().to_vec(),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn replicas_share_keys_through_redis() {
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis).await;

    let Claim::First(guard) = a.claim("c\nm\nk1", [1; 32], soon()).await.unwrap() else {
        panic!("the first claim runs");
    };
    guard.complete(Some(answer("from a"))).await;
    match b.claim("c\nm\nk1", [1; 32], soon()).await.unwrap() {
        Claim::Replay(r) => assert_eq!(r, answer("from a")),
        other => panic!("expected a replay on the other replica, got {other:?}"),
    }
    assert!(matches!(
        b.claim("c\nm\nk1", [2; 32], soon()).await.unwrap(),
        Claim::Mismatch
    ));
    assert!(matches!(
        a.claim("c\nm\nk1", [2; 32], soon()).await.unwrap(),
        Claim::Mismatch
    ));
}

#[tokio::test]
async fn a_duplicate_on_another_replica_waits_for_the_first() {
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis).await;
    let b = Arc::new(b);

    let Claim::First(guard) = a.claim("c\nm\nk2", [3; 32], soon()).await.unwrap() else {
        panic!("the first claim runs");
    };
    // Different body while in flight: refused at once.
    assert!(matches!(
        b.claim("c\nm\nk2", [4; 32], soon()).await.unwrap(),
        Claim::Mismatch
    ));
    let lapses = redis.command_calls("pttl");
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.claim("c\nm\nk2", [3; 32], soon()).await })
    };
    // A duplicate asks how long the marker lasts only after subscribing to
    // the key's news and finding it in flight: that shows it waiting,
    // however slowly the machine runs.
    let until = Instant::now() + Duration::from_secs(30);
    while redis.command_calls("pttl") < lapses + 1 {
        assert!(
            Instant::now() < until,
            "the duplicate never waited on the key"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!waiter.is_finished(), "the duplicate waits for the first");
    guard.complete(Some(answer("slow"))).await;
    match waiter.await.unwrap().unwrap() {
        Claim::Replay(r) => assert_eq!(r, answer("slow")),
        other => panic!("expected a replay after the wait, got {other:?}"),
    }

    // Past its deadline, a duplicate of a request still running is a conflict.
    let _running = a.claim("c\nm\nk3", [5; 32], soon()).await.unwrap();
    let error = b
        .claim(
            "c\nm\nk3",
            [5; 32],
            Instant::now() + Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ferroserve_core::ErrorKind::Conflict);
}

/// A first request whose process died never announces its answer: its
/// marker lapses with its window, and the waiting duplicate runs then,
/// well before its own deadline.
#[tokio::test]
async fn a_duplicate_runs_once_the_first_requests_marker_lapses() {
    let redis = RedisServer::start();
    let (_, b) = two_replicas(&redis).await;
    let short = IdempotencyConfig {
        window: Duration::from_millis(300),
        ..IdempotencyConfig::default()
    };
    let dying = IdempotencyStore::new(short, Some(redis.link()));
    let held = loop {
        // The new link may still be connecting: until then a claim is kept
        // in process (no SET reaches Redis) and is given up to try again.
        let sets = redis.command_calls("set");
        let claim = dying.claim("c\nm\nk9", [9; 32], soon()).await.unwrap();
        if let (Claim::First(guard), true) = (claim, redis.command_calls("set") > sets) {
            break guard;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let waiter = tokio::spawn(async move { b.claim("c\nm\nk9", [9; 32], deadline).await });
    // It waits on the marker (asks how long it lasts) rather than running.
    let lapses = redis.command_calls("pttl");
    let until = Instant::now() + Duration::from_secs(10);
    while redis.command_calls("pttl") <= lapses && !waiter.is_finished() {
        assert!(
            Instant::now() < until,
            "the duplicate neither waited nor ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match waiter.await.unwrap().unwrap() {
        Claim::First(_) => {}
        other => panic!("expected to run once the marker lapsed, got {other:?}"),
    }
    assert!(
        Instant::now() < deadline,
        "woken by the lapse, not by its deadline"
    );
    // Held (never completed nor released) until the duplicate has run.
    drop(held);
}

#[tokio::test]
async fn a_released_key_runs_again_on_another_replica() {
    let redis = RedisServer::start();
    let (a, b) = two_replicas(&redis).await;

    let Claim::First(guard) = a.claim("c\nm\nk4", [6; 32], soon()).await.unwrap() else {
        panic!("the first claim runs");
    };
    guard.complete(None).await;
    assert!(matches!(
        b.claim("c\nm\nk4", [6; 32], soon()).await.unwrap(),
        Claim::First(_)
    ));
}
