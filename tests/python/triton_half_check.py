"""Check FP16 and BF16 tensors on a running ferroserve with the stock Triton
HTTP client.

Usage:
    scripts/python-env.sh test
    .venv/bin/python tests/python/triton_half_check.py 127.0.0.1:8000

The server must serve testdata/models/scale_fp16.onnx as "scale_fp16" and
testdata/models/scale_bf16.onnx as "scale_bf16" (both y = 2 * x + 0.5).
FP16 goes both as JSON and as binary data; BF16 only as binary data, the
one form tritonclient sends it in over HTTP. Prints OK and exits 0 when
every check passes; otherwise prints what failed and exits 1.
"""

import sys

import ml_dtypes
import numpy as np
import tritonclient.http as httpclient

from triton_client_check import check, main

ROWS = [[1.5, -3.0], [0.1, 1000.0]]


def expected(x: np.ndarray) -> np.ndarray:
    """2 * x + 0.5 in the input's own precision, each step rounded."""
    return ((x * x.dtype.type(2)).astype(x.dtype) + x.dtype.type(0.5)).astype(x.dtype)


def infer(client, model: str, x: np.ndarray, datatype: str, binary: bool) -> np.ndarray:
    inp = httpclient.InferInput("x", list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("y", binary_data=binary)
    result = client.infer(model, [inp], outputs=[out])
    y = result.as_numpy("y")
    check(y is not None, f"[{model}] response has no output 'y'")
    return y


def check_fp16(client) -> None:
    meta = client.get_model_metadata("scale_fp16")
    check(meta["inputs"][0]["datatype"] == "FP16", f"scale_fp16 metadata: {meta!r}")
    x = np.array(ROWS, dtype=np.float16)
    for binary in (False, True):
        y = infer(client, "scale_fp16", x, "FP16", binary)
        check(y.dtype == np.float16, f"[fp16 binary={binary}] output dtype is {y.dtype}")
        check(
            np.array_equal(y, expected(x)),
            f"[fp16 binary={binary}] output is {y.tolist()}, expected {expected(x).tolist()}",
        )


def check_bf16(client) -> None:
    meta = client.get_model_metadata("scale_bf16")
    check(meta["inputs"][0]["datatype"] == "BF16", f"scale_bf16 metadata: {meta!r}")
    x = np.array(ROWS, dtype=ml_dtypes.bfloat16)
    y = infer(client, "scale_bf16", x, "BF16", binary=True)
    # The model computes in FP32 between Casts: one rounding at the end.
    want = (x.astype(np.float32) * 2 + 0.5).astype(ml_dtypes.bfloat16)
    check(
        np.array_equal(np.asarray(y, dtype=np.float32), want.astype(np.float32)),
        f"[bf16] output is {np.asarray(y).tolist()}, expected {want.tolist()}",
    )


def all_checks(client) -> None:
    check_fp16(client)
    check_bf16(client)


if __name__ == "__main__":
    sys.exit(main(sys.argv, all_checks))
