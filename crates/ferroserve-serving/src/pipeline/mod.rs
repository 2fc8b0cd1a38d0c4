//! The request pipeline: the one road from a decoded request to an answer,
//! for every front end (KServe v2 and v1 over HTTP, asynchronous and batch
//! jobs). One call, [`Pipeline::infer`], walks the stages in order:
//!
//! ```text
//! route → admit → decode → contract → cache → breaker/fallback → batch → observe → shadow
//! ```
//!
//! - **route** ([`route`]): which loaded version answers (pinned, an arm of
//!   a rollout or A/B split, or the default);
//! - **admit** ([`admit`]): server and model concurrency, per-client rate
//!   limits — online calls only;
//! - **decode**: the front end's decoder, run for the routed version after
//!   the cheap refusals; the deadline is computed once, here;
//! - **contract** ([`contract`]): the monitor's data contract and sampling;
//! - **cache** ([`cache`]): the result cache, per the call's directive;
//! - **breaker/fallback, batch** ([`breaker`]): the version's circuit
//!   breaker and fallbacks around the batcher, at the call's priority;
//! - **observe** ([`observe`]): request metrics, rollout windows, failure
//!   logs, drift samples;
//! - **shadow** ([`shadow`]): a copy for the model's shadow version, after
//!   the answer.
//!
//! Each stage runs in a span of its own (see [`stage_span`]), a child of
//! the front end's request span; the spans are exported as OpenTelemetry
//! traces when an OTLP endpoint is configured and cost nothing otherwise.

pub mod admit;
pub mod breaker;
pub mod cache;
pub mod call;
pub mod contract;
pub mod deadline;
pub mod observe;
pub mod route;
mod shadow;

use std::sync::Arc;
use std::time::Duration;

use ferroserve_batcher::Priority;
use ferroserve_core::telemetry::TRACE_TARGET;
use ferroserve_core::InferError;
use ferroserve_monitor::Monitor;
use ferroserve_registry::Registry;
use tracing::Instrument;

pub use breaker::FallbackUsed;
pub use call::{Answer, Call, Decoded};
pub use deadline::{Deadline, SetBy};

use crate::cache::ResultCache;
use crate::guard::concurrency::{ConcurrencyLimit, ConcurrencyScope};
use crate::guard::rate_limit::RateLimiter;
use crate::lifecycle::Controller;
use crate::{ModelManager, ServedVersion};

/// The request pipeline of one server: the served models and every
/// protection, shared by all front ends.
pub struct Pipeline {
    manager: Arc<ModelManager>,
    /// Explains unknown models and versions; `None` without a registry.
    registry: Option<Registry>,
    monitor: Option<Arc<Monitor>>,
    cache: Option<Arc<ResultCache>>,
    rate_limiter: Option<Arc<RateLimiter>>,
    /// The server-wide concurrency limit.
    concurrency: Option<ConcurrencyLimit>,
    /// Deadline of online calls that set none and whose model sets none.
    default_timeout: Duration,
}

impl Pipeline {
    /// A pipeline over `manager` with no protection, no cache and no
    /// monitor; online calls get `default_timeout` unless they say otherwise.
    pub fn new(manager: Arc<ModelManager>, default_timeout: Duration) -> Self {
        Pipeline {
            manager,
            registry: None,
            monitor: None,
            cache: None,
            rate_limiter: None,
            concurrency: None,
            default_timeout,
        }
    }

    /// A pipeline serving what `controller` swaps in: its model manager,
    /// its monitor, and its registry to explain models not served.
    pub fn for_controller(controller: &Controller, default_timeout: Duration) -> Self {
        Pipeline {
            registry: Some(controller.lifecycle().registry().clone()),
            monitor: controller.monitor().cloned(),
            ..Pipeline::new(controller.manager().clone(), default_timeout)
        }
    }

    /// Caches answers of the models whose cache policy allows it.
    pub fn with_cache(mut self, cache: Arc<ResultCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Enforces the rate limits of `limiter`.
    pub fn with_rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Refuses online calls beyond `limit` at once, server-wide.
    pub fn with_concurrency_limit(mut self, limit: Option<usize>) -> Self {
        self.concurrency = limit.map(|n| ConcurrencyLimit::new(n, ConcurrencyScope::Server));
        self
    }

    /// Watches served versions with `monitor`.
    pub fn with_monitor(mut self, monitor: Arc<Monitor>) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// The served models.
    pub fn manager(&self) -> &Arc<ModelManager> {
        &self.manager
    }

    /// The monitor, when one watches the served versions.
    pub fn monitor(&self) -> Option<&Arc<Monitor>> {
        self.monitor.as_ref()
    }

    /// The result cache, when answers are cached.
    pub fn cache(&self) -> Option<&Arc<ResultCache>> {
        self.cache.as_ref()
    }

    /// The header that keeps a caller of `model` on one version of its
    /// split or rollout: a front end puts its value in [`Call::sticky`].
    pub fn sticky_header(&self, model: &str) -> Option<Arc<str>> {
        self.manager.routing(model)?.sticky_header().cloned()
    }

    /// The shadow lane of `model`, when it has one.
    pub fn shadow(&self, model: &str) -> Option<Arc<crate::shadow::ShadowLane>> {
        self.manager.routing(model)?.shadow().cloned()
    }

    /// The version a call to `model` (`version`) would be routed to, for
    /// metadata and readiness; errors explain what is not served.
    pub async fn find(
        &self,
        model: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedVersion>, InferError> {
        route::find(&self.manager, self.registry.as_ref(), model, version).await
    }

    /// Answers `call`: routes it, admits it, decodes its body with
    /// `decode` for the routed version, and runs it through the contract,
    /// cache, breaker and batch stages; every outcome is observed.
    pub async fn infer<C>(
        &self,
        call: Call,
        decode: impl FnOnce(&ServedVersion) -> Result<Decoded<C>, InferError>,
    ) -> Result<Answer<C>, InferError> {
        let routed = match route::route(
            &self.manager,
            self.registry.as_ref(),
            &call.model,
            call.version.as_deref(),
            call.sticky.as_deref(),
            call.priority == Priority::Online,
        )
        .instrument(stage_span("route"))
        .await
        {
            Ok(routed) => routed,
            Err(e) => {
                observe::failed(&call, None, &e);
                return Err(e);
            }
        };
        record_served(routed.held.served());
        match self.run(&call, &routed, decode).await {
            Ok((permits, reached, context)) => Ok(Answer::new(routed, permits, reached, context)),
            Err(e) => {
                observe::failed(&call, Some(&routed), &e);
                Err(e)
            }
        }
    }

    /// The stages after route, on the version `routed` holds.
    async fn run<C>(
        &self,
        call: &Call,
        routed: &route::Routed,
        decode: impl FnOnce(&ServedVersion) -> Result<Decoded<C>, InferError>,
    ) -> Result<(admit::Permits, call::Reached, C), InferError> {
        let served = routed.held.served();
        let permits = self
            .admit(call, served)
            .instrument(stage_span("admit"))
            .await?;
        let decoded = stage_span("decode").in_scope(|| decode(served))?;
        let deadline = self.deadline(call, served, decoded.timeout);
        let sampled = stage_span("contract")
            .in_scope(|| self.check_contract(call, served, &decoded.request))?;
        let shadow_copy = shadow::copy(call, routed, &decoded.request);
        let reached = breaker::protect(
            &self.manager,
            call.cache.and(self.cache.as_deref()),
            served,
            decoded.request,
            deadline,
            call.cache.unwrap_or_default(),
            call.priority,
        )
        .await?;
        observe::answered(call, routed, &reached, sampled);
        shadow::offer(shadow_copy, &reached);
        Ok((permits, reached, decoded.context))
    }

    /// The tightest of the call's timeout, the body's, and (online) the
    /// model's default, else the server's; background calls have no
    /// default: they wait their turn behind online traffic.
    fn deadline(
        &self,
        call: &Call,
        served: &ServedVersion,
        body: Option<Duration>,
    ) -> Option<Deadline> {
        let default = match call.priority {
            Priority::Online => Some(served.request_timeout().unwrap_or(self.default_timeout)),
            Priority::Background => None,
        };
        Deadline::tightest(call.start, default, [call.timeout, body])
    }
}

/// The span of one pipeline stage (`route`, `admit`, `decode`,
/// `contract`, `cache`, `batch`), a child of the current (request) span.
/// At debug level, so that the request span stays the one JSON log lines
/// name; disabled, and free, unless traces are exported.
pub(crate) fn stage_span(stage: &'static str) -> tracing::Span {
    tracing::debug_span!(target: TRACE_TARGET, "stage", otel.name = stage)
}

/// Names the routed model and version on the request span (a span without
/// these fields ignores them).
fn record_served(served: &ServedVersion) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("model", served.name());
        span.record("version", served.version());
    }
}
