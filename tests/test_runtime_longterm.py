"""The long-term mode (tracker.long_term, pysot's SiamRPNLTTracker; docs/DESIGN.md "Long-term search"): the
confidence rules against a scalar reference written from pysot's description, each target in its own mode, the
config and export checks, and ONNX Runtime against PyTorch on the lost-window graphs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_runtime_cli_inputs import BOX, one_line_error, run_cli, track_args, write_clip
from test_runtime_tracker import K, reference_rpn_choice

from siamattn.config import load_config
from siamattn.errors import ConfigError, InputError
from siamattn.runtime import MultiTracker, Tracker

LT = ("tracker.long_term=true", "tracker.geometry=pysot", "tracker.confidence_low=0.8",
      "tracker.confidence_high=0.998")


def score_side(crop: int) -> int:
    return (crop - 127) // 8 + 1 + 8


class ScriptedBackend:
    """Random cls/loc of the size the crop implies; ``regime(slot)`` picks how confident the frame is:
    "low" (every score < 0.8), "high" (a peak > 0.998) or "mid" (between, mostly)."""

    has_refine = has_mask = False

    def __init__(self, regime, max_batch: int = 1, seed: int = 0):
        self.regime, self.max_batch = regime, max_batch
        self.rng = np.random.default_rng(seed)
        self.calls: list[tuple[int, list[int]]] = []  # (crop side, slots) per search call
        self.out: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def set_template(self, slot, z):
        pass

    def drop_template(self, slot):
        pass

    def _maps(self, s: int, regime: str) -> tuple[np.ndarray, np.ndarray]:
        spread = {"low": 0.2, "mid": 1.0, "high": 2.0}[regime]
        cls = self.rng.normal(0, spread, (1, 2 * K, s, s)).astype(np.float32)
        if regime == "high":
            a, y, x = self.rng.integers(0, K), *self.rng.integers(s // 3, 2 * s // 3, 2)
            cls[0, a, y, x], cls[0, K + a, y, x] = -5.0, 5.0  # score 1 / (1 + e^-10)
        loc = self.rng.normal(0, 0.3, (1, 4 * K, s, s)).astype(np.float32)
        return cls, loc

    def search_batch(self, x, slots):
        s = score_side(x.shape[-1])
        self.calls.append((x.shape[-1], list(slots)))
        maps = [self._maps(s, self.regime(slot)) for slot in slots]
        for slot, m in zip(slots, maps, strict=True):
            self.out[slot] = m
        return np.concatenate([m[0] for m in maps]), np.concatenate([m[1] for m in maps])

    def refine_box_batch(self, rois):
        raise AssertionError("not called")

    refine_mask_batch = refine_box_batch


def lt_reference_step(cls, loc, center, size, lost, frame_wh, t):
    """pysot's long-term step by hand: the window of the mode, the state follows only at score >= low (unclipped),
    the reported box is clipped, the mode switches on low/high."""
    s = score_side(t.lost_instance_size if lost else t.instance_size)
    box, scale, ps_raw, score = reference_rpn_choice(cls, loc, size, t, s,
                                                     t.lost_window_influence if lost else t.window_influence)
    if score >= t.confidence_low:
        lr = ps_raw * t.lr
        center = (center[0] + box[0] / scale, center[1] + box[1] / scale)
        size = (size[0] * (1 - lr) + box[2] / scale * lr, size[1] * (1 - lr) + box[3] / scale * lr)
    fw, fh = frame_wh
    shown = (min(max(center[0], 0), fw), min(max(center[1], 0), fh), min(max(size[0], 10), fw),
             min(max(size[1], 10), fh))
    lost = True if score < t.confidence_low else (False if score > t.confidence_high else lost)
    return center, size, lost, shown


@pytest.fixture
def frame():
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def test_long_term_step_matches_the_scalar_reference(frame):
    """Confident, unsure and lost frames in turn: windows, states, reported boxes and modes as pysot's rules."""
    cfg = load_config("siamattn_r50", list(LT))
    t = cfg.tracker
    schedule = iter(["high", "low", "low", "mid", "high", "high", "low", "high", "high"])
    be = ScriptedBackend(lambda slot: next(schedule))
    tr = Tracker(be, cfg)
    tr.init(frame, (560.0, 20.0, 70.0, 50.0))  # near a corner: padded crops, a clipped report
    center, size, lost = tr.center, tr.size, False
    modes = []
    for _ in range(9):
        res = tr.track(frame)
        assert be.calls[-1][0] == (t.lost_instance_size if lost else t.instance_size)
        assert res.lost == lost
        cls, loc = be.out[0]
        center, size, lost, shown = lt_reference_step(cls, loc, center, size, lost, (640, 480), t)
        assert tr.center == pytest.approx(center, rel=1e-9) and tr.size == pytest.approx(size, rel=1e-9)
        cx, cy, w, h = shown
        assert res.box == pytest.approx((cx - w / 2, cy - h / 2, w, h), rel=1e-9)
        modes.append(lost)
    assert True in modes and False in modes[1:]  # lost and found again
    assert {c[0] for c in be.calls} == {255, 831}


def test_lost_score_keeps_the_state(frame):
    cfg = load_config("siamattn_r50", list(LT))
    tr = Tracker(ScriptedBackend(lambda slot: "low"), cfg)
    tr.init(frame, (300.0, 200.0, 64.0, 64.0))
    before = (tr.center, tr.size)
    for _ in range(3):
        res = tr.track(frame)
        assert (tr.center, tr.size) == before
    assert res.lost  # the second frame on were searched in the lost window


def test_each_target_in_its_own_mode(frame):
    """Two targets: the one whose scores stay low goes to the lost window alone; the other keeps the normal
    window; results come back in the order the targets were added."""
    cfg = load_config("siamattn_r50", list(LT))
    be = ScriptedBackend(lambda slot: "low" if slot == 0 else "high", max_batch=4)
    multi = MultiTracker(be, cfg)
    a = multi.add(frame, (100.0, 100.0, 60.0, 60.0))
    b = multi.add(frame, (400.0, 200.0, 60.0, 60.0))
    first = multi.track(frame)
    assert be.calls == [(255, [a, b])] and not first[a].lost and not first[b].lost
    be.calls.clear()
    second = multi.track(frame)
    assert list(second) == [a, b]
    assert sorted(be.calls) == [(255, [b]), (831, [a])]
    assert second[a].lost and not second[b].lost


def test_long_term_switch_overrides_the_config(frame):
    cfg = load_config("siamattn_r50", ["tracker.geometry=pysot"])
    assert not cfg.tracker.long_term
    tr = Tracker(ScriptedBackend(lambda slot: "low"), cfg, long_term=True)
    tr.init(frame, (300.0, 200.0, 64.0, 64.0))
    tr.track(frame)
    assert tr.track(frame).lost
    off = Tracker(ScriptedBackend(lambda slot: "low"), cfg)
    off.init(frame, (300.0, 200.0, 64.0, 64.0))
    off.track(frame)
    assert not off.track(frame).lost


@pytest.mark.parametrize(("override", "key"), [
    ("tracker.lost_instance_size=255", "tracker.lost_instance_size"),
    ("tracker.lost_instance_size=260", "tracker.lost_instance_size"),  # same 25x25 score map
    ("tracker.confidence_low=0.999", "tracker.confidence_low"),
])
def test_bad_long_term_config_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as exc:
        load_config("tiny", ["tracker.long_term=true", override])
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------------------------
# the exported lost-window graphs (ONNX Runtime) against PyTorch


@pytest.fixture(scope="module")
def lt_export():
    from conftest import cached_export

    return cached_export("tiny", overrides=("tracker.long_term=true",))


def test_export_has_the_lost_window_graphs(lt_export):
    from siamattn.manifest import Manifest

    m = Manifest.load(lt_export)
    assert [n for n in m.order if n.endswith("_lost")] == ["search_lost", "refine_box_lost", "refine_mask_lost"]
    spec = {t.name: t.shape for t in (*m.graph("search_lost").inputs, *m.graph("search_lost").outputs)}
    assert tuple(spec["x"]) == (1, 3, 831, 831) and tuple(spec["cls"]) == (1, 10, 97, 97)


def test_manifest_lost_size_must_match_its_graph(lt_export, tmp_path):
    from siamattn.manifest import Manifest, ManifestError

    copy = tmp_path / "m"
    shutil.copytree(lt_export, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["config"]["tracker"]["lost_instance_size"] = 767
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"tracker\.lost_instance_size"):
        Manifest.load(copy, verify=False).config()


def test_an_export_without_lost_graphs_refuses_long_term(tiny_export):
    with pytest.raises(InputError, match=r"re-export with --set tracker\.long_term=true"):
        Tracker(tiny_export, backend="onnxruntime", device="cpu", long_term=True)


def test_onnxruntime_follows_torch_on_the_lost_window_graphs(lt_export, one_torch_thread):
    """Lock step over a real clip with a cut (the target leaves and comes back): ONNX Runtime's search, box and
    mask graphs at both windows against PyTorch's, on the same crops and RoIs; both windows run."""
    from siamattn.runtime.check import evaluate_thresholds, run_check, summary_markdown
    from siamattn.runtime.loader import load_backend, load_reference
    from siamattn.runtime.sources import BUNNY_BOX, lost_and_found_clip

    frames = lost_and_found_clip(4, 3, 5)
    backend, cfg, name = load_backend(lt_export, "onnxruntime", "cpu")
    report = run_check(frames, BUNNY_BOX, load_reference(lt_export), backend, cfg, name)
    evaluate_thresholds(report)
    assert not report.failures, report.failures
    assert 0 < len(report.lost_frames) < report.tracked  # both windows ran
    assert min(f.iou for f in report.lockstep) >= 0.99
    assert {d.graph for d in report.output_diffs} >= {"search", "refine_box", "refine_mask"}
    assert report.worst_rel_error < 1e-4
    assert f"Long-term mode: {len(report.lost_frames)} of these frames ran the lost-window graphs" in \
        summary_markdown(report)


@pytest.mark.parametrize("command", ["track", "check", "eval"])
def test_long_term_switch_on_an_export_without_lost_graphs_is_one_line(command, tiny_export, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.avi", frames=3)
    argv = {"track": track_args(tiny_export, clip, "--long-term"),
            "check": ["check", "--model", str(tiny_export), "--backend", "onnxruntime", "--source", str(clip),
                      "--init", BOX, "--long-term", "--quiet", "--out", str(tmp_path / "report")],
            "eval": ["eval", "--model", str(tiny_export), "--backend", "onnxruntime", "--dataset", "otb", "--root",
                     str(clip.parent / "otb"), "--long-term", "--quiet", "--out", str(tmp_path / "eval")]}[command]
    (tmp_path / "otb").mkdir()
    rc, err = run_cli(capsys, argv)
    assert rc == 2 and "long-term mode needs a search graph for the 831 px lost window" in one_line_error(err)
    assert not (tmp_path / "report").exists() and not (tmp_path / "eval").exists()


def test_track_long_term_records_the_window_per_frame(lt_export, tmp_path, capsys):
    """`siamattn track` on an export with the lost-window graphs: each JSON frame says which window it searched
    (the random network's scores are far below confidence_low: lost from the second tracked frame on)."""
    clip = write_clip(tmp_path / "clip.avi", frames=4)
    out = tmp_path / "t.json"
    rc, err = run_cli(capsys, track_args(lt_export, clip, "--json", str(out)))
    assert rc == 0, err
    frames = json.loads(out.read_text())["frames"]
    assert [f["lost"] for f in frames] == [False, False, True, True]
    assert [f["score"] < 0.85 for f in frames[1:]] == [True, True, True]
