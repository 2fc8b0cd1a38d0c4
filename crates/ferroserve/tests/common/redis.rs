//! A real `redis-server` for the cache tests, started on a free port with
//! no persistence, so that a test may kill it and start it again.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS_INSTALL_HINT: &str = "install it with `apt-get install redis-server` \
     (Debian/Ubuntu), `brew install redis` (macOS) or from https://redis.io/download";

/// A running `redis-server`, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    /// Port it listens on (kept across restarts).
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A new link to this server, as one replica holds (calls time out
    /// after 200 ms: generous, tests share the cores with the server).
    pub fn link(&self) -> std::sync::Arc<ferroserve_serving::redis_link::RedisLink> {
        use ferroserve_serving::redis_link::{RedisLink, RedisSettings};
        RedisLink::start(RedisSettings {
            timeout: Duration::from_millis(200),
            ..RedisSettings::new(self.url())
        })
        .expect("valid redis settings")
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing is saved).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    super::dependency::missing("redis-server", REDIS_INSTALL_HINT)
                }
                _ => panic!("cannot start redis-server: {e}"),
            });
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} never answered PING", self.port);
    }

    /// Times the server has run `command` (lower case, e.g. `get`), from
    /// `INFO commandstats`: how a test sees what a client has done.
    pub fn command_calls(&self, command: &str) -> u64 {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis-server");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        stream
            .write_all(b"INFO commandstats\r\n")
            .expect("send INFO");
        // A bulk string: `$LEN\r\n`, then LEN bytes.
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).expect("INFO reply");
        let len: usize = header
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected INFO reply {header:?}"));
        let mut body = vec![0; len];
        reader.read_exact(&mut body).expect("INFO body");
        let prefix = format!("cmdstat_{command}:calls=");
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|line| line.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
