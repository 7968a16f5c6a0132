"""Candidate stage: join keys -> (key) equi-join -> distinct media pairs. Never all-pairs.

Keys come from `candidates.image_keys`, the function the benchmarks and in-memory search use, so the
semantics are shared: frame/region pHash bands (one shared key is enough) and keypoint words
(candidates.local.min_shared distinct shared words needed). The query side (new media) joins with its
straight keys; the index side (all media) offers straight and mirrored keys, so a mirrored copy
collides with its original in one join. Buckets larger than candidates.max_bucket_size (near-blank
images, logos, common corner patterns) are skipped and counted.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..candidates import image_keys
from ..config import Config

KEY_SCHEMA = "media_key string, join_key long, query boolean, indexed boolean, word boolean"
_KEY_INPUT = ("media_key", "status", "media_type", "phash", "phash_mirror", "region_phash", "region_phash_mirror",
              "region", "kp_desc", "kp_desc_mirror", "kp_angle")


def image_join_keys(fingerprints: DataFrame, cfg: Config) -> DataFrame:
    """One row per (media, join key) for every ok image fingerprint."""
    cand_cfg = cfg.candidates

    def explode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            keys = image_keys(batch, cand_cfg)
            owner = batch.column("media_key").take(pa.array(keys.row))
            yield pa.RecordBatch.from_arrays(
                [owner, pa.array(keys.key), pa.array(keys.query), pa.array(keys.indexed), pa.array(keys.word)],
                names=["media_key", "join_key", "query", "indexed", "word"])

    ok_images = fingerprints.where((F.col("status") == "ok") & (F.col("media_type") == "image"))
    return ok_images.select(*_KEY_INPUT).mapInArrow(explode, KEY_SCHEMA)


def candidate_pairs(index_keys: DataFrame, query_keys: DataFrame, cfg: Config) -> tuple[DataFrame, DataFrame]:
    """(pairs with media_key_a < media_key_b, per-bucket overflow report).

    `index_keys` are all media's keys, `query_keys` the new media's (the same frame on a full run).
    """
    cap, word_cap = cfg.candidates.max_bucket_size, cfg.candidates.local.max_bucket_size
    index_keys = index_keys.where(F.col("indexed"))
    sizes = index_keys.groupBy("join_key").agg(F.countDistinct("media_key").alias("bucket_size"),
                                               F.first("word").alias("word"))
    oversized = sizes.where(F.col("bucket_size") > F.when(F.col("word"), F.lit(word_cap)).otherwise(F.lit(cap)))
    usable = index_keys.join(oversized.select("join_key"), "join_key", "left_anti")
    left = query_keys.where(F.col("query")).select("join_key", "word", F.col("media_key").alias("q"))
    right = usable.select("join_key", F.col("media_key").alias("r"))
    joined = left.join(right, "join_key").where(F.col("q") != F.col("r"))
    hits = joined.select(F.least("q", "r").alias("media_key_a"), F.greatest("q", "r").alias("media_key_b"),
                         "join_key", "word").distinct()
    counted = hits.groupBy("media_key_a", "media_key_b").agg(
        F.sum(F.when(~F.col("word"), 1).otherwise(0)).alias("bands"),
        F.sum(F.when(F.col("word"), 1).otherwise(0)).alias("words"))
    pairs = counted.where((F.col("bands") > 0) | (F.col("words") >= cfg.candidates.local.min_shared))
    return pairs.select("media_key_a", "media_key_b"), oversized


def summarize_overflow(oversized: DataFrame) -> tuple[int, int]:
    row = oversized.agg(F.count(F.lit(1)).alias("n"), F.coalesce(F.sum("bucket_size"), F.lit(0)).alias("m")).first()
    return int(row["n"]), int(row["m"])
