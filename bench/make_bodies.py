"""Writes the request bodies used by the wrk benchmarks into a folder.

Usage: python3 bench/make_bodies.py OUT_DIR

mlp.json / mlp.bin: one 256-float row for testdata/models/mlp.onnx, as a KServe
v2 JSON request and as a binary-tensor request (header length in
mlp.bin.len); iris.json: one iris row.
"""
import json
import random
import struct
import sys
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
row = [round(rng.uniform(-1, 1), 6) for _ in range(256)]

(out / "mlp.json").write_text(json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 256], "datatype": "FP32", "data": row}]}))

header = json.dumps({
    "inputs": [{"name": "input", "shape": [1, 256], "datatype": "FP32",
                "parameters": {"binary_data_size": 1024}}],
    "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
}).encode()
(out / "mlp.bin").write_bytes(header + struct.pack("<256f", *row))
(out / "mlp.bin.len").write_text(str(len(header)))

(out / "iris.json").write_text(json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.3, 3.3, 6.0, 2.5]}]}))
