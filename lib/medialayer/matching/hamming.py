"""The two nearest binary descriptors (Hamming distance): the inner loop of keypoint verification.

Every verified image pair compares 256 descriptors with 256 (twice when the mirrored reading is
tried). OpenCV's `batchDistance(K=2)` took 60% of verification time at ~0.4 ms a call; faiss's
exhaustive Hamming k-NN was about 3.5x faster, and this compiled scan (numba: one XOR and popcount per
64 bits, a query word against all base rows in one vectorised pass) about 1.7x faster again, at
0.08 ms for 256 x 256 (2026-12-07). Ties go to the lower index. See
tests/unit/matching/test_hamming.py.
"""
from __future__ import annotations

import numpy as np


def _words(rows: np.ndarray) -> np.ndarray:
    """(n, bytes) uint8 -> (n, words) uint64, zero-padded to whole words (zeros add no distance)."""
    pad = -rows.shape[1] % 8
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(rows).view(np.uint64)


def two_nearest(query: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `query` (n, bytes) uint8, its two nearest rows of `base` (m >= 2, bytes):
    distances (n, 2) int32 and indices (n, 2) int64, nearest first."""
    q = np.ascontiguousarray(query, dtype=np.uint8)
    b = np.ascontiguousarray(base, dtype=np.uint8)
    if q.ndim != 2 or b.ndim != 2 or q.shape[1] != b.shape[1]:
        raise ValueError(f"descriptor shapes differ: {q.shape} and {b.shape}")
    if b.shape[0] < 2:
        raise ValueError(f"need at least two base descriptors, got {b.shape[0]}")
    dist = np.zeros((q.shape[0], 2), dtype=np.int32)
    idx = np.zeros((q.shape[0], 2), dtype=np.int64)
    if q.shape[0]:
        from .hamming_kernel import two_nearest_kernel   # numba loads on first use (jit.py)

        two_nearest_kernel(_words(q), np.ascontiguousarray(_words(b).T), dist, idx)
    return dist, idx
