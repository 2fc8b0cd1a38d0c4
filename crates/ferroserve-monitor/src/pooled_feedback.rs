//! Feedback where the replicas of a service pool their predictions: the
//! replica that served a prediction hands it over to the pool within a
//! second (one row per key it can be labeled by), a feedback call through
//! any replica finds it there and labels it once for the whole service,
//! and the labeled pairs wait in the pool for the leader to add them to
//! the version's quality window (see [`crate::pool`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::feedback::{Feedback, FeedbackOutcome, Lookup, Pending};
use super::hub::Monitor;
use super::pending::outcomes_weight;
use super::pool::{PooledLabels, PooledPrediction, WindowPool, POOL_EVERY};
use super::quality::Outcome;
use super::watch::{now_ms, Watch};

/// Bytes a handed-over key costs besides its key and outcomes, counted so
/// that many tiny predictions add up too.
const ROW_OVERHEAD: usize = 96;

/// How long after a hand-over a prediction served by another replica is
/// surely in the pool: feedback naming one not found yet looks again then.
const HANDED_OVER_WITHIN: Duration = POOL_EVERY.saturating_add(Duration::from_millis(500));

/// Tries of a feedback call whose predictions other calls keep labeling
/// at the same moment.
const LABEL_ATTEMPTS: usize = 3;

/// One key of a prediction on its way to the pool.
pub(crate) struct HandedOver {
    model: String,
    prediction: PooledPrediction,
    /// Bytes it is counted as.
    weight: usize,
}

/// The predictions served here since the last hand-over, bounded like
/// the store of pending predictions: past `max` keys or `max_bytes`
/// bytes, the oldest leave first (and feedback will not find them).
pub(crate) struct HandOver {
    rows: VecDeque<HandedOver>,
    bytes: usize,
    max: usize,
    max_bytes: usize,
    dropped: u64,
}

impl HandOver {
    /// An empty hand-over of at most `max` keys and `max_bytes` bytes.
    pub(crate) fn new(max: usize, max_bytes: usize) -> Self {
        HandOver {
            rows: VecDeque::new(),
            bytes: 0,
            max: max.max(1),
            max_bytes,
            dropped: 0,
        }
    }

    /// Adds a prediction of `watch`'s version under each of its store
    /// `keys`, made by `client`.
    pub(crate) fn push(
        &mut self,
        watch: &Watch,
        keys: &[Arc<str>],
        client: Option<&str>,
        outcomes: &[Outcome],
    ) {
        let weight_of_outcomes = outcomes_weight(outcomes);
        let Ok(outcomes) = serde_json::to_value(outcomes) else {
            return;
        };
        let prediction = format!("{:016x}", rand::random::<u64>());
        for key in keys {
            let key = pool_key(watch.model(), key);
            let weight = ROW_OVERHEAD + key.len() + weight_of_outcomes;
            self.bytes += weight;
            self.rows.push_back(HandedOver {
                model: watch.model().to_owned(),
                prediction: PooledPrediction {
                    key,
                    prediction: prediction.clone(),
                    version: watch.version().to_owned(),
                    client: client.map(str::to_owned),
                    outcomes: outcomes.clone(),
                },
                weight,
            });
        }
        self.trim();
    }

    /// Everything waiting, and how many keys were dropped since the last
    /// take for want of room.
    fn take(&mut self) -> (Vec<HandedOver>, u64) {
        self.bytes = 0;
        let dropped = std::mem::take(&mut self.dropped);
        (self.rows.drain(..).collect(), dropped)
    }

    /// Puts back keys a hand-over could not deliver, ahead of newer ones.
    fn restore(&mut self, rows: Vec<HandedOver>) {
        for row in rows.into_iter().rev() {
            self.bytes += row.weight;
            self.rows.push_front(row);
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.rows.len() > self.max || self.bytes > self.max_bytes {
            let Some(oldest) = self.rows.pop_front() else {
                break;
            };
            self.bytes -= oldest.weight;
            self.dropped += 1;
        }
    }
}

/// The key a prediction is pooled under: its store key without the model,
/// `r:` or `k:` and the client's key, with `%` and NUL escaped (PostgreSQL
/// text holds no NUL).
fn pool_key(model: &str, store_key: &str) -> String {
    let rest = store_key
        .strip_prefix(model)
        .and_then(|rest| rest.strip_prefix('\0'))
        .unwrap_or(store_key);
    let (kind, id) = rest.split_once('\0').unwrap_or(("", rest));
    format!("{kind}:{}", id.replace('%', "%25").replace('\0', "%00"))
}

/// What a prediction found in the pool is to a feedback call.
enum Known {
    Pending(Arc<Pending>),
    /// Labeled already, and who made it.
    Labeled(Option<Arc<str>>),
}

/// The predictions a feedback call names, as found in the pool.
#[derive(Default)]
struct Found {
    /// Prediction id by pool key.
    keys: HashMap<String, String>,
    /// What is known of each prediction, by id.
    predictions: HashMap<String, Known>,
}

impl Found {
    /// Looks `keys` of `model` up in `pool`, replacing what was known of
    /// them; a key found nowhere is forgotten.
    async fn find(
        &mut self,
        monitor: &Monitor,
        pool: &dyn WindowPool,
        model: &str,
        keys: Vec<String>,
    ) -> Result<(), String> {
        let ttl_ms = u64::try_from(monitor.shared.feedback_ttl.as_millis()).unwrap_or(u64::MAX);
        let since = now_ms().saturating_sub(ttl_ms);
        for key in &keys {
            if let Some(id) = self.keys.remove(key) {
                self.predictions.remove(&id);
            }
        }
        for (found, labeled) in pool.find_predictions(model, keys, since).await? {
            let known = if labeled {
                Known::Labeled(found.client.as_deref().map(Arc::from))
            } else {
                // A version this replica does not watch (any more) cannot
                // be labeled here: the prediction is as good as unknown.
                let Some(watch) = monitor.watch(model, &found.version) else {
                    continue;
                };
                let outcomes = match serde_json::from_value::<Vec<Outcome>>(found.outcomes) {
                    Ok(outcomes) => outcomes,
                    Err(e) => {
                        tracing::warn!(%model, key = %found.key, error = %e, "a pooled prediction is unreadable; it is left out");
                        continue;
                    }
                };
                Known::Pending(Arc::new(Pending {
                    watch,
                    outcomes,
                    keys: vec![Arc::from(found.prediction.as_str())],
                    client: found.client.as_deref().map(Arc::from),
                }))
            };
            self.keys.insert(found.key, found.prediction.clone());
            self.predictions.insert(found.prediction, known);
        }
        Ok(())
    }

    /// The pool keys of predictions `ids`.
    fn keys_of(&self, ids: &[String]) -> Vec<String> {
        let ids: HashSet<&String> = ids.iter().collect();
        self.keys
            .iter()
            .filter(|(_, id)| ids.contains(id))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// What is known of the prediction under `store_key` of `model`.
    fn lookup(&self, model: &str, store_key: &str) -> Lookup {
        let known = self
            .keys
            .get(&pool_key(model, store_key))
            .and_then(|id| self.predictions.get(id));
        match known {
            Some(Known::Pending(pending)) => Lookup::Pending(pending.clone()),
            Some(Known::Labeled(owner)) => Lookup::Labeled(owner.clone()),
            None => Lookup::Unknown,
        }
    }
}

impl Monitor {
    /// Hands the predictions served here since the last hand-over to
    /// `pool`; what could not be delivered waits for the next one.
    pub(crate) async fn hand_over_predictions(&self, pool: &dyn WindowPool) -> Result<(), String> {
        let _turn = self.shared.handing_over.lock().await;
        let (rows, dropped) = self.lock_hand_over().take();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "predictions were served faster than they could be handed over; feedback will not find the oldest"
            );
        }
        let mut by_model: BTreeMap<String, Vec<HandedOver>> = BTreeMap::new();
        for row in rows {
            by_model.entry(row.model.clone()).or_default().push(row);
        }
        let mut models = by_model.into_iter();
        while let Some((model, rows)) = models.next() {
            let predictions = rows.iter().map(|r| r.prediction.clone()).collect();
            if let Err(e) = pool.add_predictions(&model, predictions).await {
                let undelivered = rows.into_iter().chain(models.flat_map(|(_, rows)| rows));
                self.lock_hand_over().restore(undelivered.collect());
                return Err(e);
            }
        }
        Ok(())
    }

    fn lock_hand_over(&self) -> std::sync::MutexGuard<'_, HandOver> {
        self.shared
            .hand_over
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `feedback` from `client` to predictions any replica served:
    /// every prediction answered here before the call is handed over
    /// first, a prediction not found yet is looked for again once another
    /// replica surely handed it over, and the labels are written all at
    /// once or not at all. The quality in the answer is the service's as
    /// the leader last published it (it adds these labels within a second).
    pub(crate) async fn pooled_feedback(
        &self,
        pool: &dyn WindowPool,
        model: &str,
        client: &str,
        feedback: Feedback,
    ) -> Result<FeedbackOutcome, String> {
        self.drained().await?;
        self.hand_over_predictions(pool)
            .await
            .map_err(|e| format!("cannot hand the predictions served here over: {e}"))?;
        let keys: HashSet<String> = feedback
            .store_keys(model)
            .iter()
            .map(|key| pool_key(model, key))
            .collect();
        let mut found = Found::default();
        found
            .find(self, pool, model, keys.iter().cloned().collect())
            .await?;
        let missing: Vec<String> = keys
            .into_iter()
            .filter(|key| !found.keys.contains_key(key))
            .collect();
        if !missing.is_empty() {
            tokio::time::sleep(HANDED_OVER_WITHIN).await;
            found.find(self, pool, model, missing).await?;
        }
        for _ in 0..LABEL_ATTEMPTS {
            let matched = feedback
                .clone()
                .match_pending(model, client, |key| found.lookup(model, key));
            let mut outcome = matched.outcome;
            let mut labels = Vec::new();
            let mut accepted = Vec::new();
            for batch in matched.batches {
                if let Err(reason) = batch.watch.check_labels(&batch.pairs) {
                    outcome.reject_batch(batch, &reason);
                    continue;
                }
                labels.push(PooledLabels {
                    version: batch.watch.version().to_owned(),
                    predictions: batch.keys.iter().map(|id| id.to_string()).collect(),
                    pairs: serde_json::to_value(&batch.pairs).map_err(|e| e.to_string())?,
                });
                accepted.push(batch);
            }
            let lost = if labels.is_empty() {
                Vec::new()
            } else {
                pool.label(model, labels).await?
            };
            if lost.is_empty() {
                for batch in &accepted {
                    outcome.applied(batch);
                    if let Some(quality) = batch.watch.quality() {
                        outcome
                            .quality
                            .insert(batch.watch.version().to_owned(), quality);
                    }
                }
                return Ok(outcome);
            }
            // Labeled meanwhile through another replica, or gone: look
            // again, and match without them.
            let keys = found.keys_of(&lost);
            found.find(self, pool, model, keys).await?;
        }
        Err("other feedback calls kept labeling the same predictions at the same moment; send this feedback again".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::{row, spec};
    use crate::hub::MonitorOptions;
    use crate::pool::tests::{MemoryPool, Replica};
    use crate::watch::RequestKeys;
    use ferroserve_core::{Tensor, TensorData};
    use serde_json::json;
    use std::sync::atomic::Ordering;

    /// A replica's monitor of `m` version 1 pooling in `pool`.
    fn replica(pool: &Arc<MemoryPool>, leads: bool) -> (Arc<Monitor>, Replica) {
        let monitor = Monitor::start(MonitorOptions::default(), None);
        let view = Replica {
            pool: pool.clone(),
            leads,
        };
        let shared = Replica {
            pool: pool.clone(),
            leads,
        };
        assert!(monitor.shared.pool.set(Arc::new(shared)).is_ok());
        monitor.shared.pooled.store(true, Ordering::Relaxed);
        monitor.sync_model("m", vec![("1".into(), spec(1000))]);
        (monitor, view)
    }

    fn feedback(body: serde_json::Value) -> Feedback {
        Feedback::from_json(&body).expect("valid")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn feedback_through_any_replica_labels_each_prediction_once_for_the_service() {
        let pool = Arc::new(MemoryPool::default());
        let (leader, leads) = replica(&pool, true);
        let (follower, follows) = replica(&pool, false);
        let watch = follower.watch("m", "1").expect("watched");
        for i in 0..10 {
            let keys = RequestKeys {
                request_ids: vec![format!("r{i}")],
                idempotency_key: (i == 5).then(|| "key-5".to_owned()),
                client: Some(Arc::from("ip:1")),
            };
            let output = Tensor::new("y", vec![1], TensorData::Int64(vec![i % 2])).expect("y");
            watch.observe(row(i as f64), &[output], keys);
        }
        follower.drained().await.expect("taken in");
        follower.pool_once(&follows).await;
        assert_eq!(
            pool.predictions.lock().expect("kept").len(),
            11,
            "one row per key"
        );

        let outcome = leader
            .feedback(
                "m",
                Arc::from("ip:1"),
                feedback(json!([
                    {"request_id": "r0", "label": 0},
                    {"request_id": "r1", "label": 0},
                    {"request_id": "r9", "labels": [1, 1]},
                    {"request_id": "zz", "label": 1},
                ])),
            )
            .await
            .expect("applied");
        assert_eq!(outcome.accepted, 2, "{outcome:?}");
        assert_eq!(outcome.unknown, ["zz"]);
        assert!(outcome.rejected[0].reason.contains("1 rows but 2 labels"));

        // The leader adds the labels; every replica reads the service's quality.
        leader.pool_once(&leads).await;
        follower.pool_once(&follows).await;
        for monitor in [&leader, &follower] {
            let report = monitor.report_json("m").expect("watched");
            let version = &report["versions"][0];
            assert_eq!(version["labeled_rows"], 2, "{report:#}");
            assert_eq!(version["quality"]["accuracy"], 0.5, "{report:#}");
        }

        // Labeled once, whichever replica hears of it again; other
        // clients are not told the prediction exists.
        let again = feedback(json!([{"request_id": "r0", "label": 1}]));
        let outcome = follower
            .feedback("m", Arc::from("ip:1"), again.clone())
            .await
            .expect("answered");
        assert_eq!((outcome.accepted, outcome.already_labeled.len()), (0, 1));
        let outcome = follower
            .feedback("m", Arc::from("ip:2"), again)
            .await
            .expect("answered");
        assert_eq!(outcome.unknown, ["r0"]);

        // Two calls labeling the same prediction at once, through two
        // replicas: one label stands.
        let both = feedback(json!([{"idempotency_key": "key-5", "label": 1}]));
        let (a, b) = tokio::join!(
            leader.feedback("m", Arc::from("ip:1"), both.clone()),
            follower.feedback("m", Arc::from("ip:1"), both),
        );
        let (a, b) = (a.expect("answered"), b.expect("answered"));
        assert_eq!(a.accepted + b.accepted, 1, "{a:?} {b:?}");
        assert_eq!(a.already_labeled.len() + b.already_labeled.len(), 1);
        let outcome = leader
            .feedback(
                "m",
                Arc::from("ip:1"),
                feedback(json!([{"request_id": "r5", "label": 1}])),
            )
            .await
            .expect("answered");
        assert_eq!(
            outcome.already_labeled,
            ["r5"],
            "both keys of it are labeled"
        );

        // The answer carries the service's quality as last published.
        leader.pool_once(&leads).await;
        follower.pool_once(&follows).await;
        let outcome = follower
            .feedback(
                "m",
                Arc::from("ip:1"),
                feedback(json!([{"request_id": "r3", "label": 0}])),
            )
            .await
            .expect("applied");
        assert_eq!(outcome.accepted, 1);
        assert_eq!(outcome.quality["1"].count, 3, "{outcome:?}");
        leader.pool_once(&leads).await;
        assert_eq!(
            leader.report("m").expect("watched").versions[0].labeled_rows,
            4
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn predictions_wait_for_the_pool_and_are_bounded_meanwhile() {
        let pool = Arc::new(MemoryPool::default());
        let (follower, follows) = replica(&pool, false);
        let watch = follower.watch("m", "1").expect("watched");
        let observe = |i: i64| {
            let keys = RequestKeys {
                request_ids: vec![format!("r{i}")],
                idempotency_key: None,
                client: Some(Arc::from("ip:1")),
            };
            let output = Tensor::new("y", vec![1], TensorData::Int64(vec![1])).expect("y");
            watch.observe(row(1.0), &[output], keys);
        };
        observe(0);
        follower.drained().await.expect("taken in");
        pool.failing.store(true, Ordering::Relaxed);
        follower.pool_once(&follows).await;
        assert!(pool.predictions.lock().expect("kept").is_empty());
        pool.failing.store(false, Ordering::Relaxed);
        follower.pool_once(&follows).await;
        assert!(
            pool.predictions.lock().expect("kept").contains_key("r:r0"),
            "handed over later"
        );

        let mut hand_over = HandOver::new(3, usize::MAX);
        for i in 0..5 {
            let key: Arc<str> = Arc::from(crate::watch::request_key("m", &format!("r{i}")));
            hand_over.push(&watch, &[key], None, &[Outcome::Number(1.0)]);
        }
        let (rows, dropped) = hand_over.take();
        let keys: Vec<&str> = rows.iter().map(|r| r.prediction.key.as_str()).collect();
        assert_eq!((keys, dropped), (vec!["r:r2", "r:r3", "r:r4"], 2));
        let mut small = HandOver::new(100, 2 * ROW_OVERHEAD + 200);
        for i in 0..10 {
            let key: Arc<str> = Arc::from(crate::watch::request_key("m", &format!("r{i}")));
            small.push(&watch, &[key], None, &[Outcome::Label("x".repeat(50))]);
            assert!(small.bytes <= small.max_bytes);
        }
    }

    #[test]
    fn pool_keys_drop_the_model_and_escape_what_text_cannot_hold() {
        let key = crate::watch::request_key("iris", "a%b\0c");
        assert_eq!(pool_key("iris", &key), "r:a%25b%00c");
        let key = crate::watch::idempotency_key("iris", "k-1");
        assert_eq!(pool_key("iris", &key), "k:k-1");
    }
}
