"""What logging through the MLflow-compatible API costs, with the official
client: 1,000 `log_metric` calls (one request each), one `log_batch` of
1,000 values, and the history of 1,000 steps read back.

Usage: MLFLOW_TRACKING_TOKEN=KEY .venv/bin/python bench/mlflow_tracking.py URL
"""

import sys
import time
import uuid

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
run = client.create_run(client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}"))
run_id = run.info.run_id

start = time.perf_counter()
for step in range(1000):
    client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
single = time.perf_counter() - start

now = int(time.time() * 1000)
start = time.perf_counter()
client.log_batch(run_id, metrics=[Metric("acc", s / 1000, now, s) for s in range(1000)])
batch = time.perf_counter() - start

start = time.perf_counter()
history = client.get_metric_history(run_id, "loss")
read = time.perf_counter() - start
assert len(history) == 1000

per_call_ms = single * 1000 / 1000
print(
    f"1000 log_metric calls: {single:.2f} s ({per_call_ms:.1f} ms each); "
    f"one log_batch of 1000: {batch * 1000:.0f} ms; history of 1000 read: {read * 1000:.0f} ms"
)
