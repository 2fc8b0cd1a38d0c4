//! A webhook receiver for the end-to-end tests: a test HTTP server on a
//! free loopback port that records the JSON body of every POST.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A webhook receiver: records the JSON body of every POST and answers 200.
pub struct Webhook {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let url = format!(
            "http://{}/hooks/retrain",
            listener.local_addr().expect("addr")
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut length = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    if let Ok(value) = serde_json::from_slice(&body) {
                        seen.lock().expect("lock").push(value);
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Webhook { url, bodies }
    }

    pub fn received(&self) -> Vec<Value> {
        self.bodies.lock().expect("lock").clone()
    }

    /// Waits (at most 20 s) until `count` alerts arrived.
    pub fn wait_for(&self, count: usize) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("expected {count} webhook calls, got {:?}", self.received());
    }
}
