"""Model cost per component and per deployment stage: parameters, FLOPs and CPU latency.

    python bench/model.py --config siamattn_r50 [--runs 10] [--threads N] [--out bench/results/model_siamattn_r50.json]

FLOPs come from torch.utils.flop_counter (2 per multiply-add) with formulas registered for the ops it
does not know (torchvision's deformable conv; the gather-based RoI pooling is counted by its arithmetic
ops). Latency is the median of ``--runs`` timed runs after warm-up, on this machine's CPU, FP32, batch 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from siamattn.config import SIAMMASK_MAPS, load_config
from siamattn.host import cpu_name
from siamattn.ops.deform_conv import deform_conv2d_flops
from siamattn.training.model import SiamAttn, build_model


def _deform_conv_flop(x_shape, w_shape, offset_shape, mask_shape, bias_shape, *args, out_shape=None, **kwargs):
    return deform_conv2d_flops(x_shape, w_shape, out_shape)


def count_flops(fn: Callable[[], object]) -> int:
    custom = {torch.ops.torchvision.deform_conv2d.default: _deform_conv_flop}
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        fn()
    return int(counter.get_total_flops())


def time_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up (allocator, lazy init)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def component_params(model: SiamAttn) -> dict[str, int]:
    def n(module: torch.nn.Module | None) -> int:
        return sum(p.numel() for p in module.parameters()) if module is not None else 0

    out = {"backbone": n(model.backbone), "neck": n(model.neck), "dsa": n(model.dsa), "rpn": n(model.rpn)}
    if model.refine is not None:
        r = model.refine
        mask = sum(n(getattr(r, a, None)) for a in ("mask_corr", "mask_layer1", "mask_stem", "mask_lateral",
                                                      "mask_pool", "mask_head"))
        out["refine_fuse"] = n(r.fuse) + n(r.box_xcorr)  # box features: fuse convs (+ xcorr blocks, box_corr head)
        out["refine_box"] = n(r.box_pool) + n(r.box_head)
        out["refine_mask"] = mask
    if model.mask_corr is not None:  # SiamMask: the correlation block (its 3969-channel head is not run) + Refine
        out["siammask"] = n(model.mask_corr) + n(model.mask_refine)
    out["total"] = n(model)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="siamattn_r50")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per stage (median reported)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/model_<config>.json)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    z = torch.rand(1, 3, cfg.tracker.exemplar_size, cfg.tracker.exemplar_size) * 255
    x = torch.rand(1, 3, cfg.tracker.instance_size, cfg.tracker.instance_size) * 255
    roi = torch.tensor([[0.0, 80.0, 80.0, 175.0, 175.0]])

    stages: dict[str, Callable[[], object]] = {}
    with torch.inference_mode():
        cache = model.template(z)
        out = model.search(x, cache)
        stages["template"] = lambda: model.template(z)
        stages["search"] = lambda: model.search(x, cache)
        if model.has_refine:
            stages["refine_box"] = lambda: model.refine_box(out["box_feat"], roi)
        if model.mask_by_position:  # SiamMask: the mask at a score-map cell
            pos = torch.tensor([[0.0, 12.0, 12.0]])
            stages["refine_mask"] = lambda: model.mask_at(*(out[k] for k in SIAMMASK_MAPS), pos)
        elif model.has_mask:
            stages["refine_mask"] = lambda: model.refine_mask(out["mask_feat"], roi)
        rows = []
        for name, fn in stages.items():
            rows.append({"stage": name, "gflops": count_flops(fn) / 1e9, "cpu_ms": time_ms(fn, args.runs)})

    params = component_params(model)
    per_frame = [r for r in rows if r["stage"] != "template"]
    result = {
        "config": cfg.name,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0],
                    "torch": torch.__version__},
        "params": params,
        "stages": rows,
        "per_frame": {"gflops": sum(r["gflops"] for r in per_frame), "cpu_ms": sum(r["cpu_ms"] for r in per_frame)},
    }

    print(f"SiamAttn cost, config {cfg.name} (CPU: {result['machine']['cores']} cores, "
          f"{result['machine']['torch_threads']} torch threads, FP32, batch 1, median of {args.runs})")
    print(f"\n{'component':<14}{'params (M)':>12}")
    for k, v in params.items():
        print(f"{k:<14}{v / 1e6:>12.2f}")
    print(f"\n{'stage':<14}{'GFLOPs':>10}{'CPU ms':>10}")
    for r in rows:
        print(f"{r['stage']:<14}{r['gflops']:>10.2f}{r['cpu_ms']:>10.1f}")
    pf = result["per_frame"]
    print(f"{'per frame':<14}{pf['gflops']:>10.2f}{pf['cpu_ms']:>10.1f}   (search + refinement stages)")

    path = args.out or Path(__file__).parent / "results" / f"model_{cfg.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
