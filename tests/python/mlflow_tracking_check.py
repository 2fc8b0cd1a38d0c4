"""The official MLflow client against ferroserve's MLflow-compatible API.

Usage: mlflow_tracking_check.py BASE_URL TOKEN (sent as MLflow sends
MLFLOW_TRACKING_TOKEN: a bearer token). Logs an experiment's run (params, 1,000 metric steps, tags,
an input dataset, an artifact file) and an ONNX model converted from
scikit-learn, then reads everything back: run search by a metric filter
and order, the metric history exactly, the artifact, the model loaded
through `models:/` predicting scikit-learn's labels, and MLflow's error
codes. Prints OK when every check holds.
"""

import os
import sys
import tempfile

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx


def expect_error(code, call):
    try:
        call()
    except MlflowException as e:
        assert e.error_code == code, f"expected {code}, got {e.error_code}: {e}"
        return
    raise AssertionError(f"expected MlflowException {code}")


def main(base):
    mlflow.set_tracking_uri(base)
    client = MlflowClient()
    experiment = mlflow.set_experiment("iris-tracking")
    expect_error(
        "RESOURCE_ALREADY_EXISTS", lambda: client.create_experiment("iris-tracking")
    )
    client.set_experiment_tag(experiment.experiment_id, "owner", "ana")
    client.set_experiment_tag(experiment.experiment_id, "draft", "yes")
    client.delete_experiment_tag(experiment.experiment_id, "draft")
    tags = client.get_experiment(experiment.experiment_id).tags
    assert tags.get("owner") == "ana" and "draft" not in tags, tags

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    losses = [1.0 / (step + 1) for step in range(1000)]
    notes = os.path.join(tempfile.mkdtemp(), "notes.txt")
    with open(notes, "w") as f:
        f.write("trained on iris\n")

    with mlflow.start_run(run_name="logistic") as run:
        mlflow.log_params({"C": 1.0, "max_iter": 500})
        for step, loss in enumerate(losses):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("accuracy", 0.97)
        mlflow.set_tags({"team": "fraud", "stage": "dev"})
        dataset = mlflow.data.from_numpy(X, targets=y, name="iris")
        mlflow.log_input(dataset, context="training")
        mlflow.log_artifact(notes)
        clf = LogisticRegression(max_iter=500).fit(X, y)
        onx = to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}})
        logged = mlflow.onnx.log_model(onx, name="model")
    with mlflow.start_run(run_name="worse"):
        mlflow.log_metric("loss", 0.5)
        mlflow.log_metric("accuracy", 0.6)

    # The run as logged.
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED", got.info.status
    assert got.info.run_name == "logistic", got.info.run_name
    assert got.data.params == {"C": "1.0", "max_iter": "500"}, got.data.params
    assert got.data.tags["team"] == "fraud", got.data.tags
    assert got.data.metrics["loss"] == losses[-1], got.data.metrics
    inputs = got.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["iris"], inputs
    assert inputs[0].dataset.digest == dataset.digest
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"

    # The metric history, exactly.
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(1000))
    assert [m.value for m in history] == losses

    # Search by a metric filter and order.
    found = client.search_runs(
        [experiment.experiment_id], "metrics.accuracy > 0.5", order_by=["metrics.accuracy DESC"]
    )
    assert [r.info.run_name for r in found] == ["logistic", "worse"], found
    found = client.search_runs(
        [experiment.experiment_id], "params.C = '1.0' and tags.team = 'fraud'"
    )
    assert [r.info.run_id for r in found] == [run.info.run_id], found
    page = client.search_runs([experiment.experiment_id], "", max_results=1)
    assert len(page) == 1 and page.token, page
    assert len(client.search_runs([experiment.experiment_id], "", page_token=page.token)) == 1

    # The artifact back.
    listed = [f.path for f in client.list_artifacts(run.info.run_id)]
    assert "notes.txt" in listed, listed
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="notes.txt")
    with open(path) as f:
        assert f.read() == "trained on iris\n"

    # The logged model loads back and predicts scikit-learn's labels.
    model = mlflow.pyfunc.load_model(logged.model_uri)
    labels = model.predict(X)["label"]
    assert (labels == clf.predict(X)).all(), "the loaded model predicts other labels"

    # MLflow's error codes.
    expect_error("RESOURCE_DOES_NOT_EXIST", lambda: client.get_run("0" * 32))
    assert client.get_experiment_by_name("no-such-experiment") is None
    expect_error(
        "INVALID_PARAMETER_VALUE",
        lambda: client.log_param(run.info.run_id, "C", "2.0"),
    )
    print("OK")


if __name__ == "__main__":
    os.environ["MLFLOW_TRACKING_TOKEN"] = sys.argv[2]
    main(sys.argv[1])
