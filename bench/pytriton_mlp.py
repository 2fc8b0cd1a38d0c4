"""Serves an ONNX model from Triton Inference Server through PyTriton (its
Python backend, ONNX Runtime on the CPU, Triton's dynamic batcher), for the
side-by-side benchmark bench/triton_grpc_ab.sh.

Usage: pytriton_mlp.py MODEL.onnx NAME HTTP_PORT GRPC_PORT METRICS_PORT
Prints "ready" once Triton serves the model, then serves until killed.
"""

import sys

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

NUMPY_OF_ONNX = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


def main() -> None:
    path, name = sys.argv[1], sys.argv[2]
    http_port, grpc_port, metrics_port = (int(p) for p in sys.argv[3:6])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def tensors(values):
        # The first dimension is the batch's, left out as Triton has it.
        return [
            Tensor(name=v.name, dtype=NUMPY_OF_ONNX[v.type], shape=tuple(v.shape[1:]))
            for v in values
        ]

    @batch
    def infer(**inputs):
        outputs = session.run(None, inputs)
        return {v.name: out for v, out in zip(session.get_outputs(), outputs)}

    config = TritonConfig(http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=name,
            infer_func=infer,
            inputs=tensors(session.get_inputs()),
            outputs=tensors(session.get_outputs()),
            config=ModelConfig(max_batch_size=32, batcher=DynamicBatcher()),
        )
        print("ready", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
