"""Nothing is lost, whatever happens, and outputs never alias inputs (issue 23, docs/ERRORS.md "Outputs").

Faults are injected into real command runs: a child ``python -m siamattn ...`` stops at a named point
(``SIAMATTN_PAUSE_AT``, siamattn/outputs.py ``pause_point``) and the test signals it there, so no timing is
guessed; a full disk is a file size limit (RLIMIT_FSIZE) in the child, or a 1 MiB tmpfs where this machine
lets the test mount one. After each fault the old output must be byte-identical and nothing partial (a
staging folder, a ``.partial`` file) may be left."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn.cli import main
from siamattn.outputs import (
    Interrupted,
    StagedDir,
    StagedFile,
    check_dir_output,
    check_file_output,
    disk_full,
    install_signal_handlers,
)

W, H = 176, 144
BOX = "60,40,48,40"
TINY = ["--config", "tiny", "--set", "export.max_targets=1", "--precision", "fp32", "--engine", "none",
        "--no-verify"]


# ------------------------------------------------------------------------------------------------ helpers


def write_frames(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        f = rng.integers(0, 80, (H, W, 3), dtype=np.uint8)
        f[40:80, 60 + i : 108 + i] = 230
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    return folder


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (or ``root`` itself) with its bytes."""
    if root.is_file():
        return {".": root.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    """Staging folders, set-aside old folders and partial files anywhere under ``root``."""
    return [p.relative_to(root).as_posix() for p in root.rglob("*")
            if ".staging-" in p.name or ".old-" in p.name or ".partial" in p.name or p.name.endswith(".tmp")]


def run(args: list[str], cwd: Path, pause: str | None = None, sig: int = signal.SIGTERM,
        fsize: int | None = None, timeout: float = 300) -> tuple[int, str]:
    """``python -m siamattn ARGS`` in a child; with ``pause``, signal it once it waits at that point.
    ``fsize``: a file size limit in bytes (writes past it fail with EFBIG, like a full disk)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    flag = cwd / "paused.pid"
    if pause:
        env.update(SIAMATTN_PAUSE_AT=pause, SIAMATTN_PAUSE_FILE=str(flag))

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.Popen([sys.executable, "-m", "siamattn", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    if pause:
        deadline = time.monotonic() + timeout
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), f"never reached {pause}: {proc.communicate()[1][-2000:]}"
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    flag.unlink(missing_ok=True)
    return proc.returncode, err


def last_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert lines, "no error line"
    assert "Traceback" not in err, err[-3000:]
    return lines[-1]


@pytest.fixture()
def model(tiny_export: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(tiny_export, dst)
    return dst


# ------------------------------------------------------------------------------------------------ the module


def test_staged_dir_replaces_a_folder_as_a_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    (out / "gone.txt").write_text("old")
    with StagedDir(out) as d:
        (d.path / "a.txt").write_text("new")
        assert snapshot(out) == {"a.txt": b"old", "gone.txt": b"old"}  # untouched until the commit
        d.commit()
    assert snapshot(out) == {"a.txt": b"new"} and leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", [RuntimeError("boom"), KeyboardInterrupt()])
def test_staged_dir_failure_keeps_the_old_folder(tmp_path, fault):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    with pytest.raises(type(fault)), StagedDir(out) as d:
        (d.path / "a.txt").write_text("new")
        raise fault
    assert snapshot(out) == {"a.txt": b"old"} and leftovers(tmp_path) == []


def test_a_signal_during_the_swap_waits_until_it_is_done(tmp_path, monkeypatch):
    """SIGTERM between 'old folder aside' and 'new folder in' must not leave the output missing."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    real_rename = os.rename
    calls = []

    def rename(a, b):
        real_rename(a, b)
        calls.append(b)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered while the swap is half done
            time.sleep(0.05)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    install_signal_handlers()
    try:
        monkeypatch.setattr(os, "rename", rename)
        with pytest.raises(Interrupted), StagedDir(out) as d:
            (d.path / "a.txt").write_text("new")
            d.commit()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert len(calls) == 2 and snapshot(out) == {"a.txt": b"new"} and leftovers(tmp_path) == []


def test_staged_file_through_a_symlink_replaces_the_file_it_names(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with StagedFile(link) as f:
        f.tmp.write_text("new")
        f.commit()
    assert link.is_symlink() and target.read_text() == "new" and leftovers(tmp_path) == []


def test_disk_full_is_found_behind_a_wrapping_error():
    try:
        try:
            raise OSError(27, "File too large")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None
    except RuntimeError as exc:
        assert disk_full(exc) is not None and disk_full(exc).errno == 27
    assert disk_full(RuntimeError("x")) is None


def test_checks_refuse_aliases_through_symlinks_and_non_regular_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(model)
    inputs = {"--model folder": model}
    with pytest.raises(Exception, match="is the input --model folder"):
        check_dir_output("--out", link, overwrite=True, inputs=inputs)
    with pytest.raises(Exception, match="lies inside the input"):
        check_file_output("--json", link / "manifest.json", overwrite=True, inputs=inputs)
    with pytest.raises(Exception, match="holds the input"):
        check_dir_output("--out", tmp_path, overwrite=True, inputs=inputs)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(Exception, match="is a FIFO"):
        check_file_output("--json", fifo, overwrite=True)
    with pytest.raises(Exception, match="character device"):
        check_file_output("--json", "/dev/null", overwrite=True)


# ------------------------------------------------------------------------------------------------ track


@pytest.mark.parametrize("bad", ["manifest", "manifest-link", "init-file", "fifo", "model-inside"])
def test_track_outputs_never_replace_an_input_or_a_non_file(model, tmp_path, capsys, bad):
    frames = write_frames(tmp_path / "frames", 2)
    init = tmp_path / "init.txt"
    init.write_text(BOX + "\n")
    target = {"manifest": model / "manifest.json", "init-file": init, "fifo": tmp_path / "fifo",
              "manifest-link": tmp_path / "m.json", "model-inside": model / "new.json"}[bad]
    if bad == "fifo":
        os.mkfifo(target)
    if bad == "manifest-link":
        target.symlink_to(model / "manifest.json")
    before = snapshot(model), init.read_bytes()
    rc = main(["track", "--model", str(model), "--source", str(frames), "--init-file", str(init), "--json",
               str(target), "--overwrite", "--quiet"])
    line = last_line(capsys.readouterr().err)
    assert rc == 2 and line.startswith("error: --json"), line
    assert ("FIFO" in line) if bad == "fifo" else ("input" in line), line
    assert (snapshot(model), init.read_bytes()) == before
    assert not (model / "new.json").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_track_interrupted_before_the_move_keeps_the_old_outputs(model, tmp_path, sig):
    frames = write_frames(tmp_path / "frames", 3)
    js, video = tmp_path / "old.json", tmp_path / "old.mp4"
    js.write_text('{"old": true}')
    video.write_bytes(b"old video")
    rc, err = run(["track", "--model", str(model), "--source", str(frames), "--init", BOX, "--json", str(js),
                   "--save", str(video), "--overwrite", "--quiet"], tmp_path, pause="track:finish", sig=sig)
    assert rc == 128 + sig and last_line(err) == "interrupted", err[-2000:]
    assert js.read_text() == '{"old": true}' and video.read_bytes() == b"old video"
    assert leftovers(tmp_path) == []


def test_track_interrupted_midway_keeps_what_was_tracked_complete(model, tmp_path):
    frames = write_frames(tmp_path / "frames", 4)
    js, video = tmp_path / "r.json", tmp_path / "r.mp4"
    rc, err = run(["track", "--model", str(model), "--source", str(frames), "--init", BOX, "--json", str(js),
                   "--save", str(video), "--quiet"], tmp_path, pause="track:frame")
    assert rc == 143 and last_line(err) == "interrupted", err[-2000:]
    doc = json.loads(js.read_text())
    cap = cv2.VideoCapture(str(video))
    assert len(doc["frames"]) == int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 1
    cap.release()
    assert leftovers(tmp_path) == []


def test_track_on_a_full_disk_fails_and_keeps_the_old_video(model, tmp_path):
    """OpenCV's writer reports no error: a size limit used to give exit 0 and an unreadable video."""
    frames = write_frames(tmp_path / "frames", 4)
    video = tmp_path / "good.mp4"
    video.write_bytes(b"a good old video")
    rc, err = run(["track", "--model", str(model), "--source", str(frames), "--init", BOX, "--save", str(video),
                   "--overwrite", "--quiet"], tmp_path, fsize=4096)
    line = last_line(err)
    assert rc == 2 and "--save" in line and "nothing was replaced" in line, err[-2000:]
    assert video.read_bytes() == b"a good old video" and leftovers(tmp_path) == []


@pytest.fixture()
def tmpfs(tmp_path: Path):
    """A 1 MiB tmpfs (a real ENOSPC), where this machine lets the test mount one (root, no container limit)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers a full disk")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_track_on_a_really_full_disk_keeps_the_old_json(model, tmp_path, tmpfs):
    frames = write_frames(tmp_path / "frames", 3)
    js = tmpfs / "r.json"
    js.write_text('{"old": true}')
    (tmpfs / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))  # leave under two pages
    rc, err = run(["track", "--model", str(model), "--source", str(frames), "--init", BOX, "--json", str(js),
                   "--save", str(tmpfs / "r.mp4"), "--overwrite", "--quiet"], tmp_path)
    assert rc == 2 and "--" in last_line(err), err[-2000:]
    assert js.read_text() == '{"old": true}' and not (tmpfs / "r.mp4").exists() and leftovers(tmpfs) == []


# ------------------------------------------------------------------------------------------------ export


def test_export_refuses_an_existing_export_without_overwrite_and_foreign_folders_with_it(model, tmp_path, capsys):
    before = snapshot(model)
    assert main(["export", *TINY, "--out", str(model)]) == 2
    assert "already exists" in capsys.readouterr().err and snapshot(model) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["export", *TINY, "--out", str(mine), "--overwrite"]) == 2
    line = last_line(capsys.readouterr().err)
    assert "not an earlier export" in line and (mine / "notes.txt").read_text() == "keep"


def test_export_over_the_folder_holding_its_checkpoint_is_refused(model, tmp_path, capsys):
    from siamattn.config import load_config
    from siamattn.training.model import build_model, save_checkpoint

    ck = model / "ck.pt"
    save_checkpoint(ck, build_model(load_config("tiny")))
    before = snapshot(model)
    assert main(["export", *TINY, "--checkpoint", str(ck), "--out", str(model), "--overwrite"]) == 2
    assert "holds the input --checkpoint" in last_line(capsys.readouterr().err) and snapshot(model) == before


def test_export_interrupted_after_its_first_graph_keeps_the_old_export(model, tmp_path):
    """The old bug: a new template.onnx beside the old manifest, an export that no longer loads. (One signal:
    an export costs half a minute here; SIGINT takes the same path, see the track tests.)"""
    before = snapshot(model)
    rc, err = run(["export", *TINY, "--out", str(model), "--overwrite"], tmp_path, pause="export:graph")
    assert rc == 143 and last_line(err) == "interrupted", err[-2000:]
    assert snapshot(model) == before and leftovers(tmp_path) == []


def test_export_on_a_full_disk_keeps_the_old_export(model, tmp_path):
    before = snapshot(model)
    rc, err = run(["export", *TINY, "--out", str(model), "--overwrite"], tmp_path, fsize=1 << 20)
    line = last_line(err)
    assert rc == 2 and "could not be written" in line and "unchanged" in line, err[-2000:]
    assert snapshot(model) == before and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ check


def test_check_refuses_its_report_inside_the_model_or_over_an_earlier_one(model, tmp_path, capsys):
    frames = write_frames(tmp_path / "frames", 2)
    base = ["check", "--model", str(model), "--source", str(frames), "--init", BOX, "--quiet"]
    assert main([*base, "--out", str(model / "report")]) == 2
    assert "lies inside the input --model folder" in capsys.readouterr().err
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text("{}")
    assert main([*base, "--out", str(report)]) == 2
    assert "--overwrite" in last_line(capsys.readouterr().err)
    assert snapshot(report) == {"report.json": b"{}"}


def test_check_interrupted_before_the_move_keeps_the_old_report(model, tmp_path):
    frames = write_frames(tmp_path / "frames", 2)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text('{"old": 1}')
    rc, err = run(["check", "--model", str(model), "--source", str(frames), "--init", BOX, "--backend",
                   "onnxruntime", "--device", "cpu", "--out", str(report), "--overwrite", "--quiet"], tmp_path,
                  pause="check:commit")
    assert rc == 143 and last_line(err) == "interrupted", err[-2000:]
    assert snapshot(report) == {"report.json": b'{"old": 1}'} and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ train


def _got10k(root: Path) -> Path:
    from tests.test_train import write_got10k

    return write_got10k(root, num=2, length=4)


TRAIN = ["train", "--config", "tiny", "--no-progress", "--threads", "1", "--set", "train.pairs_per_epoch=2",
         "--set", "train.batch_size=2", "--set", "train.workers=0"]


def test_train_refuses_a_folder_that_is_not_a_run_and_a_run_inside_its_data(tmp_path, capsys):
    data = _got10k(tmp_path / "got")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("mine")
    (mine / "log.csv").write_text("mine\n")
    assert main([*TRAIN, "--data", str(data), "--out", str(mine)]) == 2
    assert "holds no run to resume" in last_line(capsys.readouterr().err)
    assert snapshot(mine) == {"config.yaml": b"mine", "log.csv": b"mine\n"}
    assert main([*TRAIN, "--data", str(data), "--out", str(data / "run")]) == 2
    assert "lies inside the input --data" in last_line(capsys.readouterr().err)


def test_train_interrupted_before_its_first_checkpoint_leaves_no_run(tmp_path):
    data = _got10k(tmp_path / "got")
    rc, err = run([*TRAIN, "--data", str(data), "--out", str(tmp_path / "run")], tmp_path, pause="train:step")
    assert rc == 143 and last_line(err) == "interrupted", err[-2000:]
    assert not (tmp_path / "run").exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ build-engines


def test_build_engines_interrupted_keeps_the_export(model, tmp_path):
    pytest.importorskip("tensorrt_rtx_bindings", reason="build-engines needs a TensorRT module")
    before = snapshot(model)
    rc, err = run(["build-engines", "--model", str(model), "--engine", "tensorrt-rtx"], tmp_path,
                  pause="build-engines:staged")
    assert rc == 143 and last_line(err) == "interrupted", err[-2000:]
    assert snapshot(model) == before and leftovers(tmp_path) == []


def test_train_interrupted_after_a_checkpoint_resumes_with_a_clean_log(tmp_path):
    """From its first checkpoint on a run folder is resumable: an interrupt leaves it complete (no temporary
    files), and --resume continues it with log.csv holding each step once."""
    data = _got10k(tmp_path / "got")
    run_dir = tmp_path / "run"
    rc, err = run([*TRAIN, "--data", str(data), "--out", str(run_dir)], tmp_path, pause="train:checkpoint")
    assert rc == 143 and last_line(err) == "interrupted", err[-2000:]
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml", "last.pt", "log.csv"]
    assert leftovers(tmp_path) == []
    with (run_dir / "log.csv").open("a") as f:
        f.write("2,2,0.001,1.5")  # a row cut off by the interrupt, of a step the resumed run makes again
    rc, err = run([*TRAIN, "--data", str(data), "--out", str(run_dir), "--resume"], tmp_path)
    assert rc == 0, err[-2000:]
    text = (run_dir / "log.csv").read_bytes()
    steps = [line.split(b",")[1] for line in text.splitlines()[1:]]
    assert steps == [b"1", b"2"] and text.count(b"\r\n") == 3, text  # csv's line ends throughout
    assert (run_dir / "model.pt").is_file() and leftovers(tmp_path) == []


def test_demo_replaces_only_an_earlier_demo_folder(tmp_path, capsys):
    from siamattn.errors import SiamAttnError
    from siamattn.runtime.demo import demo_clip

    try:
        demo_clip()
    except SiamAttnError as exc:
        pytest.skip(f"no demo clip here: {exc}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    assert main(["demo", "--out", str(mine)]) == 2
    assert "is not an earlier demo" in last_line(capsys.readouterr().err)
    assert snapshot(mine) == {"thesis.tex": b"keep"} and leftovers(tmp_path) == []


def test_eval_and_check_outputs_never_lie_in_their_inputs(model, tmp_path, capsys):
    root = tmp_path / "got"
    root.mkdir()
    assert main(["eval", "--model", str(model), "--dataset", "got10k", "--root", str(root), "--out",
                 str(root / "eval")]) == 2
    assert "lies inside the input dataset --root" in last_line(capsys.readouterr().err)
    frames = write_frames(tmp_path / "frames", 2)
    assert main(["check", "--model", str(model), "--source", str(frames), "--init", BOX, "--out",
                 str(tmp_path / "r"), "--polygraphy", str(tmp_path / "r" / "poly")]) == 2
    assert "overlap" in last_line(capsys.readouterr().err)
    assert main(["check", "--model", str(model), "--source", str(frames), "--init", BOX, "--out",
                 str(frames)]) == 2
    assert "is the input source" in last_line(capsys.readouterr().err)
    assert not (root / "eval").exists() and not (tmp_path / "r").exists()


def test_a_failed_move_into_place_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    from siamattn.errors import SiamAttnError

    out = tmp_path / "r.json"
    out.write_text("old")

    def busy(a, b):
        raise OSError(16, "Device or resource busy")

    with (pytest.raises(SiamAttnError, match="could not be moved into place: Device or resource busy; the existing"),
          StagedFile(out, "--json") as f):
        f.tmp.write_text("new")
        monkeypatch.setattr(os, "replace", busy)
        f.commit()
    monkeypatch.undo()
    assert out.read_text() == "old" and leftovers(tmp_path) == []


def test_train_on_a_full_disk_is_one_line_and_leaves_no_run(tmp_path):
    """torch.save wraps the write error in a RuntimeError: it is still named as a full disk."""
    data = _got10k(tmp_path / "got")
    rc, err = run([*TRAIN, "--data", str(data), "--out", str(tmp_path / "run")], tmp_path, fsize=256 * 1024)
    line = last_line(err)
    assert rc == 2 and "could not be written" in line and "epoch_001.pt" in line, err[-2000:]
    assert not (tmp_path / "run").exists() and leftovers(tmp_path) == []
