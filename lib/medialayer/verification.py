"""Candidate pairs with both sides' fingerprints -> media_matches rows (with the JSON envelope).

Input is one Arrow batch whose columns are the fingerprint columns suffixed `_a` and `_b`; the
same function serves Spark's verify stage (inside mapInArrow) and pairwise matching.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from .config import Config
from .fingerprints import image as image_fp
from .matching.image import ImageSide, describe_image_match, score_image_pairs

METHOD = f"{image_fp.FINGERPRINT_VERSION}:phash+dhash"

SEGMENT_TYPE = pa.struct([("query_start", pa.float64()), ("query_end", pa.float64()),
                          ("reference_start", pa.float64()), ("reference_end", pa.float64()),
                          ("similarity", pa.float64())])

MATCH_SCHEMA = pa.schema([
    ("media_key_a", pa.string()),
    ("media_key_b", pa.string()),
    ("match_found", pa.bool_()),
    ("confidence", pa.string()),
    ("similarity", pa.float64()),
    ("match_type", pa.string()),
    ("media_type", pa.string()),
    ("reason", pa.string()),
    ("matched_segments", pa.list_(SEGMENT_TYPE)),
    ("method", pa.string()),
    ("envelope", pa.string()),
])

# Columns a verify batch must carry for each side (suffix _a / _b).
SIDE_COLUMNS = ("media_key", "media_type", "content_sha256", "width", "height", *image_fp.HASH_COLUMNS,
                image_fp.TONE_COLUMN)


def verify_batch(batch: pa.RecordBatch, cfg: Config, keep_below_record: bool = False) -> pa.RecordBatch:
    """Score every pair in `batch`; keep pairs at or above matching.record_threshold
    (all pairs when `keep_below_record`, as pairwise requests want an answer either way)."""
    n = batch.num_rows
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=MATCH_SCHEMA)
    col = {name: batch.column(name) for name in batch.schema.names}
    side = {s: {c: col[f"{c}_{s}"].to_numpy(zero_copy_only=False) for c in image_fp.HASH_COLUMNS} for s in "ab"}
    scores = score_image_pairs(side["a"], side["b"], cfg.matching)
    keep = np.ones(n, dtype=bool) if keep_below_record else scores.similarity >= cfg.matching.record_threshold
    idx = np.flatnonzero(keep)

    sha_a = col["content_sha256_a"].to_pylist()
    sha_b = col["content_sha256_b"].to_pylist()
    wa, ha = col["width_a"].to_pylist(), col["height_a"].to_pylist()
    wb, hb = col["width_b"].to_pylist(), col["height_b"].to_pylist()
    tone_a, tone_b = col["tone_a"].to_pylist(), col["tone_b"].to_pylist()
    rows = []
    for i in idx:
        same = sha_a[i] is not None and sha_a[i] == sha_b[i]
        result = describe_image_match(scores.similarity[i], bool(scores.mirrored[i]), same,
                                      ImageSide(wa[i] or 0, ha[i] or 0, tone_a[i] or 0),
                                      ImageSide(wb[i] or 0, hb[i] or 0, tone_b[i] or 0), cfg.matching)
        env = result.to_dict()
        rows.append({**env, "method": METHOD, "envelope": json.dumps(env)})
    take = pa.array(idx, type=pa.int64())
    arrays = [col["media_key_a"].take(take), col["media_key_b"].take(take)]
    arrays += [pa.array([r[f.name] for r in rows], type=f.type) for f in list(MATCH_SCHEMA)[2:]]
    return pa.RecordBatch.from_arrays(arrays, schema=MATCH_SCHEMA)


def pair_batch(fingerprints: pa.Table, index_a: np.ndarray, index_b: np.ndarray) -> pa.RecordBatch:
    """Rows `index_a` and `index_b` of a fingerprints table, side by side with _a/_b suffixes."""
    ia = pa.array(np.asarray(index_a, dtype=np.int64))
    ib = pa.array(np.asarray(index_b, dtype=np.int64))
    arrays, names = [], []
    for suffix, take in (("a", ia), ("b", ib)):
        for c in SIDE_COLUMNS:
            arrays.append(fingerprints.column(c).take(take).combine_chunks())
            names.append(f"{c}_{suffix}")
    return pa.RecordBatch.from_arrays(arrays, names=names)
