//! Pure batch forming: which waiting requests make up the next batch, and
//! when it is due. No threads and no clock; the caller passes `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A waiting request and what the batching decisions need to know of it.
#[derive(Debug)]
struct Pending<T> {
    item: T,
    rows: usize,
    enqueued_at: Instant,
    deadline: Option<Instant>,
}

/// The head of the queue that fits in one batch.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Requests in the head that fit within `max_batch_size`.
    count: usize,
    /// Their rows.
    rows: usize,
    /// The head cannot grow: it holds `max_batch_size` rows, or the next
    /// request does not fit, or it is one request larger than a batch.
    full: bool,
    /// The longest prefix of the head (in requests) whose rows are a
    /// preferred batch size.
    preferred_cut: Option<usize>,
}

/// Requests waiting for a batch, in arrival order, and the rules that turn
/// them into batches.
///
/// A batch is due when the head of the queue is full (it holds
/// `max_batch_size` rows or the next request does not fit), when its rows
/// reach a preferred size, or when the oldest request has waited the queue
/// delay. A request with more rows than `max_batch_size` forms a batch on
/// its own. Requests are never reordered: one that does not fit waits for
/// the next batch, and no later request overtakes it.
#[derive(Debug)]
pub(crate) struct BatchState<T> {
    max_batch_size: usize,
    delay: Duration,
    /// Sorted, without duplicates.
    preferred: Vec<usize>,
    pending: VecDeque<Pending<T>>,
    rows: usize,
}

impl<T> BatchState<T> {
    /// An empty state. `max_batch_size` is at least 1 (a 0 is treated as 1).
    pub(crate) fn new(max_batch_size: usize, delay: Duration, preferred: &[usize]) -> Self {
        let mut preferred = preferred.to_vec();
        preferred.sort_unstable();
        preferred.dedup();
        BatchState {
            max_batch_size: max_batch_size.max(1),
            delay,
            preferred,
            pending: VecDeque::new(),
            rows: 0,
        }
    }

    /// Largest batch, in rows.
    pub(crate) fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Rows waiting.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Adds a request at the back of the queue.
    pub(crate) fn append(
        &mut self,
        item: T,
        rows: usize,
        enqueued_at: Instant,
        deadline: Option<Instant>,
    ) {
        self.rows += rows;
        self.pending.push_back(Pending {
            item,
            rows,
            enqueued_at,
            deadline,
        });
    }

    /// Whether a batch is due at `now`.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        let Some(plan) = self.plan() else {
            return false;
        };
        let largest_preferred = self
            .preferred
            .last()
            .copied()
            .unwrap_or(self.max_batch_size);
        plan.full
            || plan.preferred_cut == Some(plan.count)
            || plan.rows >= largest_preferred
            || self.wait_until().is_some_and(|until| now >= until)
    }

    /// When the oldest request will have waited the queue delay, so a batch
    /// is due even if it is not full; `None` when nothing is waiting.
    pub(crate) fn wait_until(&self) -> Option<Instant> {
        let front = self.pending.front()?;
        // An instant beyond the clock's range can only come from an absurd
        // delay; treating it as already reached never holds requests forever.
        Some(
            front
                .enqueued_at
                .checked_add(self.delay)
                .unwrap_or(front.enqueued_at),
        )
    }

    /// The next batch, if one is due at `now`.
    pub(crate) fn next_batch(&mut self, now: Instant) -> Option<Vec<T>> {
        if self.ready(now) {
            self.take_batch()
        } else {
            None
        }
    }

    /// The next batch whether or not it is due (used when shutting down, so
    /// nothing waits for a delay that no longer matters). When preferred
    /// sizes are set, the batch is cut at the largest one it contains.
    pub(crate) fn take_batch(&mut self) -> Option<Vec<T>> {
        let plan = self.plan()?;
        let count = plan.preferred_cut.unwrap_or(plan.count);
        let mut batch = Vec::with_capacity(count);
        for pending in self.pending.drain(..count) {
            self.rows -= pending.rows;
            batch.push(pending.item);
        }
        Some(batch)
    }

    /// Removes and returns, in order, the requests whose deadline is at or
    /// before `now`.
    pub(crate) fn drain_expired(&mut self, now: Instant) -> Vec<T> {
        self.drain_pending(|p| p.deadline.is_some_and(|deadline| deadline <= now))
    }

    /// Removes and returns, in order, the requests for which `gone` holds
    /// (for example, whose caller stopped waiting).
    pub(crate) fn drain_where(&mut self, mut gone: impl FnMut(&T) -> bool) -> Vec<T> {
        self.drain_pending(|p| gone(&p.item))
    }

    fn drain_pending(&mut self, mut remove: impl FnMut(&Pending<T>) -> bool) -> Vec<T> {
        // Usually nothing goes: check before touching the queue.
        if !self.pending.iter().any(&mut remove) {
            return Vec::new();
        }
        let mut removed = Vec::new();
        // Rotating through the queue keeps the order and its allocation.
        for _ in 0..self.pending.len() {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            if remove(&pending) {
                self.rows -= pending.rows;
                removed.push(pending.item);
            } else {
                self.pending.push_back(pending);
            }
        }
        removed
    }

    fn plan(&self) -> Option<Plan> {
        let front = self.pending.front()?;
        if front.rows >= self.max_batch_size {
            return Some(Plan {
                count: 1,
                rows: front.rows,
                full: true,
                preferred_cut: None,
            });
        }
        let (mut count, mut rows, mut preferred_cut) = (0, 0, None);
        for pending in &self.pending {
            if rows + pending.rows > self.max_batch_size {
                break;
            }
            rows += pending.rows;
            count += 1;
            if self.preferred.binary_search(&rows).is_ok() {
                preferred_cut = Some(count);
            }
        }
        Some(Plan {
            count,
            rows,
            full: rows == self.max_batch_size || count < self.pending.len(),
            preferred_cut,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn state(max: usize, delay_us: u64, preferred: &[usize]) -> BatchState<&'static str> {
        BatchState::new(max, Duration::from_micros(delay_us), preferred)
    }

    #[test]
    fn empty_state_has_nothing_to_do() {
        let mut s = state(4, 0, &[]);
        let now = Instant::now();
        assert!(!s.ready(now));
        assert_eq!(s.wait_until(), None);
        assert_eq!(s.next_batch(now), None);
        assert_eq!(s.take_batch(), None);
        assert!(s.is_empty());
    }

    #[test]
    fn zero_delay_takes_what_is_waiting() {
        let mut s = state(8, 0, &[]);
        let t0 = Instant::now();
        s.append("a", 1, t0, None);
        s.append("b", 2, t0, None);
        assert!(s.ready(t0));
        assert_eq!(s.next_batch(t0), Some(vec!["a", "b"]));
        assert_eq!(s.rows(), 0);
        assert_eq!(s.next_batch(t0), None);
    }

    #[test]
    fn partial_batch_waits_then_flushes_at_the_delay() {
        let mut s = state(8, 100, &[]);
        let t0 = Instant::now();
        s.append("a", 1, t0, None);
        s.append("b", 1, t0 + 30 * US, None);
        assert_eq!(s.wait_until(), Some(t0 + 100 * US));
        assert!(!s.ready(t0 + 99 * US));
        assert_eq!(s.next_batch(t0 + 99 * US), None);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.next_batch(t0 + 100 * US), Some(vec!["a", "b"]));
    }

    #[test]
    fn delay_counts_from_the_oldest_request() {
        let mut s = state(8, 100, &[]);
        let t0 = Instant::now();
        s.append("a", 1, t0, None);
        assert_eq!(s.next_batch(t0 + 100 * US), Some(vec!["a"]));
        s.append("b", 1, t0 + 150 * US, None);
        assert!(!s.ready(t0 + 200 * US));
        assert_eq!(s.wait_until(), Some(t0 + 250 * US));
    }

    #[test]
    fn full_batch_flushes_immediately() {
        let mut s = state(4, 1_000_000, &[]);
        let t0 = Instant::now();
        s.append("a", 3, t0, None);
        assert!(!s.ready(t0));
        s.append("b", 1, t0, None);
        assert!(s.ready(t0));
        assert_eq!(s.next_batch(t0), Some(vec!["a", "b"]));
    }

    #[test]
    fn oversize_request_runs_alone() {
        let mut s = state(4, 1_000_000, &[]);
        let t0 = Instant::now();
        s.append("big", 10, t0, None);
        s.append("small", 1, t0, None);
        assert_eq!(s.next_batch(t0), Some(vec!["big"]));
        assert_eq!(s.rows(), 1);
        // The small one is alone again and waits for its delay.
        assert_eq!(s.next_batch(t0), None);

        let mut s = state(4, 1_000_000, &[]);
        s.append("a", 2, t0, None);
        s.append("big", 9, t0, None);
        s.append("c", 1, t0, None);
        assert_eq!(s.next_batch(t0), Some(vec!["a"]));
        assert_eq!(s.next_batch(t0), Some(vec!["big"]));
        assert_eq!(s.next_batch(t0), None);
        assert_eq!(s.take_batch(), Some(vec!["c"]));
    }

    #[test]
    fn overflowing_request_is_carried_to_the_next_batch_in_order() {
        let mut s = state(4, 1_000_000, &[]);
        let t0 = Instant::now();
        s.append("a", 3, t0, None);
        s.append("b", 2, t0, None);
        s.append("c", 1, t0, None);
        // "c" would fit beside "a", but it must not overtake "b".
        assert_eq!(s.next_batch(t0), Some(vec!["a"]));
        assert_eq!(s.rows(), 3);
        assert!(!s.ready(t0));
        assert_eq!(s.take_batch(), Some(vec!["b", "c"]));
        assert!(s.is_empty());
    }

    #[test]
    fn reaching_a_preferred_size_flushes_before_the_delay() {
        let mut s = state(16, 1_000_000, &[8, 4]);
        let t0 = Instant::now();
        for item in ["a", "b", "c"] {
            s.append(item, 1, t0, None);
        }
        assert!(!s.ready(t0));
        s.append("d", 1, t0, None);
        assert!(s.ready(t0));
        assert_eq!(s.next_batch(t0), Some(vec!["a", "b", "c", "d"]));
    }

    #[test]
    fn batches_are_cut_at_the_largest_preferred_size_they_contain() {
        let mut s = state(16, 1_000_000, &[4]);
        let t0 = Instant::now();
        for item in ["a", "b", "c"] {
            s.append(item, 2, t0, None);
        }
        // 6 rows is past the largest preferred size: due now, cut at 4 rows.
        assert!(s.ready(t0));
        assert_eq!(s.next_batch(t0), Some(vec!["a", "b"]));
        assert_eq!(s.next_batch(t0), None);

        // With no preferred size on a request boundary, the whole head goes.
        let mut s = state(16, 0, &[4]);
        s.append("x", 3, t0, None);
        s.append("y", 2, t0, None);
        assert_eq!(s.next_batch(t0), Some(vec!["x", "y"]));
    }

    #[test]
    fn preferred_sizes_split_a_backlog_with_zero_delay() {
        let mut s = state(8, 0, &[2]);
        let t0 = Instant::now();
        for item in ["a", "b", "c"] {
            s.append(item, 1, t0, None);
        }
        assert_eq!(s.next_batch(t0), Some(vec!["a", "b"]));
        assert_eq!(s.next_batch(t0), Some(vec!["c"]));
    }

    #[test]
    fn expired_requests_are_removed_and_returned_in_order() {
        let mut s = state(8, 1_000_000, &[]);
        let t0 = Instant::now();
        s.append("late", 2, t0, Some(t0 + 10 * US));
        s.append("keep", 1, t0, Some(t0 + 100 * US));
        s.append("also-late", 3, t0, Some(t0 + 10 * US));
        s.append("no-deadline", 1, t0, None);
        assert!(s.drain_expired(t0).is_empty());
        assert_eq!(s.drain_expired(t0 + 10 * US), vec!["late", "also-late"]);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.take_batch(), Some(vec!["keep", "no-deadline"]));
    }

    #[test]
    fn requests_can_be_removed_by_predicate() {
        let mut s = state(8, 0, &[]);
        let t0 = Instant::now();
        s.append("a", 1, t0, None);
        s.append("gone", 4, t0, None);
        s.append("b", 1, t0, None);
        assert_eq!(s.drain_where(|item| *item == "gone"), vec!["gone"]);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.next_batch(t0), Some(vec!["a", "b"]));
    }

    #[test]
    fn take_batch_ignores_the_delay() {
        let mut s = state(8, 1_000_000, &[]);
        let t0 = Instant::now();
        s.append("a", 1, t0, None);
        assert_eq!(s.next_batch(t0), None);
        assert_eq!(s.take_batch(), Some(vec!["a"]));
    }

    #[test]
    fn one_request_per_batch_when_the_limit_is_one() {
        let mut s = state(1, 1_000_000, &[]);
        let t0 = Instant::now();
        s.append("a", 1, t0, None);
        s.append("b", 1, t0, None);
        assert_eq!(s.next_batch(t0), Some(vec!["a"]));
        assert_eq!(s.next_batch(t0), Some(vec!["b"]));
        assert_eq!(s.max_batch_size(), 1);
    }
}
