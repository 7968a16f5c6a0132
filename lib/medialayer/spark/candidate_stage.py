"""Candidate stage: band keys -> (band, key) equi-join -> distinct media pairs. Never all-pairs.

The query side (new media) joins with its straight keys; the index side (all media) offers both
its straight and its mirrored keys, so a mirrored copy collides with its original in one join.
Buckets larger than candidates.max_bucket_size (near-blank images, logos) are skipped and counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..candidates import band_keys, band_positions
from ..config import Config
from ..fingerprints.bits import to_unsigned

KEY_SCHEMA = "media_key string, band_key long, mirrored boolean"


@dataclass(frozen=True)
class CandidateStats:
    candidates: int
    oversized_buckets: int
    skipped_memberships: int


def image_band_keys(fingerprints: DataFrame, cfg: Config) -> DataFrame:
    """One row per (media, band, orientation) for every ok image fingerprint."""
    positions = band_positions(cfg.candidates.image)
    n_bands = positions.shape[0]

    def explode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            keys = batch.column("media_key")
            for column, mirrored in (("phash", False), ("phash_mirror", True)):
                hashes = to_unsigned(batch.column(column).to_numpy(zero_copy_only=False))
                bk = band_keys(hashes, positions).ravel()
                owner = keys.take(pa.array(np.repeat(np.arange(batch.num_rows), n_bands)))
                yield pa.RecordBatch.from_arrays(
                    [owner, pa.array(bk), pa.array(np.full(bk.shape[0], mirrored))],
                    names=["media_key", "band_key", "mirrored"])

    ok_images = fingerprints.where((F.col("status") == "ok") & (F.col("media_type") == "image"))
    return ok_images.select("media_key", "phash", "phash_mirror").mapInArrow(explode, KEY_SCHEMA)


def candidate_pairs(index_keys: DataFrame, query_keys: DataFrame, cfg: Config) -> tuple[DataFrame, DataFrame]:
    """(pairs with media_key_a < media_key_b, per-bucket overflow report).

    `index_keys` are all media's keys, `query_keys` the new media's (the same frame on a full run).
    """
    cap = cfg.candidates.max_bucket_size
    sizes = index_keys.groupBy("band_key").agg(F.count(F.lit(1)).alias("bucket_size"))
    oversized = sizes.where(F.col("bucket_size") > cap)
    usable = index_keys.join(oversized.select("band_key"), "band_key", "left_anti")
    left = query_keys.where(~F.col("mirrored")).select("band_key", F.col("media_key").alias("q"))
    right = usable.select("band_key", F.col("media_key").alias("r"))
    joined = left.join(right, "band_key").where(F.col("q") != F.col("r"))
    pairs = joined.select(F.least("q", "r").alias("media_key_a"), F.greatest("q", "r").alias("media_key_b")).distinct()
    return pairs, oversized


def summarize_overflow(oversized: DataFrame) -> tuple[int, int]:
    row = oversized.agg(F.count(F.lit(1)).alias("n"), F.coalesce(F.sum("bucket_size"), F.lit(0)).alias("m")).first()
    return int(row["n"]), int(row["m"])
