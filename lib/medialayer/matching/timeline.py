"""Temporal alignment shared by video and audio: vote for a line t_ref = speed * t_query + offset.

Evidence comes as (t_query, t_ref) pairs, each a frame or landmark that looks alike on both sides.
Chance look-alikes scatter over offsets; a copied stretch piles up on one offset, so a weighted
histogram of offsets per speed hypothesis finds it without any all-pairs search over time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Line:
    speed: float
    offset: float       # t_ref - speed * t_query at the best bin's centre
    score: float        # summed weight in the best two adjacent bins


def vote_line(tq: np.ndarray, tr: np.ndarray, weights: np.ndarray, speeds: list[float] | tuple[float, ...],
              bin_width: float, prefer_margin: float = 0.05) -> Line | None:
    """The (speed, offset) with the most weight; two adjacent bins are summed so a line that
    straddles a bin edge is not split. Speeds are tried nearest 1.0 first and a later one must win
    by `prefer_margin`: a still picture fits every speed equally and is no evidence of a change."""
    if tq.size == 0:
        return None
    best: Line | None = None
    for s in sorted(speeds, key=lambda v: (abs(float(v) - 1.0), float(v))):
        off = tr - s * tq
        b = np.floor(off / bin_width).astype(np.int64)
        lo = int(b.min())
        hist = np.bincount(b - lo, weights=weights)
        pair = hist if hist.size == 1 else np.r_[hist[:-1] + hist[1:], hist[-1]]
        k = int(np.argmax(pair))
        score = float(pair[k])
        if best is None or score > best.score * (1.0 + prefer_margin) + 1e-9:
            inside = (b - lo == k) | (b - lo == k + 1)
            centre = float(np.average(off[inside], weights=weights[inside])) if weights[inside].sum() > 0 \
                else (lo + k + 1) * bin_width
            best = Line(float(s), centre, score)
    return best


def longest_run(times: np.ndarray, max_gap: float) -> np.ndarray:
    """Boolean mask of the largest group of sorted `times` whose neighbours are <= max_gap apart."""
    n = times.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(times, kind="stable")
    t = times[order]
    breaks = np.r_[0, np.flatnonzero(np.diff(t) > max_gap) + 1, n]
    sizes = np.diff(breaks)
    k = int(np.argmax(sizes))
    mask_sorted = np.zeros(n, dtype=bool)
    mask_sorted[breaks[k]:breaks[k + 1]] = True
    mask = np.zeros(n, dtype=bool)
    mask[order] = mask_sorted
    return mask
