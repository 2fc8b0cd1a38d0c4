//! Experiment tracking: experiments with unique names, deleted and
//! restored with their runs; runs created, updated and read back with
//! every param, tag, metric and input they logged; params set once; a
//! metric's whole history in pages, NaN included.

use std::collections::BTreeMap;

use ferroserve_registry::tracking::{
    Dataset, LifecycleStage, MetricValue, NewRun, RunInput, RunStatus, RunUpdate, ViewType,
    DEFAULT_EXPERIMENT_ID, RUN_NAME_TAG,
};
use ferroserve_registry::{Registry, RegistryError};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> (String, MetricValue) {
    (
        key.to_owned(),
        MetricValue {
            value,
            timestamp,
            step,
        },
    )
}

pub(crate) async fn experiments_are_named_once_and_deleted_with_their_runs(
    reg: Registry,
    _url: String,
) {
    let default = reg
        .experiment(DEFAULT_EXPERIMENT_ID)
        .await
        .expect("default");
    assert_eq!(
        (default.name.as_str(), default.lifecycle_stage),
        ("Default", LifecycleStage::Active)
    );

    let tags = BTreeMap::from([("team".to_owned(), "fraud".to_owned())]);
    let id = reg
        .create_experiment("iris", None, &tags)
        .await
        .expect("create");
    let iris = reg.experiment_by_name("iris").await.expect("by name");
    assert_eq!(iris.id, id);
    assert_eq!(iris.artifact_location, format!("mlflow-artifacts:/{id}"));
    assert_eq!(iris.tags, tags);
    assert_eq!(
        reg.create_experiment("iris", None, &BTreeMap::new()).await,
        Err(RegistryError::ExperimentExists("iris".into()))
    );
    let other = reg
        .create_experiment("wine", Some("s3://bucket/wine"), &BTreeMap::new())
        .await
        .expect("create");
    assert_eq!(
        reg.experiment(other).await.expect("get").artifact_location,
        "s3://bucket/wine"
    );
    assert!(matches!(
        reg.create_experiment(" ", None, &BTreeMap::new()).await,
        Err(RegistryError::InvalidName { .. })
    ));
    assert!(matches!(
        reg.rename_experiment(id, "wine").await,
        Err(RegistryError::ExperimentExists(_))
    ));
    reg.rename_experiment(id, "iris-2").await.expect("rename");
    reg.set_experiment_tag(id, "team", "risk")
        .await
        .expect("tag");
    reg.set_experiment_tag(id, "gone", "soon")
        .await
        .expect("tag");
    reg.delete_experiment_tag(id, "gone").await.expect("untag");
    assert!(matches!(
        reg.delete_experiment_tag(id, "gone").await,
        Err(RegistryError::TagNotFound { .. })
    ));
    let renamed = reg.experiment(id).await.expect("get");
    assert_eq!(
        (renamed.name.as_str(), renamed.tags["team"].as_str()),
        ("iris-2", "risk")
    );

    // Deleting takes the runs along, and restoring brings every one back
    // (as in MLflow).
    let run = |name: &str| NewRun {
        experiment_id: id,
        run_name: name.to_owned(),
        ..NewRun::default()
    };
    let kept = reg.create_run(&run("kept")).await.expect("run");
    let gone = reg.create_run(&run("gone")).await.expect("run");
    reg.delete_run(&gone.info.run_id).await.expect("delete run");
    reg.delete_experiment(id).await.expect("delete");
    let listed: Vec<String> = reg
        .experiments(ViewType::ActiveOnly)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listed, ["Default", "wine"]);
    assert_eq!(
        reg.experiments(ViewType::DeletedOnly)
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        reg.run(&kept.info.run_id)
            .await
            .expect("run")
            .info
            .lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert!(
        reg.create_run(&run("late")).await.is_err(),
        "no runs in a deleted experiment"
    );
    assert!(reg.delete_experiment(id).await.is_err(), "deleted already");
    reg.restore_experiment(id).await.expect("restore");
    let stages: Vec<(String, LifecycleStage)> = reg
        .runs_of(&[id], ViewType::All)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| (r.info.run_name, r.info.lifecycle_stage))
        .collect();
    assert!(
        stages.contains(&("kept".into(), LifecycleStage::Active)),
        "{stages:?}"
    );
    assert!(
        stages.contains(&("gone".into(), LifecycleStage::Active)),
        "{stages:?}"
    );
    assert!(reg.delete_experiment(DEFAULT_EXPERIMENT_ID).await.is_err());
    assert!(matches!(
        reg.experiment(9999).await,
        Err(RegistryError::ExperimentNotFound(_))
    ));
}

pub(crate) async fn runs_log_params_metrics_tags_and_inputs(reg: Registry, _url: String) {
    let id = reg
        .create_experiment("tracking", None, &BTreeMap::new())
        .await
        .expect("experiment");
    let created = reg
        .create_run(&NewRun {
            experiment_id: id,
            run_name: String::new(),
            user_id: "ana".into(),
            start_time: Some(1_000),
            tags: BTreeMap::from([(RUN_NAME_TAG.to_owned(), "tagged-name".to_owned())]),
        })
        .await
        .expect("run");
    let run_id = created.info.run_id.clone();
    assert_eq!(run_id.len(), 32);
    assert_eq!(created.info.run_name, "tagged-name");
    assert_eq!(created.info.status, RunStatus::Running);
    assert_eq!(
        created.info.artifact_uri,
        format!("mlflow-artifacts:/{id}/{run_id}/artifacts")
    );

    // A thousand steps in one batch, then more one at a time.
    let steps: Vec<(String, MetricValue)> = (0..1000)
        .map(|step| {
            metric(
                "loss",
                1.0 / f64::from(step + 1),
                2_000 + i64::from(step),
                i64::from(step),
            )
        })
        .collect();
    reg.log_batch(
        &run_id,
        &steps,
        &pairs(&[("alpha", "0.5"), ("depth", "3")]),
        &pairs(&[("stage", "dev")]),
    )
    .await
    .expect("batch");
    reg.log_batch(&run_id, &[metric("loss", f64::NAN, 9_000, 1000)], &[], &[])
        .await
        .expect("NaN");
    reg.log_batch(
        &run_id,
        &[metric("acc", 0.9, 5_000, 1), metric("acc", 0.95, 4_000, 2)],
        &[],
        &[],
    )
    .await
    .expect("acc");
    reg.log_batch(&run_id, &[metric("acc", 0.1, 6_000, 0)], &[], &[])
        .await
        .expect("an earlier step");
    // The same param again is fine; another value is not.
    reg.log_batch(&run_id, &[], &pairs(&[("alpha", "0.5")]), &[])
        .await
        .expect("same value");
    let changed = reg
        .log_batch(&run_id, &[], &pairs(&[("alpha", "0.7")]), &[])
        .await
        .expect_err("changed");
    assert!(
        changed.to_string().contains("changing param values"),
        "{changed}"
    );
    assert!(reg
        .log_batch(&run_id, &[metric("bad key$", 1.0, 0, 0)], &[], &[])
        .await
        .is_err());
    let too_many: Vec<(String, MetricValue)> = (0..1001).map(|i| metric("m", 1.0, i, i)).collect();
    assert!(reg.log_batch(&run_id, &too_many, &[], &[]).await.is_err());

    let inputs = [RunInput {
        dataset: Dataset {
            name: "iris".into(),
            digest: "d41d8cd9".into(),
            source_type: "local".into(),
            source: r#"{"uri": "iris.csv"}"#.into(),
            schema: Some(r#"{"mlflow_colspec": []}"#.into()),
            profile: None,
        },
        tags: BTreeMap::from([("mlflow.data.context".to_owned(), "training".to_owned())]),
    }];
    reg.log_inputs(&run_id, &inputs).await.expect("inputs");
    reg.log_inputs(&run_id, &inputs).await.expect("again, once");

    let run = reg.run(&run_id).await.expect("run");
    assert_eq!(
        run.params,
        BTreeMap::from([("alpha".into(), "0.5".into()), ("depth".into(), "3".into())])
    );
    assert_eq!(run.tags["stage"], "dev");
    assert!(
        run.metrics["loss"].value.is_nan(),
        "the latest step is the NaN"
    );
    assert_eq!(run.metrics["loss"].step, 1000);
    assert_eq!(
        (run.metrics["acc"].value, run.metrics["acc"].step),
        (0.95, 2)
    );
    assert_eq!(run.inputs, inputs);

    // The whole history back, exactly, in pages.
    let mut history = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = reg
            .metric_history(&run_id, "loss", 400, token.as_deref())
            .await
            .expect("history");
        history.extend(page.metrics);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(history.len(), 1001);
    for (step, value) in history.iter().take(1000).enumerate() {
        let expected = 1.0 / (step as f64 + 1.0);
        assert_eq!((value.step, value.value), (step as i64, expected));
    }
    assert!(history[1000].value.is_nan());
    assert!(reg
        .metric_history(&run_id, "loss", 10, Some("x"))
        .await
        .is_err());
    assert!(matches!(
        reg.metric_history("nope", "loss", 10, None).await,
        Err(RegistryError::RunNotFound(_))
    ));

    reg.delete_run_tag(&run_id, "stage")
        .await
        .expect("delete tag");
    assert!(matches!(
        reg.delete_run_tag(&run_id, "stage").await,
        Err(RegistryError::TagNotFound { .. })
    ));
    let ended = reg
        .update_run(
            &run_id,
            &RunUpdate {
                status: Some(RunStatus::Finished),
                end_time: Some(10_000),
                run_name: Some("final".into()),
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (ended.status, ended.end_time, ended.run_name.as_str()),
        (RunStatus::Finished, Some(10_000), "final")
    );
    assert_eq!(
        reg.run(&run_id).await.expect("run").tags[RUN_NAME_TAG],
        "final"
    );
    reg.delete_run(&run_id).await.expect("delete");
    assert!(
        reg.log_batch(&run_id, &[], &[], &pairs(&[("a", "b")]))
            .await
            .is_err(),
        "deleted runs take nothing"
    );
    reg.restore_run(&run_id).await.expect("restore");
    assert!(matches!(
        reg.delete_run("nope").await,
        Err(RegistryError::RunNotFound(_))
    ));
}

pub(crate) async fn logged_models_are_created_pending_and_finalized(reg: Registry, _url: String) {
    use ferroserve_registry::tracking::{NewLoggedModel, LOGGED_MODEL_PENDING, LOGGED_MODEL_READY};
    let id = reg
        .create_experiment("models", None, &BTreeMap::new())
        .await
        .expect("experiment");
    let run = reg
        .create_run(&NewRun {
            experiment_id: id,
            ..NewRun::default()
        })
        .await
        .expect("run");
    let created = reg
        .create_logged_model(&NewLoggedModel {
            experiment_id: id,
            name: Some("iris".into()),
            source_run_id: Some(run.info.run_id.clone()),
            model_type: None,
            tags: BTreeMap::from([("flavor".to_owned(), "onnx".to_owned())]),
            params: BTreeMap::from([("alpha".to_owned(), "0.5".to_owned())]),
        })
        .await
        .expect("create");
    assert!(created.model_id.starts_with("m-"), "{}", created.model_id);
    assert_eq!(created.status, LOGGED_MODEL_PENDING);
    assert_eq!(
        created.artifact_uri,
        format!(
            "mlflow-artifacts:/{id}/models/{}/artifacts",
            created.model_id
        )
    );
    assert_eq!(created.params["alpha"], "0.5");
    let ready = reg
        .finalize_logged_model(&created.model_id, LOGGED_MODEL_READY)
        .await
        .expect("finalize");
    assert_eq!(ready.status, LOGGED_MODEL_READY);
    assert!(reg
        .finalize_logged_model(&created.model_id, "DONE")
        .await
        .is_err());
    reg.set_logged_model_tags(
        &created.model_id,
        &BTreeMap::from([("k".to_owned(), "v".to_owned())]),
    )
    .await
    .expect("tags");
    reg.delete_logged_model_tag(&created.model_id, "flavor")
        .await
        .expect("delete tag");
    let listed = reg.logged_models(&[id]).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].tags,
        BTreeMap::from([("k".to_owned(), "v".to_owned())])
    );
    assert!(matches!(
        reg.create_logged_model(&NewLoggedModel {
            experiment_id: id,
            source_run_id: Some("nope".into()),
            ..NewLoggedModel::default()
        })
        .await,
        Err(RegistryError::RunNotFound(_))
    ));
    reg.delete_logged_model(&created.model_id)
        .await
        .expect("delete");
    assert!(matches!(
        reg.logged_model(&created.model_id).await,
        Err(RegistryError::LoggedModelNotFound(_))
    ));
}
