"""Train the iris example model and export it to ONNX.

Writes examples/iris/model.onnx and examples/iris/features.json.
Deterministic: fixed random_state, so reruns produce the same model.

    scripts/python-env.sh dev && .venv/bin/python examples/iris/train.py
"""

import json
from pathlib import Path

import numpy as np
from onnx import helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

HERE = Path(__file__).resolve().parent
FEATURE_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSIC_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]


def main() -> None:
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
    (HERE / "model.onnx").write_bytes(onx.SerializeToString())

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
    (HERE / "features.json").write_text(json.dumps(features, indent=2) + "\n")

    # Sanity check with onnxruntime: the three classic rows map to classes 0, 1, 2.
    import onnxruntime as ort

    sess = ort.InferenceSession(
        str(HERE / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    label, proba = sess.run(None, {"input": np.array(CLASSIC_ROWS, dtype=np.float32)})
    assert label.tolist() == [0, 1, 2], f"unexpected labels {label.tolist()}"
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5), proba
    print(f"wrote {HERE / 'model.onnx'} (labels for classic rows: {label.tolist()})")


if __name__ == "__main__":
    main()
