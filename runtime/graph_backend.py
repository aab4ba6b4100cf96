"""One :class:`~siamattn.runtime.backend.Backend` for every graph runtime (ONNX Runtime, TensorRT).

The exported graphs are wired together by tensor name: the template graph's outputs are inputs of the
search graph, the search graph's ``box_feat``/``mask_feat`` are inputs of the refinement graphs. Each graph
has exactly one input that no other graph produces (the template image, the search image, the RoI): the
host array of that call. A runner only has to upload host arrays, run a graph on named handles, and
download outputs; the handles stay in the runner's memory (GPU memory for TensorRT and ONNX Runtime's
CUDA provider), so the template cache and the refinement features never leave the device.
"""

from __future__ import annotations

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


class GraphBackend:
    """Backend over a :class:`GraphRunner` (see module docstring)."""

    def __init__(self, runner: GraphRunner) -> None:
        specs = runner.specs
        for required in ("template", "search"):
            if required not in specs:
                raise SiamAttnError(f"model has no '{required}' graph; re-export it with 'siamattn export'")
        self.runner = runner
        self.has_refine = "refine_box" in specs
        self.has_mask = "refine_mask" in specs
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
        self._template_out: dict[str, Any] = {}
        self._search_out: dict[str, Any] = {}
        self._cls_name, self._loc_name = self._find_output("search", "cls"), self._find_output("search", "loc")

    def _find_output(self, graph: str, name: str) -> str:
        names = [o.name for o in self.runner.specs[graph].outputs]
        if name not in names:
            raise SiamAttnError(f"graph '{graph}' has no output '{name}' (outputs: {names}); re-export the model")
        return name

    def _run(self, graph: str, host: np.ndarray) -> dict[str, Any]:
        spec = self.runner.specs[graph]
        feeds: dict[str, Any] = {}
        for inp in spec.inputs:
            if inp.name == self._host_input[graph]:
                feeds[inp.name] = self.runner.upload(graph, inp.name, host)
            elif inp.name in self._search_out:
                feeds[inp.name] = self._search_out[inp.name]
            elif inp.name in self._template_out:
                feeds[inp.name] = self._template_out[inp.name]
            else:
                raise SiamAttnError(f"graph '{graph}' needs '{inp.name}' before it was computed (call order)")
        return self.runner.run(graph, feeds)

    def init_template(self, z_crop: np.ndarray) -> None:
        self._search_out = {}
        self._template_out = self._run("template", z_crop)

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._template_out:
            raise SiamAttnError("search() called before init_template()")
        self._search_out = self._run("search", x_crop)
        return (self.runner.download(self._search_out[self._cls_name]),
                self.runner.download(self._search_out[self._loc_name]))

    def _refine(self, graph: str, roi: np.ndarray) -> np.ndarray:
        if not self._search_out:
            raise SiamAttnError(f"{graph}() called before search()")
        out = self._run(graph, np.ascontiguousarray(roi, dtype=np.float32))
        (only,) = out.values()
        return self.runner.download(only)

    def refine_box(self, roi: np.ndarray) -> np.ndarray:
        return self._refine("refine_box", roi)

    def refine_mask(self, roi: np.ndarray) -> np.ndarray:
        return self._refine("refine_mask", roi)
