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

    The full fingerprints are the run's widest rows (~17 KB; 17 GB at a million media): when the pairs
    are few, only those of media some pair names go past the one scan into a shuffle (`_with_sides`)."""
    ok = fingerprints.where(F.col("status") == "ok")
    few = _few_pairs(pairs, cfg)
    min_words = cfg.matching.image.local_min_words
    if "shared_words" in pairs.columns and min_words > 0:
        sure = pairs.where(F.col("shared_words") >= min_words).select("media_key_a", "media_key_b")
        doubtful = pairs.where(F.col("shared_words") < min_words).select("media_key_a", "media_key_b")
        pairs = sure.unionByName(_prefilter(doubtful, ok, cfg))
    joined = _with_sides(pairs, ok, SIDE_COLUMNS, few=few)
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
    most spark.verify_broadcast_pairs; then they are broadcast to one scan of the fingerprints (see
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


def _with_sides(pairs: DataFrame, ok: DataFrame, columns: tuple[str, ...], few: bool = False) -> DataFrame:
    """`pairs` with `columns` of both media beside them, suffixed _a and _b.

    `few` (the pairs are few beside the catalog): one scan of `ok`. The pairs, two rows each (one
    per side), are broadcast to it, so only the rows of media in some pair go on, once per pair
    that names them, and the pair's two rows meet by grouping on the pair: one shuffle of just
    those rows. Otherwise two joins, each shuffling the whole table (many pairs name most of it).

    The one scan replaced two (a broadcast join per side, each scanning the table; adaptive
    execution plans two renamed copies of one source as separate stages and reuses neither scan
    nor exchange, Spark 4.2). The same matches; at 100k synthetic media 20 s against 21
    (bench/verify_plans.py), at a million 225 s against 246 with the companion pairs' step
    (bench/bench_scale.py, one run after the other): the fingerprints are the run's widest rows
    (~17 KB; 17 GB at a million media), so a scan saved is the gain."""
    if not few:
        sides = ok.select(*columns)
        a = sides.select(*[F.col(c).alias(f"{c}_a") for c in columns])
        b = sides.select(*[F.col(c).alias(f"{c}_b") for c in columns])
        return pairs.join(a, "media_key_a").join(b, "media_key_b")
    ends = (pairs.select("media_key_a", "media_key_b", F.explode(F.array(F.lit(0), F.lit(1))).alias("side"))
            .withColumn("media_key", F.when(F.col("side") == 0, F.col("media_key_a")).otherwise(F.col("media_key_b"))))
    rest = [c for c in columns if c != "media_key"]
    packed = F.struct(*rest)
    both = (ok.select(*columns).join(F.broadcast(ends), "media_key")
            .groupBy("media_key_a", "media_key_b")
            .agg(F.first(F.when(F.col("side") == 0, packed), ignorenulls=True).alias("_a"),
                 F.first(F.when(F.col("side") == 1, packed), ignorenulls=True).alias("_b"))
            .where(F.col("_a").isNotNull() & F.col("_b").isNotNull()))    # a side that is not ok: no pair
    return both.select("media_key_a", "media_key_b", *[F.col(f"_{s}.{c}").alias(f"{c}_{s}") for s in "ab" for c in rest])
