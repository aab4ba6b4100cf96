"""``siamattn train``: train (or resume) a run, single process or under ``torchrun``."""

from __future__ import annotations

import argparse
from pathlib import Path

from siamattn.cli import add_config_args, add_set_arg
from siamattn.cli_args import non_negative_int, positive_int
from siamattn.outputs import check_folder


def _train(args: argparse.Namespace) -> int:
    check_folder("--out", Path(args.out), Path(args.out))  # before torch's import and the datasets' scan
    import torch

    from siamattn.config import load_config
    from siamattn.training.trainer import TrainOptions, train

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    data = [s for part in args.data for s in part.split(",") if s]
    final = train(TrainOptions(cfg=cfg, data=data, out=Path(args.out), device=args.device, resume=args.resume,
                               epochs=args.epochs, workers=args.workers, progress=not args.no_progress,
                               resume_overrides=list(args.overrides) if args.resume else []))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"final weights: {final}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from siamattn.errors import require


    require("torch", "train", "'siamattn import'")
    from siamattn.training.importers import import_checkpoint

    import_checkpoint(args.source, args.checkpoint, args.out, args.config_file, args.benchmark, args.overrides,
                      args.overwrite)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    _register_import(sub)
    p = sub.add_parser(
        "train", help="train a model on tracking datasets (single process or under torchrun)",
        description="Train SiamAttn on (template, search) pairs drawn from tracking datasets. Writes "
                    "RUN_DIR/{config.yaml,log.csv,last.pt,checkpoints/,model.pt}. For several processes run "
                    "'torchrun --nproc_per_node N -m siamattn.cli train ...' (train.batch_size is global).")
    add_config_args(p, default="siamattn_r50")
    p.add_argument("--data", required=True, action="append", metavar="ROOT[,ROOT2]",
                   help="dataset roots: a GOT-10k root (with train/list.txt) or KIND:PATH with KIND in coco, "
                        "got10k, lasot, trackingnet, youtubevos; comma-separated or repeated")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder for checkpoints and logs")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR from its last checkpoint, with the config stored there "
                        "(--set may change train.* keys for the epochs still to run, e.g. train.bn_frozen_epoch)")
    p.add_argument("--epochs", type=positive_int, help="override train.epochs (e.g. extend a resumed run)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="training device (default: cpu)")
    p.add_argument("--workers", type=non_negative_int,
                   help="override train.workers (DataLoader processes per rank; 0: load in the main process)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads per process (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs still go to log.csv)")
    p.set_defaults(func=_train)


def _register_import(sub: argparse._SubParsersAction) -> None:
    from siamattn.training.importers import BENCHMARKS, SOURCES

    p = sub.add_parser(
        "import", help="convert a checkpoint trained by other code (the SiamAttn authors', pysot's) into ours",
        description="Read a checkpoint of another code base (a training container {'epoch', 'state_dict', "
                    "'optimizer'} or a plain state dict, with or without 'module.'), map every key to this "
                    "project's model and write a siamattn checkpoint with its config inside, ready for "
                    "'siamattn export --checkpoint OUT' (docs/MODELS.md).")
    p.add_argument("--from", dest="source", required=True, choices=SOURCES,
                   help="the code that wrote the checkpoint: siamattn-authors = msight-tech/research-siamattn, "
                        "pysot = STVIR/pysot's model zoo (SiamRPN++ ResNet-50 / MobileNetV2, SiamRPN AlexNet)")
    p.add_argument("--checkpoint", required=True, type=Path, metavar="SRC.pth", help="their checkpoint file")
    p.add_argument("--config-file", type=Path, metavar="THEIR.yaml",
                   help="their experiment YAML: tracker settings (TRACK.*, ANCHOR.*, ...) are taken from it and "
                        "its model part is checked (siamattn-authors default: siamattn_r50's VOT2018 settings); "
                        "--from pysot needs it (experiments/NAME/config.yaml: it says which network it is)")
    p.add_argument("--benchmark", choices=tuple(BENCHMARKS),
                   help="siamattn-authors only: vot: polygon output, config siamattn_r50; otb: box output, "
                        "siamattn_r50_otb (default: otb when the --config-file name contains 'otb', else vot)")
    p.add_argument("--out", required=True, type=Path, metavar="DST.pt", help="the siamattn checkpoint to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_set_arg(p)
    p.set_defaults(func=_import)
