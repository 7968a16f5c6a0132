"""The whole batch job: manifest -> fingerprints -> candidates -> media_matches -> clusters -> runs.

Each step is a stage function from spark/; this module only wires them, decides what is new, and
publishes the tables. A run builds on the tables as they were before its run date (see
warehouse.py), so it is incremental (media already fingerprinted with the current version are not
fetched again) and a rerun of the same date gives the same tables.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .config import Config
from .media import FINGERPRINT_VERSION
from .spark.candidate_stage import candidate_pairs, image_join_keys, summarize_overflow
from .spark.clusters import build_clusters
from .spark.fingerprint_stage import fingerprint_media, with_run_id
from .spark.manifest import read_manifest
from .spark.progress import progress
from .spark.verify_stage import verify_candidates
from .warehouse import Warehouse

log = logging.getLogger(__name__)

LISTING_COLUMNS = ("listing_id", "media_key", "media_url", "media_type", "seller_id", "sku_id", "brand_id",
                   "category", "source", "updated_at")


@dataclass
class RunSummary:
    run_id: str
    run_date: str
    warehouse: str
    rows_in: int = 0
    media_total: int = 0
    media_new: int = 0
    media_reused: int = 0
    media_fetched: int = 0
    media_errors: int = 0
    errors_by_code: dict = field(default_factory=dict)
    candidates: int = 0
    oversized_buckets: int = 0
    skipped_bucket_members: int = 0
    matches: int = 0
    clusters: int = 0
    clustered_listings: int = 0
    largest_clusters: list = field(default_factory=list)
    durations_s: dict = field(default_factory=dict)
    config_hash: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()), T.StructField("run_date", T.DateType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("rows_in", T.LongType()), T.StructField("media_total", T.LongType()),
    T.StructField("media_new", T.LongType()), T.StructField("media_fetched", T.LongType()),
    T.StructField("media_errors", T.LongType()), T.StructField("candidates", T.LongType()),
    T.StructField("oversized_buckets", T.LongType()), T.StructField("matches", T.LongType()),
    T.StructField("clusters", T.LongType()),
    T.StructField("errors_by_code", T.MapType(T.StringType(), T.LongType())),
    T.StructField("durations_s", T.MapType(T.StringType(), T.DoubleType())),
    T.StructField("config_hash", T.StringType()), T.StructField("fingerprint_version", T.StringType()),
])


@contextmanager
def _timed(summary: RunSummary, name: str) -> Iterator[None]:
    started = time.monotonic()
    log.info("stage %s ...", name)
    yield
    summary.durations_s[name] = round(time.monotonic() - started, 2)
    log.info("stage %s done in %.1fs", name, summary.durations_s[name])


def run_pipeline(spark: SparkSession, cfg: Config, manifest_path: str, warehouse_dir: str,
                 run_date: date | None = None) -> RunSummary:
    run_date = run_date or datetime.now(timezone.utc).date()
    run_id = run_date.isoformat()
    started = datetime.now(timezone.utc)
    wh = Warehouse(spark, warehouse_dir, cfg)
    summary = RunSummary(run_id=run_id, run_date=run_id, warehouse=str(wh.root), config_hash=cfg.config_hash)
    staging = wh.root / ".staging" / run_id

    with wh.lock():
        with _timed(summary, "manifest"):
            manifest = read_manifest(spark, manifest_path, cfg).select(*LISTING_COLUMNS).persist()
            summary.rows_in = manifest.count()
            listing_media = _merge_listing_media(wh.read_base("listing_media", run_id), manifest)

        with _timed(summary, "fingerprints"):
            fingerprints, new_keys = _fingerprint_new_media(spark, wh, cfg, run_id, manifest, listing_media,
                                                            staging, summary)

        with _timed(summary, "candidates"):
            index_keys = image_join_keys(fingerprints, cfg).persist()
            query_keys = index_keys.join(new_keys, "media_key", "left_semi")
            pairs, oversized = candidate_pairs(index_keys, query_keys, cfg)
            pairs = _stage_frame(spark, pairs, staging / "candidates")
            summary.candidates = pairs.count()
            summary.oversized_buckets, summary.skipped_bucket_members = summarize_overflow(oversized)
            index_keys.unpersist()

        with _timed(summary, "verify"), progress(spark.sparkContext, "verify"):
            new_matches = with_run_id(verify_candidates(pairs, fingerprints, cfg), run_id)
            matches = _merge_matches(wh.read_base("media_matches", run_id), new_matches, new_keys, fingerprints)
            matches = _stage_frame(spark, matches, staging / "media_matches")
            summary.matches = matches.where("match_found").count()

        with _timed(summary, "clusters"):
            clusters = build_clusters(listing_media, matches, fingerprints, cfg)
            clusters = _stage_frame(spark, clusters.withColumn("run_id", F.lit(run_id)), staging / "clusters")
            # Only eight member ids per cluster ever reach the driver, however large the cluster.
            sizes = (clusters.groupBy("cluster_id").agg(
                F.count(F.lit(1)).alias("size"),
                F.slice(F.sort_array(F.collect_list("listing_id")), 1, 8).alias("listings"))
                .orderBy(F.desc("size"), "cluster_id"))
            summary.clusters = sizes.count()
            summary.clustered_listings = clusters.count()
            summary.largest_clusters = [
                {"cluster_id": r["cluster_id"], "size": r["size"], "listings": r["listings"]}
                for r in sizes.limit(5).collect()]

        with _timed(summary, "publish"):
            runs = _runs_table(spark, wh.read_base("runs", run_id), summary, started)
            staged = {
                "fingerprints": wh.stage("fingerprints", run_id, fingerprints),
                "listing_media": wh.stage("listing_media", run_id, listing_media.withColumn("run_id", F.lit(run_id))),
                "media_matches": wh.stage("media_matches", run_id, matches),
                "clusters": wh.stage("clusters", run_id, clusters),
                "runs": wh.stage("runs", run_id, runs),
            }
            wh.publish(staged)
        manifest.unpersist()
        shutil.rmtree(staging, ignore_errors=True)
        if staging.parent.is_dir() and not any(staging.parent.iterdir()):
            staging.parent.rmdir()
    log.info("run %s finished: %s", run_id, json.dumps({k: v for k, v in summary.to_dict().items()
                                                        if k not in ("largest_clusters",)}))
    return summary


def _merge_listing_media(base: DataFrame | None, manifest: DataFrame) -> DataFrame:
    """The catalog's listing->media map: today's manifest replaces the rows of the listings it names."""
    today = manifest.dropDuplicates(["listing_id", "media_key"])
    if base is None:
        return today
    kept = base.select(*LISTING_COLUMNS).join(today.select("listing_id").distinct(), "listing_id", "left_anti")
    return kept.unionByName(today)


def _fingerprint_new_media(spark: SparkSession, wh: Warehouse, cfg: Config, run_id: str, manifest: DataFrame,
                           listing_media: DataFrame, staging, summary: RunSummary) -> tuple[DataFrame, DataFrame]:
    """Fetch only media not already fingerprinted ok with the current version; errors are retried."""
    media = manifest.select("media_key", "media_url", "media_type").dropDuplicates(["media_key"])
    base = wh.read_base("fingerprints", run_id)
    if base is not None:
        reusable = base.where((F.col("status") == "ok") & (F.col("fingerprint_version") == FINGERPRINT_VERSION))
        new_media = media.join(reusable.select("media_key"), "media_key", "left_anti")
    else:
        reusable = None
        new_media = media
    n_new = new_media.count()
    summary.media_new = n_new
    log.info("%d media to fetch (new, changed, previously failed or on an old fingerprint version)", n_new)
    with progress(spark.sparkContext, "fingerprint"):
        fresh = with_run_id(fingerprint_media(new_media, cfg, n_new), run_id)
        fresh = _stage_frame(spark, fresh, staging / "new_fingerprints")
    counts = fresh.groupBy("status", "error_code").count().collect()   # one row per code: small
    summary.media_fetched = n_new
    summary.media_errors = sum(r["count"] for r in counts if r["status"] == "error")
    summary.errors_by_code = {r["error_code"]: r["count"] for r in counts if r["status"] == "error"}

    # The index: every media the catalog still references, its newest fingerprint.
    catalog_keys = listing_media.select("media_key").distinct()
    if reusable is not None:
        kept = reusable.join(fresh.select("media_key"), "media_key", "left_anti")
        fingerprints = kept.select(*fresh.columns).unionByName(fresh)
    else:
        fingerprints = fresh
    fingerprints = fingerprints.join(catalog_keys, "media_key", "left_semi")
    fingerprints = _stage_frame(spark, fingerprints, staging / "fingerprints")
    summary.media_total = fingerprints.count()
    summary.media_reused = summary.media_total - n_new
    return fingerprints, fresh.select("media_key")


def _merge_matches(base: DataFrame | None, new_matches: DataFrame, new_keys: DataFrame,
                   fingerprints: DataFrame) -> DataFrame:
    """Previous matches stay unless either side was re-fingerprinted or left the catalog."""
    if base is None:
        return new_matches
    live = fingerprints.where(F.col("status") == "ok").select("media_key")
    kept = (base.join(new_keys.withColumnRenamed("media_key", "media_key_a"), "media_key_a", "left_anti")
            .join(new_keys.withColumnRenamed("media_key", "media_key_b"), "media_key_b", "left_anti")
            .join(live.withColumnRenamed("media_key", "media_key_a"), "media_key_a", "left_semi")
            .join(live.withColumnRenamed("media_key", "media_key_b"), "media_key_b", "left_semi"))
    return kept.select(*new_matches.columns).unionByName(new_matches)


def _runs_table(spark: SparkSession, base: DataFrame | None, s: RunSummary, started: datetime) -> DataFrame:
    row = (s.run_id, date.fromisoformat(s.run_date), started.replace(tzinfo=None), s.rows_in, s.media_total,
           s.media_new, s.media_fetched, s.media_errors, s.candidates, s.oversized_buckets, s.matches, s.clusters,
           {k: int(v) for k, v in s.errors_by_code.items()}, {k: float(v) for k, v in s.durations_s.items()},
           s.config_hash, FINGERPRINT_VERSION)
    current = spark.createDataFrame([row], RUNS_SCHEMA)
    if base is None:
        return current
    return base.where(F.col("run_id") != s.run_id).select(*RUNS_SCHEMA.fieldNames()).unionByName(current)


def _stage_frame(spark: SparkSession, df: DataFrame, path) -> DataFrame:
    """Materialise an intermediate result once (fetches and joins must not run twice) and read it back."""
    df.write.mode("overwrite").parquet(str(path))
    return spark.read.parquet(str(path))
