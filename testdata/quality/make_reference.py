#!/usr/bin/env python3
"""Reference values for ferroserve's online quality metrics (monitor::quality).

Builds a few fixed cases and writes `reference.json` next to this script with
the inputs and the values scikit-learn computes for them, to full float
precision (Python's repr, which round-trips).

Run from the repository root:

    python3 -m pip install --user scikit-learn numpy   # only needed to regenerate
    python3 testdata/quality/make_reference.py

Generated with scikit-learn 1.9.1 and numpy 2.4.6. The Rust tests in
`crates/ferroserve-monitor/src/quality.rs` read the JSON and require
every value within 1e-12 absolute; neither Python nor scikit-learn is needed
to run them.

Definitions mirrored here:

- classification: `accuracy_score(truth, predicted)` and
  `precision_recall_fscore_support(truth, predicted, average="macro",
  zero_division=0)` over the sorted union of labels in both lists (labels
  are strings; the Rust side renders numeric labels the same way first).
- regression: `mean_absolute_error(truth, predicted)` and
  `root_mean_squared_error(truth, predicted)`.
"""

import json
import os

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    root_mean_squared_error,
)


def classification_case(name, truth, predicted):
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="macro", zero_division=0
    )
    return {
        "name": name,
        "truth": list(truth),
        "predicted": list(predicted),
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def regression_case(name, truth, predicted):
    truth = [float(x) for x in truth]
    predicted = [float(x) for x in predicted]
    return {
        "name": name,
        "truth": truth,
        "predicted": predicted,
        "mae": float(mean_absolute_error(truth, predicted)),
        "rmse": float(root_mean_squared_error(truth, predicted)),
    }


def main():
    rng = np.random.default_rng(20240611)

    # A label only ever predicted ("fox": recall 0/0) and one only ever true
    # ("owl": precision 0/0) exercise zero_division=0.
    small_truth = ["cat", "dog", "bird", "cat", "dog", "owl", "cat", "bird", "dog", "cat"]
    small_pred = ["cat", "cat", "bird", "cat", "dog", "dog", "fox", "bird", "bird", "cat"]

    # 200 rows over 5 classes (with "c10" so string order differs from
    # numeric order), ~70 % right, wrong answers spread at random.
    classes = np.array(["c0", "c1", "c2", "c3", "c10"])
    many_truth = rng.choice(classes, size=200, p=[0.4, 0.25, 0.15, 0.15, 0.05])
    wrong = rng.random(200) >= 0.7
    many_pred = np.where(wrong, rng.choice(classes, size=200), many_truth)

    # Integer class ids as the Rust side renders them ("0", "1", "2").
    ids_truth = [str(x) for x in rng.integers(0, 3, size=37)]
    ids_pred = [t if rng.random() < 0.6 else str(rng.integers(0, 3)) for t in ids_truth]

    reg_truth = rng.normal(50.0, 12.0, size=150)
    reg_pred = reg_truth + rng.normal(0.5, 3.0, size=150)

    reference = {
        "generator": "testdata/quality/make_reference.py",
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "classification": [
            classification_case("small_with_unseen_labels", small_truth, small_pred),
            classification_case("five_classes_200", [str(x) for x in many_truth],
                                [str(x) for x in many_pred]),
            classification_case("integer_ids_37", ids_truth, ids_pred),
        ],
        "regression": [
            regression_case("small", [3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]),
            regression_case("normal_150", reg_truth, reg_pred),
        ],
    }

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
