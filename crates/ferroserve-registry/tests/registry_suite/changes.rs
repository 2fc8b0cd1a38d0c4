//! Change notifications: on PostgreSQL a change made through one registry
//! (one replica) wakes the change feed of another as it commits, also
//! after the feed's connection was cut; SQLite has no feed.

use std::time::Duration;

use ferroserve_registry::{ChangeFeed, DbKind, Registry};
use sqlx::Connection;

use crate::helpers::*;

/// Longest wait for a notification: far above its delivery (milliseconds)
/// and far below the polling it replaces.
const DELIVERY: Duration = Duration::from_secs(5);

async fn next_change(feed: &mut ChangeFeed, what: &str) {
    tokio::time::timeout(DELIVERY, feed.changed())
        .await
        .unwrap_or_else(|_| panic!("no change notified within {DELIVERY:?} after {what}"));
}

pub(crate) async fn change_feed(reg: Registry, url: String) {
    if reg.db_kind() == DbKind::Sqlite {
        assert!(reg.change_feed().is_none(), "SQLite has no change feed");
        return;
    }
    let other = Registry::connect(&url).await.expect("a second replica");
    let mut feed = other.change_feed().expect("PostgreSQL has a change feed");
    next_change(&mut feed, "connecting").await;

    model_with_ready_versions(&reg, "iris", 1).await;
    next_change(&mut feed, "a model made through the other replica").await;
    // Everything of that change has been delivered: nothing is left over.
    while tokio::time::timeout(Duration::from_millis(300), feed.changed())
        .await
        .is_ok()
    {}
    let before = feed.count();
    reg.set_alias("iris", "champion", 1, "bob")
        .await
        .expect("alias");
    next_change(&mut feed, "an alias set through the other replica").await;
    assert!(feed.count() > before);

    // The listening connection is cut (a failover, a proxy timeout): the
    // feed reconnects, reports the gap as a change, and follows again.
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate the listener");
    assert!(!cut.is_empty(), "no listening connection found");
    next_change(&mut feed, "the listener's reconnection").await;
    reg.set_alias("iris", "challenger", 1, "bob")
        .await
        .expect("alias");
    next_change(&mut feed, "an alias set after the reconnection").await;
    other.close().await;
}
