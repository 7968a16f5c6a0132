"""Candidate stage: join keys -> (key) equi-join -> distinct media pairs. Never all-pairs.

Keys come from `candidates.media_keys`, the function the benchmarks and in-memory search use, so the
semantics are shared. Each key has a kind with its own rule (`candidates.kind_rules`): image pHash
bands (one shared key is enough), keypoint words (candidates.local.min_shared distinct words), frame
bands of videos and images (candidates.video.min_shared) and audio landmarks
(candidates.audio.min_shared). The query side (new media) joins with its straight keys and probes;
the index side (all media) offers straight and mirrored keys, so a mirrored copy collides with its
original in one join. Buckets larger than their kind's cap (near-blank images, logos, held tones)
are skipped and counted.
"""
from __future__ import annotations

import logging
from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..candidates import KIND_WORD, distinct_keys, kind_rules, media_keys
from ..config import Config

log = logging.getLogger(__name__)

KEY_SCHEMA = "media_key string, join_key long, query boolean, indexed boolean, kind tinyint"
_KEY_INPUT = ("media_key", "status", "media_type", "phash", "phash_mirror", "region_phash", "region_phash_mirror",
              "region", "kp_desc", "kp_desc_mirror", "kp_angle", "frame_times", "frame_hashes", "audio_peaks")


def media_join_keys(fingerprints: DataFrame, cfg: Config, image_frames: bool | None = None) -> DataFrame:
    """One row per (media, join key) for every ok fingerprint (image, video or audio).

    Images' frame keys serve only to meet videos; unless `image_frames` says otherwise they are
    made only when the fingerprints hold a video (one cheap `limit(1)` query)."""
    ok = fingerprints.where(F.col("status") == "ok")
    if image_frames is None:
        image_frames = bool(ok.where(F.col("media_type") == "video").limit(1).count())
        if not image_frames:
            log.info("no videos among the fingerprints: images' frame keys left out")

    def explode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            row, key, query, indexed, kind = distinct_keys(media_keys(batch, cfg, image_frames))
            owner = batch.column("media_key").take(pa.array(row))
            yield pa.RecordBatch.from_arrays(
                [owner, pa.array(key), pa.array(query), pa.array(indexed), pa.array(kind, type=pa.int8())],
                names=["media_key", "join_key", "query", "indexed", "kind"])

    return ok.select(*_KEY_INPUT).mapInArrow(explode, KEY_SCHEMA)


def candidate_pairs(index_keys: DataFrame, query_keys: DataFrame, cfg: Config) -> tuple[DataFrame, DataFrame]:
    """(pairs (media_key_a < media_key_b, shared_words), per-bucket overflow report).

    `index_keys` are all media's keys, `query_keys` the new media's (the same frame on a full run).
    """
    rules = kind_rules(cfg.candidates)
    index_keys = index_keys.where(F.col("indexed"))
    # A media's keys are distinct (media_join_keys), so a bucket's size is a plain count.
    sizes = index_keys.groupBy("join_key").agg(F.count(F.lit(1)).alias("bucket_size"),
                                               F.first("kind").alias("kind"))
    cap = F.lit(None)
    for kind, (_, limit) in rules.items():
        cap = F.when(F.col("kind") == kind, F.lit(limit)).otherwise(cap)
    # Kept: the join uses it and the run's summary counts it (a few rows even at scale).
    oversized = sizes.where(F.col("bucket_size") > cap).persist()
    usable = index_keys.join(oversized.select("join_key"), "join_key", "left_anti")
    left = query_keys.where(F.col("query")).select("join_key", "kind", F.col("media_key").alias("q"))
    right = usable.select("join_key", F.col("media_key").alias("r"))
    joined = left.join(right, "join_key").where(F.col("q") != F.col("r"))
    hits = joined.select(F.least("q", "r").alias("media_key_a"), F.greatest("q", "r").alias("media_key_b"),
                         "join_key", "kind").distinct()
    counted = hits.groupBy("media_key_a", "media_key_b").agg(
        *[F.sum(F.when(F.col("kind") == kind, 1).otherwise(0)).alias(f"k{kind}") for kind in rules])
    enough = F.lit(False)
    for kind, (needed, _) in rules.items():
        enough = enough | (F.col(f"k{kind}") >= needed)
    pairs = counted.where(enough)
    # Shared keypoint words travel with the pair: verification sends only pairs with some to
    # keypoint matching (matching.image.local_min_words).
    return pairs.select("media_key_a", "media_key_b", F.col(f"k{KIND_WORD}").alias("shared_words")), oversized


def summarize_overflow(oversized: DataFrame) -> tuple[int, int]:
    row = oversized.agg(F.count(F.lit(1)).alias("n"), F.coalesce(F.sum("bucket_size"), F.lit(0)).alias("m")).first()
    return int(row["n"]), int(row["m"])
