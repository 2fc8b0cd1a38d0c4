//! `GET /api/v1/live`: what every served version does, second by second,
//! pushed as server-sent events (requests and errors a second, p50 and p99
//! latency, mean batch size, queue depth, the circuit breaker's state). Each event is the difference of
//! two readings of the server's own Prometheus metrics a second apart, so
//! the live view costs nothing on the request path and nothing at all
//! while nobody watches; no Prometheus server is needed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use prometheus_parse::{Scrape, Value as Metric};
use serde::Serialize;

use ferroserve_core::telemetry;
use ferroserve_registry::api_keys::now_ms;

use crate::state::SharedState;

/// Time between two events.
const TICK: Duration = Duration::from_secs(1);

/// The totals of one served version at one reading.
#[derive(Debug, Default, Clone, PartialEq)]
struct Totals {
    requests: f64,
    errors: f64,
    /// Request durations: cumulative counts by upper bound (seconds),
    /// added up over the protocols.
    durations: BTreeMap<OrderedBound, f64>,
    batches: f64,
    batch_rows: f64,
    queue_depth: f64,
    /// The circuit breaker's gauge: 0 closed, 1 open, 2 half-open.
    breaker: Option<f64>,
}

/// A histogram bucket's upper bound, ordered (`+Inf` last).
#[derive(Debug, Clone, Copy)]
struct OrderedBound(f64);

impl PartialEq for OrderedBound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrderedBound {}

impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One served version's figures over the last tick.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Figures {
    model: String,
    version: String,
    requests_per_s: f64,
    errors_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    batch_size: Option<f64>,
    queue_depth: f64,
    breaker: &'static str,
}

/// One event: when, and every served version's figures.
#[derive(Debug, Serialize)]
struct Tick {
    at: i64,
    versions: Vec<Figures>,
}

type VersionKey = (String, String);

/// The totals of every version in a Prometheus text reading.
fn totals(text: &str) -> BTreeMap<VersionKey, Totals> {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let Ok(scrape) = Scrape::parse(lines) else {
        return BTreeMap::new();
    };
    let batch_count = format!("{}_count", telemetry::BATCH_SIZE);
    let batch_sum = format!("{}_sum", telemetry::BATCH_SIZE);
    let mut by_version: BTreeMap<VersionKey, Totals> = BTreeMap::new();
    for sample in scrape.samples {
        let (Some(model), Some(version)) =
            (sample.labels.get("model"), sample.labels.get("version"))
        else {
            continue;
        };
        let entry = by_version
            .entry((model.to_owned(), version.to_owned()))
            .or_default();
        let metric = sample.metric.as_str();
        match (&sample.value, metric) {
            (Metric::Counter(n) | Metric::Untyped(n), _) if metric == telemetry::REQUESTS_TOTAL => {
                entry.requests += n;
                let code = sample
                    .labels
                    .get("code")
                    .and_then(|c| c.parse::<u16>().ok());
                if code.is_some_and(|c| c >= 500) {
                    entry.errors += n;
                }
            }
            (Metric::Histogram(buckets), _) if metric == telemetry::REQUEST_DURATION => {
                for bucket in buckets {
                    *entry
                        .durations
                        .entry(OrderedBound(bucket.less_than))
                        .or_default() += bucket.count;
                }
            }
            (Metric::Counter(n) | Metric::Untyped(n), _) if metric == batch_count => {
                entry.batches += n;
            }
            (Metric::Counter(n) | Metric::Untyped(n), _) if metric == batch_sum => {
                entry.batch_rows += n;
            }
            (Metric::Gauge(n) | Metric::Untyped(n), _) if metric == telemetry::QUEUE_DEPTH => {
                entry.queue_depth += n;
            }
            (Metric::Gauge(n) | Metric::Untyped(n), _) if metric == telemetry::BREAKER_STATE => {
                entry.breaker = Some(*n);
            }
            _ => {}
        }
    }
    by_version
}

/// The `q` quantile, in ms, of the requests between two readings of a
/// duration histogram: linear within the bucket that holds it, as
/// Prometheus's `histogram_quantile`; `None` without requests.
fn quantile_ms(
    before: &BTreeMap<OrderedBound, f64>,
    now: &BTreeMap<OrderedBound, f64>,
    q: f64,
) -> Option<f64> {
    let counts: Vec<(f64, f64)> = now
        .iter()
        .map(|(bound, n)| (bound.0, n - before.get(bound).copied().unwrap_or(0.0)))
        .collect();
    let total = counts.last().map(|(_, n)| *n).filter(|n| *n > 0.0)?;
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, cumulative) in &counts {
        if cumulative >= rank {
            if bound.is_infinite() {
                // Past the last finite bound: that bound is all we know.
                return Some(lower.0 * 1000.0);
            }
            let in_bucket = cumulative - lower.1;
            let share = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some((lower.0 + (bound - lower.0) * share) * 1000.0);
        }
        lower = (bound, cumulative);
    }
    None
}

/// The figures of every version in `now`, against `before` `seconds` ago.
fn figures(
    before: &BTreeMap<VersionKey, Totals>,
    now: &BTreeMap<VersionKey, Totals>,
    seconds: f64,
) -> Vec<Figures> {
    let empty = Totals::default();
    now.iter()
        .map(|((model, version), n)| {
            let b = before
                .get(&(model.clone(), version.clone()))
                .unwrap_or(&empty);
            let per_second = |now: f64, then: f64| ((now - then).max(0.0)) / seconds;
            let batches = n.batches - b.batches;
            Figures {
                model: model.clone(),
                version: version.clone(),
                requests_per_s: per_second(n.requests, b.requests),
                errors_per_s: per_second(n.errors, b.errors),
                p50_ms: quantile_ms(&b.durations, &n.durations, 0.5),
                p99_ms: quantile_ms(&b.durations, &n.durations, 0.99),
                batch_size: (batches > 0.0).then(|| (n.batch_rows - b.batch_rows) / batches),
                queue_depth: n.queue_depth,
                breaker: match n.breaker {
                    Some(1.0) => "open",
                    Some(2.0) => "half-open",
                    _ => "closed",
                },
            }
        })
        .collect()
}

/// `GET /api/v1/live`: an event a second until the client goes.
pub(crate) async fn live(
    State(state): State<SharedState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = (totals(&state.metrics.render()), Instant::now());
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures::stream::unfold(
        (state, first, ticks),
        |(state, (before, then), mut ticks)| async move {
            ticks.tick().await;
            let now = totals(&state.metrics.render());
            let seconds = then.elapsed().as_secs_f64().max(1e-3);
            let tick = Tick {
                at: now_ms(),
                versions: figures(&before, &now, seconds),
            };
            let event = Event::default()
                .json_data(&tick)
                .unwrap_or_else(|_| Event::default().comment("unencodable"));
            Some((Ok(event), (state, (now, Instant::now()), ticks)))
        },
    );
    // A comment at once: the client sees the stream open before the
    // first second is over.
    let hello = futures::stream::once(std::future::ready(Ok(
        Event::default().comment("ferroserve live figures, an event a second")
    )));
    Sse::new(hello.chain(stream)).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const READING: &str = "\
# TYPE ferroserve_requests_total counter
ferroserve_requests_total{model=\"iris\",version=\"1\",protocol=\"v2\",code=\"200\"} 10
ferroserve_requests_total{model=\"iris\",version=\"1\",protocol=\"v1\",code=\"503\"} 2
# TYPE ferroserve_request_duration_seconds histogram
ferroserve_request_duration_seconds_bucket{model=\"iris\",version=\"1\",protocol=\"v2\",le=\"0.001\"} 5
ferroserve_request_duration_seconds_bucket{model=\"iris\",version=\"1\",protocol=\"v2\",le=\"0.002\"} 10
ferroserve_request_duration_seconds_bucket{model=\"iris\",version=\"1\",protocol=\"v2\",le=\"+Inf\"} 10
ferroserve_request_duration_seconds_sum{model=\"iris\",version=\"1\",protocol=\"v2\"} 0.01
ferroserve_request_duration_seconds_count{model=\"iris\",version=\"1\",protocol=\"v2\"} 10
# TYPE ferroserve_batch_size histogram
ferroserve_batch_size_bucket{model=\"iris\",version=\"1\",le=\"+Inf\"} 4
ferroserve_batch_size_sum{model=\"iris\",version=\"1\"} 12
ferroserve_batch_size_count{model=\"iris\",version=\"1\"} 4
# TYPE ferroserve_queue_depth gauge
ferroserve_queue_depth{model=\"iris\",version=\"1\"} 3
# TYPE ferroserve_breaker_state gauge
ferroserve_breaker_state{model=\"iris\",version=\"1\"} 1
";

    #[test]
    fn a_reading_adds_up_each_version_over_protocols_and_codes() {
        let read = totals(READING);
        let iris = &read[&("iris".to_owned(), "1".to_owned())];
        assert_eq!((iris.requests, iris.errors), (12.0, 2.0));
        assert_eq!(
            (iris.batches, iris.batch_rows, iris.queue_depth),
            (4.0, 12.0, 3.0)
        );
        assert_eq!(iris.durations.len(), 3);
    }

    #[test]
    fn figures_are_the_differences_over_the_seconds_between_readings() {
        let now = totals(READING);
        let listed = figures(&BTreeMap::new(), &now, 2.0);
        let iris = &listed[0];
        assert_eq!((iris.requests_per_s, iris.errors_per_s), (6.0, 1.0));
        assert_eq!(iris.batch_size, Some(3.0));
        assert_eq!(iris.breaker, "open");
        // Half the requests took under 1 ms, the rest under 2 ms.
        assert_eq!(iris.p50_ms, Some(1.0));
        let p99 = iris.p99_ms.expect("requests");
        assert!((p99 - 1.98).abs() < 1e-9, "{p99}");
        // No new requests: no rates, no latency.
        let idle = figures(&now, &now, 1.0);
        assert_eq!((idle[0].requests_per_s, idle[0].p99_ms), (0.0, None));
        assert_eq!(idle[0].batch_size, None);
    }

    #[test]
    fn a_quantile_past_the_last_bound_is_that_bound() {
        let before = BTreeMap::new();
        let now = BTreeMap::from([
            (OrderedBound(0.001), 0.0),
            (OrderedBound(f64::INFINITY), 4.0),
        ]);
        assert_eq!(quantile_ms(&before, &now, 0.99), Some(1.0));
        assert_eq!(totals("not prometheus {").len(), 0);
    }
}
