//! Result cache against a real `redis-server`: L2 hits fill L1, two server
//! processes share answers through Redis, and Redis dying under load fails
//! no request and comes back when Redis does.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{repo_root, Server};
use ferroserve_core::{InferRequest, Tensor, TensorData};
use ferroserve_serving::cache::{CacheConfig, CacheKey, CacheStatus, ResultCache};
use ferroserve_serving::ewma::Ewma;
use serde_json::{json, Value};

fn iris_body(seed: u32, id: &str) -> Value {
    let x = seed as f32 / 10.0;
    json!({"id": id, "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
        "data": [5.0 + x, 3.0, 1.4, 0.2]}]})
}

/// Sends one iris request; returns status, cache header and body.
fn infer(
    client: &reqwest::blocking::Client,
    server: &Server,
    body: &Value,
) -> (u16, String, Value) {
    let response = client
        .post(format!("{}/v2/models/iris/infer", server.base))
        .json(body)
        .send()
        .expect("request is sent");
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-ferroserve-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, cache, response.json().unwrap_or(Value::Null))
}

fn cached_server(redis: &RedisServer) -> Server {
    let model = format!(
        "iris={}",
        repo_root().join("examples/iris/model.onnx").display()
    );
    Server::start(&[
        "--no-example",
        "--model",
        &model,
        "--cache",
        "--redis-url",
        &redis.url(),
        // Iris runs in microseconds: without this it would skip Redis as too cheap.
        "--cache-cost-aware",
        "false",
        // Generous for a loaded CI machine; the default is 5 ms.
        "--redis-timeout-ms",
        "200",
        "--redis-breaker-failures",
        "2",
        "--redis-breaker-cooldown-ms",
        "200",
    ])
}

/// Computes fresh inputs on `writer` until `reader` answers one from Redis
/// (connections come up in the background); returns the seed that hit.
fn until_shared_hit(writer: &Server, reader: &Server, first_seed: u32) -> u32 {
    let client = common::admin_client();
    let until = Instant::now() + Duration::from_secs(20);
    let mut seed = first_seed;
    while Instant::now() < until {
        let (status, cache, first) = infer(&client, writer, &iris_body(seed, "first"));
        assert_eq!((status, cache.as_str()), (200, "miss"), "{first}");
        std::thread::sleep(Duration::from_millis(50));
        let (status, cache, second) = infer(&client, reader, &iris_body(seed, "second"));
        assert_eq!(status, 200, "{second}");
        if cache == "hit-l2" {
            assert_eq!(second["id"], "second", "the id is the new request's");
            assert_eq!(second["outputs"], first["outputs"]);
            let (_, cache, _) = infer(&client, reader, &iris_body(seed, "third"));
            assert_eq!(cache, "hit-l1", "the L2 hit filled L1");
            return seed;
        }
        seed += 1;
    }
    panic!("the second server never answered from Redis");
}

#[tokio::test]
async fn l2_hit_fills_l1() {
    let redis = RedisServer::start();
    let config = CacheConfig {
        enabled_by_default: true,
        cost_aware: false,
        ..CacheConfig::default()
    };
    // Two replicas: each with its own connection to the one Redis.
    let writer = ResultCache::new(config.clone(), Some(redis.link())).expect("valid config");
    let reader = ResultCache::new(config, Some(redis.link())).expect("valid config");
    let ttl = Duration::from_secs(60);
    let cost = Ewma::default();
    let outputs =
        vec![Tensor::new("y", vec![1, 2], TensorData::Fp32(vec![0.25, 0.75])).expect("fits")];
    let request = InferRequest {
        inputs: vec![Tensor::new("x", vec![1], TensorData::Int64(vec![7])).expect("fits")],
        ..InferRequest::default()
    };
    let key = CacheKey::new("m", "1", &request);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        writer.put(key, &outputs, ttl, &cost).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some((found, status)) = reader.get(&key, ttl, &cost).await {
            assert_eq!(status, CacheStatus::HitL2);
            assert_eq!(found, outputs);
            break;
        }
        assert!(Instant::now() < until, "redis never answered");
    }
    let (found, status) = reader.get(&key, ttl, &cost).await.expect("now in L1");
    assert_eq!((found, status), (outputs, CacheStatus::HitL1));
    let other = CacheKey::new("m", "2", &request);
    assert!(
        reader.get(&other, ttl, &cost).await.is_none(),
        "another version misses"
    );
}

#[test]
fn two_processes_share_answers_through_redis() {
    let redis = RedisServer::start();
    let a = cached_server(&redis);
    let b = cached_server(&redis);
    until_shared_hit(&a, &b, 0);
    let client = common::admin_client();
    let opt_out = client
        .post(format!("{}/v2/models/iris/infer", b.base))
        .header("cache-control", "no-cache")
        .json(&iris_body(0, "x"))
        .send()
        .expect("sent");
    assert_eq!(opt_out.status(), 200);
    assert_eq!(opt_out.headers()["x-ferroserve-cache"], "bypass");
}

#[test]
fn redis_dying_under_load_fails_no_request_and_recovers() {
    let mut redis = RedisServer::start();
    let a = cached_server(&redis);
    let b = cached_server(&redis);
    let seed = until_shared_hit(&a, &b, 1000);
    // Put 20 answers in Redis (through a) that b has not seen yet.
    let client = common::admin_client();
    for s in 0..20 {
        let (status, _, _) = infer(&client, &a, &iris_body(2000 + s, "w"));
        assert_eq!(status, 200);
    }
    std::thread::sleep(Duration::from_millis(100));

    let b = Arc::new(b);
    let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (b, stop) = (b.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = common::admin_client();
                let mut seen = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (status, cache, body) =
                        infer(&client, &b, &iris_body(2000 + i % 40, "load"));
                    seen.push((started, status, cache, body));
                    i += 1;
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    redis.kill();
    *killed_at.lock().expect("lock") = Some(Instant::now());
    std::thread::sleep(Duration::from_millis(1300));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker finished"))
        .collect();
    let killed_at = killed_at.lock().expect("lock").expect("set");
    let failed: Vec<_> = results.iter().filter(|r| r.1 != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        results.len(),
        failed.first()
    );
    let after: Vec<_> = results
        .iter()
        .filter(|r| r.0 > killed_at + Duration::from_millis(50))
        .collect();
    assert!(
        after.len() > 10,
        "load went on after the kill ({} requests)",
        after.len()
    );
    assert!(
        after.iter().all(|r| r.2 != "hit-l2"),
        "no L2 hit once Redis is gone"
    );
    assert!(after.iter().any(|r| r.2 == "hit-l1"), "L1 still answers");

    redis.restart();
    until_shared_hit(&a, &b, seed + 5000);
}
