//! The figures of stable and canary over one rollout window (the current
//! step, on this server): requests, 5xx errors, fallback answers, latency
//! and predicted classes, recorded by the request tasks as they answer and
//! read by the gate checks. A window's [`WindowShare`] is what replicas
//! exchange: counts and histogram buckets that add up, so the figures of
//! the whole service are those of every replica's share merged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Most distinct predicted classes counted per side; further classes count
/// under [`OTHER_CLASSES`].
pub const MAX_CLASSES: usize = 256;

/// Name under which classes beyond [`MAX_CLASSES`] are counted.
pub const OTHER_CLASSES: &str = "_other";

/// Longest latency the histogram holds, in microseconds (one hour); longer
/// ones count as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Which version of a rollout answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The version serving before the rollout started.
    Stable,
    /// The version being rolled out.
    Canary,
}

impl Side {
    /// `"stable"` or `"canary"`, as in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Stable => "stable",
            Side::Canary => "canary",
        }
    }
}

/// What became of one request, as the window records it.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// HTTP status of the answer (gRPC codes mapped to theirs).
    pub status: u16,
    /// Time from receipt to answer.
    pub elapsed: Duration,
    /// A fallback answered instead of the version.
    pub fallback: bool,
    /// Predicted classes of the answer's rows (empty for non-classifiers).
    pub classes: &'a [String],
}

/// Figures of one side over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SideFigures {
    /// Requests answered (4xx excluded).
    pub requests: u64,
    /// Requests answered with a 5xx.
    pub errors: u64,
    /// `errors / requests`, 0 without requests.
    pub error_rate: f64,
    /// Requests a fallback answered.
    pub fallbacks: u64,
    /// `fallbacks / requests`, 0 without requests.
    pub fallback_rate: f64,
    /// 99th percentile latency in milliseconds; none without requests.
    pub p99_ms: Option<f64>,
    /// Predicted-class counts (classifiers only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, u64>,
}

/// Counters of one side, updated without a lock except for the latency
/// histogram and the class counts.
struct SideCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    fallbacks: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
    classes: Mutex<BTreeMap<String, u64>>,
}

impl SideCounters {
    fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("bounds 1..=3.6e9 with 3 significant figures are valid");
        SideCounters {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            latency_us: Mutex::new(histogram),
            classes: Mutex::new(BTreeMap::new()),
        }
    }

    fn record(&self, outcome: &Outcome<'_>) {
        if (400..500).contains(&outcome.status) {
            // A client error says nothing about the version that refused it.
            return;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        if outcome.status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.fallback {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(outcome.elapsed.as_micros())
            .unwrap_or(MAX_LATENCY_US)
            .clamp(1, MAX_LATENCY_US);
        lock(&self.latency_us).saturating_record(micros);
        if !outcome.classes.is_empty() {
            let mut classes = lock(&self.classes);
            for class in outcome.classes {
                if let Some(count) = classes.get_mut(class.as_str()) {
                    *count += 1;
                } else if classes.len() < MAX_CLASSES {
                    classes.insert(class.clone(), 1);
                } else {
                    *classes.entry(OTHER_CLASSES.to_string()).or_insert(0) += 1;
                }
            }
        }
    }

    /// This side's counts and histogram buckets, to add up with other
    /// replicas'.
    fn share(&self) -> SideShare {
        let requests = self.requests.load(Ordering::Relaxed);
        // Read apart from `requests`, a count may run one ahead of it.
        let latency_us = lock(&self.latency_us)
            .iter_recorded()
            .map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value()))
            .collect();
        SideShare {
            requests,
            errors: self.errors.load(Ordering::Relaxed).min(requests),
            fallbacks: self.fallbacks.load(Ordering::Relaxed).min(requests),
            latency_us,
            classes: lock(&self.classes).clone(),
        }
    }
}

/// One side's figures as a replica shares them: counts, the latency
/// histogram's recorded buckets (`[microseconds, count]`), and class counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideShare {
    /// Requests answered (4xx excluded).
    pub requests: u64,
    /// Requests answered with a 5xx.
    pub errors: u64,
    /// Requests a fallback answered.
    pub fallbacks: u64,
    /// Latency buckets: the bucket's value in microseconds and its count.
    pub latency_us: Vec<(u64, u64)>,
    /// Predicted-class counts (classifiers only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, u64>,
}

impl SideShare {
    /// The figures of `shares` added up: counts summed, histograms merged,
    /// classes summed (past [`MAX_CLASSES`] under [`OTHER_CLASSES`]).
    pub fn figures<'a>(shares: impl IntoIterator<Item = &'a SideShare>) -> SideFigures {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("bounds 1..=3.6e9 with 3 significant figures are valid");
        let (mut requests, mut errors, mut fallbacks) = (0u64, 0u64, 0u64);
        let mut classes: BTreeMap<String, u64> = BTreeMap::new();
        for share in shares {
            requests += share.requests;
            errors += share.errors.min(share.requests);
            fallbacks += share.fallbacks.min(share.requests);
            for &(micros, count) in &share.latency_us {
                let _ = histogram.record_n(micros.clamp(1, MAX_LATENCY_US), count);
            }
            for (class, count) in &share.classes {
                let named = classes.len() - usize::from(classes.contains_key(OTHER_CLASSES));
                let name =
                    if class == OTHER_CLASSES || classes.contains_key(class) || named < MAX_CLASSES
                    {
                        class.clone()
                    } else {
                        OTHER_CLASSES.to_owned()
                    };
                *classes.entry(name).or_insert(0) += count;
            }
        }
        let rate = |count: u64| {
            if requests == 0 {
                0.0
            } else {
                count as f64 / requests as f64
            }
        };
        SideFigures {
            requests,
            errors,
            error_rate: rate(errors),
            fallbacks,
            fallback_rate: rate(fallbacks),
            p99_ms: (!histogram.is_empty())
                .then(|| histogram.value_at_quantile(0.99) as f64 / 1000.0),
            classes,
        }
    }
}

/// Both sides of one replica's window, as it shares them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowShare {
    /// The stable version's side.
    pub stable: SideShare,
    /// The canary's side.
    pub canary: SideShare,
}

impl WindowShare {
    /// The share of `side`.
    pub fn side(&self, side: Side) -> &SideShare {
        match side {
            Side::Stable => &self.stable,
            Side::Canary => &self.canary,
        }
    }

    /// The figures of `side` over every share of `shares`.
    pub fn merged(shares: &[WindowShare], side: Side) -> SideFigures {
        SideShare::figures(shares.iter().map(|share| share.side(side)))
    }
}

/// A poisoned lock only means a recording task panicked mid-update of a
/// counter; the figures stay usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Figures of stable and canary since the window started, shared by the
/// request tasks (`Arc<RolloutWindow>`). A new step starts a new window.
pub struct RolloutWindow {
    started: Instant,
    stable: SideCounters,
    canary: SideCounters,
}

impl std::fmt::Debug for RolloutWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolloutWindow")
            .field("started", &self.started)
            .field("stable", &self.figures(Side::Stable))
            .field("canary", &self.figures(Side::Canary))
            .finish()
    }
}

impl Default for RolloutWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl RolloutWindow {
    /// An empty window starting now.
    pub fn new() -> Self {
        RolloutWindow {
            started: Instant::now(),
            stable: SideCounters::new(),
            canary: SideCounters::new(),
        }
    }

    fn side(&self, side: Side) -> &SideCounters {
        match side {
            Side::Stable => &self.stable,
            Side::Canary => &self.canary,
        }
    }

    /// Records one answer of `side`: a 4xx is not counted at all, a 5xx
    /// counts a request and an error, any other status a request; a
    /// fallback answer also counts a fallback (not an error).
    pub fn record(&self, side: Side, outcome: &Outcome<'_>) {
        self.side(side).record(outcome);
    }

    /// When the window started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Figures of `side` so far.
    pub fn figures(&self, side: Side) -> SideFigures {
        SideShare::figures([&self.side(side).share()])
    }

    /// Both sides so far, as shared with other replicas.
    pub fn share(&self) -> WindowShare {
        WindowShare {
            stable: self.stable.share(),
            canary: self.canary.share(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, millis: u64) -> Outcome<'static> {
        Outcome {
            status,
            elapsed: Duration::from_millis(millis),
            fallback: false,
            classes: &[],
        }
    }

    #[test]
    fn shares_of_replicas_add_up_to_the_figures_of_all_their_requests() {
        let (one, two, all) = (
            RolloutWindow::new(),
            RolloutWindow::new(),
            RolloutWindow::new(),
        );
        let classes = ["setosa".to_string()];
        for (i, millis) in (1..=300u64).enumerate() {
            let outcome = Outcome {
                status: if i % 10 == 0 { 500 } else { 200 },
                fallback: i % 25 == 0,
                classes: &classes,
                ..answer(200, millis)
            };
            // Uneven: a third on one replica, the rest on the other.
            let replica = if i % 3 == 0 { &one } else { &two };
            replica.record(Side::Canary, &outcome);
            all.record(Side::Canary, &outcome);
        }
        two.record(Side::Stable, &answer(200, 4));
        all.record(Side::Stable, &answer(200, 4));
        let shares: Vec<WindowShare> = [&one, &two]
            .iter()
            .map(|w| {
                // As the registry keeps them: through JSON.
                let json = serde_json::to_value(w.share()).expect("share to JSON");
                serde_json::from_value(json).expect("share from JSON")
            })
            .collect();
        for side in [Side::Canary, Side::Stable] {
            assert_eq!(
                WindowShare::merged(&shares, side),
                all.figures(side),
                "{side:?}"
            );
        }
        assert_eq!(all.figures(Side::Canary).classes["setosa"], 300);
        assert_eq!(
            WindowShare::merged(&[], Side::Canary),
            SideFigures::default()
        );
    }

    #[test]
    fn client_errors_are_not_counted() {
        let window = RolloutWindow::new();
        for status in [400, 404, 413, 429, 499] {
            window.record(Side::Canary, &answer(status, 1));
        }
        let figures = window.figures(Side::Canary);
        assert_eq!(figures.requests, 0);
        assert_eq!(figures.errors, 0);
        assert_eq!(figures.error_rate, 0.0);
        assert_eq!(figures.p99_ms, None);
    }

    #[test]
    fn server_errors_and_fallbacks_count_on_their_side() {
        let window = RolloutWindow::new();
        for _ in 0..8 {
            window.record(Side::Canary, &answer(200, 2));
        }
        window.record(Side::Canary, &answer(500, 2));
        window.record(Side::Canary, &answer(503, 2));
        let fallback = Outcome {
            fallback: true,
            ..answer(200, 2)
        };
        window.record(Side::Canary, &fallback);
        window.record(Side::Stable, &answer(200, 2));

        let canary = window.figures(Side::Canary);
        assert_eq!(canary.requests, 11);
        assert_eq!(canary.errors, 2);
        assert!((canary.error_rate - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(canary.fallbacks, 1);
        assert!((canary.fallback_rate - 1.0 / 11.0).abs() < 1e-12);
        let stable = window.figures(Side::Stable);
        assert_eq!(stable.requests, 1);
        assert_eq!(stable.errors, 0);
    }

    #[test]
    fn p99_follows_known_latencies() {
        let window = RolloutWindow::new();
        // 1..=100 ms: the 99th percentile is 99 ms.
        for millis in 1..=100 {
            window.record(Side::Stable, &answer(200, millis));
        }
        let p99 = window
            .figures(Side::Stable)
            .p99_ms
            .expect("requests recorded");
        assert!((p99 - 99.0).abs() <= 0.1, "p99 {p99} ms");

        // 990 fast answers and 10 slow ones: p99 is the fast latency.
        let window = RolloutWindow::new();
        for _ in 0..990 {
            window.record(Side::Canary, &answer(200, 3));
        }
        for _ in 0..10 {
            window.record(Side::Canary, &answer(200, 500));
        }
        let p99 = window
            .figures(Side::Canary)
            .p99_ms
            .expect("requests recorded");
        assert!((p99 - 3.0).abs() <= 0.01, "p99 {p99} ms");
    }

    #[test]
    fn sub_microsecond_and_huge_latencies_are_clamped() {
        let window = RolloutWindow::new();
        window.record(
            Side::Stable,
            &Outcome {
                elapsed: Duration::ZERO,
                ..answer(200, 0)
            },
        );
        window.record(
            Side::Canary,
            &Outcome {
                elapsed: Duration::from_secs(10 * 3600),
                ..answer(200, 0)
            },
        );
        let stable = window.figures(Side::Stable).p99_ms.expect("recorded");
        assert!(stable <= 0.002, "{stable}");
        let canary = window.figures(Side::Canary).p99_ms.expect("recorded");
        assert!(
            (canary - 3_600_000.0).abs() / 3_600_000.0 < 0.002,
            "{canary}"
        );
    }

    #[test]
    fn classes_are_counted_and_capped() {
        let window = RolloutWindow::new();
        let classes: Vec<String> = (0..MAX_CLASSES + 10).map(|i| format!("c{i}")).collect();
        window.record(
            Side::Canary,
            &Outcome {
                classes: &classes,
                ..answer(200, 1)
            },
        );
        let repeat = vec!["c0".to_string(), "c0".to_string(), "new".to_string()];
        window.record(
            Side::Canary,
            &Outcome {
                classes: &repeat,
                ..answer(200, 1)
            },
        );
        let figures = window.figures(Side::Canary);
        assert_eq!(figures.classes.len(), MAX_CLASSES + 1);
        assert_eq!(figures.classes["c0"], 3);
        assert_eq!(figures.classes[OTHER_CLASSES], 11);
        assert!(!figures.classes.contains_key("new"));
        assert_eq!(
            figures.classes.values().sum::<u64>(),
            classes.len() as u64 + 3
        );
        assert!(window.figures(Side::Stable).classes.is_empty());
    }

    #[test]
    fn figures_serialise_without_empty_classes() {
        let window = RolloutWindow::new();
        window.record(Side::Stable, &answer(500, 1));
        let json = serde_json::to_value(window.figures(Side::Stable)).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"requests": 1, "errors": 1, "error_rate": 1.0, "fallbacks": 0,
                               "fallback_rate": 0.0, "p99_ms": 1.0})
        );
        assert_eq!(
            serde_json::to_value(Side::Canary).expect("serialises"),
            "canary"
        );
    }

    #[test]
    fn window_is_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<RolloutWindow>();
        let window = std::sync::Arc::new(RolloutWindow::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let window = window.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        window.record(Side::Canary, &answer(200, 1));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("recording thread finished");
        }
        assert_eq!(window.figures(Side::Canary).requests, 1000);
    }
}
