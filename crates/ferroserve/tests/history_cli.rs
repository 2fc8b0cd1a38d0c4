//! Tests of the `ferroserve` CLI as a user meets it beyond the first steps,
//! running the real binary: `models history` pages through every event
//! (newest first, `--limit`, `--all`, `--since`) and prints the same lines
//! through a server as on its data dir; `models list` and `show` say what
//! the server serves; `predict` for an unknown model says so in a
//! sentence; and output into a closed pipe ends quietly, for every command.

mod common;

use std::process::{Command, Output, Stdio};

use common::{repo_root, run_direct, succeeded, Server, BIN};
use serde_json::{json, Value};

/// Runs `ferroserve models ARGS` through the server at `base`.
fn remote(base: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .arg("models")
        .args(args)
        .args(["--url", base])
        .output()
        .expect("ferroserve runs")
}

/// A server serving iris (registered, in Production) with `moves` more
/// audit events from moving an alias back and forth.
fn server_with_history(moves: usize) -> Server {
    let server = Server::start(&[]);
    let client = common::admin_client();
    for _ in 0..moves {
        let status = client
            .put(format!(
                "{}/api/v1/models/iris/aliases/champion",
                server.base
            ))
            .json(&json!({ "version": 1 }))
            .send()
            .expect("alias request")
            .status();
        assert!(status.is_success(), "{status}");
    }
    server
}

fn event_ids(answer: &Value) -> Vec<i64> {
    answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect()
}

#[test]
fn history_pages_through_every_event_newest_first() {
    let server = server_with_history(130);
    let base = server.base.as_str();

    // The API: newest first, a cursor, and what remains.
    let client = common::admin_client();
    let get = |query: &str| -> Value {
        let r = client
            .get(format!("{base}/api/v1/models/iris/history?{query}"))
            .send()
            .expect("history request");
        assert!(r.status().is_success(), "{query}: {}", r.status());
        r.json().expect("JSON")
    };
    let all = get("order=asc&limit=10000");
    let total = all["events"].as_array().expect("events").len();
    assert!(total > 130, "{total} events");
    let first = get("order=desc&limit=100");
    let ids = event_ids(&first);
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "not newest first");
    assert_eq!(first["remaining"], (total - 100) as i64);
    let cursor = first["next_cursor"].as_i64().expect("a cursor");
    let second = get(&format!("order=desc&limit=100&before_id={cursor}"));
    assert_eq!(event_ids(&second).len(), total - 100);
    assert_eq!(second["remaining"], 0);
    assert_eq!(second["next_cursor"], Value::Null);
    let mut both = [ids, event_ids(&second)].concat();
    both.reverse();
    assert_eq!(both, event_ids(&all), "two pages make the whole history");

    // The CLI: the newest 50 by default, saying how many are left out.
    let out = remote(base, &["history", "iris"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = succeeded(&["history"], out);
    assert_eq!(text.lines().count(), 51, "{text}");
    assert!(
        err.contains(&format!("{} older events not shown", total - 50))
            && err.contains("--limit")
            && err.contains("--since"),
        "{err}"
    );
    // --all pages through the API: every event, and the same lines as on
    // the data dir.
    let all_remote = succeeded(&["--all"], remote(base, &["history", "iris", "--all"]));
    assert_eq!(all_remote.lines().count(), total + 1);
    let direct = run_direct(
        "models",
        &["history", "iris", "--all"],
        &server.data_dir,
        &repo_root(),
    );
    assert_eq!(succeeded(&["direct"], direct), all_remote);
    let json: Value = serde_json::from_str(&succeeded(
        &["--limit 3"],
        remote(base, &["history", "iris", "--limit", "3", "--json"]),
    ))
    .expect("JSON");
    assert_eq!(event_ids(&json), event_ids(&first)[..3].to_vec());
    assert_eq!(json["remaining"], (total - 3) as i64);

    // --since: a duration back from now, or a time.
    let recent = succeeded(
        &["1h"],
        remote(base, &["history", "iris", "--since", "1h", "--all"]),
    );
    assert_eq!(recent, all_remote);
    let future = succeeded(
        &["future"],
        remote(
            base,
            &["history", "iris", "--since", "2999-01-01T00:00:00Z"],
        ),
    );
    assert!(
        future.starts_with("no events of iris since 2999-01-01"),
        "{future}"
    );
    let out = remote(base, &["history", "iris", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));

    // An unknown model is an error in both modes.
    let out = remote(base, &["history", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model 'nope' does not exist"), "{err}");
}

#[test]
fn list_and_show_say_what_the_server_serves() {
    let server = server_with_history(0);
    let base = server.base.as_str();
    let list = succeeded(&["list"], remote(base, &["list"]));
    let header = list.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("SERVING"),
        "{list}"
    );
    assert!(
        list.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("1")),
        "{list}"
    );
    let show = succeeded(&["show"], remote(base, &["show", "iris"]));
    assert!(
        show.lines()
            .any(|l| l.starts_with("serving") && l.ends_with("version 1")),
        "{show}"
    );
    let version = succeeded(&["show iris/1"], remote(base, &["show", "iris/1"]));
    assert!(
        version
            .lines()
            .any(|l| l.starts_with("serving") && l.contains("yes")),
        "{version}"
    );
    let json: Value = serde_json::from_str(&succeeded(
        &["show --json"],
        remote(base, &["show", "iris", "--json"]),
    ))
    .expect("JSON");
    assert_eq!(json["serving"]["serving_version"], "1");
}

#[test]
fn predict_names_an_unknown_model_in_a_sentence() {
    let server = Server::start(&[]);
    let out = Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args(["predict", "--url", &server.base, "--model", "nope"])
        .args(["--data", "[[5.1, 3.5, 1.4, 0.2]]"])
        .output()
        .expect("ferroserve runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown model 'nope'")
            && err.contains(&format!("the server at {} does not serve it", server.base)),
        "{err}"
    );
    assert!(!err.contains('{'), "raw JSON in: {err}");
}

/// Runs `ferroserve ARGS` with stdout a pipe whose reading end is closed
/// before the command writes (as `| head -0`, the case where the command
/// is sure to write into a closed pipe); returns its output.
fn into_closed_pipe(args: &[&str], data_dir: &std::path::Path) -> Output {
    let mut child = Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args(args)
        .env("FERROSERVE_DATA_DIR", data_dir)
        .env_remove("FERROSERVE_URL")
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferroserve starts");
    drop(child.stdout.take());
    child.wait_with_output().expect("ferroserve ends")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let server = server_with_history(3);
    let base = server.base.as_str();
    let commands: [&[&str]; 7] = [
        &["models", "list"],
        &["models", "show", "iris/1", "--json"],
        &["models", "config", "iris"],
        &["models", "history", "iris"],
        &["models", "show", "iris", "--url", base],
        &["drift", "iris", "--json", "--url", base],
        &[
            "predict",
            "--url",
            base,
            "--model",
            "iris",
            "--data",
            "[[5.1, 3.5, 1.4, 0.2]]",
        ],
    ];
    for args in commands {
        let out = into_closed_pipe(args, &server.data_dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: {}\n{err}",
            out.status
        );
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
}
