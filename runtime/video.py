"""The video loop shared by ``siamattn track`` and ``siamattn demo``: a source in, the tracker per frame, the
annotated video and per-frame JSON out. Its rooms: frame sources (:mod:`~siamattn.runtime.sources`), output-file
safety (:mod:`~siamattn.runtime.output_files`), drawing (:mod:`~siamattn.runtime.draw`); their public names are
re-exported here, so ``from siamattn.runtime.video import ...`` keeps working.

A run that fails midway leaves no partial file and never touches an existing one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from siamattn.errors import InputError
from siamattn.outputs import StagedFile, held_signals, pause_point
from siamattn.runtime.draw import (
    WINDOW,
    LabelLayout,
    check_display,
    draw,
    draw_targets,
    label_layout,
    target_color,
    window_closed,
)
from siamattn.runtime.live import LiveStats
from siamattn.runtime.output_files import VIDEO_FOURCC, VideoWriter, check_outputs, check_video_output
from siamattn.runtime.sources import (
    IMAGE_SUFFIXES,
    Source,
    SourceEndedEarly,
    check_max_frames,
    open_source,
    parse_box,
)
from siamattn.validate import as_path

__all__ = ["IMAGE_SUFFIXES", "VIDEO_FOURCC", "WINDOW", "Box", "LabelLayout", "Source", "SourceEndedEarly",
           "VideoWriter", "check_display", "check_max_frames", "check_outputs", "check_video_output", "draw",
           "draw_targets", "label_layout", "open_source", "parse_box", "target_color", "track_video"]

Box = tuple[float, float, float, float]


def track_video(tracker: Any, name: str, source: Source, box: Box | list[Box],
                save: Path | None = None, json_path: Path | None = None, show: bool = False,
                quiet: bool = False, overwrite: bool = False) -> dict:
    """Track through an opened source; optionally write the annotated video and per-frame JSON.

    ``box``: one box (``tracker`` a :class:`~siamattn.runtime.tracker.Tracker`; JSON ``frames`` hold each
    frame's box) or a list of boxes (a :class:`~siamattn.runtime.tracker.MultiTracker`: all added on the first
    frame; JSON ``tracks`` hold one track per target, ``frames`` each frame's latency; the video shows each
    target's id in its colour).

    Outputs are checked and their temporary files created before the first frame. When the source ends
    early (:class:`SourceEndedEarly`), what was tracked is written and the error is raised again, naming
    the files; any other failure discards the temporary files.
    """
    from tqdm import tqdm

    save = None if save is None else as_path(save, "save")
    json_path = None if json_path is None else as_path(json_path, "json_path")
    check_outputs(None, {"--save": save, "--json": json_path}, overwrite)
    check_video_output("--save", save)
    if show:
        check_display()
    with contextlib.ExitStack() as staged:  # leaving it without the commit in _finish removes the temp files
        pending: dict[str, StagedFile] = {}
        if save is not None:
            pending["video"] = staged.enter_context(StagedFile(save, "--save"))
        if json_path is not None:
            pending["json"] = staged.enter_context(StagedFile(json_path, "--json"))
        writer = VideoWriter(pending["video"].tmp, source.fps, name=save) if "video" in pending else None
        records: list[dict] = []
        tracks: dict[int, dict] | None = {} if isinstance(box, list) else None
        ended_early: SourceEndedEarly | None = None
        bar = tqdm(total=source.length, unit="frame", desc=f"tracking ({name})", disable=quiet)
        try:
            try:
                for i, frame in enumerate(source):
                    if tracks is None:
                        records.append(_track_frame(tracker, i, frame, box, name, writer, show))
                    else:
                        records.append(_track_frame_multi(tracker, i, frame, box, tracks, name, writer, show))
                    if source.live is not None:
                        records[-1].update(_capture_record(source.live))
                    ms = records[-1]["latency_ms"]
                    if ms:
                        bar.set_postfix(fps=f"{1000.0 / max(ms['total'], 1e-6):.1f}")
                    bar.update(1)
                    pause_point("track:frame")
                    if show and window_closed():
                        break
            except SourceEndedEarly as exc:
                ended_early = exc
            finally:
                source.close()  # a live source's reader thread stops here, not at interpreter exit
                bar.close()
                if writer is not None:
                    writer.close()
            if not records:
                raise ended_early or InputError(f"source '{source.name}' produced no frames")
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM) keeps what was tracked (the usual way to stop a camera); a failure keeps nothing
            if records:
                _finish(records, name, pending, writer, None, tracks, source.live)
            raise
        summary = _finish(records, name, pending, writer, ended_early, tracks, source.live)
    if ended_early is not None:
        kept = " and ".join(f"'{p.given}'" for p in pending.values())
        raise type(ended_early)(f"{ended_early}; the {len(records)} frames read were tracked"
                               + (f" and written to {kept}" if kept else "")) from ended_early
    return summary


def _capture_record(live: LiveStats) -> dict:
    """A live frame's capture time (Unix seconds), its number in the stream and the latency from its capture
    (read off the stream) to its result (tracked, and drawn and written when asked)."""
    return {"stream_frame": live.index, "captured_at": round(live.captured_wall, 4),
            "capture_to_result_ms": round((time.monotonic() - live.captured) * 1000.0, 3)}


def _live_summary(records: list[dict], live: LiveStats) -> dict:
    lat = [r["capture_to_result_ms"] for r in records if "capture_to_result_ms" in r]
    out: dict[str, Any] = {"realtime": live.realtime, "dropped": live.dropped, "reconnects": live.reconnects,
                           "median_capture_to_result_ms": float(np.median(lat)) if lat else None,
                           "max_capture_to_result_ms": max(lat) if lat else None}
    if live.ended:
        out["stream_ended"] = live.ended
    return out


def _frame_record(i: int, box: Box, score: float, polygon: np.ndarray | None, lost: bool | None = None) -> dict:
    """One frame of a track; ``lost`` (long-term mode only): the frame was searched in the lost window."""
    record = {"frame": i, "box": [round(float(v), 2) for v in box], "score": round(float(score), 4),
              "polygon": None if polygon is None else np.round(polygon, 2).tolist()}
    if lost is not None:
        record["lost"] = lost
    return record


def _lost(tracker: Any, result: Any = None) -> bool | None:
    """The record's ``lost`` value: None unless the tracker runs the long-term mode."""
    if not getattr(tracker, "long_term", False):
        return None
    return bool(getattr(result, "lost", False))


def _present(render: Callable[[], np.ndarray], writer: VideoWriter | None, show: bool) -> None:
    """Draw the frame only when someone sees it: into the video, into the window."""
    if writer is None and not show:
        return
    out = render()
    if writer is not None:
        writer.write(out)
    if show:
        cv2.imshow(WINDOW, out)


def _fps_label(label: str, ms: dict[str, float]) -> str:
    return f"{label}  {1000.0 / max(ms['total'], 1e-6):.0f} fps" if ms else label


def _track_frame(tracker: Any, i: int, frame: np.ndarray, box: Box, name: str,
                 writer: VideoWriter | None, show: bool) -> dict:
    if i == 0:
        tracker.init(frame, box)
        res_box, polygon, mask, score, ms, r = box, None, None, 1.0, {}, None
    else:
        r = tracker.track(frame)
        res_box, polygon, mask, score, ms = r.box, r.reported_polygon, r.mask, r.score, r.timings_ms
    lost = _lost(tracker, r)
    label = _fps_label(f"{name}  frame {i}  score {score:.2f}" + ("  (lost window)" if lost else ""), ms)
    _present(lambda: draw(frame, res_box, polygon, mask, label), writer, show)
    return {**_frame_record(i, res_box, score, polygon, lost), "latency_ms": {k: round(v, 3) for k, v in ms.items()}}


def _track_frame_multi(tracker: Any, i: int, frame: np.ndarray, boxes: list[Box], tracks: dict[int, dict], name: str,
                       writer: VideoWriter | None, show: bool) -> dict:
    """One frame of several targets: added on frame 0, tracked after; ``tracks`` gets each target's record."""
    ms: dict[str, float] = {}
    drawn = []
    if i == 0:
        for b in boxes:
            tid = tracker.add(frame, b)
            tracks[tid] = {"id": tid, "init": [float(v) for v in b],
                           "frames": [_frame_record(0, b, 1.0, None, _lost(tracker))]}
            drawn.append((tid, b, None, None))
    else:
        t0 = time.perf_counter()
        results = tracker.track(frame)
        ms = {"total": (time.perf_counter() - t0) * 1000.0}
        for tid, r in results.items():
            drawn.append((tid, r.box, r.reported_polygon, r.mask))
            tracks[tid]["frames"].append(_frame_record(i, r.box, r.score, r.reported_polygon, _lost(tracker, r)))
    label = _fps_label(f"{name}  frame {i}  {len(drawn)} targets", ms)
    _present(lambda: draw_targets(frame, drawn, label), writer, show)
    return {"frame": i, "targets": len(drawn), "latency_ms": {k: round(v, 3) for k, v in ms.items()}}


def _finish(records: list[dict], name: str, pending: dict[str, StagedFile], writer: VideoWriter | None,
            ended_early: SourceEndedEarly | None, tracks: dict[int, dict] | None = None,
            live: LiveStats | None = None) -> dict:
    """Summary of the run; writes the JSON and moves both outputs into place."""
    totals = [r["latency_ms"]["total"] for r in records[1:]]
    summary: dict[str, Any] = {"backend": name, "frames": len(records), "tracked": len(records) - 1,
                               "median_ms": float(np.median(totals)) if totals else None,
                               "fps": 1000.0 / float(np.mean(totals)) if totals else None}
    if ended_early is not None:
        summary["ended_early"] = str(ended_early)
    if tracks is not None:
        summary["targets"] = len(tracks)
    if live is not None:
        summary.update(_live_summary(records, live))
    if "json" in pending:
        doc: dict[str, Any] = {"summary": summary, "frames": records}
        if tracks is not None:
            doc["tracks"] = list(tracks.values())
        pending["json"].tmp.write_text(json.dumps(doc, indent=1))
    if writer is not None:
        writer.verify(pending["video"].given)
    pause_point("track:finish")
    with held_signals():  # both outputs move into place, or (an error before) neither
        for p in pending.values():
            p.commit()
    return summary


def tracking_fn(tracker: Any, dataset: str) -> Any:
    """The ``track_fn`` of :func:`siamattn.toolkit.evaluate.evaluate` for a tracker (siamattn eval, and the
    several-export check's dataset metrics)."""
    # VOT records each frame's region (tracker.output: the mask's rotated box or the box); the one-pass
    # benchmarks record boxes
    vot = dataset.lower().replace("-", "").startswith("vot")

    def track_fn(frame_paths: list, init_box: tuple[float, float, float, float]):
        for i, path in enumerate(frame_paths):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise InputError(f"frame '{path}' could not be read")
            if i == 0:
                tracker.init(frame, init_box)
                yield tuple(float(v) for v in init_box)
            else:
                res = tracker.track(frame)
                yield res.region if vot else res.box

    return track_fn
