"""Issue 23 (items 4-7): every path and value is checked before work starts, with one line; messages say the
truth; the Python API refuses what it cannot use. Most probes point at a model or dataset that does not exist:
the error they expect proves they were refused before anything was opened."""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from test_runtime_cli_inputs import BOX, one_line_error, run_cli, track_args, write_clip

from siamattn.cli import main
from siamattn.errors import InputError, MissingDependencyError, require
from siamattn.validate import check_number, is_finite_number


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi", frames=6)


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    f = tmp_path / "afile"
    f.write_text("x")
    return f


# ----------------------------------------------------------------------------------------------------
# the outermost guard: any OSError is one line; Ctrl-C is "interrupted" wherever it lands


def _run_with_handler(monkeypatch, capsys, handler) -> tuple[int, str]:
    """``siamattn configs`` with its handler replaced: what the guard makes of whatever the handler raises."""
    import siamattn.commands as commands

    monkeypatch.setattr(commands, "_configs", handler)
    return run_cli(capsys, ["configs"])


def test_any_oserror_is_one_line_naming_the_path(monkeypatch, capsys):
    def handler(args):
        raise OSError(28, "No space left on device", "out/x.mp4")

    rc, err = _run_with_handler(monkeypatch, capsys, handler)
    assert rc == 2 and one_line_error(err) == "error: No space left on device: 'out/x.mp4'"


def test_keyboard_interrupt_inside_an_import_is_interrupted_not_a_missing_package(monkeypatch, capsys):
    # what pybind11 extensions do with a Ctrl-C during their initialisation: ImportError from KeyboardInterrupt
    def import_module(name):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr("importlib.import_module", import_module)
    with pytest.raises(KeyboardInterrupt):
        require("onnxruntime", "runtime", "the ONNX Runtime backend")

    def handler(args):
        require("onnxruntime", "runtime", "the ONNX Runtime backend")

    rc, err = _run_with_handler(monkeypatch, capsys, handler)
    assert rc == 130 and err.strip() == "interrupted"


def test_a_real_missing_package_still_names_the_extra(monkeypatch):
    def import_module(name):
        raise ImportError(f"No module named '{name}'")

    monkeypatch.setattr("importlib.import_module", import_module)
    with pytest.raises(MissingDependencyError, match="pip install 'siamattn-trt\\[runtime\\]'"):
        require("onnxruntime", "runtime", "the ONNX Runtime backend")


def test_keyboard_interrupt_while_the_stages_load_is_interrupted(monkeypatch, capsys):
    import siamattn.cli as cli

    def build_parser():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", build_parser)
    assert main(["configs"]) == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_other_exceptions_are_bugs_and_keep_their_traceback(monkeypatch, capsys):
    def handler(args):
        raise ZeroDivisionError("a bug")

    import siamattn.commands as commands

    monkeypatch.setattr(commands, "_configs", handler)
    with pytest.raises(ZeroDivisionError):
        main(["configs"])


# ----------------------------------------------------------------------------------------------------
# output folders: a file, or a folder that cannot be written, is refused before any work, for every command


@pytest.mark.parametrize("argv", [
    ["train", "--config", "tiny", "--data", "{tmp}/no-data", "--out", "{out}"],
    ["eval", "--model", "{tmp}/no-model", "--dataset", "otb", "--root", "{tmp}/no-root", "--out", "{out}"],
    ["demo", "--out", "{out}"],
    ["import", "--from", "pysot", "--checkpoint", "{tmp}/no.pth", "--out", "{out}/ck.pt"],
    ["plugins", "build", "--build-dir", "{out}"],
    ["plugins", "emulate", "--build-dir", "{out}"],
], ids=["train", "eval", "demo", "import", "plugins-build", "plugins-emulate"])
@pytest.mark.parametrize("how", ["a-file", "unwritable"])
def test_output_folder_is_checked_first(tmp_path, afile, capsys, monkeypatch, argv, how):
    if how == "a-file":
        out, expect = afile, "is a file"
    else:  # os.access stands in for a read-only folder (root may write anywhere)
        out, expect = tmp_path / "ro" / "new", "permission denied"
        (tmp_path / "ro").mkdir()
        real = os.access
        monkeypatch.setattr("siamattn.outputs.os.access",
                            lambda p, mode: False if Path(p) == tmp_path / "ro" else real(p, mode))
    rc, err = run_cli(capsys, [a.format(tmp=tmp_path, out=out) for a in argv])
    line = one_line_error(err)
    flag = "--build-dir" if "plugins" in argv else "--out"
    assert rc == 2 and flag in line and expect in line, line


# ----------------------------------------------------------------------------------------------------
# counts, seeds and thresholds


TRAIN = ["train", "--config", "tiny", "--data", "d", "--out", "o"]
EXPORT = ["export", "--config", "tiny", "--out", "o"]


@pytest.mark.parametrize(("argv", "expect"), [
    ([*TRAIN, "--workers", "-1"], "argument --workers: must be 0 or more"),
    ([*TRAIN, "--threads", "-1"], "argument --threads: must be a positive"),
    ([*TRAIN, "--threads", "0"], "argument --threads: must be a positive"),
    ([*EXPORT, "--seed", str(2**64)], "argument --seed: must be in [0, 4294967295]"),
    ([*EXPORT, "--seed", "-1"], "argument --seed: must be in [0, 4294967295]"),
    (["plugins", "build", "--jobs", "-1"], "argument --jobs: must be a positive"),
])
def test_counts_and_seeds_are_checked_by_argparse(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    rc, err = run_cli(capsys, argv)
    assert rc == 2 and expect in one_line_error(err)


def test_a_seed_numpy_cannot_take_is_refused_in_the_config(tmp_path, capsys):
    rc, err = run_cli(capsys, ["configs", "tiny", "--set", f"train.seed={2**40}"])
    assert rc == 2 and "config key 'train.seed' must be in [0, 4294967295]" in one_line_error(err)


@pytest.mark.parametrize(("flag", "value", "expect"), [
    ("--min-iou", "-5", "must be in [0, 1]"),
    ("--min-iou", "nan", "must be a finite number"),
    ("--max-rel-error", "nan", "must be a finite number"),
    ("--max-rel-error", "-1", "must be >= 0"),
    ("--tie-margin", "inf", "must be a finite number"),
    ("--min-fps", "nan", "must be a finite number"),
    ("--divergence-iou", "2", "must be in [0, 1]"),
])
def test_check_thresholds_are_checked_before_anything(tmp_path, clip, capsys, flag, value, expect):
    rc, err = run_cli(capsys, ["check", "--model", str(tmp_path / "no-model"), "--source", str(clip), "--init", BOX,
                               "--out", str(tmp_path / "rep"), f"{flag}={value}"])
    line = one_line_error(err)
    assert rc == 2 and f"argument {flag}: {expect}" in line, line
    assert not (tmp_path / "rep").exists()


def test_nan_threshold_cannot_turn_a_failing_check_into_a_pass():
    from siamattn.runtime.check import CheckReport, evaluate_thresholds

    report = CheckReport("onnxruntime cpu fp32", "torch fp32", 2)
    with pytest.raises(InputError, match="--min-iou must be a finite number"):
        evaluate_thresholds(report, min_iou=float("nan"))
    with pytest.raises(InputError, match="--max-rel-error must be >= 0"):
        evaluate_thresholds(report, max_rel_error=-1.0)


def test_one_finite_number_check():
    assert is_finite_number(1) and is_finite_number(2.5) and is_finite_number(np.float32(3))
    for bad in (float("nan"), float("inf"), True, np.bool_(True), "1", None, [1]):
        assert not is_finite_number(bad), bad
    assert check_number("x", 0.5, 0, 1) == 0.5
    with pytest.raises(InputError, match="x must be a finite number, got nan"):
        check_number("x", float("nan"), 0, 1)


# ----------------------------------------------------------------------------------------------------
# track: outputs and display refused before the model is opened (the model folder does not exist)


def test_save_with_a_suffix_opencv_cannot_write_is_refused_first_naming_the_users_path(tmp_path, clip, capsys):
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--save", str(tmp_path / "x.txt")))
    line = one_line_error(err)
    assert rc == 2 and f"--save '{tmp_path / 'x.txt'}'" in line and "suffix '.txt'" in line
    assert ".partial" not in line and list(tmp_path.iterdir()) == [clip]  # no temporary file left


def test_show_without_a_display_is_refused_first(tmp_path, clip, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--show"))
    assert rc == 2 and "--show needs a display" in one_line_error(err)


def test_show_with_an_opencv_without_gui_is_refused_first(tmp_path, clip, capsys, monkeypatch):
    import cv2

    def no_gui(name):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ support")

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    rc, err = run_cli(capsys, track_args(tmp_path / "no-model", clip, "--show"))
    assert rc == 2 and "no GUI support" in one_line_error(err)


def test_an_init_box_too_large_to_crop_is_refused(tiny_export, tmp_path, clip, capsys):
    for box in ("0,0,100000000,100000000", "60,40,1e300,40"):
        rc, err = run_cli(capsys, ["track", "--model", str(tiny_export), "--backend", "onnxruntime", "--source",
                                   str(clip), "--init", box, "--quiet"])
        assert rc == 2 and "is more than 2 times the 176x144 frame" in one_line_error(err)


def test_track_backend_torch_without_weights_suggests_no_option_track_lacks(tiny_export_copy, tmp_path, clip, capsys):
    import json

    manifest = tiny_export_copy / "manifest.json"
    data = json.loads(manifest.read_text())
    data["weights"] = {"source": "checkpoint", "path": str(tmp_path / "gone.pt"), "sha256": None, "seed": None}
    manifest.write_text(json.dumps(data))
    rc, err = run_cli(capsys, ["track", "--model", str(tiny_export_copy), "--backend", "torch", "--source", str(clip),
                               "--init", BOX, "--quiet"])
    line = one_line_error(err)
    assert rc == 2 and "are not at" in line and "--checkpoint PATH --out" in line and "pass --checkpoint" not in line


# ----------------------------------------------------------------------------------------------------
# check streams its clip: the model loads after at most two frames were read, and frames are not kept


def test_check_streams_the_clip(tiny_export, tmp_path, capsys, monkeypatch):
    import siamattn.runtime.loader as loader
    import siamattn.runtime.video as video

    clip = write_clip(tmp_path / "c.avi", frames=8)
    alive: list[weakref.ref] = []
    read_before_load: list[int] = []
    most_alive = [0]
    real_open, real_load = video.open_source, loader.load_backend

    def counting_open(source, max_frames=None):
        src = real_open(source, max_frames)
        inner = iter(src)

        def frames():
            for f in inner:
                alive.append(weakref.ref(f))
                most_alive[0] = max(most_alive[0], sum(r() is not None for r in alive))
                yield f
        src._frames = frames()
        return src

    def load_backend(*a, **k):
        read_before_load.append(len(alive))
        return real_load(*a, **k)

    monkeypatch.setattr(video, "open_source", counting_open)
    monkeypatch.setattr(loader, "load_backend", load_backend)
    rc, err = run_cli(capsys, ["check", "--model", str(tiny_export), "--backend", "onnxruntime", "--source",
                               str(clip), "--init", BOX, "--out", str(tmp_path / "rep"), "--quiet"])
    assert rc in (0, 1), err
    assert read_before_load == [2]
    # held at once: the two frames read first, the one being checked and the one before it; the whole clip was
    # held before (910 MB for 5 frames of a big video)
    assert len(alive) == 8 and most_alive[0] <= 4


# ----------------------------------------------------------------------------------------------------
# the Python API


class _SlowBackend:
    """A one-target backend that notices two calls running at once (each call sleeps to widen the window)."""

    has_refine = has_mask = False
    max_batch = 1

    def drop_template(self, slot):
        pass

    def __init__(self) -> None:
        from test_runtime_tracker import FakeBackend

        self.inner = FakeBackend()
        self.active = 0
        self.overlaps = 0

    def _enter(self) -> None:
        self.active += 1
        self.overlaps += self.active > 1
        time.sleep(0.002)
        self.active -= 1

    def set_template(self, slot, z):
        self._enter()
        self.inner.set_template(slot, z)

    def search_batch(self, x, slots):
        self._enter()
        return self.inner.search_batch(x, slots)

    def refine_box_batch(self, roi):  # pragma: no cover - has_refine is False
        raise AssertionError

    refine_mask_batch = refine_box_batch


def test_one_tracker_shared_by_threads_runs_one_call_at_a_time():
    from test_runtime_tracker import INIT, pysot_cfg

    from siamattn.runtime.tracker import Tracker

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    backend = _SlowBackend()
    tracker = Tracker(backend, pysot_cfg())
    tracker.init(frame, INIT)
    errors: list[BaseException] = []

    def work(reinit: bool) -> None:
        try:
            for _ in range(15):
                if reinit:
                    tracker.init(frame, INIT)
                tracker.track(frame)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in (False, True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and backend.overlaps == 0


def test_unknown_target_ids_name_the_id_and_the_live_ones():
    from test_runtime_tracker import INIT, FakeBackend, pysot_cfg

    from siamattn.runtime.tracker import MultiTracker

    frame = np.zeros((480, 640, 3), np.uint8)
    mt = MultiTracker(FakeBackend(), pysot_cfg())
    a = mt.add(frame, INIT)
    for bad in (7, True, "0", [0]):
        for call, args in ((mt.state, (bad,)), (mt.remove, (bad,)), (mt.set_state, (bad, (1, 1), (2, 2)))):
            with pytest.raises(InputError, match=re.escape(f"no target with id {bad!r} (live: [{a}])")):
                call(*args)
    assert mt.state(a)[1] == (64.0, 64.0)


@pytest.mark.parametrize("box", [(True, 10, 40, 40), [10, 10, 40, np.bool_(True)], np.array([1, 1, 1, 1], bool)])
def test_bools_are_no_coordinates(box):
    from test_runtime_tracker import FakeBackend, pysot_cfg

    from siamattn.runtime.tracker import MultiTracker, Tracker

    frame = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(InputError, match="not True/False"):
        Tracker(FakeBackend(), pysot_cfg()).init(frame, box)
    mt = MultiTracker(FakeBackend(), pysot_cfg())
    a = mt.add(frame, (10, 10, 40, 40))
    with pytest.raises(InputError, match="not True/False"):
        mt.set_state(a, (True, 30), (40, 40))


def test_bytes_and_pathlike_paths_are_read_as_paths(tmp_path, clip):
    from siamattn.export.manifest import ManifestError
    from siamattn.runtime.tracker import Tracker
    from siamattn.runtime.video import open_source

    missing = tmp_path / "no-model"
    for given in (str(missing), missing, os.fsencode(missing)):
        with pytest.raises(ManifestError, match=f"export directory '{missing}' does not exist"):
            Tracker(given, backend="onnxruntime")
    assert open_source(os.fsencode(clip)).length == open_source(clip).length == 6
    with pytest.raises(InputError, match="source must be a path"):
        open_source(3.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------
# a file that is not a library where a plugin library is expected


def test_a_fake_library_in_the_plugins_folder_is_one_line(tmp_path, capsys, monkeypatch):
    from siamattn.plugins.library import DeformLibrary

    fake = tmp_path / "libsiamattn_trt_plugins.so"
    fake.write_bytes(b"\x7fELF but not really")
    (tmp_path / "libsiamattn_deform.so").write_bytes(b"not a library")
    with pytest.raises(InputError, match="is not a loadable siamattn plugin library"):
        DeformLibrary(tmp_path / "libsiamattn_deform.so")
    monkeypatch.setenv("SIAMATTN_PLUGINS_DIR", str(tmp_path))
    main(["plugins", "info"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert f"{fake}\n       (cannot be loaded:" in out


EVAL = ["eval", "--model", "m", "--dataset", "otb", "--out", "{tmp}/ev"]


@pytest.mark.parametrize(("argv", "expect"), [
    (["export", "--config", "", "--out", "o"], "argument --config: is empty"),
    (["plugins", "build", "--cuda-arch", "garbage"], "argument --cuda-arch: 'garbage' is not a list of CUDA"),
    ([*EVAL, "--root", "{afile}"], "--root '{afile}' is not a folder"),
    ([*EVAL, "--root", "{tmp}/none"], "--root '{tmp}/none' does not exist"),
])
def test_more_values_refused_before_work(tmp_path, afile, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    rc, err = run_cli(capsys, [a.format(tmp=tmp_path, afile=afile) for a in argv])
    assert rc == 2 and expect.format(tmp=tmp_path, afile=afile) in one_line_error(err)


def test_cuda_arch_lists_cmake_takes_are_accepted():
    from siamattn.plugins.cli import cuda_archs

    for ok in ("87", "75;86;89", "75,86", "90a", "86-real", "all", "native", "all-major"):
        assert cuda_archs(ok) == ok


def test_check_checkpoint_that_is_a_folder_is_named_as_the_users_file(tiny_export, tmp_path, clip, capsys):
    (tmp_path / "ckdir").mkdir()
    rc, err = run_cli(capsys, ["check", "--model", str(tiny_export), "--backend", "onnxruntime", "--source", str(clip),
                               "--init", BOX, "--out", str(tmp_path / "rep"), "--checkpoint", str(tmp_path / "ckdir")])
    assert rc == 2 and f"checkpoint '{tmp_path / 'ckdir'}' is a folder" in one_line_error(err)


@pytest.mark.parametrize("delay", [0.0, 0.2])
def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path, clip, delay):
    """A real SIGINT while `siamattn track` imports its stages and opens the source: never a traceback or a
    made-up missing package. The signal is sent once the entry point is imported (before that it is Python's
    own start, docs/ERRORS.md), so the test does not depend on how loaded the machine is."""
    import signal
    import subprocess
    import sys

    code = "import sys; from siamattn.cli import main; print('ready', file=sys.stderr, flush=True); sys.exit(main())"
    cmd = [sys.executable, "-c", code, *track_args(tmp_path / "no-model", clip)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stderr.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "not installed" not in err, err
    if proc.returncode == 130:
        assert err.strip() == "interrupted"
    else:  # it was faster than the signal: the model folder's own error (the signal may then land in the exit)
        assert proc.returncode in (2, -signal.SIGINT) and err.strip().startswith("error: export directory"), err
