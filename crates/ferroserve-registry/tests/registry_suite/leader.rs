//! Leadership: on PostgreSQL exactly one of several replicas leads; when
//! it goes another takes over, and a leader whose lock connection dies
//! stops leading until it holds the lock again. On SQLite (one node) the
//! replica always leads.

use std::time::{Duration, Instant};

use ferroserve_registry::{DbKind, Leadership, Registry};

/// Longest wait for leadership to settle or move: the retry and check
/// intervals (1 s each) with room for a busy machine.
const SETTLE: Duration = Duration::from_secs(10);

/// Waits until exactly one of `replicas` leads; returns its index. Two
/// leaders at once fail the test.
async fn the_one_leader(replicas: &[&Leadership]) -> usize {
    let until = Instant::now() + SETTLE;
    loop {
        let leaders: Vec<usize> = (0..replicas.len())
            .filter(|&i| replicas[i].is_leader())
            .collect();
        assert!(leaders.len() < 2, "two replicas lead at once: {leaders:?}");
        if let [leader] = leaders[..] {
            return leader;
        }
        assert!(Instant::now() < until, "no replica took the lead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `replica` leads (`true`) or not (`false`).
async fn until_leading(replica: &mut Leadership, leading: bool, what: &str) {
    tokio::time::timeout(SETTLE, async {
        while replica.is_leader() != leading {
            replica.changed().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within {SETTLE:?}"));
}

pub(crate) async fn leadership(reg: Registry, url: String) {
    if reg.db_kind() == DbKind::Sqlite {
        assert!(reg.leadership().is_leader(), "one node always leads");
        return;
    }
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let registry = Registry::connect(&url).await.expect("a replica");
        let leadership = registry.leadership();
        replicas.push((registry, leadership));
    }
    let first = the_one_leader(&replicas.iter().map(|(_, l)| l).collect::<Vec<_>>()).await;
    // It stays the one: nobody takes the lock while it holds it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = the_one_leader(&replicas.iter().map(|(_, l)| l).collect::<Vec<_>>()).await;
    assert_eq!(again, first);

    // The leader goes (its process ends): another replica takes over.
    let (gone, gone_leadership) = replicas.remove(first);
    gone.close().await;
    drop((gone, gone_leadership));
    let next = the_one_leader(&replicas.iter().map(|(_, l)| l).collect::<Vec<_>>()).await;

    // The new leader's lock connection dies (a failover, a proxy timeout):
    // it stops leading, then one of the two leads again.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate the leader's lock connection");
    assert_eq!(cut.len(), 1, "one advisory lock is held: {cut:?}");
    until_leading(
        &mut replicas[next].1,
        false,
        "the cut-off leader stops leading",
    )
    .await;
    the_one_leader(&replicas.iter().map(|(_, l)| l).collect::<Vec<_>>()).await;
    for (registry, _) in &replicas {
        registry.close().await;
    }
}
