//! Flags of `ferroserve rollout` and its subcommands, and the request body
//! `rollout start` sends: only the flags given go into it, so the server's
//! defaults apply to the rest.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

/// Most steps a rollout may have (the server's bound too).
pub const MAX_STEPS: usize = 10;

/// Longest `--sticky-header` name (the server's bound too).
pub const MAX_STICKY_HEADER_CHARS: usize = 64;

/// The server `rollout` talks to unless `--url` or `FERROSERVE_URL` says
/// otherwise (an empty one counts as none).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Flags of `ferroserve rollout`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Server options (any subcommand)")]
pub struct RolloutArgs {
    /// Server base URL (`--server` is the same flag).
    #[arg(
        long,
        visible_alias = "server",
        default_value = DEFAULT_URL,
        env = "FERROSERVE_URL",
        global = true
    )]
    pub url: String,
    /// Print the server's JSON answer as it is instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: RolloutCommand,
}

/// Subcommands of `ferroserve rollout`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a staged canary of VERSION against the version the model serves now; gates decide each step, a failing one rolls back.
    Start(Box<StartArgs>),
    /// Show the model's active rollout (else its latest one): state, step and weight, the window's figures per version, each gate and the decisions.
    Status {
        /// Model name.
        model: String,
    },
    /// Hold the rollout at its current step: the weight stays, no gate moves it on or back.
    Pause {
        /// Model name.
        model: String,
    },
    /// Continue a paused rollout from its step.
    Resume {
        /// Model name.
        model: String,
    },
    /// Stop the rollout and send all traffic to the stable version.
    Abort {
        /// Model name.
        model: String,
    },
    /// Make the canary the stable version now (the approval a rollout started with --approve-final waits for).
    Promote {
        /// Model name.
        model: String,
    },
}

/// Flags of `ferroserve rollout start`; every one left out takes the
/// server's default.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Model name.
    pub model: String,
    /// Version to roll out (the canary).
    pub version: i64,
    /// Canary percents of the steps, increasing, each 1 to 100, at most 10; a last 100 is implied [server default: 10,50,100].
    #[arg(long, value_name = "PERCENTS", value_parser = parse_steps)]
    pub steps: Option<Steps>,
    /// Shortest time of a step, in seconds (1 to 86400) [server default: 60].
    #[arg(long, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub step_seconds: Option<u64>,
    /// Fewest canary requests a step needs before its gates can pass (1 to 10000000) [server default: 200].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub step_min_requests: Option<u64>,
    /// Error rate gate: most the canary's error rate may exceed stable's [server default: 0.01].
    #[arg(long, value_name = "RATE", value_parser = parse_gate_max)]
    pub max_error_rate_increase: Option<f64>,
    /// Latency gate: most the canary's p99 may be, as a multiple of stable's (at least 1) [server default: 1.5].
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio_max)]
    pub max_p99_ratio: Option<f64>,
    /// Fallback gate: most the canary's fallback rate may exceed stable's [server default: 0.01].
    #[arg(long, value_name = "RATE", value_parser = parse_gate_max)]
    pub max_fallback_rate_increase: Option<f64>,
    /// Prediction gate (classifiers): most PSI of the canary's predicted classes against stable's [server default: 0.2].
    #[arg(long, value_name = "PSI", value_parser = parse_gate_max)]
    pub max_prediction_psi: Option<f64>,
    /// Failed checks in a row of one gate that roll back (1 to 100) [server default: 2].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub failure_threshold: Option<u32>,
    /// Time between gate checks, in ms (100 to 600000) [server default: 5000].
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub check_interval_ms: Option<u64>,
    /// Gates whose first failure rolls back at once, comma-separated (error_rate, p99_ratio, fallback_rate, prediction_psi); the others become non-critical; "" makes none critical [server default: error_rate].
    #[arg(long, value_name = "GATES", value_parser = parse_critical)]
    pub critical: Option<CriticalGates>,
    /// Request header whose value keeps one user on one version (hashed), e.g. X-User-ID [default: none, requests are picked at random].
    #[arg(long, value_name = "HEADER", value_parser = parse_header_name)]
    pub sticky_header: Option<String>,
    /// Wait in awaiting_approval before the last step until `rollout promote`.
    #[arg(long)]
    pub approve_final: bool,
}

impl RolloutArgs {
    /// The server's base URL: `--url`, else the local default.
    pub fn server(&self) -> &str {
        match self.url.trim() {
            "" => DEFAULT_URL,
            url => url,
        }
    }
}

impl StartArgs {
    /// The body of `POST /api/v1/models/{model}/rollout`: `version`, and
    /// only the settings whose flags were given.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("version".into(), json!(self.version));
        if let Some(Steps(steps)) = &self.steps {
            body.insert("steps".into(), json!(steps));
        }
        let numbers = [
            ("step_seconds", self.step_seconds),
            ("step_min_requests", self.step_min_requests),
            ("failure_threshold", self.failure_threshold.map(u64::from)),
            ("check_interval_ms", self.check_interval_ms),
        ];
        for (field, value) in numbers {
            if let Some(value) = value {
                body.insert(field.into(), json!(value));
            }
        }
        if let Some(header) = &self.sticky_header {
            body.insert("sticky_header".into(), json!(header));
        }
        if self.approve_final {
            body.insert("approve_final".into(), json!(true));
        }
        let gates = self.gates();
        if !gates.is_empty() {
            body.insert("gates".into(), Value::Object(gates));
        }
        Value::Object(body)
    }

    /// The `gates` object: each gate with a `max` or `critical` flag given.
    fn gates(&self) -> Map<String, Value> {
        let limits = [
            (Gate::ErrorRate, self.max_error_rate_increase),
            (Gate::P99Ratio, self.max_p99_ratio),
            (Gate::FallbackRate, self.max_fallback_rate_increase),
            (Gate::PredictionPsi, self.max_prediction_psi),
        ];
        let mut gates = Map::new();
        for (gate, max) in limits {
            let mut fields = Map::new();
            if let Some(max) = max {
                fields.insert("max".into(), json!(max));
            }
            if let Some(CriticalGates(critical)) = &self.critical {
                fields.insert("critical".into(), json!(critical.contains(&gate)));
            }
            if !fields.is_empty() {
                gates.insert(gate.name().into(), Value::Object(fields));
            }
        }
        gates
    }
}

/// A rollout gate, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Canary's error rate minus stable's.
    ErrorRate,
    /// Canary's p99 latency over stable's.
    P99Ratio,
    /// Canary's fallback rate minus stable's.
    FallbackRate,
    /// PSI of the canary's predicted classes against stable's.
    PredictionPsi,
}

impl Gate {
    /// Every gate, in the order the API lists them.
    pub const ALL: [Gate; 4] = [
        Gate::ErrorRate,
        Gate::P99Ratio,
        Gate::FallbackRate,
        Gate::PredictionPsi,
    ];

    /// The gate's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Gate::ErrorRate => "error_rate",
            Gate::P99Ratio => "p99_ratio",
            Gate::FallbackRate => "fallback_rate",
            Gate::PredictionPsi => "prediction_psi",
        }
    }
}

/// `--steps`: canary percents, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steps(pub Vec<u32>);

/// `--critical`: the gates that roll back on their first failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalGates(pub Vec<Gate>);

/// Parses `--steps 10,50,100`: whole percents 1 to 100, increasing, at
/// most [`MAX_STEPS`].
fn parse_steps(text: &str) -> Result<Steps, String> {
    if text.trim().is_empty() {
        return Err("needs at least one canary percent, e.g. 10,50,100".into());
    }
    let mut steps: Vec<u32> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let percent: u32 = part
            .parse()
            .map_err(|_| format!("step '{part}' is not a whole percent (1 to 100)"))?;
        if !(1..=100).contains(&percent) {
            return Err(format!("step {percent} is outside 1 to 100 percent"));
        }
        if let Some(&before) = steps.last() {
            if percent <= before {
                return Err(format!(
                    "steps must increase, but {percent} follows {before}"
                ));
            }
        }
        steps.push(percent);
    }
    if steps.len() > MAX_STEPS {
        return Err(format!(
            "{} steps given, at most {MAX_STEPS} are allowed",
            steps.len()
        ));
    }
    Ok(Steps(steps))
}

/// Parses `--critical error_rate,p99_ratio` (empty: no gate is critical).
fn parse_critical(text: &str) -> Result<CriticalGates, String> {
    let mut gates = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let gate = Gate::ALL
            .into_iter()
            .find(|gate| gate.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Gate::ALL.iter().map(|g| g.name()).collect();
                format!("unknown gate '{name}': the gates are {}", names.join(", "))
            })?;
        if !gates.contains(&gate) {
            gates.push(gate);
        }
    }
    Ok(CriticalGates(gates))
}

/// Parses a gate's `max`: a finite number, at least 0.
fn parse_gate_max(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(max) if max.is_finite() && max >= 0.0 => Ok(max),
        _ => Err(format!("'{text}' is not a number of at least 0")),
    }
}

/// Parses the latency gate's `max`: a finite ratio of at least 1 (below
/// 1, a canary as fast as stable would fail).
fn parse_ratio_max(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(max) if max.is_finite() && max >= 1.0 => Ok(max),
        _ => Err(format!("'{text}' is not a ratio of at least 1")),
    }
}

/// Parses `--sticky-header`: an HTTP header name of at most
/// [`MAX_STICKY_HEADER_CHARS`] characters.
fn parse_header_name(text: &str) -> Result<String, String> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if text.is_empty() || !text.chars().all(is_token_char) {
        return Err(format!(
            "'{text}' is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), e.g. X-User-ID"
        ));
    }
    if text.chars().count() > MAX_STICKY_HEADER_CHARS {
        return Err(format!(
            "the header name is {} characters long, at most {MAX_STICKY_HEADER_CHARS} are allowed",
            text.chars().count()
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// The `rollout` flags of a command line after `ferroserve rollout`.
    fn parse(args: &[&str]) -> Result<RolloutArgs, clap::Error> {
        let line = ["ferroserve", "rollout"].iter().chain(args).copied();
        match Cli::try_parse_from(line)?.command {
            Command::Rollout(args) => Ok(args),
            other => panic!("parsed as another command: {other:?}"),
        }
    }

    /// The body `rollout start` sends for these flags.
    fn start_body(args: &[&str]) -> Value {
        let line = ["start"].iter().chain(args).copied().collect::<Vec<_>>();
        match parse(&line).expect("flags parse").command {
            RolloutCommand::Start(start) => start.body(),
            other => panic!("parsed as another subcommand: {other:?}"),
        }
    }

    /// The error `rollout start` flags give, as clap prints it.
    fn start_error(args: &[&str]) -> String {
        let line = ["start"].iter().chain(args).copied().collect::<Vec<_>>();
        parse(&line)
            .expect_err("flags are refused")
            .render()
            .to_string()
    }

    #[test]
    fn a_bare_start_sends_only_the_version() {
        assert_eq!(start_body(&["iris", "3"]), json!({"version": 3}));
    }

    #[test]
    fn every_start_flag_goes_into_the_body_under_its_api_name() {
        let body = start_body(&[
            "iris",
            "3",
            "--steps",
            "10, 50,100",
            "--step-seconds",
            "60",
            "--step-min-requests",
            "200",
            "--max-error-rate-increase",
            "0.01",
            "--max-p99-ratio",
            "1.5",
            "--max-fallback-rate-increase",
            "0.02",
            "--max-prediction-psi",
            "0.2",
            "--failure-threshold",
            "2",
            "--check-interval-ms",
            "5000",
            "--critical",
            "error_rate,p99_ratio",
            "--sticky-header",
            "X-User-ID",
            "--approve-final",
        ]);
        assert_eq!(
            body,
            json!({
                "version": 3,
                "steps": [10, 50, 100],
                "step_seconds": 60,
                "step_min_requests": 200,
                "check_interval_ms": 5000,
                "failure_threshold": 2,
                "sticky_header": "X-User-ID",
                "approve_final": true,
                "gates": {
                    "error_rate": {"max": 0.01, "critical": true},
                    "p99_ratio": {"max": 1.5, "critical": true},
                    "fallback_rate": {"max": 0.02, "critical": false},
                    "prediction_psi": {"max": 0.2, "critical": false},
                },
            })
        );
    }

    #[test]
    fn only_the_gates_named_by_flags_are_sent() {
        assert_eq!(
            start_body(&["iris", "3", "--max-p99-ratio", "2"]),
            json!({"version": 3, "gates": {"p99_ratio": {"max": 2.0}}})
        );
        assert_eq!(
            start_body(&["iris", "3", "--critical", "prediction_psi"]),
            json!({"version": 3, "gates": {
                "error_rate": {"critical": false},
                "p99_ratio": {"critical": false},
                "fallback_rate": {"critical": false},
                "prediction_psi": {"critical": true},
            }})
        );
        let none_critical = start_body(&["iris", "3", "--critical", ""]);
        for gate in Gate::ALL {
            assert_eq!(none_critical["gates"][gate.name()]["critical"], false);
        }
    }

    #[test]
    fn the_server_flag_is_the_url_flag() {
        let args = parse(&["status", "iris", "--server", "http://h:1", "--json"]).expect("parses");
        assert_eq!(args.server(), "http://h:1");
        assert!(args.json);
        assert!(matches!(args.command, RolloutCommand::Status { model } if model == "iris"));
    }

    #[test]
    fn an_empty_url_means_the_local_server() {
        let args = parse(&["pause", "iris", "--url", " "]).expect("parses");
        assert_eq!(args.server(), DEFAULT_URL);
    }

    #[test]
    fn bad_steps_are_refused_saying_why() {
        let cases = [
            ("10,abc", "step 'abc' is not a whole percent"),
            ("0,50", "step 0 is outside 1 to 100"),
            ("10,150", "step 150 is outside 1 to 100"),
            ("50,10", "steps must increase, but 10 follows 50"),
            ("10,10", "steps must increase, but 10 follows 10"),
            ("1,2,3,4,5,6,7,8,9,10,11", "11 steps given, at most 10"),
            ("", "needs at least one canary percent"),
        ];
        for (steps, expected) in cases {
            let error = start_error(&["iris", "3", "--steps", steps]);
            assert!(error.contains("--steps"), "{steps:?}: {error}");
            assert!(error.contains(expected), "{steps:?}: {error}");
        }
        assert_eq!(
            start_body(&["iris", "3", "--steps", "1,2,3,4,5,6,7,8,9,100"])["steps"]
                .as_array()
                .map(Vec::len),
            Some(10)
        );
    }

    #[test]
    fn unknown_gates_are_refused_listing_the_four_names() {
        let error = start_error(&["iris", "3", "--critical", "error_rate,latency"]);
        assert!(error.contains("unknown gate 'latency'"), "{error}");
        assert!(
            error.contains("error_rate, p99_ratio, fallback_rate, prediction_psi"),
            "{error}"
        );
    }

    #[test]
    fn numbers_outside_the_servers_bounds_are_refused() {
        let cases: [(&str, &str); 9] = [
            ("--step-seconds", "0"),
            ("--step-seconds", "86401"),
            ("--step-min-requests", "10000001"),
            ("--check-interval-ms", "99"),
            ("--failure-threshold", "101"),
            ("--max-error-rate-increase", "-0.1"),
            ("--max-p99-ratio", "NaN"),
            ("--max-p99-ratio", "0.9"),
            ("--max-prediction-psi", "inf"),
        ];
        for (flag, value) in cases {
            let error = start_error(&["iris", "3", &format!("{flag}={value}")]);
            assert!(error.contains(flag), "{flag} {value}: {error}");
        }
    }

    #[test]
    fn sticky_headers_must_be_header_names() {
        let long = "x".repeat(65);
        for header in ["", "X User", "X-User:", long.as_str()] {
            let error = start_error(&["iris", "3", "--sticky-header", header]);
            assert!(error.contains("--sticky-header"), "{header:?}: {error}");
        }
        let longest = "x".repeat(64);
        assert_eq!(
            start_body(&["iris", "3", "--sticky-header", longest.as_str()])["sticky_header"],
            json!(longest)
        );
    }
}
