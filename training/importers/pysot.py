"""Source ``pysot``: checkpoints of pysot's model zoo (STVIR/pysot: SiamRPN++ ResNet-50 and MobileNetV2,
SiamRPN AlexNet, SiamMask ResNet-50) and their experiment YAMLs (``experiments/<name>/config.yaml``).

The YAML says which network it is; :func:`settings` turns it into our config (one mapping for every model:
backbone, neck or none, one or three RPN levels, crop sizes and tracker values) and :func:`table` gives the
key table of that network. Everything here is facts about pysot's file formats (key names, YAML keys and its
code's defaults), written for this project (docs/MODELS.md); nothing of pysot's code is used or needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from siamattn.config import FEATURE_STRIDE, SIAMMASK_OUTPUT, Config
from siamattn.errors import ConfigError
from siamattn.training.importers.keymap import KeyTable, Row
from siamattn.training.importers.yacs_yaml import as_number, as_numbers, lookup

NAME = "pysot"
BASE_CONFIG = "siamrpnpp_r50"  # SiamRPN++ without attention or refinement; the YAML sets everything else

# pysot's defaults (pysot/core/config.py) for the keys read below: a YAML that leaves one out runs with these.
DEFAULTS: dict[str, Any] = {
    "META_ARC": "siamrpn_r50_l234_dwxcorr",
    "BACKBONE.TYPE": "res50", "BACKBONE.KWARGS": {},
    "ADJUST.ADJUST": True, "ADJUST.TYPE": "AdjustAllLayer", "ADJUST.KWARGS": {},
    "RPN.TYPE": "MultiRPN", "RPN.KWARGS": {},
    "MASK.MASK": False, "MASK.TYPE": "MaskCorr", "MASK.KWARGS": {}, "REFINE.REFINE": False, "REFINE.TYPE": "Refine",
    "ANCHOR.STRIDE": 8, "ANCHOR.RATIOS": [0.33, 0.5, 1, 2, 3], "ANCHOR.SCALES": [8], "ANCHOR.ANCHOR_NUM": 5,
    "TRACK.TYPE": "SiamRPNTracker", "TRACK.PENALTY_K": 0.04, "TRACK.WINDOW_INFLUENCE": 0.44, "TRACK.LR": 0.4,
    "TRACK.EXEMPLAR_SIZE": 127, "TRACK.INSTANCE_SIZE": 255, "TRACK.BASE_SIZE": 8, "TRACK.CONTEXT_AMOUNT": 0.5,
    "TRACK.LOST_INSTANCE_SIZE": 831, "TRACK.CONFIDENCE_LOW": 0.85, "TRACK.CONFIDENCE_HIGH": 0.998,
    "TRACK.MASK_THERSHOLD": 0.30, "TRACK.MASK_OUTPUT_SIZE": 127,
}
# pysot's long-term tracker (SiamRPNLTTracker) weighs its cosine window by this in the lost mode (a constant
# of its code, not a config key)
LOST_WINDOW_INFLUENCE = 0.001
TRACKERS = ("SiamRPNTracker", "SiamRPNLTTracker", "SiamMaskTracker")
# pysot's ResNet-50 used_layers (0 = stem, 1..4 = layer1..4) -> our correlation levels (model.backbone.used_layers):
# SiamRPN++'s three levels, or SiamMask's layer3 with the early maps its refine module reads
RESNET_LAYERS = {(2, 3, 4): [2, 3, 4], (0, 1, 2, 3): [3]}
# The keys pysot's config defines in the sections read here (its yacs config refuses any other key; the
# KWARGS sections take any key, which then must be an argument of the module they build).
KNOWN = {
    "": {"META_ARC", "CUDA", "TRAIN", "DATASET", "BACKBONE", "ADJUST", "RPN", "MASK", "REFINE", "ANCHOR", "TRACK"},
    "BACKBONE": {"TYPE", "KWARGS", "PRETRAINED", "TRAIN_LAYERS", "LAYERS_LR", "TRAIN_EPOCH", "CHANNELS"},
    "ADJUST": {"ADJUST", "KWARGS", "TYPE", "ADJUST_CHANNEL"},
    "RPN": {"TYPE", "KWARGS", "WEIGHTED"},
    "MASK": {"MASK", "TYPE", "KWARGS"},
    "REFINE": {"REFINE", "TYPE"},
    "ANCHOR": {"STRIDE", "RATIOS", "SCALES", "ANCHOR_NUM"},
    "TRACK": {"TYPE", "PENALTY_K", "WINDOW_INFLUENCE", "LR", "EXEMPLAR_SIZE", "INSTANCE_SIZE", "BASE_SIZE",
              "CONTEXT_AMOUNT", "LOST_INSTANCE_SIZE", "CONFIDENCE_LOW", "CONFIDENCE_HIGH", "MASK_THERSHOLD",
              "MASK_OUTPUT_SIZE"},
}
# Keys of the model zoo's long-term YAML (siamrpn_r50_l234_dwxcorr_lt) that pysot's config does not define (its
# own merge_from_file refuses them): each repeats a KWARGS value, and must agree with it.
REPEATS = {"BACKBONE.CHANNELS": "ADJUST.KWARGS.in_channels", "ADJUST.ADJUST_CHANNEL": "ADJUST.KWARGS.out_channels",
           "RPN.WEIGHTED": "RPN.KWARGS.weighted"}
# Constructor arguments (name -> default) of the modules a KWARGS section configures.
KWARGS = {
    "resnet50": {"used_layers": None},
    "mobilenetv2": {"width_mult": 1.0, "used_layers": [3, 5, 7]},
    "alexnetlegacy": {"width_mult": 1},
    "AdjustAllLayer": {"in_channels": None, "out_channels": None, "center_size": 7},
    "MultiRPN": {"anchor_num": None, "in_channels": None, "weighted": False},
    "DepthwiseRPN": {"anchor_num": 5, "in_channels": 256, "out_channels": 256},
    "MaskCorr": {"in_channels": None, "hidden": None, "out_channels": None, "kernel_size": 3,
                 "hidden_kernel_size": 5},
}
# pysot's MobileNetV2 modules layer1..layer7 hold 1, 2, 3, 4, 3, 3, 1 blocks (layer0 is the stem); ours are
# one flat list features[0..17]: layer L's block i is features[MBV2_FIRST[L] + i].
MBV2_BLOCKS = (1, 2, 3, 4, 3, 3, 1)
MBV2_FIRST = {L: 1 + sum(MBV2_BLOCKS[: L - 1]) for L in range(1, 8)}


def _get(data: dict[str, Any], dotted: str) -> Any:
    return lookup(data, dotted, DEFAULTS)


def experiment_name(data: dict[str, Any], path: str | Path) -> str:
    """pysot keeps one experiment per folder (``experiments/siamrpn_alex_dwxcorr_otb/config.yaml``); its
    META_ARC does not tell the _otb variants apart, the folder does."""
    path = Path(path)
    if path.name == "config.yaml" and path.parent.name:
        return path.parent.name
    meta = data.get("META_ARC")
    return meta if isinstance(meta, str) and meta else path.stem


class _Reader:
    """Reads pysot's YAML, failing with one line that names the key (and the file)."""

    def __init__(self, data: dict[str, Any], path: str | Path) -> None:
        self.data = data
        self.src = f"--config-file '{Path(path).name}'"

    def get(self, key: str) -> Any:
        return _get(self.data, key)

    def fail(self, key: str, what: str) -> NoReturn:
        raise ConfigError(f"{self.src}: {key} {what}")

    def need(self, key: str, ok: bool, what: str) -> None:
        if not ok:
            self.fail(f"{key} = {self.get(key)!r}", what)

    def known_keys(self) -> None:
        for section, known in KNOWN.items():
            node = self.data if not section else self.data.get(section, {})
            if not isinstance(node, dict):
                self.fail(section, "is not a mapping")
            unknown = sorted(set(node) - known)
            if unknown:
                self.fail(f"{section + '.' if section else ''}{unknown[0]}", "is not a key of pysot's config (its "
                          "own code would refuse the file); check the spelling")

    def repeats(self) -> None:
        for key, source in REPEATS.items():
            section, name = key.split(".")
            node = self.data.get(section, {})
            given = lookup(self.data, source, {source: None})
            if isinstance(node, dict) and name in node and node[name] != given:
                self.fail(f"{key} = {node[name]!r}", f"differs from {source} = {given!r}")

    def kwargs(self, section: str, module: str) -> dict[str, Any]:
        given = self.get(f"{section}.KWARGS")
        self.need(f"{section}.KWARGS", isinstance(given, dict), "is not a mapping")
        unknown = sorted(set(given) - set(KWARGS[module]))
        if unknown:
            self.fail(f"{section}.KWARGS.{unknown[0]}", f"is not an argument of pysot's {module}")
        return {**KWARGS[module], **given}

    def ints(self, key: str, value: Any, n: int | None = None) -> list[int]:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok or (n is not None and len(value) != n):
            self.fail(f"{key} = {value!r}", f"is not a list of {n or 'some'} integers")
        return list(value)

    def numbers(self, key: str) -> list[float]:
        vals = as_numbers(self.get(key))
        self.need(key, vals is not None, "is not a list of finite numbers")
        return vals or []

    def number(self, key: str) -> float:
        value = as_number(self.get(key))
        self.need(key, value is not None, "is not a finite number")
        assert value is not None
        return value

    def positive(self, key: str, value: Any) -> float:
        mult = as_number(value)
        self.need(key, mult is not None and mult > 0, "is not a positive number")
        assert mult is not None
        return mult


def settings(data: dict[str, Any], path: str | Path, weighted_from_keys: bool) -> dict[str, Any]:
    """pysot's YAML -> overrides of ``BASE_CONFIG`` (dotted keys). Raises :class:`ConfigError` with one line
    naming the first key this project cannot build (or that pysot itself would refuse)."""
    r = _Reader(data, path)
    r.known_keys()
    r.repeats()
    out: dict[str, Any] = {}
    levels = _backbone(r, out)
    _neck(r, levels, out)
    num = _rpn(r, levels, weighted_from_keys, out)
    _tracker(r, num, out)
    out["name"] = experiment_name(data, path)
    return out


def _backbone(r: _Reader, out: dict[str, Any]) -> int:
    """Which backbone, its width and which of its maps are the correlation levels; returns how many."""
    kind = r.get("BACKBONE.TYPE")
    r.need("BACKBONE.TYPE", kind in ("resnet50", "mobilenetv2", "alexnetlegacy"),
           "is not one this project builds (resnet50, mobilenetv2, alexnetlegacy)")
    kw = r.kwargs("BACKBONE", kind)
    if kind == "resnet50":
        used = kw["used_layers"]
        layers = RESNET_LAYERS.get(tuple(used)) if isinstance(used, list) else None
        r.need("BACKBONE.KWARGS.used_layers", layers is not None,
               "is not [2, 3, 4] (SiamRPN++'s layer2..layer4) or [0, 1, 2, 3] (SiamMask's)")
        out.update({"model.backbone.name": "resnet50", "model.backbone.used_layers": layers})
        return len(layers or [])
    elif kind == "mobilenetv2":
        used = r.ints("BACKBONE.KWARGS.used_layers", kw["used_layers"], 3)
        if not (3 <= used[0] < used[1] < used[2] == 7):
            r.fail(f"BACKBONE.KWARGS.used_layers = {used!r}", "is not three increasing stride-8 layers (3..7) "
                   "ending with layer7 (the network here ends at its last level)")
        mult = r.positive("BACKBONE.KWARGS.width_mult", kw["width_mult"])
        out.update({"model.backbone.name": "mobilenetv2", "model.backbone.variant": "pysot",
                    "model.backbone.width_mult": mult,
                    "model.backbone.stride8_blocks": [MBV2_FIRST[L] + MBV2_BLOCKS[L - 1] - 1 for L in used]})
    else:
        mult = r.positive("BACKBONE.KWARGS.width_mult", kw["width_mult"])
        out.update({"model.backbone.name": "alexnet", "model.backbone.width_mult": mult})
    return 1 if kind == "alexnetlegacy" else 3


def _neck(r: _Reader, levels: int, out: dict[str, Any]) -> None:
    """pysot's AdjustAllLayer (1x1 conv + BN per level, template centre crop) or none."""
    adjust = r.get("ADJUST.ADJUST")
    r.need("ADJUST.ADJUST", isinstance(adjust, bool), "is not true or false")
    if not adjust:
        out["model.neck.enabled"] = False
        return
    r.need("ADJUST.TYPE", r.get("ADJUST.TYPE") == "AdjustAllLayer", "is not 'AdjustAllLayer'")
    kw = r.kwargs("ADJUST", "AdjustAllLayer")
    ins = r.ints("ADJUST.KWARGS.in_channels", kw["in_channels"], levels)
    outs = r.ints("ADJUST.KWARGS.out_channels", kw["out_channels"], levels)
    crop = kw["center_size"]
    r.need("ADJUST.KWARGS.center_size", isinstance(crop, int) and crop % 2 == 1, "is not an odd integer")
    out.update({"model.neck.enabled": True, "model.neck.channels": outs[0], "model.neck.template_crop": crop,
                "_neck_in": ins})  # checked against the built backbone by the caller
    if len(set(outs)) != 1:  # a width per level (the long-term experiment's 128/256/512)
        out["model.neck.level_channels"] = outs


def _rpn(r: _Reader, levels: int, weighted_from_keys: bool, out: dict[str, Any]) -> int:
    """Three depth-wise correlation levels (MultiRPN) or one (DepthwiseRPN); returns the anchor count."""
    width = out.get("model.neck.channels")  # None: the backbone's own width (checked by the model)
    widths = out.get("model.neck.level_channels") or [width] * levels
    rpn = r.get("RPN.TYPE")
    r.need("RPN.TYPE", rpn == ("DepthwiseRPN" if levels == 1 else "MultiRPN"),
           f"does not fit {levels} backbone level{'s' if levels > 1 else ''} "
           f"({'DepthwiseRPN' if levels == 1 else 'MultiRPN'} does; UPChannelRPN is not built here)")
    kw = r.kwargs("RPN", rpn)
    num = len(r.numbers("ANCHOR.RATIOS")) * len(r.numbers("ANCHOR.SCALES"))
    r.need("RPN.KWARGS.anchor_num", kw["anchor_num"] == num, f"differs from len(RATIOS) * len(SCALES) = {num}")
    if rpn == "MultiRPN":
        ins = r.ints("RPN.KWARGS.in_channels", kw["in_channels"], levels)
        if width is not None and ins != widths:
            r.fail(f"RPN.KWARGS.in_channels = {ins!r}", f"differs from the neck's widths {widths}")
        weighted = kw["weighted"]
        r.need("RPN.KWARGS.weighted", isinstance(weighted, bool), "is not true or false")
        # pysot's MultiRPN builds DepthwiseRPN(anchor_num, c, c) per level: hidden 0 = each level's width
        hidden = ins[0] if len(set(ins)) == 1 else 0
    else:
        ins = r.ints("RPN.KWARGS.in_channels", [kw["in_channels"]], 1)
        if width is not None and ins[0] != width:
            r.fail(f"RPN.KWARGS.in_channels = {ins[0]!r}", f"differs from the neck's width {width}")
        out["_rpn_in"] = ins[0]  # with no neck: checked against the backbone by the caller
        hidden = r.ints("RPN.KWARGS.out_channels", [kw["out_channels"]], 1)[0]
        weighted = False
    if bool(weighted) != weighted_from_keys:
        has = "has" if weighted_from_keys else "has no"
        r.fail(f"RPN.KWARGS.weighted = {weighted!r}", f"(pysot's default: False) disagrees with the checkpoint, "
               f"which {has} rpn_head.cls_weight")
    out.update({"model.rpn.hidden": hidden, "model.rpn.weighted_fusion": bool(weighted)})
    return num


def _tracker(r: _Reader, num: int, out: dict[str, Any]) -> None:
    """The mask branch (SiamMask) or none, the anchors and the tracker settings."""
    r.need("TRACK.TYPE", r.get("TRACK.TYPE") in TRACKERS, f"is not one of {', '.join(map(repr, TRACKERS))}")
    _siammask(r, out)
    r.need("ANCHOR.STRIDE", r.get("ANCHOR.STRIDE") == FEATURE_STRIDE,
           f"is not {FEATURE_STRIDE} (the networks' output stride)")
    r.need("ANCHOR.ANCHOR_NUM", r.get("ANCHOR.ANCHOR_NUM") == num, f"differs from len(RATIOS) * len(SCALES) = {num}")
    for key in ("TRACK.EXEMPLAR_SIZE", "TRACK.INSTANCE_SIZE", "TRACK.BASE_SIZE"):
        value = r.get(key)
        r.need(key, isinstance(value, int) and not isinstance(value, bool) and value >= 0, "is not an integer")
    r.need("TRACK.EXEMPLAR_SIZE", r.get("TRACK.EXEMPLAR_SIZE") == 127, "is not 127 (the template crop here)")
    out.update({
        "anchors.ratios": r.numbers("ANCHOR.RATIOS"),
        "anchors.scales": r.numbers("ANCHOR.SCALES"),
        "tracker.penalty_k": r.number("TRACK.PENALTY_K"),
        "tracker.window_influence": r.number("TRACK.WINDOW_INFLUENCE"),
        "tracker.lr": r.number("TRACK.LR"),
        "tracker.context_amount": r.number("TRACK.CONTEXT_AMOUNT"),
        "tracker.exemplar_size": 127,
        "tracker.instance_size": r.get("TRACK.INSTANCE_SIZE"),
        "tracker.base_size": r.get("TRACK.BASE_SIZE"),
        "tracker.geometry": "pysot",
        "tracker.output": "box",  # pysot's SiamRPNTracker reports the box
    })
    if r.get("TRACK.TYPE") == "SiamRPNLTTracker":
        _long_term(r, out)
    if r.get("MASK.MASK"):
        out.update({"tracker.mask_threshold": r.number("TRACK.MASK_THERSHOLD"), "tracker.output": "polygon"})


def _siammask(r: _Reader, out: dict[str, Any]) -> None:
    """SiamMask's MaskCorr + Refine (docs/DESIGN.md "SiamMask"): pysot's SiamMaskTracker needs both, and they
    need its tracker and its layer3 backbone; a SiamRPN tracker's YAML has neither."""
    mask, refine, tracker = r.get("MASK.MASK"), r.get("REFINE.REFINE"), r.get("TRACK.TYPE")
    r.need("MASK.MASK", isinstance(mask, bool), "is not true or false")
    if not mask:
        r.need("REFINE.REFINE", refine is False, "needs MASK.MASK: True (the refine module reads the mask branch)")
        r.need("TRACK.TYPE", tracker != "SiamMaskTracker", "needs the mask branch: set MASK.MASK: True, MASK.TYPE: "
               "'MaskCorr' and a REFINE section (REFINE: True, TYPE: 'Refine'), as experiments/siammask_r50_l3")
        return
    r.need("REFINE.REFINE", refine is True, "(or a missing REFINE section): SiamMask's tracker needs the refine "
           "module; add REFINE: {REFINE: True, TYPE: 'Refine'} as experiments/siammask_r50_l3/config.yaml has")
    r.need("REFINE.TYPE", r.get("REFINE.TYPE") == "Refine", "is not 'Refine'")
    r.need("TRACK.TYPE", tracker == "SiamMaskTracker", "is not 'SiamMaskTracker' (the tracker of a mask model)")
    r.need("MASK.TYPE", r.get("MASK.TYPE") == "MaskCorr", "is not 'MaskCorr'")
    r.need("BACKBONE.KWARGS.used_layers", out.get("model.backbone.used_layers") == [3],
           "is not [0, 1, 2, 3] (SiamMask's mask branch reads layer3 and its refine module stem..layer2)")
    kw = r.kwargs("MASK", "MaskCorr")
    width = out.get("model.neck.channels")
    ins, hidden, vec = (r.ints(f"MASK.KWARGS.{k}", [kw[k]], 1)[0] for k in ("in_channels", "hidden", "out_channels"))
    r.need("MASK.KWARGS.in_channels", ins == width, f"differs from the neck's width {width}")
    r.need("MASK.KWARGS.kernel_size", kw["kernel_size"] == 3, "is not 3 (the correlation block's conv here)")
    side = round(vec**0.5)
    r.need("MASK.KWARGS.out_channels", side * side == vec, "is not a square (the mask vector per position)")
    r.need("TRACK.MASK_OUTPUT_SIZE", r.get("TRACK.MASK_OUTPUT_SIZE") == SIAMMASK_OUTPUT,
           f"is not {SIAMMASK_OUTPUT} (pysot's Refine builds {SIAMMASK_OUTPUT}x{SIAMMASK_OUTPUT} masks)")
    r.need("TRACK.MASK_THERSHOLD", 0.0 < r.number("TRACK.MASK_THERSHOLD") < 1.0, "is not in (0, 1)")
    out.update({"model.siammask.enabled": True, "model.siammask.hidden": hidden, "model.siammask.vector": side})


def _long_term(r: _Reader, out: dict[str, Any]) -> None:
    """pysot's long-term tracker: its lost window and confidence rules (docs/DESIGN.md "Long-term search")."""
    lost, normal = r.get("TRACK.LOST_INSTANCE_SIZE"), r.get("TRACK.INSTANCE_SIZE")
    r.need("TRACK.LOST_INSTANCE_SIZE", isinstance(lost, int) and not isinstance(lost, bool)
           and lost >= normal + FEATURE_STRIDE,
           f"is not an integer at least {FEATURE_STRIDE} px larger than TRACK.INSTANCE_SIZE ({normal}): the lost "
           "window must be larger than the normal one")
    low, high = r.number("TRACK.CONFIDENCE_LOW"), r.number("TRACK.CONFIDENCE_HIGH")
    r.need("TRACK.CONFIDENCE_LOW", 0.0 <= low <= high <= 1.0, f"is not in [0, TRACK.CONFIDENCE_HIGH = {high}]")
    out.update({"tracker.long_term": True, "tracker.lost_instance_size": lost, "tracker.confidence_low": low,
                "tracker.confidence_high": high, "tracker.lost_window_influence": LOST_WINDOW_INFLUENCE})


def check_network(cfg: Config, extra: dict[str, Any], path: str | Path) -> None:
    """The YAML's channel counts and crop sizes against the network our config builds (shapes only, on the
    meta device): pysot would fail on a mismatch at load time or track with a map the anchors do not fit."""
    import torch

    from siamattn.training.model.siamattn import build_model

    src = f"--config-file '{Path(path).name}'"
    with torch.device("meta"):
        model = build_model(cfg)
        t = cfg.tracker
        z = torch.empty(1, 3, t.exemplar_size, t.exemplar_size)
        x = torch.empty(1, 3, t.instance_size, t.instance_size)
        cache = model.template(z)
        size = model.search(x, cache)["cls"].shape[-1]
        lost = torch.empty(1, 3, t.lost_instance_size, t.lost_instance_size)
        lost_size = model.search(lost, cache)["cls"].shape[-1] if t.long_term else t.lost_score_size
    levels = model.backbone.channels[-model.levels:]
    if "_neck_in" in extra and extra["_neck_in"] != levels:
        raise ConfigError(f"{src}: ADJUST.KWARGS.in_channels = {extra['_neck_in']!r} differs from the backbone's "
                          f"level widths {levels}")
    if "_rpn_in" in extra and extra["_rpn_in"] != model.neck.channels:
        raise ConfigError(f"{src}: RPN.KWARGS.in_channels = {extra['_rpn_in']!r} differs from the width of the "
                          f"features it gets ({model.neck.channels})")
    if size != t.score_size:
        raise ConfigError(f"{src}: TRACK.INSTANCE_SIZE = {t.instance_size} and TRACK.BASE_SIZE = {t.base_size} "
                          f"give a {t.score_size}x{t.score_size} anchor grid, but the network computes "
                          f"{size}x{size} maps from {t.instance_size} crops")
    if lost_size != t.lost_score_size:
        raise ConfigError(f"{src}: TRACK.LOST_INSTANCE_SIZE = {t.lost_instance_size} gives a {t.lost_score_size}x"
                          f"{t.lost_score_size} anchor grid, but the network computes {lost_size}x{lost_size} maps "
                          "from those crops")


def table(cfg: Config) -> KeyTable:
    """The key table of the network ``cfg`` describes (pysot names its modules by backbone and level count)."""
    m = cfg.model
    rows: list[Row] = []
    if m.backbone.name == "mobilenetv2":
        rows.append(Row("backbone.layer0.", "backbone.features.0.", why="stem: 3x3 conv + BN"))
        last = m.backbone.stride8_blocks[-1]
        for layer, n in enumerate(MBV2_BLOCKS, 1):
            first = MBV2_FIRST[layer]
            if first > last:
                break
            rows.append(Row(f"backbone.layer{layer}.{{0}}.", "backbone.features.{1}.",
                            tuple((i, first + i) for i in range(n)),
                            why="one flat block list here; conv.{0,1,3,4,6,7} inside a block on both sides"))
    else:
        rows.append(Row("backbone.", "backbone.", why="same module names and shapes"))
    levels = m.backbone.levels
    if m.neck.enabled:
        if levels == 1:
            rows.append(Row("neck.downsample.downsample.", "neck.adjust.0.", why="1x1 conv + BN"))
        else:
            rows.append(Row("neck.downsample{0}.downsample.", "neck.adjust.{1}.",
                            tuple((i + 2, i) for i in range(levels)), why="1x1 conv + BN per level"))
    if levels == 1:
        rows += [Row("rpn_head.cls.", "rpn.cls.0.", why="DepthwiseRPN: one level"),
                 Row("rpn_head.loc.", "rpn.loc.0.")]
    if m.siammask.enabled:
        rows += [Row("mask_head.", "mask_corr.", why="MaskCorr: the RPN block's layout, 3969-channel head"),
                 Row("refine_head.", "mask_refine.", why="Refine: same module names")]
    else:
        idx = tuple((i + 2, i) for i in range(levels))
        rows += [Row("rpn_head.rpn{0}.cls.", "rpn.cls.{1}.", idx, why="MultiRPN: rpn2..rpn4 -> levels 0..2"),
                 Row("rpn_head.rpn{0}.loc.", "rpn.loc.{1}.", idx),
                 Row("rpn_head.cls_weight", "rpn.cls_weight", why="only with weighted fusion"),
                 Row("rpn_head.loc_weight", "rpn.loc_weight", why="only with weighted fusion")]
    return KeyTable(source=f"pysot's {cfg.name} network", rows=tuple(rows))
