//! Fault injection for tests and drills: extra latency (fixed or
//! long-tailed) and an error rate on one served version, applied where the
//! engine runs a batch, so that breakers, fallbacks and shedding meet real
//! slowness and real failures. Off unless the server was started with it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ferroserve_backend::{BackendError, LoadedModel, Runner};
use ferroserve_core::json::float_text;
use ferroserve_core::{InferError, ModelSignature, Tensor};
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};

/// Longest latency one batch may be given: ten minutes.
const MAX_LATENCY_MS: f64 = 600_000.0;

/// Extra time each batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum LatencyFault {
    /// The same delay every time, e.g. `{"distribution": "fixed", "ms": 50}`.
    Fixed {
        /// Delay in milliseconds.
        ms: f64,
    },
    /// A long tail: log-normal with this median and 99th percentile, e.g.
    /// `{"distribution": "lognormal", "median_ms": 5, "p99_ms": 200}`.
    Lognormal {
        /// Median delay in milliseconds.
        median_ms: f64,
        /// 99th-percentile delay in milliseconds.
        p99_ms: f64,
    },
}

impl std::fmt::Display for LatencyFault {
    /// `fixed 50 ms` or `lognormal median 5 ms p99 200 ms`, as logs show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LatencyFault::Fixed { ms } => write!(f, "fixed {} ms", float_text(*ms)),
            LatencyFault::Lognormal { median_ms, p99_ms } => write!(
                f,
                "lognormal median {} ms p99 {} ms",
                float_text(*median_ms),
                float_text(*p99_ms)
            ),
        }
    }
}

/// The faults injected into one version (`PUT .../faults`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Extra latency per batch.
    pub latency: Option<LatencyFault>,
    /// Share of batches that fail with an engine error, 0 to 1.
    pub error_rate: f64,
}

/// z-score of the 99th percentile of a standard normal distribution.
const Z_99: f64 = 2.326_347_874;

impl FaultSpec {
    /// Checks the values; errors name the field.
    pub fn validate(&self) -> Result<(), InferError> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(InferError::invalid(format!(
                "faults: error_rate must be between 0 and 1, got {}",
                float_text(self.error_rate)
            )));
        }
        let in_range = |what: &str, ms: f64| {
            if ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&ms) {
                Ok(())
            } else {
                Err(InferError::invalid(format!(
                    "faults: latency.{what} must be between 0 and {MAX_LATENCY_MS} ms, got {}",
                    float_text(ms)
                )))
            }
        };
        match self.latency {
            None => Ok(()),
            Some(LatencyFault::Fixed { ms }) => in_range("ms", ms),
            Some(LatencyFault::Lognormal { median_ms, p99_ms }) => {
                in_range("median_ms", median_ms)?;
                in_range("p99_ms", p99_ms)?;
                if median_ms <= 0.0 || p99_ms < median_ms {
                    return Err(InferError::invalid(format!(
                        "faults: lognormal latency needs 0 < median_ms <= p99_ms, got median_ms {median_ms}, p99_ms {p99_ms}"
                    )));
                }
                Ok(())
            }
        }
    }

    /// One draw of the extra latency.
    fn sample_latency(&self, rng: &mut impl Rng) -> Duration {
        let ms = match self.latency {
            None => 0.0,
            Some(LatencyFault::Fixed { ms }) => ms,
            Some(LatencyFault::Lognormal { median_ms, p99_ms }) => {
                let sigma = (p99_ms / median_ms).ln() / Z_99;
                match LogNormal::new(median_ms.ln(), sigma) {
                    Ok(distribution) => distribution.sample(rng).min(MAX_LATENCY_MS),
                    Err(_) => median_ms,
                }
            }
        };
        Duration::from_secs_f64(ms / 1000.0)
    }
}

/// The faults currently set on one version, shared by its batch workers.
#[derive(Debug, Default)]
pub struct FaultSlot(ArcSwapOption<FaultSpec>);

impl FaultSlot {
    /// Sets (`Some`) or clears (`None`) the faults.
    pub fn set(&self, spec: Option<FaultSpec>) {
        self.0.store(spec.map(Arc::new));
    }

    /// The faults in force.
    pub fn get(&self) -> Option<FaultSpec> {
        self.0.load().as_deref().copied()
    }
}

/// A loaded model whose runners obey a [`FaultSlot`].
pub(crate) struct FaultyModel {
    inner: Arc<dyn LoadedModel>,
    slot: Arc<FaultSlot>,
}

impl FaultyModel {
    pub(crate) fn wrap(inner: Arc<dyn LoadedModel>, slot: Arc<FaultSlot>) -> Arc<dyn LoadedModel> {
        Arc::new(FaultyModel { inner, slot })
    }
}

impl LoadedModel for FaultyModel {
    fn signature(&self) -> &ModelSignature {
        self.inner.signature()
    }

    fn engine(&self) -> &'static str {
        self.inner.engine()
    }

    fn runner(&self) -> Result<Box<dyn Runner>, BackendError> {
        Ok(Box::new(FaultyRunner {
            inner: self.inner.runner()?,
            slot: self.slot.clone(),
        }))
    }
}

struct FaultyRunner {
    inner: Box<dyn Runner>,
    slot: Arc<FaultSlot>,
}

impl Runner for FaultyRunner {
    fn infer(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        if let Some(spec) = self.slot.get() {
            let mut rng = rand::rng();
            let delay = spec.sample_latency(&mut rng);
            if !delay.is_zero() {
                // Batch workers are plain threads, so a blocking sleep is
                // exactly "the engine got slower".
                std::thread::sleep(delay);
            }
            if spec.error_rate > 0.0 && rng.random_bool(spec.error_rate) {
                return Err(BackendError::Inference(
                    "injected fault (fault injection is set on this version)".into(),
                ));
            }
        }
        self.inner.infer(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_faults_read_as_words_in_logs() {
        assert_eq!(LatencyFault::Fixed { ms: 50.0 }.to_string(), "fixed 50 ms");
        let tail = LatencyFault::Lognormal {
            median_ms: 5.0,
            p99_ms: 200.5,
        };
        assert_eq!(tail.to_string(), "lognormal median 5 ms p99 200.5 ms");
    }

    #[test]
    fn bad_values_are_named() {
        let bad_rate = FaultSpec {
            error_rate: 1.5,
            ..FaultSpec::default()
        };
        let message = bad_rate.validate().unwrap_err().message;
        assert!(message.contains("error_rate"), "{message}");
        let upside_down = FaultSpec {
            latency: Some(LatencyFault::Lognormal {
                median_ms: 50.0,
                p99_ms: 5.0,
            }),
            error_rate: 0.0,
        };
        let message = upside_down.validate().unwrap_err().message;
        assert!(message.contains("median_ms <= p99_ms"), "{message}");
        let spec: FaultSpec =
            serde_json::from_str(r#"{"latency": {"distribution": "fixed", "ms": 20}}"#)
                .expect("parses");
        assert_eq!(spec.latency, Some(LatencyFault::Fixed { ms: 20.0 }));
        spec.validate().expect("valid");
    }

    #[test]
    fn lognormal_latency_has_the_asked_median_and_tail() {
        let spec = FaultSpec {
            latency: Some(LatencyFault::Lognormal {
                median_ms: 10.0,
                p99_ms: 100.0,
            }),
            error_rate: 0.0,
        };
        let mut rng = rand::rng();
        let mut draws: Vec<f64> = (0..20_000)
            .map(|_| spec.sample_latency(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[draws.len() / 2];
        let p99 = draws[draws.len() * 99 / 100];
        assert!((8.5..11.5).contains(&median), "median {median}");
        assert!((75.0..130.0).contains(&p99), "p99 {p99}");
    }
}
