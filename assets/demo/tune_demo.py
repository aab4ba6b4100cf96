"""Choose a checkpoint's tracker hyperparameters (penalty_k, window_influence, lr) on a generated tuning split,
as pysot tunes each model's: a grid, every point tracked over the split, ranked by OTB-style success AUC.

    python assets/demo/tune_demo.py --checkpoint runs/demo25/last.pt --root /tmp/demo/gen --split tune \
        --out /tmp/demo/tune --workers 2

Tune on a split of its own (``generate(..., split='tune')``: its sequences share no random draw with
``val``), then report on ``val`` with the chosen values (``evaluate_demo.py --set tracker.penalty_k=...``), so the
reported figure is not the maximum of a search over it. Writes OUT/tune.json (every point) and prints the table,
best first. Each point runs in its own process with one thread.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate_demo as ev  # the script beside this one

GRID = {"penalty_k": [0.10, 0.20, 0.35], "window_influence": [0.25, 0.40, 0.55], "lr": [0.30, 0.45]}


def run_point(checkpoint: str, root: str, split: str, out: str, point: dict[str, float]) -> dict[str, float]:
    from siamattn.toolkit.evaluate import evaluate

    overrides = [f"tracker.{k}={v}" for k, v in point.items()]
    tag = "_".join(f"{k}{v}" for k, v in point.items())
    log: list = []
    s = evaluate("got10k", root, ev.tracker_fn(checkpoint, 1, log, overrides), Path(out) / tag,
                 tracker_name=tag, split=split, progress=False)
    ope = ev.ope_scores(root, split, Path(s["results"]))
    return {**point, "success_auc": ope["success_auc"], "precision_20px": ope["precision_20px"],
            "got10k_ao": s["overall"]["ao"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", required=True, help="GOT-10k-layout root with the tuning split")
    p.add_argument("--split", default="tune")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    points = [dict(zip(GRID, v, strict=True)) for v in itertools.product(*GRID.values())]
    args = (a.checkpoint, a.root, a.split, str(a.out))
    rows = []
    if a.workers <= 1:
        for pt in points:
            rows.append(run_point(*args, pt))
            print(json.dumps(rows[-1]), flush=True)
    else:
        with ProcessPoolExecutor(a.workers) as pool:
            for f in [pool.submit(run_point, *args, pt) for pt in points]:
                rows.append(f.result())
                print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: -r["success_auc"])
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "tune.json").write_text(json.dumps({"checkpoint": a.checkpoint, "split": a.split, "grid": GRID,
                                                  "points": rows}, indent=1))
    print("| penalty_k | window_influence | lr | success AUC | precision @20 px | GOT-10k AO |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['penalty_k']} | {r['window_influence']} | {r['lr']} | {r['success_auc']:.3f} | "
              f"{r['precision_20px']:.3f} | {r['got10k_ao']:.3f} |")


if __name__ == "__main__":
    from siamattn.cli import run_script

    sys.exit(run_script(main))
