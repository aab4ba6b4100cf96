"""Benchmark of the deformable-op kernels (issue 4).

    python bench/plugins.py [--runs 200] [--out bench/results/plugins.json]
    python bench/plugins.py --cpu        # no GPU: times the CPU implementation instead (labelled as such)

GPU (the real benchmark): DeformConv2d, ours vs torchvision.ops.deform_conv2d (FP32 and FP16) vs a dense
cuDNN conv of the same shape (the practical floor), at the tracker's shapes (256->256 ch, 3x3, 31x31 and
7x7 maps, batch 1) and 256 ch 64x64 batch 8; DeformRoIPool vs the PyTorch reference (siamattn.ops) at the
refinement's shapes. Median (and p90) of many runs timed with CUDA events after warm-up. Prints a table and
writes JSON. Target: at the tracker's shapes in FP16, >= 2x faster than torchvision, <= 2x the dense conv.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siamattn.host import cpu_name

CONV_SHAPES = [
    ("search 31x31", 1, 256, 31, 31),
    ("template 7x7", 1, 256, 7, 7),
    ("large 64x64 b8", 8, 256, 64, 64),
]
# Box branch: 25x25 maps pooled to 4x4 at 25/255; mask branch: 63x63 maps pooled to 16x16 at 63/255.
POOL_SHAPES = [
    ("box 4x4 @25/255", 256, 25, 4, 25 / 255, 0, True),
    ("mask 16x16 @63/255", 256, 63, 16, 63 / 255, 2, False),
]


def _percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def time_cuda(fn: Callable[[], Any], runs: int, warmup: int = 20) -> dict[str, float]:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000.0)  # us
    return {"median_us": statistics.median(times), "p90_us": _percentile(times, 0.9)}


def time_cpu(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return {"median_us": statistics.median(times), "p90_us": _percentile(times, 0.9)}


def bench_gpu(runs: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from torchvision.ops import deform_conv2d

    from siamattn.ops import deform_roi_pool
    from siamattn.plugins.build import LIB_FILES, BuildOptions, build
    from siamattn.plugins.library import DeformLibrary, conv_params, split_k_override

    torch.backends.cudnn.benchmark = True
    major, minor = torch.cuda.get_device_capability()
    lib_dir = build(BuildOptions(cuda=True, cuda_archs=f"{major}{minor}", tensorrt=False))
    lib = DeformLibrary(lib_dir / LIB_FILES["cuda"])
    rows = []
    for dtype in (torch.float16, torch.float32):
        dt = str(dtype).split(".")[-1]
        for name, n, c, h, w in CONV_SHAPES:
            x = torch.randn(n, c, h, w, device="cuda", dtype=dtype)
            wt = torch.randn(c, c, 3, 3, device="cuda", dtype=dtype) * 0.02
            b = torch.zeros(c, device="cuda", dtype=dtype)
            off = torch.randn(n, 18, h, w, device="cuda", dtype=dtype)
            p = lib.validate_conv(conv_params(x.shape, wt.shape, off.shape, has_bias=True, mask_shape=None, stride=1,
                                              padding=1, dilation=1, groups=1))
            ws = torch.empty(lib.conv_workspace_size(p, 1 if dtype == torch.float16 else 0), dtype=torch.uint8,
                             device="cuda")  # allocated once, as TensorRT does
            ours = time_cuda(lambda x=x, wt=wt, b=b, off=off, ws=ws: lib.deform_conv2d_cuda(
                x, wt, off, b, padding=1, workspace=ws), runs)
            # The same kernels with split-K off, to show what it buys on the small maps.
            with split_k_override(1):
                no_split = time_cuda(lambda x=x, wt=wt, b=b, off=off, ws=ws: lib.deform_conv2d_cuda(
                    x, wt, off, b, padding=1, workspace=ws), runs)
            tv = time_cuda(lambda x=x, wt=wt, b=b, off=off: deform_conv2d(x, off, wt, b, padding=1), runs)
            dense = time_cuda(lambda x=x, wt=wt, b=b: F.conv2d(x, wt, b, padding=1), runs)
            rows.append({"op": "deform_conv2d", "shape": name, "dtype": dt, "ours_us": ours["median_us"],
                         "ours_p90_us": ours["p90_us"], "ours_no_split_k_us": no_split["median_us"],
                         "torchvision_us": tv["median_us"],
                         "dense_cudnn_us": dense["median_us"],
                         "speedup_vs_torchvision": tv["median_us"] / ours["median_us"],
                         "ratio_to_dense": ours["median_us"] / dense["median_us"]})
        for name, c, hw, size, scale, ratio, with_off in POOL_SHAPES:
            feat = torch.randn(1, c, hw, hw, device="cuda", dtype=dtype)
            xy = torch.rand(16, 2, device="cuda") * 200
            rois = torch.cat([torch.zeros(16, 1, device="cuda"), xy, xy + 20 + torch.rand(16, 2, device="cuda") * 100],
                             dim=1)
            off = torch.randn(16, 2, size, size, device="cuda", dtype=dtype) if with_off else None
            ours = time_cuda(lambda feat=feat, rois=rois, off=off, size=size, scale=scale, ratio=ratio:
                             lib.deform_roi_pool_cuda(feat, rois, off, output_size=size, spatial_scale=scale,
                                                      sampling_ratio=ratio), runs)
            ref = time_cuda(lambda feat=feat, rois=rois, off=off, size=size, scale=scale, ratio=ratio:
                            deform_roi_pool(feat, rois, off, output_size=size, spatial_scale=scale,
                                            sampling_ratio=ratio), max(20, runs // 4))
            rows.append({"op": "deform_roi_pool", "shape": name, "dtype": dt, "ours_us": ours["median_us"],
                         "ours_p90_us": ours["p90_us"], "pytorch_reference_us": ref["median_us"],
                         "speedup_vs_reference": ref["median_us"] / ours["median_us"]})
    return {"device": torch.cuda.get_device_name(), "capability": f"sm_{major}{minor}", "library": lib.build_info,
            "rows": rows}


def bench_cpu(runs: int) -> dict[str, Any]:
    """CPU implementation timings: a sanity figure for CPU-only machines, not the deployment path."""
    import numpy as np

    from siamattn.plugins.library import load

    lib = load("cpu")
    rng = np.random.default_rng(0)
    rows = []
    for name, n, c, h, w in CONV_SHAPES[:2]:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((c, c, 3, 3)) * 0.02).astype(np.float32)
        off = rng.standard_normal((n, 18, h, w)).astype(np.float32)
        t = time_cpu(lambda x=x, wt=wt, off=off: lib.deform_conv2d(x, wt, off, padding=1), max(3, runs // 50))
        rows.append({"op": "deform_conv2d (CPU implementation)", "shape": name, "dtype": "float32",
                     "ours_us": t["median_us"], "ours_p90_us": t["p90_us"]})
    for name, c, hw, size, scale, ratio, with_off in POOL_SHAPES:
        feat = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        xy = rng.uniform(0, 200, (16, 2))
        rois = np.concatenate([np.zeros((16, 1)), xy, xy + rng.uniform(20, 120, (16, 2))], 1).astype(np.float32)
        off = rng.standard_normal((16, 2, size, size)).astype(np.float32) if with_off else None
        t = time_cpu(lambda feat=feat, rois=rois, off=off, size=size, scale=scale, ratio=ratio: lib.deform_roi_pool(
            feat, rois, off, output_size=size, spatial_scale=scale, sampling_ratio=ratio), max(3, runs // 10))
        rows.append({"op": "deform_roi_pool (CPU implementation)", "shape": name, "dtype": "float32",
                     "ours_us": t["median_us"], "ours_p90_us": t["p90_us"]})
    return {"device": f"CPU ({cpu_name()}), CPU implementation only", "rows": rows}


def print_table(result: dict[str, Any]) -> None:
    print(f"device: {result['device']}")
    cols = ["op", "shape", "dtype", "ours_us", "ours_no_split_k_us", "torchvision_us", "dense_cudnn_us",
            "pytorch_reference_us", "speedup_vs_torchvision", "ratio_to_dense", "speedup_vs_reference"]
    cols = [c for c in cols if any(c in r for r in result["rows"])]
    print(" | ".join(f"{c:>22s}" if i > 2 else f"{c:<36s}"[: 36 if i == 0 else 20] for i, c in enumerate(cols)))
    for r in result["rows"]:
        cells = []
        for i, c in enumerate(cols):
            v = r.get(c, "")
            text = f"{v:.1f}" if isinstance(v, float) and c.endswith("_us") else (
                f"{v:.2f}x" if isinstance(v, float) else str(v))
            cells.append(f"{text:>22s}" if i > 2 else (f"{text:<36s}" if i == 0 else f"{text:<20s}"))
        print(" | ".join(cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200, help="timed runs per measurement (default: %(default)s)")
    ap.add_argument("--out", type=Path, help="JSON output (default: bench/results/plugins[_cpu].json)")
    ap.add_argument("--cpu", action="store_true", help="time the CPU implementation (when there is no GPU)")
    args = ap.parse_args(argv)
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu and not args.cpu:
        print("bench/plugins.py needs a CUDA GPU with a CUDA build of torch (none here). "
              "Run with --cpu to time the CPU implementation instead.")
        return 2
    result = bench_gpu(args.runs) if has_gpu and not args.cpu else bench_cpu(args.runs)
    result["runs"] = args.runs
    default_out = "bench/results/plugins.json" if "capability" in result else "bench/results/plugins_cpu.json"
    args.out = args.out or Path(default_out)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
