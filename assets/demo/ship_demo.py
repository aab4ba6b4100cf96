"""Write the shipped demo model from a training checkpoint: weights and config only (no optimizer state), with
the tracker hyperparameters chosen on the tuning split (tune_demo.py) stored in its config.

    python assets/demo/ship_demo.py --checkpoint runs/demo25/checkpoints/epoch_080.pt \
        --set tracker.penalty_k=0.2 --out assets/demo/model.pt
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def main() -> None:
    from siamattn.cli_args import add_set_arg
    from siamattn.config import apply_overrides, from_dict
    from siamattn.training.model import load_checkpoint
    from siamattn.training.model.checkpoint import read_checkpoint, save_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="a training checkpoint (or a final one)")
    p.add_argument("--out", required=True, type=Path)
    add_set_arg(p, "change the stored config, e.g. --set tracker.window_influence=0.4 (repeatable)")
    a = p.parse_args()
    cfg = from_dict(apply_overrides(read_checkpoint(a.checkpoint)["config"], a.overrides))
    model = load_checkpoint(a.checkpoint, cfg)
    save_checkpoint(a.out, model)
    digest = hashlib.sha256(a.out.read_bytes()).hexdigest()
    params = sum(t.numel() for t in model.parameters())
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.1f} MB, {params / 1e6:.2f} M parameters, sha256 {digest})")


if __name__ == "__main__":
    from siamattn.cli import run_script

    sys.exit(run_script(main))
