//! Authentication end to end on the real binary: the admin key a fresh
//! data dir gets (private, picked up by the CLI on that data dir), keys
//! made with `ferroserve keys` taking effect, and `/metrics` behind a
//! reader key unless served on its own address.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{Server, BIN};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}

/// `ferroserve ARGS` with only the environment this test gives it.
fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("FERROSERVE_API_KEY")
        .env_remove("FERROSERVE_DATA_DIR")
        .env_remove("FERROSERVE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("ferroserve runs")
}

#[test]
fn a_fresh_data_dir_gets_a_private_admin_key_that_the_cli_uses() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_unprovisioned(data.path(), &[]);
    server.wait_ready();
    let key_file = data.path().join("admin.key");
    let mode = std::fs::metadata(&key_file)
        .expect("admin.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.key is private");
    let token = std::fs::read_to_string(&key_file).expect("token");
    assert!(token.trim().starts_with("fsk_"), "{token}");
    let data_dir = data.path().to_str().expect("utf-8");

    // Without a key the management API refuses, saying what it needs.
    let refused = cli(&["models", "list", "--url", &server.base], &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("credentials"),
        "{stderr}"
    );

    // On the server's data dir the CLI finds the admin key itself.
    let env = [("FERROSERVE_DATA_DIR", data_dir)];
    let listed = cli(&["models", "list", "--url", &server.base, "--json"], &env);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // A reader key made through the server reads but may not change.
    let made = cli(
        &[
            "keys",
            "create",
            "--url",
            &server.base,
            "--name",
            "viewer",
            "--role",
            "reader",
            "--json",
        ],
        &env,
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: Value = serde_json::from_slice(&made.stdout).expect("JSON");
    let reader = made["token"].as_str().expect("token").to_owned();
    let as_reader = [("FERROSERVE_API_KEY", reader.as_str())];
    let shown = cli(
        &["models", "show", "iris", "--url", &server.base],
        &as_reader,
    );
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let denied = cli(
        &[
            "models",
            "promote",
            "iris",
            "1",
            "--stage",
            "Staging",
            "--url",
            &server.base,
        ],
        &as_reader,
    );
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success() && stderr.contains("403"),
        "{stderr}"
    );
    assert!(stderr.contains("deployer or admin"), "{stderr}");

    // Revoked in the data dir directly, the key stops working on the server
    // within its registry poll.
    let listed = cli(&["keys", "list", "--data-dir", data_dir, "--json"], &[]);
    let keys: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let id = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "viewer")
        .expect("viewer")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let revoked = cli(&["keys", "revoke", &id, "--data-dir", data_dir], &[]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/whoami", server.base))
            .bearer_auth(&reader)
            .send()
            .expect("whoami")
            .status();
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the revoked key still works"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn metrics_need_a_reader_key_unless_served_on_their_own_address() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let server = Server::start(&["--metrics-http", &address]);
    let anonymous = reqwest::blocking::get(format!("{}/metrics", server.base)).expect("metrics");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let with_key = server.metrics();
    assert!(
        with_key.contains("ferroserve_auth_failures_total"),
        "a reader key (here the admin's) reads /metrics:\n{with_key}"
    );

    let open = reqwest::blocking::get(format!("http://{address}/metrics")).expect("metrics");
    assert_eq!(open.status(), 200);
    let text = open.text().expect("text");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ferroserve_auth_failures_total{reason=\"missing\"}")),
        "the anonymous scrape was counted:\n{text}"
    );
    let other = reqwest::blocking::get(format!("http://{address}/api/v1/models")).expect("get");
    assert_eq!(
        other.status(),
        404,
        "the metrics address serves /metrics only"
    );
}
