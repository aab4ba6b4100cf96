"""What a user sees from a run: the overlay on the annotated video, and the check report's record of what
ran (issue 11, 'What a new user sees')."""

from __future__ import annotations

import hashlib
import json
import platform

import cv2
import numpy as np
import pytest

from siamattn.runtime.check import CheckReport, percentiles, run_metadata, summary_markdown, write_report
from siamattn.runtime.video import draw, label_layout

LONG = "onnxruntime cpu fp32  frame 131  score 0.99  250 fps"


@pytest.mark.parametrize("w, h", [(176, 144), (320, 240), (640, 480), (1280, 720), (1920, 1080)])
def test_label_fits_the_frame(w, h):
    layout = label_layout(LONG, w, h)
    x1, y1, x2, y2 = layout.band
    assert x1 >= 0 and x2 < w and y1 >= 0 and y2 < h
    words = []
    for text, (x, y) in layout.lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, layout.scale, layout.thickness)
        assert x1 <= x and x + tw <= x2 and y1 <= y - th and y + base <= y2  # inside the band, so the frame
        assert th >= 8  # legible
        words += text.split()
    assert words == LONG.split()  # nothing dropped by wrapping
    assert len(layout.lines) <= 3
    if w >= 640:
        assert len(layout.lines) == 1
    if w == 176:
        assert len(layout.lines) > 1  # wrapped rather than shrunk below legibility


def test_text_scales_with_the_frame():
    small = label_layout("frame 1", 320, 240).scale
    large = label_layout("frame 1", 1920, 1080).scale
    assert large > 2.5 * small


def test_label_is_drawn_once_inside_a_176x144_frame():
    frame = np.zeros((144, 176, 3), np.uint8)
    out = draw(frame, (60, 40, 48, 40), None, None, LONG, color=(0, 0, 255))
    white = np.argwhere((out > 200).all(axis=2))
    assert white.size, "label not drawn"
    # text pixels end before the right edge: not cut (the old fixed 0.6 scale ran off a 176 px frame)
    assert white[:, 1].max() < 176 - 2
    # no offset shadow copy: white pixels only inside the label's band
    x1, y1, x2, y2 = label_layout(LONG, 176, 144).band
    assert white[:, 0].min() >= y1 and white[:, 0].max() <= y2 and white[:, 1].min() >= x1


def test_label_is_readable_on_a_white_frame():
    frame = np.full((480, 640, 3), 255, np.uint8)
    out = draw(frame, (60, 40, 48, 40), None, None, "frame 1", color=(0, 0, 255))
    x1, y1, x2, y2 = label_layout("frame 1", 640, 480).band
    band = out[y1 : y2 + 1, x1 : x2 + 1].astype(int)
    # the band is darkened behind white text: both dark and white pixels there
    assert (band.max(axis=2) < 128).mean() > 0.3 and (band.min(axis=2) > 200).any()


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
