"""Check a running ferroserve's gRPC front end with the stock Triton gRPC client.

Usage:
    scripts/python-env.sh test
    FERROSERVE_API_KEY=... .venv/bin/python tests/python/triton_grpc_check.py 127.0.0.1:8081

The server must be serving the iris example model under the name "iris"
(examples/iris/model.onnx). The API key, when FERROSERVE_API_KEY is set, goes
on every call as `authorization: Bearer KEY` (the repository calls need an
admin's). Covers what `tritonclient.grpc` users reach for: live/ready, server
and model metadata, model config, statistics, infer with raw and typed
contents, output selection, async infer, a stream of 1,000 requests, the
repository index, unload and load, and the errors of an unknown model or a bad
shape. Prints OK and exits 0 when every check passes; otherwise prints what
failed and exits 1.
"""

import os
import queue
import sys
import time

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from triton_client_check import CheckFailed, check, run_checks

MODEL = "iris"
CLASSIC_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]
EXPECTED_LABELS = [0, 1, 2]
STREAM_REQUESTS = 1000
ASYNC_REQUESTS = 16
# Seconds to wait for answers of async and streamed requests, and for a
# model to change state after a repository call.
WAIT_S = 120.0


def headers() -> dict:
    key = os.environ.get("FERROSERVE_API_KEY")
    return {"authorization": f"Bearer {key}"} if key else {}


def iris_input(rows=CLASSIC_ROWS) -> grpcclient.InferInput:
    batch = np.array(rows, dtype=np.float32)
    inp = grpcclient.InferInput("input", list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch)
    return inp


def check_labels(result: grpcclient.InferResult, mode: str) -> None:
    labels = result.as_numpy("label")
    check(labels is not None, f"[{mode}] response has no 'label' output")
    check(
        labels.reshape(-1).tolist() == EXPECTED_LABELS,
        f"[{mode}] labels are {labels.tolist()}, expected {EXPECTED_LABELS}",
    )


def check_result(result: grpcclient.InferResult, mode: str) -> None:
    check_labels(result, mode)
    probs = result.as_numpy("probabilities")
    check(probs is not None, f"[{mode}] response has no 'probabilities' output")
    probs = probs.reshape(-1, 3) if probs.size == 9 else probs
    check(probs.shape == (3, 3), f"[{mode}] probabilities shape is {probs.shape}, expected (3, 3)")
    sums = probs.astype(np.float64).sum(axis=1)
    check(
        np.allclose(sums, 1.0, atol=1e-4),
        f"[{mode}] probability rows do not sum to 1: {sums.tolist()}",
    )


def check_health(client: grpcclient.InferenceServerClient) -> None:
    h = headers()
    check(client.is_server_live(headers=h), "is_server_live() returned False")
    check(client.is_server_ready(headers=h), "is_server_ready() returned False")
    check(client.is_model_ready(MODEL, headers=h), f"is_model_ready({MODEL!r}) returned False")


def check_metadata(client: grpcclient.InferenceServerClient) -> None:
    server = client.get_server_metadata(headers=headers())
    check(server.name != "", f"server metadata has no name: {server}")
    check(server.version != "", f"server metadata has no version: {server}")
    meta = client.get_model_metadata(MODEL, headers=headers())
    check(meta.name == MODEL, f"model metadata names {meta.name!r}, expected {MODEL!r}")
    inputs = {t.name: t for t in meta.inputs}
    outputs = {t.name: t for t in meta.outputs}
    check("input" in inputs, f"metadata has no input named 'input': {meta}")
    check(
        inputs["input"].datatype == "FP32",
        f"input 'input' datatype is {inputs['input'].datatype!r}, expected 'FP32'",
    )
    check(
        list(inputs["input"].shape) == [-1, 4],
        f"input 'input' shape is {list(inputs['input'].shape)}, expected [-1, 4]",
    )
    for name in ("label", "probabilities"):
        check(name in outputs, f"metadata has no output named {name!r}: {meta}")


def check_config(client: grpcclient.InferenceServerClient) -> None:
    config = client.get_model_config(MODEL, headers=headers()).config
    check(config.name == MODEL, f"config names {config.name!r}, expected {MODEL!r}")
    check(config.max_batch_size > 0, f"config max_batch_size is {config.max_batch_size}, expected > 0")
    inputs = {t.name: t for t in config.input}
    check("input" in inputs, f"config has no input named 'input': {config}")
    check(
        inputs["input"].data_type == model_config_pb2.TYPE_FP32,
        f"config input 'input' data_type is {inputs['input'].data_type}, expected TYPE_FP32",
    )
    check(
        list(inputs["input"].dims) == [4],
        f"config input 'input' dims are {list(inputs['input'].dims)}, expected [4] (batch dim left out)",
    )
    names = {t.name for t in config.output}
    check({"label", "probabilities"} <= names, f"config outputs are {sorted(names)}")


def successes(client: grpcclient.InferenceServerClient) -> tuple:
    """(inference_stats.success.count, inference_count) of the model."""
    stats = client.get_inference_statistics(MODEL, headers=headers())
    check(len(stats.model_stats) >= 1, f"no statistics for {MODEL!r}: {stats}")
    for model in stats.model_stats:
        check(model.name == MODEL, f"statistics of {MODEL!r} name {model.name!r}")
    return (
        sum(m.inference_stats.success.count for m in stats.model_stats),
        sum(m.inference_count for m in stats.model_stats),
    )


def check_raw_infer(client: grpcclient.InferenceServerClient) -> None:
    result = client.infer(MODEL, [iris_input()], request_id="abc", headers=headers())
    check_result(result, "raw")
    response = result.get_response()
    check(response.id == "abc", f"response id is {response.id!r}, expected 'abc'")
    check(response.model_name == MODEL, f"response model_name is {response.model_name!r}")
    # Output selection: only what was asked comes back.
    only = [grpcclient.InferRequestedOutput("label")]
    result = client.infer(MODEL, [iris_input()], outputs=only, headers=headers())
    check_labels(result, "selected")
    names = [o.name for o in result.get_response().outputs]
    check(names == ["label"], f"asked for 'label' only, got outputs {names}")


def check_typed_infer(url: str) -> None:
    """Typed `contents` (fp32_contents) instead of raw bytes, through the
    generated stub that tritonclient ships, as Triton's own examples do."""
    request = service_pb2.ModelInferRequest(model_name=MODEL, id="typed")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[3, 4])
    tensor.contents.fp32_contents.extend(v for row in CLASSIC_ROWS for v in row)
    with grpc.insecure_channel(url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(request, metadata=list(headers().items()))
    check(response.id == "typed", f"[typed] response id is {response.id!r}")
    check_result(grpcclient.InferResult(response), "typed")


def check_async_infer(client: grpcclient.InferenceServerClient) -> None:
    answers: queue.Queue = queue.Queue()
    for _ in range(ASYNC_REQUESTS):
        client.async_infer(
            MODEL,
            [iris_input()],
            callback=lambda result, error: answers.put((result, error)),
            headers=headers(),
        )
    for i in range(ASYNC_REQUESTS):
        try:
            result, error = answers.get(timeout=WAIT_S)
        except queue.Empty:
            raise CheckFailed(f"[async] only {i} of {ASYNC_REQUESTS} answers came back")
        check(error is None, f"[async] request failed: {error}")
        check_result(result, "async")


def check_stream(client: grpcclient.InferenceServerClient) -> None:
    """1,000 requests over one `start_stream`, then one with a bad shape
    whose error comes back on the stream, which stays usable."""
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=headers())
    try:
        for i in range(STREAM_REQUESTS):
            client.async_stream_infer(MODEL, [iris_input()], request_id=str(i))
        seen = set()
        for _ in range(STREAM_REQUESTS):
            try:
                result, error = answers.get(timeout=WAIT_S)
            except queue.Empty:
                raise CheckFailed(f"[stream] only {len(seen)} of {STREAM_REQUESTS} answers came back")
            check(error is None, f"[stream] request failed: {error}")
            check_labels(result, "stream")
            seen.add(result.get_response().id)
        expected = {str(i) for i in range(STREAM_REQUESTS)}
        check(seen == expected, f"[stream] {len(expected - seen)} request ids never answered")
        client.async_stream_infer(MODEL, [iris_input([[1.0, 2.0, 3.0]])], request_id="bad")
        _, error = answers.get(timeout=WAIT_S)
        check(error is not None, "[stream] a bad shape was answered without an error")
        check("expected shape" in error.message(), f"[stream] bad shape error says {error.message()!r}")
        client.async_stream_infer(MODEL, [iris_input()], request_id="after")
        result, error = answers.get(timeout=WAIT_S)
        check(error is None, f"[stream] request after an error failed: {error}")
        check_labels(result, "stream after an error")
    finally:
        client.stop_stream()


def check_statistics_move(client: grpcclient.InferenceServerClient) -> None:
    before_success, before_count = successes(client)
    for _ in range(3):
        check_result(client.infer(MODEL, [iris_input()], headers=headers()), "statistics")
    after_success, after_count = successes(client)
    check(
        after_success >= before_success + 3,
        f"success count went {before_success} -> {after_success} over 3 inferences",
    )
    check(
        after_count >= before_count + 9,
        f"inference_count went {before_count} -> {after_count} over 3 requests of 3 rows",
    )


def expect_error(status: str, contains: str, call) -> None:
    try:
        call()
    except InferenceServerException as e:
        check(e.status() == status, f"expected {status}, got {e.status()}: {e.message()}")
        check(contains in (e.message() or ""), f"expected {contains!r} in {e.message()!r}")
        return
    raise CheckFailed(f"expected {status} ({contains!r}), the call succeeded")


def check_errors(client: grpcclient.InferenceServerClient) -> None:
    h = headers()
    expect_error(
        "StatusCode.NOT_FOUND",
        "unknown model 'nope'",
        lambda: client.infer("nope", [iris_input()], headers=h),
    )
    expect_error(
        "StatusCode.NOT_FOUND",
        "unknown model 'nope'",
        lambda: client.get_model_metadata("nope", headers=h),
    )
    expect_error(
        "StatusCode.INVALID_ARGUMENT",
        "input 'input': expected shape [-1, 4] but got [1, 3]",
        lambda: client.infer(MODEL, [iris_input([[1.0, 2.0, 3.0]])], headers=h),
    )
    expect_error(
        "StatusCode.INVALID_ARGUMENT",
        "unknown output 'nope'",
        lambda: client.infer(
            MODEL, [iris_input()], outputs=[grpcclient.InferRequestedOutput("nope")], headers=h
        ),
    )


def wait_ready(client: grpcclient.InferenceServerClient, ready: bool) -> None:
    until = time.monotonic() + WAIT_S
    while time.monotonic() < until:
        try:
            if client.is_model_ready(MODEL, headers=headers()) == ready:
                return
        except InferenceServerException:
            if not ready:
                return
        time.sleep(0.05)
    raise CheckFailed(f"model {MODEL!r} never became {'ready' if ready else 'unready'}")


def check_repository(client: grpcclient.InferenceServerClient) -> None:
    index = client.get_model_repository_index(headers=headers())
    rows = {m.name: m for m in index.models}
    check(MODEL in rows, f"repository index has no {MODEL!r}: {index}")
    check(rows[MODEL].state == "READY", f"index state of {MODEL!r} is {rows[MODEL].state!r}")
    client.unload_model(MODEL, headers=headers())
    wait_ready(client, False)
    try:
        client.infer(MODEL, [iris_input()], headers=headers())
    except InferenceServerException:
        pass
    else:
        raise CheckFailed(f"an unloaded {MODEL!r} still answered an inference")
    rows = {m.name: m for m in client.get_model_repository_index(headers=headers()).models}
    check(
        MODEL in rows and rows[MODEL].state != "READY",
        f"after unload the index says {rows.get(MODEL)}",
    )
    client.load_model(MODEL, headers=headers())
    wait_ready(client, True)
    check_result(client.infer(MODEL, [iris_input()], headers=headers()), "after load")


def all_checks(client: grpcclient.InferenceServerClient, url: str) -> None:
    check_health(client)
    check_metadata(client)
    check_config(client)
    check_raw_infer(client)
    check_typed_infer(url)
    check_statistics_move(client)
    check_async_infer(client)
    check_stream(client)
    check_errors(client)
    check_repository(client)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    url = argv[1]
    client = grpcclient.InferenceServerClient(url=url)
    return run_checks(client, lambda c: all_checks(c, url))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
