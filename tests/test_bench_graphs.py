"""bench/graphs.py (per-graph latency; the GPU report runs it) on an export with batch graphs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import cached_export

from siamattn.manifest import Manifest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "graphs.py"


def test_graph_bench_times_every_graph_batch_graphs_included(tmp_path):
    """The batch graphs' 'targets' axis is symbolic in the manifest: they run at max_targets, fed from the
    batch-1 graphs' outputs (an earlier version asked numpy for a -1 dimension and stopped at the first one)."""
    model = cached_export("tiny", max_targets=2)
    out = tmp_path / "graphs.json"
    r = subprocess.run([sys.executable, str(BENCH), "--model", str(model), "--backends", "onnxruntime",
                        "--runs", "1", "--warmup", "0", "--profile-runs", "0", "--threads", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    timed = {row["graph"]: row for row in json.loads(out.read_text())["results"]}
    order = Manifest.load(model).order
    assert "search_multi" in order and set(timed) == set(order)
    assert all(row["median_ms"] > 0 for row in timed.values())
