"""Mixing datasets into training pairs: which (template frame, search frame) pair training index ``k`` is.

Training-only (the readers themselves are in :mod:`siamattn.toolkit.datasets`); the crops and targets of a
pair are made in :mod:`siamattn.training.pairs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siamattn.errors import InputError
from siamattn.toolkit.datasets import VideoDataset, VideoSequence

__all__ = ["FrameRef", "MixedSampler", "PairIndex"]


@dataclass(frozen=True)
class FrameRef:
    dataset: int  # index into MixedSampler.datasets
    sequence: int
    frame: int


@dataclass(frozen=True)
class PairIndex:
    """A (template, search) pair; ``positive`` is False when the search frame shows another object."""

    template: FrameRef
    search: FrameRef
    positive: bool


class MixedSampler:
    """Draws (template frame, search frame) pairs from several datasets.

    A dataset is picked with probability proportional to ``weights``, a sequence uniformly in it, a
    template frame uniformly among its visible frames, and the search frame among the visible frames at
    most ``frame_ranges[d]`` frames away (the template's own frame for image datasets). With probability
    ``neg_rate`` the search frame comes from a different sequence (drawn the same way) and the pair is
    negative. Pair ``k`` depends only on ``(seed, k)``, so any worker can draw any index and an epoch
    reproduces exactly.

    With ``check_annotations`` (the default) every sequence of a dataset with a positive weight is parsed once
    here, so a malformed annotation file fails now, in one line naming the file and line, instead of inside a
    DataLoader worker after the run has started.
    """

    def __init__(self, datasets: Sequence[VideoDataset], weights: Sequence[float] | None = None,
                 frame_ranges: Sequence[int] | int = 100, neg_rate: float = 0.2, seed: int = 0,
                 max_tries: int = 100, check_annotations: bool = True) -> None:
        if not datasets:
            raise InputError("MixedSampler needs at least one dataset")
        self.datasets = list(datasets)
        w = np.ones(len(datasets)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(datasets) or (w < 0).any() or w.sum() <= 0:
            raise InputError(f"MixedSampler: need one non-negative weight per dataset with a positive sum, got {w}")
        for d, wd in zip(self.datasets, w, strict=True):
            if wd > 0 and len(d) == 0:
                raise InputError(f"MixedSampler: dataset '{d.name}' at {d.root} has no sequences")
        self.weights = w / w.sum()
        ranges = [frame_ranges] * len(datasets) if isinstance(frame_ranges, int) else list(frame_ranges)
        if len(ranges) != len(datasets) or min(ranges) < 0:
            raise InputError("MixedSampler: frame_ranges needs one value >= 0 per dataset")
        self.frame_ranges = ranges
        if not 0.0 <= neg_rate <= 1.0:
            raise InputError(f"MixedSampler: neg_rate must be in [0, 1], got {neg_rate}")
        self.neg_rate = neg_rate
        self.seed = seed
        self.max_tries = max_tries
        if check_annotations:
            for d, wd in zip(self.datasets, w, strict=True):
                if wd > 0:
                    d.check_annotations()

    def _pick_sequence(self, rng: np.random.Generator, exclude: tuple[int, int] | None = None
                       ) -> tuple[int, int, np.ndarray]:
        # The dataset is drawn once, so its share follows the weights even when some of its sequences
        # have no visible frame; only the sequence is re-drawn.
        d = int(rng.choice(len(self.datasets), p=self.weights))
        for _ in range(self.max_tries):
            s = int(rng.integers(len(self.datasets[d])))
            if (d, s) == exclude:
                continue
            vis = np.flatnonzero(self.datasets[d].sequence(s).visible)
            if vis.size:
                return d, s, vis
        raise InputError(f"MixedSampler: no sequence with a visible frame found in {self.max_tries} draws "
                         f"from dataset '{self.datasets[d].name}' at {self.datasets[d].root}")

    def sample(self, k: int) -> PairIndex:
        """The ``k``-th pair of this sampler's stream."""
        rng = np.random.default_rng([self.seed, k])
        d, s, vis = self._pick_sequence(rng)
        t = int(rng.choice(vis))
        template = FrameRef(d, s, t)
        if rng.random() < self.neg_rate and sum(len(x) for x in self.datasets) > 1:
            d2, s2, vis2 = self._pick_sequence(rng, exclude=(d, s))
            return PairIndex(template, FrameRef(d2, s2, int(rng.choice(vis2))), positive=False)
        r = 0 if self.datasets[d].is_image_dataset else self.frame_ranges[d]
        near = vis[np.abs(vis - t) <= r]
        return PairIndex(template, FrameRef(d, s, int(rng.choice(near))), positive=True)

    def epoch(self, num_pairs: int, epoch: int = 0) -> list[PairIndex]:
        """``num_pairs`` pairs for one epoch; epochs draw disjoint index ranges of the stream."""
        start = epoch * num_pairs
        return [self.sample(start + k) for k in range(num_pairs)]

    def sequence_of(self, ref: FrameRef) -> VideoSequence:
        return self.datasets[ref.dataset].sequence(ref.sequence)

