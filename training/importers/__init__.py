"""``siamattn import``: checkpoints trained by other code -> project checkpoints (docs/MODELS.md).

A source is a key table (:mod:`siamattn.training.importers.keymap`) plus the config of the network it
describes: the SiamAttn authors' code (:mod:`siamattn.training.importers.siamattn_authors`, a shipped config
per benchmark) and pysot's model zoo (:mod:`siamattn.training.importers.pysot`, the config built from its
experiment YAML).
The written checkpoint carries its config, so ``siamattn export --checkpoint`` and the runtime need no
``--config``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from siamattn.config import Config, apply_overrides, from_dict, load_config
from siamattn.errors import SiamAttnError
from siamattn.training.importers.yacs_yaml import read_yaml

SOURCES = ("siamattn-authors", "pysot")
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


def import_config(keys: set[str], config_file: str | Path | None = None, their_yaml: dict | None = None,
                  benchmark: str | None = None, overrides: list[str] | None = None) -> tuple[Config, list[str]]:
    """The config of an imported checkpoint (its keys ``keys``; their YAML parsed as ``their_yaml``) and notes
    for the user on what was decided."""
    from siamattn.training.importers import siamattn_authors as authors

    notes: list[str] = []
    weighted = authors.weighted_fusion(keys)
    if benchmark is None:
        benchmark = guess_benchmark(config_file)
        if config_file is not None:
            notes.append(f"benchmark settings: {benchmark} (from the file name; --benchmark to choose)")
    if benchmark not in BENCHMARKS:
        raise SiamAttnError(f"--benchmark {benchmark!r}: choose from {', '.join(BENCHMARKS)}")
    base = BENCHMARKS[benchmark]
    data = load_config(base).to_dict()
    if their_yaml is not None:
        assert config_file is not None
        for key, value in authors.settings(their_yaml, config_file, weighted).items():
            _set(data, key, value)
        notes.append(f"tracker settings from '{config_file}' onto {base}")
    else:
        _set(data, "model.rpn.weighted_fusion", weighted)
        t = data["tracker"]
        notes.append(f"no --config-file: {base}'s {'VOT2018' if benchmark == 'vot' else 'OTB100'} settings "
                     f"(penalty_k {t['penalty_k']}, window_influence {t['window_influence']}, lr {t['lr']}, "
                     f"mask_threshold {t['mask_threshold']}); pass their YAML to use its values")
    # the imported network is the authors': their tracker geometry reproduces their boxes (docs/MODELS.md)
    _set(data, "tracker.geometry", "authors")
    _set(data, "tracker.output", "box" if benchmark == "otb" else "polygon")
    if not weighted:
        notes.append("the checkpoint has no rpn_head.cls_weight: the RPN levels are averaged (weighted: False)")
    return from_dict(apply_overrides(data, overrides or [])), notes


def import_config_pysot(keys: set[str], config_file: str | Path | None, their_yaml: dict | None,
                        benchmark: str | None = None, overrides: list[str] | None = None
                        ) -> tuple[Config, list[str]]:
    """The config of a pysot checkpoint: :data:`pysot.BASE_CONFIG` with everything its YAML says (network,
    anchors, tracker), checked against the network that config builds."""
    from siamattn.training.importers import pysot

    if their_yaml is None or config_file is None:
        raise SiamAttnError("--from pysot needs --config-file: the experiment's config.yaml (e.g. "
                            "experiments/siamrpn_r50_l234_dwxcorr/config.yaml) says which network the checkpoint is")
    if benchmark is not None:
        raise SiamAttnError("--benchmark is for --from siamattn-authors; pysot's experiment YAML (e.g. the _otb "
                            "folder's) carries its own tracker settings")
    found = pysot.settings(their_yaml, config_file, "rpn_head.cls_weight" in keys)
    checks = {k: found.pop(k) for k in [k for k in found if k.startswith("_")]}
    data = load_config(pysot.BASE_CONFIG).to_dict()
    for key, value in found.items():
        _set(data, key, value)
    cfg = from_dict(apply_overrides(data, overrides or []))
    pysot.check_network(cfg, checks, config_file)
    t = cfg.tracker
    notes = [f"network and tracker settings from '{config_file}' ({cfg.model.backbone.name}, "
             f"{cfg.model.backbone.levels} RPN level(s), {'a' if cfg.model.neck.enabled else 'no'} neck, "
             f"{t.instance_size} search crops; penalty_k {t.penalty_k}, window_influence {t.window_influence}, "
             f"lr {t.lr})"]
    return cfg, notes


def import_checkpoint(source: str, checkpoint: str | Path, out: str | Path, config_file: str | Path | None = None,
                      benchmark: str | None = None, overrides: list[str] | None = None,
                      overwrite: bool = False, log: Callable[[str], None] = print) -> ImportResult:
    import torch

    from siamattn.outputs import check_file_output
    from siamattn.training.importers import pysot
    from siamattn.training.importers import siamattn_authors as authors
    from siamattn.training.importers.keymap import map_state_dict, unwrap_state_dict
    from siamattn.training.model.checkpoint import load_torch_file, save_checkpoint
    from siamattn.training.model.siamattn import build_model

    if source not in SOURCES:
        raise SiamAttnError(f"--from {source!r}: unknown source; choose from {', '.join(SOURCES)}")
    out = Path(out)
    check_file_output("--out", out, overwrite=overwrite, inputs={"--checkpoint": checkpoint,
                                                                 "--config-file": config_file}, example="model.pt")

    their_yaml = read_yaml(config_file) if config_file is not None else None  # fail before the big load
    what = f"checkpoint '{checkpoint}'"
    state = unwrap_state_dict(load_torch_file(checkpoint), what)
    if source == pysot.NAME:
        cfg, notes = import_config_pysot(set(state), config_file, their_yaml, benchmark, overrides)
        table = pysot.table(cfg)
    else:
        cfg, notes = import_config(set(state), config_file, their_yaml, benchmark, overrides)
        table = authors.TABLE

    with torch.device("meta"):  # names and shapes only: every value comes from the checkpoint
        model = build_model(cfg)
    model.load_state_dict(map_state_dict(state, table, model.state_dict(), what), assign=True)
    model.eval()
    save_checkpoint(out, model, source={"from": source, "checkpoint": Path(checkpoint).name,
                                        "config_file": Path(config_file).name if config_file else None},
                    flag="--out")
    log(f"imported {len(state)} tensors from {what} ({source}) as {cfg.name} -> {out}")
    for n in notes:
        log(f"  {n}")
    return ImportResult(cfg, len(state), notes)
