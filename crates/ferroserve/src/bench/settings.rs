//! Checked settings of a load run, built from the flags and saved verbatim
//! in the run's JSON file.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::args::{KeyDist, LoadArgs, Protocol};

/// Distinct bodies per model when `--keys` is not given.
const DEFAULT_KEYS: usize = 1000;

/// One model of the mix and its share of the requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelWeight {
    /// Model name.
    pub name: String,
    /// Relative weight (requests go to models in proportion to it).
    pub weight: f64,
}

/// Closed or open loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Load {
    /// `concurrency` clients sending back to back.
    Closed {
        /// Clients.
        concurrency: usize,
    },
    /// Requests at fixed intended times.
    Open {
        /// Requests per second.
        rate: f64,
        /// Requests in flight at most.
        max_in_flight: usize,
    },
}

/// When a measured run ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// After this many seconds.
    DurationS(f64),
    /// After this many requests.
    Requests(u64),
}

/// Client-side delay injected before some requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InjectDelay {
    /// Probability that a request is held.
    pub probability: f64,
    /// How long it is held, in ms.
    pub delay_ms: f64,
}

/// Where gRPC requests go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrpcTarget {
    /// The server's gRPC address.
    pub url: String,
    /// HTTP/2 connections the requests share.
    pub connections: usize,
}

/// Every setting of a load run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Server base URL.
    pub url: String,
    /// Models and weights.
    pub models: Vec<ModelWeight>,
    /// Wire format.
    pub protocol: Protocol,
    /// The gRPC server, with the gRPC protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcTarget>,
    /// Closed or open loop.
    pub load: Load,
    /// End of each measured run.
    pub stop: Stop,
    /// Warm-up before the first run, in seconds.
    pub warmup_s: f64,
    /// Measured runs.
    pub runs: usize,
    /// Client-side timeout per request, in seconds.
    pub timeout_s: f64,
    /// Rows per request.
    pub batch_rows: usize,
    /// Shapes given with `--shape`.
    pub shapes: BTreeMap<String, Vec<usize>>,
    /// Input file, when rows come from one.
    pub input_file: Option<String>,
    /// Distinct bodies per model (at most, with an input file).
    pub keys: usize,
    /// Key distribution.
    pub key_dist: KeyDist,
    /// Zipf exponent (used with the zipf distribution).
    pub zipf_s: f64,
    /// Injected client-side delay.
    pub inject_delay: Option<InjectDelay>,
    /// Names of the extra headers (values are not saved: they may be secrets).
    pub header_names: Vec<String>,
    /// Random seed.
    pub seed: u64,
}

impl Settings {
    /// Checks the flags; every error names the flag that is wrong.
    pub fn from_args(args: &LoadArgs) -> anyhow::Result<Settings> {
        let models = args
            .models
            .iter()
            .map(|m| parse_model(m))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let load = match (args.rate, args.concurrency) {
            (Some(rate), _) => {
                if !(rate.is_finite() && rate > 0.0) {
                    bail!("--rate must be a positive number of requests per second, got {rate}");
                }
                if args.max_in_flight == 0 {
                    bail!("--max-in-flight must be at least 1");
                }
                Load::Open {
                    rate,
                    max_in_flight: args.max_in_flight,
                }
            }
            (None, concurrency) => {
                let concurrency = concurrency.unwrap_or(1);
                if concurrency == 0 {
                    bail!("--concurrency must be at least 1");
                }
                Load::Closed { concurrency }
            }
        };
        let stop = match (&args.duration, args.requests) {
            (_, Some(0)) => bail!("--requests must be at least 1"),
            (_, Some(n)) => Stop::Requests(n),
            (Some(d), None) => Stop::DurationS(positive_duration("--duration", d)?.as_secs_f64()),
            (None, None) => Stop::DurationS(10.0),
        };
        if args.runs == 0 {
            bail!("--runs must be at least 1");
        }
        if args.batch_rows == 0 {
            bail!("--batch-rows must be at least 1");
        }
        let keys = args.keys.unwrap_or(DEFAULT_KEYS);
        if keys == 0 {
            bail!("--keys must be at least 1");
        }
        if args.key_dist == KeyDist::Zipf && !(args.zipf_s.is_finite() && args.zipf_s > 0.0) {
            bail!("--zipf-s must be a positive number, got {}", args.zipf_s);
        }
        let mut shapes = BTreeMap::new();
        for given in &args.shapes {
            let (name, dims) = parse_shape(given)?;
            if shapes.insert(name.clone(), dims).is_some() {
                bail!("--shape {name} is given twice");
            }
        }
        if args.grpc_connections == 0 {
            bail!("--grpc-connections must be at least 1");
        }
        let grpc = args.protocol.is_grpc().then(|| GrpcTarget {
            url: args.grpc_url.trim_end_matches('/').to_string(),
            connections: args.grpc_connections,
        });
        let header_names = args
            .headers
            .iter()
            .map(|h| parse_header(h).map(|(name, _)| name))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Settings {
            url: args.url.trim_end_matches('/').to_string(),
            models,
            protocol: args.protocol,
            grpc,
            load,
            stop,
            warmup_s: parse_duration(&args.warmup)
                .context("--warmup")?
                .as_secs_f64(),
            runs: args.runs,
            timeout_s: positive_duration("--timeout", &args.timeout)?.as_secs_f64(),
            batch_rows: args.batch_rows,
            shapes,
            input_file: args.input_file.as_ref().map(|p| p.display().to_string()),
            keys,
            key_dist: args.key_dist,
            zipf_s: args.zipf_s,
            inject_delay: args
                .inject_delay
                .as_deref()
                .map(parse_inject_delay)
                .transpose()?,
            header_names,
            seed: args.seed,
        })
    }

    /// Client-side timeout per request.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    /// Warm-up length.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_s)
    }
}

/// Reads `NAME` or `NAME=WEIGHT`.
fn parse_model(text: &str) -> anyhow::Result<ModelWeight> {
    let (name, weight) = match text.split_once('=') {
        Some((name, weight)) => {
            let weight: f64 = weight.trim().parse().with_context(|| {
                format!("--model {text}: the weight after '=' must be a number")
            })?;
            (name.trim(), weight)
        }
        None => (text.trim(), 1.0),
    };
    if name.is_empty() {
        bail!("--model {text:?}: the model name is empty");
    }
    if !(weight.is_finite() && weight > 0.0) {
        bail!("--model {text}: the weight must be a positive number");
    }
    Ok(ModelWeight {
        name: name.to_string(),
        weight,
    })
}

/// Reads `NAME=D1,D2,...`.
fn parse_shape(text: &str) -> anyhow::Result<(String, Vec<usize>)> {
    let Some((name, dims)) = text.split_once('=') else {
        bail!("--shape {text}: expected NAME=D1,D2,... (e.g. input=1,4)");
    };
    let dims = dims
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!("--shape {text}: dimensions must be non-negative integers separated by commas")
        })?;
    Ok((name.trim().to_string(), dims))
}

/// Reads `NAME: VALUE`.
pub fn parse_header(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => bail!("--header {text:?}: expected \"NAME: VALUE\""),
    }
}

/// Reads `P:MS` of `--inject-delay`.
fn parse_inject_delay(text: &str) -> anyhow::Result<InjectDelay> {
    let parsed = text.split_once(':').and_then(|(p, ms)| {
        Some((
            p.trim().parse::<f64>().ok()?,
            ms.trim().parse::<f64>().ok()?,
        ))
    });
    match parsed {
        Some((probability, delay_ms))
            if (0.0..=1.0).contains(&probability) && delay_ms.is_finite() && delay_ms >= 0.0 =>
        {
            Ok(InjectDelay {
                probability,
                delay_ms,
            })
        }
        _ => bail!(
            "--inject-delay {text}: expected P:MS with P a probability in [0, 1] and MS milliseconds, e.g. 0.01:200"
        ),
    }
}

fn positive_duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let duration = parse_duration(text).with_context(|| flag.to_string())?;
    if duration.is_zero() {
        bail!("{flag} must be longer than zero");
    }
    Ok(duration)
}

/// Reads a duration: a number followed by `us`, `ms`, `s`, `m` or `h`
/// (a bare number is seconds).
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("{text:?} is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => bail!("{text:?}: unknown unit {other:?} (use us, ms, s, m or h)"),
    };
    Duration::try_from_secs_f64(seconds)
        .with_context(|| format!("{text:?} is not a duration of zero or more"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn models_shapes_and_delays() {
        assert_eq!(parse_model("a=3").unwrap().weight, 3.0);
        assert_eq!(parse_model("iris").unwrap().weight, 1.0);
        assert!(parse_model("a=0").is_err());
        assert!(parse_model("=2").is_err());
        assert_eq!(
            parse_shape("input=1,4").unwrap(),
            ("input".to_string(), vec![1, 4])
        );
        assert!(parse_shape("input=1,x").is_err());
        let delay = parse_inject_delay("0.01:200").unwrap();
        assert_eq!((delay.probability, delay.delay_ms), (0.01, 200.0));
        assert!(parse_inject_delay("2:10").is_err());
        assert_eq!(
            parse_header("Authorization: Bearer x").unwrap(),
            ("Authorization".to_string(), "Bearer x".to_string())
        );
    }
}
