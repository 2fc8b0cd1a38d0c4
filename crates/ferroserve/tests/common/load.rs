//! Online load for end-to-end tests: threads sending iris requests in a
//! loop until stopped, recording every answer, so a test can assert that
//! no request failed while it changed what serves.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A blocking client with a generous timeout, signed in as the test
/// servers' admin.
pub fn client() -> reqwest::blocking::Client {
    super::admin_client()
}

/// Sends a request and returns the status and the JSON answer (a string
/// when the body is not JSON).
pub fn send(request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let response = request.send().expect("request is sent");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One iris row as a KServe v2 request.
pub fn iris_request() -> Value {
    json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
        "data": [5.1, 3.5, 1.4, 0.2]}]})
}

/// One answered request of the load.
pub struct Sample {
    /// When it was sent.
    pub sent: Instant,
    /// When its answer arrived.
    pub answered: Instant,
    /// HTTP status.
    pub status: u16,
    /// `model_version` of the answer (empty on errors).
    pub version: String,
    /// The answer.
    pub body: Value,
}

/// Threads sending iris requests to a server until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Requests answered so far, by every thread.
    answered: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<Sample>>>,
}

impl Load {
    /// Starts `threads` threads sending to `base`'s iris.
    pub fn start(base: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let url = format!("{base}/v2/models/iris/infer");
                let stop = stop.clone();
                let answered = answered.clone();
                std::thread::spawn(move || {
                    let c = client();
                    let body = iris_request();
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let (status, answer) = send(c.post(&url).json(&body));
                        samples.push(Sample {
                            sent,
                            answered: Instant::now(),
                            status,
                            version: answer["model_version"].as_str().unwrap_or("").to_owned(),
                            body: answer,
                        });
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    samples
                })
            })
            .collect();
        Load {
            stop,
            answered,
            threads,
        }
    }

    /// Waits until `more` further requests have been answered, however long
    /// the machine takes (up to 120 s), so a test paces itself by requests
    /// rather than by time.
    pub fn wait_for_answers(&self, more: usize) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        let give_up = Instant::now() + Duration::from_secs(120);
        while self.answered.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < give_up,
                "the load got {} of {more} answers in 120 s",
                more + self.answered.load(Ordering::SeqCst) - target
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the threads and returns every sample, in no particular order.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().expect("load thread"))
            .collect()
    }

    /// Stops the load and asserts that at least `min` requests were sent
    /// and every one was answered 200; returns the samples.
    pub fn stop_expecting_no_failure(self, min: usize) -> Vec<Sample> {
        let samples = self.stop();
        let failed: Vec<String> = samples
            .iter()
            .filter(|s| s.status != 200)
            .map(|s| format!("{} {}", s.status, s.body))
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed, e.g. {:?}",
            failed.len(),
            samples.len(),
            &failed[..failed.len().min(3)]
        );
        assert!(samples.len() >= min, "only {} requests sent", samples.len());
        samples
    }
}
