//! HTTPS end to end with the real binary and certificates made at test
//! time: inference over TLS, plain HTTP refused on the TLS port, the
//! certificate reloaded on SIGHUP and when its files change, client
//! certificates required with `--tls-client-ca`, bad TLS settings refused
//! at start, and `tritonclient.http` with `ssl=True`.

mod common;
#[allow(unreachable_pub)]
#[path = "../../ferroserve-server/tests/common/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Server, ADMIN_TOKEN};
use pki::{Issued, TestCa};
use serde_json::{json, Value};

/// A server on HTTPS with its certificate files and data dir.
struct TlsServer {
    server: Server,
    files: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl TlsServer {
    /// Starts the server with `issued` as its certificate, plus `args`.
    fn start(issued: &Issued, args: &[&str]) -> TlsServer {
        let files = tempfile::tempdir().expect("tempdir");
        write_atomically(&files.path().join("cert.pem"), &issued.cert_pem, None);
        write_atomically(&files.path().join("key.pem"), &issued.key_pem, None);
        let cert = files.path().join("cert.pem");
        let key = files.path().join("key.pem");
        let mut argv = vec![
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ];
        argv.extend_from_slice(args);
        let data = tempfile::tempdir().expect("tempdir");
        let server = Server::start_in(data.path(), &argv);
        assert!(
            server.base.starts_with("https://"),
            "the server announces {}",
            server.base
        );
        TlsServer {
            server,
            files,
            _data: data,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.files.path().join(name)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// Waits (at most 60 s) until `/readyz` answers 200 to `client`.
    fn wait_ready(&self, client: &reqwest::blocking::Client) {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok(r) = client.get(self.url("/readyz")).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server at {} never became ready", self.server.base);
    }

    /// The certificate a new connection is served (DER).
    fn served_certificate(&self, ca: &TestCa) -> Vec<u8> {
        let answer = https_client(ca, None)
            .get(self.url("/livez"))
            .send()
            .expect("HTTPS request");
        answer
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .expect("the server's certificate")
            .to_vec()
    }

    /// Waits (at most 30 s) until new connections are served `issued`.
    fn wait_for_certificate(&self, ca: &TestCa, issued: &Issued) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if self.served_certificate(ca) == issued.der {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the new certificate was never served");
    }
}

/// A client that trusts only `ca`, sends the admin key, opens a new
/// connection for every request and presents `identity` when given.
fn https_client(ca: &TestCa, identity: Option<&Issued>) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {ADMIN_TOKEN}").parse().expect("header"),
    );
    let mut builder = reqwest::blocking::Client::builder()
        .default_headers(headers)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60));
    if let Some(identity) = identity {
        builder = builder.identity(
            reqwest::Identity::from_pem(identity.identity_pem().as_bytes()).expect("identity"),
        );
    }
    builder.build().expect("client")
}

/// Writes `text` to `path` through a rename (a reader never sees half a
/// file), with modification time `modified` when given.
fn write_atomically(path: &Path, text: &str, modified: Option<std::time::SystemTime>) {
    let staging = path.with_extension("new");
    std::fs::write(&staging, text).expect("write");
    if let Some(modified) = modified {
        std::fs::File::options()
            .write(true)
            .open(&staging)
            .and_then(|f| f.set_modified(modified))
            .expect("set the modification time");
    }
    std::fs::rename(&staging, path).expect("rename");
}

/// Iris inference over `client`: the label of one virginica row.
fn infer_label(server: &TlsServer, client: &reqwest::blocking::Client) -> Value {
    let answer = client
        .post(server.url("/v2/models/iris/infer"))
        .json(
            &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                   "data": [6.3, 3.3, 6.0, 2.5]}],
                      "outputs": [{"name": "label"}]}),
        )
        .send()
        .expect("HTTPS inference");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().expect("JSON");
    body["outputs"][0]["data"][0].clone()
}

#[test]
fn inference_works_over_https_and_plain_http_is_refused() {
    let ca = TestCa::new("ferroserve test CA");
    let server = TlsServer::start(&ca.server_cert("ferroserve-a", 1), &[]);
    let client = https_client(&ca, None);
    server.wait_ready(&client);
    assert_eq!(infer_label(&server, &client), json!(2));

    let plain = format!("http://{}/readyz", server.server.host_port());
    let answer = reqwest::blocking::Client::new().get(&plain).send();
    assert!(
        answer.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP was answered on the TLS port: {answer:?}"
    );
    let stranger = TestCa::new("another CA");
    assert!(
        https_client(&stranger, None)
            .get(server.url("/livez"))
            .send()
            .is_err(),
        "a client that does not trust the server's CA connected"
    );
}

#[test]
fn sighup_serves_the_new_certificate_to_new_connections() {
    let ca = TestCa::new("ferroserve test CA");
    let first = ca.server_cert("ferroserve-a", 1);
    let server = TlsServer::start(&first, &[]);
    assert_eq!(server.served_certificate(&ca), first.der);
    // The new files keep the old sizes and times, so only the signal can
    // tell the server they changed.
    let second = (2..200)
        .map(|serial| ca.server_cert("ferroserve-b", serial))
        .find(|c| {
            c.cert_pem.len() == first.cert_pem.len() && c.key_pem.len() == first.key_pem.len()
        })
        .expect("a certificate the size of the first");
    for (name, text) in [("key.pem", &second.key_pem), ("cert.pem", &second.cert_pem)] {
        let path = server.path(name);
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("modification time");
        write_atomically(&path, text, Some(modified));
    }
    server.server.signal("HUP");
    server.wait_for_certificate(&ca, &second);
    let client = https_client(&ca, None);
    server.wait_ready(&client);
    assert_eq!(infer_label(&server, &client), json!(2));
}

#[test]
fn changed_certificate_files_are_picked_up_without_a_signal() {
    let ca = TestCa::new("ferroserve test CA");
    let first = ca.server_cert("ferroserve-a", 1);
    let server = TlsServer::start(&first, &[]);
    assert_eq!(server.served_certificate(&ca), first.der);
    // A cert that does not fit the key is refused and the old one stays.
    write_atomically(
        &server.path("cert.pem"),
        &ca.server_cert("mismatched", 3).cert_pem,
        None,
    );
    let second = ca.server_cert("ferroserve-b", 2);
    write_atomically(&server.path("key.pem"), &second.key_pem, None);
    write_atomically(&server.path("cert.pem"), &second.cert_pem, None);
    server.wait_for_certificate(&ca, &second);
}

#[test]
fn a_client_ca_requires_client_certificates_it_signed() {
    let ca = TestCa::new("ferroserve test CA");
    let clients = TestCa::new("ferroserve clients CA");
    let files = tempfile::tempdir().expect("tempdir");
    let bundle = files.path().join("clients.pem");
    std::fs::write(&bundle, clients.pem()).expect("write");
    let server = TlsServer::start(
        &ca.server_cert("ferroserve-a", 1),
        &["--tls-client-ca", bundle.to_str().expect("utf-8")],
    );
    let client = https_client(&ca, Some(&clients.client_cert("trusted client")));
    server.wait_ready(&client);
    assert_eq!(infer_label(&server, &client), json!(2));

    for (who, client) in [
        ("without a certificate", https_client(&ca, None)),
        (
            "with a certificate of another CA",
            https_client(&ca, Some(&ca.client_cert("stranger"))),
        ),
    ] {
        let answer = client.get(server.url("/livez")).send();
        assert!(answer.is_err(), "a client {who} was answered: {answer:?}");
    }
}

#[test]
fn bad_tls_settings_stop_the_server_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("ferroserve test CA");
    let issued = ca.server_cert("ferroserve-a", 1);
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&cert, &issued.cert_pem).expect("write");
    std::fs::write(&key, &issued.key_pem).expect("write");
    std::fs::write(&garbage, "not PEM at all\n").expect("write");
    let [cert, key, garbage] = [&cert, &key, &garbage].map(|p| p.to_str().expect("utf-8"));
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("utf-8");
    let cases: [(&[&str], &str); 5] = [
        (&["--tls-cert", cert], "needs tls_key"),
        (&["--tls-key", key], "needs tls_cert"),
        (&["--tls-client-ca", cert], "needs tls_cert and tls_key"),
        (
            &["--tls-cert", garbage, "--tls-key", key],
            "holds no PEM certificate",
        ),
        (
            &["--tls-cert", cert, "--tls-key", missing],
            "cannot read the TLS key",
        ),
    ];
    for (args, words) in cases {
        let data = tempfile::tempdir().expect("tempdir");
        let mut child = common::serve_command(data.path(), args)
            .args(["--log-format", "text"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferroserve starts");
        let until = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                panic!("{args:?}: the server kept running");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert!(!status.success(), "{args:?}: exited with success");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

#[test]
fn tritonclient_http_works_over_tls() {
    let ca = TestCa::new("ferroserve test CA");
    let server = TlsServer::start(&ca.server_cert("ferroserve-a", 1), &[]);
    server.wait_ready(&https_client(&ca, None));
    let ca_file = server.path("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write");
    let address = std::ffi::OsStr::new(server.server.host_port());
    common::python_check::run("triton_client_tls_check.py", [address, ca_file.as_os_str()]);
}

#[test]
fn plain_http_on_a_non_loopback_address_is_warned_about() {
    let data = tempfile::tempdir().expect("tempdir");
    common::provision_admin_key(data.path());
    let mut child = common::serve_command(data.path(), &["--http", "0.0.0.0:0"])
        .args(["--log-format", "text", "--log-level", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferroserve starts");
    // The warning comes before the listening line.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("the listening line");
    assert!(
        line.starts_with("ferroserve listening on http://"),
        "{line}"
    );
    child.kill().expect("kill");
    child.wait().expect("wait");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(
        stderr.contains("plain HTTP on a non-loopback address"),
        "{stderr}"
    );
}
