//! Online load that keeps every answer where the test can look while it
//! runs: status, `model_version`, the `x-ferroserve-variant` header and the
//! body of each iris request, so a test can wait for traffic to reach a
//! version and then tell which failures a routing change caused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Response header naming the variant (A/B variant, `stable` or `canary`)
/// that answered a routed request.
pub const VARIANT_HEADER: &str = "x-ferroserve-variant";

/// One answered (or failed) request.
#[derive(Clone, Debug)]
pub struct Reply {
    /// When it was sent.
    pub sent: Instant,
    /// When its answer (or the transport error) arrived.
    pub answered: Instant,
    /// HTTP status; 0 when no answer came (the error is in `body`).
    pub status: u16,
    /// `model_version` of the answer (empty on errors).
    pub version: String,
    /// The `x-ferroserve-variant` header, when the answer had one.
    pub variant: Option<String>,
    /// The answer (a string when it was not JSON).
    pub body: Value,
}

impl Reply {
    /// The `error` of the answer, empty when it has none.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// `status body`, for failure messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.status, self.body)
    }
}

/// Sends one request and records the answer; a transport error is a reply
/// with status 0.
pub fn record(request: reqwest::blocking::RequestBuilder) -> Reply {
    let sent = Instant::now();
    match request.send() {
        Ok(response) => {
            let status = response.status().as_u16();
            let variant = response
                .headers()
                .get(VARIANT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Reply {
                sent,
                answered: Instant::now(),
                status,
                version: body["model_version"].as_str().unwrap_or("").to_owned(),
                variant,
                body,
            }
        }
        Err(e) => Reply {
            sent,
            answered: Instant::now(),
            status: 0,
            version: String::new(),
            variant: None,
            body: Value::String(e.to_string()),
        },
    }
}

/// Threads sending the same iris request (naming no version) to a server
/// until stopped, every reply kept in order of arrival.
pub struct RecordingLoad {
    stop: Arc<AtomicBool>,
    replies: Arc<Mutex<Vec<Reply>>>,
    threads: Vec<JoinHandle<()>>,
    /// Number of sending threads (each has at most one request in flight).
    pub thread_count: usize,
}

impl RecordingLoad {
    /// Starts `threads` threads sending `super::load::iris_request()` to
    /// `base`'s `/v2/models/iris/infer` as the test servers' admin.
    pub fn start(base: &str, threads: usize) -> RecordingLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..threads)
            .map(|_| {
                let url = format!("{base}/v2/models/iris/infer");
                let (stop, replies) = (stop.clone(), replies.clone());
                std::thread::spawn(move || {
                    let client = super::admin_client();
                    let body = super::load::iris_request();
                    while !stop.load(Ordering::Relaxed) {
                        let reply = record(client.post(&url).json(&body));
                        replies.lock().expect("replies lock").push(reply);
                    }
                })
            })
            .collect();
        RecordingLoad {
            stop,
            replies,
            threads: handles,
            thread_count: threads,
        }
    }

    /// Replies so far.
    pub fn len(&self) -> usize {
        self.replies.lock().expect("replies lock").len()
    }

    /// Replies so far for which `pred` holds.
    pub fn count(&self, pred: impl Fn(&Reply) -> bool) -> usize {
        self.replies
            .lock()
            .expect("replies lock")
            .iter()
            .filter(|r| pred(r))
            .count()
    }

    /// A copy of the replies so far.
    pub fn snapshot(&self) -> Vec<Reply> {
        self.replies.lock().expect("replies lock").clone()
    }

    /// Waits (at most `within`) until `more` further replies arrived.
    pub fn wait_for_replies(&self, more: usize, within: Duration) {
        let target = self.len() + more;
        let give_up = Instant::now() + within;
        while self.len() < target {
            assert!(
                Instant::now() < give_up,
                "the load got {} of {more} replies in {within:?}",
                more + self.len() - target
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (at most `within`) until a reply for which `pred` holds
    /// arrived; `what` names it in the failure.
    pub fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&Reply) -> bool) {
        let give_up = Instant::now() + within;
        while self.count(&pred) == 0 {
            assert!(
                Instant::now() < give_up,
                "no reply with {what} in {within:?} ({} replies, last: {:?})",
                self.len(),
                self.snapshot().last().map(Reply::describe)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the threads and returns every reply, in order of arrival.
    pub fn stop(self) -> Vec<Reply> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("load thread");
        }
        let replies = self.replies.lock().expect("replies lock");
        replies.clone()
    }

    /// Stops the load and asserts that at least `min` requests were sent
    /// and every one was answered 200; returns the replies.
    pub fn stop_expecting_no_failure(self, min: usize) -> Vec<Reply> {
        let replies = self.stop();
        assert_no_failure_but(&replies, |_| false);
        assert!(replies.len() >= min, "only {} requests sent", replies.len());
        replies
    }
}

/// Asserts that every reply is a 200 except those `explained` accepts
/// (failures an injected fault causes); a failure message shows a few.
pub fn assert_no_failure_but(replies: &[Reply], explained: impl Fn(&Reply) -> bool) {
    let failed: Vec<String> = replies
        .iter()
        .filter(|r| r.status != 200 && !explained(r))
        .map(Reply::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed for no injected fault, e.g. {:?}",
        failed.len(),
        replies.len(),
        &failed[..failed.len().min(5)]
    );
}
