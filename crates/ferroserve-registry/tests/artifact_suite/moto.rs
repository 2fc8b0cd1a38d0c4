//! A temporary S3-compatible server: `moto_server` on a free port, shared
//! by the test binary and stopped when the test process exits.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::dependency;

const INSTALL_HINT: &str = "moto_server (an S3-compatible server) is needed for the S3 \
     artifact store tests: run `scripts/python-env.sh test`, which installs it into .venv";

pub(crate) struct MotoServer {
    port: u16,
    /// Both outlive the test process's statics, which are never dropped:
    /// the watchdog stops the server when the test process exits.
    _server: Child,
    _watchdog: Child,
}

/// `.venv/bin/moto_server` of the repository, else one on the PATH.
fn find_binary() -> Option<PathBuf> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates = vec![repo.join(".venv/bin/moto_server")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("moto_server")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

static SERVER: OnceLock<MotoServer> = OnceLock::new();

/// The shared server, started on first use; the test fails, saying how to
/// install it, when `moto_server` is not installed.
pub(crate) fn server() -> &'static MotoServer {
    SERVER.get_or_init(start)
}

fn start() -> MotoServer {
    let binary = dependency::require(find_binary(), "moto_server", INSTALL_HINT);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let server = Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", binary.display()));
    let watchdog = spawn_watchdog(server.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not accept connections on port {port} within 60 s",
            binary.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Read by the store through `ArtifactStore::from_url`, as in production.
    // Set once, before any store of this process reads them.
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ] {
        std::env::set_var(key, value);
    }
    MotoServer {
        port,
        _server: server,
        _watchdog: watchdog,
    }
}

/// A static server is never dropped, so a small shell loop stops it once
/// this test process has exited.
fn spawn_watchdog(server_pid: u32) -> Child {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill {server_pid} 2>/dev/null",
        pid = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the moto_server watchdog")
}

impl MotoServer {
    /// Creates a bucket (moto accepts unsigned requests).
    pub(crate) async fn create_bucket(&self, bucket: &str) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to moto_server");
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send create bucket");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read create bucket response");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "creating bucket {bucket} failed:\n{response}"
        );
    }
}
