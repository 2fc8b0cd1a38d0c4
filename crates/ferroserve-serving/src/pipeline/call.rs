//! What a front end hands the pipeline ([`Call`], [`Decoded`]) and what it
//! gets back ([`Answer`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_batcher::Priority;
use ferroserve_core::{InferRequest, InferResponse, Principal};
use ferroserve_monitor::RequestKeys;

use super::admit::Permits;
use super::breaker::FallbackUsed;
use crate::cache::{CacheDirective, CacheStatus};
use crate::manager::InFlight;
use crate::ServedVersion;

/// One inference call, as a front end (HTTP, a job) describes it before
/// its body is decoded.
#[derive(Debug, Clone)]
pub struct Call {
    /// Model asked for.
    pub model: String,
    /// Version pinned by the caller; `None` lets the route stage choose.
    pub version: Option<String>,
    /// The value of the model's sticky header in the request, which keeps
    /// one caller on one version of a split or rollout.
    pub sticky: Option<String>,
    /// Who asks (an API key, a JWT subject or an address), for per-client
    /// rate limits.
    pub client: Arc<str>,
    /// The authenticated principal, when a front end authenticated one
    /// (the route stage may split traffic by it).
    pub principal: Option<Arc<Principal>>,
    /// The caller's own timeout from outside the body (a header); the
    /// deadline is the tightest of it, the body's and the model's default.
    pub timeout: Option<Duration>,
    /// What the caller allows the result cache to do; `None`: the cache
    /// takes no part at all (batch jobs' rows: millions of distinct inputs
    /// that would only push live answers out).
    pub cache: Option<CacheDirective>,
    /// What feedback can name this request by.
    pub keys: RequestKeys,
    /// Online (a client waits) or background (a job).
    pub priority: Priority,
    /// Whether the monitor may sample this call for drift (not for batch
    /// jobs' rows: a scoring file is not live traffic).
    pub sample: bool,
    /// Front end label in the request metrics (`v2`, `v1`, `batch`).
    pub protocol: &'static str,
    /// When the request arrived.
    pub start: Instant,
}

impl Call {
    /// An online call of `client` to `model` (and `version`) arriving now,
    /// with every other setting at its default.
    pub fn online(
        protocol: &'static str,
        model: impl Into<String>,
        version: Option<String>,
        client: Arc<str>,
    ) -> Call {
        Call {
            model: model.into(),
            version,
            sticky: None,
            client,
            principal: None,
            timeout: None,
            cache: Some(CacheDirective::default()),
            keys: RequestKeys::default(),
            priority: Priority::Online,
            sample: true,
            protocol,
            start: Instant::now(),
        }
    }

    /// A background call of a job to `model` (and `version`) starting now:
    /// no per-client limits, and no deadline unless the body sets one.
    /// Batch jobs' rows also leave the cache and the drift sample out
    /// ([`Call::rows`]).
    pub fn background(
        protocol: &'static str,
        model: impl Into<String>,
        version: Option<String>,
    ) -> Call {
        Call {
            priority: Priority::Background,
            ..Call::online(protocol, model, version, Arc::from("job"))
        }
    }

    /// A batch job's rows to `model` (and `version`): a background call
    /// that the result cache and the monitor's drift sample leave out.
    pub fn rows(protocol: &'static str, model: impl Into<String>, version: Option<String>) -> Call {
        Call {
            cache: None,
            sample: false,
            ..Call::background(protocol, model, version)
        }
    }
}

/// A decoded request body, with what the front end keeps for encoding.
#[derive(Debug)]
pub struct Decoded<C> {
    /// The request.
    pub request: InferRequest,
    /// A timeout the body itself sets (KServe's `timeout` parameter).
    pub timeout: Option<Duration>,
    /// What the encoder needs later (which outputs go back binary...).
    pub context: C,
}

impl<C> Decoded<C> {
    /// `request` with no timeout of its own.
    pub fn new(request: InferRequest, context: C) -> Self {
        Decoded {
            request,
            timeout: None,
            context,
        }
    }
}

/// A successful answer, how it was reached, and the version that gave it.
/// The admission permits are held until it is dropped (after encoding).
pub struct Answer<C> {
    /// The outputs.
    pub response: InferResponse,
    /// How the result cache took part.
    pub cache: CacheStatus,
    /// The fallback that answered, when the version's breaker was open.
    pub fallback: Option<FallbackUsed>,
    /// What the decoder kept for the encoder.
    pub context: C,
    held: InFlight,
    variant: Option<Arc<str>>,
    _permits: Permits,
}

impl<C> Answer<C> {
    pub(crate) fn new(
        routed: super::route::Routed,
        permits: Permits,
        reached: Reached,
        context: C,
    ) -> Self {
        Answer {
            response: reached.response,
            cache: reached.cache,
            fallback: reached.fallback,
            context,
            held: routed.held,
            variant: routed.variant,
            _permits: permits,
        }
    }

    /// The variant of a split or rollout that answered (`canary`,
    /// `stable`, an A/B variant), when one chose the version.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The version the request was routed to.
    pub fn served(&self) -> &Arc<ServedVersion> {
        self.held.served()
    }
}

/// The outputs and how the cache and breaker stages reached them.
#[derive(Debug)]
pub(crate) struct Reached {
    pub(crate) response: InferResponse,
    pub(crate) cache: CacheStatus,
    pub(crate) fallback: Option<FallbackUsed>,
}
