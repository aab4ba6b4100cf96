"""Source ``siamattn-authors``: checkpoints of the SiamAttn authors' training code (msight-tech/research-siamattn,
a pysot fork) and their experiment YAMLs. What their network computes and how it corresponds to ours:
docs/MODELS.md; the config switches that make ours the same network: configs/siamattn_r50.yaml.

Everything here is facts about their file formats (key names, YAML keys and their code's default values),
written for this project; nothing of their code is used or needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siamattn.errors import ConfigError
from siamattn.training.importers.keymap import KeyTable, Row
from siamattn.training.importers.yacs_yaml import as_number, as_numbers, lookup

NAME = "siamattn-authors"

LEVELS = ((0,), (1,), (2,))  # the three attention / box-feature levels: same numbering on both sides
RPN_LEVELS = ((2, 0), (3, 1), (4, 2))  # their rpn{2,3,4} / downsample{2,3,4} (backbone stage) -> our level 0..2
MASK_CONVS = ((0, 0, 1), (1, 3, 4), (2, 6, 7), (3, 9, 10))  # their conv j -> our Sequential conv / BN index
LATERALS = tuple((i,) for i in range(5))  # mask laterals: stem, layer1, three attention levels (same order)

TABLE = KeyTable(
    source="the SiamAttn authors' network",
    rows=(
        Row("backbone.", "backbone.", why="atrous ResNet-50: same module names and shapes"),
        Row("neck.downsample{0}.downsample.", "neck.adjust.{1}.", RPN_LEVELS, why="1x1 conv + BN per level"),
        # Spatial attention: theirs softmaxes q_i.k_j over j (rows) and outputs sum_j a_ij v_j; ours softmaxes
        # over the first index. The two agree when their key conv is our query conv and vice versa.
        Row("feature_enhance.pams.{0}.key_conv.", "dsa.{0}.query.", LEVELS, why="spatial attention: roles swapped"),
        Row("feature_enhance.pams.{0}.query_conv.", "dsa.{0}.key.", LEVELS, why="spatial attention: roles swapped"),
        Row("feature_enhance.pams.{0}.value_conv.", "dsa.{0}.value.", LEVELS),
        Row("feature_enhance.pams.{0}.gamma", "dsa.{0}.alpha", LEVELS, why="spatial attention scalar"),
        Row("feature_enhance.cam_uses.{0}.gamma", "dsa.{0}.gamma_c", LEVELS,
            why="one channel-attention scalar for the self and the cross term (shared_channel_scalar)"),
        Row("feature_enhance.deform_convs.{0}.conv_offset.", "dsa.{0}.out.offset.", LEVELS),
        Row("feature_enhance.deform_convs.{0}.weight", "dsa.{0}.out.weight", LEVELS,
            why="their deformable conv has no bias (deform_bias: false)"),
        Row("rpn_head.rpn{0}.cls.", "rpn.cls.{1}.", RPN_LEVELS),
        Row("rpn_head.rpn{0}.loc.", "rpn.loc.{1}.", RPN_LEVELS),
        Row("rpn_head.cls_weight", "rpn.cls_weight", why="present only with weighted fusion (rpn.weighted_fusion)"),
        Row("rpn_head.loc_weight", "rpn.loc_weight", why="present only with weighted fusion (rpn.weighted_fusion)"),
        Row("feature_fusion.xcorr.{0}.", "refine.box_xcorr.{0}.", LEVELS, why="box features (box_corr: head)"),
        Row("feature_fusion.convs.{0}.conv.", "refine.fuse.{0}.0.", LEVELS),
        Row("feature_fusion.convs.{0}.BN256.", "refine.fuse.{0}.1.", LEVELS),
        Row("feature_fusion.lateral_convs.{0}.conv.", "refine.mask_lateral.{0}.0.", LATERALS,
            why="mask features (mask_features: laterals): stem, layer1, three attention levels"),
        Row("feature_fusion.lateral_convs.{0}.BN256.", "refine.mask_lateral.{0}.1.", LATERALS),
        Row("bbox_head.roi_pool_b.offset_fc.", "refine.box_pool.offset_fc."),
        Row("bbox_head.tail_det.0.", "refine.box_head.1."),
        Row("bbox_head.tail_det.2.", "refine.box_head.3."),
        Row("bbox_head.tail_det_box.", "refine.box_head.5."),
        Row("mask_head.roi_pool_m.offset_fc.", "refine.mask_pool.offset_fc.", why="deformable mask pooling"),
        Row("mask_head.convs.{0}.conv.", "refine.mask_head.{1}.", MASK_CONVS, why="mask head convs with BN"),
        Row("mask_head.convs.{0}.BN256.", "refine.mask_head.{2}.", MASK_CONVS),
        Row("mask_head.upsample.", "refine.mask_head.12."),
        Row("mask_head.conv_logits.", "refine.mask_head.14."),
    ),
)


def weighted_fusion(keys: set[str]) -> bool:
    """Their MultiRPN has the level-fusion logits only when built with ``weighted: True``."""
    return "rpn_head.cls_weight" in keys


# Their code's defaults (pysot/core/config.py of their repository) for every key read below: a YAML that
# leaves a key out runs with these.
DEFAULTS: dict[str, Any] = {
    "META_ARC": None,
    "BACKBONE.TYPE": "resnet50", "BACKBONE.KWARGS.used_layers": None,
    "ADJUST.ADJUST": True, "ADJUST.TYPE": "AdjustAllLayer",
    "ADJUST.KWARGS.in_channels": None, "ADJUST.KWARGS.out_channels": None,
    "RPN.TYPE": "MultiRPN", "RPN.KWARGS.anchor_num": None, "RPN.KWARGS.in_channels": None,
    "RPN.KWARGS.weighted": False,
    "MASK.MASK": False, "MASK.MASK_OUTSIZE": 64, "REFINE.REFINE": False,
    "ANCHOR.STRIDE": 8, "ANCHOR.RATIOS": [0.33, 0.5, 1, 2, 3], "ANCHOR.SCALES": [8], "ANCHOR.ANCHOR_NUM": None,
    "TRAIN.EXEMPLAR_SIZE": 127, "TRAIN.SEARCH_SIZE": 255, "TRAIN.OUTPUT_SIZE": 25, "TRAIN.ROIPOOL_OUTSIZE": 16,
    "TRAIN.BBOX_NORMALIZE_TARGETS_PRECOMPUTED": True, "TRAIN.BBOX_NORMALIZE_MEANS": [0.0, 0.0, 0.0, 0.0],
    "TRAIN.BBOX_NORMALIZE_STDS": [0.1, 0.1, 0.2, 0.2],
    "TRACK.TYPE": "SiamRPNTracker", "TRACK.PENALTY_K": 0.04, "TRACK.WINDOW_INFLUENCE": 0.44, "TRACK.LR": 0.4,
    "TRACK.EXEMPLAR_SIZE": 127, "TRACK.INSTANCE_SIZE": 255, "TRACK.BASE_SIZE": 8, "TRACK.CONTEXT_AMOUNT": 0.5,
    "TRACK.MASK_THERSHOLD": 0.30, "TRACK.MASK_OUTPUT_SIZE": 127,
}


def _get(data: dict[str, Any], dotted: str) -> Any:
    return lookup(data, dotted, DEFAULTS)


def settings(data: dict[str, Any], path: str | Path, weighted_from_keys: bool) -> dict[str, Any]:
    """Their YAML -> overrides of our config (dotted keys). Raises :class:`ConfigError` with one line naming
    the first setting whose model part our config cannot represent (or that their code could not run)."""
    src = f"--config-file '{Path(path).name}'"

    def need(key: str, ok: bool, what: str) -> None:
        if not ok:
            raise ConfigError(f"{src}: {key} = {_get(data, key)!r} {what}")

    def numbers(key: str, n: int | None = None) -> list[float]:
        vals = as_numbers(_get(data, key), n)
        need(key, vals is not None, f"is not a list of {n or 'some'} finite numbers")
        return vals or []

    def number(key: str) -> float:
        value = as_number(_get(data, key))
        need(key, value is not None, "is not a finite number")
        assert value is not None
        return value

    unsupported = "is a network this project does not build (only the SiamAttn authors' network, docs/MODELS.md)"
    need("BACKBONE.TYPE", _get(data, "BACKBONE.TYPE") == "resnet50", unsupported)
    layers = _get(data, "BACKBONE.KWARGS.used_layers")
    need("BACKBONE.KWARGS.used_layers", layers in (None, [0, 1, 2, 3, 4]),
         "differs from [0, 1, 2, 3, 4], which their mask features need")
    need("ADJUST.ADJUST", _get(data, "ADJUST.ADJUST") is True, unsupported)
    need("ADJUST.TYPE", _get(data, "ADJUST.TYPE") == "AdjustAllLayer", unsupported)
    need("ADJUST.KWARGS.in_channels", _get(data, "ADJUST.KWARGS.in_channels") in (None, [512, 1024, 2048]),
         "differs from ResNet-50's [512, 1024, 2048]")
    for key in ("ADJUST.KWARGS.out_channels", "RPN.KWARGS.in_channels"):
        need(key, _get(data, key) in (None, [256, 256, 256]),
             "differs from [256, 256, 256] (their attention is 256 wide)")
    need("RPN.TYPE", _get(data, "RPN.TYPE") == "MultiRPN", unsupported)
    need("MASK.MASK", _get(data, "MASK.MASK") is True, "builds no refinement heads; the SiamAttn network has them")
    need("REFINE.REFINE", _get(data, "REFINE.REFINE") is False, "(SiamMask's refine module) " + unsupported)
    need("TRACK.TYPE", _get(data, "TRACK.TYPE") == "SiamMaskTracker",
         "is not 'SiamMaskTracker', the tracker that runs the SiamAttn refinement (their default when absent is "
         "'SiamRPNTracker')")
    weighted = _get(data, "RPN.KWARGS.weighted")
    has = "has" if weighted_from_keys else "has no"
    need("RPN.KWARGS.weighted", bool(weighted) == weighted_from_keys,
         f"(their default when absent: False) disagrees with the checkpoint, which {has} rpn_head.cls_weight")

    ratios, scales = numbers("ANCHOR.RATIOS"), numbers("ANCHOR.SCALES")
    num = len(ratios) * len(scales)
    for key in ("ANCHOR.ANCHOR_NUM", "RPN.KWARGS.anchor_num"):
        need(key, _get(data, key) in (None, num), f"differs from len(RATIOS) * len(SCALES) = {num}")
    need("ANCHOR.STRIDE", _get(data, "ANCHOR.STRIDE") == 8, "is not 8 (the network's output stride)")
    # the network's map sizes (25x25 correlation, 63x63 mask features, RoI scales) are those of 127/255 crops
    for key, value in (("TRACK.EXEMPLAR_SIZE", 127), ("TRAIN.EXEMPLAR_SIZE", 127), ("TRACK.INSTANCE_SIZE", 255),
                       ("TRAIN.SEARCH_SIZE", 255), ("TRACK.BASE_SIZE", 8), ("TRAIN.OUTPUT_SIZE", 25)):
        need(key, _get(data, key) == value, f"is not {value}: the network's feature sizes assume 127/255 crops")
    mask_out = _get(data, "MASK.MASK_OUTSIZE")
    need("TRACK.MASK_OUTPUT_SIZE", _get(data, "TRACK.MASK_OUTPUT_SIZE") == mask_out,
         f"differs from MASK.MASK_OUTSIZE = {mask_out!r} (their tracker cannot reshape the mask; default 127)")
    need("TRAIN.BBOX_NORMALIZE_TARGETS_PRECOMPUTED", _get(data, "TRAIN.BBOX_NORMALIZE_TARGETS_PRECOMPUTED") is True,
         "is not supported (the box head's deltas are decoded with the stds)")
    means = numbers("TRAIN.BBOX_NORMALIZE_MEANS", 4)
    need("TRAIN.BBOX_NORMALIZE_MEANS", means == [0.0, 0.0, 0.0, 0.0], "is not zero (our decoding has no means)")
    pool, mask_size = _get(data, "TRAIN.ROIPOOL_OUTSIZE"), mask_out
    need("TRAIN.ROIPOOL_OUTSIZE", isinstance(pool, int) and isinstance(mask_size, int) and pool > 0
         and mask_size % pool == 0, f"does not divide MASK.MASK_OUTSIZE = {mask_size!r}")

    return {
        "model.rpn.weighted_fusion": weighted_from_keys,
        "model.refine.mask_pool": pool,
        "model.refine.mask_size": mask_size,
        "model.refine.box_stds": numbers("TRAIN.BBOX_NORMALIZE_STDS", 4),
        "anchors.ratios": ratios,
        "anchors.scales": scales,
        "tracker.penalty_k": number("TRACK.PENALTY_K"),
        "tracker.window_influence": number("TRACK.WINDOW_INFLUENCE"),
        "tracker.lr": number("TRACK.LR"),
        "tracker.mask_threshold": number("TRACK.MASK_THERSHOLD"),  # sic: their spelling
        "tracker.context_amount": number("TRACK.CONTEXT_AMOUNT"),
        "tracker.exemplar_size": 127,
        "tracker.instance_size": 255,
        "tracker.base_size": 8,
    }
