"""Sequences of ``siamattn eval`` spread over processes (``--workers N``, ``--devices cuda:0,cuda:1``), over
machines (``--shard i/n`` then ``--merge``), and resumed (``--resume``).

The contract is the result files (siamattn/toolkit/evaluate.py's layouts): each sequence's box file is
written whole (a temporary name, then a rename) and last, so a sequence is finished exactly when its box file is
there with one line per frame. A worker tracks whole sequences with its own tracker, built as the serial run
builds it, so on the CPU backends every box file is byte-identical to the serial run's; only the ``*_time.txt``
files (measured seconds) differ. No scheduler of our own: a shard is a fixed slice of the sequence list, and a
merge copies the shards' result files into one folder and scores them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from siamattn.errors import InputError, SiamAttnError, require
from siamattn.outputs import pause_point


@dataclass(frozen=True)
class TrackerSpec:
    """What a worker needs to build the tracker the serial run builds (picklable: workers are spawned)."""

    model: Path | None
    checkpoint: Path | None
    backend: str
    device: str
    long_term: bool | None = None  # --long-term: True; None: the export's (or checkpoint's) tracker.long_term


def build_tracker(spec: TrackerSpec, notes: list[str] | None = None) -> Any:
    """The eval's tracker: an export on ``spec.backend``, or a PyTorch checkpoint on the torch backend."""
    from siamattn.runtime.tracker import Tracker

    if spec.model is not None:
        return Tracker(spec.model, backend=spec.backend, device=spec.device, notes=notes, long_term=spec.long_term)
    require("torch", "export", "'siamattn eval --checkpoint' (it runs the PyTorch model)")
    from siamattn.runtime.torch_backend import TorchBackend, torch_device
    from siamattn.training.model import load_checkpoint

    model = load_checkpoint(spec.checkpoint)
    device = torch_device(spec.device)
    tracker = Tracker(TorchBackend(model, device=device), model.cfg, long_term=spec.long_term)
    tracker.backend_label = f"torch {device} fp32"
    return tracker


_DEVICE = re.compile(r"^(cpu|cuda|cuda:\d+)$")


def parse_devices(text: str) -> list[str]:
    """'cuda:0,cuda:1' -> ['cuda:0', 'cuda:1']; each worker takes the next one in turn."""
    devices = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in devices if not _DEVICE.match(d)]
    if not devices or bad:
        raise InputError(f"--devices '{text}': give a comma-separated list of cpu, cuda or cuda:K (e.g. "
                         "cuda:0,cuda:1)")
    return devices


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four slices of the sequence list (1-based)."""
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(f"--shard '{text}': give I/N with 1 <= I <= N (e.g. --shard 1/2 on one machine, "
                         "--shard 2/2 on another)")
    return int(m.group(1)), int(m.group(2))


def shard_names(names: list[str], shard: tuple[int, int] | None) -> list[str]:
    """Sequence i, i+n, i+2n, ... of the dataset's order: the shards of one n are disjoint and cover it."""
    return names if shard is None else names[shard[0] - 1::shard[1]]


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SiamAttnError) else f"{type(exc).__name__}: {exc}"


def _worker(wid: int, spec: TrackerSpec, dataset: str, root: Path, split: str, results: Path, tasks: Any,
            reports: Any, slots: Any) -> None:
    """One worker process: build the tracker, then track the sequences it takes off ``tasks``. ``slots[wid]``
    holds the index of the sequence it is on (-1: none), in shared memory: a queued report can be lost when the
    process is killed before the queue's feeder thread sends it, a shared-memory write cannot."""
    from siamattn.runtime.video import tracking_fn
    from siamattn.toolkit.evaluate import _kind, open_benchmark, track_sequence

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    if spec.device.startswith("cuda:"):  # this worker sees only its GPU, as device 0 (set before CUDA loads)
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.device.split(":", 1)[1]
        spec = replace(spec, device="cuda")
    name = None
    try:
        notes: list[str] = []  # the parent prints them, once
        tracker = build_tracker(spec, notes)
        reports.put(("ready", wid, (tracker.backend_label, notes)))
        track_fn = tracking_fn(tracker, dataset)
        ds = open_benchmark(dataset, root, split=split)
        while (task := tasks.get()) is not None:
            index, name = task
            slots[wid] = index
            pause_point(f"eval:{name}")
            track_sequence(_kind(dataset), ds, name, track_fn, results)
            slots[wid] = -1
            reports.put(("done", wid, name))
    except BaseException as exc:  # reported to the parent, which fails the run naming the sequence
        reports.put(("error", wid, name, _message(exc)))


def run_workers(spec: TrackerSpec, devices: list[str] | None, workers: int, dataset: str, root: Path, split: str,
                names: list[str], results: Path, progress: bool = True) -> tuple[str, list[str]]:
    """Track ``names`` in ``workers`` spawned processes into ``results``; returns the trackers' label and the
    first worker's notes (the backend it fell back to). A worker that fails or dies fails the run, naming its
    sequence."""
    from tqdm import tqdm

    ctx = mp.get_context("spawn")  # a fresh interpreter: no copied ONNX Runtime/CUDA state, as on any OS
    tasks, reports = ctx.Queue(), ctx.Queue()
    slots = ctx.Array("i", [-1] * workers, lock=False)  # each worker's sequence index, for naming a death
    for index, name in enumerate(names):
        tasks.put((index, name))
    for _ in range(workers):
        tasks.put(None)
    procs = []
    for k in range(workers):
        wspec = replace(spec, device=devices[k % len(devices)]) if devices else spec
        procs.append(ctx.Process(target=_worker, args=(k, wspec, dataset, root, split, results, tasks, reports, slots),
                                 name=f"siamattn-eval-{k + 1}", daemon=True))
    for p in procs:
        p.start()
    label: tuple[str, list[str]] | None = None
    done = 0
    try:
        with tqdm(total=len(names), desc=f"tracking {dataset} ({workers} workers)", unit="seq",
                  disable=not progress) as bar:
            while done < len(names):
                try:
                    kind, wid, *rest = reports.get(timeout=0.5)
                except queue.Empty:
                    _check_alive(procs, names, slots)
                    continue
                if kind == "ready":
                    label = label or rest[0]
                elif kind == "done":
                    done += 1
                    bar.update(1)
                else:
                    seq, msg = rest
                    where = f"sequence '{seq}'" if seq else "its start"
                    raise SiamAttnError(f"eval worker {wid + 1} failed on {where}: {msg}")
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
    return label or ("", [])


def _check_alive(procs: list[Any], names: list[str], slots: Any) -> None:
    """Fail when a worker has died (a crash, a kill) without reporting: it names the sequence it was on."""
    for k, p in enumerate(procs):
        seq = names[slots[k]] if slots[k] >= 0 else None
        if p.is_alive() or (p.exitcode == 0 and seq is None):
            continue
        how = f"killed by signal {-p.exitcode}" if p.exitcode and p.exitcode < 0 else f"exit code {p.exitcode}"
        where = f"while tracking sequence '{seq}'" if seq else "between sequences"
        raise SiamAttnError(f"eval worker {k + 1} died ({how}) {where}; rerun with --resume to keep the "
                            "sequences already finished")


def merge_results(kind: str, ds: Any, names: list[str], sources: list[Path], results: Path) -> None:
    """Copy each sequence's result files from the shard folder that has them finished into ``results``; a
    sequence finished in two shards with different boxes, or in none, is one line."""
    from siamattn.toolkit.evaluate import result_file, sequence_done, sequence_files

    missing = []
    for name in names:
        frames = len(ds.sequence(ds.index(name)).frame_paths)
        have = [src for src in sources if sequence_done(kind, src, name, frames)]
        if not have:
            missing.append(name)
            continue
        first = result_file(kind, have[0], name).read_bytes()
        for other in have[1:]:
            if result_file(kind, other, name).read_bytes() != first:
                raise InputError(f"--merge: sequence '{name}' has different results in '{have[0]}' and '{other}'")
        for rel in sequence_files(kind, name):
            if (have[0] / rel).is_file():
                (results / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(have[0] / rel, results / rel)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"--merge: {len(missing)} of {len(names)} sequences have no finished results in the merged "
                         f"folders ({shown}): run the shard that holds them (--shard I/N --resume) and merge again")
