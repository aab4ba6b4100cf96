"""One :class:`~siamattn.runtime.backend.Backend` for every graph runtime (ONNX Runtime, TensorRT).

The exported graphs are wired together by tensor name: the template graph's outputs are inputs of the
search graph, the search graph's ``box_feat``/``mask_feat`` are inputs of the refinement graphs. Each graph
has exactly one input that no other graph produces (the template image, the search image, the RoI): the
host array of that call. A runner only has to upload host arrays, run a graph on named handles, and
download outputs; the handles stay in the runner's memory (GPU memory for TensorRT and ONNX Runtime's
CUDA provider), so the template cache and the refinement features never leave the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from siamattn.errors import SiamAttnError

GRAPHS = ("template", "search", "refine_box", "refine_mask")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name, e.g. "float32", "float16"


@dataclass(frozen=True)
class GraphSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class GraphRunner(Protocol):
    """What :class:`GraphBackend` needs from a runtime. Handles are runtime-native tensors."""

    specs: dict[str, GraphSpec]  # the graphs this runner can run, by name

    def upload(self, graph: str, name: str, array: np.ndarray) -> Any:
        """Host array -> handle usable as input ``name`` of ``graph`` (may reuse a per-input buffer)."""

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run ``graph`` on handles for all of its inputs; return handles for all of its outputs."""

    def download(self, handle: Any) -> np.ndarray:
        """Handle -> host array (float32 or float16)."""

    # Optional, for a runner whose outputs live in memory that the next run of the graph overwrites (TensorRT's
    # buffers bound by name), and that allocates memory for uploads of produced tensors:
    #   keep(graph, handles) -> handles that later runs leave alone (a target's template cache)
    #   release(handles)     -> frees what keep()/upload() allocated for those handles
    # A runner without them returns fresh outputs per run and lets garbage collection free them (ONNX Runtime).


# Graphs with a batch dimension (export.max_targets > 1): the per-frame graphs of several targets at once.
MULTI_SUFFIX = "_multi"
# The per-frame graphs at the long-term mode's lost window (tracker.lost_instance_size; batch 1): a search crop
# of that side runs them (docs/DESIGN.md "Long-term search").
LOST_SUFFIX = "_lost"
# Target sets whose stacked caches are kept: the chunks of one frame reuse theirs; past this, older sets
# (targets since added or removed) are dropped together.
STACKED_SETS_KEPT = 8


class GraphBackend:
    """:class:`~siamattn.runtime.backend.Backend` over a :class:`GraphRunner` (see module docstring).

    Templates are kept per slot as the template graph's output handles. A batch of one runs the batch-1
    graphs (``search``, ``refine_*``) on the slot's handles directly; a batch of n > 1 runs the ``*_multi``
    graphs (batch dimension 1..``max_batch``) on the slots' caches concatenated along the batch axis. That
    stacked cache is built once per set of slots (a host round trip, only when targets are added or removed)
    and reused every frame. Without ``*_multi`` graphs (an export with max_targets 1) ``max_batch`` is 1.
    """

    def __init__(self, runner: GraphRunner, max_batch: int = 8) -> None:
        specs = runner.specs
        for required in ("template", "search"):
            if required not in specs:
                raise SiamAttnError(f"model has no '{required}' graph; re-export it with 'siamattn export'")
        self.runner = runner
        self.has_refine = "refine_box" in specs
        self.has_mask = "refine_mask" in specs
        multi = [g + MULTI_SUFFIX for g in ("search", "refine_box", "refine_mask") if g in specs]
        self.max_batch = max(1, int(max_batch)) if all(g in specs for g in multi) else 1
        produced = {o.name for s in specs.values() for o in s.outputs}
        self._host_input: dict[str, str] = {}
        for name, spec in specs.items():
            fresh = [i.name for i in spec.inputs if i.name not in produced]
            if len(fresh) != 1:
                raise SiamAttnError(
                    f"graph '{name}' must have exactly one input that no other graph produces, has {fresh}: "
                    "the model folder mixes graphs from different exports; re-export it"
                )
            self._host_input[name] = fresh[0]
        self._templates: dict[int, dict[str, Any]] = {}  # slot -> template graph outputs
        self._stacked: dict[tuple[int, ...], dict[str, Any]] = {}  # slots -> concatenated cache handles
        # ... and the host arrays they were uploaded from, referenced while the handles live (ONNX Runtime CPU
        # values share their memory)
        self._stacked_host: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
        self._search_out: dict[str, Any] = {}
        self._suffix = ""  # which graph family ran the last search ("" or MULTI_SUFFIX)
        self._cls_name, self._loc_name = self._find_output("search", "cls"), self._find_output("search", "loc")
        # search crop side -> the graph family that takes it
        self._family = {self._crop_side(g): g[len("search"):] for g in ("search", "search" + LOST_SUFFIX)
                        if g in specs}
        self.search_sizes = tuple(self._family)
        # SiamMask's mask graph takes the chosen anchors' positions instead of RoIs (docs/DESIGN.md "SiamMask")
        self.mask_by_position = self.has_mask and self._host_input["refine_mask"] == "pos"

    def _crop_side(self, graph: str) -> int:
        spec = self.runner.specs[graph]
        (x,) = [i for i in spec.inputs if i.name == self._host_input[graph]]
        return int(x.shape[-1])

    def _find_output(self, graph: str, name: str) -> str:
        names = [o.name for o in self.runner.specs[graph].outputs]
        if name not in names:
            raise SiamAttnError(f"graph '{graph}' has no output '{name}' (outputs: {names}); re-export the model")
        return name

    def _run(self, graph: str, host: np.ndarray, cache: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = self.runner.specs[graph]
        feeds: dict[str, Any] = {}
        for inp in spec.inputs:
            if inp.name == self._host_input[graph]:
                feeds[inp.name] = self.runner.upload(graph, inp.name, host)
            elif inp.name in self._search_out:
                feeds[inp.name] = self._search_out[inp.name]
            elif cache is not None and inp.name in cache:
                feeds[inp.name] = cache[inp.name]
            else:
                raise SiamAttnError(f"graph '{graph}' needs '{inp.name}' before it was computed (call order)")
        return self.runner.run(graph, feeds)

    # -- Backend (siamattn.runtime.backend) ----------------------------------------------------------
    def set_template(self, slot: int, z_crop: np.ndarray) -> None:
        self.drop_template(slot)
        self._search_out = {}
        out = self._run("template", z_crop)
        keep = getattr(self.runner, "keep", None)
        self._templates[slot] = keep("template", out) if keep is not None else out

    def _release(self, handles: dict[str, Any]) -> None:
        release = getattr(self.runner, "release", None)
        if release is not None:
            release(handles)

    def drop_template(self, slot: int) -> None:
        old = self._templates.pop(slot, None)
        if old is not None:
            self._release(old)
        for key in [k for k in self._stacked if slot in k]:
            self._release(self._stacked.pop(key))
            del self._stacked_host[key]

    def _stacked_cache(self, graph: str, slots: tuple[int, ...]) -> dict[str, Any]:
        cache = self._stacked.get(slots)
        if cache is None:
            if len(self._stacked) >= STACKED_SETS_KEPT:
                for old in self._stacked.values():
                    self._release(old)
                self._stacked.clear()
                self._stacked_host.clear()
            names = [i.name for i in self.runner.specs[graph].inputs if i.name != self._host_input[graph]]
            host = {n: np.concatenate([np.asarray(self.runner.download(self._templates[s][n])) for s in slots])
                    for n in names}
            cache = {n: self.runner.upload(graph, n, a) for n, a in host.items()}
            self._stacked[slots], self._stacked_host[slots] = cache, host
        return cache

    def search_batch(self, x_crops: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(int(s) for s in slots)
        missing = [s for s in key if s not in self._templates]
        if missing or not key:
            raise SiamAttnError(f"search_batch() called before set_template() (slots {missing or '[]'})")
        if len(key) > self.max_batch or len(set(key)) != len(key) or (
                len(key) > 1 and x_crops.shape[0] != len(key)):
            raise SiamAttnError(f"search_batch: {x_crops.shape[0]} crops for slots {list(key)}, at most "
                                f"{self.max_batch} distinct slots, one per crop")
        self._search_out = {}
        # the lost window's crops run the *_lost graphs; any other crop the normal ones (their runtime checks it)
        family = self._family.get(int(x_crops.shape[-1]), "")
        if family:  # the lost window: batch 1 per call
            if len(key) != 1:
                raise SiamAttnError(f"search_batch: the {LOST_SUFFIX[1:]}-window graphs take one target per call, "
                                    f"got {len(key)}")
            self._suffix = family
            self._search_out = self._run("search" + family, x_crops, self._templates[key[0]])
        elif len(key) == 1:
            self._suffix = ""
            self._search_out = self._run("search", x_crops, self._templates[key[0]])
        else:
            self._suffix = MULTI_SUFFIX
            graph = "search" + MULTI_SUFFIX
            self._search_out = self._run(graph, x_crops, self._stacked_cache(graph, key))
        return (self.runner.download(self._search_out[self._cls_name]),
                self.runner.download(self._search_out[self._loc_name]))

    def _refine(self, graph: str, roi: np.ndarray) -> np.ndarray:
        if not self._search_out:
            raise SiamAttnError(f"{graph}() called before search()")
        out = self._run(graph + self._suffix, np.ascontiguousarray(roi, dtype=np.float32))
        (only,) = out.values()
        return self.runner.download(only)

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray:
        return self._refine("refine_box", rois)

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray:
        return self._refine("refine_mask", rois)
