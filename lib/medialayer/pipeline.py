"""The whole batch job: manifest -> fingerprints -> candidates -> media_matches -> listing_matches
(decisions) -> clusters (+ cluster_events) -> sku_suggestions, review_queue -> runs.

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
from .errors import TRANSIENT_ERROR_CODES
from .spark.candidate_stage import candidate_pairs, media_ids, media_join_keys, summarize_overflow
from .spark.clusters import build_clusters
from .spark.fingerprint_stage import fingerprint_media, with_run_id
from .spark.listing_stage import build_listing_matches
from .spark.manifest import read_authorizations, read_manifest
from .spark.review_stage import build_review_queue
from .spark.sku_stage import build_sku_suggestions
from .spark.progress import progress
from .spark.verify_stage import companion_matches, verify_candidates
from .versions import fingerprint_versions, run_version
from .warehouse import RunOrderError, Warehouse

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
    listing_matches: int = 0
    decisions: dict = field(default_factory=dict)
    clusters: int = 0
    flagged_clusters: int = 0
    clustered_listings: int = 0
    cluster_events: dict = field(default_factory=dict)
    sku_suggestions: int = 0
    review_items: int = 0
    largest_clusters: list = field(default_factory=list)
    durations_s: dict = field(default_factory=dict)
    config_hash: str = ""
    fingerprint_version: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()), T.StructField("run_date", T.DateType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("rows_in", T.LongType()), T.StructField("media_total", T.LongType()),
    T.StructField("media_new", T.LongType()), T.StructField("media_fetched", T.LongType()),
    T.StructField("media_errors", T.LongType()), T.StructField("candidates", T.LongType()),
    T.StructField("oversized_buckets", T.LongType()), T.StructField("matches", T.LongType()),
    T.StructField("listing_matches", T.LongType()), T.StructField("clusters", T.LongType()),
    T.StructField("flagged_clusters", T.LongType()), T.StructField("sku_suggestions", T.LongType()),
    T.StructField("review_items", T.LongType()),
    T.StructField("errors_by_code", T.MapType(T.StringType(), T.LongType())),
    T.StructField("decisions", T.MapType(T.StringType(), T.LongType())),
    T.StructField("cluster_events", T.MapType(T.StringType(), T.LongType())),
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
                 run_date: date | None = None, authorizations_path: str | None = None) -> RunSummary:
    run_date = run_date or datetime.now(timezone.utc).date()
    run_id = run_date.isoformat()
    started = datetime.now(timezone.utc)
    wh = Warehouse(spark, warehouse_dir, cfg)
    summary = RunSummary(run_id=run_id, run_date=run_id, warehouse=str(wh.root), config_hash=cfg.config_hash,
                         fingerprint_version=run_version(cfg))
    staging = wh.root / ".staging" / run_id

    with wh.lock():
        latest = wh.latest_run_id()
        if latest is not None and latest > run_id:
            raise RunOrderError(
                f"run date {run_id} is older than the newest run in {wh.root} ({latest}): later runs were built "
                f"on the tables as they were, so {run_id} cannot be rerun in place; rerun the dates from "
                f"{run_id} in order into a new warehouse, or run {latest} or a later date")
        with _timed(summary, "manifest"):
            manifest = read_manifest(spark, manifest_path, cfg).select(*LISTING_COLUMNS).persist()
            summary.rows_in = manifest.count()
            listing_media = _merge_listing_media(wh.read_base("listing_media", run_id), manifest)

        with _timed(summary, "fingerprints"):
            fingerprints, fresh = _fingerprint_new_media(spark, wh, cfg, run_id, manifest, listing_media,
                                                         staging, summary)
            new_keys = fresh.select("media_key")

        with _timed(summary, "candidates"):
            # Every media offers its keys; only the new ones ask (new x all, new x new).
            keys = media_join_keys(fingerprints, cfg, new_keys, new_fingerprints=fresh)
            pairs, oversized, cached_keys = candidate_pairs(keys, media_ids(fingerprints), cfg)
            pairs = _stage_frame(spark, pairs, staging / "candidates")
            summary.candidates = pairs.count()
            summary.oversized_buckets, summary.skipped_bucket_members = summarize_overflow(oversized)
            cached_keys.unpersist()
            oversized.unpersist()

        with _timed(summary, "verify"), progress(spark.sparkContext, "verify"):
            new_matches = with_run_id(verify_candidates(pairs, fingerprints, cfg), run_id)
            matches = _merge_matches(wh.read_base("media_matches", run_id), new_matches, new_keys, fingerprints)
            matches = _stage_frame(spark, matches, staging / "media_matches_direct")
            # Media that match a common third one but did not meet in the join (two sellers' edits
            # of one photo), through the matches of every run so far; pairs with a new media only.
            companions = with_run_id(companion_matches(matches, pairs, fingerprints, cfg, new_keys), run_id)
            matches = _stage_frame(spark, matches.unionByName(companions.select(*matches.columns)),
                                   staging / "media_matches")
            summary.matches = matches.where("match_found").count()

        with _timed(summary, "decisions"):
            auth = read_authorizations(spark, authorizations_path) if authorizations_path else None
            listing_matches = build_listing_matches(listing_media, matches, auth, cfg)
            listing_matches = _stage_frame(spark, listing_matches, staging / "listing_matches")
            summary.listing_matches = listing_matches.count()
            summary.decisions = {r["decision"]: r["count"] for r in   # at most four rows
                                 listing_matches.groupBy("decision").count().collect()}

        with _timed(summary, "clusters"):
            clusters, events = build_clusters(listing_media, listing_matches, fingerprints,
                                              wh.read_base("clusters", run_id), run_id, cfg)
            clusters = _stage_frame(spark, clusters.withColumn("run_id", F.lit(run_id)), staging / "clusters")
            events = _stage_frame(spark, events, staging / "cluster_events")
            summary.cluster_events = {r["event"]: r["count"] for r in events.groupBy("event").count().collect()}
            # Only eight member ids per cluster ever reach the driver, however large the cluster.
            sizes = (clusters.groupBy("cluster_id").agg(
                F.count(F.lit(1)).alias("size"), F.max(F.col("flagged").cast("int")).alias("flagged"),
                F.slice(F.sort_array(F.collect_list("listing_id")), 1, 8).alias("listings"))
                .orderBy(F.desc("size"), "cluster_id"))
            summary.clusters = sizes.count()
            summary.flagged_clusters = sizes.where("flagged = 1").count()
            summary.clustered_listings = clusters.count()
            summary.largest_clusters = [
                {"cluster_id": r["cluster_id"], "size": r["size"], "listings": r["listings"]}
                for r in sizes.limit(5).collect()]

        with _timed(summary, "review"):
            sku = build_sku_suggestions(clusters, listing_media, listing_matches, cfg).withColumn(
                "run_id", F.lit(run_id))
            sku = _stage_frame(spark, sku, staging / "sku_suggestions")
            queue = build_review_queue(clusters, listing_media, listing_matches, sku, cfg).withColumn(
                "run_id", F.lit(run_id))
            queue = _stage_frame(spark, queue, staging / "review_queue")
            summary.sku_suggestions = sku.count()
            summary.review_items = queue.count()

        with _timed(summary, "publish"):
            runs = _runs_table(spark, wh.read_base("runs", run_id), summary, started)
            staged = {
                "fingerprints": wh.stage("fingerprints", run_id, fingerprints),
                "listing_media": wh.stage("listing_media", run_id, listing_media.withColumn("run_id", F.lit(run_id))),
                "media_matches": wh.stage("media_matches", run_id, matches),
                "listing_matches": wh.stage("listing_matches", run_id,
                                            listing_matches.withColumn("run_id", F.lit(run_id))),
                "clusters": wh.stage("clusters", run_id, clusters),
                "cluster_events": wh.stage("cluster_events", run_id,
                                           _with_history(wh.read_base("cluster_events", run_id), events, run_id)),
                "sku_suggestions": wh.stage("sku_suggestions", run_id, sku),
                "review_queue": wh.stage("review_queue", run_id, queue),
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
    """Fetch only what needs it (see `_media_to_fetch`); every other catalog media keeps its row."""
    catalog = listing_media.select("media_key", "media_url", "media_type").dropDuplicates(["media_key"])
    base = wh.read_base("fingerprints", run_id)
    if base is not None:
        base = base.join(catalog.select("media_key"), "media_key", "left_semi")   # still listed somewhere
    versions = fingerprint_versions(cfg)
    for media_type, version in versions.items():
        if "/" in version:
            log.warning("%s fingerprints use settings other than the defaults (version %s): %s rows made under "
                        "other settings are fetched again", media_type, version, media_type)
    to_fetch = _media_to_fetch(catalog, manifest, base, versions)
    n_new = to_fetch.count()
    summary.media_new = n_new
    log.info("%d media to fetch (new, changed, on an old fingerprint version, or failed and due a retry)", n_new)
    with progress(spark.sparkContext, "fingerprint"):
        fresh = with_run_id(fingerprint_media(to_fetch, cfg, n_new), run_id)
        fresh = _stage_frame(spark, fresh, staging / "new_fingerprints")
    counts = fresh.groupBy("status", "error_code").count().collect()   # one row per code: small
    summary.media_fetched = n_new
    summary.media_errors = sum(r["count"] for r in counts if r["status"] == "error")
    summary.errors_by_code = {r["error_code"]: r["count"] for r in counts if r["status"] == "error"}

    # The index: every media the catalog still references, its newest row (ok or error).
    if base is not None:
        # A warehouse written before a column existed gets it as nulls (schema evolution).
        for f in fresh.schema.fields:
            if f.name not in base.columns:
                base = base.withColumn(f.name, F.lit(None).cast(f.dataType))
        kept = base.join(fresh.select("media_key"), "media_key", "left_anti")
        fingerprints = kept.select(*fresh.columns).unionByName(fresh)
    else:
        fingerprints = fresh
    fingerprints = _stage_frame(spark, fingerprints, staging / "fingerprints")
    summary.media_total = fingerprints.count()
    summary.media_reused = summary.media_total - n_new
    return fingerprints, fresh


def _media_to_fetch(catalog: DataFrame, manifest: DataFrame, base: DataFrame | None,
                    versions: dict[str, str]) -> DataFrame:
    """Catalog media that need a fetch: never fingerprinted; fingerprinted with another version of its
    type than `versions` names (other code, or other fingerprint settings: `versions.fingerprint_versions`);
    named by today's manifest with an updated_at after its last fetch, or after a failure; or failed
    with a transient error (timeouts, connection errors, 5xx, 429), which are retried every run.
    Permanent failures (404, corrupt file) are retried only when a manifest names the media again."""
    if base is None:
        return catalog
    today = manifest.groupBy("media_key").agg(F.max("updated_at").alias("updated_at"))
    code = F.col("error_code")
    transient = code.isin(*TRANSIENT_ERROR_CODES) | code.rlike(r"^http_(5\d\d|429)$")
    prior = base.select("media_key", "status", "error_code", "fingerprint_version", "fetched_at",
                        F.col("media_type").alias("fp_media_type"))
    state = catalog.join(prior, "media_key", "left").join(today.withColumn("in_manifest", F.lit(True)),
                                                        "media_key", "left")
    in_manifest = F.coalesce(F.col("in_manifest"), F.lit(False))
    current = F.create_map(*[F.lit(x) for kv in versions.items() for x in kv])
    # Rows of another fingerprint version are redone: ok rows, and error rows of a media type the
    # old version could not handle (video and audio were `unsupported_type` before they had one).
    stale = F.col("fingerprint_version") != F.coalesce(current[F.col("fp_media_type")], F.col("fingerprint_version"))
    due = (F.col("status").isNull()
           | stale
           | ((F.col("status") == "error") & (transient | in_manifest))
           | (in_manifest & F.col("updated_at").isNotNull() & (F.col("updated_at") > F.col("fetched_at"))))
    return state.where(due).select("media_key", "media_url", "media_type")


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
           s.media_new, s.media_fetched, s.media_errors, s.candidates, s.oversized_buckets, s.matches,
           s.listing_matches, s.clusters, s.flagged_clusters, s.sku_suggestions, s.review_items,
           _counts(s.errors_by_code), _counts(s.decisions), _counts(s.cluster_events),
           {k: float(v) for k, v in s.durations_s.items()},
           s.config_hash, s.fingerprint_version)
    current = spark.createDataFrame([row], RUNS_SCHEMA)
    if base is None:
        return current
    # Rows of older releases lack newer columns: they read as null rather than failing the run.
    for f in RUNS_SCHEMA.fields:
        if f.name not in base.columns:
            base = base.withColumn(f.name, F.lit(None).cast(f.dataType))
    history = base.where(F.col("run_id") != s.run_id).select(*RUNS_SCHEMA.fieldNames()).unionByName(current)
    # One small file in run order, so readers that do not sort (pyarrow, pandas, notebooks) see history in order.
    return history.coalesce(1).sortWithinPartitions("run_id")


def _counts(d: dict) -> dict:
    return {str(k): int(v) for k, v in d.items()}


def _with_history(base: DataFrame | None, current: DataFrame, run_id: str) -> DataFrame:
    """A history table: earlier runs' rows plus this run's (a rerun replaces its own rows)."""
    if base is None:
        return current
    return base.where(F.col("run_id") < run_id).select(*current.columns).unionByName(current)


def _stage_frame(spark: SparkSession, df: DataFrame, path) -> DataFrame:
    """Materialise an intermediate result once (fetches and joins must not run twice) and read it back."""
    df.write.mode("overwrite").parquet(str(path))
    return spark.read.parquet(str(path))
