"""The official MLflow client registering a model into ferroserve.

Usage: mlflow_registry_check.py BASE_URL TOKEN. Logs an ONNX model
converted from scikit-learn with registered_model_name="iris-mlflow",
points the alias champion at version 1, then checks that ferroserve
serves it (KServe v2 inference gives scikit-learn's labels), that MLflow
loads it back through the alias, that stage transitions and searches see
ferroserve's registry, that a model without an ONNX flavor is registered
as not servable, that a DataFrame input example names the features (v1
`:predict` takes them by name) while a signature that contradicts the
ONNX file is refused, that a rename serves under the new name, and
MLflow's error codes. Prints OK.
"""

import os
import sys

import mlflow
import numpy as np
import pandas as pd
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx


class Constant(mlflow.pyfunc.PythonModel):
    """A Python model: no ONNX flavor."""

    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


def main(base, token):
    mlflow.set_tracking_uri(base)
    client = MlflowClient()
    mlflow.set_experiment("iris-registry")
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    onx = to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}})
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 1.0})
        mlflow.log_metric("accuracy", 0.97)
        mlflow.onnx.log_model(onx, name="model", registered_model_name="iris-mlflow")
    client.set_registered_model_alias("iris-mlflow", "champion", 1)

    version = client.get_model_version_by_alias("iris-mlflow", "champion")
    assert version.version == "1" and version.status == "READY", version
    assert version.run_id == run.info.run_id, version

    # ferroserve serves it.
    answer = requests.post(
        f"{base}/v2/models/iris-mlflow/infer",
        headers={"authorization": f"Bearer {token}"},
        json={"inputs": [{"name": "X", "shape": list(X.shape), "datatype": "FP32",
                          "data": X.flatten().tolist()}]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["label"]["data"] == clf.predict(X).tolist(), "ferroserve answers other labels"

    # MLflow loads it back through the alias.
    model = mlflow.pyfunc.load_model("models:/iris-mlflow@champion")
    assert (model.predict(X)["label"] == clf.predict(X)).all()

    # Stages and searches are ferroserve's registry.
    moved = client.transition_model_version_stage(
        "iris-mlflow", "1", "Production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production", moved
    names = [m.name for m in client.search_registered_models()]
    # from-cli was registered with ferroserve's CLI.
    assert "iris-mlflow" in names and "from-cli" in names, names
    found = client.search_model_versions("name = 'iris-mlflow'")
    assert [v.version for v in found] == ["1"], found
    latest = client.get_latest_versions("iris-mlflow", stages=["Production"])
    assert [v.version for v in latest] == ["1"], latest

    # A model without an ONNX flavor is registered, marked not servable.
    with mlflow.start_run():
        try:
            mlflow.pyfunc.log_model(
                name="plain", python_model=Constant(), registered_model_name="iris-python"
            )
        except MlflowException:
            pass  # the client reports the failed registration
    failed = client.get_model_version("iris-python", "1")
    assert failed.status == "FAILED_REGISTRATION", failed
    assert "no ONNX flavor" in failed.status_message, failed.status_message

    check_signatures_and_rename(base, token, client, clf, X)

    # MLflow's error codes.
    try:
        client.get_registered_model("no-such-model")
        raise AssertionError("a missing model was found")
    except MlflowException as e:
        assert e.error_code == "RESOURCE_DOES_NOT_EXIST", e.error_code
    print("OK")


def check_signatures_and_rename(base, token, client, clf, X):
    """The feature names of an input example, a contradicting signature
    refused, and a rename that serves under the new name."""
    auth = {"authorization": f"Bearer {token}"}
    names = list(load_iris().feature_names)
    onx = to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}})
    frame = pd.DataFrame(X[:5], columns=names)
    with mlflow.start_run():
        mlflow.onnx.log_model(
            onx, name="model", input_example=frame, registered_model_name="iris-named"
        )
    version = requests.get(f"{base}/api/v1/models/iris-named/versions/1", headers=auth,
                           timeout=30).json()
    features = [f["name"] for f in version["feature_schema"]["features"]]
    assert features == names, features
    rows = [dict(zip(names, map(float, row))) for row in X[:10]]
    answer = requests.post(f"{base}/v1/models/iris-named:predict", headers=auth,
                           json={"instances": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    labels = [p["label"] for p in answer.json()["predictions"]]
    assert labels == clf.predict(X[:10]).tolist(), labels

    # A signature of three columns for a model of four is refused.
    with mlflow.start_run():
        try:
            mlflow.onnx.log_model(
                onx, name="model", signature=infer_signature(X[:, :3]),
                registered_model_name="iris-wrong",
            )
            raise AssertionError("a signature that contradicts the ONNX file was taken")
        except MlflowException as e:
            assert e.error_code == "INVALID_PARAMETER_VALUE", e.error_code
            assert "has [-1, 4]" in e.message, e.message

    # A rename serves under the new name; the old one serves nothing.
    client.rename_registered_model("iris-named", "iris-renamed")
    assert client.get_registered_model("iris-renamed").latest_versions[0].version == "1"
    assert client.get_model_version("iris-renamed", "1").status == "READY"
    answer = requests.post(f"{base}/v1/models/iris-renamed:predict", headers=auth,
                           json={"instances": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    gone = requests.post(f"{base}/v1/models/iris-named:predict", headers=auth,
                         json={"instances": rows}, timeout=30)
    assert gone.status_code == 404, gone.text
    try:
        client.rename_registered_model("iris-renamed", "from-cli")
        raise AssertionError("a rename onto a taken name was done")
    except MlflowException as e:
        assert e.error_code == "RESOURCE_ALREADY_EXISTS", e.error_code


if __name__ == "__main__":
    os.environ["MLFLOW_TRACKING_TOKEN"] = sys.argv[2]
    main(sys.argv[1], sys.argv[2])
