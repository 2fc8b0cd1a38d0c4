//! The result of `ferroserve bench`: per-run summaries with their HDR
//! histograms, the JSON file written by `--output` (versioned by `format`)
//! and the text printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::driver::{PhaseResult, Recorder};
use super::metrics_scrape::ServerFigures;
use super::settings::{Load, Settings, Stop};

/// Version of the JSON file; `compare` refuses other versions.
pub const FORMAT: u32 = 1;

/// A whole `ferroserve bench` invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// File format version ([`FORMAT`]).
    pub format: u32,
    /// `ferroserve bench` and the ferroserve version that wrote the file.
    pub tool: String,
    /// Start of the first measured run, in seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// Every setting of the run.
    pub settings: Settings,
    /// Each measured run.
    pub runs: Vec<RunSummary>,
    /// All runs together (histograms added, server figures over all runs).
    pub total: RunSummary,
}

/// Latency of successful requests, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Standard deviation of the requests' latencies.
    pub stdev: f64,
    /// Fastest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest.
    pub max: f64,
}

/// One measured run (or all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Failures by HTTP status code, or `timeout`, `connect`, `other`.
    pub errors: BTreeMap<String, u64>,
    /// Open loop: requests sent over 2 ms after their intended time.
    pub late: u64,
    /// Open loop: largest delay between an intended and an actual send, in ms.
    pub max_send_lag_ms: f64,
    /// From the first send to the last answer, in seconds.
    pub elapsed_s: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Latency of successful requests (absent when none succeeded).
    pub latency_ms: Option<Latency>,
    /// Figures read from the server's `/metrics` (absent when it has none).
    pub server: Option<ServerFigures>,
    /// Latencies of successful requests in µs: an HDR histogram, V2 deflate
    /// serialization, base64.
    pub histogram: String,
}

impl RunSummary {
    /// Summary of one phase.
    pub fn new(result: &PhaseResult, server: Option<ServerFigures>) -> RunSummary {
        let r = &result.recorder;
        let elapsed_s = result.elapsed.as_secs_f64();
        let throughput_rps = if elapsed_s > 0.0 {
            r.ok() as f64 / elapsed_s
        } else {
            0.0
        };
        RunSummary {
            sent: result.sent,
            ok: r.ok(),
            errors: r.errors.clone(),
            late: r.late,
            max_send_lag_ms: r.max_send_lag_us as f64 / 1e3,
            elapsed_s,
            throughput_rps,
            latency_ms: latency(&r.histogram),
            server,
            histogram: encode_histogram(&r.histogram),
        }
    }

    /// Summary of several runs: counts and histograms added, throughput over
    /// the runs' total time.
    pub fn combine(results: &[PhaseResult], server: Option<ServerFigures>) -> RunSummary {
        let mut recorder = Recorder::default();
        for r in results {
            recorder.merge(&r.recorder);
        }
        let total = PhaseResult {
            recorder,
            elapsed: results.iter().map(|r| r.elapsed).sum(),
            sent: results.iter().map(|r| r.sent).sum(),
        };
        RunSummary::new(&total, server)
    }

    /// Failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn latency(h: &Histogram<u64>) -> Option<Latency> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1e3;
    Some(Latency {
        mean: h.mean() / 1e3,
        stdev: h.stdev() / 1e3,
        min: ms(h.min()),
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p99_9: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    })
}

/// Base64 of the V2 deflate serialization.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads [`encode_histogram`]'s form back.
pub fn decode_histogram(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("histogram is not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("histogram is not an HDR V2 serialization: {e:?}"))
}

impl Report {
    /// Reads and checks a file written by `--output`.
    pub fn read(path: &Path) -> anyhow::Result<Report> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => bail!(
                "{} has format {f}; this ferroserve reads format {FORMAT}",
                path.display()
            ),
            None => bail!(
                "{} is not a `ferroserve bench --output` file (no \"format\" field)",
                path.display()
            ),
        }
        let report: Report = serde_json::from_value(value)
            .with_context(|| format!("{} is not a valid bench report", path.display()))?;
        if report.runs.is_empty() {
            bail!("{} holds no runs", path.display());
        }
        Ok(report)
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a report serializes") + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The text printed at the end of a run.
    pub fn text(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let models: Vec<String> = s
            .models
            .iter()
            .map(|m| {
                if s.models.len() > 1 {
                    format!("{}={}", m.name, m.weight)
                } else {
                    m.name.clone()
                }
            })
            .collect();
        let load = match s.load {
            Load::Closed { concurrency } => format!("closed loop, {concurrency} clients"),
            Load::Open {
                rate,
                max_in_flight,
            } => format!("open loop, {rate} requests/s (at most {max_in_flight} in flight)"),
        };
        let stop = match s.stop {
            Stop::DurationS(d) => format!("{d} s"),
            Stop::Requests(n) => format!("{n} requests"),
        };
        let _ = writeln!(
            out,
            "ferroserve bench: {} at {}, {load}, {}, {} run(s) of {stop} after {} s of warm-up",
            models.join(" "),
            s.grpc.as_ref().map_or(&s.url, |g| &g.url),
            s.protocol.as_str(),
            s.runs,
            s.warmup_s
        );
        let _ = writeln!(
            out,
            "{:<5} {:>9} {:>7} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "run",
            "ok",
            "errors",
            "requests/s",
            "mean ms",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        let rows = self
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| ((i + 1).to_string(), r));
        let total = (self.runs.len() > 1).then(|| ("all".to_string(), &self.total));
        for (label, r) in rows.chain(total) {
            let l = r.latency_ms.as_ref();
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            let _ = writeln!(
                out,
                "{label:<5} {:>9} {:>7} {:>12.1} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                r.ok,
                r.failed(),
                r.throughput_rps,
                f(l.map(|l| l.mean)),
                f(l.map(|l| l.p50)),
                f(l.map(|l| l.p90)),
                f(l.map(|l| l.p99)),
                f(l.map(|l| l.p99_9)),
                f(l.map(|l| l.max)),
            );
        }
        let t = &self.total;
        if !t.errors.is_empty() {
            let errors: Vec<String> = t.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = writeln!(out, "errors: {}", errors.join(", "));
        }
        if matches!(s.load, Load::Open { .. }) {
            let _ = writeln!(
                out,
                "schedule: {} sent, {} late (over 2 ms behind), largest lag {:.3} ms",
                t.sent, t.late, t.max_send_lag_ms
            );
        }
        match &t.server {
            Some(server) => {
                let _ = writeln!(out, "server: {}", server_text(server));
            }
            None => {
                let _ = writeln!(out, "server: no /metrics figures");
            }
        }
        out
    }
}

fn server_text(f: &ServerFigures) -> String {
    let mut parts = Vec::new();
    if let Some(q) = f.mean_queue_ms {
        parts.push(format!("mean queue {q:.3} ms"));
    }
    if let Some(b) = f.mean_batch_size {
        parts.push(format!("mean batch {b:.2} rows"));
    }
    if let Some(h) = f.cache_hit_rate {
        parts.push(format!("cache hit rate {:.1} %", h * 100.0));
    }
    if !f.requests_by_code.is_empty() {
        let codes: Vec<String> = f
            .requests_by_code
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        parts.push(format!("requests {}", codes.join(", ")));
    }
    if parts.is_empty() {
        "no figures for these models".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::args::{KeyDist, Protocol};
    use crate::bench::settings::ModelWeight;

    /// Settings of a small closed-loop run.
    pub(crate) fn settings() -> Settings {
        Settings {
            url: "http://127.0.0.1:8080".into(),
            models: vec![ModelWeight {
                name: "iris".into(),
                weight: 1.0,
            }],
            protocol: Protocol::HttpJson,
            grpc: None,
            load: Load::Closed { concurrency: 4 },
            stop: Stop::DurationS(1.0),
            warmup_s: 0.0,
            runs: 2,
            timeout_s: 30.0,
            batch_rows: 1,
            shapes: BTreeMap::new(),
            input_file: None,
            keys: 10,
            key_dist: KeyDist::Zipf,
            zipf_s: 1.1,
            inject_delay: None,
            header_names: vec![],
            seed: 1,
        }
    }

    /// A phase whose requests took `latencies_us`, over `elapsed_s`.
    pub(crate) fn phase(latencies_us: &[u64], elapsed_s: f64) -> PhaseResult {
        let mut recorder = Recorder::default();
        for &us in latencies_us {
            recorder.record(Ok(()), Duration::from_micros(us));
        }
        PhaseResult {
            sent: latencies_us.len() as u64,
            recorder,
            elapsed: Duration::from_secs_f64(elapsed_s),
        }
    }

    /// A report of one run per entry of `runs`.
    pub(crate) fn report(runs: &[Vec<u64>]) -> Report {
        let phases: Vec<PhaseResult> = runs.iter().map(|r| phase(r, 1.0)).collect();
        Report {
            format: FORMAT,
            tool: "ferroserve bench test".into(),
            started_unix_s: 0.0,
            settings: settings(),
            runs: phases.iter().map(|p| RunSummary::new(p, None)).collect(),
            total: RunSummary::combine(&phases, None),
        }
    }

    #[test]
    fn summary_percentiles_and_throughput() {
        let latencies: Vec<u64> = (1..=1000).collect();
        let mut result = phase(&latencies, 2.0);
        result.recorder.record(Err("503".into()), Duration::ZERO);
        let s = RunSummary::new(&result, None);
        assert_eq!((s.ok, s.failed()), (1000, 1));
        assert_eq!(s.throughput_rps, 500.0);
        let l = s.latency_ms.unwrap();
        assert!((l.p50 - 0.5).abs() < 0.001 && (l.p99 - 0.99).abs() < 0.001);
        assert!(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99);
        assert!(l.p99 <= l.p99_9 && l.p99_9 <= l.max);
        assert!((l.mean - 0.5005).abs() < 0.001);
    }

    #[test]
    fn report_round_trips_through_json() {
        let report = report(&[vec![100, 200, 300], vec![150, 250]]);
        assert_eq!(report.total.ok, 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        report.write(&path).unwrap();
        let back = Report::read(&path).unwrap();
        assert_eq!(back, report);
        let h = decode_histogram(&back.runs[0].histogram).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h.max(), 300);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"format\": 1", "\"format\": 2")).unwrap();
        let err = Report::read(&path).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }
}
