//! Replicas sharing one registry: a temporary PostgreSQL and one artifact
//! store (a temporary folder, or a bucket of the test's moto server), each
//! replica a `ferroserve serve` with a data dir of its own and no bundled
//! example.

use super::pg::TempPostgres;
use super::Server;

/// A PostgreSQL registry and an artifact store for replicas to share.
pub struct SharedRegistry {
    /// Kept running while the registry is shared; stopped when dropped.
    _postgres: TempPostgres,
    registry: String,
    store: String,
    _folder: Option<tempfile::TempDir>,
}

impl SharedRegistry {
    /// A new PostgreSQL and a new artifact folder.
    pub fn start() -> SharedRegistry {
        let folder = tempfile::tempdir().expect("shared artifact folder");
        let store = folder.path().to_str().expect("UTF-8 path").to_owned();
        let mut shared = SharedRegistry::with_store(store);
        shared._folder = Some(folder);
        shared
    }

    /// A new PostgreSQL and a new bucket (`NAME-PID`) of the shared
    /// S3-compatible server (moto) as the artifact store.
    pub fn on_s3(name: &str) -> SharedRegistry {
        let bucket = format!("{name}-{}", std::process::id());
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(super::moto::server().create_bucket(&bucket));
        SharedRegistry::with_store(format!("s3://{bucket}/fleet"))
    }

    /// A new PostgreSQL and the artifact store at `store`.
    fn with_store(store: String) -> SharedRegistry {
        let postgres = TempPostgres::start();
        let registry = postgres.url("postgres");
        SharedRegistry {
            _postgres: postgres,
            registry,
            store,
            _folder: None,
        }
    }

    /// Starts a replica on the shared registry and store, with `args`.
    pub fn replica(&self, args: &[&str]) -> Server {
        let mut all = vec![
            "--registry-url",
            self.registry.as_str(),
            "--artifact-store",
            self.store.as_str(),
            "--no-example",
        ];
        all.extend_from_slice(args);
        Server::start(&all)
    }
}
