//! Ground truth for served predictions: the body of
//! `POST /api/v1/models/{m}/feedback`, the predictions waiting for it, and
//! what a feedback call achieved.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::quality::{Outcome, QualityReport};
use super::watch::{idempotency_key, request_key, Watch};

/// Entries accepted in one feedback call at most.
pub const MAX_FEEDBACK_ENTRIES: usize = 10_000;

/// A served prediction waiting for its ground truth.
pub(crate) struct Pending {
    pub(crate) watch: Arc<Watch>,
    /// One outcome per row of the request.
    pub(crate) outcomes: Vec<Outcome>,
    /// Every key it is stored under.
    pub(crate) keys: Vec<Arc<str>>,
    /// The client that made it; only it may label it.
    pub(crate) client: Option<Arc<str>>,
}

/// The true value of one row, or of each row of a batched request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Truth {
    One(Outcome),
    Many(Vec<Outcome>),
}

/// One feedback entry: which request, and its true label(s) or value(s).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The request's `x-request-id` or body `id`.
    #[serde(default)]
    request_id: Option<String>,
    /// The request's `Idempotency-Key`.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// `label`, `labels`, `value` and `values` are accepted too.
    #[serde(alias = "label", alias = "labels", alias = "value", alias = "values")]
    truth: Truth,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Wrapped { feedback: Vec<Value> },
    Bare(Vec<Value>),
}

/// A parsed feedback call.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    entries: Vec<(String, Entry)>,
}

impl Feedback {
    /// Parses `{"feedback": [entry, ...]}` (or the bare list), where an
    /// entry is `{"request_id": "...", "label": 1}` or
    /// `{"idempotency_key": "...", "values": [2.5, 3.1]}`. The error names
    /// the entry and what is wrong with it.
    pub fn from_json(body: &Value) -> Result<Self, String> {
        let entries = match serde_json::from_value::<Body>(body.clone()) {
            Ok(Body::Wrapped { feedback }) | Ok(Body::Bare(feedback)) => feedback,
            Err(_) => return Err(
                "feedback must be {\"feedback\": [{\"request_id\": \"...\", \"label\": ...}, ...]}"
                    .to_owned(),
            ),
        };
        if entries.is_empty() {
            return Err("feedback: the list is empty".to_owned());
        }
        if entries.len() > MAX_FEEDBACK_ENTRIES {
            return Err(format!(
                "feedback: {} entries; at most {MAX_FEEDBACK_ENTRIES} per call",
                entries.len()
            ));
        }
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                let entry: Entry =
                    serde_json::from_value(value).map_err(|e| format!("feedback[{i}]: {e}"))?;
                let id = match (&entry.request_id, &entry.idempotency_key) {
                    (Some(id), None) => id.clone(),
                    (None, Some(key)) => key.clone(),
                    _ => {
                        return Err(format!(
                            "feedback[{i}]: give exactly one of request_id and idempotency_key"
                        ))
                    }
                };
                if let Truth::Many(values) = &entry.truth {
                    if values.is_empty() {
                        return Err(format!("feedback[{i}]: the list of labels is empty"));
                    }
                }
                Ok((id, entry))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Feedback { entries })
    }

    /// Pairs every entry with its pending prediction (found by `lookup`),
    /// grouped by version. A prediction `client` did not make is reported
    /// as unknown, like one never made: a client can neither label nor
    /// learn of others' predictions.
    pub(crate) fn match_pending(
        self,
        model: &str,
        client: &str,
        lookup: impl Fn(&str) -> Lookup,
    ) -> Matched {
        let mut outcome = FeedbackOutcome {
            received: self.entries.len(),
            ..FeedbackOutcome::default()
        };
        let mut batches: Vec<Batch> = Vec::new();
        let mut seen: Vec<Arc<Pending>> = Vec::new();
        for (id, entry) in self.entries {
            let pending = match lookup(&entry.store_key(model)) {
                Lookup::Pending(pending) if pending.client.as_deref() == Some(client) => pending,
                Lookup::Labeled(owner) if owner.as_deref() == Some(client) => {
                    outcome.already_labeled.push(id);
                    continue;
                }
                Lookup::Pending(_) | Lookup::Labeled(_) | Lookup::Unknown => {
                    outcome.unknown.push(id);
                    continue;
                }
            };
            if seen.iter().any(|p| Arc::ptr_eq(p, &pending)) {
                outcome.reject(id, "this request was already labeled in this call");
                continue;
            }
            let truths = match entry.truth {
                Truth::One(truth) => vec![truth],
                Truth::Many(truths) => truths,
            };
            if truths.len() != pending.outcomes.len() {
                outcome.reject(
                    id,
                    &format!(
                        "the request had {} rows but {} labels were given",
                        pending.outcomes.len(),
                        truths.len()
                    ),
                );
                continue;
            }
            seen.push(pending.clone());
            let pairs = pending.outcomes.iter().cloned().zip(truths);
            match batches
                .iter_mut()
                .find(|b| Arc::ptr_eq(&b.watch, &pending.watch))
            {
                Some(batch) => {
                    batch.pairs.extend(pairs);
                    batch.keys.extend(pending.keys.iter().cloned());
                    batch.ids.push(id);
                }
                None => batches.push(Batch {
                    watch: pending.watch.clone(),
                    pairs: pairs.collect(),
                    keys: pending.keys.clone(),
                    ids: vec![id],
                }),
            }
        }
        Matched { outcome, batches }
    }
}

impl Feedback {
    /// The keys of the pending-prediction store its entries name.
    pub(crate) fn store_keys(&self, model: &str) -> Vec<String> {
        self.entries
            .iter()
            .map(|(_, entry)| entry.store_key(model))
            .collect()
    }
}

impl Entry {
    /// The key of the pending-prediction store it names.
    fn store_key(&self, model: &str) -> String {
        match &self.request_id {
            Some(request_id) => request_key(model, request_id),
            None => idempotency_key(model, self.idempotency_key.as_deref().unwrap_or("")),
        }
    }
}

/// What the store of pending predictions knows of a key.
pub(crate) enum Lookup {
    /// A prediction waiting for its feedback.
    Pending(Arc<Pending>),
    /// A prediction that already received its feedback, and who made it.
    Labeled(Option<Arc<str>>),
    /// Nothing: never seen, expired or forgotten.
    Unknown,
}

/// The labeled predictions of one version in a feedback call.
pub(crate) struct Batch {
    pub(crate) watch: Arc<Watch>,
    pub(crate) pairs: Vec<(Outcome, Outcome)>,
    /// Store keys of the labeled predictions, removed once applied.
    pub(crate) keys: Vec<Arc<str>>,
    /// The ids the entries gave.
    pub(crate) ids: Vec<String>,
}

/// Entries matched to predictions, and the outcome so far.
pub(crate) struct Matched {
    pub(crate) outcome: FeedbackOutcome,
    pub(crate) batches: Vec<Batch>,
}

/// An entry that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// The request id or idempotency key the entry gave.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// What a feedback call achieved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeedbackOutcome {
    /// Entries in the call.
    pub received: usize,
    /// Entries applied.
    pub accepted: usize,
    /// Rows labeled by them.
    pub labeled_rows: usize,
    /// Ids that match no prediction (never seen, expired or forgotten).
    pub unknown: Vec<String>,
    /// Ids whose prediction already received feedback in an earlier call;
    /// the first label stands.
    pub already_labeled: Vec<String>,
    /// Entries that matched but could not be applied.
    pub rejected: Vec<Rejected>,
    /// Online quality of each version that received labels.
    pub quality: BTreeMap<String, QualityReport>,
}

impl FeedbackOutcome {
    fn reject(&mut self, id: String, reason: &str) {
        self.rejected.push(Rejected {
            id,
            reason: reason.to_owned(),
        });
    }

    /// Records a batch as applied.
    pub(crate) fn applied(&mut self, batch: &Batch) {
        self.accepted += batch.ids.len();
        self.labeled_rows += batch.pairs.len();
    }

    /// Records every entry of a batch as rejected for `reason`.
    pub(crate) fn reject_batch(&mut self, batch: Batch, reason: &str) {
        for id in batch.ids {
            self.reject(id, &format!("version {}: {reason}", batch.watch.version()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_parse_in_both_shapes_with_label_aliases() {
        let wrapped = Feedback::from_json(&json!({"feedback": [
            {"request_id": "a", "label": 1},
            {"idempotency_key": "k", "values": [2.5, 3.0]},
        ]}))
        .expect("valid");
        assert_eq!(wrapped.entries.len(), 2);
        assert_eq!(wrapped.entries[0].1.truth, Truth::One(Outcome::Number(1.0)));
        assert_eq!(
            wrapped.entries[1].1.truth,
            Truth::Many(vec![Outcome::Number(2.5), Outcome::Number(3.0)])
        );
        let bare =
            Feedback::from_json(&json!([{"request_id": "a", "truth": "cat"}])).expect("valid");
        assert_eq!(
            bare.entries[0].1.truth,
            Truth::One(Outcome::Label("cat".into()))
        );
    }

    #[test]
    fn bad_entries_say_which_and_why() {
        let err = |v| Feedback::from_json(&v).unwrap_err();
        assert!(err(json!({"feedback": []})).contains("empty"));
        assert!(err(json!({"items": []})).contains("must be"));
        assert!(err(json!([{"label": 1}])).contains("feedback[0]: give exactly one"));
        assert!(
            err(json!([{"request_id": "a", "idempotency_key": "b", "label": 1}]))
                .contains("exactly one")
        );
        assert!(err(json!([{"request_id": "a"}])).contains("feedback[0]"));
        assert!(err(json!([{"request_id": "a", "label": 1, "colour": 2}])).contains("colour"));
    }
}
