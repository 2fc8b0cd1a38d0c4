//! The sections of the serve configuration (`[batching]`, `[cache]`,
//! `[rate_limit]`, `[idempotency]`, `[monitoring]`, `[models]`): each is a
//! table of the config file and a group of `serve` flags at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::{value_parser, Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use ferroserve_batcher::BatcherConfig;
use ferroserve_monitor::MonitorOptions;
use ferroserve_serving::cache::CacheConfig;
use ferroserve_serving::guard::idempotency::IdempotencyConfig;
use ferroserve_serving::guard::rate_limit::Limit;
use ferroserve_serving::redis_link::RedisSettings;
use serde::{Deserialize, Serialize};

/// clap's traits for a section whose flags are declared by hand (its
/// fields belong to another crate, or one flag does not map to one
/// field): `flags` adds them to the command, `update` lays the ones given
/// over the section.
macro_rules! flag_section {
    ($section:ty) => {
        impl Args for $section {
            fn augment_args(cmd: Command) -> Command {
                <$section>::flags(cmd)
            }

            fn augment_args_for_update(cmd: Command) -> Command {
                <$section>::flags(cmd)
            }
        }

        impl FromArgMatches for $section {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                let mut section = <$section>::default();
                section.update(matches);
                Ok(section)
            }

            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                self.update(matches);
                Ok(())
            }
        }
    };
}

/// The `[monitoring]` section.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringSettings {
    /// Watch served versions for drift, data contract breaches and online
    /// quality (`--disable-monitoring` turns it off).
    #[arg(
        id = "disable_monitoring",
        long = "disable-monitoring",
        env = "FERROSERVE_DISABLE_MONITORING",
        action = ArgAction::SetTrue,
        // The flag says "off": given (or its variable true), watching stops.
        value_parser = BoolishValueParser::new().map(|off| !off),
        help = "Do not watch served versions for drift, data contract breaches and online quality [default: watched]"
    )]
    pub enabled: bool,
    /// Observations waiting for the monitor at most; more are dropped and
    /// counted, never slowing requests [default: 65536].
    #[arg(long = "monitor-queue-size", env = "FERROSERVE_MONITOR_QUEUE_SIZE")]
    pub queue_size: usize,
    /// How long a prediction waits for its feedback (ground truth), in
    /// seconds [default: 86400].
    #[arg(long = "feedback-ttl-s", env = "FERROSERVE_FEEDBACK_TTL_S")]
    pub feedback_ttl_s: u64,
    /// Predictions kept for feedback at most (config file only).
    #[arg(skip)]
    pub max_pending: usize,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        let defaults = MonitorOptions::default();
        MonitoringSettings {
            enabled: true,
            queue_size: defaults.queue_capacity,
            feedback_ttl_s: defaults.feedback_ttl.as_secs(),
            max_pending: defaults.max_pending,
        }
    }
}

impl MonitoringSettings {
    /// The monitor's options, or `None` when monitoring is off.
    pub fn options(&self) -> Option<MonitorOptions> {
        self.enabled.then(|| MonitorOptions {
            queue_capacity: self.queue_size,
            max_pending: self.max_pending,
            feedback_ttl: Duration::from_secs(self.feedback_ttl_s),
            ..MonitorOptions::default()
        })
    }
}

/// The `[idempotency]` section.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// Honour `Idempotency-Key` headers (config file only).
    #[arg(skip)]
    pub enabled: bool,
    /// How long an Idempotency-Key is remembered, in seconds [default: 600].
    #[arg(long = "idempotency-window-s", env = "FERROSERVE_IDEMPOTENCY_WINDOW_S")]
    pub window_s: u64,
    /// Bytes of keys and kept answers held in process at most (config file
    /// only).
    #[arg(skip)]
    pub max_bytes: u64,
    /// Treat the request body `id` as the idempotency key when no
    /// Idempotency-Key header is sent [default: off].
    #[arg(
        id = "idempotency_request_id",
        long = "idempotency-request-id",
        env = "FERROSERVE_IDEMPOTENCY_REQUEST_ID"
    )]
    pub use_request_id: bool,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        let d = IdempotencyConfig::default();
        IdempotencySettings {
            enabled: true,
            window_s: d.window.as_secs(),
            max_bytes: d.max_bytes,
            use_request_id: false,
        }
    }
}

/// The `[cache]` section: result cache defaults. Models opt in or out in
/// their own serving config; `enabled` is the default for those that do not say.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Cache the answers of every model whose serving config does not say
    /// otherwise [default: off: caching assumes a deterministic model,
    /// which its owner should confirm].
    #[arg(id = "cache", long = "cache", env = "FERROSERVE_CACHE")]
    pub enabled: bool,
    /// Bytes of cached outputs held in process at most [default: 268435456].
    #[arg(long = "cache-max-bytes", env = "FERROSERVE_CACHE_MAX_BYTES")]
    pub max_bytes: u64,
    /// Lifetime of a cached answer for models that set none, in seconds
    /// [default: 300].
    #[arg(long = "cache-ttl-s", env = "FERROSERVE_CACHE_TTL_S")]
    pub ttl_s: u64,
    /// Skip Redis for models that compute faster than a Redis round trip
    /// [default: true].
    #[arg(
        long = "cache-cost-aware",
        env = "FERROSERVE_CACHE_COST_AWARE",
        action = ArgAction::Set
    )]
    pub cost_aware: bool,
    /// Longest wait for one Redis call before it counts as failed, in ms
    /// [default: 5].
    #[arg(long, env = "FERROSERVE_REDIS_TIMEOUT_MS")]
    pub redis_timeout_ms: u64,
    /// Consecutive Redis failures after which Redis is left alone for a
    /// cool-down [default: 5].
    #[arg(long, env = "FERROSERVE_REDIS_BREAKER_FAILURES")]
    pub redis_breaker_failures: u32,
    /// How long Redis is left alone after the breaker opens, in ms
    /// [default: 2000].
    #[arg(long, env = "FERROSERVE_REDIS_BREAKER_COOLDOWN_MS")]
    pub redis_breaker_cooldown_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        let d = CacheConfig::default();
        let r = RedisSettings::new("");
        CacheSettings {
            enabled: d.enabled_by_default,
            max_bytes: d.max_bytes,
            ttl_s: d.ttl.as_secs(),
            cost_aware: d.cost_aware,
            redis_timeout_ms: r.timeout.as_millis() as u64,
            redis_breaker_failures: r.failures_to_open,
            redis_breaker_cooldown_ms: r.cooldown.as_millis() as u64,
        }
    }
}

/// The `[batching]` section: the batcher's own settings (a model's serving
/// config overrides them). All but `preferred_batch_sizes` are flags too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchingSettings(pub BatcherConfig);

flag_section!(BatchingSettings);

impl BatchingSettings {
    fn flags(cmd: Command) -> Command {
        cmd.args([
            setting(
                "max_batch_size",
                "max-batch-size",
                "FERROSERVE_MAX_BATCH_SIZE",
                "Rows per batch at most [default: 32]",
            )
            .value_parser(value_parser!(usize)),
            setting(
                "max_queue_delay_us",
                "max-queue-delay-us",
                "FERROSERVE_MAX_QUEUE_DELAY_US",
                "How long a request may wait for others to join its batch, in µs [default: 0]",
            )
            .value_parser(value_parser!(u64)),
            setting(
                "max_queue_size",
                "max-queue-size",
                "FERROSERVE_MAX_QUEUE_SIZE",
                "Rows allowed to wait per model version before answering 429 [default: 1024]",
            )
            .value_parser(value_parser!(usize)),
            setting(
                "instance_count",
                "instance-count",
                "FERROSERVE_INSTANCE_COUNT",
                "Batch worker threads per model version [default: 1]",
            )
            .value_parser(value_parser!(usize)),
        ])
    }

    fn update(&mut self, matches: &ArgMatches) {
        let b = &mut self.0;
        given(matches, "max_batch_size", &mut b.max_batch_size);
        given(matches, "max_queue_delay_us", &mut b.max_queue_delay_us);
        given(matches, "max_queue_size", &mut b.max_queue_size);
        given(matches, "instance_count", &mut b.instance_count);
    }
}

/// The `[rate_limit]` section: `per_client` (each client across all
/// models) and `per_model` (each model without its own), each
/// `{ requests_per_s = .., burst = .. }`. A rate flag sets the whole
/// limit: its burst flag, else the rate (at least 1).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Each client across all models.
    pub per_client: Option<Limit>,
    /// Each model that sets no limit of its own.
    pub per_model: Option<Limit>,
}

flag_section!(RateLimitSettings);

impl RateLimitSettings {
    fn flags(cmd: Command) -> Command {
        cmd.args([
            setting(
                "client_rate_limit",
                "client-rate-limit",
                "FERROSERVE_CLIENT_RATE_LIMIT",
                "Requests per second each client (API key, else IP address) may send across all models [default: no limit]",
            )
            .value_parser(value_parser!(f64)),
            setting(
                "client_rate_burst",
                "client-rate-burst",
                "FERROSERVE_CLIENT_RATE_BURST",
                "Burst of the per-client rate limit [default: the rate, at least 1]",
            )
            .value_parser(value_parser!(u32))
            .requires("client_rate_limit"),
            setting(
                "model_rate_limit",
                "model-rate-limit",
                "FERROSERVE_MODEL_RATE_LIMIT",
                "Requests per second each model takes from all clients together, unless its serving config sets its own [default: no limit]",
            )
            .value_parser(value_parser!(f64)),
            setting(
                "model_rate_burst",
                "model-rate-burst",
                "FERROSERVE_MODEL_RATE_BURST",
                "Burst of the per-model rate limit [default: the rate, at least 1]",
            )
            .value_parser(value_parser!(u32))
            .requires("model_rate_limit"),
        ])
    }

    fn update(&mut self, matches: &ArgMatches) {
        let limit = |rate: &str, burst: &str| {
            let rate = *matches.get_one::<f64>(rate)?;
            let burst = matches.get_one::<u32>(burst).copied();
            Some(Limit {
                requests_per_s: rate,
                burst: burst.unwrap_or_else(|| rate.ceil().max(1.0) as u32),
            })
        };
        if let Some(limit) = limit("client_rate_limit", "client_rate_burst") {
            self.per_client = Some(limit);
        }
        if let Some(limit) = limit("model_rate_limit", "model_rate_burst") {
            self.per_model = Some(limit);
        }
    }
}

/// The `[models]` section: models served from single files, name → path.
/// `--model NAME=PATH` adds to (or replaces a name of) the file's table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelFiles(pub BTreeMap<String, PathBuf>);

impl<'a> IntoIterator for &'a ModelFiles {
    type Item = (&'a String, &'a PathBuf);
    type IntoIter = std::collections::btree_map::Iter<'a, String, PathBuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

flag_section!(ModelFiles);

impl ModelFiles {
    fn flags(cmd: Command) -> Command {
        cmd.arg(
            Arg::new("models")
                .long("model")
                .env("FERROSERVE_MODEL")
                .value_name("NAME=PATH")
                .value_delimiter(',')
                .action(ArgAction::Append)
                .value_parser(model_file)
                .help("Serve an ONNX file under a name, as NAME=PATH (repeatable)"),
        )
    }

    fn update(&mut self, matches: &ArgMatches) {
        for (name, path) in matches
            .get_many::<(String, PathBuf)>("models")
            .into_iter()
            .flatten()
        {
            self.0.insert(name.clone(), path.clone());
        }
    }
}

/// `NAME=PATH` of `--model`.
fn model_file(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("--model expects NAME=PATH, got {text:?}"))?;
    Ok((name.trim().to_owned(), PathBuf::from(path.trim())))
}

/// A flag with a value, also read from the variable `env`.
fn setting(id: &'static str, long: &'static str, env: &'static str, help: &'static str) -> Arg {
    Arg::new(id).long(long).env(env).help(help)
}

/// Sets `field` to the value of `id` when the flag or its variable was given.
fn given<T: Clone + Send + Sync + 'static>(matches: &ArgMatches, id: &str, field: &mut T) {
    if let Some(value) = matches.get_one::<T>(id) {
        *field = value.clone();
    }
}

/// The `[auth]` section: what callers without credentials may do, and the
/// identity provider whose JWTs are accepted. API keys need no settings:
/// they live in the registry (`ferroserve keys`).
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Role of callers without credentials: predictor (inference and model metadata stay open, as on Triton), reader, or none (every route but the health probes needs a key) [default: predictor].
    #[arg(long = "anonymous-role", env = "FERROSERVE_ANONYMOUS_ROLE")]
    pub anonymous_role: String,
    /// JWKS of an identity provider whose JWTs are accepted: a file or an http(s) URL [default: none, JWTs refused].
    #[arg(long = "jwt-jwks", env = "FERROSERVE_JWT_JWKS")]
    pub jwt_jwks: Option<String>,
    /// The `iss` a JWT must carry [default: not checked].
    #[arg(long = "jwt-issuer", env = "FERROSERVE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` a JWT must carry [default: not checked].
    #[arg(long = "jwt-audience", env = "FERROSERVE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The JWT claim naming the caller's role [default: role].
    #[arg(long = "jwt-role-claim", env = "FERROSERVE_JWT_ROLE_CLAIM")]
    pub jwt_role_claim: String,
    /// The JWT claim listing model patterns the caller is limited to [default: models].
    #[arg(long = "jwt-models-claim", env = "FERROSERVE_JWT_MODELS_CLAIM")]
    pub jwt_models_claim: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            anonymous_role: "predictor".into(),
            jwt_jwks: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_role_claim: "role".into(),
            jwt_models_claim: "models".into(),
        }
    }
}

impl AuthSettings {
    /// The role of callers without credentials (`None`: they have none).
    pub fn anonymous_role(&self) -> anyhow::Result<Option<ferroserve_core::Role>> {
        use ferroserve_core::Role;
        match self.anonymous_role.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(None),
            text => match text.parse::<Role>() {
                Ok(role @ (Role::Predictor | Role::Reader)) => Ok(Some(role)),
                Ok(role) => anyhow::bail!(
                    "auth.anonymous_role may not be {role}: callers without credentials may be \
                     predictor, reader or none"
                ),
                Err(e) => anyhow::bail!("auth.anonymous_role: {e} (or none)"),
            },
        }
    }

    /// What JWTs must satisfy, when they are accepted.
    pub fn jwt(&self) -> Option<ferroserve_server::auth::JwtSettings> {
        self.jwt_jwks
            .as_ref()
            .map(|jwks| ferroserve_server::auth::JwtSettings {
                jwks: jwks.clone(),
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
                role_claim: self.jwt_role_claim.clone(),
                models_claim: self.jwt_models_claim.clone(),
            })
    }
}
