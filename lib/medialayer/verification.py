"""Candidate pairs with both sides' fingerprints -> media_matches rows (with the JSON envelope).

Input is one Arrow batch whose columns are the fingerprint columns suffixed `_a` and `_b`; the
same function serves Spark's verify stage (inside mapInArrow) and pairwise matching.
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import Config, LocalMatchConfig
from .fingerprints import image as image_fp
from .fingerprints.audio import AUDIO_FINGERPRINT_VERSION
from .fingerprints.video import VIDEO_FINGERPRINT_VERSION, unpack_keyframes
from .fingerprints.local import unpack_descriptors, unpack_xy
from .fingerprints.region import BLOCK, region_kind
from .matching.av_envelope import AVSide, verify_av_pair
from .matching.image import (GlobalScores, ImageSide, brightness_refute, chance_refute, check_aligned, colours_refute,
                             combine, describe_image_match, details_refute, score_global, shapes_refute)
from .matching.local import LocalEvidence, LocalSide, match_local
from .matching.picture import check_pictures

METHOD = f"{image_fp.FINGERPRINT_VERSION}:phash+dhash+region+orb"
AV_METHODS = {"video": f"{VIDEO_FINGERPRINT_VERSION}:frames+landmarks",
              "audio": f"{AUDIO_FINGERPRINT_VERSION}:landmarks",
              "frame_grab": f"{VIDEO_FINGERPRINT_VERSION}:frame-grab"}

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
                *image_fp.REGION_HASH_COLUMNS, image_fp.TONE_COLUMN, "region", "kp_frame_w", "kp_frame_h",
                "kp_xy", "kp_desc", "kp_desc_mirror", "duration_s", "frame_times", "frame_hashes", "audio_peaks",
                "kf_times", "kf_counts", "picture")
# The hashes the global score reads (verification's prefilter, and search's ranking of weak rows).
GLOBAL_HASH_COLUMNS = (*image_fp.HASH_COLUMNS, *image_fp.REGION_HASH_COLUMNS, image_fp.TONE_COLUMN)


def local_side(xy: bytes | None, desc: bytes | None, desc_m: bytes | None, w: int | None, h: int | None,
               region: list[float] | None = None) -> LocalSide:
    """Stored keypoints of one side; `region` (the fingerprint's content region) marks a photo block."""
    block = tuple(region[:4]) if region_kind(region) == BLOCK else None
    pasted = block is not None and (len(region) < 6 or region[5] >= 0.5)   # image-v2 rows: every block was
    return LocalSide(unpack_xy(xy), unpack_descriptors(desc), unpack_descriptors(desc_m), int(w or 0), int(h or 0),
                     block, pasted)


def verify_batch(batch: pa.RecordBatch, cfg: Config, keep_below_record: bool = False) -> pa.RecordBatch:
    """Score every pair in `batch`; keep pairs at or above matching.record_threshold
    (all pairs when `keep_below_record`, as pairwise requests want an answer either way)."""
    n = batch.num_rows
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=MATCH_SCHEMA)
    types_a, types_b = batch.column("media_type_a").to_pylist(), batch.column("media_type_b").to_pylist()
    images = np.array([ta == "image" and tb == "image" for ta, tb in zip(types_a, types_b)], dtype=bool)
    rows = []
    if images.any():
        idx = np.flatnonzero(images)
        part = batch if images.all() else batch.take(pa.array(idx))
        rows += [{**r, "index": int(idx[r["index"]])} for r in _image_rows(part, cfg, keep_below_record)]
    if not images.all():
        rows += _av_rows(batch, np.flatnonzero(~images), cfg, keep_below_record)
    rows.sort(key=lambda r: r["index"])
    col = {name: batch.column(name) for name in ("media_key_a", "media_key_b")}
    take = pa.array(np.array([r["index"] for r in rows], dtype=np.int64), type=pa.int64())
    arrays = [col["media_key_a"].take(take), col["media_key_b"].take(take)]
    arrays += [pa.array([r[f.name] for r in rows], type=f.type) for f in list(MATCH_SCHEMA)[2:]]
    return pa.RecordBatch.from_arrays(arrays, schema=MATCH_SCHEMA)


# Columns (per side) enough to score a pair on its global hashes alone.
PREFILTER_COLUMNS = ("media_key", "media_type", *GLOBAL_HASH_COLUMNS, "region")


def global_scores(batch: pa.RecordBatch, cfg: Config) -> GlobalScores:
    """Global-hash evidence of every pair of a batch (image columns of both sides)."""
    side = {s: {c: batch.column(f"{c}_{s}").fill_null(0).to_numpy(zero_copy_only=False) for c in GLOBAL_HASH_COLUMNS}
            for s in "ab"}
    return score_global(side["a"], side["b"], cfg.matching,
                        np.asarray(batch.column("region_a").is_valid()), np.asarray(batch.column("region_b").is_valid()))


def global_prefilter(batch: pa.RecordBatch, cfg: Config) -> np.ndarray:
    """Which pairs of a PREFILTER_COLUMNS batch deserve full verification without keypoint-word
    evidence: any pair with a video or audio side, and image pairs whose global hashes alone reach
    matching.record_threshold. (Keypoint matching could only rescue the others by luck; see
    matching.image.local_min_words.)"""
    images = pc.and_(pc.equal(batch.column("media_type_a"), "image"), pc.equal(batch.column("media_type_b"), "image"))
    images = np.asarray(images.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    if not images.any():
        return np.ones(batch.num_rows, dtype=bool)
    return ~images | (global_scores(batch, cfg).similarity >= cfg.matching.record_threshold)


_LOCAL_COLUMNS = ("kp_xy", "kp_desc", "kp_desc_mirror", "kp_frame_w", "kp_frame_h", "region")


def _pictures(batch: pa.RecordBatch) -> dict[str, list]:
    """Each side's stored grey pictures (None where a row has none, or the batch lacks the column)."""
    names = set(batch.schema.names)
    return {s: column_rows(batch.column(f"picture_{s}")) if f"picture_{s}" in names else [None] * batch.num_rows
            for s in "ab"}


def column_rows(column: pa.Array | pa.ChunkedArray) -> list:
    """A column's values as a Python list; a binary column's as memoryviews into Arrow's buffer (None
    for nulls). pyarrow's to_pylist copies every blob into a new bytes object: 7 us a row against
    0.9 here (2026-12-07), and a pair brings eight keypoint and picture blobs."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_binary(column.type):
        width = np.int32
    elif pa.types.is_large_binary(column.type):
        width = np.int64
    else:
        return column.to_pylist()
    n = len(column)
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[column.offset:column.offset + n + 1].tolist()
    data = memoryview(data_buffer if data_buffer is not None else b"")
    valid = column.is_valid().to_numpy(zero_copy_only=False).tolist() if column.null_count else [True] * n
    return [data[start:end] if ok else None for start, end, ok in zip(offsets[:-1], offsets[1:], valid)]


def local_evidence(batch: pa.RecordBatch, cfg: Config, glob: GlobalScores | None = None,
                   pictures: dict[str, list] | None = None) -> list[LocalEvidence]:
    """Keypoint evidence of every image pair of a batch, after the aligned-template check: the
    verifier's per-pair step, which the accuracy benchmark also asks to explain its misses."""
    glob = global_scores(batch, cfg) if glob is None else glob
    py = {f"{c}_{s}": column_rows(batch.column(f"{c}_{s}")) for c in _LOCAL_COLUMNS for s in "ab"}
    pictures = _pictures(batch) if pictures is None else pictures
    local_cfg = cfg.matching.image.local
    out = []
    for i in range(batch.num_rows):
        sides = [local_side(*(py[f"{c}_{s}"][i] for c in _LOCAL_COLUMNS)) for s in "ab"]
        frames = (float(glob.frame_straight[i]), float(glob.frame_mirrored[i]))
        out.append(local_fit(sides[0], sides[1], pictures["a"][i], pictures["b"][i], frames, bool(glob.page_like[i]),
                             local_cfg))
    return out


def local_fit(a: LocalSide, b: LocalSide, picture_a: bytes | None, picture_b: bytes | None,
              frames: tuple[float, float], page_like: bool, cfg: LocalMatchConfig) -> LocalEvidence:
    """The keypoint evidence of one pair, guards and picture check included. With
    matching.image.local.both_ways, a fit found with a's keypoints asking b's must be found with b's
    asking a's as well, and scores the stronger of the two: nearest-neighbour matching differs each
    way, and a fit on a shared sticker often holds only one way. The keypoint verdict and its
    similarity then do not depend on which side is a."""
    ev = _checked_fit(a, b, picture_a, picture_b, frames, page_like, cfg)
    if not (ev.found and cfg.both_ways):
        return ev
    back = _checked_fit(b, a, picture_b, picture_a, frames, page_like, cfg)
    if back.found:
        return replace(ev, similarity=max(ev.similarity, back.similarity))
    return replace(ev, similarity=0.0, unconfirmed=0.0,
                   rejected=f"the fit does not hold the other way round ({back.rejected})")


def _checked_fit(a: LocalSide, b: LocalSide, picture_a: bytes | None, picture_b: bytes | None,
                 frames: tuple[float, float], page_like: bool, cfg: LocalMatchConfig) -> LocalEvidence:
    """a's keypoints asking b's, then the aligned-template and picture checks. `frames`: the frames'
    straight and mirrored hash distances."""
    ev = match_local(a, b, cfg)
    ev = check_aligned(ev, frames[1] if ev.mirrored else frames[0], cfg, page_like)
    return check_pictures(ev, picture_a, picture_b, a, b, cfg, page_like)


def _image_rows(batch: pa.RecordBatch, cfg: Config, keep_below_record: bool) -> list[dict]:
    """Envelope rows of image pairs (global hashes vectorised, keypoints pair by pair)."""
    glob = global_scores(batch, cfg)
    pictures = _pictures(batch)
    evidence_of = local_evidence(batch, cfg, glob, pictures)
    py = {f"{c}_{s}": batch.column(f"{c}_{s}").to_pylist()
          for c in ("content_sha256", "width", "height", "tone", "region") for s in "ab"}
    tones = {s: np.array([t or 0 for t in py[f"tone_{s}"]], dtype=np.int64) for s in "ab"}
    sides_of = {s: [ImageSide(w or 0, h or 0, t or 0, r) for w, h, t, r in
                    zip(py[f"width_{s}"], py[f"height_{s}"], py[f"tone_{s}"], py[f"region_{s}"])] for s in "ab"}
    refusals = {  # in the order of matching.image.REFUSAL_REASONS
        "colour": colours_refute(glob.similarity, tones["a"], tones["b"], cfg.matching),
        "shape": shapes_refute(glob.similarity, glob.pairing, sides_of["a"], sides_of["b"], cfg.matching),
        "detail": details_refute(glob.similarity, glob.pairing, pictures["a"], pictures["b"], sides_of["a"],
                                 sides_of["b"], cfg.matching),
        "brightness": brightness_refute(glob.similarity, glob.pairing, pictures["a"], pictures["b"], sides_of["a"],
                                        sides_of["b"], cfg.matching),
        "chance": chance_refute(glob, pictures["a"], pictures["b"], sides_of["a"], sides_of["b"], cfg.matching),
    }
    names, masks = list(refusals), np.stack(list(refusals.values()))
    refused = masks.any(axis=0)
    refused_by = [names[k] if r else None for k, r in zip(masks.argmax(axis=0).tolist(), refused.tolist())]
    # A refused hash score is kept at record_threshold: below a match, still visible to tuning.
    glob_sim = np.where(refused, np.minimum(glob.similarity, cfg.matching.record_threshold), glob.similarity)
    rows = []
    for i, ev in enumerate(evidence_of):
        similarity, evidence = combine(float(glob_sim[i]), ev)
        if not keep_below_record and similarity < cfg.matching.record_threshold:
            continue
        same = py["content_sha256_a"][i] is not None and py["content_sha256_a"][i] == py["content_sha256_b"][i]
        result = describe_image_match(similarity, evidence, bool(glob.mirrored[i]), bool(glob.via_region[i]), ev,
                                      same, sides_of["a"][i], sides_of["b"][i], cfg.matching, refused_by[i])
        env = result.to_dict()
        rows.append({**env, "index": i, "method": METHOD, "envelope": json.dumps(env)})
    return rows


_AV_COLUMNS = ("media_type", "duration_s", "content_sha256", "frame_times", "frame_hashes", "audio_peaks",
               "phash", "dhash", "phash_mirror", "dhash_mirror", "region_phash", "region_dhash", "tone")
# Keypoints: an image's (for a frame grab) or a video's keyframes'.
_AV_LOCAL_COLUMNS = ("kp_xy", "kp_desc", "kp_desc_mirror", "kp_frame_w", "kp_frame_h", "region", "kf_times",
                     "kf_counts")


def _av_rows(batch: pa.RecordBatch, idx: np.ndarray, cfg: Config, keep_below_record: bool) -> list[dict]:
    """Envelope rows of pairs with a video or audio side (one small numpy alignment per pair)."""
    take = pa.array(idx.astype(np.int64))
    local = [c for c in _AV_LOCAL_COLUMNS if f"{c}_a" in batch.column_names]
    py = {f"{c}_{s}": batch.column(f"{c}_{s}").take(take).to_pylist() for c in (*_AV_COLUMNS, *local) for s in "ab"}
    rows = []
    for k, i in enumerate(idx):
        sides = []
        for s in "ab":
            image_hashes = image_local = keyframes = None
            mtype = py[f"media_type_{s}"][k]
            if mtype == "image":
                image_hashes = {c: py[f"{c}_{s}"][k] for c in _AV_COLUMNS[6:]}
                if set(_LOCAL_COLUMNS) <= set(local):
                    image_local = local_side(*(py[f"{c}_{s}"][k] for c in _LOCAL_COLUMNS))
            elif mtype == "video" and "kf_times" in local and py[f"kf_times_{s}"][k]:
                keyframes = unpack_keyframes(*(py[f"{c}_{s}"][k] for c in
                                               ("kf_times", "kf_counts", "kp_xy", "kp_desc", "kp_frame_w",
                                                "kp_frame_h")))
            sides.append(AVSide(mtype, py[f"duration_s_{s}"][k] or 0.0,
                                py[f"content_sha256_{s}"][k], py[f"frame_times_{s}"][k], py[f"frame_hashes_{s}"][k],
                                py[f"audio_peaks_{s}"][k], image_hashes, image_local, keyframes))
        result = verify_av_pair(sides[0], sides[1], cfg)
        if not keep_below_record and result.similarity < cfg.matching.record_threshold:
            continue
        method = AV_METHODS["frame_grab" if "image" in (sides[0].media_type, sides[1].media_type)
                            else result.media_type]
        env = result.to_dict()
        rows.append({**env, "index": int(i), "method": method, "envelope": json.dumps(env)})
    return rows


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
