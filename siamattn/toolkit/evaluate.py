"""Benchmark evaluation: run a tracker over a dataset, write its results in the standard result-file
layouts, score them (:mod:`siamattn.toolkit.metrics`) and save a JSON summary and plots.

The tracker is a plain callable ``track_fn(frame_paths, init_box_xywh) -> boxes`` (one ``x, y, w, h``
per frame, the first for the initialisation frame; a generator is fine and lets the VOT protocol stop at a
failure), so this module needs neither torch nor a model: ``siamattn eval`` builds the callable from
``--model``/``--checkpoint`` and calls :func:`evaluate`.

Result layouts (the pysot / got10k formats, comma-separated, one line per frame):

* OTB, LaSOT, TrackingNet: ``<results>/<seq>.txt`` and ``<results>/times/<seq>_time.txt``
* GOT-10k: ``<results>/<seq>/<seq>_001.txt`` (``_002``... for repetitions) and ``<results>/<seq>/<seq>_time.txt``
* VOT: ``<results>/baseline/<seq>/<seq>_001.txt`` with ``1`` (init), ``2`` (failure), ``0`` (skipped) lines
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from siamattn.errors import InputError
from siamattn.toolkit import metrics as M
from siamattn.toolkit.datasets import OTB, VOT, GOT10k, LaSOT, TrackingNet, VideoDataset, read_box_file

BENCHMARKS = ("otb", "got10k", "lasot", "trackingnet", "vot", "vot2016", "vot2017", "vot2018")


def _kind(dataset: str) -> str:
    d = dataset.lower().replace("-", "")
    if d not in BENCHMARKS:
        raise InputError(f"unknown benchmark {dataset!r}; choose one of {', '.join(BENCHMARKS)}")
    return "vot" if d.startswith("vot") else d


def _eao_range(dataset: str) -> tuple[int, int]:
    d = dataset.lower().replace("-", "")
    return M.EAO_RANGES.get(d, M.EAO_RANGES["vot2018"])  # plain 'vot' = VOT2017/2018 interval


def open_benchmark(dataset: str, root: str | Path, split: str = "val",
                   names: Sequence[str] | None = None) -> VideoDataset:
    """The reader for a benchmark name (``split`` is used by GOT-10k; TrackingNet reads the TEST chunk
    when ``split='test'``, the TRAIN chunks otherwise)."""
    kind = _kind(dataset)
    if kind == "otb":
        return OTB(root, names=names)
    if kind == "got10k":
        return GOT10k(root, split=split)
    if kind == "lasot":
        return LaSOT(root, names=names)
    if kind == "trackingnet":
        return TrackingNet(root, chunks=["TEST"] if split == "test" else None)
    return VOT(root)


def _safe(name: str) -> str:
    return name.replace("/", "_")  # TrackingNet's '<chunk>/<seq>' and the like become one file name


# ---------------------------------------------------------------------------------------------------------
# result files


def _atomic_text(path: Path, text: str) -> None:
    """A result file appears complete or not at all (a killed worker leaves nothing a resumed run would keep)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def _table(values: np.ndarray, fmt: str) -> str:
    buf = io.StringIO()
    np.savetxt(buf, values, fmt=fmt, delimiter=",")
    return buf.getvalue()


def write_boxes(path: Path, boxes: np.ndarray) -> None:
    _atomic_text(path, _table(M.as_boxes(boxes), "%.4f"))


def write_vot_trajectory(path: Path, traj: Sequence[np.ndarray]) -> None:
    lines = [f"{int(r[0])}" if len(r) == 1 else ",".join(f"{v:.4f}" for v in r) for r in traj]
    _atomic_text(path, "\n".join(lines) + "\n")


def result_file(kind: str, results_dir: Path, name: str) -> Path:
    """The file that holds a sequence's boxes (or VOT trajectory); written last, so it marks the sequence done."""
    return results_dir / sequence_files(kind, name)[-1]


def sequence_files(kind: str, name: str) -> list[Path]:
    """A sequence's result files, relative to the results folder: its times (when the layout has them) and its
    boxes (:func:`result_file`)."""
    if kind == "vot":
        return [Path("baseline") / name / f"{name}_001.txt"]
    if kind == "got10k":
        return [Path(name) / f"{name}_time.txt", Path(name) / f"{name}_001.txt"]
    return [Path("times") / f"{_safe(name)}_time.txt", Path(f"{_safe(name)}.txt")]


def sequence_done(kind: str, results_dir: Path, name: str, num_frames: int) -> bool:
    """Whether a sequence's result file is there with one line per frame (a resumed run keeps it)."""
    try:
        lines = [line for line in result_file(kind, results_dir, name).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return False
    return len(lines) == num_frames


def read_vot_trajectory(path: Path) -> list[np.ndarray]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(np.array([float(v) for v in line.replace("\t", ",").split(",") if v.strip()]))
    return out


def _ope_result_file(results_dir: Path, name: str) -> Path:
    for cand in (results_dir / f"{_safe(name)}.txt", results_dir / _safe(name) / f"{_safe(name)}_001.txt"):
        if cand.exists():
            return cand
    raise InputError(f"no result file for sequence {name!r}: expected '{results_dir / _safe(name)}.txt'")


def _got10k_result_files(results_dir: Path, name: str) -> list[Path]:
    runs = sorted((results_dir / name).glob(f"{name}_[0-9]*.txt"))
    if not runs and (results_dir / f"{name}.txt").exists():
        runs = [results_dir / f"{name}.txt"]
    if not runs:
        raise InputError(f"no result file for sequence {name!r}: expected '{results_dir / name / name}_001.txt'")
    return runs


def image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image, reading only its header when Pillow is available."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except ImportError:  # pragma: no cover
        import cv2

        img = cv2.imread(str(path))
        if img is None:
            raise InputError(f"cannot read image '{path}'") from None
        return int(img.shape[1]), int(img.shape[0])


# ---------------------------------------------------------------------------------------------------------
# scoring a results folder


def evaluate_results(dataset: str, root: str | Path, results_dir: str | Path, out_dir: str | Path | None = None,
                     *, split: str = "val", tracker_name: str = "tracker", names: Sequence[str] | None = None,
                     plots: bool = True) -> dict:
    """Score a folder of result files (the layouts in this module's docstring) against a dataset root.

    Returns the summary dict; with ``out_dir`` also writes ``summary.json`` and the plots there.
    """
    kind = _kind(dataset)
    if kind == "got10k" and split == "test":
        raise InputError("GOT-10k's test ground truth is withheld: submit the result files to the GOT-10k "
                         "server, or evaluate on split='val'")
    ds = open_benchmark(dataset, root, split=split, names=names)
    results_dir = Path(results_dir)
    seq_names = list(names) if names is not None else ds.names
    per_seq: dict[str, dict] = {}
    if kind in ("otb", "lasot", "trackingnet"):
        scores = {}
        for name in seq_names:
            seq = ds.sequence(ds.index(name))
            pred = read_box_file(_ope_result_file(results_dir, name))
            scores[name] = M.ope_sequence(pred, seq.boxes_xywh)
            per_seq[name] = {k: v for k, v in scores[name].to_dict().items() if not k.endswith("curve")}
        overall = M.ope_average(scores.values())
        summary_overall = overall.to_dict()
        if kind == "otb":  # normalized precision is a LaSOT/TrackingNet measure
            for k in ("norm_precision", "norm_precision_curve"):
                summary_overall.pop(k)
    elif kind == "got10k":
        all_ious = []
        for name in seq_names:
            seq = ds.sequence(ds.index(name))
            runs = [read_box_file(f) for f in _got10k_result_files(results_dir, name)]
            size = seq.image_size or image_size(seq.frame_paths[0])
            ious = M.got10k_sequence_ious(runs, seq.boxes_xywh, seq.attributes.get("cover"), size)
            all_ious.append(ious)
            s = M.got10k_scores(ious) if ious.size else None
            per_seq[name] = {"ao": s.ao, "sr50": s.sr50, "sr75": s.sr75, "num_frames": s.num_frames} if s else {}
        summary_overall = M.got10k_scores(all_ious).to_dict()
    else:
        trajs, gts, sizes = {}, {}, {}
        for name in seq_names:
            seq = ds.sequence(ds.index(name))
            f = results_dir / "baseline" / name / f"{name}_001.txt"
            if not f.exists():
                raise InputError(f"no result file for sequence {name!r}: expected '{f}'")
            trajs[name] = read_vot_trajectory(f)
            gts[name] = seq.polygons
            sizes[name] = image_size(seq.frame_paths[0])
            one = M.vot_scores({name: trajs[name]}, {name: gts[name]}, {name: sizes[name]}, _eao_range(dataset))
            per_seq[name] = {"accuracy": one.accuracy, "failures": one.failures, "num_frames": one.num_frames}
        summary_overall = M.vot_scores(trajs, gts, sizes, _eao_range(dataset)).to_dict()
    summary = {"dataset": dataset, "root": str(root), "results": str(results_dir), "tracker": tracker_name,
               "num_sequences": len(seq_names), "overall": summary_overall, "sequences": per_seq}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if plots:
            summary["plots"] = [str(p) for p in save_plots(kind, summary_overall, tracker_name, out)]
    return summary


# ---------------------------------------------------------------------------------------------------------
# running a tracker


def _track_all(track_fn: M.TrackFn, frames: list[str], init_box: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1) for b in track_fn(frames, init_box)]
    elapsed = time.perf_counter() - start
    if len(boxes) != len(frames) or any(b.size != 4 for b in boxes):
        raise InputError(f"track_fn must give one [x, y, w, h] box per frame: got {len(boxes)} results "
                         f"for {len(frames)} frames")
    return np.stack(boxes), elapsed


def track_sequence(kind: str, ds: VideoDataset, name: str, track_fn: M.TrackFn, results_dir: Path) -> None:
    """Run ``track_fn`` over one sequence and write its result files (the times first, the boxes last)."""
    seq = ds.sequence(ds.index(name))
    frames = [str(p) for p in seq.frame_paths]
    if kind == "vot":
        traj = M.run_reset_protocol(frames, seq.polygons, track_fn, image_size(seq.frame_paths[0]))
        write_vot_trajectory(result_file(kind, results_dir, name), traj)
        return
    if not M.valid_boxes(seq.boxes_xywh[:1])[0]:
        raise InputError(f"sequence {name!r} has no valid first-frame box to initialise the tracker")
    boxes, elapsed = _track_all(track_fn, frames, seq.boxes_xywh[0])
    times, box_file = sequence_files(kind, name)
    _atomic_text(results_dir / times, _table(np.full(len(frames), elapsed / max(len(frames), 1)), "%.8f"))
    write_boxes(results_dir / box_file, boxes)


def pending_sequences(dataset: str, root: str | Path, results_dir: str | Path, *, split: str = "val",
                      names: Sequence[str] | None = None, resume: bool = False) -> list[str]:
    """The sequences to run: all of them (``names`` or the dataset's), less, with ``resume``, those whose
    result file in ``results_dir`` is complete."""
    ds = open_benchmark(dataset, root, split=split, names=names)
    seq_names = list(names) if names is not None else ds.names
    if not resume:
        return seq_names
    kind = _kind(dataset)
    return [n for n in seq_names
            if not sequence_done(kind, Path(results_dir), n, len(ds.sequence(ds.index(n)).frame_paths))]


def run_tracker(dataset: str, root: str | Path, track_fn: M.TrackFn, results_dir: str | Path, *,
                split: str = "val", names: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Run ``track_fn`` over every sequence and write the benchmark's result files into ``results_dir``."""
    from tqdm import tqdm

    kind = _kind(dataset)
    ds = open_benchmark(dataset, root, split=split, names=names)
    results_dir = Path(results_dir)
    seq_names = list(names) if names is not None else ds.names
    for name in tqdm(seq_names, desc=f"tracking {dataset}", unit="seq", disable=not progress):
        track_sequence(kind, ds, name, track_fn, results_dir)
    return results_dir


def evaluate(dataset: str, root: str | Path, track_fn: M.TrackFn, out_dir: str | Path, *,
             tracker_name: str = "siamattn", split: str = "val", names: Sequence[str] | None = None,
             progress: bool = True, plots: bool = True) -> dict:
    """What ``siamattn eval --dataset DATASET --root ROOT`` does with a tracker.

    Runs ``track_fn`` on every sequence (progress bar), writes result files under
    ``out_dir/results/<tracker_name>/``, scores them and writes ``out_dir/summary.json`` plus
    ``success_plot.png`` / ``precision_plot.png`` (``norm_precision_plot.png`` for LaSOT/TrackingNet,
    ``expected_overlap_plot.png`` for VOT). Returns the summary dict. On GOT-10k's test split (ground truth
    withheld) it only writes the result files for submission.
    """
    results = Path(out_dir) / "results" / tracker_name
    start = time.perf_counter()
    run_tracker(dataset, root, track_fn, results, split=split, names=names, progress=progress)
    return score(dataset, root, out_dir, time.perf_counter() - start, tracker_name=tracker_name, split=split,
                 names=names, plots=plots)


def score(dataset: str, root: str | Path, out_dir: str | Path, elapsed: float | None, *, tracker_name: str = "siamattn",
          split: str = "val", names: Sequence[str] | None = None, plots: bool = True) -> dict:
    """The second half of :func:`evaluate`: score ``out_dir/results/<tracker_name>/`` (written in ``elapsed``
    seconds, by one process or several) into ``out_dir/summary.json`` and the plots."""
    out = Path(out_dir)
    results = out / "results" / tracker_name
    if _kind(dataset) == "got10k" and split == "test":  # nothing to score locally
        summary = {"dataset": dataset, "root": str(root), "results": str(results), "tracker": tracker_name,
                   "wall_seconds": elapsed, "note": "GOT-10k test ground truth is withheld: submit the results "
                   "folder to the GOT-10k server"}
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary
    summary = evaluate_results(dataset, root, results, out, split=split, tracker_name=tracker_name,
                               names=names, plots=plots)
    summary["wall_seconds"] = elapsed
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ---------------------------------------------------------------------------------------------------------
# plots


def plot_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path, *, title: str,
                xlabel: str, ylabel: str, score_fmt: str = "{:.3f}") -> Path:
    """Line plot of ``{label: (x, y, score)}`` sorted by score, the score in the legend; saved as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, (x, y, score) in sorted(curves.items(), key=lambda kv: -kv[1][2]):
        ax.plot(x, y, linewidth=2, label=f"{label} [{score_fmt.format(score)}]")
    xs = np.concatenate([np.asarray(c[0], dtype=float) for c in curves.values()])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(float(xs.min()), float(xs.max())), ylim=(0, 1.02))
    ax.grid(True, alpha=0.4)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


def save_plots(kind: str, overall: Mapping[str, object], label: str, out_dir: Path) -> list[Path]:
    """The plots of one benchmark summary (``overall`` as in :func:`evaluate_results`)."""
    paths = []
    if kind in ("otb", "lasot", "trackingnet"):
        paths.append(plot_curves({label: (M.IOU_THRESHOLDS, np.asarray(overall["success_curve"]),
                                          float(overall["success_auc"]))},
                                 out_dir / "success_plot.png", title="Success plot of OPE",
                                 xlabel="Overlap threshold", ylabel="Success rate"))
        paths.append(plot_curves({label: (M.PRECISION_THRESHOLDS, np.asarray(overall["precision_curve"]),
                                          float(overall["precision"]))},
                                 out_dir / "precision_plot.png", title="Precision plot of OPE",
                                 xlabel="Location error threshold (px)", ylabel="Precision"))
        if "norm_precision_curve" in overall:
            paths.append(plot_curves(
                {label: (M.NORM_PRECISION_THRESHOLDS, np.asarray(overall["norm_precision_curve"]),
                         float(overall["norm_precision"]))},
                out_dir / "norm_precision_plot.png", title="Normalized precision plot of OPE",
                xlabel="Normalized location error threshold", ylabel="Precision"))
    elif kind == "got10k":
        paths.append(plot_curves({label: (M.GOT10K_IOU_THRESHOLDS, np.asarray(overall["success_curve"]),
                                          float(overall["ao"]))},
                                 out_dir / "success_plot.png", title="Success plot on GOT-10k (AO in legend)",
                                 xlabel="Overlap threshold", ylabel="Success rate"))
    else:
        phi = np.asarray(overall["expected_overlaps"])
        paths.append(plot_curves({label: (np.arange(len(phi)), phi, float(overall["eao"]))},
                                 out_dir / "expected_overlap_plot.png",
                                 title=f"Expected overlap (EAO over {overall['eao_range']})",
                                 xlabel="Sequence length (frames)", ylabel="Expected overlap"))
    return paths
