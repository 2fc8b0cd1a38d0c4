//! Which replica does the work only one may do at a time (driving
//! rollouts): the one holding the registry's leader lock. On PostgreSQL
//! that is a session advisory lock ([`LEADER_LOCK`]) taken over a
//! connection of its own: the holder leads for as long as that connection
//! lives, and when the replica dies (or its connection does) PostgreSQL
//! releases the lock and the next replica to ask takes it, within
//! [`RETRY`]. A replica that loses its connection stops leading as soon as
//! it notices (its next check, at most [`CHECK`] later). A SQLite registry
//! serves one node, which always leads.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

/// The advisory lock key of leadership (the bytes of "ferroldr").
pub const LEADER_LOCK: i64 = 0x6665_7272_6f6c_6472;

/// How often a replica that does not lead asks for the lock again.
pub const RETRY: Duration = Duration::from_secs(1);

/// How often the leader checks that its lock connection is alive.
pub const CHECK: Duration = Duration::from_secs(1);

/// Whether this replica leads, kept current in the background.
#[derive(Debug, Clone)]
pub struct Leadership {
    leads: watch::Receiver<bool>,
}

impl Leadership {
    /// A replica that always leads (one node).
    pub(crate) fn always() -> Leadership {
        let (sender, leads) = watch::channel(true);
        // Never changes: the receiver keeps its value once the sender goes.
        drop(sender);
        Leadership { leads }
    }

    /// Starts competing for the lock of the PostgreSQL registry at `url`.
    pub(crate) fn compete(url: String) -> Leadership {
        let (sender, leads) = watch::channel(false);
        tokio::spawn(compete(url, sender));
        Leadership { leads }
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.leads.borrow()
    }

    /// Waits until leadership changes (it never does for one node).
    pub async fn changed(&mut self) {
        if self.leads.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Takes the lock when it is free and holds it while the connection
/// lives; starts over (as a follower) when the connection fails. Ends
/// when every [`Leadership`] is dropped.
async fn compete(url: String, leads: watch::Sender<bool>) {
    while !leads.is_closed() {
        if let Err(e) = lead_while_connected(&url, &leads).await {
            tracing::warn!(error = %e, "leader lock connection lost; asking again");
        }
        leads.send_if_modified(|leading| std::mem::replace(leading, false));
        tokio::time::sleep(RETRY).await;
    }
}

/// One lock connection's life: asks for the lock every [`RETRY`] until it
/// holds it, then checks the connection every [`CHECK`].
async fn lead_while_connected(url: &str, leads: &watch::Sender<bool>) -> sqlx::Result<()> {
    let mut connection = PgConnection::connect(url).await?;
    loop {
        if leads.is_closed() {
            return Ok(());
        }
        if *leads.borrow() {
            sqlx::query("SELECT 1").execute(&mut connection).await?;
            tokio::time::sleep(CHECK).await;
            continue;
        }
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut connection)
            .await?;
        if taken {
            tracing::info!("this replica now leads the work one replica does at a time");
            leads.send_replace(true);
        } else {
            tokio::time::sleep(RETRY).await;
        }
    }
}
