"""Verify stage: candidate pairs + both sides' fingerprints -> media_matches rows with envelopes."""
from __future__ import annotations

import logging
from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from ..config import Config
from ..verification import MATCH_SCHEMA, PREFILTER_COLUMNS, SIDE_COLUMNS, global_prefilter, verify_batch

log = logging.getLogger(__name__)
MATCH_SPARK_SCHEMA = from_arrow_schema(MATCH_SCHEMA)
_VERIFY_BATCH = 4096


def verify_candidates(pairs: DataFrame, fingerprints: DataFrame, cfg: Config) -> DataFrame:
    """Every candidate pair is scored with the full fingerprints; pairs below
    matching.record_threshold are dropped, the rest kept with match_found set.

    When `pairs` carries shared_words, pairs with fewer than matching.image.local_min_words are first
    scored on their global hashes alone (a join of a few int64 columns, not of ~17 KB fingerprints)
    and only those reaching record_threshold go on.

    The full fingerprints are the run's widest rows (~15 KB; 15 GB at a million media): only those of
    media some pair names go past the scan into the joins' shuffles (see `_with_sides`)."""
    ok = fingerprints.where(F.col("status") == "ok")
    few = _few_pairs(pairs, cfg)
    min_words = cfg.matching.image.local_min_words
    if "shared_words" in pairs.columns and min_words > 0:
        sure = pairs.where(F.col("shared_words") >= min_words).select("media_key_a", "media_key_b")
        doubtful = pairs.where(F.col("shared_words") < min_words).select("media_key_a", "media_key_b")
        pairs = sure.unionByName(_prefilter(doubtful, ok, cfg))
    joined = _with_sides(pairs, ok, SIDE_COLUMNS, broadcast=few)
    ordered = joined.select(*[f"{c}_{s}" for s in "ab" for c in SIDE_COLUMNS])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for start in range(0, batch.num_rows, _VERIFY_BATCH):
                out = verify_batch(batch.slice(start, _VERIFY_BATCH), cfg)
                if out.num_rows:
                    yield out

    return ordered.mapInArrow(run, MATCH_SPARK_SCHEMA)


def companion_candidates(matches: DataFrame, pairs: DataFrame, cfg: Config,
                         new_keys: DataFrame | None = None) -> DataFrame:
    """(media_key_a < media_key_b) pairs of media that both match some third media with at most
    candidates.companion_max_degree matches, less those in `pairs` (already verified) and, when
    `new_keys` is given (an incremental run), less those of two old media. As
    `candidates.companion_pairs`, with joins: the matches (a few per media) never reach the driver."""
    cap = cfg.candidates.companion_max_degree
    spark = matches.sparkSession
    if cap < 2:
        return spark.createDataFrame([], "media_key_a string, media_key_b string")
    found = matches.where("match_found")
    edges = (found.select(F.col("media_key_a").alias("u"), F.col("media_key_b").alias("v"))
             .unionByName(found.select(F.col("media_key_b").alias("u"), F.col("media_key_a").alias("v")))
             .distinct())
    hubs = edges.groupBy("u").count().where((F.col("count") >= 2) & (F.col("count") <= cap)).select("u")
    spokes = edges.join(hubs, "u")
    # Each spoke says whether its far end is new, so the pairs are made (and filtered) once.
    if new_keys is None:
        spokes = spokes.withColumn("new", F.lit(True))
    else:
        fresh = new_keys.select(F.col("media_key").alias("v")).distinct().withColumn("new", F.lit(True))
        spokes = spokes.join(fresh, "v", "left").fillna(False, ["new"])
    x, y = spokes.alias("x"), spokes.alias("y")
    two = (x.join(y, F.col("x.u") == F.col("y.u"))
           .where((F.col("x.v") < F.col("y.v")) & (F.col("x.new") | F.col("y.new")))
           .select(F.col("x.v").alias("media_key_a"), F.col("y.v").alias("media_key_b")).distinct())
    return two.join(pairs.select("media_key_a", "media_key_b"), ["media_key_a", "media_key_b"], "left_anti")


def companion_matches(matches: DataFrame, pairs: DataFrame, fingerprints: DataFrame, cfg: Config,
                      new_keys: DataFrame | None = None) -> DataFrame:
    """The verified companion pairs (`companion_candidates`) of already verified `matches` (read them
    from where they were written: they are used twice), as `verify_candidates` rows."""
    companions = companion_candidates(matches, pairs, cfg, new_keys)
    return verify_candidates(companions, fingerprints, cfg)


def _prefilter(pairs: DataFrame, ok: DataFrame, cfg: Config) -> DataFrame:
    """The pairs whose global hashes alone reach record_threshold (and every pair with a video or audio side)."""
    joined = _with_sides(pairs, ok, PREFILTER_COLUMNS)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            keep = global_prefilter(batch, cfg)
            yield batch.select(["media_key_a", "media_key_b"]).filter(pa.array(keep))

    return joined.mapInArrow(run, "media_key_a string, media_key_b string")


def _few_pairs(pairs: DataFrame, cfg: Config) -> bool:
    """Whether the pairs as given (before the prefilter: an upper bound of those verified) are at
    most spark.verify_broadcast_pairs; then they, and the media they name, are broadcast (see
    `_with_sides`). The nightly job and the benchmark give staged pairs, so counting them is a
    scan of two columns."""
    limit = cfg.spark.verify_broadcast_pairs
    if limit <= 0:
        return False
    count = pairs.count()
    few = count <= limit
    log.info("verify: %d candidate pairs%s", count, "" if few else
             f" (over spark.verify_broadcast_pairs={limit}): every fingerprint goes through the joins' shuffles")
    return few


def _with_sides(pairs: DataFrame, ok: DataFrame, columns: tuple[str, ...], broadcast: bool = False) -> DataFrame:
    """`pairs` with `columns` of both media beside them, suffixed _a and _b.

    `broadcast` (the pairs are few beside the catalog): the names of the media in some pair are
    broadcast to the scan of `ok`, so only their rows go on, and the pairs are broadcast to the
    first join, so its side is never shuffled. Only the pairs with side a, and side b, are then
    shuffled for the second join. At a million synthetic media, 310k pairs named about half the
    table's bytes (bench/verify_plans.py).

    (Partitioning the sides by media_key once for both joins would save a shuffle too, but adaptive
    execution, on by default, plans the two renamed copies as separate stages and does not reuse the
    exchange: Spark 4.2, checked.)"""
    sides = ok.select(*columns)
    if broadcast:
        names = pairs.select(F.explode(F.array("media_key_a", "media_key_b")).alias("media_key")).distinct()
        sides = sides.join(F.broadcast(names), "media_key", "left_semi")
        pairs = F.broadcast(pairs)
    a = sides.select(*[F.col(c).alias(f"{c}_a") for c in columns])
    b = sides.select(*[F.col(c).alias(f"{c}_b") for c in columns])
    return pairs.join(a, "media_key_a").join(b, "media_key_b")
