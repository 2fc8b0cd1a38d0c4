//! Pooled monitoring windows: parts from several replicas add up, taking a
//! window empties it and opens the next under a compare-and-set, and parts
//! added after a take wait for the next window.

use ferroserve_registry::Registry;
use serde_json::json;

pub(crate) async fn windows_pool_parts_and_close_once(reg: Registry, _url: String) {
    let empty = reg.pooled_window("iris", "1").await.expect("open");
    assert_eq!((empty.rows, empty.closed), (0, 0));
    let again = reg.pooled_window("iris", "1").await.expect("open again");
    assert_eq!(again.opened_at, empty.opened_at, "opened once");

    for (replica, rows) in [("a", 50), ("b", 30), ("a", 70)] {
        reg.add_window_part(
            "iris",
            "1",
            replica,
            rows,
            &json!({"rows": rows, "from": replica}),
        )
        .await
        .expect("part");
    }
    reg.add_window_part("iris", "2", "a", 5, &json!({"rows": 5}))
        .await
        .expect("another version");
    let open = reg.pooled_window("iris", "1").await.expect("open");
    assert_eq!((open.rows, open.closed), (150, 0));

    let taken = reg
        .take_window_parts("iris", "1", open)
        .await
        .expect("take")
        .expect("the window was open");
    assert_eq!(taken.index, 1);
    assert_eq!(taken.opened_at, open.opened_at);
    assert_eq!(
        taken.parts,
        [
            json!({"rows": 50, "from": "a"}),
            json!({"rows": 30, "from": "b"}),
            json!({"rows": 70, "from": "a"}),
        ],
        "every part, oldest first"
    );
    // A second closer that saw the same window gets nothing.
    assert_eq!(
        reg.take_window_parts("iris", "1", open)
            .await
            .expect("late"),
        None
    );

    let next = reg.pooled_window("iris", "1").await.expect("next");
    assert_eq!((next.rows, next.closed), (0, 1));
    assert!(next.opened_at >= open.opened_at);
    reg.add_window_part("iris", "1", "c", 7, &json!({"rows": 7}))
        .await
        .expect("part of the next window");
    let next = reg.pooled_window("iris", "1").await.expect("next");
    assert_eq!(next.rows, 7);
    let taken = reg
        .take_window_parts("iris", "1", next)
        .await
        .expect("take")
        .expect("open");
    assert_eq!((taken.index, taken.parts.len()), (2, 1));
    assert_eq!(
        reg.pooled_window("iris", "2").await.expect("other").rows,
        5,
        "other versions keep their parts"
    );
}
