"""Ask what in a real clip's first frame makes a checkpoint's box drift: the template's light, or that it
shows only part of the target.

    python assets/demo/template_probe.py --checkpoint assets/demo/model.pt --clip bunny

Tracks a hand-labelled clip of ``real_clips_labels.json`` several times with each checkpoint and scores every
run on the labelled frames after its start (as ``real_clips.py`` does): once as it is; once per ``--gain``
with only the init frame brightened by that factor (the template is cut from it, every tracked frame is
untouched); and once from each later labelled frame, initialised with that frame's hand-labelled box. If the
growth shrinks with a brighter template, the template's darkness drives it; if it stays when the tracker
starts from a labelled frame showing the whole lit target, the model itself does. Prints a Markdown table and
writes every score to ``--out`` (JSON). PyTorch backend, like real_clips.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import real_clips  # a script beside this one


def probe(checkpoint: str, frames: list[np.ndarray], labels: dict[int, tuple], gains: list[float]) -> dict:
    """name of the run -> real_clips.score of it."""
    def run(start: int, first: np.ndarray | None = None) -> dict:
        clip = [frames[start] if first is None else first, *frames[start + 1:]]
        res = real_clips.track(checkpoint, clip, labels[start])
        boxes = {start + k: tuple(r["box"]) for k, r in enumerate(res)}
        return real_clips.score(boxes, {k: v for k, v in labels.items() if k >= start})

    out = {"as is": run(0)}
    for g in gains:
        out[f"init frame x{g:g} light"] = run(0, np.clip(frames[0].astype(np.float32) * g, 0, 255).astype(np.uint8))
    for k in sorted(labels)[1:-1]:
        out[f"init at labelled frame {k}"] = run(k)
    return out


def main() -> None:
    import torch

    clips = real_clips.load_clips()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH or PATH; repeat to compare")
    p.add_argument("--clip", default="bunny", choices=[c for c, s in clips.items() if len(s["boxes"]) > 2])
    p.add_argument("--gain", type=float, action="append", help="light factors for the init frame (default 1.6, 2.2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="JSON with every score (default: print only)")
    a = p.parse_args()
    gains = a.gain or [1.6, 2.2]
    if any(not g > 0 for g in gains):
        raise SystemExit(f"error: --gain must be positive, got {gains}")
    torch.set_num_threads(a.threads)
    spec = clips[a.clip]
    start = int(spec["start"])
    frames = real_clips.frames_of(real_clips.clip_path(spec["source"]), start, int(spec["end"]))
    labels = {int(k) - start: tuple(float(v) for v in b) for k, b in spec["boxes"].items()}
    print("| checkpoint | run | mean IoU | min IoU | area ratio min..max | per labelled frame: IoU / area ratio |\n"
          "|---|---|---|---|---|---|")
    result = {}
    for c in a.checkpoint:
        name, path = real_clips.named(c)
        result[name] = probe(path, frames, labels, gains)
        for run, s in result[name].items():
            per = ", ".join(f"{f['frame'] + start}: {f['iou']:.2f} / {f['area_ratio']:.2f}" for f in s["frames"])
            print(f"| {name} | {run} | {s['mean_iou']:.2f} | {s['min_iou']:.2f} | "
                  f"{s['area_ratio_min']:.2f}..{s['area_ratio_max']:.2f} | {per} |", flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"clip": a.clip, "gains": gains, "scores": result}, indent=1))
        print(f"wrote {a.out}")


if __name__ == "__main__":
    from siamattn.cli import run_script

    sys.exit(run_script(main))
