//! Predictions waiting for their feedback, owned by the monitor thread:
//! found by key, forgotten oldest first past a number of entries or of
//! bytes, or once older than their time to live. Each key is one shared
//! string (the map, the insertion order and the prediction share it).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::feedback::{Lookup, Pending};
use super::quality::Outcome;

/// Bytes an entry costs besides its key and outcomes (map slot, order
/// record, bookkeeping), counted so that many tiny entries add up too.
const ENTRY_OVERHEAD: usize = 96;

/// The store. A labeled prediction stays as a marker (its outcomes
/// dropped) until it leaves by age or count, so that a second label for it
/// is reported as such.
pub(crate) struct PendingStore {
    entries: HashMap<Arc<str>, Stored>,
    /// Keys in insertion order with their insertion number; a record whose
    /// number no longer matches its entry's was removed or replaced since.
    order: VecDeque<(Arc<str>, u64)>,
    inserted: u64,
    max: usize,
    max_bytes: usize,
    /// Weight of the live entries.
    bytes: usize,
    ttl: Duration,
}

struct Stored {
    /// `None` once labeled.
    pending: Option<Arc<Pending>>,
    /// The client that made the prediction, kept after labeling.
    owner: Option<Arc<str>>,
    at: Instant,
    number: u64,
    /// Bytes counted for it in `PendingStore::bytes`.
    weight: usize,
}

/// Bytes one entry under `key` holding `pending` (if any) is counted as.
fn weight(key: &str, pending: Option<&Pending>) -> usize {
    ENTRY_OVERHEAD + key.len() + pending.map_or(0, |p| outcomes_weight(&p.outcomes))
}

/// Bytes `outcomes` are counted as wherever predictions wait for feedback.
pub(crate) fn outcomes_weight(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .map(|o| {
            std::mem::size_of::<Outcome>()
                + match o {
                    Outcome::Label(label) => label.len(),
                    Outcome::Number(_) => 0,
                }
        })
        .sum()
}

impl PendingStore {
    /// An empty store keeping at most `max` entries and `max_bytes` bytes,
    /// each for at most `ttl`.
    pub(crate) fn new(max: usize, max_bytes: usize, ttl: Duration) -> Self {
        PendingStore {
            entries: HashMap::new(),
            order: VecDeque::new(),
            inserted: 0,
            max: max.max(1),
            max_bytes,
            bytes: 0,
            ttl,
        }
    }

    /// Remembers `pending` under `key`, replacing what was there.
    pub(crate) fn insert(&mut self, key: Arc<str>, pending: Arc<Pending>) {
        let at = Instant::now();
        self.inserted += 1;
        let number = self.inserted;
        let weight = weight(&key, Some(&pending));
        let stored = Stored {
            owner: pending.client.clone(),
            pending: Some(pending),
            at,
            number,
            weight,
        };
        self.bytes += weight;
        if let Some(replaced) = self.entries.insert(key.clone(), stored) {
            self.bytes -= replaced.weight;
        }
        self.order.push_back((key, number));
        while self.entries.len() > self.max || self.bytes > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        // Expired entries leave from the front, a few per insert.
        for _ in 0..4 {
            let expired = self
                .order
                .front()
                .and_then(|(key, _)| self.entries.get(key))
                .is_some_and(|stored| at.duration_since(stored.at) > self.ttl);
            if !expired {
                break;
            }
            self.evict_oldest();
        }
        // Records of removed or replaced entries must not pile up.
        while self.order.len() > 2 * self.max {
            self.evict_oldest();
        }
    }

    /// Drops the oldest record (and its entry, when still live); false
    /// when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some((key, number)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&key).is_some_and(|s| s.number == number) {
            if let Some(removed) = self.entries.remove(&key) {
                self.bytes -= removed.weight;
            }
        }
        true
    }

    /// What the store knows of `key`.
    pub(crate) fn get(&self, key: &str) -> Lookup {
        match self.entries.get(key) {
            Some(stored) if stored.at.elapsed() <= self.ttl => match &stored.pending {
                Some(pending) => Lookup::Pending(pending.clone()),
                None => Lookup::Labeled(stored.owner.clone()),
            },
            _ => Lookup::Unknown,
        }
    }

    /// Keeps only the marker of a labeled prediction; it leaves like any
    /// other entry, by age or count.
    pub(crate) fn mark_labeled(&mut self, key: &str) {
        let marker = weight(key, None);
        if let Some(stored) = self.entries.get_mut(key) {
            self.bytes = self.bytes - stored.weight + marker;
            stored.weight = marker;
            stored.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::Watch;
    use crate::{MonitorPolicy, WatchSpec};
    use ferroserve_core::ModelSignature;

    fn watch() -> Arc<Watch> {
        let (sender, _queue) = crossbeam_channel::bounded(1);
        let spec = WatchSpec {
            policy: MonitorPolicy::default(),
            profile: None,
            schema: None,
            signature: ModelSignature {
                inputs: Vec::new(),
                outputs: Vec::new(),
            },
        };
        Arc::new(Watch::new("m", "1", spec, sender, Default::default()))
    }

    fn pending(watch: &Arc<Watch>, value: f64) -> Arc<Pending> {
        Arc::new(Pending {
            watch: watch.clone(),
            outcomes: vec![Outcome::Number(value)],
            keys: Vec::new(),
            client: Some(Arc::from("ip:1")),
        })
    }

    fn value(store: &PendingStore, key: &str) -> Option<Vec<Outcome>> {
        match store.get(key) {
            Lookup::Pending(p) => Some(p.outcomes.clone()),
            _ => None,
        }
    }

    #[test]
    fn pending_predictions_are_bounded_oldest_first() {
        let watch = watch();
        let mut store = PendingStore::new(2, usize::MAX, Duration::from_secs(60));
        store.insert("a".into(), pending(&watch, 1.0));
        store.insert("b".into(), pending(&watch, 2.0));
        store.insert("a".into(), pending(&watch, 3.0));
        store.insert("c".into(), pending(&watch, 4.0));
        assert_eq!(value(&store, "b"), None, "the oldest live entry left");
        assert_eq!(
            value(&store, "a"),
            Some(vec![Outcome::Number(3.0)]),
            "replaced, kept"
        );
        assert_eq!(value(&store, "c"), Some(vec![Outcome::Number(4.0)]));
        store.mark_labeled("c");
        assert_eq!(value(&store, "c"), None);
        assert!(matches!(store.get("c"), Lookup::Labeled(Some(owner)) if &*owner == "ip:1"));
        assert!(matches!(store.get("b"), Lookup::Unknown));
        for i in 0..100 {
            store.insert("x".into(), pending(&watch, f64::from(i)));
        }
        assert!(store.order.len() <= 4, "stale records are dropped");
        assert_eq!(value(&store, "x"), Some(vec![Outcome::Number(99.0)]));
        let mut expired = PendingStore::new(10, usize::MAX, Duration::ZERO);
        expired.insert("old".into(), pending(&watch, 1.0));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(value(&expired, "old"), None, "past its time to live");
    }

    #[test]
    fn the_store_is_bounded_by_bytes_whatever_the_keys() {
        let watch = watch();
        let max_bytes = 64 * 1024;
        let mut store = PendingStore::new(1_000_000, max_bytes, Duration::from_secs(60));
        let long = "k".repeat(200);
        for i in 0..10_000 {
            store.insert(format!("{long}{i}").into(), pending(&watch, 1.0));
            assert!(store.bytes <= max_bytes, "{} bytes", store.bytes);
        }
        assert!(store.entries.len() < 10_000 / 10, "{}", store.entries.len());
        let newest = format!("{long}9999");
        assert!(value(&store, &newest).is_some(), "the newest entry is kept");
        let counted: usize = store.entries.values().map(|s| s.weight).sum();
        assert_eq!(counted, store.bytes);
    }
}
