"""The Spark candidate stage against its one-process twin (`candidate_pairs_in_memory`) on real
fingerprints: the same pairs on a full run and on an incremental one (only new media ask), and the
same count of oversized buckets."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from medialayer.candidates import candidate_pairs_in_memory, media_keys
from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.spark.candidate_stage import candidate_pairs, media_ids, media_join_keys, summarize_overflow
from medialayer.synth.edits import crop_heavy, mirror, recompress, screenshot


def _spark_pairs(spark, fps, cfg, new_keys=None, counter=None, new_fingerprints=None):
    keys = media_join_keys(fps, cfg, new_keys, counter=counter, new_fingerprints=new_fingerprints)
    pairs, oversized, cached_keys = candidate_pairs(keys, media_ids(fps), cfg)
    got = {(r["media_key_a"], r["media_key_b"]) for r in pairs.collect()}       # a handful of rows
    n_oversized = summarize_overflow(oversized)[0]
    cached_keys.unpersist()
    return got, n_oversized


def test_spark_candidates_equal_the_in_memory_join(spark, spark_cfg, photos, tmp_path):
    rng = np.random.default_rng(5)
    images = []
    for img in photos[:5]:
        images += [img, crop_heavy(img, rng), mirror(img, rng), screenshot(img, rng)]
    images += [recompress(photos[5], rng) for _ in range(4)]           # four near-copies: a hot bucket
    paths = []
    for k, img in enumerate(images):
        p = tmp_path / f"m{k:02d}.jpg"
        img.save(p, quality=88)
        paths.append(str(p))
    # A small bucket cap so that the four near-copies overflow some band buckets.
    cfg = spark_cfg.with_overrides({"candidates": {"max_bucket_size": 3}})
    table = fingerprint_table(paths, ["image"] * len(paths), cfg, Fetcher(cfg.fetch, trusted_local=True))
    pq.write_table(table, tmp_path / "fps.parquet")
    fps = spark.read.parquet(str(tmp_path / "fps.parquet"))
    names = table.column("media_key").to_pylist()
    keys = media_keys(table, cfg, image_frames=False)       # no videos: the stage leaves frame keys out

    def in_memory(query_rows=None):
        a, b, n_over = candidate_pairs_in_memory(keys, cfg.candidates, query_rows)
        return {tuple(sorted((names[i], names[j]))) for i, j in zip(a.tolist(), b.tolist())}, n_over

    want, want_over = in_memory()
    got, got_over = _spark_pairs(spark, fps, cfg)
    assert got == want and len(want) >= 15
    assert got_over == want_over > 0
    # Without videos the videos' columns are never read (kp_xy alone is ~1 KB per image).
    spark.conf.set("spark.sql.maxMetadataStringLength", "10000")      # the plan prints the whole read schema
    try:
        read = media_join_keys(fps, cfg)._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.unset("spark.sql.maxMetadataStringLength")
    schema = read[read.index("ReadSchema"):].split("\n")[0]
    assert "kp_desc" in schema and not any(c in schema for c in ("kp_xy", "frame_hashes", "kf_counts"))

    # An incremental run: a third are new, so the new media ask with their mirrored keys and every
    # media offers only straight ones (candidates.mirrors_asked_below); with 0, all offer mirrors.
    new_rows = np.arange(0, len(paths), 3)
    new_keys = spark.createDataFrame([(names[i],) for i in new_rows.tolist()], "media_key string")
    asked_keys = media_keys(table, cfg, image_frames=False, mirrors_indexed=False)
    a, b, _ = candidate_pairs_in_memory(asked_keys, cfg.candidates, new_rows)
    want_asked = {tuple(sorted((names[i], names[j]))) for i, j in zip(a.tolist(), b.tolist())}
    got_asked, _ = _spark_pairs(spark, fps, cfg, new_keys)
    assert got_asked == want_asked and 0 < len(want_asked) < len(want)
    # The offered keys filtered by a Bloom filter of the asked ones: the same pairs, also from a
    # filter so small that most keys pass it by chance (a third are new here, above the default's
    # share, so the filter is switched on).
    # The filter's keys come from the new media's own rows when the run has them apart (the
    # pipeline's staged new fingerprints), else from the whole table.
    new_fps = fps.join(new_keys, "media_key", "left_semi")
    key_rows = []
    for filtering, own_rows in (({"below": 0}, None), ({"below": 1.0}, None),
                                ({"below": 1.0, "bits_per_key": 1, "probes": 1}, None), ({"below": 1.0}, new_fps)):
        filtered = cfg.with_overrides({"candidates": {"offered_filter": filtering}})
        counter = spark.sparkContext.accumulator(0)
        got_filtered, _ = _spark_pairs(spark, fps, filtered, new_keys, counter, own_rows)
        assert got_filtered == want_asked
        key_rows.append(counter.value)
    # ... from fewer key rows with the filter (here most rows are the new media's questions), and
    # fewer from a sharp filter than a blunt one
    assert key_rows[1] < key_rows[2] < key_rows[0] and key_rows[3] == key_rows[1], key_rows
    # A run whose only new media failed: nothing asks, so no pairs (and no error from an empty filter).
    gone = spark.createDataFrame([("no-such-media",)], "media_key string")
    filtered = cfg.with_overrides({"candidates": {"offered_filter": {"below": 1.0}}})
    assert _spark_pairs(spark, fps, filtered, gone, None, fps.join(gone, "media_key", "left_semi"))[0] == set()
    want_new, _ = in_memory(new_rows)
    got_new, _ = _spark_pairs(spark, fps, cfg.with_overrides({"candidates": {"mirrors_asked_below": 0}}), new_keys)
    assert got_new == want_new and 0 < len(want_new) < len(want)
    # Either way, every mirrored copy meets its original when one of the two is new.
    mirrored = {tuple(sorted((names[4 * k], names[4 * k + 2]))) for k in range(5) if {4 * k, 4 * k + 2} & set(new_rows.tolist())}
    assert len(mirrored) >= 3 and mirrored <= got_asked and mirrored <= got_new


def test_spark_keyframe_words_name_their_video_like_the_in_memory_join(spark, spark_cfg, av_clips, tmp_path):
    import cv2

    frame = av_clips["demo"]["frames"][274]
    h, w = frame.shape[:2]
    grab = tmp_path / "grab.jpg"                    # cropped past what frame hashes forgive
    cv2.imwrite(str(grab), cv2.cvtColor(cv2.resize(np.ascontiguousarray(frame[: int(h * 0.8), : int(w * 0.75)]),
                                                   (600, 480)), cv2.COLOR_RGB2BGR))
    urls = [str(av_clips["demo"]["path"]), str(av_clips["other"]["path"]), str(grab)]
    table = fingerprint_table(urls, [None] * len(urls), spark_cfg, Fetcher(spark_cfg.fetch, trusted_local=True))
    pq.write_table(table, tmp_path / "fps.parquet")
    fps = spark.read.parquet(str(tmp_path / "fps.parquet"))
    names = table.column("media_key").to_pylist()
    a, b, _ = candidate_pairs_in_memory(media_keys(table, spark_cfg), spark_cfg.candidates)
    want = {tuple(sorted((names[i], names[j]))) for i, j in zip(a.tolist(), b.tolist())}
    got, _ = _spark_pairs(spark, fps, spark_cfg)
    assert got == want
    assert tuple(sorted((names[0], names[2]))) in got                  # the grab meets its video ...
    assert all(names[0] != k or names[0] != j for k, j in got)         # ... and no video meets itself


def test_key_shards_round_trip_and_land_on_their_partition(spark):
    """Every key row comes back from its shard blob unchanged, in the partition of the join that its
    key hashes to (Spark's hash partitioning of the shard label)."""
    from pyspark.sql import functions as F

    from medialayer.spark.candidate_stage import _shards, _unshard, partition_of_keys, shard_labels

    rng = np.random.default_rng(2)
    n, parts = 5000, 7
    owner, key = rng.integers(-2**62, 2**62, n), rng.integers(-2**62, 2**62, n)
    query, indexed = rng.random(n) < 0.5, rng.random(n) < 0.5
    kind = rng.integers(0, 10, n).astype(np.int8)
    labels = shard_labels(parts, spark)
    [batch] = _shards(owner, key, query, indexed, kind, parts, labels)
    back = _unshard(iter([batch]))
    order = np.lexsort((owner, key))
    back_order = np.lexsort((back[0], back[1]))
    for got, want in zip(back, (owner, key, query, indexed, kind)):
        assert np.array_equal(got[back_order], want[order])
    assert back[5] is None and back[6] is None
    # With hashes, pHash band rows (kind 0) carry theirs, in blobs of their own layout; others none.
    ph, dh = rng.integers(-2**62, 2**62, n), rng.integers(-2**62, 2**62, n)
    both = _shards(owner, key, query, indexed, kind, parts, labels, (ph, dh))
    assert [set(b.column("layout").to_pylist()) for b in both] == [{0}, {1}]
    back = _unshard(iter(both))
    back_order = np.lexsort((back[0], back[1]))
    for got, want in zip(back, (owner, key, query, indexed, kind, np.where(kind == 0, ph, 0), np.where(kind == 0, dh, 0))):
        assert np.array_equal(got[back_order], want[order])
    df = spark.createDataFrame(batch.to_pandas()).repartition(parts, "shard")
    where = df.select("shard", F.spark_partition_id().alias("p")).distinct().toPandas()
    want = {int(labels[p]): p for p in range(parts)}
    assert {int(s): int(p) for s, p in zip(where["shard"], where["p"])} == {s: want[s] for s in where["shard"]}
    assert set(where["shard"]) <= set(want)
    # Each key's rows sit in one shard, the one its hash names.
    for s in where["shard"]:
        rows = _unshard(iter([batch.filter(pa.compute.equal(batch.column("shard"), s))]))
        assert set(partition_of_keys(rows[1], parts).tolist()) == {[p for p, lab in enumerate(labels) if lab == s][0]}


def test_key_partitions_cover_every_partition_evenly():
    from medialayer.spark.candidate_stage import partition_of_keys

    keys = np.random.default_rng(4).integers(-2**63, 2**63 - 1, 70_000)
    for parts in (1, 7, 500):
        p = partition_of_keys(keys, parts)
        assert p.min() >= 0 and p.max() < parts
        counts = np.bincount(p.astype(np.int64), minlength=parts)
        assert counts.min() > 0.7 * keys.size / parts and counts.max() < 1.3 * keys.size / parts
    assert np.array_equal(partition_of_keys(keys, 7), partition_of_keys(keys.copy(), 7))   # a function of the key


def test_a_partition_run_longer_than_a_blob_is_cut_into_blobs(monkeypatch):
    """Rows bound for one partition past _SHARD_MAX_ROWS go in several blobs under its label, each
    within the bound, and come back whole."""
    from medialayer.spark import candidate_stage

    monkeypatch.setattr(candidate_stage, "_SHARD_MAX_ROWS", 7)
    rng = np.random.default_rng(8)
    target = np.r_[np.zeros(30, np.uint64), rng.integers(1, 4, 20).astype(np.uint64)]
    x, y = rng.integers(0, 2**62, target.size), rng.integers(0, 2**62, target.size)
    labels = np.array([100, 101, 102, 103])
    batch = candidate_stage._pack_shards(target, [x, y], labels)
    rows = np.asarray(batch.column("key_rows"))
    shard = np.asarray(batch.column("shard"))
    assert rows.max() <= 7 and rows.sum() == target.size
    assert rows[shard == 100].sum() == 30 and (shard == 100).sum() == 5        # 7 + 7 + 7 + 7 + 2
    got = candidate_stage._unpack_shards([batch], (np.int64, np.int64))
    assert sorted(zip(got[0].tolist(), got[1].tolist())) == sorted(zip(x.tolist(), y.tolist()))
    first = batch.filter(pa.array(shard == 100))
    assert sorted(candidate_stage._unpack_shards([first], (np.int64,))[0].tolist()) == sorted(x[:30].tolist())
    empty = candidate_stage._pack_shards(np.zeros(0, np.uint64), [x[:0], y[:0]], labels)
    assert empty.num_rows == 0


def test_a_large_partition_joined_in_runs_gives_the_whole_join(monkeypatch):
    """A partition past candidate_stage._BUCKET_ROWS is grouped by key once and joined in runs of
    whole buckets: the same hits, summed, as bucket_hits over all of it in one go."""
    from medialayer.candidates import bucket_hits, count_pairs, kind_rules
    from medialayer.config import load_config
    from medialayer.spark import candidate_stage

    # A bucket cap of 10 over ~5 indexed rows per key: some buckets are oversized, most are not.
    rules = kind_rules(load_config(overrides={"candidates": {"local": {"max_bucket_size": 10}}}).candidates)
    rng = np.random.default_rng(9)
    n = 20000
    # Words and pHash bands, the bands carrying hashes from a few values: some meetings near, most far.
    kind = (rng.random(n) < 0.7).astype(np.int8)
    key = rng.integers(0, 3000, n) | (kind.astype(np.int64) << np.int64(62))
    # One hot word, longer than a run and than the first window a cut looks for its bucket's end in.
    hot = rng.random(n) < 0.3
    kind[hot], key[hot] = 1, np.int64(1) << np.int64(62) | np.int64(7777)
    media = rng.integers(0, 2**62, n)
    query, indexed = rng.random(n) < 0.6, rng.random(n) < 0.8
    ph = rng.integers(0, 2**62, 4)[rng.integers(0, 4, n)]
    whole = bucket_hits(key, media, query, indexed, kind, rules, ph, ph, 0.3)
    assert whole.kind.min() == 0 and whole.kind.max() == 1
    monkeypatch.setattr(candidate_stage, "_BUCKET_ROWS", 1500)       # about 14 runs
    flags = indexed.astype(np.uint8) | (query.astype(np.uint8) << 1) | (kind.astype(np.uint8) << 2)
    parts = candidate_stage._bucket_hits_in_parts(key, media, flags, rules, ph, ph, 0.3)
    summed = lambda h: set(zip(*(a.tolist() for a in count_pairs(h.x, h.y, h.kind, h.n))))  # noqa: E731
    assert summed(parts) == summed(whole) and len(summed(whole)) > 1000
    assert sorted(parts.over_key.tolist()) == sorted(whole.over_key.tolist()) and whole.over_key.size > 0


def test_key_groups_put_equal_keys_together_even_when_prefixes_clash():
    """Keys are grouped by a prefix of their hash; distinct keys that share a prefix (forced here
    with 6-bit prefixes) still end up in runs of their own."""
    from medialayer.spark.candidate_stage import key_groups

    rng = np.random.default_rng(4)
    key = rng.integers(-2**62, 2**62, 300)[rng.integers(0, 300, 20000)]
    for bits in (None, 6):
        order, grouped = key_groups(key, prefix_bits=bits)
        assert np.array_equal(np.sort(order), np.arange(key.size)) and np.array_equal(grouped, key[order])
        starts = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
        assert starts.size == np.unique(key).size          # one run per distinct key

