//! Predictions awaiting feedback across replicas: a reused key names the
//! newer prediction, lookups see only what is recent, a prediction is
//! labeled once (all of a call's or none), and the labels wait for the
//! leader in order.

use ferroserve_registry::{LabelBatch, PredictionKey, Registry};
use serde_json::json;

fn prediction(key: &str, id: &str, version: &str, client: &str) -> PredictionKey {
    PredictionKey {
        key: key.to_owned(),
        prediction: id.to_owned(),
        version: version.to_owned(),
        client: Some(client.to_owned()),
        outcomes: json!([format!("from {id}")]),
    }
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

pub(crate) async fn predictions_are_found_and_labeled_once(reg: Registry, _url: String) {
    reg.add_predictions(
        "iris",
        &[
            prediction("r:a", "p1", "1", "ip:1"),
            prediction("k:a", "p1", "1", "ip:1"),
            prediction("r:b", "p2", "2", "ip:2"),
            // Reused in the same hand-over: the later one counts.
            prediction("r:c", "p3", "1", "ip:1"),
            prediction("r:c", "p4", "1", "ip:1"),
        ],
    )
    .await
    .expect("hand over");
    reg.add_predictions("wine", &[prediction("r:a", "w1", "1", "ip:1")])
        .await
        .expect("another model");

    let mut found = reg
        .find_predictions("iris", &keys(&["r:a", "k:a", "r:c", "r:zz"]), 0)
        .await
        .expect("find");
    found.sort_by(|a, b| a.prediction.key.cmp(&b.prediction.key));
    let seen: Vec<(&str, &str, bool)> = found
        .iter()
        .map(|f| {
            (
                f.prediction.key.as_str(),
                f.prediction.prediction.as_str(),
                f.labeled,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("k:a", "p1", false),
            ("r:a", "p1", false),
            ("r:c", "p4", false)
        ]
    );
    assert_eq!(found[0].prediction, prediction("k:a", "p1", "1", "ip:1"));
    let later = i64::MAX / 2;
    assert!(
        reg.find_predictions("iris", &keys(&["r:a"]), later)
            .await
            .expect("find")
            .is_empty(),
        "older than asked for"
    );

    let batches = [
        LabelBatch {
            version: "1".into(),
            predictions: keys(&["p1"]),
            pairs: json!([["setosa", "setosa"]]),
        },
        LabelBatch {
            version: "2".into(),
            predictions: keys(&["p2"]),
            pairs: json!([["virginica", "setosa"]]),
        },
    ];
    assert!(reg
        .label_predictions("iris", &batches)
        .await
        .expect("label")
        .is_empty());
    let again = reg
        .find_predictions("iris", &keys(&["r:a", "k:a", "r:b"]), 0)
        .await
        .expect("find");
    assert!(again.iter().all(|f| f.labeled), "{again:?}");

    // A call naming one labeled prediction writes nothing at all.
    let mixed = [LabelBatch {
        version: "1".into(),
        predictions: keys(&["p4", "p1", "gone"]),
        pairs: json!([["a", "b"]]),
    }];
    let mut lost = reg.label_predictions("iris", &mixed).await.expect("label");
    lost.sort();
    assert_eq!(lost, ["gone", "p1"]);
    let p4 = reg
        .find_predictions("iris", &keys(&["r:c"]), 0)
        .await
        .expect("find");
    assert!(!p4[0].labeled, "rolled back with the rest");

    assert_eq!(
        reg.take_labels("iris", "1").await.expect("take"),
        [json!([["setosa", "setosa"]])]
    );
    assert!(reg
        .take_labels("iris", "1")
        .await
        .expect("taken")
        .is_empty());
    assert_eq!(reg.take_labels("iris", "2").await.expect("take").len(), 1);

    // A prediction handed over again under a labeled key waits afresh.
    reg.add_predictions("iris", &[prediction("r:a", "p5", "1", "ip:1")])
        .await
        .expect("reuse");
    let reused = reg
        .find_predictions("iris", &keys(&["r:a"]), 0)
        .await
        .expect("find");
    assert_eq!(
        (reused[0].prediction.prediction.as_str(), reused[0].labeled),
        ("p5", false)
    );

    // Many keys at once go in several statements; past the newest keys
    // kept, the oldest hand-overs leave first, whatever their age.
    let batch_keys =
        |batch: usize| -> Vec<String> { (0..600).map(|i| format!("r:{batch}-{i}")).collect() };
    for batch in 0..3 {
        let handed: Vec<PredictionKey> = batch_keys(batch)
            .iter()
            .map(|key| prediction(key, &format!("m{key}"), "1", "ip:1"))
            .collect();
        reg.add_predictions("iris", &handed).await.expect("many");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let found = |keys: Vec<String>| {
        let reg = reg.clone();
        async move {
            reg.find_predictions("iris", &keys, 0)
                .await
                .expect("find")
                .len()
        }
    };
    assert_eq!(found(batch_keys(1)).await, 600);
    let removed = reg.expire_predictions(0, 1000).await.expect("trim");
    assert!(removed >= 600, "{removed}");
    assert_eq!(found(batch_keys(0)).await, 0, "the oldest hand-over left");
    assert_eq!(found(batch_keys(2)).await, 600, "the newest stays");

    let removed = reg
        .expire_predictions(i64::MAX, 1000)
        .await
        .expect("expire");
    assert!(removed >= 1200, "{removed}");
    assert!(reg
        .find_predictions("wine", &keys(&["r:a"]), 0)
        .await
        .expect("find")
        .is_empty());
}
