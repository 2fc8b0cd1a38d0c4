//! Server-side figures of a run from `/metrics` (Prometheus text) read
//! before and after it: mean queue time, mean batch size, cache hit rate and
//! requests by status code, as deltas. A metric the server does not export
//! is simply absent.

use std::collections::BTreeMap;

use ferroserve_core::telemetry::{BATCH_SIZE, CACHE_REQUESTS, QUEUE_DURATION, REQUESTS_TOTAL};
use serde::{Deserialize, Serialize};

/// One sample line: name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with its `_sum`/`_count`/`_bucket` suffix).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses Prometheus text exposition; comments and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].find('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let space = line.find(char::is_whitespace)?;
            (&line[..space], BTreeMap::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.trim().to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y \"q\""`; label values may hold escaped quotes and commas.
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_string();
        let mut chars = rest[eq + 1..].trim_start().char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                other => value.push(other),
            }
        }
        let after = rest[eq + 1..].trim_start();
        rest = after[end? + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
        labels.insert(name, value);
    }
    Some(labels)
}

/// Server figures over a run; `None` when the server exports no such metric
/// or nothing happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerFigures {
    /// Mean time a request waited in the batch queue, in ms.
    pub mean_queue_ms: Option<f64>,
    /// Mean rows per executed batch.
    pub mean_batch_size: Option<f64>,
    /// Cache hits (any layer) over L1 lookups (each request looks L1 up first).
    pub cache_hit_rate: Option<f64>,
    /// Requests answered by the server, by status code.
    pub requests_by_code: BTreeMap<String, f64>,
}

/// Sum of `name` over samples whose `model` label (if any) is one of `models`
/// and that pass `keep`.
fn total(samples: &[Sample], name: &str, models: &[String], keep: impl Fn(&Sample) -> bool) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| s.labels.get("model").is_none_or(|m| models.contains(m)))
        .filter(|s| keep(s))
        .map(|s| s.value)
        .sum()
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

/// Figures of the models in `models` between two scrapes.
pub fn figures(before: &[Sample], after: &[Sample], models: &[String]) -> ServerFigures {
    let delta = |name: &str, keep: &dyn Fn(&Sample) -> bool| {
        total(after, name, models, keep) - total(before, name, models, keep)
    };
    let all = |_: &Sample| true;
    let ratio = |base: &str| {
        let (sum, count) = (format!("{base}_sum"), format!("{base}_count"));
        if !has(after, &count) {
            return None;
        }
        let n = delta(&count, &all);
        (n > 0.0).then(|| delta(&sum, &all) / n)
    };
    let cache_hit_rate = has(after, CACHE_REQUESTS)
        .then(|| {
            let hits = delta(CACHE_REQUESTS, &|s| {
                s.labels.get("result").is_some_and(|r| r == "hit")
            });
            let lookups = delta(CACHE_REQUESTS, &|s| {
                s.labels.get("layer").is_some_and(|l| l == "l1")
                    && s.labels
                        .get("result")
                        .is_some_and(|r| r == "hit" || r == "miss")
            });
            (lookups > 0.0).then(|| hits / lookups)
        })
        .flatten();
    let mut requests_by_code = BTreeMap::new();
    for sample in after.iter().filter(|s| s.name == REQUESTS_TOTAL) {
        if let Some(code) = sample.labels.get("code") {
            requests_by_code
                .entry(code.clone())
                .or_insert_with(|| delta(REQUESTS_TOTAL, &|s| s.labels.get("code") == Some(code)));
        }
    }
    requests_by_code.retain(|_, n| *n > 0.0);
    ServerFigures {
        mean_queue_ms: ratio(QUEUE_DURATION).map(|s| s * 1e3),
        mean_batch_size: ratio(BATCH_SIZE),
        cache_hit_rate,
        requests_by_code,
    }
}

/// Reads `/metrics`; `None` (with a warning) when the server has none.
pub async fn scrape(client: &reqwest::Client, url: &str) -> Option<Vec<Sample>> {
    let response = client.get(format!("{url}/metrics")).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(parse(&response.text().await.ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP ferroserve_requests_total Requests answered.
# TYPE ferroserve_requests_total counter
ferroserve_requests_total{model="iris",version="1",protocol="kserve_v2",code="200"} 10
ferroserve_requests_total{model="other",version="1",protocol="kserve_v2",code="200"} 99
ferroserve_queue_duration_seconds_bucket{model="iris",version="1",le="0.001"} 9
ferroserve_queue_duration_seconds_sum{model="iris",version="1"} 0.5
ferroserve_queue_duration_seconds_count{model="iris",version="1"} 10
ferroserve_batch_size_sum{model="iris",version="1"} 10
ferroserve_batch_size_count{model="iris",version="1"} 10
ferroserve_cache_requests_total{layer="l1",result="hit"} 0
ferroserve_cache_requests_total{layer="l1",result="miss"} 10
"#;

    const AFTER: &str = r#"ferroserve_requests_total{model="iris",version="1",protocol="kserve_v2",code="200"} 110
ferroserve_requests_total{model="iris",version="1",protocol="kserve_v2",code="429"} 5
ferroserve_requests_total{model="other",version="1",protocol="kserve_v2",code="200"} 1000
ferroserve_queue_duration_seconds_sum{model="iris",version="1"} 0.7
ferroserve_queue_duration_seconds_count{model="iris",version="1"} 60
ferroserve_batch_size_sum{model="iris",version="1"} 60
ferroserve_batch_size_count{model="iris",version="1"} 20
ferroserve_cache_requests_total{layer="l1",result="hit"} 75
ferroserve_cache_requests_total{layer="l1",result="miss"} 35
ferroserve_cache_requests_total{layer="l2",result="skipped_cheap"} 35
ferroserve_up 1 1700000000000
"#;

    #[test]
    fn parses_samples_with_labels_and_timestamps() {
        let samples = parse(AFTER);
        assert_eq!(samples.len(), 11);
        assert_eq!(samples[0].labels["code"], "200");
        assert_eq!(samples[10].name, "ferroserve_up");
        assert_eq!(samples[10].value, 1.0);
        let odd = parse(r#"m{a="x, \"y\"",b="2"} +Inf"#);
        assert_eq!(odd[0].labels["a"], "x, \"y\"");
        assert_eq!(odd[0].labels["b"], "2");
        assert!(odd[0].value.is_infinite());
        assert!(parse("not a sample\nm{a=\"x\"}").is_empty());
    }

    #[test]
    fn figures_are_deltas_of_the_benched_models() {
        let f = figures(&parse(BEFORE), &parse(AFTER), &["iris".to_string()]);
        // 0.2 s over 50 queued requests.
        assert!((f.mean_queue_ms.unwrap() - 4.0).abs() < 1e-9);
        // 50 rows over 10 batches.
        assert_eq!(f.mean_batch_size, Some(5.0));
        // 75 hits over 100 L1 lookups; the L2 skip does not count.
        assert_eq!(f.cache_hit_rate, Some(0.75));
        assert_eq!(f.requests_by_code["200"], 100.0);
        assert_eq!(f.requests_by_code["429"], 5.0);
    }

    #[test]
    fn missing_metrics_are_absent() {
        let f = figures(&[], &parse("ferroserve_up 1"), &["iris".to_string()]);
        assert_eq!(f, ServerFigures::default());
    }
}
