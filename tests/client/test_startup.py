"""A local-only process: ``from nasbench import api`` and a query on a store import neither grpc nor protobuf."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import json, sys
from nasbench import api
nasbench = api.NASBench(sys.argv[1], seed=0)
data = nasbench.query(api.ModelSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]))
before = sorted(m for m in sys.modules if m == "grpc" or m.startswith(("grpc.", "google.protobuf")))
name = api.model_metrics_pb2.ModelMetrics.DESCRIPTOR.full_name  # the original's attribute, imported on demand
after = "google.protobuf" in sys.modules
print(json.dumps({"before": before, "name": name, "after": after, "accuracy": data["validation_accuracy"]}))
"""


def test_local_query_imports_no_grpc_or_protobuf(small_store: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(small_store)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["before"] == []
    assert found["name"] == "nasbench.ModelMetrics" and found["after"] is True
    assert 0.0 < found["accuracy"] < 1.0
