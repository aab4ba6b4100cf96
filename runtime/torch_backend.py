"""PyTorch backend: runs the model's split stages directly. It is the reference the deployed backends are
checked against, and on a GPU it is also a fast backend (FP16 weights with FP32 attention islands, and the
per-frame search stage replayed from a CUDA graph)."""

from __future__ import annotations

from typing import Any

import numpy as np

from siamattn.errors import InputError, require


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
        self._cache: dict[str, Any] | None = None
        self._out: dict[str, Any] = {}
        self._use_graph = cuda_graph
        self._graph: Any = None
        self._static_x: Any = None

    @classmethod
    def from_checkpoint(cls, path: str, **kwargs: Any) -> TorchBackend:
        from siamattn.training.model import load_checkpoint

        return cls(load_checkpoint(path), **kwargs)

    def _tensor(self, a: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype, non_blocking=True)

    def _roi(self, roi: np.ndarray) -> Any:
        # RoIs stay FP32 whatever the feature precision: they are pixel coordinates.
        return self._torch.from_numpy(np.ascontiguousarray(roi, dtype=np.float32)).to(self.device)

    def _host(self, t: Any) -> np.ndarray:
        return t.float().cpu().numpy()

    def cache_arrays(self) -> dict[str, np.ndarray]:
        """The template cache of the last ``init_template``, as the template graph's outputs (FP32, by name)."""
        return {k: self._host(v) for k, v in (self._cache or {}).items()}

    def search_arrays(self) -> dict[str, np.ndarray]:
        """All outputs of the last ``search`` (cls, loc and the refinement features), by graph output name."""
        return {k: self._host(v) for k, v in self._out.items()}

    def init_template(self, z_crop: np.ndarray) -> None:
        with self._torch.inference_mode():
            self._cache = self.model.template(self._tensor(z_crop))
        self._graph = None  # the captured graph holds the previous template's tensors

    def _capture(self, x: Any) -> None:
        torch = self._torch
        self._static_x = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(2):  # warm-up outside the graph (cuDNN autotuning, lazy allocations)
                self.model.search(self._static_x, self._cache)
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.inference_mode():
            self._static_out = self.model.search(self._static_x, self._cache)

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            raise InputError("torch backend: search() called before init_template()")
        x = self._tensor(x_crop)
        if self._use_graph:
            if self._graph is None:
                self._capture(x)
            self._static_x.copy_(x)
            self._graph.replay()
            self._out = self._static_out
        else:
            with self._torch.inference_mode():
                self._out = self.model.search(x, self._cache)
        return self._host(self._out["cls"]), self._host(self._out["loc"])

    def refine_box(self, roi: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self._host(self.model.refine_box(self._out["box_feat"], self._roi(roi)))

    def refine_mask(self, roi: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self._host(self.model.refine_mask(self._out["mask_feat"], self._roi(roi)))
