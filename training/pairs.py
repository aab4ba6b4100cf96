"""Training pairs: template/search crops with the tracker's geometry, augmentation, and all targets.

Crop geometry is the tracker's (:mod:`siamattn.runtime.tracker`, docs/DESIGN.md §2): around the target centre
``x + (w-1)/2`` the template covers ``s_z = sqrt((w + p)(h + p))``, ``p = context_amount * (w + h)``, resized
to 127, and the search crop covers ``s_x = s_z * 255 / 127`` resized to 255, padded with the frame's mean
colour. Output pixel ``u`` samples frame ``c + (u - (S-1)/2) * s / S``, which is what the runtime's
``get_subwindow`` (integer window + ``cv2.resize``, bilinear) computes up to its sub-pixel window
rounding. Training writes each crop with one ``cv2.warpAffine`` instead, so augmentation folds into the
same matrix at no cost (pysot pre-crops 511 images for the same purpose):

* shift: the crop centre moves by ``U(-shift, shift)`` output pixels per axis (search: the target lands up
  to 64 px off centre, inside the +-96 px anchor grid);
* scale: each axis of the crop is scaled by ``1 + U(-scale, scale)`` (size and aspect jitter);
* flip: the pair is mirrored together (template and search stay the same object);
* colour (per-channel gain and offset), blur (Gaussian, random odd kernel) and grayscale on the crops.

Pair ``k`` depends only on ``(train.seed, k)`` (the :class:`MixedSampler` draws the frames, a second stream
seeded by ``k`` the augmentation), so any worker or DDP rank can make any pair and a resumed run sees the
same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from siamattn.config import Config
from siamattn.errors import InputError, SiamAttnError
from siamattn.geometry import context_size
from siamattn.training.sampling import MixedSampler
from siamattn.training.targets import AnchorTargeter, encode_refine, mask_targets, sample_rois

__all__ = ["PairDataset", "PairFailure", "StepSampler", "collate", "crop_affine"]


def crop_affine(center: tuple[float, float], side: tuple[float, float], out: int, flip: bool = False) -> np.ndarray:
    """2x3 matrix mapping crop pixels to frame pixels for a ``side`` (x, y) window around ``center``.

    Crop pixel ``u`` -> frame ``cx + (u - (out-1)/2) * side_x / out`` (mirrored about the centre on flip),
    used with ``cv2.WARP_INVERSE_MAP``.
    """
    c = (out - 1) / 2.0
    sx, sy = side[0] / out, side[1] / out
    if flip:
        sx = -sx
    return np.array([[sx, 0.0, center[0] - c * sx], [0.0, sy, center[1] - c * sy]], dtype=np.float64)


def _box_to_crop(box_xywh: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Frame box (x, y, w, h; centre x + (w-1)/2) -> (cx, cy, w, h) in the crop of matrix ``m``."""
    x, y, w, h = (float(v) for v in box_xywh)
    cx, cy = x + (w - 1) / 2.0, y + (h - 1) / 2.0
    sx, sy = m[0, 0], m[1, 1]
    return np.array([(cx - m[0, 2]) / sx, (cy - m[1, 2]) / sy, w / abs(sx), h / abs(sy)])


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"could not read frame '{path}' (missing or not an image); check the dataset folder")
    return img


@dataclass(frozen=True)
class PairFailure:
    """A user-facing error met while a DataLoader worker made a pair, sent to the training process as data.

    Raised in the worker, PyTorch would re-raise it in the training process with the worker's whole
    traceback folded into the message; as a batch of its own it is re-raised there as the same one-line
    error (:meth:`reraise`).
    """

    error_type: type[SiamAttnError]
    message: str

    def reraise(self) -> NoReturn:
        try:
            error = self.error_type(self.message)
        except Exception:  # an error class with another constructor still reads as one line
            error = SiamAttnError(self.message)
        raise error


class PairDataset(Dataset):
    """Map-style dataset: item ``k`` is the ``k``-th training pair of ``sampler`` with its targets.

    Each item is a dict of numpy arrays (collated to tensors by the DataLoader):
    ``z`` float32 [3,127,127] and ``x`` float32 [3,255,255] (BGR 0..255, CHW), ``labels`` int8 [k,25,25],
    ``deltas`` float32 [4,k,25,25], ``rois`` float32 [R,4] (cx, cy, w, h in search-crop px),
    ``box_targets`` float32 [R,4], ``mask_targets`` uint8 [R,64,64], ``positive`` and ``has_mask`` bools.
    """

    def __init__(self, sampler: MixedSampler, cfg: Config, augment: bool = True) -> None:
        self.sampler = sampler
        self.cfg = cfg
        self.augment = augment
        self.targeter = AnchorTargeter(cfg)
        t = cfg.tracker
        self.exemplar, self.instance, self.context = t.exemplar_size, t.instance_size, t.context_amount
        self.num_rois = cfg.train.num_rois
        self.mask_size = cfg.model.refine.mask_size
        self.with_mask = cfg.model.refine.enabled and cfg.model.refine.mask

    def __len__(self) -> int:
        return self.cfg.train.pairs_per_epoch * self.cfg.train.epochs

    def _jitter(self, rng: np.random.Generator, shift: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
        if not self.augment:
            return np.zeros(2), np.ones(2)
        return rng.uniform(-shift, shift, 2), 1.0 + rng.uniform(-scale, scale, 2)

    def _crop(self, img: np.ndarray, box: np.ndarray, out: int, side: float, shift: np.ndarray,
              scale: np.ndarray, flip: bool, mask: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        x, y, w, h = (float(v) for v in box)
        sides = (side / scale[0], side / scale[1])  # larger object scale = smaller window
        center = (x + (w - 1) / 2.0 + shift[0] * sides[0] / out, y + (h - 1) / 2.0 + shift[1] * sides[1] / out)
        m = crop_affine(center, sides, out, flip)
        pad = tuple(float(v) for v in cv2.mean(img)[:3])
        crop = cv2.warpAffine(img, m, (out, out), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=pad)
        crop_mask = None
        if mask is not None:
            crop_mask = cv2.warpAffine(mask.astype(np.float32), m, (out, out),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        return crop, _box_to_crop(box, m), crop_mask

    def _photometric(self, crop: np.ndarray, rng: np.random.Generator, gray: bool) -> np.ndarray:
        t = self.cfg.train
        out = crop.astype(np.float32)
        if self.augment and rng.random() < t.blur_prob:
            k = int(rng.choice([3, 5, 7]))
            out = cv2.GaussianBlur(out, (k, k), float(rng.uniform(0.5, 2.0)))
        if self.augment and rng.random() < t.color_prob:
            gain = rng.normal(1.0, 0.1, 3).astype(np.float32) * np.float32(rng.uniform(0.75, 1.25))
            out = np.clip(out * gain + rng.normal(0.0, 8.0, 3).astype(np.float32), 0.0, 255.0)
        if gray:
            g = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
            out = np.repeat(g[:, :, None], 3, axis=2)
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def __getitem__(self, k: int) -> dict[str, Any] | PairFailure:
        try:
            return self.make_pair(k)
        except SiamAttnError as exc:
            if get_worker_info() is None:  # in the training process itself: raise as usual
                raise
            return PairFailure(type(exc), str(exc))

    def make_pair(self, k: int) -> dict[str, Any]:
        """The ``k``-th pair with its targets (what a DataLoader worker computes for index ``k``)."""
        t = self.cfg.train
        pair = self.sampler.sample(int(k))
        rng = np.random.default_rng([t.seed, int(k), 1])  # augmentation stream, separate from the sampler's
        zseq, xseq = self.sampler.sequence_of(pair.template), self.sampler.sequence_of(pair.search)
        zbox = zseq.boxes_xywh[pair.template.frame]
        xbox = xseq.boxes_xywh[pair.search.frame]
        zimg = _read(zseq.frame_paths[pair.template.frame])
        ximg = zimg if pair.search == pair.template else _read(xseq.frame_paths[pair.search.frame])
        use_mask = self.with_mask and pair.positive and xseq.has_masks
        xmask = xseq.mask(pair.search.frame) if use_mask else None
        flip = self.augment and rng.random() < t.flip_prob
        gray = self.augment and rng.random() < t.gray_prob

        s_z = context_size(zbox[2], zbox[3], self.context)
        shift, scale = self._jitter(rng, t.template_shift, t.template_scale)
        z, _, _ = self._crop(zimg, zbox, self.exemplar, s_z, shift, scale, flip)
        # the search window is sized from the search frame's own box (pysot), as if the tracker had
        # followed the target perfectly; scale jitter then plays the part of tracking error
        s_x = context_size(xbox[2], xbox[3], self.context) * self.instance / self.exemplar
        shift, scale = self._jitter(rng, t.search_shift, t.search_scale)
        if self.augment and t.search_zoom > 0:
            scale = scale * np.exp(rng.uniform(-t.search_zoom, t.search_zoom))
        x, gt, crop_mask = self._crop(ximg, xbox, self.instance, s_x, shift, scale, flip, xmask)

        rpn = self.targeter(gt, pair.positive, rng)
        rois = sample_rois(gt, self.num_rois, t.roi_iou, rng, limit=float(self.instance))
        has_mask = crop_mask is not None
        masks = (mask_targets(crop_mask, rois, self.mask_size) if has_mask
                 else np.zeros((self.num_rois, self.mask_size, self.mask_size), dtype=np.uint8))
        return {
            "z": self._photometric(z, rng, gray),
            "x": self._photometric(x, rng, gray),
            "labels": rpn.labels,
            "deltas": rpn.deltas,
            "rois": rois.astype(np.float32),
            "box_targets": encode_refine(rois, gt, self.cfg.model.refine.box_stds),
            "mask_targets": masks,
            "positive": bool(pair.positive),
            "has_mask": bool(has_mask),
            "index": int(k),
        }


class StepSampler(Sampler[int]):
    """Pair indices of one epoch for one process, grouped so that DDP and micro-batching stay exact.

    Epoch ``e`` uses pairs ``e*N .. e*N + N-1`` (``N = train.pairs_per_epoch`` rounded down to whole global
    batches; pairs are already random, so no shuffle is needed). In global batch ``j`` of ``B`` pairs, rank
    ``r`` of ``W`` processes takes positions ``r, r+W, r+2W, ...``; micro-batch ``c`` of a process then takes
    every ``accum_steps``-th of those. Hence ``W`` processes x ``A`` micro-batches see exactly the groups of
    one process with ``W*A`` micro-batches: the same gradient step.
    """

    def __init__(self, pairs_per_epoch: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        if batch_size % world:
            raise InputError(f"train.batch_size ({batch_size}) must be divisible by the number of processes ({world})")
        self.steps = pairs_per_epoch // batch_size
        self.batch, self.rank, self.world = batch_size, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps * (self.batch // self.world)

    def __iter__(self):
        start = self.epoch * self.steps * self.batch
        for j in range(self.steps):
            base = start + j * self.batch
            yield from range(base + self.rank, base + self.batch, self.world)


def collate(items: list[dict[str, Any] | PairFailure]) -> dict[str, torch.Tensor] | PairFailure:
    """Stack a list of pair dicts into tensors (a plain function so DataLoader workers can pickle it); a batch
    with a :class:`PairFailure` becomes that failure, which the training loop re-raises."""
    for it in items:
        if isinstance(it, PairFailure):
            return it
    out: dict[str, torch.Tensor] = {}
    for key in items[0]:
        vals = [it[key] for it in items]  # type: ignore[index]
        out[key] = torch.as_tensor(np.stack(vals)) if isinstance(vals[0], np.ndarray) else torch.tensor(vals)
    return out
