//! Following changes made through other replicas as they happen. On
//! PostgreSQL every change notifies channel [`CHANNEL`] in its own
//! transaction (migration 0007); a [`ChangeFeed`] listens on it over a
//! connection of its own, reconnecting with backoff when the connection
//! drops, and reports a change after every (re)connection too, since what
//! was notified while it was away is lost. Readers keep polling as well,
//! less urgently: the feed makes them quick, the poll keeps them right.
//! A SQLite registry has no feed (one node: its readers poll).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

/// The channel registry changes are notified on.
pub const CHANNEL: &str = "ferroserve_registry";

/// First wait before reconnecting a dropped listener; doubled after each
/// failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Wakes its holder when the registry changed (through any replica).
/// Clones share the listener; each clone sees every change after its own
/// last wait.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    changes: watch::Receiver<u64>,
}

impl ChangeFeed {
    /// Starts listening to the PostgreSQL registry at `url`.
    pub(crate) fn listen(url: String) -> ChangeFeed {
        let (sender, changes) = watch::channel(0);
        tokio::spawn(follow(url, sender));
        ChangeFeed { changes }
    }

    /// Waits until the registry changed since this feed last returned; a
    /// change that came meanwhile returns at once. Never returns if the
    /// listener stopped (it only stops with the process).
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Changes (and reconnections) seen so far.
    pub fn count(&self) -> u64 {
        *self.changes.borrow()
    }
}

/// Listens on [`CHANNEL`] at `url`, counting each notification (and each
/// connection) into `sender`, until every feed is dropped.
async fn follow(url: String, sender: watch::Sender<u64>) {
    let mut backoff = FIRST_BACKOFF;
    while !sender.is_closed() {
        match listen_until_dropped(&url, &sender).await {
            // Every feed is gone.
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "registry change notifications interrupted; polling until they are back"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection's life: connects, listens, reports the (re)connection,
/// then one change per notification; `Ok` once nobody holds a feed.
async fn listen_until_dropped(url: &str, sender: &watch::Sender<u64>) -> sqlx::Result<()> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    tracing::debug!(channel = CHANNEL, "listening for registry changes");
    sender.send_modify(|count| *count += 1);
    loop {
        let notification = tokio::select! {
            notification = listener.try_recv() => notification?,
            () = sender.closed() => return Ok(()),
        };
        match notification {
            Some(notification) => {
                tracing::trace!(model = notification.payload(), "registry change notified");
                sender.send_modify(|count| *count += 1);
            }
            // The connection was lost: reconnect through `follow` (with
            // backoff and a change reported for the gap), not silently.
            None => {
                return Err(sqlx::Error::Protocol(
                    "the notification connection closed".into(),
                ))
            }
        }
    }
}

/// Waits for `ticker`'s next tick or, with a `feed`, the next change
/// notified, whichever comes first: how a reader that polls the registry
/// follows it quickly where changes are notified.
pub async fn tick_or_change(ticker: &mut tokio::time::Interval, feed: Option<&mut ChangeFeed>) {
    match feed {
        Some(feed) => {
            tokio::select! {
                _ = ticker.tick() => {}
                () = feed.changed() => {}
            }
        }
        None => {
            ticker.tick().await;
        }
    }
}
