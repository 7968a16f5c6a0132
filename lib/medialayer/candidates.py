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
    query: np.ndarray     # bool: a straight key, used from the query side too (mirrored keys: index only)
    word: np.ndarray      # bool: a keypoint word (needs candidates.local.min_shared distinct hits)


def image_keys(batch: "pa.RecordBatch | pa.Table", cfg: "CandidatesConfig") -> ImageKeys:
    """Every join key of the image rows of `batch` (ok rows only; others emit nothing).

    Frame and region pHashes share one band-key space, so a screenshot's region meets the original's
    frame. Keypoint words come from the strongest keypoints, straight and mirrored.
    """
    import pyarrow.compute as pc
    from .fingerprints.bits import to_unsigned
    from .fingerprints.local import descriptor_words, unpack_descriptors, word_tables

    ok = np.asarray(pc.and_(pc.equal(batch.column("status"), "ok"),
                            pc.equal(batch.column("media_type"), "image")).fill_null(False))
    rows, keys, query, word = [], [], [], []

    positions = band_positions(cfg.image)
    has_region = np.asarray(batch.column("region").is_valid())
    for column, is_query, only_region in (("phash", True, False), ("phash_mirror", False, False),
                                          ("region_phash", True, True), ("region_phash_mirror", False, True)):
        use = ok & has_region if only_region else ok
        idx = np.flatnonzero(use)
        if idx.size == 0:
            continue
        hashes = to_unsigned(batch.column(column).to_numpy(zero_copy_only=False)[idx].astype(np.int64))
        bk = band_keys(hashes, positions)
        rows.append(np.repeat(idx, bk.shape[1]))
        keys.append(bk.ravel())
        query.append(np.full(bk.size, is_query))
        word.append(np.zeros(bk.size, dtype=bool))

    lw = cfg.local
    if lw.keypoints > 0:
        tables = word_tables(lw.tables, lw.bits, lw.seed)
        for column, is_query in (("kp_desc", True), ("kp_desc_mirror", False)):
            blobs = batch.column(column).to_pylist()
            for i in np.flatnonzero(ok):
                desc = unpack_descriptors(blobs[i])[: lw.keypoints]
                if desc.shape[0] == 0:
                    continue
                w = np.unique(descriptor_words(desc, tables).ravel()) | WORD_FLAG
                rows.append(np.full(w.size, i, dtype=np.int64))
                keys.append(w)
                query.append(np.full(w.size, is_query))
                word.append(np.ones(w.size, dtype=bool))
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return ImageKeys(z, z.copy(), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
    return ImageKeys(np.concatenate(rows).astype(np.int64), np.concatenate(keys).astype(np.int64),
                     np.concatenate(query), np.concatenate(word))


def candidate_pairs_in_memory(keys: ImageKeys, cfg: "CandidatesConfig",
                              query_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The Spark candidate join, in one process: (row_a, row_b) with row_a < row_b, and the number of
    oversized buckets skipped. For benchmarks, tests and small in-memory indexes; same semantics."""
    import pandas as pd

    df = pd.DataFrame({"row": keys.row, "key": keys.key, "query": keys.query, "word": keys.word})
    df = df.drop_duplicates(["row", "key"])
    sizes = df.groupby("key")["row"].transform("size")
    too_big = sizes > np.where(df["word"], cfg.local.max_bucket_size, cfg.max_bucket_size)
    oversized = int(df.loc[too_big, "key"].nunique())
    index = df[~too_big]
    q = df[df["query"]]
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
