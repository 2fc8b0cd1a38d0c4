//! A cap on the size of one record (a JSON line, a CSV record), so that a
//! file with no line breaks cannot make a reader buffer all of it.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest record (a JSON line, a CSV record with its line breaks) read
/// from a sample file: 16 MiB.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes read since the start of the current record, shared between a
/// [`RecordCapped`] reader and the parser that owns it.
#[derive(Debug, Clone, Default)]
pub(super) struct RecordBudget(Arc<AtomicU64>);

impl RecordBudget {
    /// A new record starts: its bytes are counted from zero.
    pub(super) fn start_record(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Whether the current record has used the whole budget.
    pub(super) fn spent(&self, limit: u64) -> bool {
        self.0.load(Ordering::Relaxed) >= limit
    }
}

/// Reads from `inner`, failing once more than `limit` bytes were read since
/// the last [`RecordBudget::start_record`]. A parser buffers ahead, so the
/// cap is exact to a buffer's length (a few KiB) either way.
pub(super) struct RecordCapped<R> {
    inner: R,
    budget: RecordBudget,
    limit: u64,
}

impl<R> RecordCapped<R> {
    /// Caps `inner` at `limit` bytes per record, counted in `budget`.
    pub(super) fn new(inner: R, budget: RecordBudget, limit: u64) -> Self {
        RecordCapped {
            inner,
            budget,
            limit,
        }
    }
}

impl<R: Read> Read for RecordCapped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let used = self.budget.0.load(Ordering::Relaxed);
        let left = self.limit.saturating_sub(used);
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record is longer than {} bytes", self.limit),
            ));
        }
        let room = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.budget.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_past_the_limit_fail_and_a_new_record_starts_afresh() {
        let budget = RecordBudget::default();
        let mut capped = RecordCapped::new(&b"abcdefgh"[..], budget.clone(), 4);
        let mut buf = [0u8; 16];
        assert_eq!(capped.read(&mut buf).expect("first bytes"), 4);
        assert!(budget.spent(4));
        let e = capped.read(&mut buf).expect_err("past the limit");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        budget.start_record();
        assert_eq!(capped.read(&mut buf).expect("next record"), 4);
    }
}
