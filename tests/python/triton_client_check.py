"""Check a running ferroserve with the stock Triton HTTP client (KServe v2).

Usage:
    scripts/python-env.sh test
    .venv/bin/python tests/python/triton_client_check.py 127.0.0.1:8000

The server must be serving the iris example model under the name "iris"
(examples/iris/model.onnx). Prints OK and exits 0 when every check passes;
otherwise prints what failed and exits 1.
"""

import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

MODEL = "iris"
CLASSIC_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]
EXPECTED_LABELS = [0, 1, 2]


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def check_health(client: httpclient.InferenceServerClient) -> None:
    check(client.is_server_live(), "is_server_live() returned False")
    check(client.is_server_ready(), "is_server_ready() returned False")
    check(client.is_model_ready(MODEL), f"is_model_ready({MODEL!r}) returned False")


def check_metadata(client: httpclient.InferenceServerClient) -> None:
    meta = client.get_model_metadata(MODEL)
    check(isinstance(meta, dict), f"model metadata is not a JSON object: {meta!r}")
    inputs = {t["name"]: t for t in meta.get("inputs", [])}
    outputs = {t["name"]: t for t in meta.get("outputs", [])}
    check("input" in inputs, f"metadata has no input named 'input': {meta!r}")
    check(
        inputs["input"].get("datatype") == "FP32",
        f"input 'input' datatype is {inputs['input'].get('datatype')!r}, expected 'FP32'",
    )
    for name in ("label", "probabilities"):
        check(name in outputs, f"metadata has no output named {name!r}: {meta!r}")


def infer(
    client: httpclient.InferenceServerClient, binary: bool, request_id: str = ""
) -> httpclient.InferResult:
    batch = np.array(CLASSIC_ROWS, dtype=np.float32)
    inp = httpclient.InferInput("input", list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=binary),
        httpclient.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    return client.infer(MODEL, [inp], outputs=outputs, request_id=request_id)


def check_result(result: httpclient.InferResult, mode: str) -> None:
    labels = result.as_numpy("label")
    probs = result.as_numpy("probabilities")
    check(labels is not None, f"[{mode}] response has no 'label' output")
    check(probs is not None, f"[{mode}] response has no 'probabilities' output")
    check(
        labels.reshape(-1).tolist() == EXPECTED_LABELS,
        f"[{mode}] labels are {labels.tolist()}, expected {EXPECTED_LABELS}",
    )
    check(probs.shape == (3, 3), f"[{mode}] probabilities shape is {probs.shape}, expected (3, 3)")
    sums = probs.astype(np.float64).sum(axis=1)
    check(
        np.allclose(sums, 1.0, atol=1e-4),
        f"[{mode}] probability rows do not sum to 1: {sums.tolist()}",
    )


def run_checks(client, checks) -> int:
    """Runs `checks(client)`; prints OK and returns 0 when it passes, else
    prints what failed and returns 1. Closes the client either way."""
    try:
        checks(client)
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except InferenceServerException as e:
        print(f"FAIL: server returned an error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # connection or handshake refused, malformed response, ...
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print("OK")
    return 0


def all_checks(client) -> None:
    check_health(client)
    check_metadata(client)
    for binary in (False, True):
        mode = "binary" if binary else "json"
        check_result(infer(client, binary), mode)
    result = infer(client, binary=False, request_id="abc")
    check_result(result, "request_id")
    response_id = result.get_response().get("id")
    check(response_id == "abc", f"response id is {response_id!r}, expected 'abc'")


def main(argv: list[str], checks=all_checks) -> int:
    """Runs `checks` against the server at argv[1] (HOST:PORT)."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    return run_checks(httpclient.InferenceServerClient(url=argv[1]), checks)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
