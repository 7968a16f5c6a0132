"""Candidate keys for the banding join: bit-sampling LSH over 64-bit hashes and over keypoint descriptors.

Each band samples `bits_per_band` distinct bit positions; two hashes at Hamming distance d agree
on one band when none of its k bits is among the d that differ, probability
p = C(64-d, k) / C(64, k), and become candidates when any of L bands agrees: 1 - (1 - p)^L. Keys of 16+ bits keep buckets near-empty for unrelated media, unlike
short multi-index chunks (see DESIGN.md, Pipeline). Pure numpy so tests and the API use it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import BandConfig

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import CandidatesConfig

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


# --- all candidate keys of an image fingerprint batch -------------------------------------------

WORD_FLAG = np.int64(1) << np.int64(62)      # set on keypoint-word keys; band keys stay below 2^40


@dataclass(frozen=True)
class ImageKeys:
    row: np.ndarray       # int64: row of the fingerprint batch the key belongs to
    key: np.ndarray       # int64 join key
    query: np.ndarray     # bool: probed from the query side (straight keys and their neighbour probes)
    word: np.ndarray      # bool: a keypoint word (needs candidates.local.min_shared distinct hits)
    indexed: np.ndarray | None = None   # bool: stored on the index side (straight and mirrored keys)

    def __post_init__(self) -> None:
        if self.indexed is None:
            object.__setattr__(self, "indexed", np.ones(self.row.shape[0], dtype=bool))


def image_keys(batch: "pa.RecordBatch | pa.Table", cfg: "CandidatesConfig") -> ImageKeys:
    """Every join key of the image rows of `batch` (ok rows only; others emit nothing).

    Frame and region pHashes share one band-key space, so a screenshot's region meets the original's
    frame. Keypoint words come from the strongest keypoints, straight and mirrored.
    """
    import pyarrow.compute as pc
    from .fingerprints.bits import to_unsigned
    from .fingerprints.local import descriptor_words, unpack_angles, unpack_descriptors, word_tables

    ok = np.asarray(pc.and_(pc.equal(batch.column("status"), "ok"),
                            pc.equal(batch.column("media_type"), "image")).fill_null(False))
    rows, keys, query, word, indexed = [], [], [], [], []

    def emit(r: np.ndarray, k: np.ndarray, is_query: bool, is_indexed: bool, is_word: bool) -> None:
        rows.append(r)
        keys.append(k)
        query.append(np.full(k.size, is_query))
        indexed.append(np.full(k.size, is_indexed))
        word.append(np.full(k.size, is_word))

    positions = band_positions(cfg.image)
    has_region = np.asarray(batch.column("region").is_valid())
    for column, straight, only_region in (("phash", True, False), ("phash_mirror", False, False),
                                          ("region_phash", True, True), ("region_phash_mirror", False, True)):
        use = ok & has_region if only_region else ok
        idx = np.flatnonzero(use)
        if idx.size == 0:
            continue
        hashes = to_unsigned(batch.column(column).to_numpy(zero_copy_only=False)[idx].astype(np.int64))
        bk = band_keys(hashes, positions)
        emit(np.repeat(idx, bk.shape[1]), bk.ravel(), straight, True, False)

    lw = cfg.local
    if lw.keypoints > 0:
        tables = word_tables(lw.tables, lw.bits, lw.seed)
        angle_blobs = batch.column("kp_angle").to_pylist() if "kp_angle" in batch.column_names else None
        for column, straight in (("kp_desc", True), ("kp_desc_mirror", False)):
            blobs = batch.column(column).to_pylist()
            for i in np.flatnonzero(ok):
                desc = unpack_descriptors(blobs[i])[: lw.keypoints]
                if desc.shape[0] == 0:
                    continue
                words = descriptor_words(desc, tables)                        # (n, tables)
                angles = unpack_angles(angle_blobs[i])[: desc.shape[0]] if angle_blobs else None
                if lw.angle_bins > 0 and angles is not None and angles.shape[0] == desc.shape[0]:
                    if not straight:
                        angles = (180.0 - angles) % 360.0
                    exact, probe = angle_bins(angles, lw.angle_bins)
                    # The index stores each word in its orientation bin; the query also probes the
                    # nearest neighbouring bin, so orientation noise at a bin edge costs nothing.
                    stored = np.unique((words | (exact[:, None] << _ANGLE_SHIFT)).ravel()) | WORD_FLAG
                    emit(np.full(stored.size, i, dtype=np.int64), stored, straight, True, True)
                    if straight:
                        probed = np.unique((words | (probe[:, None] << _ANGLE_SHIFT)).ravel()) | WORD_FLAG
                        probed = np.setdiff1d(probed, stored)
                        emit(np.full(probed.size, i, dtype=np.int64), probed, True, False, True)
                else:
                    w = np.unique(words.ravel()) | WORD_FLAG
                    emit(np.full(w.size, i, dtype=np.int64), w, straight, True, True)
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=bool)
        return ImageKeys(z, z.copy(), f, f.copy(), f.copy())
    return ImageKeys(np.concatenate(rows).astype(np.int64), np.concatenate(keys).astype(np.int64),
                     np.concatenate(query), np.concatenate(word), np.concatenate(indexed))


_ANGLE_SHIFT = np.int64(44)     # words use bits 0-39 (sampled bits) and 40-43 (table); bins go above


def angle_bins(angles: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin of each orientation, the neighbouring bin it lies closer to)."""
    width = 360.0 / n_bins
    pos = (np.asarray(angles, dtype=np.float64) % 360.0) / width
    exact = np.floor(pos).astype(np.int64) % n_bins
    upper = (pos - np.floor(pos)) >= 0.5
    probe = np.where(upper, exact + 1, exact - 1) % n_bins
    return exact, probe


def candidate_pairs_in_memory(keys: ImageKeys, cfg: "CandidatesConfig",
                              query_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The Spark candidate join, in one process: (row_a, row_b) with row_a < row_b, and the number of
    oversized buckets skipped. For benchmarks, tests and small in-memory indexes; same semantics."""
    import pandas as pd

    df = pd.DataFrame({"row": keys.row, "key": keys.key, "query": keys.query, "word": keys.word,
                       "indexed": keys.indexed})
    q = df[df["query"]].drop_duplicates(["row", "key"])
    df = df[df["indexed"]].drop_duplicates(["row", "key"])
    sizes = df.groupby("key")["row"].transform("size")
    too_big = sizes > np.where(df["word"], cfg.local.max_bucket_size, cfg.max_bucket_size)
    oversized = int(df.loc[too_big, "key"].nunique())
    index = df[~too_big]
    if query_rows is not None:
        q = q[q["row"].isin(query_rows)]
    joined = q[["key", "row", "word"]].merge(index[["key", "row"]], on="key", suffixes=("_q", "_r"))
    joined = joined[joined["row_q"] != joined["row_r"]]
    a = np.minimum(joined["row_q"].to_numpy(), joined["row_r"].to_numpy())
    b = np.maximum(joined["row_q"].to_numpy(), joined["row_r"].to_numpy())
    hits = pd.DataFrame({"a": a, "b": b, "key": joined["key"].to_numpy(), "word": joined["word"].to_numpy()})
    hits = hits.drop_duplicates(["a", "b", "key"])
    hits["band"] = ~hits["word"]
    agg = hits.groupby(["a", "b"])[["band", "word"]].sum().rename(columns={"band": "bands", "word": "words"})
    keep = agg[(agg["bands"] > 0) | (agg["words"] >= cfg.local.min_shared)]
    pairs = keep.index.to_frame(index=False)
    return pairs["a"].to_numpy(np.int64), pairs["b"].to_numpy(np.int64), oversized
