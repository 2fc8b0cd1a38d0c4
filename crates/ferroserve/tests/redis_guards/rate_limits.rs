//! Rate limits shared through Redis: two replicas take from one bucket, and
//! checks still answer (from each replica's own buckets) once Redis is gone;
//! and the same across two server processes, over HTTP.

use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::Server;
use ferroserve_serving::guard::rate_limit::{
    Limit, LimitScope, ModelRateLimit, RateLimitConfig, RateLimiter,
};
use ferroserve_serving::redis_link::RedisLink;

/// Waits (at most 5 s) until `replica` has checked a bucket in Redis over
/// `link` (the link connects in the background).
async fn wait_connected(replica: &RateLimiter, link: &RedisLink) {
    let warm_up = ModelRateLimit {
        model: Some(Limit {
            requests_per_s: 1000.0,
            burst: 1000,
        }),
        per_client: None,
    };
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let _ = replica.check("probe", "warm-up", &warm_up).await;
        if link.round_trip().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the redis link never connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_buckets_and_fall_back_when_redis_dies() {
    let mut server = RedisServer::start();
    let config = RateLimitConfig {
        per_client: None,
        per_model: Some(Limit {
            requests_per_s: 0.1,
            burst: 6,
        }),
    };
    let links = [server.link(), server.link()];
    let replicas = [
        RateLimiter::new(config, Some(links[0].clone())),
        RateLimiter::new(config, Some(links[1].clone())),
    ];
    for (replica, link) in replicas.iter().zip(&links) {
        wait_connected(replica, link).await;
    }
    let policy = ModelRateLimit::default();

    let mut passed = 0;
    for i in 0..6 {
        let client = format!("client-{i}");
        match replicas[i % 2].check(&client, "iris", &policy).await {
            Ok(()) => passed += 1,
            Err(refused) => panic!("check {i} refused: {refused:?}"),
        }
    }
    assert_eq!(passed, 6);
    let refused = replicas[0]
        .check("client-6", "iris", &policy)
        .await
        .expect_err("the shared bucket is empty");
    assert_eq!(refused.scope, LimitScope::Model);
    assert!(refused.retry_after > Duration::ZERO);
    assert!(
        refused.retry_after <= Duration::from_secs(10),
        "{refused:?}"
    );
    let refused = replicas[1]
        .check("client-7", "iris", &policy)
        .await
        .expect_err("the other replica sees the same bucket");
    assert_eq!(refused.scope, LimitScope::Model);

    // Without Redis each replica answers from its own buckets, which have
    // not given a token yet: a full burst each, then refusals.
    server.kill();
    for (r, replica) in replicas.iter().enumerate() {
        let mut passed = 0;
        for i in 0..8 {
            let start = Instant::now();
            let outcome = replica.check(&format!("client-{i}"), "iris", &policy).await;
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "a check took {:?} with redis down",
                start.elapsed()
            );
            match outcome {
                Ok(()) => passed += 1,
                Err(refused) => assert_eq!(refused.scope, LimitScope::Model),
            }
        }
        assert_eq!(passed, 6, "replica {r} passed {passed} of 8 without redis");
    }
}

/// Sends one iris request with API key `token` (none: anonymously, named
/// by the address); returns status and Retry-After.
fn infer_as(server: &Server, token: Option<&str>) -> (u16, Option<String>) {
    let body = serde_json::json!({"inputs": [{"name": "input", "shape": [1, 4],
        "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}]});
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{}/v2/models/iris/infer", server.base))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("request is sent");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (response.status().as_u16(), retry_after)
}

fn limited_server(redis: &RedisServer) -> Server {
    Server::start(&[
        "--no-example",
        "--model",
        "iris=examples/iris/model.onnx",
        "--redis-url",
        &redis.url(),
        "--redis-timeout-ms",
        "200",
        "--client-rate-limit",
        "0.1",
        "--client-rate-burst",
        "6",
    ])
}

/// Sends requests under a throw-away key (`warm-up`, made on this server)
/// until the server has checked its buckets in Redis (its link connects in
/// the background).
fn wait_until_shared(server: &Server) {
    let made: serde_json::Value = crate::common::admin_client()
        .post(format!("{}/api/v1/keys", server.base))
        .json(&serde_json::json!({"name": "warm-up", "role": "predictor"}))
        .send()
        .and_then(|r| r.json())
        .expect("a warm-up key");
    let warm_up = made["token"].as_str().expect("token").to_owned();
    let until = Instant::now() + Duration::from_secs(10);
    let line = "ferroserve_rate_limit_checks_total{store=\"redis\"}";
    while Instant::now() < until {
        infer_as(server, Some(&warm_up));
        let metrics = crate::common::admin_client()
            .get(format!("{}/metrics", server.base))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        if metrics.lines().any(|l| l.starts_with(line)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {} never used redis for its limits", server.base);
}

#[test]
fn two_server_processes_share_a_clients_bucket() {
    let redis = RedisServer::start();
    let (a, b) = (limited_server(&redis), limited_server(&redis));
    wait_until_shared(&a);
    wait_until_shared(&b);
    let mut passed = 0;
    let mut refused = Vec::new();
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        // The same key (the provisioned admin key, known to both) on
        // either process.
        match infer_as(server, Some(crate::common::ADMIN_TOKEN)) {
            (200, _) => passed += 1,
            (429, retry_after) => refused.push(retry_after),
            (status, _) => panic!("unexpected status {status}"),
        }
    }
    assert_eq!(passed, 6, "one burst of 6 across both processes");
    assert_eq!(refused.len(), 4);
    assert!(
        refused.iter().all(|r| r
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().unwrap_or(0) >= 1)),
        "every 429 says when to retry: {refused:?}"
    );
    assert_eq!(infer_as(&a, None).0, 200, "other clients are not limited");
}
