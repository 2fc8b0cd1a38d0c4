"""Generate the small ONNX test models and their reference outputs.

Writes testdata/models/<stem>.onnx and testdata/reference/<stem>.json.
Everything uses fixed seeds, so reruns with the pinned versions in
requirements/dev.txt produce identical files.

    scripts/python-env.sh dev && .venv/bin/python testdata/make_models.py

Reference file format (KServe v2 datatype names):

    {"model": "<stem>.onnx",
     "inputs":  [{"name", "datatype", "shape", "data": [flat row-major]}],
     "outputs": [{"name", "datatype", "shape", "data": [flat row-major]}]}

Outputs that are not plain tensors carry an extra "onnx_type" field
describing the real ONNX type (see the ZipMap model).
"""

import json
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
import skl2onnx.common.tree_ensemble as skl2onnx_tree_ensemble
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
REFERENCE = HERE / "reference"

OPSET = 17
ML_OPSET = 3
IR_VERSION = 8  # the IR version that goes with opset 17
SKL_OPSETS = {"": OPSET, "ai.onnx.ml": ML_OPSET}

KSERVE_DATATYPE = {
    np.dtype(np.float16): "FP16",
    np.dtype(ml_dtypes.bfloat16): "BF16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32",
    np.dtype(np.bool_): "BOOL",
}


# --------------------------------------------------------------------------
# helpers


def _patch_skl2onnx_hist_gradient_boosting() -> None:
    """Work around a skl2onnx 1.20 bug converting HistGradientBoosting models.

    For leaf nodes it passes a Python bool as nodes_missing_value_tracks_true,
    and current protobuf rejects bools in an INTS attribute ("Expected an int,
    got a boolean"). Cast the value to int before the node is recorded; the
    resulting model is the same as what skl2onnx intends to emit.
    """
    original = skl2onnx_tree_ensemble.add_node
    if getattr(original, "_ferroserve_patched", False):
        return

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(
            *args,
            nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true),
            **kwargs,
        )

    add_node._ferroserve_patched = True
    skl2onnx_tree_ensemble.add_node = add_node


def tidy(model: onnx.ModelProto, doc: str) -> onnx.ModelProto:
    """One opset_import entry per domain, a doc string, and a checker pass."""
    versions: dict[str, int] = {}
    for op in model.opset_import:
        versions[op.domain] = max(op.version, versions.get(op.domain, 0))
    del model.opset_import[:]
    model.opset_import.extend(
        helper.make_opsetid(d, v) for d, v in sorted(versions.items())
    )
    model.doc_string = doc
    onnx.checker.check_model(model, full_check=True)
    return model


def make_model(graph: onnx.GraphProto, doc: str, ml: bool = False) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="ferroserve-testdata"
    )
    model.ir_version = IR_VERSION
    return tidy(model, doc)


def init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name=name)


def tensor_json(name: str, value) -> dict:
    if isinstance(value, np.ndarray) and value.dtype.kind in ("U", "S", "O"):
        data = [v.decode() if isinstance(v, bytes) else str(v) for v in value.ravel()]
        return {"name": name, "datatype": "BYTES", "shape": list(value.shape), "data": data}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # seq(map(int64, float)) from ZipMap: [N, n_classes], ascending keys.
        keys = sorted(value[0].keys())
        table = np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
        return {
            "name": name,
            "datatype": "FP32",
            "shape": list(table.shape),
            "data": [float(v) for v in table.ravel()],
            "onnx_type": "seq(map(int64,float))",
        }
    value = np.asarray(value)
    datatype = KSERVE_DATATYPE[value.dtype]
    if datatype == "BOOL":
        data = [bool(v) for v in value.ravel()]
    elif datatype in ("FP16", "BF16", "FP32", "FP64"):
        data = [float(v) for v in value.ravel()]
    else:
        data = [int(v) for v in value.ravel()]
    return {"name": name, "datatype": datatype, "shape": list(value.shape), "data": data}


def save(stem: str, model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> None:
    path = MODELS / f"{stem}.onnx"
    path.write_bytes(model.SerializeToString())

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    output_names = [o.name for o in sess.get_outputs()]
    if any(v.dtype == ml_dtypes.bfloat16 for v in inputs.values()):
        results = run_bf16(model, output_names, inputs)
    else:
        results = sess.run(output_names, inputs)

    reference = {
        "model": f"{stem}.onnx",
        "inputs": [tensor_json(i.name, inputs[i.name]) for i in sess.get_inputs()],
        "outputs": [tensor_json(n, r) for n, r in zip(output_names, results)],
    }
    (REFERENCE / f"{stem}.json").write_text(json.dumps(reference, indent=1) + "\n")
    outs = ", ".join(f"{o['name']}:{o['datatype']}{o['shape']}" for o in reference["outputs"])
    print(f"{stem}.onnx ({path.stat().st_size} bytes) -> {outs}")


def run_bf16(
    model: onnx.ModelProto, output_names: list[str], inputs: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Runs a model with BF16 tensors in ONNX Runtime.

    onnxruntime's Python API has no numpy type for bfloat16: inputs go in as
    OrtValues built from their bits, and each BF16 output is read through an
    extra Cast to FLOAT added to a copy of the model (exact: every BF16 value
    is an FP32 value).
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    read_names = []
    for output in list(graph.output):
        if output.type.tensor_type.elem_type != TensorProto.BFLOAT16:
            read_names.append(output.name)
            continue
        wide = f"{output.name}__as_float"
        graph.node.append(helper.make_node("Cast", [output.name], [wide], to=TensorProto.FLOAT))
        graph.output.append(helper.make_tensor_value_info(wide, TensorProto.FLOAT, None))
        read_names.append(wide)
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for name, value in inputs.items():
        if value.dtype == ml_dtypes.bfloat16:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                value.view(np.uint16), onnx_element_type=TensorProto.BFLOAT16
            )
        else:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy(value)
    values = sess.run_with_ort_values(read_names, feeds)
    results = []
    for name, value in zip(output_names, values):
        array = value.numpy()
        wide = name not in read_names
        results.append(array.astype(ml_dtypes.bfloat16) if wide else array)
    return results


def sample_rows(X: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return X[rng.choice(len(X), size=n, replace=False)].astype(np.float32)


# --------------------------------------------------------------------------
# scikit-learn models


def sklearn_models() -> None:
    Xc, yc = make_classification(
        n_samples=300,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        random_state=0,
    )
    Xc = Xc.astype(np.float32)
    c_type = [("input", FloatTensorType([None, 4]))]
    rf = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(Xc, yc)
    lr = LogisticRegression(max_iter=1000).fit(Xc, yc)

    # One row per class (that both classifiers agree on), so the reference
    # batch exercises every label.
    rng = np.random.default_rng(1)
    agree = (rf.predict(Xc) == yc) & (lr.predict(Xc) == yc)
    xc = np.stack([Xc[rng.choice(np.flatnonzero(agree & (yc == k)))] for k in range(3)])

    onx = to_onnx(rf, initial_types=c_type, options={id(rf): {"zipmap": False}},
                  target_opset=SKL_OPSETS)
    save("rf_classifier", tidy(onx, "RandomForestClassifier, 3 classes, no ZipMap"),
         {"input": xc})

    onx = to_onnx(rf, initial_types=c_type, target_opset=SKL_OPSETS)
    save("rf_classifier_zipmap",
         tidy(onx, "RandomForestClassifier, 3 classes, ZipMap probabilities"),
         {"input": xc})

    onx = to_onnx(lr, initial_types=c_type, options={id(lr): {"zipmap": False}},
                  target_opset=SKL_OPSETS)
    save("logreg", tidy(onx, "LogisticRegression, 3 classes, no ZipMap"), {"input": xc})

    Xr, yr = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    Xr = Xr.astype(np.float32)
    xr = sample_rows(Xr, 3, seed=2)
    r_type = [("input", FloatTensorType([None, 5]))]

    gbr = GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0).fit(Xr, yr)
    onx = to_onnx(gbr, initial_types=r_type, target_opset=SKL_OPSETS)
    save("gbr", tidy(onx, "GradientBoostingRegressor, 5 features"), {"input": xr})

    hgbr = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(Xr, yr)
    onx = to_onnx(hgbr, initial_types=r_type, target_opset=SKL_OPSETS)
    save("hgbr", tidy(onx, "HistGradientBoostingRegressor, 5 features"), {"input": xr})


# --------------------------------------------------------------------------
# hand-built models


def he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def small_bias(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.standard_normal(n) * 0.01).astype(np.float32)


def mlp() -> None:
    rng = np.random.default_rng(0)
    dims = [256, 1024, 1024, 10]
    nodes, inits = [], []
    x = "input"
    for i, (fin, fout) in enumerate(zip(dims, dims[1:])):
        inits += [init(f"W{i}", he(rng, (fin, fout), fin)), init(f"B{i}", small_bias(rng, fout))]
        last = i == len(dims) - 2
        y = "output" if last else f"gemm{i}"
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"B{i}"], [y], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"relu{i}"], name=f"relu{i}"))
            x = f"relu{i}"
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 256])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = make_model(graph, "MLP 256-1024-1024-10 with ReLU (random weights)")
    x = np.random.default_rng(100).standard_normal((3, 256)).astype(np.float32)
    save("mlp", model, {"input": x})


def cnn() -> None:
    rng = np.random.default_rng(0)
    inits = [
        init("conv1_w", he(rng, (8, 1, 3, 3), 1 * 9)),
        init("conv1_b", small_bias(rng, 8)),
        init("conv2_w", he(rng, (16, 8, 3, 3), 8 * 9)),
        init("conv2_b", small_bias(rng, 16)),
        init("fc_w", he(rng, (16 * 7 * 7, 10), 16 * 7 * 7)),
        init("fc_b", small_bias(rng, 10)),
    ]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        helper.make_node("Conv", ["input", "conv1_w", "conv1_b"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", **pool),
        helper.make_node("Conv", ["p1", "conv2_w", "conv2_b"], ["c2"], name="conv2", **conv),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", **pool),
        helper.make_node("Flatten", ["p2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["output"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = make_model(graph, "Small CNN for 1x28x28 images (random weights)")
    x = np.random.default_rng(101).uniform(0.0, 1.0, (2, 1, 28, 28)).astype(np.float32)
    save("cnn", model, {"input": x})


def mlp_fixed() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["mm"], name="matmul"),
            helper.make_node("Add", ["mm", "B"], ["output"], name="add"),
        ],
        "mlp_fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])],
        [init("W", w), init("B", b)],
    )
    model = make_model(graph, "Linear layer with a fixed batch dimension of 1")
    x = np.random.default_rng(102).standard_normal((1, 4)).astype(np.float32)
    save("mlp_fixed", model, {"input": x})


def add_int64() -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"], name="add"),
            helper.make_node("Greater", ["sum", "zero"], ["is_pos"], name="greater"),
        ],
        "add_int64",
        [
            helper.make_tensor_value_info("a", TensorProto.INT64, ["N", 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["N", 3]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.INT64, ["N", 3]),
            helper.make_tensor_value_info("is_pos", TensorProto.BOOL, ["N", 3]),
        ],
        [init("zero", np.array(0, dtype=np.int64))],
    )
    model = make_model(graph, "INT64 addition plus a BOOL comparison output")
    rng = np.random.default_rng(103)
    a = rng.integers(-10, 10, (3, 3), dtype=np.int64)
    b = rng.integers(-10, 10, (3, 3), dtype=np.int64)
    save("add_int64", model, {"a": a, "b": b})


def scale_f64() -> None:
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["y"], name="mul")],
        "scale_f64",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2])],
        [init("scale", np.array(2.5, dtype=np.float64))],
    )
    model = make_model(graph, "FP64 multiply by 2.5")
    x = np.random.default_rng(104).normal(0.0, 10.0, (3, 2))
    save("scale_f64", model, {"x": x})


def scale_half(stem: str, elem_type: int, compute: np.dtype, nodes: list) -> onnx.GraphProto:
    """y = x * scale + offset on [N, 2] tensors of `elem_type`; `nodes` turn
    x into y through the initializers `scale` (2) and `offset` (0.5), both
    of the `compute` type."""
    return helper.make_graph(
        nodes,
        stem,
        [helper.make_tensor_value_info("x", elem_type, ["N", 2])],
        [helper.make_tensor_value_info("y", elem_type, ["N", 2])],
        [
            init("scale", np.array(2.0, dtype=compute)),
            init("offset", np.array(0.5, dtype=compute)),
        ],
    )


def scale_fp16() -> None:
    graph = scale_half(
        "scale_fp16",
        TensorProto.FLOAT16,
        np.float16,
        [
            helper.make_node("Mul", ["x", "scale"], ["scaled"], name="mul"),
            helper.make_node("Add", ["scaled", "offset"], ["y"], name="add"),
        ],
    )
    model = make_model(graph, "FP16 y = 2 * x + 0.5, computed in half precision")
    x = np.random.default_rng(105).normal(0.0, 10.0, (3, 2)).astype(np.float16)
    save("scale_fp16", model, {"x": x})


def scale_bf16() -> None:
    # ONNX Runtime's CPU provider has no bfloat16 arithmetic kernels, only
    # Cast: widen to FP32, compute, narrow back (as mixed-precision graphs do).
    graph = scale_half(
        "scale_bf16",
        TensorProto.BFLOAT16,
        np.float32,
        [
            helper.make_node("Cast", ["x"], ["wide"], name="widen", to=TensorProto.FLOAT),
            helper.make_node("Mul", ["wide", "scale"], ["scaled"], name="mul"),
            helper.make_node("Add", ["scaled", "offset"], ["sum"], name="add"),
            helper.make_node("Cast", ["sum"], ["y"], name="narrow", to=TensorProto.BFLOAT16),
        ],
    )
    model = make_model(graph, "BF16 y = 2 * x + 0.5, computed in FP32 between Casts")
    x = np.random.default_rng(106).normal(0.0, 10.0, (3, 2))
    x[2, 1] = 1e6  # past FP16's range, well inside BF16's
    x = x.astype(ml_dtypes.bfloat16)
    save("scale_bf16", model, {"x": x})


def string_label() -> None:
    graph = helper.make_graph(
        [
            helper.make_node(
                "LabelEncoder", ["text"], ["id"], name="label_encoder",
                domain="ai.onnx.ml",
                keys_strings=["cat", "dog", "bird"],
                values_int64s=[0, 1, 2],
                default_int64=-1,
            )
        ],
        "string_label",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N", 1])],
        [helper.make_tensor_value_info("id", TensorProto.INT64, ["N", 1])],
    )
    model = make_model(graph, "STRING -> INT64 lookup (cat=0, dog=1, bird=2, else -1)", ml=True)
    x = np.array([["cat"], ["bird"], ["fish"]], dtype=object)
    save("string_label", model, {"text": x})


def main() -> None:
    _patch_skl2onnx_hist_gradient_boosting()
    MODELS.mkdir(parents=True, exist_ok=True)
    REFERENCE.mkdir(parents=True, exist_ok=True)
    sklearn_models()
    mlp()
    cnn()
    mlp_fixed()
    add_int64()
    scale_f64()
    scale_fp16()
    scale_bf16()
    string_label()


if __name__ == "__main__":
    main()
