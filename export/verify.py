"""Run exported graphs on the CPU and compare them with the PyTorch stages.

Standard-ONNX graphs run in ONNX Runtime. Graphs with our custom nodes (``siamattn::DeformRoIPool``,
``siamattn::SiamAttnDeformConv``) run in ``onnx.reference.ReferenceEvaluator`` with those nodes evaluated by
the PyTorch reference ops, so the plugin-mode graph's own structure (attributes, input order, the nodes
around them) is what is checked.

FP16 caveat: ONNX Runtime's CPU provider runs FP16 ops without an FP16 kernel (MatMul, Softmax, ...) in
FP32 and removes the FP32->FP16->FP32 cast pairs between consecutive such ops, so FP16 overflow and
rounding inside such chains go unseen. The reference evaluator (``runner="reference"``) computes every op
in its graph type (numpy), which is what a strongly typed engine does; use it for FP16 error figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from siamattn.plugins.names import CUSTOM_DEFORM_CONV, DEFORM_ROI_POOL, ONNX_DOMAIN

if TYPE_CHECKING:
    from siamattn.export.graphs import Stage


class _DeformRoIPoolRef(OpRun):
    op_domain = ONNX_DOMAIN

    def _run(self, feat: np.ndarray, rois: np.ndarray, offset: np.ndarray | None = None,  # type: ignore[override]
             output_height: int | None = None, output_width: int | None = None, spatial_scale: float | None = None,
             sampling_ratio: int | None = None, gamma: float | None = None,
             mode: int | None = None) -> tuple[np.ndarray]:
        import torch

        from siamattn.ops import deform_roi_pool
        from siamattn.ops.deform_roi_pool import MODES

        off = None if offset is None else torch.from_numpy(np.asarray(offset, np.float32))
        out = deform_roi_pool(torch.from_numpy(np.asarray(feat, np.float32)), torch.from_numpy(np.asarray(rois)),
                              off, (int(output_height), int(output_width)), float(spatial_scale),  # type: ignore[arg-type]
                              int(sampling_ratio), float(gamma), MODES[int(mode or 0)])  # type: ignore[arg-type]
        return (out.numpy().astype(feat.dtype),)


_DeformRoIPoolRef.__name__ = DEFORM_ROI_POOL.name  # ReferenceEvaluator matches custom ops by class name


class _DeformConvRef(OpRun):
    op_domain = ONNX_DOMAIN

    def _run(self, x: np.ndarray, w: np.ndarray, offset: np.ndarray, b: np.ndarray | None = None,  # type: ignore[override]
             mask: np.ndarray | None = None, dilations: list[int] | None = None, group: int | None = None,
             kernel_shape: list[int] | None = None, offset_group: int | None = None, pads: list[int] | None = None,
             strides: list[int] | None = None) -> tuple[np.ndarray]:
        import torch

        from siamattn.ops import deform_conv2d

        def t(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(np.asarray(a, np.float32))

        pads = list(pads or [0, 0, 0, 0])
        if pads[:2] != pads[2:]:
            raise NotImplementedError("reference SiamAttnDeformConv: asymmetric pads")
        out = deform_conv2d(t(x), t(offset), t(w), t(b), tuple(strides or [1, 1]), tuple(pads[:2]),  # type: ignore[arg-type]
                            tuple(dilations or [1, 1]), t(mask))
        return (out.numpy().astype(x.dtype),)


_DeformConvRef.__name__ = CUSTOM_DEFORM_CONV.name


class _GridSample(OpRun):
    """GridSample-16 ('bilinear'; the evaluator's own implementation knows only opset-20 mode names), computed
    by torch in FP32 and rounded to the input type like every other FP16 op here."""

    op_domain = ""

    def _run(self, x: np.ndarray, grid: np.ndarray, align_corners: int = 0, mode: str = "bilinear",  # type: ignore[override]
             padding_mode: str = "zeros") -> tuple[np.ndarray]:
        import torch
        import torch.nn.functional as F

        mode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
        out = F.grid_sample(torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(grid, np.float32)),
                            mode=mode, padding_mode=padding_mode, align_corners=bool(align_corners))
        return (out.numpy().astype(x.dtype),)


_GridSample.__name__ = "GridSample"


class _Conv(OpRun):
    """Conv computed by torch in FP32 and rounded to the input type: the evaluator's own Conv is a Python loop
    that took minutes per search graph (plugin graphs run here, not in ONNX Runtime)."""

    op_domain = ""

    def _run(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,  # type: ignore[override]
             auto_pad: str = "NOTSET", dilations: list[int] | None = None, group: int = 1,
             kernel_shape: list[int] | None = None, pads: list[int] | None = None,
             strides: list[int] | None = None) -> tuple[np.ndarray]:
        import torch
        import torch.nn.functional as F

        if auto_pad not in ("NOTSET", "VALID") or x.ndim != 4:
            raise NotImplementedError(f"reference Conv: auto_pad={auto_pad}, {x.ndim}-D input")
        top, left, bottom, right = list(pads or [0, 0, 0, 0]) if auto_pad == "NOTSET" else [0, 0, 0, 0]
        xt = F.pad(torch.from_numpy(np.asarray(x, np.float32)), (left, right, top, bottom))
        bt = None if b is None else torch.from_numpy(np.array(b, np.float32))
        out = F.conv2d(xt, torch.from_numpy(np.asarray(w, np.float32)), bt, tuple(strides or [1, 1]), 0,
                       tuple(dilations or [1, 1]), int(group or 1))
        return (out.numpy().astype(x.dtype),)


_Conv.__name__ = "Conv"


def has_custom_ops(model: onnx.ModelProto) -> bool:
    return any(n.domain not in ("", "ai.onnx") for n in model.graph.node)


def run_onnx(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
             runner: str = "auto") -> tuple[dict[str, np.ndarray], str]:
    """Outputs by name, and which runner produced them (``onnxruntime`` or ``reference``)."""
    if runner == "auto":
        runner = "reference" if has_custom_ops(model) else "onnxruntime"
    names = [o.name for o in model.graph.output]
    if runner == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        outs = sess.run(names, feeds)
    else:
        ops = [_DeformRoIPoolRef, _DeformConvRef, _GridSample, _Conv]
        outs = ReferenceEvaluator(model, new_ops=ops).run(names, feeds)
    return dict(zip(names, (np.asarray(o) for o in outs), strict=True)), runner


# float32 unit roundoff: the relative error of one correctly rounded float32 result
FP32_ROUNDOFF = 2.0**-24
_ROUNDED_LAYERS = ("Conv1d", "Conv2d", "ConvTranspose2d", "Linear")


def rounding_noise(stage: Stage, seed: int = 0) -> dict[str, float]:
    """Per output, how far the PyTorch stage itself moves (max abs change / range) when the result of every
    conv and linear layer is perturbed by one float32 rounding (relative noise of 2^-24, seeded).

    This is the yardstick for an FP32 export's parity figure: any other implementation of the same network
    (ONNX Runtime, TensorRT, PyTorch with another conv algorithm) sums in another order and differs from
    PyTorch by about this much. Well-conditioned (trained) weights give ~1e-5; random weights with unit-scale
    residual branches or saturated softmaxes amplify rounding 10-100x, and then a larger export error is the
    weights', not the graph's (docs/EXPORT.md, "Parity figures").
    """
    import torch

    gen = torch.Generator().manual_seed(seed)

    def perturb(_module: Any, _inputs: Any, out: Any) -> Any:
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return out
        return out + out * FP32_ROUNDOFF * torch.randn(out.shape, generator=gen, dtype=out.dtype)

    hooks = [m.register_forward_hook(perturb) for m in stage.module.modules()
             if type(m).__name__ in _ROUNDED_LAYERS]
    try:
        noisy = stage.reference()
    finally:
        for h in hooks:
            h.remove()
    figures = compare(stage.reference(), {k: v.numpy() for k, v in noisy.items()})
    return {name: v["rel_err"] for name, v in figures.items()}


def compare(reference: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: max abs error, the reference's value range, and their ratio (the parity figure)."""
    result = {}
    for name, ref in reference.items():
        r = np.asarray(ref.detach().cpu().numpy() if hasattr(ref, "detach") else ref, dtype=np.float64)
        o = np.asarray(outputs[name], dtype=np.float64)
        if r.shape != o.shape:
            raise AssertionError(f"output {name}: shape {o.shape} differs from the PyTorch stage's {r.shape}")
        err = float(np.max(np.abs(r - o))) if r.size else 0.0
        rng = float(r.max() - r.min()) if r.size else 0.0
        finite = bool(np.isfinite(o).all())
        result[name] = {"max_abs_err": err if finite else float("inf"), "range": rng,
                        "rel_err": (err / rng if rng > 0 else err) if finite else float("inf")}
    return result
