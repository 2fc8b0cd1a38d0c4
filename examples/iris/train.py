"""Train the iris example model and export it to ONNX.

Writes examples/iris/model.onnx, examples/iris/features.json and the
training rows as examples/iris/iris.csv (the sample that
examples/iris/profile.json is built from with `ferroserve profile`).
Deterministic: fixed random_state, so reruns produce the same files; a
file whose bytes would not change is left untouched (so its modification
time does not change either, and the `ferroserve` binary, which bundles
model.onnx, is not rebuilt for nothing).

    scripts/python-env.sh dev && .venv/bin/python examples/iris/train.py

With --register URL (and only then: FERROSERVE_URL is not read), the
model is then registered
as a new version in a running ferroserve through its management API, with
its hyper-parameters, held-out metrics, lineage (training data written to
a CSV file, git commit, run id), feature schema, reference profile
(examples/iris/profile.json, when present) and a generated model card:

    .venv/bin/python examples/iris/train.py --register http://127.0.0.1:8080 --stage Production

Only the standard library talks to the server (urllib).
"""

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from onnx import helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import cross_val_score, train_test_split

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FEATURE_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSIC_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]
# Share of the rows held out to measure the metrics that are registered.
TEST_SIZE = 0.2


def main() -> None:
    args = parse_args()
    iris = load_iris()
    X = iris.data.astype(np.float32)
    y = iris.target

    clf = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    clf.fit(X, y)

    onx = to_onnx(
        clf,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx may list the default domain twice in opset_import; keep one
    # entry per domain (highest version) so the model is tidy for any loader.
    versions: dict[str, int] = {}
    for op in onx.opset_import:
        versions[op.domain] = max(op.version, versions.get(op.domain, 0))
    del onx.opset_import[:]
    onx.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    onx.doc_string = "ferroserve iris example: RandomForestClassifier on the iris dataset"
    write_if_changed(HERE / "model.onnx", onx.SerializeToString())

    features = {
        "features": [
            {
                "name": name,
                "datatype": "FP32",
                "min": round(float(X[:, i].min()), 6),
                "max": round(float(X[:, i].max()), 6),
            }
            for i, name in enumerate(FEATURE_NAMES)
        ],
        "classes": [str(c) for c in iris.target_names],
    }
    write_if_changed(HERE / "features.json", (json.dumps(features, indent=2) + "\n").encode())
    write_training_csv(HERE / "iris.csv", iris)

    # Sanity check with onnxruntime: the three classic rows map to classes 0, 1, 2.
    import onnxruntime as ort

    sess = ort.InferenceSession(
        str(HERE / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    label, proba = sess.run(None, {"input": np.array(CLASSIC_ROWS, dtype=np.float32)})
    assert label.tolist() == [0, 1, 2], f"unexpected labels {label.tolist()}"
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5), proba
    print(f"wrote {HERE / 'model.onnx'} (labels for classic rows: {label.tolist()})")

    if args.register:
        register(args, iris, X, y, clf, features)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--register",
        metavar="URL",
        help="register the model with the ferroserve at this base URL "
        "(e.g. http://127.0.0.1:8080) [default: do not register; FERROSERVE_URL is not read]",
    )
    parser.add_argument("--name", default="iris", help="registered model name [default: iris]")
    parser.add_argument(
        "--stage",
        choices=["None", "Staging", "Production"],
        help="stage to move the new version to (others there are archived)",
    )
    parser.add_argument(
        "--data-out",
        type=Path,
        default=REPO / "data" / "training" / "iris.csv",
        help="where to write the training data recorded in the lineage [default: data/training/iris.csv]",
    )
    parser.add_argument(
        "--api-key",
        default=default_api_key(),
        help="API key with role deployer or admin (the audit log records its name) "
        "[default: $FERROSERVE_API_KEY, else the admin key in $FERROSERVE_DATA_DIR/admin.key "
        "or data/admin.key]",
    )
    return parser.parse_args()


def register(args: argparse.Namespace, iris, X, y, clf, features: dict) -> None:
    """Registers model.onnx as a new version of args.name at args.register."""
    data_path = write_training_csv(args.data_out, iris)
    data_sha256 = sha256_file(data_path)
    metrics = evaluate(clf, X, y)
    params = {k: str(v) for k, v in sorted(clf.get_params().items())}
    run_id = uuid.uuid4().hex
    lineage = {
        "data_uri": data_path.resolve().as_uri(),
        "data_sha256": data_sha256,
        "code_commit": git_commit(),
        "run_id": run_id,
    }
    card = model_card(args.name, clf, metrics, lineage, len(y))
    profile = reference_profile()

    base = args.register.rstrip("/")
    model_path = HERE / "model.onnx"
    model_sha256 = sha256_file(model_path)
    with model_path.open("rb") as body:
        artifact = call(
            "POST",
            f"{base}/api/v1/artifacts?sha256={model_sha256}",
            args.api_key,
            body,
            {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(model_path.stat().st_size),
            },
        )
    request = {
        "artifact_sha256": artifact["sha256"],
        "description": "Iris species classifier (scikit-learn random forest, ONNX)",
        "feature_schema": features,
        "params": params,
        "metrics": metrics,
        "lineage": lineage,
        "model_card": card,
        "tags": {"source": "examples/iris/train.py"},
    }
    if profile is not None:
        request["reference_profile"] = profile
    if args.stage:
        request["stage"] = args.stage
    answer = call(
        "POST",
        f"{base}/api/v1/models/{urllib.parse.quote(args.name, safe='')}/versions",
        args.api_key,
        json.dumps(request).encode(),
        {"Content-Type": "application/json"},
    )
    version = answer["version"]
    print(
        f"registered {args.name} version {version['version']} "
        f"(stage {version['stage']}, run {run_id}) at {base}"
    )
    print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    serving = answer.get("serving") or {}
    served = serving.get("serving_version")
    if args.stage == "Production" and served != str(version["version"]):
        print(
            f"warning: the server serves version {served}, not {version['version']}",
            file=sys.stderr,
        )
        for failure in serving.get("failures", []):
            print(f"  version {failure['version']}: {failure['reason']}", file=sys.stderr)


def evaluate(clf: RandomForestClassifier, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics of the exported model's hyper-parameters on rows it did not
    see: a copy is fitted on a stratified 80% split and scored on the other
    20%, plus 5-fold cross-validated accuracy. The exported model itself is
    fitted on all rows, so it is not touched here."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=0
    )
    held_out = clone(clf).fit(X_train, y_train)
    predicted = held_out.predict(X_test)
    cv = cross_val_score(clone(clf), X, y, cv=5, scoring="accuracy")
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
        "cv_accuracy_mean": float(cv.mean()),
        "cv_accuracy_std": float(cv.std()),
    }


def write_if_changed(path: Path, data: bytes) -> bool:
    """Writes data to path unless the file already holds exactly these
    bytes; returns whether it wrote."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def write_training_csv(path: Path, iris) -> Path:
    """Writes the training rows: the features in cm and `species`, the class
    index (0 = setosa, 1 = versicolor, 2 = virginica, as in features.json).
    The same bytes go to examples/iris/iris.csv and to --data-out."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FEATURE_NAMES + ["species"])
    for row, target in zip(iris.data, iris.target):
        writer.writerow([repr(float(v)) for v in row] + [int(target)])
    write_if_changed(path, text.getvalue().encode())
    return path


def reference_profile() -> dict | None:
    """The committed reference profile of the training rows (made from
    iris.csv and model.onnx by `ferroserve profile`), or None when absent."""
    path = HERE / "profile.json"
    if not path.is_file():
        print(
            f"note: {path} is missing; registering without a reference profile "
            "(regenerate it with `ferroserve profile`, see README.md)",
            file=sys.stderr,
        )
        return None
    return json.loads(path.read_text())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the code, when the script runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def model_card(name: str, clf, metrics: dict[str, float], lineage: dict, rows: int) -> str:
    params = ", ".join(
        f"{k}={clf.get_params()[k]}" for k in ("n_estimators", "max_depth", "random_state")
    )
    metric_rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    return f"""# {name}

Classifies an iris flower as setosa, versicolor or virginica from four
measurements in centimetres: {", ".join(f"`{n}`" for n in FEATURE_NAMES)}.

## Intended use

A small, fast example model for trying ferroserve: serving, batching,
promotion, rollback and monitoring. Not meant for botanical decisions.

## Training data

The classic iris dataset (Fisher, 1936; as shipped with scikit-learn):
{rows} rows, 50 per species. Written to `{lineage["data_uri"]}`
(sha256 `{lineage["data_sha256"]}`).

## Model

scikit-learn `RandomForestClassifier` ({params}), fitted on all {rows} rows
and exported to ONNX with skl2onnx (input `input` FP32 `[-1, 4]`; outputs
`label` INT64 and `probabilities` FP32 `[-1, 3]`).

## Evaluation

The same hyper-parameters fitted on a stratified {1 - TEST_SIZE:.0%} split and
scored on the held-out {TEST_SIZE:.0%} ({round(rows * TEST_SIZE)} rows); `cv_*` are
5-fold cross-validation over all rows.

| metric | value |
|---|---|
{metric_rows}

## Limitations

- 150 rows from one collection: the held-out estimate is noisy, and
  measurements outside the training ranges (see the feature schema) are
  extrapolation.
- Only the three species above; any other flower is forced into one of them.
- Versicolor and virginica overlap; most errors are between them.
"""


def default_api_key() -> str | None:
    """The key the ferroserve CLI would use: $FERROSERVE_API_KEY, else the
    admin key the server wrote to its data dir."""
    key = os.environ.get("FERROSERVE_API_KEY", "").strip()
    if key:
        return key
    data_dir = Path(os.environ.get("FERROSERVE_DATA_DIR") or REPO / "data")
    try:
        return (data_dir / "admin.key").read_text().strip() or None
    except OSError:
        return None


def call(method: str, url: str, api_key: str | None, body, headers: dict[str, str]) -> dict:
    """Sends one request with the API key and returns the JSON answer;
    exits with the server's error text when it answers an error."""
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(url, data=body, method=method, headers={**auth, **headers})
    try:
        with urllib.request.urlopen(request) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            message = text.strip()[:200]
        sys.exit(f"error: {method} {url} answered {e.code}: {message}")
    except urllib.error.URLError as e:
        sys.exit(f"error: cannot reach {url}: {e.reason}")


if __name__ == "__main__":
    main()
