"""The training loop: schedule, frozen-then-finetuned backbone, AMP, clipping, checkpoints with exact
resume, CSV/TensorBoard logs, and DDP under ``torchrun``.

Run layout (``--out RUN_DIR``)::

    RUN_DIR/config.yaml          resolved config of the run
    RUN_DIR/checkpoints/epoch_NNN.pt   model + optimizer + scheduler + AMP scaler + epoch + RNG states
    RUN_DIR/last.pt              copy of the newest epoch checkpoint (what --resume reads)
    RUN_DIR/model.pt             final weights only (what export/eval/runtime load)
    RUN_DIR/log.csv              one row per step: epoch, step, lr, losses, pairs/s
    RUN_DIR/tb/                  TensorBoard events (only when the tensorboard package is installed)

Schedule (paper, docs/DESIGN.md §7), continuous in ``t`` = epochs done (updated every step): warm-up from
``warmup_lr`` to ``lr_start`` geometrically over ``warmup_epochs``, then exponential decay from ``lr_start``
to ``lr_end`` at the last step. The backbone is frozen (no gradients, BatchNorm statistics fixed) before
``backbone_train_epoch``; from then its stages listed in ``backbone_train_layers`` train with
``lr * backbone_lr_mult``.

Determinism: training pair ``k`` depends only on ``(seed, k)`` (see :mod:`siamattn.training.pairs`),
weights are initialised from ``seed``, and a checkpoint holds every other piece of state, so a run resumed
from epoch ``e`` produces bit-identical weights to an uninterrupted one (on the same device and thread
count).

DDP: ``torchrun --nproc_per_node N -m siamattn.cli train ...``. ``train.batch_size`` is the global batch
(each process takes every N-th pair of it, see :class:`siamattn.training.pairs.StepSampler`), only rank 0
logs and writes checkpoints. BatchNorm statistics are per process (SyncBatchNorm is used on CUDA), exactly like
``train.accum_steps = N`` in a single process.
"""

from __future__ import annotations

import csv
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from siamattn.config import Config, TrainConfig, apply_overrides, from_dict
from siamattn.errors import InputError, SiamAttnError
from siamattn.outputs import StagedFile, check_folder, check_not_input, pause_point, write_file
from siamattn.toolkit.datasets import GOT10k, VideoDataset, open_dataset
from siamattn.training.losses import rois_for_model, siamattn_loss
from siamattn.training.model import SiamAttn, build_model, save_checkpoint
from siamattn.training.model.backbone import BACKBONES
from siamattn.training.model.checkpoint import check_state_dict, read_checkpoint
from siamattn.training.pairs import PairDataset, PairFailure, StepSampler, collate
from siamattn.training.sampling import MixedSampler

__all__ = ["TrainOptions", "backbone_stages", "lr_at", "open_training_data", "train"]

LAST = "last.pt"
FINAL = "model.pt"


@dataclass
class TrainOptions:
    cfg: Config
    data: list[str]  # dataset specs: "PATH" (GOT-10k layout, train split) or "KIND:PATH"
    out: Path
    device: str = "cpu"
    resume: bool = False
    epochs: int | None = None  # overrides train.epochs (e.g. to extend a resumed run)
    workers: int | None = None  # overrides train.workers
    progress: bool = True
    max_steps: int | None = None  # stop after this many steps of the first epoch run (tests, smoke runs)
    # --set train.* given with --resume: applied to the run's stored config (e.g. train.bn_frozen_epoch for the
    # epochs still to run); any other key would change the network the checkpoint holds and is refused
    resume_overrides: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------
# data


def open_training_data(specs: list[str]) -> list[VideoDataset]:
    """Open ``--data`` entries: ``KIND:PATH`` (coco, got10k, lasot, trackingnet, youtubevos) or a bare
    PATH holding a GOT-10k layout (``PATH/train/list.txt``; ``PATH/list.txt`` means PATH is the split)."""
    out: list[VideoDataset] = []
    for spec in specs:
        kind, sep, path = spec.partition(":")
        if sep and len(kind) > 1 and not Path(spec).exists():
            out.append(GOT10k(path, "train") if kind.lower() == "got10k" else open_dataset(kind, path))
            continue
        root = Path(spec)
        if (root / "train" / "list.txt").is_file():
            out.append(GOT10k(root, "train"))
        elif (root / "list.txt").is_file():
            out.append(GOT10k(root.parent, root.name))
        else:
            raise InputError(
                f"--data '{spec}': no GOT-10k layout found (expected '{root}/train/list.txt'); give a GOT-10k "
                "root or prefix the dataset kind, e.g. coco:/data/coco, lasot:/data/LaSOT, youtubevos:/data/ytvos"
            )
    return out


def build_pairs(cfg: Config, specs: list[str]) -> PairDataset:
    t = cfg.train
    datasets = open_training_data(specs)
    for name, values in (("train.data_weights", t.data_weights), ("train.frame_ranges", t.frame_ranges)):
        if values and len(values) != len(datasets):
            raise InputError(f"config key '{name}' has {len(values)} entries for {len(datasets)} --data roots")
    sampler = MixedSampler(datasets, t.data_weights or None, t.frame_ranges or t.frame_range, t.neg_prob, t.seed)
    return PairDataset(sampler, cfg)


# ------------------------------------------------------------------------------------------------------
# schedule and freezing


def lr_at(t: float, cfg: TrainConfig) -> float:
    """Learning rate after ``t`` epochs (fractional): geometric warm-up, then exponential decay."""
    w, e = cfg.warmup_epochs, cfg.epochs
    if t < w:
        return cfg.warmup_lr * (cfg.lr_start / cfg.warmup_lr) ** (t / w)
    return cfg.lr_start * (cfg.lr_end / cfg.lr_start) ** min((t - w) / max(e - w, 1e-9), 1.0)


def backbone_stages(backbone: nn.Module) -> list[nn.Module]:
    """The five backbone stages (stem, layer1..layer4 or their equivalents; AlexNet: conv1..conv5)."""
    return [backbone.stage(k) for k in range(5)]


def backbone_trainable(cfg: TrainConfig, epoch: int) -> tuple[bool, ...]:
    on = epoch >= cfg.backbone_train_epoch
    return tuple(on and i in cfg.backbone_train_layers for i in range(5))


def apply_trainable(model: SiamAttn, flags: tuple[bool, ...]) -> None:
    for stage, flag in zip(backbone_stages(model.backbone), flags, strict=True):
        for p in stage.parameters():
            p.requires_grad_(flag)


def bn_frozen(cfg: TrainConfig, epoch: int) -> bool:
    return 0 <= cfg.bn_frozen_epoch <= epoch


def set_modes(model: SiamAttn, flags: tuple[bool, ...], bn_running: bool = False) -> None:
    """Training mode, except frozen backbone stages, whose BatchNorm keeps its (pretrained) statistics, and
    every BatchNorm when ``bn_running`` (``train.bn_frozen_epoch`` reached): it then normalises with its running
    statistics, as at run time, and keeps them."""
    model.train()
    for stage, flag in zip(backbone_stages(model.backbone), flags, strict=True):
        if not flag:
            stage.eval()
    if bn_running:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def init_backbone(model: SiamAttn, cfg: Config) -> str:
    """Load ``model.backbone.checkpoint`` into a fresh model; returns a one-line description."""
    ck = cfg.model.backbone.checkpoint
    if not ck:
        return "backbone: random init"
    BACKBONES[cfg.model.backbone.name].load_pretrained(model.backbone, ck)
    return f"backbone: weights from {ck}"


def build_optimizer(model: SiamAttn, cfg: TrainConfig, steps_per_epoch: int
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    backbone = [p for p in model.backbone.parameters()]
    ids = {id(p) for p in backbone}
    heads = [p for p in model.parameters() if id(p) not in ids]
    # group lr = multiplier; the scheduler's lambda supplies the absolute lr
    opt = torch.optim.SGD([{"params": heads, "lr": 1.0}, {"params": backbone, "lr": cfg.backbone_lr_mult}],
                          lr=1.0, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_at(step / steps_per_epoch, cfg))
    return opt, sched


# ------------------------------------------------------------------------------------------------------
# RNG state (kept in checkpoints; the data pipeline itself uses no global RNG)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *[int(v) if i < 2 else float(v)
                  for i, v in enumerate(np_state[2:])]],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------------
# distributed helpers


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device == "cuda":
        torch.cuda.set_device(d.local_rank)
    return d


# ------------------------------------------------------------------------------------------------------
# the loop


class _Logger:
    COLUMNS = ("epoch", "step", "lr", "total", "cls", "loc", "box", "mask", "pairs_per_s")

    def __init__(self, out: Path, enabled: bool, resumed_step: int | None = None) -> None:
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        path = out / "log.csv"
        if resumed_step is not None and path.exists():
            _trim_log(path, resumed_step)
        new = not path.exists()
        self.file = path.open("a", newline="")
        self.csv = csv.writer(self.file)
        if new:
            self.csv.writerow(self.COLUMNS)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:  # TensorBoard is optional; the CSV has everything
            self.tb = None

    def row(self, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.csv.writerow([values[c] if isinstance(values[c], int) else f"{values[c]:.6g}" for c in self.COLUMNS])
        self.file.flush()
        if self.tb is not None:
            for c in self.COLUMNS[2:]:
                self.tb.add_scalar(f"train/{c}", values[c], int(values["step"]))

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()


def _trim_log(path: Path, step: int) -> None:
    """A resumed run's log.csv keeps the rows up to its checkpoint's step (the steps after it run again) and
    drops a last line cut off by an interrupt; replaced atomically."""
    lines = path.read_bytes().decode(errors="replace").splitlines(keepends=True)  # bytes: keep csv's \r\n
    header = ",".join(_Logger.COLUMNS) + "\r\n"  # as csv.writer ends its lines
    kept = [lines[0] if lines and lines[0].rstrip("\r\n") == header.rstrip() else header]
    for line in lines[1:]:
        parts = line.rstrip("\r\n").split(",")
        if not line.endswith("\n") or len(parts) != len(_Logger.COLUMNS) or not parts[1].isdigit():
            continue
        if int(parts[1]) <= step:
            kept.append(line)
    write_file(path, "".join(kept), "log.csv")


def data_roots(specs: list[str]) -> dict[str, str]:
    """The folders of ``--data`` entries (``KIND:PATH`` or PATH), labelled for error messages."""
    roots = {}
    for i, spec in enumerate(specs):
        kind, sep, path = spec.partition(":")
        folder = path if sep and len(kind) > 1 and not Path(spec).exists() else spec
        roots["--data" if i == 0 else f"--data #{i + 1}"] = folder
    return roots


def check_run_folder(out: Path, resume: bool, data: list[str]) -> None:
    """Before any work: a new run needs a new or empty folder (never one holding other files: they would be
    mixed with the run's), a resumed one its checkpoint; no run folder is or holds a dataset, nor lies in one."""
    check_not_input("--out", out, data_roots(data))
    last = out / LAST
    if out.exists() and not out.is_dir():
        raise SiamAttnError(f"--out '{out}' is a file, not a folder; choose another --out")
    if resume:
        if not last.is_file():
            raise SiamAttnError(f"--resume: no checkpoint '{last}'; start the run without --resume")
        return
    if last.is_file():
        raise SiamAttnError(f"'{out}' already holds a run ({last}); pass --resume to continue it or use a new --out")
    if out.is_dir() and any(out.iterdir()):
        raise SiamAttnError(f"--out '{out}' is not empty and holds no run to resume (no {LAST}); give a new or "
                            "empty folder")
    check_folder("--out", out, out)


def resume_overrides(overrides: list[str]) -> list[str]:
    """The ``--set`` overrides a resumed run accepts: train.* only (model, anchors and tracker are the run's)."""
    bad = [o for o in overrides if not o.strip().startswith("train.")]
    if bad:
        raise InputError(f"--resume keeps the run's network and settings; only train.* keys may change with --set "
                         f"(got {', '.join(bad)}): start a new run (without --resume) to change the others")
    return overrides


def _resolve_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise SiamAttnError("--device cuda: no CUDA device is available to PyTorch; use --device cpu")
    if device not in ("cpu", "cuda"):
        raise SiamAttnError(f"--device must be 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)


def train(opts: TrainOptions, on_step: Callable[[dict[str, float]], None] | None = None) -> Path:
    """Run (or resume) a training run; returns the path of the final weights (``RUN_DIR/model.pt``)."""
    device = _resolve_device(opts.device)
    d = init_distributed(opts.device)
    try:
        return _train(opts, d, device, on_step)
    finally:
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(opts: TrainOptions, d: Dist, device: torch.device,
           on_step: Callable[[dict[str, float]], None] | None) -> Path:
    out = Path(opts.out)
    last = out / LAST
    payload: dict[str, Any] | None = None
    cfg = opts.cfg
    check_run_folder(out, opts.resume, opts.data)
    if opts.resume:
        payload = read_checkpoint(last)
        # a run keeps its config; only the epoch count and train.* settings may change
        cfg = from_dict(apply_overrides(payload["config"], resume_overrides(opts.resume_overrides)))
    if opts.epochs is not None:
        cfg.train.epochs = opts.epochs
        cfg.train.validate()
    t = cfg.train
    if t.batch_size % (d.world * t.accum_steps):
        raise SiamAttnError(f"train.batch_size ({t.batch_size}) must be divisible by processes x train.accum_steps "
                            f"({d.world} x {t.accum_steps})")

    pairs = build_pairs(cfg, opts.data)
    sampler = StepSampler(t.pairs_per_epoch, t.batch_size, d.rank, d.world)
    steps_per_epoch = sampler.steps
    workers = t.workers if opts.workers is None else opts.workers
    loader = DataLoader(pairs, batch_size=t.batch_size // d.world, sampler=sampler, num_workers=workers,
                        collate_fn=collate, pin_memory=device.type == "cuda", worker_init_fn=_worker_init)

    torch.manual_seed(t.seed)  # same initial weights on every rank and every run
    model = build_model(cfg)
    start_epoch = 0
    note = ""
    if payload is None:
        note = init_backbone(model, cfg)
    else:
        check_state_dict(model, payload["model"], f"checkpoint '{last}'")
        model.load_state_dict(payload["model"])
        start_epoch = int(payload["epoch"])
    if d.world > 1 and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[assignment]
    model.to(device)
    opt, sched = build_optimizer(model, t, steps_per_epoch)
    use_amp = t.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if payload is not None:
        opt.load_state_dict(payload["optimizer"])
        sched.load_state_dict(payload["scheduler"])
        scaler.load_state_dict(payload["scaler"])
        set_rng_state(payload["rng"])
    # A new run that stops before its first checkpoint cannot be resumed: it is removed again (the folder if
    # this run made it, else what it put there). From the first checkpoint on, the folder is a resumable run.
    made = not out.exists()
    try:
        if d.main:
            out.mkdir(parents=True, exist_ok=True)
            write_file(out / "config.yaml", cfg.to_yaml(), "config.yaml")
            print(f"training {cfg.name}: {t.epochs} epochs x {steps_per_epoch} steps of {t.batch_size} pairs on "
                  f"{d.world} x {device.type}; {note or f'resumed at epoch {start_epoch}'}", flush=True)
        return _loop(opts, StepState(opt, sched, scaler, device, use_amp, d), on_step, cfg, model, loader, sampler,
                     workers, start_epoch, steps_per_epoch, None if payload is None else start_epoch * steps_per_epoch)
    except BaseException:
        if d.main and payload is None and not last.exists():
            _remove_new_run(out, made)
        raise


def _remove_new_run(out: Path, made: bool) -> None:
    if made:
        shutil.rmtree(out, ignore_errors=True)
        return
    for entry in out.iterdir() if out.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _loop(opts: TrainOptions, state: StepState, on_step: Callable[[dict[str, float]], None] | None,
          cfg: Config, model: SiamAttn, loader: DataLoader, sampler: StepSampler, workers: int,
          start_epoch: int, steps_per_epoch: int, resumed_step: int | None) -> Path:
    d, device, opt, sched, scaler = state.dist, state.device, state.opt, state.sched, state.scaler
    out = Path(opts.out)
    last = out / LAST
    t = cfg.train
    log = _Logger(out, d.main, resumed_step)
    cv2_threads = cv2.getNumThreads()
    if workers > 0:
        # Workers are forked from this process. A fork taken while OpenCV's thread pool runs leaves the child a
        # pool without threads, and the worker's first cv2.setNumThreads (or parallel call) then waits forever.
        # This process makes no pairs while workers do, so keep OpenCV single-threaded here meanwhile.
        cv2.setNumThreads(1)

    net: nn.Module = model
    flags: tuple[bool, ...] | None = None
    step = start_epoch * steps_per_epoch
    try:
        for epoch in range(start_epoch, t.epochs):
            new_flags = backbone_trainable(t, epoch)
            if new_flags != flags:  # DDP hooks depend on which parameters need gradients: rewrap on change
                flags = new_flags
                apply_trainable(model, flags)
                if d.world > 1:
                    net = nn.parallel.DistributedDataParallel(
                        model, device_ids=[d.local_rank] if device.type == "cuda" else None)
            set_modes(model, flags, bn_frozen(t, epoch))
            sampler.set_epoch(epoch)
            bar = loader
            if d.main and opts.progress:
                from tqdm import tqdm

                bar = tqdm(loader, desc=f"epoch {epoch + 1}/{t.epochs}", dynamic_ncols=True, leave=True)
            tick = time.perf_counter()
            for i, batch in enumerate(bar):
                if opts.max_steps is not None and i >= opts.max_steps:
                    break
                if isinstance(batch, PairFailure):  # a data error inside a worker: the same one line here
                    batch.reraise()
                lr = float(opt.param_groups[0]["lr"])  # the lr this step uses
                stats = _step(net, model, batch, t, state)
                step += 1
                now = time.perf_counter()
                row = {"epoch": epoch + 1, "step": step, "lr": lr,
                       "pairs_per_s": t.batch_size / max(now - tick, 1e-9), **stats}
                tick = now
                if not math.isfinite(stats["total"]):
                    raise SiamAttnError(f"loss became {stats['total']} at epoch {epoch + 1} step {step}; lower "
                                        "train.lr_start / train.warmup_lr or train.grad_clip and restart")
                log.row(row)
                pause_point("train:step")
                if on_step is not None:
                    on_step(row)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{stats['total']:.3f}", cls=f"{stats['cls']:.3f}", lr=f"{row['lr']:.2e}")
            if d.main and ((epoch + 1) % t.checkpoint_every == 0 or epoch + 1 == t.epochs):
                path = out / "checkpoints" / f"epoch_{epoch + 1:03d}.pt"
                save_checkpoint(path, model, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                                scaler=scaler.state_dict(), epoch=epoch + 1, rng=rng_state())
                with StagedFile(last, "checkpoint") as staged:
                    shutil.copyfile(path, staged.tmp)
                    staged.commit()
                pause_point("train:checkpoint")
            if d.world > 1:
                dist.barrier()
        final = out / FINAL
        if d.main:
            save_checkpoint(final, model.cpu() if device.type == "cuda" else model, epochs=t.epochs)
        if d.world > 1:
            dist.barrier()
        return final
    finally:
        log.close()
        cv2.setNumThreads(cv2_threads)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers only crop and augment; leave the cores to the training process
    cv2.setNumThreads(1)


@dataclass(frozen=True)
class StepState:
    """What one training step updates (optimiser, schedule, AMP loss scaler) and where it runs."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    device: torch.device
    use_amp: bool
    dist: Dist


def _step(net: nn.Module, model: SiamAttn, batch: dict[str, torch.Tensor], t: TrainConfig,
          s: StepState) -> dict[str, float]:
    opt, sched, scaler, device, use_amp, d = s.opt, s.sched, s.scaler, s.device, s.use_amp, s.dist
    opt.zero_grad(set_to_none=True)
    a = t.accum_steps
    sums = torch.zeros(5, dtype=torch.float64)
    for c in range(a):
        mb = {k: v[c::a].to(device, non_blocking=True) for k, v in batch.items()}
        sync = c == a - 1 or not isinstance(net, nn.parallel.DistributedDataParallel)
        ctx = nullcontext() if sync else net.no_sync()  # type: ignore[operator]
        with ctx:
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                rois = rois_for_model(mb["rois"]) if model.has_refine else None
                out = net(mb["z"], mb["x"], rois)
            losses = siamattn_loss(out, mb, t)
            scaler.scale(losses["total"] / a).backward()
        sums += torch.stack([losses[k].detach().double().cpu() for k in ("total", "cls", "loc", "box", "mask")])
    scaler.unscale_(opt)
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if t.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
    scaler.step(opt)
    scaler.update()
    sched.step()
    sums /= a
    if d.world > 1:  # log the global batch's loss, not just this rank's share
        dist.all_reduce(sums)
        sums /= d.world
    return dict(zip(("total", "cls", "loc", "box", "mask"), sums.tolist(), strict=True))
