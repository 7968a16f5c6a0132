"""Candidate keys for the banding join: bit-sampling LSH over 64-bit hashes and over keypoint descriptors.

Each band samples `bits_per_band` distinct bit positions; two hashes at Hamming distance d agree
on one band when none of its k bits is among the d that differ, probability
p = C(64-d, k) / C(64, k), and become candidates when any of L bands agrees: 1 - (1 - p)^L. Keys of 16+ bits keep buckets near-empty for unrelated media, unlike
short multi-index chunks (see DESIGN.md, Pipeline). Pure numpy so tests and the API use it too.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .config import BandConfig
from .fingerprints.bits import sample_bits

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import CandidatesConfig, Config

_BAND_SHIFT = np.uint64(32)


@functools.lru_cache(maxsize=8)
def band_positions(cfg: BandConfig, nbits: int = 64) -> np.ndarray:
    """(bands, bits_per_band) bit positions, fixed by the seed so every run and the API agree.
    Cached (read-only): the search API asks for them on every query."""
    rng = np.random.default_rng(cfg.seed)
    out = np.stack([rng.choice(nbits, size=cfg.bits_per_band, replace=False) for _ in range(cfg.bands)])
    out.flags.writeable = False
    return out


def band_keys(hashes: np.ndarray, positions: np.ndarray, second: np.ndarray | None = None) -> np.ndarray:
    """(n,) uint64 hashes -> (n, bands) int64 keys; the band index sits in the high 32 bits,
    so one integer column carries (band, bucket) and a single equi-join finds candidates.

    With `second` (another (n,) uint64 hash), positions 64-127 sample it: bands over the 128 bits of
    pHash and dHash together.

    Sampled with `fingerprints.bits.sample_bits`: one 256-entry lookup per hash byte, for every band
    at once."""
    h = np.ascontiguousarray(hashes, dtype="<u8")
    if second is not None:
        h = np.stack([h, np.ascontiguousarray(second, dtype="<u8")], axis=1)
    # Byte j of the hash(es), little-endian: bits 8j..8j+7 (dHash's bytes follow pHash's).
    columns = h.reshape(-1).view(np.uint8).reshape(-1, 8 if second is None else 16)
    band_ids = np.arange(positions.shape[0], dtype=np.uint64) << _BAND_SHIFT
    return (sample_bits(columns, positions) | band_ids).view(np.int64)


def collision_probability(distance: "float | np.ndarray", cfg: BandConfig, nbits: int = 64) -> "float | np.ndarray":
    """Probability that two hashes `distance` bits apart share at least one band (a float, or an
    array for an array of distances)."""
    d = np.asarray(distance, dtype=np.float64)
    p_band = np.ones_like(d)
    for i in range(cfg.bits_per_band):
        p_band = p_band * np.clip((nbits - d - i) / (nbits - i), 0.0, None)
    p = 1.0 - (1.0 - p_band) ** cfg.bands
    return float(p) if p.ndim == 0 else p


# --- all candidate keys of an image fingerprint batch -------------------------------------------

WORD_FLAG = np.int64(1) << np.int64(62)      # set on keypoint-word keys; band keys stay below 2^40
FRAME_FLAG = np.int64(1) << np.int64(61)     # frame-band keys (video frames and images' pHashes)
LANDMARK_FLAG = np.int64(1) << np.int64(60)  # audio landmark keys

# Key kinds, each with its own evidence rule (distinct shared keys a pair needs) and bucket cap.
KIND_BAND, KIND_WORD, KIND_FRAME, KIND_LANDMARK = 0, 1, 2, 3

# A video's keyframe words belong to one row per keyframe, a pseudo row (negative: -1 - row *
# KEYFRAME_ROWS - k), so that a pair needs min_shared words with one keyframe. All of a video's
# thousands of words together meet unrelated images by chance.
KEYFRAME_ROWS = 4096


def real_rows(rows: np.ndarray) -> np.ndarray:
    """Batch rows of (possibly pseudo) key rows: a keyframe's pseudo row -> its video's row."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.where(rows < 0, (-rows - 1) // KEYFRAME_ROWS, rows)


def kind_rules(cfg: "CandidatesConfig") -> dict[int, tuple[int, int]]:
    """{kind: (min distinct shared keys for a candidate, max bucket size)}."""
    return {KIND_BAND: (1, cfg.max_bucket_size),
            KIND_WORD: (cfg.local.min_shared, cfg.local.max_bucket_size),
            KIND_FRAME: (cfg.video.min_shared, cfg.video.max_bucket_size),
            KIND_LANDMARK: (cfg.audio.min_shared, cfg.audio.max_bucket_size)}


@dataclass(frozen=True)
class ImageKeys:
    row: np.ndarray       # int64: row of the fingerprint batch the key belongs to
    key: np.ndarray       # int64 join key
    query: np.ndarray     # bool: probed from the query side (straight keys and their neighbour probes)
    word: np.ndarray      # bool: a keypoint word (needs candidates.local.min_shared distinct hits)
    indexed: np.ndarray | None = None   # bool: stored on the index side (straight and mirrored keys)
    kind: np.ndarray | None = None      # int8 KIND_*; derived from `word` when not given
    # int64: a band key's own pHash and dHash (the frame's or region's, in the orientation that made
    # the key), so that a bucket can tell a chance meeting from a near copy (band_meeting_near);
    # None when the batch has no dHash columns, 0 on other kinds' rows.
    ph: np.ndarray | None = None
    dh: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.indexed is None:
            object.__setattr__(self, "indexed", np.ones(self.row.shape[0], dtype=bool))
        if self.kind is None:
            object.__setattr__(self, "kind", np.where(self.word, KIND_WORD, KIND_BAND).astype(np.int8))


def image_keys(batch: "pa.RecordBatch | pa.Table", cfg: "CandidatesConfig",
               mirrored_probes: bool = False, mirrors_indexed: bool = True, offer_only: bool = False) -> ImageKeys:
    """Every join key of the image rows of `batch` (ok rows only; others emit nothing), each (row,
    key) once with its flags OR-ed.

    Frame and region pHashes share one band-key space, so a screenshot's region meets the original's
    frame. Keypoint words come from the strongest keypoints, straight and mirrored.
    `mirrored_probes` adds the mirrored words' neighbouring-bin probes (query side): for the search
    index, which stores straight keys only and lets the query bring both orientations.
    `mirrors_indexed=False` makes the mirrored keys (pHash bands and words) query keys instead of
    indexed ones, with their probes: a mirrored copy then meets its original through the asking
    media's mirror, not the offering one's, so media that only offer (old media of an incremental
    run) need no mirrored keys at all. `offer_only` leaves out the keys that only ask (probes, and
    mirrored keys when they are not indexed): for media that ask nothing.
    """
    import pyarrow.compute as pc
    from .fingerprints.bits import to_unsigned
    from .fingerprints.local import DESCRIPTOR_BYTES, unpack_angles, unpack_descriptors

    ok = np.asarray(pc.and_(pc.equal(batch.column("status"), "ok"),
                            pc.equal(batch.column("media_type"), "image")).fill_null(False))
    # Each emitted group of keys shares its flags: kept as (rows, keys, query, indexed, pHash, dHash)
    # with scalar flags, bands and words apart, until the distinct step needs them.
    groups: dict[bool, list[tuple]] = {False: [], True: []}
    with_hashes = all(f"{c}dhash{m}" in batch.column_names for c in ("", "region_") for m in ("", "_mirror"))

    def emit(r: np.ndarray, k: np.ndarray, is_query: bool, is_indexed: bool, is_word: bool,
             p: np.ndarray | None = None, d: np.ndarray | None = None) -> None:
        groups[is_word].append((np.asarray(r, dtype=np.int64), np.asarray(k, dtype=np.int64), is_query, is_indexed,
                                p, d))

    def column(name: str) -> np.ndarray:
        # fill_null first: a column with nulls (error rows) would come out as float64 and lose bits
        return batch.column(name).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)

    # Bands over pHash and dHash together sample the distance verification scores (both hashes).
    if cfg.image.with_dhash and not with_hashes and ok.any():
        # pHash-only keys from here would never meet the catalog's: refuse rather than miss silently.
        missing = [f"{c}dhash{m}" for c in ("", "region_") for m in ("", "_mirror")
                   if f"{c}dhash{m}" not in batch.column_names]
        raise ValueError(f"candidates.image.with_dhash makes band keys from pHash and dHash together, "
                         f"but the batch has no column {', '.join(missing)}")
    both_hashes = cfg.image.with_dhash and with_hashes
    positions = band_positions(cfg.image, 128 if both_hashes else 64)
    has_region = np.asarray(batch.column("region").is_valid())
    for prefix, mirror, straight in (("", "", True), ("", "_mirror", False),
                                     ("region_", "", True), ("region_", "_mirror", False)):
        if offer_only and not (straight or mirrors_indexed):
            continue
        use = ok & has_region if prefix else ok
        idx = np.flatnonzero(use)
        if idx.size == 0:
            continue
        values = column(f"{prefix}phash{mirror}")[idx]
        dvalues = column(f"{prefix}dhash{mirror}")[idx] if with_hashes else None
        bk = band_keys(to_unsigned(values), positions, to_unsigned(dvalues) if both_hashes else None)
        d = np.repeat(dvalues, bk.shape[1]) if with_hashes else None
        emit(np.repeat(idx, bk.shape[1]), bk.ravel(), straight or not mirrors_indexed, straight or mirrors_indexed,
             False, np.repeat(values, bk.shape[1]), d)

    lw = cfg.local
    ok_rows = np.flatnonzero(ok)
    if lw.keypoints > 0 and ok_rows.size:
        for column, straight in (("kp_desc", True), ("kp_desc_mirror", False)):
            if offer_only and not (straight or mirrors_indexed):
                continue
            # The whole batch at once: every row's strongest keypoints, concatenated.
            raw, lengths = _blob_prefixes(batch.column(column), ok_rows, lw.keypoints * DESCRIPTOR_BYTES)
            desc = unpack_descriptors(raw)
            owner = np.repeat(ok_rows, lengths // DESCRIPTOR_BYTES)
            if desc.shape[0] == 0:
                continue
            angles = None
            if lw.angle_bins > 0 and "kp_angle" in batch.column_names:
                angles = unpack_angles(_blob_prefixes(batch.column("kp_angle"), ok_rows, lw.keypoints)[0])
                if not straight:
                    angles = (180.0 - angles) % 360.0
            exact, probe, probing = binned_words(desc, angles, lw)
            # The index stores each word in its orientation bin; the query also probes the
            # nearest neighbouring bin for keypoints near an edge, so orientation noise there
            # costs nothing.
            emit(np.repeat(owner, lw.tables), exact, straight or not mirrors_indexed, straight or mirrors_indexed, True)
            if probe is not None and not offer_only and (straight or mirrored_probes or not mirrors_indexed):
                emit(np.repeat(owner[probing], lw.tables), probe, True, False, True)
    if not groups[False] and not groups[True]:
        z = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=bool)
        return ImageKeys(z, z.copy(), f, f.copy(), f.copy(), ph=z.copy() if with_hashes else None,
                         dh=z.copy() if with_hashes else None)
    keys_out = _distinct_image_keys(groups, lw.bits)
    if not with_hashes:
        keys_out = replace(keys_out, ph=None, dh=None)
    return keys_out


def _distinct_image_keys(groups: dict[bool, list[tuple]], bits: int) -> ImageKeys:
    """Each (row, key) once, its flags OR-ed (a key reached as a word of the image and of its mirror,
    or as a frame band and a region band). A band key reached from two different hashes (frame and
    region, straight and mirrored) is kept once per hash: its meetings are judged by the hash that
    made them (`band_meeting_near`), and a region near a copy must not be judged by its frame. (Such
    a media then counts twice toward the bucket's size; it is rare, and the caps are for hot keys.)

    Fast path: the row, the key's payload and both flags packed into one int64 (row above bit 47,
    payload from bit 2, query and indexed in bits 1 and 0), so that one value sort (several times
    faster than an argsort) puts a (row, key)'s copies next to each other. Words' table and
    orientation bin (bits 40-49) move down to just above their sampled bits to fit. Band keys, a
    sixth of the rows, are lexsorted with their hashes instead, to carry them along.

    `groups`: {is_word: [(rows, keys, query, indexed, pHash or None, dHash or None), ...]}, each
    group's flags one bool each (as `image_keys` emits them): the flags are packed per group, never
    spelled out per row."""
    parts = [_packed_distinct(groups[w], w, bits) for w in (False, True)]
    if any(p is None for p in parts):               # does not pack: the general sort
        every = groups[False] + groups[True]
        row = np.concatenate([g[0] for g in every])
        key = np.concatenate([g[1] for g in every])
        query = np.concatenate([np.full(g[1].size, g[2]) for g in every])
        indexed = np.concatenate([np.full(g[1].size, g[3]) for g in every])
        word = np.concatenate([np.full(g[1].size, w) for w in (False, True) for g in groups[w]])
        ph, dh = _group_hashes(every)
        r, k, q, i, kind, order, starts = _distinct(ImageKeys(row, key, query, word, indexed, ph=ph, dh=dh))
        return ImageKeys(r, k, q, kind == KIND_WORD, i, kind, ph[order][starts], dh[order][starts])
    r, k, q, i, p, d = (np.concatenate(x) for x in zip(*parts))
    return ImageKeys(r, k, q, (k & WORD_FLAG) != 0, i, ph=p, dh=d)


def _group_hashes(groups: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(pHash, dHash) of every row of these emitted groups, 0 where a group carries none."""
    return tuple(np.concatenate([np.zeros(g[1].size, dtype=np.int64) if g[h] is None else g[h] for g in groups]
                                + [np.zeros(0, dtype=np.int64)]) for h in (4, 5))


def _packed_distinct(groups: list[tuple], is_word: bool, bits: int) -> tuple[np.ndarray, ...] | None:
    """(row, key, query, indexed, pHash, dHash) of one kind's keys (`_distinct_image_keys`' groups),
    each (row, key) once (hashes 0 for words); None if they do not pack."""
    low = (np.int64(1) << np.int64(bits)) - 1
    packed_groups = []
    for r, k, query, indexed, _, _ in groups:
        payload = ((k >> np.int64(40)) & np.int64(0x3FF)) << np.int64(bits) | (k & low) if is_word else k
        if r.size and (int(r.min()) < 0 or int(r.max()) >= 1 << 16 or int(payload.max()) >= 1 << 45
                       or int(payload.min()) < 0):
            return None
        packed_groups.append((r << np.int64(47)) | (payload << np.int64(2)) | np.int64(2 * bool(query) + bool(indexed)))
    packed = np.concatenate(packed_groups) if packed_groups else np.zeros(0, dtype=np.int64)
    hashes = None if is_word else _group_hashes(groups)
    if hashes is None:
        packed.sort()
        p = d = None
    else:
        o = np.lexsort((hashes[1], hashes[0], packed >> np.int64(2)))
        packed, p, d = packed[o], hashes[0][o], hashes[1][o]
    v = packed >> np.int64(2)
    first = np.ones(v.size, dtype=bool)
    first[1:] = v[1:] != v[:-1]
    if p is not None:        # one key reached from two different hashes stays twice, with each
        first[1:] |= (p[1:] != p[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(first)
    flags = packed[starts] & np.int64(3)
    # A (row, key) reached twice is rare (1-2% of words): OR those copies' flags into the first
    # instead of reducing every run.
    again = np.flatnonzero(~first)
    if again.size:
        np.bitwise_or.at(flags, np.searchsorted(starts, again, side="right") - 1, packed[again] & np.int64(3))
    v = v[starts]
    payload = v & ((np.int64(1) << np.int64(45)) - 1)
    if is_word:
        payload = WORD_FLAG | ((payload >> np.int64(bits)) << np.int64(40)) | (payload & low)
    zeros = np.zeros(starts.size, dtype=np.int64)
    return (v >> np.int64(45), payload, (flags & 2) != 0, (flags & 1) != 0,
            zeros if p is None else p[starts], zeros if d is None else d[starts])


def _blob_prefixes(column: "pa.Array | pa.ChunkedArray", rows: np.ndarray, limit: int) -> tuple[bytes, np.ndarray]:
    """The first `limit` bytes of each of `rows`' blobs, concatenated (null: none), and their lengths;
    sliced from Arrow's buffers, without a Python bytes object per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    picked = column.take(pa.array(rows))
    if isinstance(picked, pa.ChunkedArray):
        picked = picked.combine_chunks()
    picked = pc.binary_slice(picked, 0, limit)
    offsets = np.frombuffer(picked.buffers()[1], dtype=np.int32 if picked.type == pa.binary() else np.int64)
    offsets = offsets[picked.offset:picked.offset + len(picked) + 1].astype(np.int64)
    data = picked.buffers()[2]
    raw = b"" if data is None or offsets[-1] == offsets[0] else data.to_pybytes()[offsets[0]:offsets[-1]]
    return raw, np.diff(offsets)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2's hash-based unique is several times slower on int64 keys)."""
    x = np.sort(x)
    keep = np.ones(x.size, dtype=bool)
    keep[1:] = x[1:] != x[:-1]
    return x[keep]


_ANGLE_SHIFT = np.int64(44)     # words use bits 0-39 (sampled bits) and 40-43 (table); bins go above


def binned_words(desc: np.ndarray, angles: np.ndarray | None,
                 lw) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Word keys of descriptors ((n * tables,), flagged), each in its keypoint's orientation bin; the
    same words in the nearest neighbouring bin for the keypoints that lie within
    `lw.angle_probe_margin` of a bin edge; and which keypoints those are (their words come in that
    order, `tables` each). The last two are None when words are not binned by orientation."""
    from .fingerprints.local import descriptor_words, word_tables

    words = descriptor_words(desc, word_tables(lw.tables, lw.bits, lw.seed))          # (n, tables)
    if lw.angle_bins <= 0 or angles is None or angles.shape[0] != desc.shape[0]:
        return words.ravel() | WORD_FLAG, None, None
    exact, probe = angle_bins(angles, lw.angle_bins, lw.angle_probe_margin)
    near = np.flatnonzero(probe >= 0)
    return ((words | (exact[:, None] << _ANGLE_SHIFT)).ravel() | WORD_FLAG,
            (words[near] | (probe[near, None] << _ANGLE_SHIFT)).ravel() | WORD_FLAG, near)


def angle_bins(angles: np.ndarray, n_bins: int, margin: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(bin of each orientation, the neighbouring bin it lies closer to, or -1 when it lies further
    than `margin` bin widths from both edges). A margin of 0.5 probes every keypoint's nearer
    neighbour; a smaller one probes only those that orientation noise can carry across the edge, at
    that share of the probe keys (and of the chance meetings they bring)."""
    width = 360.0 / n_bins
    pos = (np.asarray(angles, dtype=np.float64) % 360.0) / width
    exact = np.floor(pos).astype(np.int64) % n_bins
    frac = pos - np.floor(pos)
    upper = frac >= 0.5
    probe = np.where(upper, exact + 1, exact - 1) % n_bins
    if margin >= 0.5:                                   # every keypoint (none is further)
        return exact, probe
    return exact, np.where(np.minimum(frac, 1.0 - frac) < margin, probe, -1)


def candidate_pairs_in_memory(keys: ImageKeys, cfg: "CandidatesConfig",
                              query_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The Spark candidate join, in one process: (row_a, row_b) with row_a < row_b, and the number of
    oversized buckets skipped. For benchmarks, tests and small in-memory indexes; same semantics."""
    import pandas as pd

    rules = kind_rules(cfg)
    zeros = np.zeros(keys.row.size, dtype=np.int64)
    df = pd.DataFrame({"row": keys.row, "key": keys.key, "query": keys.query, "kind": keys.kind,
                       "indexed": keys.indexed, "ph": zeros if keys.ph is None else keys.ph,
                       "dh": zeros if keys.dh is None else keys.dh})
    # A band key reached from two hashes of one media stays twice (see _distinct_image_keys).
    q = df[df["query"]].drop_duplicates(["row", "key", "ph", "dh"])
    df = df[df["indexed"]].drop_duplicates(["row", "key", "ph", "dh"])
    sizes = df.groupby("key")["row"].transform("size")
    caps = df["kind"].map({k: cap for k, (_, cap) in rules.items()})
    too_big = sizes > caps
    oversized = int(df.loc[too_big, "key"].nunique())
    index = df[~too_big]
    if query_rows is not None:
        q = q[np.isin(real_rows(q["row"].to_numpy()), query_rows)]
    joined = q[["key", "row", "kind", "ph", "dh"]].merge(index[["key", "row", "ph", "dh"]], on="key",
                                                          suffixes=("_q", "_r"))
    joined = joined[joined["row_q"] != joined["row_r"]]
    if keys.ph is not None:
        near = band_meeting_near(*(joined[c].to_numpy(np.int64) for c in ("ph_q", "dh_q", "ph_r", "dh_r")),
                                 cfg.image.max_distance)
        joined = joined[(joined["kind"].to_numpy() != KIND_BAND) | near]
    a = np.minimum(joined["row_q"].to_numpy(), joined["row_r"].to_numpy())
    b = np.maximum(joined["row_q"].to_numpy(), joined["row_r"].to_numpy())
    hits = pd.DataFrame({"a": a, "b": b, "key": joined["key"].to_numpy(), "kind": joined["kind"].to_numpy()})
    hits = hits.drop_duplicates(["a", "b", "key"])
    counts = hits.groupby(["a", "b", "kind"]).size().rename("n").reset_index()
    counts = counts[counts["n"] >= counts["kind"].map({k: m for k, (m, _) in rules.items()})]
    # Keyframe pseudo rows name their video; a video meets its own keyframes never, others once.
    ra, rb = real_rows(counts["a"].to_numpy()), real_rows(counts["b"].to_numpy())
    pairs = pd.DataFrame({"a": np.minimum(ra, rb), "b": np.maximum(ra, rb)})
    pairs = pairs[pairs["a"] != pairs["b"]].drop_duplicates()
    return pairs["a"].to_numpy(np.int64), pairs["b"].to_numpy(np.int64), oversized


@dataclass(frozen=True)
class BucketHits:
    """What one partition's buckets give: per (media x < media y, kind), the distinct keys of that
    kind they share here (`n`); and the oversized buckets skipped (key, offered size, kind)."""
    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    n: np.ndarray
    over_key: np.ndarray
    over_size: np.ndarray
    over_kind: np.ndarray


def band_meeting_near(ph_a: np.ndarray, dh_a: np.ndarray, ph_b: np.ndarray, dh_b: np.ndarray,
                      max_distance: float) -> np.ndarray:
    """Whether two hashes that met in a pHash band are near enough to be worth verifying: their
    pHash and dHash distance together, as a share of 128 bits, within candidates.image.max_distance
    (-1: always). A chance meeting agrees on the band's bits and on about half of the rest."""
    if max_distance < 0:
        return np.ones(np.shape(ph_a), dtype=bool)
    def bits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # unsigned: bitwise_count counts the bits of a signed integer's absolute value
        return np.bitwise_count((np.asarray(x, np.int64) ^ np.asarray(y, np.int64)).view(np.uint64)).astype(np.int64)

    d = bits(ph_a, ph_b) + bits(dh_a, dh_b)
    return d <= int(np.floor(max_distance * 128 + 1e-9))


def bucket_hits(key: np.ndarray, media: np.ndarray, query: np.ndarray, indexed: np.ndarray,
                kind: np.ndarray, rules: dict[int, tuple[int, int]], ph: np.ndarray | None = None,
                dh: np.ndarray | None = None, max_band_distance: float = -1.0, grouped: bool = False,
                hash_rows: np.ndarray | None = None) -> BucketHits:
    """The banding join over key rows that hold every row of each of their keys (a partition of the
    key table split by key), in one sort: each query row meets every indexed row of its bucket.
    `grouped`: the rows already come with equal keys next to each other (no sort needed).
    `hash_rows`: where each row's pHash and dHash sit in `ph` and `dh` (by default, row i's are at i):
    a caller that grouped the rows need not reorder the hashes, only band meetings read them.

    Same semantics as `candidate_pairs_in_memory` (and the Spark SQL join this replaced): a bucket whose
    offered (indexed) rows exceed its kind's cap is skipped; a media never meets itself; when both
    media ask and both offer a key, the pair counts it once; a pHash band meeting counts only when
    the two hashes are near (`band_meeting_near`, when `ph` and `dh` are given). Each media holds a
    key at most once (`distinct_keys`). Counts from different partitions add up (a key lives in one
    partition)."""
    key = np.asarray(key, dtype=np.int64)
    order = slice(None) if grouped else np.argsort(key, kind="stable")
    key, media = key[order], np.asarray(media, dtype=np.int64)[order]
    query, indexed, kind = np.asarray(query, bool)[order], np.asarray(indexed, bool)[order], np.asarray(kind)[order]
    if key.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return BucketHits(z, z, z.astype(np.int8), z, z, z, z.astype(np.int8))
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    bucket = np.cumsum(first) - 1
    offered = np.add.reduceat(indexed.astype(np.int64), starts)
    cap_of = np.full(256, np.iinfo(np.int64).max, dtype=np.int64)
    for k, (_, cap) in rules.items():
        cap_of[k] = cap
    bkind = kind[starts]
    over = offered > cap_of[bkind.astype(np.int64) & 0xFF]
    usable = ~over[bucket]
    rpos = np.flatnonzero(indexed & usable)          # in key order, so each bucket's are contiguous
    qpos = np.flatnonzero(query & usable)
    qb = bucket[qpos]
    cnt = offered[qb]
    # Where each bucket's indexed rows start in rpos: the usable indexed rows of the buckets before it
    # (a cumulative count per bucket, cheaper than searching rpos for every query row).
    usable_offered = np.where(over, 0, offered)
    r_first = (np.cumsum(usable_offered) - usable_offered)[qb]
    ends = np.cumsum(cnt)
    qi = np.repeat(qpos, cnt)
    ri = rpos[np.repeat(r_first - (ends - cnt), cnt) + np.arange(int(ends[-1]) if ends.size else 0)]
    mq, mr = media[qi], media[ri]
    keep = (mq != mr) & ~(query[ri] & indexed[qi] & (mr < mq))
    if ph is not None and max_band_distance >= 0:
        band = np.flatnonzero(keep & (kind[qi] == KIND_BAND))
        a, b = qi[band], ri[band]
        source = hash_rows if hash_rows is not None else (None if grouped else order)
        if source is not None:
            a, b = source[a], source[b]
        ph, dh = np.asarray(ph, np.int64), np.asarray(dh, np.int64)
        keep[band] = band_meeting_near(ph[a], dh[a], ph[b], dh[b], max_band_distance)
    x, y, k = np.minimum(mq, mr)[keep], np.maximum(mq, mr)[keep], kind[qi][keep]
    x, y, k, n = count_pairs(x, y, k, np.ones(x.size, dtype=np.int64))
    return BucketHits(x, y, k, n, key[starts][over], offered[over], bkind[over])


def count_pairs(x: np.ndarray, y: np.ndarray, kind: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    """(x, y, kind, summed n), one row per distinct (x, y, kind). Exact; sorted by a 64-bit hash of
    the triple (an argsort of one int64, several times faster than a three-key lexsort), with a
    lexsort only if two different triples ever share the hash."""
    from .search_keys import key_hash

    if x.size == 0:
        return x, y, kind, n
    h = key_hash(key_hash(x, 0) ^ y.astype(np.uint64), 0) ^ kind.astype(np.uint64)
    o = np.argsort(h)
    h, x, y, kind, n = h[o], x[o], y[o], kind[o], n[o]
    same_h = h[1:] == h[:-1]
    same = same_h & (x[1:] == x[:-1]) & (y[1:] == y[:-1]) & (kind[1:] == kind[:-1])
    if np.any(same_h & ~same):                      # a hash shared by two triples: sort exactly
        o = np.lexsort((kind, y, x))
        x, y, kind, n = x[o], y[o], kind[o], n[o]
        same = (x[1:] == x[:-1]) & (y[1:] == y[:-1]) & (kind[1:] == kind[:-1])
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    return x[starts], y[starts], kind[starts], np.add.reduceat(n, starts)


def pairs_meeting_rules(x: np.ndarray, y: np.ndarray, kind: np.ndarray, n: np.ndarray,
                        rules: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, shared keypoint words) of the pairs whose hits, summed over every partition of the
    join, reach some kind's min_shared."""
    x, y, kind, n = count_pairs(x, y, kind, n)
    need = np.full(256, np.iinfo(np.int64).max, dtype=np.int64)
    for k, (m, _) in rules.items():
        need[k] = m
    enough = n >= need[kind.astype(np.int64) & 0xFF]
    # One row per pair, its kinds' rows summed: shared words above bit 8, kinds that suffice below.
    both = (np.where(kind == KIND_WORD, n, 0) << np.int64(8)) | enough.astype(np.int64)
    px, py, _, pb = count_pairs(x, y, np.zeros(x.size, dtype=np.int8), both)
    keep = (pb & 0xFF) > 0
    return px[keep], py[keep], pb[keep] >> np.int64(8)


def companion_pairs(x: np.ndarray, y: np.ndarray, max_degree: int,
                    seen: tuple[np.ndarray, np.ndarray] | None = None,
                    new: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), a < b: the pairs of media that both match some third media with at most `max_degree`
    matches, given the matched pairs (x, y), without the pairs in `seen` (already verified) and,
    when `new` (a bool mask by media id) is given, without the pairs of two old media.

    Two sellers' edits of one photo (a crop and a padded copy) can share too little to meet in the
    join while each meets the photo; verifying such pairs directly costs a few per match. A hub's
    pairs grow as its degree squared, hence the cap. The Spark pipeline's `companion_candidates`
    does the same with joins."""
    z = np.zeros(0, dtype=np.int64)
    if max_degree < 2 or np.size(x) == 0:
        return z, z.copy()
    edges = np.unique(_pair_rows(np.concatenate([x, y]), np.concatenate([y, x])))   # each edge once, by hub
    u, v = edges["a"], edges["b"]
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
    size = np.diff(np.append(starts, u.size))
    small = (size >= 2) & (size <= max_degree)
    u, v = u[np.repeat(small, size)], v[np.repeat(small, size)]
    size = size[small]
    if size.size == 0:
        return z, z.copy()
    pos = np.arange(u.size) - np.repeat(np.cumsum(size) - size, size)
    later = np.repeat(size, size) - 1 - pos                          # neighbours after each one
    i = np.repeat(np.arange(u.size), later)
    j = i + 1 + np.arange(i.size) - np.repeat(np.cumsum(later) - later, later)
    a, b = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    if new is not None:
        new = np.asarray(new, dtype=bool)
        either = new[a] | new[b]
        a, b = a[either], b[either]
    pairs = np.unique(_pair_rows(a, b))
    if seen is not None and np.size(seen[0]):
        sa, sb = np.asarray(seen[0], dtype=np.int64), np.asarray(seen[1], dtype=np.int64)
        pairs = pairs[~np.isin(pairs, _pair_rows(np.minimum(sa, sb), np.maximum(sa, sb)))]
    return pairs["a"].copy(), pairs["b"].copy()


def _pair_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a, b) as one structured array: sortable, unique-able and searchable as whole pairs."""
    both = np.ascontiguousarray(np.stack([np.asarray(a), np.asarray(b)], 1).astype(np.int64))
    return both.view([("a", np.int64), ("b", np.int64)]).ravel()


# --- video and audio keys -------------------------------------------------------------------------

def keyframe_word_keys(batch: "pa.RecordBatch | pa.Table", cfg: "CandidatesConfig") -> ImageKeys:
    """Keypoint words of videos' keyframes, on pseudo rows (see KEYFRAME_ROWS), so that a grabbed
    frame cropped past what frame hashes forgive still meets its video. Each distinct word of a video
    is kept by its first keyframe only: a bucket counts a video once. Stored and asked in the exact
    orientation bin (the image side also probes the neighbouring bin)."""
    import pyarrow.compute as pc
    from .fingerprints.video import unpack_keyframes

    lw = cfg.local
    if "kf_counts" not in batch.column_names or lw.keypoints <= 0:
        return _empty_keys()
    ok = np.asarray(pc.and_(pc.equal(batch.column("status"), "ok"),
                            pc.equal(batch.column("media_type"), "video")).fill_null(False))
    cols = {c: batch.column(c).to_pylist() for c in ("kf_times", "kf_counts", "kp_xy", "kp_desc", "kp_angle")}
    rows, keys = [], []
    for i in np.flatnonzero(ok):
        if not cols["kf_counts"][i]:
            continue
        kf = unpack_keyframes(cols["kf_times"][i], cols["kf_counts"][i], cols["kp_xy"][i], cols["kp_desc"][i],
                              0, 0, cols["kp_angle"][i])
        if kf.descriptors.shape[0] == 0:
            continue
        flat, _, _ = binned_words(kf.descriptors, kf.angles, lw)
        k = np.repeat(np.repeat(np.arange(kf.counts.size), kf.counts), lw.tables)
        _, first = np.unique(flat, return_index=True)          # a word's first keyframe keeps it
        rows.append(-1 - (int(i) * KEYFRAME_ROWS + k[first]))
        keys.append(flat[first])
    if not rows:
        return _empty_keys()
    r, kk = np.concatenate(rows).astype(np.int64), np.concatenate(keys).astype(np.int64)
    ones = np.ones(r.size, dtype=bool)
    return ImageKeys(r, kk, ones, ones.copy(), ones.copy(), np.full(r.size, KIND_WORD, dtype=np.int8))


def media_keys(batch: "pa.RecordBatch | pa.Table", cfg: "Config", image_frames: bool = True,
               mirrors_indexed: bool = True, offer_only: bool = False) -> ImageKeys:
    """Every join key of every ok row of a fingerprint batch: image bands and words, frame bands
    (videos' frames and images' pHashes, so a grabbed hero image meets its video) and landmarks.
    Each (row, key) comes once, with its flags OR-ed (as `distinct_keys` gives them).

    `image_frames=False` leaves out images' frame keys (about a quarter of an image's keys), which
    only a video can use: for a catalog without videos. `mirrors_indexed`: see `image_keys`.
    `offer_only` leaves out images' query-only keys (the media ask nothing: old media of an
    incremental run); other kinds' are few and dropped by the caller."""
    parts = [frame_keys(batch, cfg.candidates, image_frames, offer_only), landmark_keys(batch, cfg),
             keyframe_word_keys(batch, cfg.candidates)]
    other = ImageKeys(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                        ("row", "key", "query", "word", "indexed", "kind")))
    # Each (row, key) once (image_keys' are; kinds never share a key, their flag bits differ).
    row, key, query, indexed, kind = distinct_keys(other)
    img = image_keys(batch, cfg.candidates, mirrors_indexed=mirrors_indexed, offer_only=offer_only)
    parts = [img, ImageKeys(row, key, query, kind == KIND_WORD, indexed, kind)]
    out = ImageKeys(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                      ("row", "key", "query", "word", "indexed", "kind")))
    if img.ph is None:
        return out
    zeros = np.zeros(row.size, dtype=np.int64)
    return replace(out, ph=np.concatenate([img.ph, zeros]), dh=np.concatenate([img.dh, zeros]))


def distinct_keys(keys: ImageKeys) -> tuple[np.ndarray, ...]:
    """(row, key, query, indexed, kind) with each (row, key) once, its flags OR-ed: a media can reach
    one key twice (a symmetric picture's straight and mirrored hash, a region equal to the frame in
    some bands), and bucket sizes must count media, not keys. With hashes (`ImageKeys.ph`), a band
    key reached from two different hashes stays once per hash."""
    return _distinct(keys)[:5]


def _distinct(keys: ImageKeys) -> tuple[np.ndarray, ...]:
    """distinct_keys' five columns, then the order and first positions they were taken by (so that
    other columns, such as hashes, can be taken the same way)."""
    order, starts = _distinct_order(keys)
    row, key = keys.row[order], keys.key[order]
    if starts.size == row.size:
        return row, key, keys.query[order], keys.indexed[order], keys.kind[order], order, starts
    query = np.logical_or.reduceat(keys.query[order], starts) if starts.size else keys.query[:0]
    indexed = np.logical_or.reduceat(keys.indexed[order], starts) if starts.size else keys.indexed[:0]
    return row[starts], key[starts], query, indexed, keys.kind[order][starts], order, starts


def _distinct_order(keys: ImageKeys) -> tuple[np.ndarray, np.ndarray]:
    """(an order that puts each (row, key)'s copies together, the first position of each in it);
    with hashes, each (row, key, pHash, dHash)'s."""
    if keys.ph is None:
        order = _key_row_order(keys.key, keys.row)
    else:
        order = np.lexsort((keys.dh, keys.ph, keys.row, keys.key))
    row, key = keys.row[order], keys.key[order]
    first = np.ones(row.size, dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (key[1:] != key[:-1])
    if keys.ph is not None:
        ph, dh = keys.ph[order], keys.dh[order]
        first[1:] |= (ph[1:] != ph[:-1]) | (dh[1:] != dh[:-1])
    return order, np.flatnonzero(first)


def _key_row_order(key: np.ndarray, row: np.ndarray) -> np.ndarray:
    """np.lexsort((row, key)), three times faster: one argsort of the keys, then one of (key rank,
    row) packed into an int64 (a batch's rows and distinct keys fit easily)."""
    if key.size == 0:
        return np.zeros(0, dtype=np.int64)
    o = np.argsort(key)
    k = key[o]
    new = np.ones(k.size, dtype=bool)
    new[1:] = k[1:] != k[:-1]
    rank = np.cumsum(new, dtype=np.int64) - 1
    r = row[o].astype(np.int64)
    r -= r.min()
    rbits = max(1, int(r.max()).bit_length())
    if rbits + max(1, int(rank[-1]).bit_length()) > 62:
        return np.lexsort((row, key))
    return o[np.argsort((rank << np.int64(rbits)) | r)]


def _empty_keys() -> ImageKeys:
    z = np.zeros(0, dtype=np.int64)
    f = np.zeros(0, dtype=bool)
    return ImageKeys(z, z.copy(), f, f.copy(), f.copy(), np.zeros(0, dtype=np.int8))


def _keys(rows: list, keys: list, query: list, indexed: list, kind: int) -> ImageKeys:
    if not rows:
        return _empty_keys()
    r, k = np.concatenate(rows).astype(np.int64), np.concatenate(keys).astype(np.int64)
    return ImageKeys(r, k, np.concatenate(query), np.zeros(r.size, dtype=bool), np.concatenate(indexed),
                     np.full(r.size, kind, dtype=np.int8))


def frame_keys(batch: "pa.RecordBatch | pa.Table", cfg: "CandidatesConfig", image_frames: bool = True,
               offer_only: bool = False) -> ImageKeys:
    import pyarrow.compute as pc
    from .fingerprints.video import unpack_frames

    if "frame_hashes" not in batch.column_names:
        return _empty_keys()
    status = np.asarray(pc.equal(batch.column("status"), "ok").fill_null(False))
    types = batch.column("media_type").to_pylist()
    vcfg = cfg.video
    positions = band_positions(BandConfigLike(vcfg.bands, vcfg.bits_per_band, vcfg.seed))
    rows, keys, query, indexed = [], [], [], []

    flips = np.int64(1) << np.arange(vcfg.bits_per_band, dtype=np.int64)

    def emit(row: int, hashes: np.ndarray, is_query: bool) -> None:
        k = _sorted_unique(band_keys(_sorted_unique(hashes), positions).ravel() | FRAME_FLAG)
        rows.append(np.full(k.size, row, dtype=np.int64))
        keys.append(k)
        query.append(np.full(k.size, is_query))
        indexed.append(np.ones(k.size, dtype=bool))

    times = batch.column("frame_times").to_pylist()
    blobs = batch.column("frame_hashes").to_pylist()
    # fill_null keeps int64 (a column with nulls would otherwise come out as float64 and lose bits)
    img = {c: batch.column(c).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
           for c in ("phash", "phash_mirror", "region_phash")}
    is_image = np.array([t == "image" for t in types], dtype=bool)
    for i in np.flatnonzero(status & ~is_image):
        if types[i] == "video" and blobs[i]:
            fh = unpack_frames(times[i], blobs[i])
            if fh.times.size:
                emit(i, np.concatenate([fh.phash, fh.centre_phash]), True)
    images = np.flatnonzero(status & is_image)
    if images.size and image_frames:
        probing = vcfg.image_probes and not offer_only           # the probes only ask
        _image_frame_keys(images, img, positions, flips if probing else None, rows, keys, query, indexed)
    return _keys(rows, keys, query, indexed, KIND_FRAME)


def _image_frame_keys(idx: np.ndarray, img: dict, positions: np.ndarray, flips: np.ndarray | None,
                      rows: list, keys: list, query: list, indexed: list) -> None:
    """Frame keys of many images at once: straight pHash and region pHash (query and index), their
    one-bit probes (query only, minus the image's own keys), the mirrored pHash (index only).
    Each (image, key) pair is packed into one int64 so per-image distinct sets are one sort."""
    from .fingerprints.bits import to_unsigned

    # A frame-band key below the flag: sampled bits (< 32) and the band id above bit 32.
    key_bits = 32 + max(1, int(positions.shape[0] - 1).bit_length())
    if int(idx.max()) >= 1 << (62 - key_bits):
        raise ValueError(f"{idx.max() + 1} rows in one batch: too many to pack with {key_bits}-bit keys")
    shift, mask = np.int64(key_bits), (np.int64(1) << np.int64(key_bits)) - np.int64(1)

    def packed(owner: np.ndarray, k: np.ndarray) -> np.ndarray:
        return (owner.astype(np.int64) << shift) | (k & mask)

    def emit(p: np.ndarray, is_query: bool, is_indexed: bool) -> None:
        rows.append(p >> shift)
        keys.append((p & mask) | FRAME_FLAG)
        query.append(np.full(p.size, is_query))
        indexed.append(np.full(p.size, is_indexed))

    straight = np.stack([to_unsigned(img["phash"][idx]), to_unsigned(img["region_phash"][idx])], axis=1)
    bk = band_keys(straight.ravel(), positions).reshape(idx.size, -1)          # (n, 2 * bands)
    own = _sorted_unique(packed(np.repeat(idx, bk.shape[1]), bk.ravel()))
    emit(own, True, True)
    if flips is not None:
        # An image's one-bit neighbours in every band, probed from the query side only: a grabbed
        # frame is a few bits from the nearest sampled frame, more than a 22-bit band forgives.
        probes = _sorted_unique(packed(np.repeat(idx, bk.shape[1] * flips.size),
                                       (bk[:, :, None] ^ flips[None, None, :]).ravel()))
        at = np.minimum(np.searchsorted(own, probes), own.size - 1)
        emit(probes[own[at] != probes], True, False)
    mk = band_keys(to_unsigned(img["phash_mirror"][idx]), positions)
    emit(_sorted_unique(packed(np.repeat(idx, mk.shape[1]), mk.ravel())), False, True)


def landmark_keys(batch: "pa.RecordBatch | pa.Table", cfg: "Config") -> ImageKeys:
    """A fixed subset of each sound's landmarks: straight on both sides; the query side also
    offers them re-hashed under every speed hypothesis of matching.audio."""
    import pyarrow.compute as pc
    from .fingerprints.audio import landmarks, unpack_peaks
    from .matching.av import speed_hypotheses

    if "audio_peaks" not in batch.column_names:
        return _empty_keys()
    status = np.asarray(pc.equal(batch.column("status"), "ok").fill_null(False))
    blobs = batch.column("audio_peaks").to_pylist()
    modulus = np.uint64(cfg.candidates.audio.key_modulus)
    rows, keys, query, indexed = [], [], [], []
    for i in np.flatnonzero(status):
        if not blobs[i]:
            continue
        peaks = unpack_peaks(blobs[i])
        straight = None
        for speed, pitch in speed_hypotheses(cfg.matching.audio.speeds):
            h = landmarks(peaks, cfg.audio, speed, pitch).hash
            h = np.unique(h[_mix(h) % modulus == 0]) | LANDMARK_FLAG
            if straight is None:
                straight = h
                rows.append(np.full(h.size, i, dtype=np.int64))
                keys.append(h)
                query.append(np.ones(h.size, dtype=bool))
                indexed.append(np.ones(h.size, dtype=bool))
            else:
                h = np.setdiff1d(h, straight, assume_unique=True)
                rows.append(np.full(h.size, i, dtype=np.int64))
                keys.append(h)
                query.append(np.ones(h.size, dtype=bool))
                indexed.append(np.zeros(h.size, dtype=bool))
    return _keys(rows, keys, query, indexed, KIND_LANDMARK)


def _mix(h: np.ndarray) -> np.ndarray:
    """Spread landmark hashes (their low bits are the time gap) before taking a fixed subset."""
    return (np.asarray(h, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)


@dataclass(frozen=True)
class BandConfigLike:
    """band_positions' cache key for the frame bands (same fields as config.BandConfig)."""
    bands: int
    bits_per_band: int
    seed: int
