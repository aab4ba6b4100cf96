"""GPU check of the CUDA kernels: ``python -m siamattn.plugins.gpu_check [--json report.json]``.

On a machine with a CUDA GPU and a CUDA build of torch it

1. builds the kernel library for this GPU's architecture (or uses ``SIAMATTN_PLUGINS_DIR``);
2. compares DeformConv2d with ``torchvision.ops.deform_conv2d`` and DeformRoIPool with
   ``siamattn.ops.deform_roi_pool`` (both evaluated in float64 on the GPU as the reference) at the tracker's
   shapes and on random ones, FP32 and FP16, and reports torchvision's own FP16 error next to ours;
3. runs the torch-free self-test binary (CUDA vs the CPU implementation), then again under
   ``compute-sanitizer`` memcheck, racecheck and initcheck.

Exit status 0 when every check passes, 1 when one fails, 2 when no GPU is available.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from siamattn.outputs import write_file
from siamattn.plugins.library import split_k_override

# Normalised error bounds: max|ours - ref| / max(|ref|, 1). FP32: sums of up to 2304 FP32 products. FP16:
# inputs are FP16 in both; ours rounds each sampled value and the output to half (2^-11 relative each) and
# sums in FP32, which stays well under 2e-3; FP16 accumulation (as in torchvision's half path) does not.
TOL = {"float32": 2e-5, "float16": 2e-3}


def _conv_cases() -> list[dict[str, Any]]:
    tracker = dict(c=256, m=256, k=3, stride=1, pad=(1, 1, 1, 1), dil=1, groups=1, og=1, mask=False)
    cases = [
        dict(name="tracker search 31x31", n=1, h=31, w=31, **tracker),
        dict(name="tracker template 7x7", n=1, h=7, w=7, **tracker),  # split-K path (18 K ranges)
        dict(name="tracker template 7x7 split-K off", n=1, h=7, w=7, split_k=1, **tracker),
        dict(name="256ch 64x64 batch 8", n=8, h=64, w=64, **tracker),
        dict(name="random g2 og3 mask s2", n=2, c=6, h=13, w=11, m=10, k=3, stride=2, pad=(1, 0, 2, 1), dil=1,
             groups=2, og=3, mask=True),
        dict(name="random 5x5 dil2", n=1, c=3, h=17, w=9, m=7, k=5, stride=1, pad=(4, 4, 4, 4), dil=2, groups=1,
             og=1, mask=False),
        dict(name="random 1x1 g4", n=3, c=8, h=5, w=7, m=12, k=1, stride=1, pad=(0, 0, 0, 0), dil=1, groups=4,
             og=2, mask=True),
    ]
    return cases


def _norm_err(a: Any, ref: Any) -> float:
    return float((a.double() - ref).abs().max() / ref.abs().max().clamp(min=1.0))


def check_conv(lib: Any, case: dict[str, Any], dtype: Any) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from torchvision.ops import deform_conv2d

    g = torch.Generator(device="cuda").manual_seed(0)
    dev = "cuda"
    n, c, h, w, m, k = case["n"], case["c"], case["h"], case["w"], case["m"], case["k"]
    hb, wb, he, we = case["pad"]
    s, d, og = case["stride"], case["dil"], case["og"]
    oh = (h + hb + he - d * (k - 1) - 1) // s + 1
    ow = (w + wb + we - d * (k - 1) - 1) // s + 1
    x = torch.randn(n, c, h, w, device=dev, generator=g).to(dtype)
    wt = (torch.randn(m, c // case["groups"], k, k, device=dev, generator=g) / (c // case["groups"] * k * k) ** 0.5)
    wt = wt.to(dtype)
    b = torch.randn(m, device=dev, generator=g).to(dtype)
    off = (torch.randn(n, og * 2 * k * k, oh, ow, device=dev, generator=g) * 2).to(dtype)
    mask = torch.rand(n, og * k * k, oh, ow, device=dev, generator=g).to(dtype) if case["mask"] else None
    with split_k_override(case.get("split_k")):
        ours = lib.deform_conv2d_cuda(x, wt, off, b, mask, stride=s, padding=case["pad"], dilation=d,
                                      groups=case["groups"])
        torch.cuda.synchronize()
    # Reference in float64 on the same (possibly FP16-rounded) values; asymmetric pads via explicit padding.
    x64 = F.pad(x.double(), (wb, we, hb, he))
    ref = deform_conv2d(x64, off.double(), wt.double(), b.double(), stride=s, dilation=d,
                        mask=None if mask is None else mask.double())
    res = {"op": "deform_conv2d", "case": case["name"], "dtype": str(dtype).split(".")[-1],
           "err": _norm_err(ours, ref)}
    if hb == he and wb == we:
        tv = deform_conv2d(x, off, wt, b, stride=s, padding=(hb, wb), dilation=d, mask=mask)
        res["torchvision_err"] = _norm_err(tv, ref)
    res["ok"] = res["err"] <= TOL[res["dtype"]] and bool(torch.isfinite(ours).all())
    return res


def check_roi_pool(lib: Any, name: str, size: int, hw: int, scale: float, ratio: int, with_offset: bool,
                   dtype: Any, rois_dtype: Any) -> dict[str, Any]:
    import torch

    from siamattn.ops import deform_roi_pool

    g = torch.Generator(device="cuda").manual_seed(1)
    feat = torch.randn(1, 256, hw, hw, device="cuda", generator=g).to(dtype)
    k = 16
    xy = torch.rand(k, 2, device="cuda", generator=g) * 300 - 40
    wh = torch.rand(k, 2, device="cuda", generator=g) * 180
    rois = torch.cat([torch.zeros(k, 1, device="cuda"), xy, xy + wh], dim=1).to(rois_dtype)
    off = torch.randn(k, 2, size, size, device="cuda", generator=g).to(dtype) if with_offset else None
    ours = lib.deform_roi_pool_cuda(feat, rois, off, output_size=size, spatial_scale=scale, sampling_ratio=ratio)
    torch.cuda.synchronize()
    ref = deform_roi_pool(feat.double(), rois.double(), None if off is None else off.double(), output_size=size,
                          spatial_scale=scale, sampling_ratio=ratio, gamma=0.1)
    err = _norm_err(ours, ref)
    dt = str(dtype).split(".")[-1]
    return {"op": "deform_roi_pool", "case": f"{name} rois {str(rois_dtype).split('.')[-1]}", "dtype": dt,
            "err": err, "ok": err <= TOL[dt] and bool(torch.isfinite(ours).all())}


def find_compute_sanitizer() -> str | None:
    for cand in (shutil.which("compute-sanitizer"), "/usr/local/cuda/bin/compute-sanitizer"):
        if cand and Path(cand).is_file():
            return cand
    return None


def run_selftests(lib_dir: Path) -> list[dict[str, Any]]:
    exe = lib_dir / "siamattn_deform_selftest"
    if not exe.is_file():
        return [{"check": "selftest", "ok": False, "detail": f"{exe} missing (CUDA build without the self-test)"}]
    runs = [("selftest", [str(exe)])]
    sanitizer = find_compute_sanitizer()
    for tool in ("memcheck", "racecheck", "initcheck"):
        if sanitizer:
            runs.append((f"compute-sanitizer {tool}",
                         [sanitizer, "--tool", tool, "--error-exitcode", "99", str(exe), "--quick"]))
    out = []
    for name, cmd in runs:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        out.append({"check": name, "ok": proc.returncode == 0, "detail": tail})
    if not sanitizer:
        out.append({"check": "compute-sanitizer", "ok": False,
                    "detail": "compute-sanitizer not found (it ships with the CUDA toolkit: put its bin/ on PATH)"})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    ap.add_argument("--no-sanitizer", action="store_true", help="skip the self-test and compute-sanitizer runs")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_check needs torch with CUDA (pip install 'siamattn-trt[export]')")
        return 2
    if not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and a CUDA build of torch; none is available here. The CPU "
              "implementation is covered by 'pytest tests/test_plugins_cpu.py'.")
        return 2
    from siamattn.plugins.build import LIB_FILES, BuildOptions, build
    from siamattn.plugins.library import DeformLibrary

    major, minor = torch.cuda.get_device_capability()
    env_dir = os.environ.get("SIAMATTN_PLUGINS_DIR")
    lib_dir = Path(env_dir) if env_dir else build(BuildOptions(cuda=True, cuda_archs=f"{major}{minor}", tensorrt=False))
    lib = DeformLibrary(lib_dir / LIB_FILES["cuda"])
    report: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "capability": f"sm_{major}{minor}",
                              "torch": torch.__version__, "library": str(lib.path), "build": lib.build_info,
                              "checks": []}
    print(f"GPU: {report['gpu']} ({report['capability']}), torch {torch.__version__}\nlibrary: {lib.build_info}\n")
    checks = report["checks"]
    for dtype in (torch.float32, torch.float16):
        for case in _conv_cases():
            checks.append(check_conv(lib, case, dtype))
        for rois_dtype in (torch.float32, dtype):
            checks.append(check_roi_pool(lib, "box 4x4 @25/255 offsets", 4, 25, 25 / 255, 0, True, dtype, rois_dtype))
            checks.append(check_roi_pool(lib, "mask 16x16 @63/255 sr2", 16, 63, 63 / 255, 2, False, dtype, rois_dtype))
    print(f"{'op':16s} {'case':40s} {'dtype':8s} {'ours':>10s} {'torchvision':>12s}  result")
    for c in checks:
        tv = f"{c['torchvision_err']:.2e}" if "torchvision_err" in c else "-"
        verdict = "ok" if c["ok"] else "FAIL"
        print(f"{c['op']:16s} {c['case']:40s} {c['dtype']:8s} {c['err']:10.2e} {tv:>12s}  {verdict}")
    if not args.no_sanitizer:
        report["selftests"] = run_selftests(lib_dir)
        for r in report["selftests"]:
            print(f"\n[{'ok' if r['ok'] else 'FAIL'}] {r['check']}\n{r['detail']}")
    ok = all(c["ok"] for c in checks) and all(r["ok"] for r in report.get("selftests", []))
    print("\nALL CHECKS PASSED" if ok else "\nSOME CHECKS FAILED")
    if args.json:
        write_file(args.json, json.dumps(report, indent=2) + "\n", "--json")  # whole or not at all
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
