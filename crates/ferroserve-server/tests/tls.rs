//! TLS on the listener, with real handshakes: the peer address still
//! reaches the router, bad files are refused with the file named, and a
//! reload that fails keeps the previous certificate.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use common::pki::{Issued, TestCa};
use ferroserve_server::listener::serve_connections;
use ferroserve_server::tls::{TlsFiles, TlsSource};
use ferroserve_server::HttpLimits;

/// Writes `issued` as `cert.pem` and `key.pem` in `dir`.
fn write_pair(dir: &Path, issued: &Issued) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        client_ca: None,
    };
    std::fs::write(&files.cert, &issued.cert_pem).expect("write cert");
    std::fs::write(&files.key, &issued.key_pem).expect("write key");
    files
}

#[tokio::test]
async fn the_peer_address_reaches_the_router_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("listener test CA");
    let tls = TlsSource::load(write_pair(dir.path(), &ca.server_cert("server", 1))).expect("TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("address");
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    tokio::spawn(async move {
        serve_connections(
            listener,
            router,
            &HttpLimits::default(),
            Some(tls),
            std::future::pending(),
        )
        .await
    });
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    let answer = client
        .get(format!("https://{address}/peer"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(answer.status(), 200);
    let peer: SocketAddr = answer
        .text()
        .await
        .expect("body")
        .parse()
        .expect("a socket address");
    assert!(peer.ip().is_loopback() && peer.port() != 0, "{peer}");
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/peer"))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP was answered on the TLS port: {plain:?}"
    );
}

#[test]
fn a_reload_that_fails_keeps_the_previous_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("reload test CA");
    let files = write_pair(dir.path(), &ca.server_cert("first", 1));
    let tls = TlsSource::load(files.clone()).expect("TLS");
    let first = tls.current();
    assert!(!tls.files_changed());

    std::fs::write(&files.cert, "not a certificate\n").expect("write");
    assert!(tls.files_changed());
    let err = tls.reload().expect_err("garbage is refused").to_string();
    assert!(
        err.contains("cert.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
    assert!(Arc::ptr_eq(&first, &tls.current()), "the old config stays");
    // The failed attempt is not retried until a file changes again.
    assert!(!tls.files_changed());

    write_pair(dir.path(), &ca.server_cert("second", 2));
    tls.reload().expect("a good pair reloads");
    assert!(!Arc::ptr_eq(&first, &tls.current()));
}

#[test]
fn unusable_files_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("refusal test CA");
    let good = write_pair(dir.path(), &ca.server_cert("server", 1));
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, ca.server_cert("other", 2).key_pem).expect("write");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!\n").expect("write");
    let missing = dir.path().join("missing.pem");
    let cases = [
        (
            TlsFiles {
                key: missing.clone(),
                ..good.clone()
            },
            "cannot read the TLS key",
        ),
        (
            TlsFiles {
                cert: garbage.clone(),
                ..good.clone()
            },
            "garbage.pem is not valid PEM",
        ),
        (
            TlsFiles {
                key: good.cert.clone(),
                ..good.clone()
            },
            "holds no usable PEM private key",
        ),
        (
            TlsFiles {
                key: other_key,
                ..good.clone()
            },
            "cannot be used together",
        ),
        (
            TlsFiles {
                client_ca: Some(missing),
                ..good.clone()
            },
            "cannot read the TLS client CA bundle",
        ),
        (
            TlsFiles {
                client_ca: Some(good.key.clone()),
                ..good.clone()
            },
            "holds no PEM certificate",
        ),
    ];
    for (files, words) in cases {
        let err = match TlsSource::load(files.clone()) {
            Ok(_) => panic!("{files:?} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(words), "{files:?}: {err}");
    }
}
