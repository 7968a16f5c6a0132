"""Candidate stage: join keys -> buckets of media sharing a key -> distinct media pairs. Never all-pairs.

Keys come from `candidates.media_keys`, the function the benchmarks and in-memory search use, so the
semantics are shared. Each key has a kind with its own rule (`candidates.kind_rules`): image pHash
bands (one shared key is enough), keypoint words (candidates.local.min_shared distinct words), frame
bands of videos and images (candidates.video.min_shared) and audio landmarks
(candidates.audio.min_shared). The query side (new media) asks with its straight keys and probes;
the index side (all media) offers straight and mirrored keys, so a mirrored copy meets its
original in one bucket. (An incremental run with few new media turns the mirrors around, the new
media asking with theirs, and offers only the keys some new media asks: `media_join_keys`.)
Buckets larger than their kind's cap (near-blank images, logos, held tones) are skipped and counted.

Cost: at scale the key table is billions of rows, so media travel in it as 64-bit ids (`media_id`),
mapped back to media_key only for the surviving pairs, and it never becomes one Spark row per key:
key rows move as packed blobs to the partition of their key, where buckets are joined in numpy
(`candidates.bucket_hits`); the hits move the same way to the partition of their pair, where each
pair's hits are summed and its rule applied. Only candidate pairs come back as rows.
"""
from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark import Accumulator, StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..candidates import KIND_BAND, BucketHits, bucket_hits, kind_rules, media_keys, pairs_meeting_rules, real_rows
from ..config import Config
from ..key_filter import KeyFilter, filter_log2_bits
from ..search_keys import key_hash

log = logging.getLogger(__name__)

_KEY_INPUT = ("status", "media_type", "phash", "phash_mirror", "region_phash", "region_phash_mirror",
              "dhash", "dhash_mirror", "region_dhash", "region_dhash_mirror", "region", "kp_desc",
              "kp_desc_mirror", "kp_angle", "frame_times", "frame_hashes", "audio_peaks", "kf_times",
              "kf_counts", "kp_xy")
# Read only for videos' keys (frame bands, keyframe words): a catalog without videos leaves them
# unread (kp_xy alone is ~1 KB per image).
_VIDEO_KEY_INPUT = ("frame_times", "frame_hashes", "kf_times", "kf_counts", "kp_xy")


def media_id(key: "str | F.Column" = "media_key") -> F.Column:
    """The int64 stand-in for media_key in the key table: a long is a quarter of a 32-character key
    to move, hash and compare. Collisions are checked (`media_ids`), not assumed away."""
    return F.xxhash64(key)


KIND_ALIAS = 9          # key-table rows mapping a keyframe's id (media_id) to its video's (join_key)


def keyframe_ids(video_ids: np.ndarray, pseudo_rows: np.ndarray) -> np.ndarray:
    """A 64-bit id per (video, keyframe): the search index's key hash of the video's id mixed with
    the hash of the pseudo row."""
    mixed = np.asarray(video_ids, dtype=np.int64).view(np.uint64) ^ key_hash(pseudo_rows, 0)
    return key_hash(mixed, 0).view(np.int64)


def media_ids(fingerprints: DataFrame) -> DataFrame:
    """(media_id, media_key) of the ok fingerprints; fails if two keys share an id (at a million
    media the odds are about 3e-8)."""
    ids = fingerprints.where(F.col("status") == "ok").select(media_id().alias("media_id"), "media_key")
    clash = ids.groupBy("media_id").agg(F.countDistinct("media_key").alias("n")).where(F.col("n") > 1)
    if clash.limit(1).count():
        raise RuntimeError("two media_keys share one 64-bit media_id (xxhash64); this should not happen "
                           "in practice: please report it with the two keys")
    return ids


def media_join_keys(fingerprints: DataFrame, cfg: Config, new_keys: DataFrame | None = None,
                    image_frames: bool | None = None, counter: "Accumulator | None" = None,
                    new_fingerprints: DataFrame | None = None) -> DataFrame:
    """Every (media, join key) row of every ok fingerprint (image, video or audio), in shards: rows
    (shard, key_rows, blob), each blob the packed key rows of one fingerprint batch that belong to
    one partition of the join (`candidate_pairs` splits by key, `key_partitions` of them).

    The key table is the run's largest (billions of rows at a million media): moved as a few large
    blobs, Spark's per-row costs (conversion, serialisation, shuffle records) are paid per blob.

    Only the media in `new_keys` (a media_key column; all media when None) ask with query keys; the
    others only offer indexed keys. When the new media are at most
    `candidates.mirrors_asked_below` of the ok fingerprints, the new media ask with their mirrored
    keys and every media offers only straight ones (`image_keys(mirrors_indexed=False)`): the old
    media, most of an incremental run, then make about half the key rows. Otherwise (a full run)
    every media offers its mirrored keys, which is cheaper when all of them ask. When they are at most
    `candidates.offered_filter.below` of them, every media offers only the keys that pass a Bloom
    filter of the keys the new media ask with (`asked_key_filter`): the same meetings, from a few
    percent of the old media's key rows. The filter's keys are made from `new_fingerprints` when
    given (the run's new fingerprint rows, a small staged table), else from the new media's rows of
    `fingerprints` (one more read of the whole table).

    Images' frame keys serve only to meet videos; unless `image_frames` says otherwise they are made
    only when the fingerprints hold a video (one cheap `limit(1)` query), and without one the videos'
    columns are not even read. `counter`, an accumulator,
    adds up the key rows made (for reports)."""
    ok = fingerprints.where(F.col("status") == "ok")
    videos = bool(ok.where(F.col("media_type") == "video").limit(1).count())
    if image_frames is None:
        image_frames = videos
        if not image_frames:
            log.info("no videos among the fingerprints: images' frame keys left out")
    key_input = _KEY_INPUT if videos or image_frames else tuple(c for c in _KEY_INPUT if c not in _VIDEO_KEY_INPUT)
    n_ok = ok.count()
    parts = key_partitions(n_ok, cfg, fingerprints.sparkSession)
    labels = shard_labels(parts, fingerprints.sparkSession)
    if new_keys is None:
        ok = ok.withColumn("is_new", F.lit(True))
        n_new = n_ok
    else:
        marked = new_keys.select("media_key").distinct().withColumn("is_new", F.lit(True))
        n_new = marked.count()                     # an upper bound: some may have failed
        # Broadcast, the fingerprints are marked where they are read: a shuffle join would move the
        # whole table (1.5 GB at 100k media) once for the keys and once for the asked-key filter.
        if n_new <= _BROADCAST_NEW_MEDIA:
            marked = F.broadcast(marked)
        ok = ok.join(marked, "media_key", "left").withColumn("is_new", F.coalesce("is_new", F.lit(False)))
    share = cfg.candidates.mirrors_asked_below
    mirrors_indexed = not (share > 0 and n_new <= share * n_ok)
    log.info("candidate keys: %d new of %d media; mirrored keys %s", n_new, n_ok,
             "offered by every media" if mirrors_indexed else "asked by the new media only")
    ok = ok.select(media_id().alias("media_id"), "is_new", *key_input)
    filtering = cfg.candidates.offered_filter
    asked = None
    if new_keys is not None and filtering.below > 0 and n_new <= filtering.below * n_ok:
        if new_fingerprints is not None:
            source = (new_fingerprints.where(F.col("status") == "ok")
                      .select(media_id().alias("media_id"), F.lit(True).alias("is_new"), *key_input))
        else:
            source = ok.where(F.col("is_new"))
        asked = fingerprints.sparkSession.sparkContext.broadcast(
            asked_key_filter(source, cfg, image_frames, mirrors_indexed).to_bytes())

    def explode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        offered = None if asked is None else KeyFilter.from_bytes(asked.value, filtering.probes)
        for whole in batches:
            for start in range(0, whole.num_rows, _KEY_SUB_BATCH):
                batch = whole.slice(start, _KEY_SUB_BATCH)
                new = np.asarray(batch.column("is_new").to_numpy(zero_copy_only=False), dtype=bool)
                if new.all():                      # a full run's batches, always
                    yield from shard_batch(batch, offered, old=False)
                    continue
                # Old media ask nothing: their query-only keys are not even made.
                yield from shard_batch(batch.filter(pa.array(~new)), offered, old=True)
                if new.any():
                    yield from shard_batch(batch.filter(pa.array(new)), offered, old=False)

    def shard_batch(batch: pa.RecordBatch, offered: KeyFilter | None, old: bool) -> list[pa.RecordBatch]:
        k = media_keys(batch, cfg, image_frames, mirrors_indexed, offer_only=old)
        row, key, query, indexed, kind = k.row, k.key, k.query, k.indexed, k.kind
        if old:
            query = np.zeros_like(query)
        if offered is not None:
            # An offered key that no new media asks with meets nobody.
            test = indexed & ~query
            indexed = indexed.copy()
            indexed[test] = offered.contains(key[test])
        keep = query | indexed                    # an old media's query-only keys ask nothing
        hashes = None if k.ph is None else (k.ph, k.dh)
        if not keep.all():                        # a full run keeps every row: no copies
            row, key, query, indexed, kind = row[keep], key[keep], query[keep], indexed[keep], kind[keep]
            hashes = None if hashes is None else (hashes[0][keep], hashes[1][keep])
        if counter is not None:
            counter.add(int(row.size))
        ids = np.asarray(batch.column("media_id").to_numpy(zero_copy_only=False), dtype=np.int64)
        pseudo = row < 0
        if not pseudo.any():                      # a batch of images: no keyframe rows
            return _shards(ids[row], key, query, indexed, kind, parts, labels, hashes)
        # A keyframe's words go under an id of its own, and one alias row per keyframe says whose it
        # is (kind KIND_ALIAS; neither asked nor offered, so joins never see it).
        owner = ids[real_rows(row)]
        owner[pseudo] = keyframe_ids(owner[pseudo], row[pseudo])
        alias_row = np.unique(row[pseudo])
        real = ids[real_rows(alias_row)]
        owner = np.concatenate([owner, keyframe_ids(real, alias_row)])
        key = np.concatenate([key, real])
        no = np.zeros(alias_row.size, dtype=bool)
        query, indexed = np.concatenate([query, no]), np.concatenate([indexed, no])
        kind = np.concatenate([kind, np.full(alias_row.size, KIND_ALIAS, dtype=np.int8)])
        if hashes is not None:
            z = np.zeros(alias_row.size, dtype=np.int64)
            hashes = (np.concatenate([hashes[0], z]), np.concatenate([hashes[1], z]))
        return _shards(owner, key, query, indexed, kind, parts, labels, hashes)

    return ok.mapInArrow(explode, SHARD_SCHEMA)


def asked_key_filter(new_media: DataFrame, cfg: Config, image_frames: bool, mirrors_indexed: bool) -> KeyFilter:
    """A Bloom filter of every key that the media of `new_media` (rows as `media_join_keys` reads
    them) ask with, sized by their number (`candidates.offered_filter`).

    The asked keys are made once, kept as one blob per fingerprint batch (8 bytes a key: ~22 MB per
    thousand images, spilled to disk if need be), counted, and added to one filter per task; the
    tasks' filters are OR-ed together on the executors (treeReduce): only the filter reaches the
    driver."""
    fc = cfg.candidates.offered_filter
    spark = new_media.sparkSession

    def asked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for whole in batches:
            for start in range(0, whole.num_rows, _KEY_SUB_BATCH):
                k = media_keys(whole.slice(start, _KEY_SUB_BATCH), cfg, image_frames, mirrors_indexed)
                keys = np.unique(k.key[k.query]).astype("<i8")
                yield pa.RecordBatch.from_arrays([pa.array([keys.size], pa.int64()),
                                                  pa.array([keys.tobytes()], pa.binary())], names=["n", "keys"])

    blobs = new_media.mapInArrow(asked, "n long, keys binary").persist(StorageLevel.MEMORY_AND_DISK)
    try:
        n_keys = int(blobs.agg(F.sum("n")).first()[0] or 0)
        log2_bits = filter_log2_bits(n_keys, fc.bits_per_key, fc.max_mb << 20)
        if n_keys == 0:                     # no new media is ok: nothing asks, nothing is offered
            return KeyFilter.empty(log2_bits, fc.probes)

        def build(rows: Iterator) -> Iterator[np.ndarray]:
            f = KeyFilter.empty(log2_bits, fc.probes)
            for r in rows:
                f.add(np.frombuffer(r.keys, dtype="<i8"))
            yield f.words

        parts = max(1, min(spark.sparkContext.defaultParallelism, blobs.rdd.getNumPartitions()))
        words = blobs.coalesce(parts).rdd.mapPartitions(build).treeReduce(np.bitwise_or)
    finally:
        blobs.unpersist()
    out = KeyFilter(words, fc.probes)
    fill = out.fill()
    log.info("offered keys filtered by the %d keys new media ask with: %.1f MB Bloom filter, %.1f%% of bits "
             "set, ~%.2f%% of other keys pass", n_keys, out.bits / 8 / 2**20, 100 * fill, 100 * fill ** fc.probes)
    return out


SHARD_SCHEMA = "shard int, key_rows long, blob binary, layout tinyint"
# Record layouts of key shards: (media id, join key, flags), and pHash band rows with their own
# pHash and dHash after them (so that a bucket can drop chance band meetings).
_PLAIN, _WITH_HASHES = 0, 1
# Fingerprints keyed at a time: ~700k key rows, whose arrays stay in cache (numpy's sorts, gathers
# and packing run 3-9x faster per row than over a whole 10,000-row Arrow batch, measured).
_KEY_SUB_BATCH = 256
_BROADCAST_NEW_MEDIA = 2_000_000    # new media keys broadcast to mark the fingerprints (~100 MB at most)
_SHARD_MAX_ROWS = 1 << 20           # key rows per blob (17 MB): bounds a shuffle record


def key_partitions(n_media: int, cfg: Config, spark) -> int:
    """Partitions of the candidate join: about candidates.media_per_partition media's keys each, and
    at least spark.sql.shuffle.partitions."""
    return max(int(spark.conf.get("spark.sql.shuffle.partitions")),
               -(-int(n_media) // cfg.candidates.media_per_partition))


def shard_labels(parts: int, spark) -> np.ndarray:
    """For each partition p of `parts`, an int label that Spark's hash partitioning (Murmur3 of the
    int, modulo parts: what `repartition(parts, col)` does) sends to p, so that every partition of
    the join gets one share of the keys. Found by asking Spark to hash a few labels per partition,
    once per partition count (Murmur3 with Spark's fixed seed: the answer never changes)."""
    if parts not in _LABELS:
        _LABELS[parts] = _find_labels(parts, spark)
    return _LABELS[parts]


_LABELS: dict[int, np.ndarray] = {}


def _find_labels(parts: int, spark) -> np.ndarray:
    found = np.full(parts, -1, dtype=np.int64)
    start, step = 0, parts * 16
    while (found < 0).any():
        rows = (spark.range(start, start + step).select(F.col("id").cast("int").alias("label"))
                .select("label", F.pmod(F.hash("label"), F.lit(parts)).alias("p")).toPandas())
        for label, p in zip(rows["label"].tolist()[::-1], rows["p"].tolist()[::-1]):
            found[p] = label                       # reversed: the smallest label wins
        start += step
    return found


def _shards(owner: np.ndarray, key: np.ndarray, query: np.ndarray, indexed: np.ndarray, kind: np.ndarray,
            parts: int, labels: np.ndarray,
            hashes: tuple[np.ndarray, np.ndarray] | None = None) -> list[pa.RecordBatch]:
    """Key rows packed per join partition (by key, `partition_of_keys`): media ids, join keys, flags
    (indexed bit 0, query bit 1, kind above); pHash band rows also carry their pHash and dHash, when
    given (16 bytes more on a sixth of the rows), in blobs of their own layout.

    Keys travel as they are: their zero bytes compress (the shuffle's lz4). Sent hashed, they made
    the 100k run's shuffle 2.49 -> 3.01 GB."""
    flags = indexed.astype(np.uint8) | (query.astype(np.uint8) << 1) | (kind.astype(np.uint8) << 2)
    target = partition_of_keys(key, parts)
    if hashes is None:
        return [_pack_shards(target, [owner, key, flags], labels)]
    band = kind == KIND_BAND
    nb = int(np.count_nonzero(band))
    # media_keys puts the band rows first: then the two layouts are slices, not masked copies.
    b, p = (slice(0, nb), slice(nb, None)) if band[:nb].all() else (band, ~band)
    return [_pack_shards(target[p], [owner[p], key[p], flags[p]], labels),
            _pack_shards(target[b], [owner[b], key[b], flags[b], hashes[0][b], hashes[1][b]], labels, _WITH_HASHES)]


def partition_of_keys(key: np.ndarray, parts: int) -> np.ndarray:
    """The join partition of each key, in [0, parts): its hash modulo `parts`.

    Not the hash's top bits scaled (a multiply for the modulo): `key_groups` sorts a partition by
    those top bits, and keys that agree on them more often clash there. That cost a million-media
    partition's join 0.06-0.1 s more, for 1 ms saved per 256 media's keys."""
    return key_hash(key, 0) % np.uint64(parts)


def _unshard(batches: Iterator[pa.RecordBatch]) -> tuple[np.ndarray, ...]:
    """(media_id, join_key, query, indexed, kind, pHash, dHash) of every key row in these key shards
    (hashes 0 where a row carries none; None when no row does)."""
    owner, key, flags, ph, dh = _unshard_raw(batches)
    return (owner, key, (flags & 2) != 0, (flags & 1) != 0, (flags >> 2).astype(np.int8),
            ph, dh)


def _unshard_raw(batches: Iterator[pa.RecordBatch]) -> tuple[np.ndarray, ...]:
    """(media_id, join key, flags, pHash, dHash) of every key row in these key shards, as
    `_shards` packed them (hashes 0 where a row carries none; None when no row does)."""
    batches = list(batches)
    owner, key, flags = _unpack_shards(batches, (np.int64, np.int64, np.uint8), _PLAIN)
    bo, bk, bf, bp, bd = _unpack_shards(batches, (np.int64, np.int64, np.uint8, np.int64, np.int64), _WITH_HASHES)
    ph = dh = None
    if bo.size:
        z = np.zeros(owner.size, dtype=np.int64)
        ph, dh = np.concatenate([z, bp]), np.concatenate([z, bd])
        owner, key, flags = np.concatenate([owner, bo]), np.concatenate([key, bk]), np.concatenate([flags, bf])
    return owner, key, flags, ph, dh


def _pack_shards(target: np.ndarray, columns: list[np.ndarray], labels: np.ndarray,
                 layout: int = _PLAIN) -> pa.RecordBatch:
    """Rows (shard label, rows, blob, layout): the rows of `columns` going to each target partition,
    each blob the rows' values column after column (little-endian).

    Column after column rather than row after row: on a sample of key rows, lz4 (the shuffle's
    codec) made 8-15% fewer bytes of them (a column's zero bytes lie together), and unpacking is a
    concatenation per column instead of a strided copy per field: 2-4x faster."""
    # Partition numbers are small: a 16-bit stable argsort is a radix sort.
    small = np.uint16 if labels.size <= 1 << 16 else np.uint32
    order = np.argsort(np.asarray(target).astype(small), kind="stable")
    cols = [np.ascontiguousarray(c[order]).astype(c.dtype.newbyteorder("<"), copy=False) for c in columns]
    target = np.asarray(target)[order]
    # One blob per run of a partition's rows (cut every _SHARD_MAX_ROWS rows); each ends where the next starts.
    starts = np.flatnonzero(np.concatenate([[True], target[1:] != target[:-1]])) if target.size else order[:0]
    if np.diff(np.append(starts, target.size)).max(initial=0) > _SHARD_MAX_ROWS:
        starts = np.concatenate([np.arange(s0, e0, _SHARD_MAX_ROWS)
                                 for s0, e0 in zip(starts.tolist(), np.append(starts[1:], target.size).tolist())])
    ends = np.append(starts[1:], target.size) if starts.size else starts
    n = ends - starts
    shard = labels[target[starts].astype(np.int64)] if starts.size else np.zeros(0, dtype=np.int64)
    # Each blob is its rows' values column after column: one slice of each column's bytes.
    raw = [(c.view(np.uint8), c.dtype.itemsize) for c in cols]
    pieces = [r[s * w:e * w] for s, e in zip(starts.tolist(), ends.tolist()) for r, w in raw]
    ends_at = np.cumsum(n * sum(c.dtype.itemsize for c in cols))
    # One batch's blobs share one Arrow data buffer with 32-bit offsets: callers pack a few MB at a
    # time (a sub-batch of fingerprints' keys, one partition's hits).
    if ends_at.size and ends_at[-1] >= 1 << 31:
        raise ValueError(f"{int(ends_at[-1]):,} bytes of shards in one batch: pack fewer rows at a time")
    offsets = np.concatenate([[0], ends_at]).astype(np.int32)
    data = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint8)
    blob = pa.Array.from_buffers(pa.binary(), n.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pa.RecordBatch.from_arrays([pa.array(shard.astype(np.int32)), pa.array(n.astype(np.int64)),
                                       blob, pa.array(np.full(n.size, layout, dtype=np.int8))],
                                      names=["shard", "key_rows", "blob", "layout"])


_BUCKET_ROWS = 1 << 19            # key rows joined at a time: cache-sized, as _KEY_SUB_BATCH


def _bucket_hits_in_parts(key: np.ndarray, media: np.ndarray, flags: np.ndarray, rules: dict,
                          ph: np.ndarray | None, dh: np.ndarray | None, max_band_distance: float) -> BucketHits:
    """bucket_hits over a partition's key rows (packed flags, as `_unshard_raw` gives them): grouped
    by key once (`key_groups`), then joined in cache-sized runs of whole buckets (a key's rows stay in
    one run, so the result is the same).

    One grouping of the whole partition replaced a split into key-hash groups, each argsorted by
    key: on the 4.9M key rows of one partition of a 100k-media run, 1.4-1.6 s -> 0.8 s."""
    if ph is None:
        max_band_distance = -1.0
    order, k = key_groups(np.asarray(key, dtype=np.int64))
    m, f = np.asarray(media, dtype=np.int64)[order], np.asarray(flags, dtype=np.uint8)[order]
    q, i, kd = (f & 2) != 0, (f & 1) != 0, (f >> 2).astype(np.int8)
    # Cut at the first bucket start past every _BUCKET_ROWS rows.
    cuts = [0]
    while k.size - cuts[-1] > _BUCKET_ROWS:
        cuts.append(_next_bucket_start(k, cuts[-1] + _BUCKET_ROWS))
    if cuts[-1] < k.size or k.size == 0:
        cuts.append(k.size)
    out = [bucket_hits(k[s:e], m[s:e], q[s:e], i[s:e], kd[s:e], rules, ph, dh, max_band_distance,
                       grouped=True, hash_rows=order[s:e])
           for s, e in zip(cuts[:-1], cuts[1:])]
    if len(out) == 1:
        return out[0]
    return BucketHits(*(np.concatenate([getattr(h, f) for h in out]) for f in BucketHits.__dataclass_fields__))


def _next_bucket_start(k: np.ndarray, at: int) -> int:
    """The first row from `at` on whose key differs from row at - 1's (len(k) if none), in grouped
    keys. Looked for in a short window first, growing: buckets are small, and comparing the whole
    rest of a partition at every cut cost more than the cuts save."""
    window = 4096
    while True:
        later = np.flatnonzero(k[at:at + window] != k[at - 1])
        if later.size:
            return at + int(later[0])
        if at + window >= k.size:
            return int(k.size)
        window *= 16


def key_groups(key: np.ndarray, prefix_bits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(an order that puts equal keys next to each other, the keys in that order): grouped, not
    sorted by key value.

    One value sort of (the key's hash's high bits, row index) packed in a uint64: several times
    faster than an argsort of the keys (numpy's SIMD sort has no argsort counterpart on this
    machine). Distinct keys that share a prefix (a few per 5M rows with the 40 bits left) may
    interleave there; such runs are re-sorted by key, exactly. `prefix_bits` is for tests (short
    prefixes force such runs)."""
    n = int(key.size)
    idx_bits = max(1, n.bit_length())
    keep = 64 - idx_bits if prefix_bits is None else min(prefix_bits, 64 - idx_bits)
    prefix = key_hash(key, 64 - keep)
    packed = (prefix << np.uint64(idx_bits)) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64((1 << idx_bits) - 1)).astype(np.int64)
    prefix = packed >> np.uint64(idx_bits)
    k = key[order]
    clash = (prefix[1:] == prefix[:-1]) & (k[1:] != k[:-1])
    if clash.any():
        # Every row of a clashing prefix (they are contiguous), re-sorted by (prefix, key).
        pos = np.flatnonzero(np.isin(prefix, _sorted_unique_u64(prefix[1:][clash])))
        sub = np.lexsort((k[pos], prefix[pos]))
        order[pos] = order[pos][sub]
        k[pos] = k[pos][sub]
    return order, k


def _sorted_unique_u64(x: np.ndarray) -> np.ndarray:
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if x.size else x


def _unpack_shards(batches: "Iterator[pa.RecordBatch] | list[pa.RecordBatch]", dtypes: tuple,
                   layout: int = _PLAIN) -> list[np.ndarray]:
    """The columns of every row in the blobs of this layout in these shard batches (`_pack_shards`
    with these dtypes), read from Arrow's buffers without a copy until the concatenation."""
    wire = [np.dtype(d).newbyteorder("<") for d in dtypes]
    out: list[list[np.ndarray]] = [[] for _ in wire]
    for batch in batches:
        lay = np.asarray(batch.column("layout"))
        mine = np.flatnonzero(lay == layout)
        if not mine.size:
            continue
        blobs = batch.column("blob")
        rows = np.asarray(batch.column("key_rows"))
        big = pa.types.is_large_binary(blobs.type)
        offsets = np.frombuffer(blobs.buffers()[1], dtype=np.int64 if big else np.int32)
        offsets = offsets[blobs.offset:blobs.offset + len(blobs) + 1]
        data = np.frombuffer(blobs.buffers()[2], dtype=np.uint8) if blobs.buffers()[2] is not None else None
        for i in mine.tolist():
            at, n = int(offsets[i]), int(rows[i])
            for j, d in enumerate(wire):
                out[j].append(data[at:at + n * d.itemsize].view(d))
                at += n * d.itemsize
    return [np.concatenate(o).astype(np.dtype(d), copy=False) if o else np.zeros(0, dtype=d)
            for o, d in zip(out, dtypes)]


# The join's output rows (id_x, id_y, kind, n): candidate pairs (KIND_PAIR: id_x < id_y, n = shared
# keypoint words), alias rows passed through (KIND_ALIAS: id_x = keyframe id, id_y = video id) and
# skipped buckets (KIND_OVERSIZED: id_x = join key, id_y = the bucket's kind, n = its size).
HIT_SCHEMA = "id_x long, id_y long, kind tinyint, n long"
KIND_PAIR, KIND_OVERSIZED = 7, 8
_N_BITS = np.int64(56)              # hit shards carry kind above bit 56 and the count below


def candidate_pairs(keys: DataFrame, ids: DataFrame, cfg: Config) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(pairs (media_key_a < media_key_b, shared_words), oversized buckets (join_key, bucket_size,
    kind), cached join output).

    `keys` are the key shards of `media_join_keys` (query keys for the new media only), `ids` from
    `media_ids`. Two blob shuffles, both joined in numpy: key shards to the partition of their keys,
    where each bucket's media meet (`candidates.bucket_hits`); then every hit to the partition of its
    pair, where a pair's hits from all buckets are summed and its kind's min_shared applied
    (`candidates.pairs_meeting_rules`). Chance meetings (one shared word) are the bulk of the hits and
    grow as N^2: they never become Spark rows. The output is cached so that the pairs and the
    overflow report read it once: unpersist the third frame when both have been used."""
    rules = kind_rules(cfg.candidates)
    spark = keys.sparkSession
    n_media = ids.count()
    parts = key_partitions(n_media, cfg, spark)              # as media_join_keys split them
    labels = shard_labels(parts, spark)
    log.info("candidate join: %d media, keys in %d partitions", n_media, parts)

    def buckets(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # A partition holds every row of its keys: take it whole (media_per_partition bounds it).
        media, key, flags, ph, dh = _unshard_raw(batches)
        alias = (flags >> 2) == KIND_ALIAS
        if alias.any():
            media_a, video = media[alias], key[alias]
            media, key, flags = media[~alias], key[~alias], flags[~alias]
            ph, dh = (None, None) if ph is None else (ph[~alias], dh[~alias])
        else:
            media_a = video = np.zeros(0, dtype=np.int64)
        h = _bucket_hits_in_parts(key, media, flags, rules, ph, dh, cfg.candidates.image.max_distance)
        x = np.concatenate([h.x, media_a, h.over_key])
        y = np.concatenate([h.y, video, h.over_kind.astype(np.int64)])
        k = np.concatenate([h.kind.astype(np.int64), np.full(media_a.size, KIND_ALIAS, np.int64),
                            np.full(h.over_key.size, KIND_OVERSIZED, np.int64)])
        n = np.concatenate([h.n, np.zeros(media_a.size, np.int64), h.over_size])
        target = partition_of_keys(key_hash(x, 0) ^ y.astype(np.uint64), parts)
        yield _pack_shards(target, [x, y, (k << _N_BITS) | n], labels)

    def pairs_of(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # A partition holds every hit of its pairs.
        x, y, kn = _unpack_shards(batches, (np.int64, np.int64, np.int64))
        k, n = kn >> _N_BITS, kn & ((np.int64(1) << _N_BITS) - 1)
        side = k >= KIND_OVERSIZED
        px, py, words = pairs_meeting_rules(x[~side], y[~side], k[~side].astype(np.int8), n[~side], rules)
        yield pa.RecordBatch.from_arrays(
            [pa.array(np.concatenate([px, x[side]])), pa.array(np.concatenate([py, y[side]])),
             pa.array(np.concatenate([np.full(px.size, KIND_PAIR, np.int8), k[side].astype(np.int8)]), type=pa.int8()),
             pa.array(np.concatenate([words, n[side]]))], names=["id_x", "id_y", "kind", "n"])

    hits = (keys.repartition(parts, "shard").mapInArrow(buckets, SHARD_SCHEMA)
            .repartition(parts, "shard").mapInArrow(pairs_of, HIT_SCHEMA)
            .persist(StorageLevel.MEMORY_AND_DISK))
    oversized = hits.where(F.col("kind") == KIND_OVERSIZED).select(
        F.col("id_x").alias("join_key"), F.col("n").alias("bucket_size"), F.col("id_y").cast("tinyint").alias("kind"))
    found = hits.where(F.col("kind") == KIND_PAIR).select("id_x", "id_y", F.col("n").alias("words"))
    # Keyframe ids name their video (alias rows); a video never pairs with itself. A run without
    # videos has no alias rows and skips the two joins (one cheap scan of the cached output says so).
    alias = hits.where(F.col("kind") == KIND_ALIAS).select(F.col("id_x").alias("pid"), F.col("id_y").alias("vid"))
    keyframes = bool(alias.limit(1).count())
    if keyframes:
        for side in ("id_x", "id_y"):
            found = (found.join(alias, F.col(side) == F.col("pid"), "left")
                     .withColumn(side, F.coalesce("vid", side)).drop("pid", "vid"))
        found = found.where(F.col("id_x") != F.col("id_y"))
    x = ids.select(F.col("media_id").alias("id_x"), F.col("media_key").alias("key_x"))
    y = ids.select(F.col("media_id").alias("id_y"), F.col("media_key").alias("key_y"))
    named = found.join(x, "id_x").join(y, "id_y")
    # Shared keypoint words travel with the pair: verification sends only pairs with some to
    # keypoint matching (matching.image.local_min_words).
    pair = (F.least("key_x", "key_y").alias("media_key_a"), F.greatest("key_x", "key_y").alias("media_key_b"))
    if keyframes:      # a pair met through several keyframes keeps its best count
        pairs = named.groupBy(*pair).agg(F.max("words").alias("shared_words"))
    else:
        pairs = named.select(*pair, F.col("words").alias("shared_words"))
    return pairs, oversized, hits


def summarize_overflow(oversized: DataFrame) -> tuple[int, int]:
    row = oversized.agg(F.count(F.lit(1)).alias("n"), F.coalesce(F.sum("bucket_size"), F.lit(0)).alias("m")).first()
    return int(row["n"]), int(row["m"])
