"""The Spark verify stage against the one-process scoring of the same pairs (`pair_batch` +
`verify_batch`), whether the pairs are broadcast (few) or every fingerprint is shuffled (many)."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from medialayer.spark.verify_stage import verify_candidates
from medialayer.synth.edits import crop_heavy, mirror, recompress, screenshot
from medialayer.verification import pair_batch, verify_batch


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def test_spark_verify_equals_in_process_scoring_broadcast_or_not(spark, spark_cfg, photos, fingerprinted, tmp_path):
    rng = np.random.default_rng(3)
    images = []
    for img in photos[:3]:
        images += [img, crop_heavy(img, rng), mirror(img, rng), screenshot(img, rng), recompress(img, rng)]
    images += photos[3:7]                                   # named by no pair: never read past the scan
    table = fingerprinted(images, spark_cfg, "v")
    pq.write_table(table, tmp_path / "fps.parquet")
    fps = spark.read.parquet(str(tmp_path / "fps.parquet"))
    names = table.column("media_key").to_pylist()
    # Every pair within the first two photos' groups (copies and strangers alike), plus one
    # stranger pair across to the third group.
    ia, ib = np.triu_indices(10, 1)
    ia, ib = np.r_[ia, 2], np.r_[ib, 12]
    swap = np.array([names[i] > names[j] for i, j in zip(ia, ib)])    # the stage's order: key a < key b
    ia, ib = np.where(swap, ib, ia), np.where(swap, ia, ib)
    key_a, key_b = [names[i] for i in ia], [names[j] for j in ib]
    # And a pair naming a media with no fingerprint row: it is dropped, as an inner join would.
    pairs = spark.createDataFrame(list(zip(key_a, key_b)) + [(names[0], "~not-fingerprinted")],
                                  "media_key_a string, media_key_b string")

    want = {(r["media_key_a"], r["media_key_b"]): (r["match_found"], round(r["similarity"], 6))
            for r in verify_batch(pair_batch(table, ia, ib), spark_cfg).to_pylist()}
    assert sum(found for found, _ in want.values()) >= 16       # the copies within each group match

    def spark_rows(broadcast_pairs: int):
        cfg = spark_cfg.with_overrides({"spark": {"verify_broadcast_pairs": broadcast_pairs}})
        out = verify_candidates(pairs, fps, cfg)
        plan = _plan(out)
        got = {(r["media_key_a"], r["media_key_b"]): (r["match_found"], round(r["similarity"], 6))
               for r in out.collect()}                          # a few dozen rows
        return got, plan

    broadcast, plan = spark_rows(1000)
    assert broadcast == want
    assert plan.count("FileScan parquet") == 1                   # one scan for both sides
    for limit in (0, len(key_a)):                                # off, or more pairs than the limit
        shuffled, plan = spark_rows(limit)
        assert shuffled == want
        assert plan.count("FileScan parquet") == 2


def test_spark_companion_candidates_equal_the_in_memory_ones(spark, spark_cfg):
    from medialayer.candidates import companion_pairs
    from medialayer.spark.verify_stage import companion_candidates

    rng = np.random.default_rng(8)
    n = 60
    x, y = rng.integers(0, n, 150), rng.integers(0, n, 150)
    x, y = x[x != y], y[x != y]
    found = rng.random(x.size) < 0.8
    key = [f"m{i:03d}" for i in range(n)]                       # string order = id order
    matches = spark.createDataFrame([(key[min(i, j)], key[max(i, j)], bool(f)) for i, j, f in zip(x, y, found)],
                                    "media_key_a string, media_key_b string, match_found boolean")
    seen = np.flatnonzero(rng.random(x.size) < 0.5)
    pairs = spark.createDataFrame([(key[min(x[k], y[k])], key[max(x[k], y[k])]) for k in seen],
                                  "media_key_a string, media_key_b string")
    new = rng.random(n) < 0.3
    new_keys = spark.createDataFrame([(key[i],) for i in np.flatnonzero(new)], "media_key string")
    cfg = spark_cfg.with_overrides({"candidates": {"companion_max_degree": 6}})
    for fresh in (None, new_keys):
        got = {(r.media_key_a, r.media_key_b) for r in companion_candidates(matches, pairs, cfg, fresh).collect()}
        a, b = companion_pairs(x[found], y[found], 6, seen=(x[seen], y[seen]), new=None if fresh is None else new)
        want = {(key[i], key[j]) for i, j in zip(a.tolist(), b.tolist())}
        assert got == want and len(want) > 5
