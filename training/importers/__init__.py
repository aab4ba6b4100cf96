"""``siamattn import``: checkpoints trained by other code -> project checkpoints (docs/MODELS.md).

A source is a key table (:mod:`siamattn.training.importers.keymap`) plus the shipped config of the network it
describes; the SiamAttn authors' code is the first (:mod:`siamattn.training.importers.siamattn_authors`).
The written checkpoint carries its config, so ``siamattn export --checkpoint`` and the runtime need no
``--config``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from siamattn.config import Config, apply_overrides, from_dict, load_config
from siamattn.errors import SiamAttnError

SOURCES = ("siamattn-authors",)
BENCHMARKS = {"vot": "siamattn_r50", "otb": "siamattn_r50_otb"}  # shipped config per benchmark's settings


@dataclass
class ImportResult:
    config: Config
    keys: int  # tensors taken from the source
    notes: list[str]  # what was decided and why, for the user


def _set(data: dict, dotted: str, value: object) -> None:
    node = data
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    node[last] = value


def guess_benchmark(config_file: str | Path | None) -> str:
    """Their experiment folders are named by benchmark (config_vot2018.yaml, config_otb100.yaml)."""
    return "otb" if config_file is not None and "otb" in Path(config_file).name.lower() else "vot"


def import_checkpoint(source: str, checkpoint: str | Path, out: str | Path, config_file: str | Path | None = None,
                      benchmark: str | None = None, overrides: list[str] | None = None,
                      overwrite: bool = False, log: Callable[[str], None] = print) -> ImportResult:
    from siamattn.training.importers import siamattn_authors as authors
    from siamattn.training.importers.keymap import map_state_dict, unwrap_state_dict
    from siamattn.training.model.checkpoint import load_torch_file, save_checkpoint
    from siamattn.training.model.siamattn import build_model

    if source not in SOURCES:
        raise SiamAttnError(f"--from {source!r}: unknown source; choose from {', '.join(SOURCES)}")
    out = Path(out)
    if out.resolve() == Path(checkpoint).resolve():
        raise SiamAttnError(f"--out '{out}' is the --checkpoint file: writing it would destroy the input; "
                            "give another output path")
    if out.is_dir():
        raise SiamAttnError(f"--out '{out}' is a folder; give a file path (e.g. '{out / 'model.pt'}')")
    if out.exists() and not overwrite:
        raise SiamAttnError(f"--out '{out}' already exists; pass --overwrite to replace it")

    notes: list[str] = []
    their_yaml = authors.read_yaml(config_file) if config_file is not None else None  # fail before the big load
    what = f"checkpoint '{checkpoint}'"
    state = unwrap_state_dict(load_torch_file(checkpoint), what)
    weighted = authors.weighted_fusion(set(state))

    if benchmark is None:
        benchmark = guess_benchmark(config_file)
        if config_file is not None:
            notes.append(f"benchmark settings: {benchmark} (from the file name; --benchmark to choose)")
    if benchmark not in BENCHMARKS:
        raise SiamAttnError(f"--benchmark {benchmark!r}: choose from {', '.join(BENCHMARKS)}")
    data = load_config(BENCHMARKS[benchmark]).to_dict()
    if their_yaml is not None:
        assert config_file is not None
        for key, value in authors.settings(their_yaml, config_file, weighted).items():
            _set(data, key, value)
        notes.append(f"tracker settings from '{config_file}' onto {BENCHMARKS[benchmark]}")
    else:
        _set(data, "model.rpn.weighted_fusion", weighted)
        notes.append(f"no --config-file: {BENCHMARKS[benchmark]}'s settings ("
                     + ("VOT2018" if benchmark == "vot" else "OTB100")
                     + " values as the issue states them; their YAMLs are not in their repository)")
    # the imported network is the authors': their tracker geometry reproduces their boxes (docs/MODELS.md)
    _set(data, "tracker.geometry", "authors")
    _set(data, "tracker.output", "box" if benchmark == "otb" else "polygon")
    if not weighted:
        notes.append("the checkpoint has no rpn_head.cls_weight: the RPN levels are averaged (weighted: False)")
    cfg = from_dict(apply_overrides(data, overrides or []))

    model = build_model(cfg)
    model.load_state_dict(map_state_dict(state, authors.TABLE, model.state_dict(), what))
    save_checkpoint(out, model, source={"from": source, "checkpoint": Path(checkpoint).name,
                                        "config_file": Path(config_file).name if config_file else None})
    log(f"imported {len(state)} tensors from {what} ({source}) as {cfg.name} -> {out}")
    for n in notes:
        log(f"  {n}")
    return ImportResult(cfg, len(state), notes)
