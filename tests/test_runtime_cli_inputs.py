"""Bad input to ``siamattn track/check/eval`` (issue 11): each gets one clear line and a non-zero exit, is
caught before any work where it can be, and never loses a user's file.

Most probes point --model at a folder with no export: the error they expect proves the probe was refused
before the model was even opened. The few that run the tracker use the cached `tiny` export on a small
synthetic clip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn.cli import main
from siamattn.errors import InputError
from siamattn.runtime.tracker import TrackResult
from siamattn.runtime.video import SourceEndedEarly, open_source, track_video

W, H = 176, 144  # QCIF: the smallest common clip size
BOX = "60,40,48,40"


def write_clip(path: Path, frames: int = 20, fourcc: str = "MJPG", size: tuple[int, int] = (W, H)) -> Path:
    """A clip of a bright square moving over noise (so every frame differs)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(frames):
        f = rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8)
        f[40:80, 60 + i : 108 + i] = 230
        writer.write(f)
    writer.release()
    return path


def frames_cv2_reads(path: Path) -> int:
    """Independent count: how many frames OpenCV decodes from the file."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = int(exc.code)
    err = capsys.readouterr().err
    return rc, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:") or "error:" in ln]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi")


def track_args(model: Path, source: Path | str, *extra: str) -> list[str]:
    return ["track", "--model", str(model), "--backend", "onnxruntime", "--source", str(source), "--init", BOX,
            "--quiet", *extra]


# ----------------------------------------------------------------------------------------------------
# 1. --save / --json naming the input


@pytest.mark.parametrize("how", ["same", "symlink", "dotdot", "json"])
def test_output_that_is_the_source_is_refused_before_anything(tmp_path, clip, capsys, how):
    before = clip.read_bytes()
    flag, out = "--save", clip
    if how == "symlink":
        out = tmp_path / "link.avi"
        out.symlink_to(clip)
    elif how == "dotdot":
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / clip.name
    elif how == "json":
        flag = "--json"
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, flag, str(out), "--overwrite"))
    line = one_line_error(err)
    assert rc != 0 and "input source" in line and flag in line
    assert clip.read_bytes() == before  # the input is intact


def test_save_and_json_on_one_file_are_refused(tmp_path, clip, capsys):
    out = tmp_path / "out.mp4"
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--save", str(out), "--json", str(out)))
    assert rc != 0 and "same file" in one_line_error(err)


# ----------------------------------------------------------------------------------------------------
# 2. existing outputs, and a run failing midway


@pytest.mark.parametrize("flag", ["--save", "--json"])
def test_existing_output_is_refused_without_overwrite(tmp_path, clip, capsys, flag):
    out = tmp_path / ("old.mp4" if flag == "--save" else "old.json")
    out.write_text("keep me")
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, flag, str(out)))
    line = one_line_error(err)
    assert rc != 0 and "already exists" in line and "--overwrite" in line
    assert out.read_text() == "keep me"


class FakeTracker:
    """Moves the box one pixel right per frame; raises on frame ``fail_at`` (a backend failing midway)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.i = 0
        self.box = (0.0, 0.0, 1.0, 1.0)

    def init(self, frame, box):
        self.i, self.box = 0, tuple(float(v) for v in box)

    def track(self, frame):
        self.i += 1
        if self.fail_at is not None and self.i == self.fail_at:
            raise RuntimeError("backend exploded")
        x, y, w, h = self.box
        self.box = (x + 1, y, w, h)
        return TrackResult(self.box, 0.9, None, None, timings_ms={"total": 1.0})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_failing_run_leaves_no_partial_and_keeps_existing_files(tmp_path, clip):
    save, js = tmp_path / "out" / "t.mp4", tmp_path / "out" / "t.json"
    save.parent.mkdir()
    save.write_bytes(b"old video")
    js.write_text("old json")
    with pytest.raises(RuntimeError, match="exploded"):
        track_video(FakeTracker(fail_at=5), "fake", open_source(str(clip)), (60, 40, 48, 40), save, js,
                    quiet=True, overwrite=True)
    assert save.read_bytes() == b"old video" and js.read_text() == "old json"
    assert leftovers(save.parent) == []


def test_complete_run_replaces_with_overwrite(tmp_path, clip):
    save, js = tmp_path / "t.mp4", tmp_path / "t.json"
    save.write_bytes(b"old video")
    js.write_text("old json")
    summary = track_video(FakeTracker(), "fake", open_source(str(clip)), (60, 40, 48, 40), save, js, quiet=True,
                          overwrite=True)
    assert summary["frames"] == 20 and summary["tracked"] == 19
    assert len(json.loads(js.read_text())["frames"]) == 20
    assert frames_cv2_reads(save) == 20
    assert leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(js).st_mode & 0o777 == 0o666 & ~umask  # as a plain open() makes it, not mkstemp's 0600


# ----------------------------------------------------------------------------------------------------
# 3. / 4. outputs that cannot be written: refused before the model loads


def test_save_under_a_file_is_refused(tmp_path, clip, capsys):
    (tmp_path / "afile").write_text("x")
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--save", str(tmp_path / "afile" / "o.mp4")))
    line = one_line_error(err)
    assert rc != 0 and "--save" in line and "is a file" in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_save_in_a_read_only_folder_is_refused(tmp_path, clip, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--save", str(ro / "new" / "o.mp4")))
    finally:
        ro.chmod(0o755)
    assert rc != 0 and "permission denied" in one_line_error(err)


@pytest.mark.parametrize("kind", ["folder", "under-file"])
def test_unwritable_json_is_refused_before_tracking(tmp_path, clip, capsys, kind):
    if kind == "folder":
        target = tmp_path / "results"
        target.mkdir()
        expect = "is a folder"
    else:
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "r.json"
        expect = "is a file"
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--json", str(target)))
    line = one_line_error(err)
    assert rc != 0 and "--json" in line and expect in line and "manifest" not in line


# ----------------------------------------------------------------------------------------------------
# 5. a video that ends before its container says


@pytest.mark.parametrize("damage", ["truncated-avi", "corrupt-mp4"])
def test_video_ending_early_keeps_what_was_tracked_and_fails(tmp_path, damage):
    if damage == "truncated-avi":
        good = write_clip(tmp_path / "good.avi")
        data = good.read_bytes()
        bad = tmp_path / "bad.avi"
        bad.write_bytes(data[: int(len(data) * 0.6)])
    else:
        good = write_clip(tmp_path / "good.mp4", fourcc="mp4v")
        data = bytearray(good.read_bytes())
        m = len(data) // 2
        data[m : m + len(data) // 4] = bytes(len(data) // 4)
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(bytes(data))
    readable = frames_cv2_reads(bad)
    announced = int(cv2.VideoCapture(str(bad)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert 1 < readable < announced == 20, (readable, announced)  # what OpenCV does with such a file
    js, save = tmp_path / "r.json", tmp_path / "r.mp4"
    with pytest.raises(SourceEndedEarly, match=rf"ended early: {readable} of its {announced} frames") as info:
        track_video(FakeTracker(), "fake", open_source(str(bad)), (60, 40, 48, 40), save, js, quiet=True)
    assert str(js) in str(info.value)
    data = json.loads(js.read_text())
    assert len(data["frames"]) == readable and "ended early" in data["summary"]["ended_early"]
    assert frames_cv2_reads(save) == readable
    assert leftovers(tmp_path) == []


def test_video_ending_early_through_the_cli(tiny_export, tmp_path, capsys):
    good = write_clip(tmp_path / "good.avi", frames=12)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(good.read_bytes()[: int(good.stat().st_size * 0.6)])
    readable = frames_cv2_reads(bad)
    js = tmp_path / "r.json"
    rc, err = run_cli(capsys, track_args(tiny_export, bad, "--json", str(js)))
    line = one_line_error(err)
    assert rc != 0 and "ended early" in line and str(js) in line
    assert len(json.loads(js.read_text())["frames"]) == readable


def test_unreadable_image_in_a_folder_keeps_the_frames_before_it(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((H, W, 3), 40 * i, np.uint8))
    (folder / "002.png").write_bytes(b"not a png")
    js = tmp_path / "r.json"
    with pytest.raises(SourceEndedEarly, match=r"002\.png"):
        track_video(FakeTracker(), "fake", open_source(str(folder)), (60, 40, 48, 40), json_path=js, quiet=True)
    assert len(json.loads(js.read_text())["frames"]) == 2


# ----------------------------------------------------------------------------------------------------
# 7. unknown backend or device, from the Python API and the CLI


@pytest.mark.parametrize("kwargs, what", [({"backend": "nonsense"}, "backend"), ({"device": "banana"}, "device")])
def test_tracker_rejects_unknown_backend_and_device(tmp_path, kwargs, what):
    from siamattn.runtime import Tracker

    with pytest.raises(InputError, match=rf"unknown {what} .*choose one of auto, ") as info:
        Tracker(tmp_path, **kwargs)
    valid = ("tensorrt", "onnxruntime", "torch") if what == "backend" else ("cpu", "cuda")
    assert all(v in str(info.value) for v in valid)


@pytest.mark.parametrize("command", ["track", "check", "eval"])
def test_cli_rejects_device_banana_naming_the_choices(tmp_path, clip, capsys, command):
    if command == "eval":
        argv = ["eval", "--model", str(tmp_path), "--dataset", "otb", "--root", str(tmp_path)]
    else:
        argv = [command, "--model", str(tmp_path), "--source", str(clip), "--init", BOX]
    rc, err = run_cli(capsys, [*argv, "--device", "banana"])
    assert rc == 2 and "invalid choice: 'banana'" in err and "'cuda'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err  # one line, not argparse's usage block


# ----------------------------------------------------------------------------------------------------
# 8. a box starting left of the frame


@pytest.mark.parametrize("form", [["--init", "-5,40,40,60"], ["--init=-5,40,40,60"], ["--init", "-5, 40, 40, 60"]])
def test_negative_init_is_a_box_not_an_option(tmp_path, clip, capsys, form):
    argv = ["track", "--model", str(tmp_path / "no-model"), "--source", str(clip), *form, "--quiet"]
    rc, err = run_cli(capsys, argv)
    line = one_line_error(err)
    assert rc != 0 and "export directory" in line and "no-model" in line  # parsed; failed only at the model


def test_negative_init_tracks(tiny_export, tmp_path, clip, capsys):
    js = tmp_path / "r.json"
    argv = ["track", "--model", str(tiny_export), "--backend", "onnxruntime", "--source", str(clip),
            "--init", "-5,40,40,60", "--max-frames", "3", "--json", str(js), "--quiet"]
    assert main(argv) == 0
    data = json.loads(js.read_text())
    assert data["frames"][0]["box"] == [-5, 40, 40, 60] and len(data["frames"]) == 3


# ----------------------------------------------------------------------------------------------------
# 9. --max-frames


@pytest.mark.parametrize("value", ["0", "-1", "-7", "two"])
def test_max_frames_must_be_positive(tmp_path, clip, capsys, value):
    rc, err = run_cli(capsys, [*track_args(tmp_path, clip), "--max-frames", value])
    assert rc == 2 and "--max-frames" in err and "positive whole number" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    with pytest.raises(InputError, match="positive"):
        open_source(str(clip), 0)


def test_max_frames_on_an_image_folder_gives_exactly_n(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.full((H, W, 3), 50 * i, np.uint8))
    assert len(list(open_source(str(folder)))) == 5
    for n in (1, 3, 5, 9):
        src = open_source(str(folder), n)
        assert len(list(src)) == min(n, 5) == src.length


def test_max_frames_on_a_video_gives_exactly_n(clip):
    for n in (1, 7, 20, 30):
        assert len(list(open_source(str(clip), n))) == min(n, 20)


# ----------------------------------------------------------------------------------------------------
# 11. check without torch


def test_check_without_torch_names_the_extra(tmp_path, clip):
    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' now fails
            "from siamattn.cli import main\n"
            f"sys.exit(main(['check', '--model', {str(tmp_path)!r}, '--source', {str(clip)!r}, '--init', "
            f"{BOX!r}, '--quiet']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    line = one_line_error(proc.stderr)
    assert "pip install 'siamattn-trt[export]'" in line and "torch" in line


# ----------------------------------------------------------------------------------------------------
# the fallback note: once, after the model loaded, never with --quiet or before an unrelated error


def test_fallback_note_once_only_when_not_quiet(tiny_export, tmp_path, clip, capsys):
    base = ["track", "--model", str(tiny_export), "--source", str(clip), "--init", BOX, "--max-frames", "2"]
    assert main([*base, "--quiet"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(base) == 0
    err = capsys.readouterr().err
    assert err.count("note: TensorRT backend unavailable") == 1
    rc, err = run_cli(capsys, [*base[:-4], "--init", "1,2,3", "--max-frames", "2"])
    assert rc == 2 and "note:" not in err and "four numbers" in err


def test_fallback_reason_reaches_the_python_api(tiny_export):
    from siamattn.runtime import Tracker

    notes: list[str] = []
    t = Tracker(tiny_export, notes=notes)
    assert t.backend_label.startswith("onnxruntime") and len(notes) == 1 and "TensorRT" in notes[0]
    with pytest.warns(RuntimeWarning, match="TensorRT backend unavailable"):
        Tracker(tiny_export)


def test_check_report_folder_that_is_a_file_is_refused_first(tmp_path, clip, capsys):
    (tmp_path / "afile").write_text("x")
    rc, err = run_cli(capsys, ["check", "--model", str(tmp_path / "no-model"), "--source", str(clip), "--init", BOX,
                               "--out", str(tmp_path / "afile")])
    line = one_line_error(err)
    assert rc == 2 and "--out" in line and "is a file" in line


def test_demo_needs_two_frames(tmp_path, capsys):
    rc, err = run_cli(capsys, ["demo", "--out", str(tmp_path / "demo"), "--max-frames", "1"])
    assert rc == 2 and "at least 2 frames" in one_line_error(err)
    assert not (tmp_path / "demo").exists()  # refused before exporting anything
