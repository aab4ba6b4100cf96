"""PyTorch backend: runs the model's split stages directly. It is the reference the deployed backends are
checked against, and on a GPU it is also a fast backend (FP16 weights with FP32 attention islands, and the
per-frame search stage replayed from a CUDA graph)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from siamattn.errors import InputError, require
from siamattn.runtime.graph_backend import STACKED_SETS_KEPT


def torch_device(device: str = "auto") -> str:
    """The torch device for a --device choice: "auto" is CUDA when torch sees a GPU, else CPU.

    The one place the runtime picks a torch device (the reference of ``siamattn check``, ``--backend torch``,
    ``siamattn eval --checkpoint``). "cuda:N" passes through for the Python API.
    """
    if device == "auto":
        torch = require("torch", "export", "the torch backend")
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"unknown torch device '{device}': choose one of auto, cpu, cuda (or cuda:N)")
    return device


class TorchBackend:
    """:class:`~siamattn.runtime.backend.Backend` over a :class:`siamattn.training.model.SiamAttn`.

    ``device``: "cpu", "cuda" or "cuda:N". ``half``: FP16 weights and activations (CUDA only; the channel
    and spatial attention softmaxes stay FP32 inside the model). ``cuda_graph``: capture the search stage
    once and replay it per frame (CUDA only), removing per-kernel launch overhead.
    """

    def __init__(self, model: Any, device: str = "cpu", half: bool = False, cuda_graph: bool = False) -> None:
        torch = require("torch", "export", "the torch backend")
        self._torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"torch backend: device '{device}' requested but torch sees no CUDA GPU; use --device cpu")
        if (half or cuda_graph) and not device.startswith("cuda"):
            raise InputError("torch backend: half precision and CUDA graphs need a CUDA device")
        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.eval().to(self.device, self.dtype)
        self.has_refine = bool(model.has_refine)
        self.has_mask = bool(model.has_mask)
        self.mask_by_position = bool(getattr(model, "mask_by_position", False))  # SiamMask (Backend docstring)
        # any number of targets per call; chunks of the export's max_targets, like the deployed backends
        self.max_batch = max(1, int(getattr(getattr(model.cfg, "export", None), "max_targets", 8)))
        self._templates: dict[int, dict[str, Any]] = {}  # slot -> template cache
        self._stacked: dict[tuple[int, ...], dict[str, Any]] = {}  # slots -> caches concatenated on the batch axis
        self._out: dict[str, Any] = {}
        self._use_graph = cuda_graph
        self._graph: Any = None
        self._graph_key: tuple[int, ...] | None = None
        self._static_x: Any = None

    def _tensor(self, a: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype, non_blocking=True)

    def _roi(self, roi: np.ndarray) -> Any:
        # RoIs stay FP32 whatever the feature precision: they are pixel coordinates.
        return self._torch.from_numpy(np.ascontiguousarray(roi, dtype=np.float32)).to(self.device)

    def _host(self, t: Any) -> np.ndarray:
        return t.float().cpu().numpy()

    def cache_arrays(self, slot: int = 0) -> dict[str, np.ndarray]:
        """The template cache of ``slot``, as the template graph's outputs (FP32, by name)."""
        return {k: self._host(v) for k, v in self._templates.get(slot, {}).items()}

    def search_arrays(self) -> dict[str, np.ndarray]:
        """All outputs of the last search (cls, loc and the refinement features), by graph output name."""
        return {k: self._host(v) for k, v in self._out.items()}

    # -- Backend (siamattn.runtime.backend) ----------------------------------------------------------
    def set_template(self, slot: int, z_crop: np.ndarray) -> None:
        self.drop_template(slot)
        with self._torch.inference_mode():
            self._templates[slot] = self.model.template(self._tensor(z_crop))

    def drop_template(self, slot: int) -> None:
        self._templates.pop(slot, None)
        self._stacked = {k: v for k, v in self._stacked.items() if slot not in k}
        if self._graph_key is not None and slot in self._graph_key:
            self._graph = self._graph_key = None  # the captured graph holds that template's tensors

    def _cache(self, slots: tuple[int, ...]) -> dict[str, Any]:
        if len(slots) == 1:
            return self._templates[slots[0]]
        cache = self._stacked.get(slots)
        if cache is None:
            if len(self._stacked) >= STACKED_SETS_KEPT:
                self._stacked.clear()
            first = self._templates[slots[0]]
            cache = {k: self._torch.cat([self._templates[s][k] for s in slots]) for k in first}
            self._stacked[slots] = cache
        return cache

    def _capture(self, x: Any, cache: dict[str, Any]) -> None:
        torch = self._torch
        self._static_x = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(2):  # warm-up outside the graph (cuDNN autotuning, lazy allocations)
                self.model.search(self._static_x, cache)
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.inference_mode():
            self._static_out = self.model.search(self._static_x, cache)

    def search_batch(self, x_crops: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(int(s) for s in slots)
        if not key or any(s not in self._templates for s in key):
            raise InputError("torch backend: search_batch() called before set_template()")
        if len(key) > self.max_batch or len(set(key)) != len(key) or (
                len(key) > 1 and x_crops.shape[0] != len(key)):
            raise InputError(f"torch backend: {x_crops.shape[0]} crops for slots {list(key)}, at most "
                             f"{self.max_batch} distinct slots, one per crop")
        x = self._tensor(x_crops)
        cache = self._cache(key)
        if self._use_graph:  # one captured graph, for the last set of slots searched
            if self._graph is None or self._graph_key != key:
                self._capture(x, cache)
                self._graph_key = key
            self._static_x.copy_(x)
            self._graph.replay()
            self._out = self._static_out
        else:
            with self._torch.inference_mode():
                self._out = self.model.search(x, cache)
        return self._host(self._out["cls"]), self._host(self._out["loc"])

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self._host(self.model.refine_box(self._out["box_feat"], self._roi(rois)))

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            if self.mask_by_position:  # rois: the positions [n, 3]
                o = self._out
                return self._host(self.model.mask_at(o["mask_corr"], o["stem"], o["layer1"], o["layer2"],
                                                     self._roi(rois)))
            return self._host(self.model.refine_mask(self._out["mask_feat"], self._roi(rois)))
