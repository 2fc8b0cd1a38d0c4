//! Test harness: a registry on a temporary SQLite file or on a fresh
//! database of a temporary PostgreSQL server shared by the test binary.

pub(crate) mod pg;

// The PostgreSQL helper finds it here, in this suite and in the server's
// end-to-end tests that include it.
use crate::dependency;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use ferroserve_registry::Registry;
use sqlx::Connection;

/// Keeps the temporary folder of a SQLite registry alive with it.
pub(crate) struct TestRegistry {
    pub(crate) registry: Registry,
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn sqlite() -> TestRegistry {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    let registry = Registry::connect(&url).await.expect("connect to SQLite");
    TestRegistry {
        registry,
        url,
        _dir: Some(dir),
    }
}

static SERVER: OnceLock<pg::TempPostgres> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

pub(crate) async fn postgres() -> TestRegistry {
    // Blocks this test's runtime while the first test starts the server;
    // the other tests wait for it here.
    let server = SERVER.get_or_init(pg::TempPostgres::start);
    sqlx::any::install_default_drivers();
    let db = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = sqlx::AnyConnection::connect(&server.url("postgres"))
        .await
        .expect("connect to the temporary PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.expect("close admin connection");
    let url = server.url(&db);
    let registry = Registry::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    TestRegistry {
        registry,
        url,
        _dir: None,
    }
}
