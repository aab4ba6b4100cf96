"""The four deployment stages as traceable modules, their named inputs/outputs, and the dynamo export.

Names are the contract with the runtime (they also appear in manifest.json):

* ``template``:    ``z`` [1,3,127,127] -> the cache tensors ``z{level}_{part}`` (model.template's keys)
* ``search``:      ``x`` [1,3,255,255] + every cache tensor under the same name -> ``cls``, ``loc`` and, with
  refinement, ``box_feat`` (and ``mask_feat`` with the mask head)
* ``refine_box``:  ``box_feat``, ``rois`` [1,5] -> ``box_deltas`` [1,4] (normalised by model.refine.box_stds)
* ``refine_mask``: ``mask_feat``, ``rois`` [1,5] -> ``mask`` [1,1,64,64] probabilities

SiamMask (``model.siammask``; docs/DESIGN.md "SiamMask") has no ``refine_box``; its ``search`` also returns the mask
correlation map ``mask_corr`` and the crop's early maps ``stem``, ``layer1``, ``layer2``, and its ``refine_mask``
takes those and ``pos`` [1,3] (item, score-map row, column of the chosen anchor) -> ``mask`` [1,1,127,127].

With ``export.max_targets`` > 1 the per-frame graphs are exported a second time with a batch dimension
(``search_multi``, ``refine_box_multi``, ``refine_mask_multi``; docs/DESIGN.md "Many targets"): the same names,
every tensor's first axis is the target (1..max_targets), the cache tensors are the targets' template caches
stacked on that axis, and ``rois`` row i is ``[i, x1, y1, x2, y2]`` on target i's features.

With ``tracker.long_term`` the per-frame graphs are exported once more at the lost window (``search_lost``,
``refine_box_lost``, ``refine_mask_lost``; docs/DESIGN.md "Long-term search"): the same names and weights, ``x``
[1,3,L,L] with L = tracker.lost_instance_size (831), larger score maps and features, RoIs in the L crop.

Graph inputs and outputs are FP32 in every precision mode: FP16 lives inside the graphs (see fp16.py), so
the host side never converts and the cache passes from the template graph to the search graph unchanged.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import onnx
import torch
from torch import Tensor, nn

from siamattn.config import SIAMMASK_MAPS
from siamattn.errors import SiamAttnError
from siamattn.export.errors import ExportError
from siamattn.export.random_model import random_images, random_positions, random_rois
from siamattn.ops import dispatch
from siamattn.training.model import SiamAttn


class _Template(nn.Module):
    def __init__(self, model: SiamAttn, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, z: Tensor) -> tuple[Tensor, ...]:
        cache = self.model.template(z)
        return tuple(cache[k] for k in self.names)


class _Search(nn.Module):
    def __init__(self, model: SiamAttn, cache_names: list[str], out_names: list[str]) -> None:
        super().__init__()
        self.model, self.cache_names, self.out_names = model, cache_names, out_names

    def forward(self, x: Tensor, *cache: Tensor) -> tuple[Tensor, ...]:
        out = self.model.search(x, dict(zip(self.cache_names, cache, strict=True)))
        return tuple(out[k] for k in self.out_names)


class _RefineBox(nn.Module):
    def __init__(self, model: SiamAttn) -> None:
        super().__init__()
        self.model = model

    def forward(self, box_feat: Tensor, rois: Tensor) -> Tensor:
        return self.model.refine_box(box_feat, rois)


class _RefineMask(nn.Module):
    def __init__(self, model: SiamAttn) -> None:
        super().__init__()
        self.model = model

    def forward(self, mask_feat: Tensor, rois: Tensor) -> Tensor:
        return self.model.refine_mask(mask_feat, rois)


class _MaskAt(nn.Module):
    def __init__(self, model: SiamAttn) -> None:
        super().__init__()
        self.model = model

    def forward(self, mask_corr: Tensor, stem: Tensor, layer1: Tensor, layer2: Tensor, pos: Tensor) -> Tensor:
        return self.model.mask_at(mask_corr, stem, layer1, layer2, pos)


@dataclass
class Stage:
    """One graph to export: a module, example inputs (the export traces them; shapes become static) and
    the I/O names."""

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    output_names: list[str]
    # per input, {axis: name} of the axes that stay symbolic in the graph (the batch graphs); None: static
    dynamic_axes: dict[str, dict[int, str]] | None = None
    max_batch: int = 1  # largest value of the dynamic axes (the export's max_targets)

    def reference(self) -> dict[str, Tensor]:
        """The PyTorch stage's outputs on the example inputs (reference ops, not the export lowerings)."""
        with torch.no_grad():
            out = self.module(*self.inputs.values())
        out = out if isinstance(out, tuple) else (out,)
        return dict(zip(self.output_names, out, strict=True))


MULTI_SUFFIX = "_multi"
LOST_SUFFIX = "_lost"


def stages(model: SiamAttn, seed: int = 0, max_targets: int = 1) -> list[Stage]:
    """The model's deployment stages with example inputs computed from seeded random images, in run order;
    with ``max_targets`` > 1 followed by the batch versions of the per-frame stages (module docstring)."""
    model.eval()
    cfg = model.cfg
    z, x = random_images(cfg, seed=seed)
    with torch.no_grad():
        cache = model.template(z)
        searched = model.search(x, cache)
    cache_names = list(cache)
    out_names = list(searched)
    result = [
        Stage("template", _Template(model, cache_names).eval(), {"z": z}, cache_names),
        Stage("search", _Search(model, cache_names, out_names).eval(), {"x": x, **cache}, out_names),
    ]
    if model.has_refine:
        result.append(Stage("refine_box", _RefineBox(model).eval(), _refine_inputs(model, "refine_box", searched, seed),
                            ["box_deltas"]))
    if model.has_mask:
        mask_module = _MaskAt(model) if model.mask_by_position else _RefineMask(model)
        result.append(Stage("refine_mask", mask_module.eval(), _refine_inputs(model, "refine_mask", searched, seed),
                            ["mask"]))
    lost = _lost_stages(model, result, cache, seed) if cfg.tracker.long_term else []
    if max_targets > 1:
        result += _batch_stages(model, result, cache, seed, max_targets)
    return result + lost


def _refine_inputs(model: SiamAttn, stage: str, searched: dict[str, Tensor], seed: int, count: int = 1,
                   instance_size: int | None = None) -> dict[str, Tensor]:
    """Example inputs of a refinement stage: the search outputs it reads and its host input (RoIs, or SiamMask's
    positions), row i on item i of the search."""
    cfg = model.cfg
    if stage == "refine_mask" and model.mask_by_position:
        feats, host, name = SIAMMASK_MAPS, random_positions(cfg, count, seed, instance_size), "pos"
    else:
        feats, host, name = ("box_feat" if stage == "refine_box" else "mask_feat",), \
            random_rois(cfg, count, seed, instance_size), "rois"
    host[:, 0] = torch.arange(count, dtype=host.dtype)
    return {**{k: searched[k] for k in feats}, name: host}


def _lost_stages(model: SiamAttn, single: list[Stage], cache: dict[str, Tensor], seed: int) -> list[Stage]:
    """The per-frame stages again at the long-term lost window (static shapes, batch 1)."""
    size = model.cfg.tracker.lost_instance_size
    _, x = random_images(model.cfg, seed=seed + 2, instance_size=size)
    with torch.no_grad():
        searched = model.search(x, cache)
    out = []
    for stage in single[1:]:
        if stage.name == "search":
            inputs = {"x": x, **cache}
        else:
            inputs = _refine_inputs(model, stage.name, searched, seed, instance_size=size)
        out.append(Stage(stage.name + LOST_SUFFIX, stage.module, inputs, stage.output_names))
    return out


def _batch_stages(model: SiamAttn, single: list[Stage], cache: dict[str, Tensor], seed: int,
                  max_targets: int) -> list[Stage]:
    """The per-frame stages again, traced on two targets (two templates, two search images) with the target
    axis symbolic. The RoIs are one per target, each on its own target's features."""
    z2, x2 = random_images(model.cfg, seed=seed + 1)
    with torch.no_grad():
        cache2 = {k: torch.cat([v, w]) for (k, v), w in zip(cache.items(), model.template(z2).values(), strict=True)}
        x = torch.cat([single[1].inputs["x"], x2])
        searched = model.search(x, cache2)
    batch = {0: "targets"}
    out = []
    for stage in single[1:]:
        if stage.name == "search":
            inputs = {"x": x, **cache2}
        else:
            inputs = _refine_inputs(model, stage.name, searched, seed, count=2)
        out.append(Stage(stage.name + MULTI_SUFFIX, stage.module, inputs, stage.output_names,
                         {k: batch for k in inputs}, max_targets))
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The dynamo exporter prints its own step list and warnings; we print one line per graph instead."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_stage(stage: Stage, opset: int, ops: dict[str, Callable[..., Any]]) -> onnx.ModelProto:
    """Trace ``stage`` with ``torch.onnx.export(dynamo=True)`` under the given op lowerings. Unoptimised: the
    post-pass (postpass.optimize) folds constants first, which shrinks the graph before onnxscript's pattern
    rewriter runs (run on the raw trace it took ~150 s of a 1200-node search graph)."""
    dynamic_shapes = None
    if stage.dynamic_axes:
        dims = {name: torch.export.Dim(name, min=1, max=stage.max_batch)
                for axes in stage.dynamic_axes.values() for name in axes.values()}
        per_input = [{a: dims[n] for a, n in stage.dynamic_axes.get(k, {}).items()} or None for k in stage.inputs]
        # the search module takes (x, *cache): its dynamic shapes have the same nesting
        dynamic_shapes = (per_input[0], tuple(per_input[1:])) if stage.name.startswith("search") else tuple(per_input)
    try:
        with dispatch.use(**ops), _quiet(), torch.no_grad():
            program = torch.onnx.export(
                stage.module, tuple(stage.inputs.values()), dynamo=True, opset_version=opset,
                input_names=list(stage.inputs), output_names=stage.output_names, optimize=False,
                verbose=False, report=False, dynamic_shapes=dynamic_shapes,
            )
    except SiamAttnError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ExportError(f"exporting the {stage.name} graph failed: {first}") from exc
    assert program is not None
    return program.model_proto
