"""Band keys for the candidate join: bit-sampling LSH over packed 64-bit hashes.

Each band samples `bits_per_band` distinct bit positions; two hashes at Hamming distance d agree
on one band when none of its k bits is among the d that differ, probability
p = C(64-d, k) / C(64, k), and become candidates when any of L bands agrees: 1 - (1 - p)^L. Keys of 16+ bits keep buckets near-empty for unrelated media, unlike
short multi-index chunks (see DESIGN.md, Pipeline). Pure numpy so tests and the API use it too.
"""
from __future__ import annotations

import numpy as np

from .config import BandConfig

_BAND_SHIFT = np.uint64(32)


def band_positions(cfg: BandConfig, nbits: int = 64) -> np.ndarray:
    """(bands, bits_per_band) bit positions, fixed by the seed so every run and the API agree."""
    rng = np.random.default_rng(cfg.seed)
    return np.stack([rng.choice(nbits, size=cfg.bits_per_band, replace=False) for _ in range(cfg.bands)])


def band_keys(hashes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(n,) uint64 hashes -> (n, bands) int64 keys; the band index sits in the high 32 bits,
    so one integer column carries (band, bucket) and a single equi-join finds candidates."""
    h = np.asarray(hashes, dtype=np.uint64)
    k = positions.shape[1]
    sampled = (h[:, None, None] >> positions[None, :, :].astype(np.uint64)) & np.uint64(1)   # (n, B, k)
    buckets = np.bitwise_or.reduce(sampled << np.arange(k, dtype=np.uint64), axis=2)         # (n, B)
    band_ids = np.arange(positions.shape[0], dtype=np.uint64) << _BAND_SHIFT
    return (buckets | band_ids[None, :]).view(np.int64)


def collision_probability(distance: float, cfg: BandConfig, nbits: int = 64) -> float:
    """Probability that two hashes `distance` bits apart share at least one band."""
    p_band = 1.0
    for i in range(cfg.bits_per_band):
        p_band *= max(0.0, (nbits - distance - i) / (nbits - i))
    return 1.0 - (1.0 - p_band) ** cfg.bands
