"""Real-frame inputs and PyTorch reference outputs of every exported graph, in polygraphy's JSON formats.

``siamattn check --polygraphy DIR`` writes, per graph, ``<graph>_inputs.json`` (a list of feed dicts, one per
call: polygraphy's ``--load-inputs`` format) and ``<graph>_outputs.json`` (a ``RunResults`` with one runner,
``pytorch-fp32``: the ``--load-outputs`` format). On a device, ``polygraphy run <graph>.onnx --trt --plugins
<lib> --load-inputs ... --load-outputs ...`` then builds an engine and compares it with PyTorch on the same
real crops (docs/CHECK.md gives the lines).

The feeds are what the runtime gives the graphs (docs/DESIGN.md, the four graphs and their names): the template
crop, the search crop with the template cache, the refinement features with the RoI the tracker chose, all
recorded from the PyTorch reference tracker running the clip, so the inputs are the ones a deployment sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.config import SIAMMASK_MAPS
from siamattn.errors import InputError, require
from siamattn.runtime.tracker import Tracker

RUNNER = "pytorch-fp32"


class _GraphTap:
    """A :class:`Backend` over the reference :class:`TorchBackend` that records each graph call's feeds and
    outputs under the exported graphs' tensor names."""

    max_batch = 1  # the recorded feeds are the batch-1 graphs'

    def __init__(self, reference: Any) -> None:
        self.ref = reference
        self.has_refine, self.has_mask = reference.has_refine, reference.has_mask
        self.mask_by_position = getattr(reference, "mask_by_position", False)
        self.calls: dict[str, list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]] = {}
        self._cache: dict[str, np.ndarray] = {}
        self._search: dict[str, np.ndarray] = {}

    def _keep(self, graph: str, feeds: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
        # copies: the tracker reuses its crop buffers from frame to frame
        self.calls.setdefault(graph, []).append(
            ({k: np.array(v, np.float32) for k, v in feeds.items()},
             {k: np.array(v, np.float32) for k, v in outputs.items()}))

    def set_template(self, slot: int, z: np.ndarray) -> None:
        self.ref.set_template(slot, z)
        self._cache = self.ref.cache_arrays(slot)
        self._keep("template", {"z": z}, self._cache)

    def drop_template(self, slot: int) -> None:
        self.ref.drop_template(slot)

    def search_batch(self, x: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        cls, loc = self.ref.search_batch(x, slots)
        self._search = self.ref.search_arrays()
        self._keep("search", {"x": x, **self._cache}, self._search)
        return cls, loc

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray:
        out = self.ref.refine_box_batch(rois)
        self._keep("refine_box", {"box_feat": self._search["box_feat"], "rois": rois}, {"box_deltas": out})
        return out

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray:
        out = self.ref.refine_mask_batch(rois)
        if self.mask_by_position:  # SiamMask: the positions and the maps they index
            feeds = {k: self._search[k] for k in SIAMMASK_MAPS} | {"pos": rois}
        else:
            feeds = {"mask_feat": self._search["mask_feat"], "rois": rois}
        self._keep("refine_mask", feeds, {"mask": out})
        return out


def record_graph_io(frames: Iterable[np.ndarray], init_box: tuple[float, float, float, float], reference: Any,
                    cfg: Any, max_frames: int) -> dict[str, list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]]:
    """Track the first ``max_frames`` frames (the first one initialises) with the reference and return, per
    graph, the (feeds, outputs) of every call."""
    if max_frames < 2:
        raise InputError(f"--polygraphy-frames must be at least 2 (the first frame only initialises), got {max_frames}")
    tap = _GraphTap(reference)
    tracker = Tracker(tap, cfg)
    for i, frame in enumerate(frames):
        if i >= max_frames:
            break
        if i == 0:
            tracker.init(frame, init_box)
        else:
            tracker.track(frame)
    return tap.calls


def _check_against_graphs(calls: dict[str, list], graphs: dict[str, Any] | None) -> None:
    """Every recorded tensor must be an input/output of the exported graph of that name (the manifest's
    ``GraphSpec``), with its shape: a mismatch means the model folder and the reference are different models."""
    for graph, records in calls.items():
        spec = (graphs or {}).get(graph)
        if spec is None:
            continue
        declared = {t.name: tuple(t.shape) for t in (*spec.inputs, *spec.outputs)}
        feeds, outputs = records[0]
        for name, arr in [*feeds.items(), *outputs.items()]:
            if name not in declared:
                raise InputError(f"graph '{graph}' of the export has no tensor '{name}': the reference is not the "
                                 "exported model; pass the export's own --checkpoint")
            if arr.shape != declared[name]:
                raise InputError(f"graph '{graph}' tensor '{name}': the export says {list(declared[name])}, the "
                                 f"reference gives {list(arr.shape)}; pass the export's own --checkpoint")


def write_polygraphy_data(calls: dict[str, list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]],
                          out_dir: Path, graphs: dict[str, Any] | None = None) -> dict[str, dict[str, Path]]:
    """Write ``<graph>_inputs.json`` / ``<graph>_outputs.json`` per graph and ``index.json`` (what was written,
    how many calls, the tensor names). ``graphs``: the manifest's ``GraphSpec`` per graph, to check names and
    shapes and to name each graph's file."""
    require("polygraphy", "export", "'siamattn check --polygraphy' (its files are polygraphy's JSON formats)")
    from polygraphy.comparator import RunResults
    from polygraphy.comparator.struct import IterationResult
    from polygraphy.json import save_json
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.WARNING  # not a line per file it saves; we print one summary
    _check_against_graphs(calls, graphs)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, Path]] = {}
    index: dict[str, Any] = {"runner": RUNNER, "graphs": {}}
    for graph, records in calls.items():
        inputs_path, outputs_path = out_dir / f"{graph}_inputs.json", out_dir / f"{graph}_outputs.json"
        save_json([feeds for feeds, _ in records], str(inputs_path), description=f"{graph} inputs")
        results = RunResults()
        results.append((RUNNER, [IterationResult(outputs=dict(outs), runner_name=RUNNER) for _, outs in records]))
        results.save(str(outputs_path))
        written[graph] = {"inputs": inputs_path, "outputs": outputs_path}
        index["graphs"][graph] = {"calls": len(records), "inputs": sorted(records[0][0]),
                                  "outputs": sorted(records[0][1]),
                                  "files": [inputs_path.name, outputs_path.name],
                                  "graph_file": getattr((graphs or {}).get(graph), "file", f"{graph}.onnx")}
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))
    return written
