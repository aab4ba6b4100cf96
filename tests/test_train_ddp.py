"""`siamattn train` under torchrun with 2 CPU processes (gloo): one epoch of `tiny` gives the same weights
as one process taking the same global batches as 2 micro-batches (the exact single-process equivalent of
2 DDP ranks, BatchNorm statistics per share included), and only rank 0 writes logs and checkpoints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import write_got10k

from siamattn.cli import main
from siamattn.training.model.checkpoint import read_checkpoint

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def test_torchrun_two_processes_match_the_single_process_step(tmp_path):
    data = write_got10k(tmp_path / "data")
    common = ["train", "--config", "tiny", "--data", str(data), "--no-progress", "--threads", "1",
              "--epochs", "1", "--set", "train.pairs_per_epoch=8", "--set", "train.batch_size=4",
              "--set", "train.workers=0", "--set", "train.warmup_epochs=0"]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun not found next to the Python interpreter"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    ddp = tmp_path / "ddp"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "siamattn.cli", *common, "--out", str(ddp)],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("final weights:") == 1  # rank 0 only
    rows = (ddp / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 2  # header + 2 steps of the global batch of 4, written once

    single = tmp_path / "single"
    assert main([*common, "--set", "train.accum_steps=2", "--out", str(single)]) == 0

    a, b = read_checkpoint(ddp / "model.pt")["model"], read_checkpoint(single / "model.pt")["model"]
    from siamattn.config import load_config
    from siamattn.training.model import build_model

    params = [n for n, _ in build_model(load_config("tiny")).named_parameters()]
    # parameters only: DDP broadcasts rank 0's BatchNorm running statistics, micro-batching accumulates both
    worst = max(float((a[n] - b[n]).abs().max()) for n in params)
    assert worst < 1e-5, worst
    moved = read_checkpoint(ddp / "checkpoints" / "epoch_001.pt")
    assert moved["epoch"] == 1 and moved["scheduler"]["last_epoch"] == 2
    # and the logged global losses agree
    la = [r.split(",")[3] for r in rows[1:]]
    lb = [r.split(",")[3] for r in (single / "log.csv").read_text().splitlines()[1:]]
    assert [float(x) for x in la] == pytest.approx([float(x) for x in lb], rel=1e-4)
