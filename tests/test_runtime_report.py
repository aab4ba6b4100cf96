"""What a user sees from a check: the report's record of what ran (issue 11, 'What a new user sees'). The
overlay on the annotated video: test_runtime_draw.py."""

from __future__ import annotations

import hashlib
import json
import platform

import numpy as np

from siamattn.runtime.check_data import CheckReport, percentiles
from siamattn.runtime.check_report import summary_markdown, write_report
from siamattn.runtime.run_info import run_metadata


def test_summary_counts_the_init_frame_apart():
    report = CheckReport(backend="onnxruntime cpu fp32", reference="torch fp32", frames=132, iou=[1.0] * 131)
    text = summary_markdown(report)
    assert "132 frames, 131 tracked after the init frame" in text


def test_check_report_records_model_clip_box_backend_machine(tiny_export, tmp_path):
    clip = tmp_path / "c.avi"
    clip.write_bytes(b"")
    run = run_metadata(tiny_export, str(clip), (1.0, 2.0, 30.0, 40.0), "onnxruntime cpu fp32", "cpu")
    assert run["model"]["folder"] == str(tiny_export.resolve())
    assert run["model"]["manifest_sha256"] == hashlib.sha256((tiny_export / "manifest.json").read_bytes()).hexdigest()
    assert run["model"]["config"] == "tiny"
    assert run["clip"] == str(clip.resolve()) and run["init_box"] == [1.0, 2.0, 30.0, 40.0]
    assert run["backend"] == "onnxruntime cpu fp32" and run["device"] == "cpu"
    assert run["machine"]["platform"] == platform.platform() and run["machine"]["cpu"]
    assert run["versions"]["numpy"] == np.__version__ and run["versions"]["python"] == platform.python_version()
    report = CheckReport(backend="onnxruntime cpu fp32", reference="torch fp32", frames=3, iou=[1.0, 1.0], run=run,
                         latency_ms={"total": percentiles([1.0, 2.0])}, total_ms=[1.0, 2.0])
    paths = write_report(report, tmp_path / "rep")
    data = json.loads(paths["json"].read_text())
    assert data["run"]["model"]["config"] == "tiny" and data["frames"] == 3 and data["tracked"] == 2
    md = paths["md"].read_text()
    assert "## Run" in md and str(tiny_export.resolve()) in md and "(1.0, 2.0, 30.0, 40.0)" in md


def test_check_cli_report_has_the_run(tiny_export, tmp_path, one_torch_thread):
    from test_runtime_cli_inputs import write_clip

    from siamattn.cli import main

    clip = write_clip(tmp_path / "c.avi", frames=4)
    out = tmp_path / "rep"
    rc = main(["check", "--model", str(tiny_export), "--backend", "onnxruntime", "--device", "cpu", "--source",
               str(clip), "--init", "60,40,48,40", "--out", str(out), "--quiet"])
    assert rc == 0
    data = json.loads((out / "report.json").read_text())
    assert data["frames"] == 4 and data["tracked"] == 3 == len(data["iou"])
    assert data["run"]["init_box"] == [60.0, 40.0, 48.0, 40.0] and data["run"]["clip"] == str(clip.resolve())
