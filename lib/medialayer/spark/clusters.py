"""Clusters table: listings joined by strong listing matches, guarded against chaining.

Near-duplicate matching is not transitive: A~B and B~C does not make A~C, and a chain of weak links
can glue unrelated listings into one giant component. So:
  1. only listing pairs at or above clustering.min_similarity are edges;
  2. a component that is oversized (> max_cluster_size) or loose (cohesion, the share of its
     listing pairs that match directly, below min_cohesion for components of cohesion_min_size or
     more) is re-split using only edges at or above split_min_similarity;
  3. what is still oversized or loose after that is kept but flagged (flag_reason says why), so it
     reaches the review queue instead of an automatic SKU merge.
Cluster ids are stable across runs (cluster_ids.py).
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..config import Config
from .cluster_ids import assign_stable_ids
from .components import connected_components
from .listing_stage import listing_attributes

log = logging.getLogger(__name__)


def _judge(members: DataFrame, edges: DataFrame, cfg: Config) -> DataFrame:
    """(component, size, n_edges, cohesion, flag_reason) with flag_reason null for sound components."""
    c = cfg.clustering
    comp_of = members.select(F.col("listing_id").alias("u"), "component")
    sizes = members.groupBy("component").agg(F.count(F.lit(1)).alias("size"))
    inner = (edges.join(comp_of, "u")
             .join(members.select(F.col("listing_id").alias("v"), F.col("component").alias("component_v")), "v")
             .where(F.col("component") == F.col("component_v")))
    n_edges = inner.groupBy("component").agg(F.count(F.lit(1)).alias("n_edges"),
                                             F.min("similarity").alias("min_similarity"),
                                             F.max("similarity").alias("max_similarity"))
    judged = sizes.join(n_edges, "component", "left").fillna({"n_edges": 0})
    cohesion = F.col("n_edges") * 2.0 / (F.col("size") * (F.col("size") - 1))
    judged = judged.withColumn("cohesion", F.round(F.least(cohesion, F.lit(1.0)), 4))
    reason = (F.when(F.col("size") > c.max_cluster_size,
                     F.format_string(f"oversized: %d listings (clustering.max_cluster_size {c.max_cluster_size})",
                                     F.col("size")))
              .when((F.col("size") >= c.cohesion_min_size) & (F.col("cohesion") < c.min_cohesion),
                    F.format_string("low cohesion: %.0f%% of listing pairs match directly "
                                    f"(clustering.min_cohesion {c.min_cohesion * 100:.0f}%%)", F.col("cohesion") * 100)))
    return judged.withColumn("flag_reason", reason)


def cluster_members(listing_matches: DataFrame, cfg: Config) -> DataFrame:
    """(listing_id, component, size, cohesion, min_similarity, max_similarity, flag_reason) for every
    listing in a component of two or more, after the chaining guard."""
    c = cfg.clustering
    edges = (listing_matches.where(F.col("similarity") >= c.min_similarity)
             .select(F.col("listing_id_a").alias("u"), F.col("listing_id_b").alias("v"), "similarity")).persist()
    comps = connected_components(edges.select("u", "v"), c.max_iterations, c.local_max_edges)
    members = comps.select(F.col("node").alias("listing_id"), F.concat(F.lit("C:"), "component").alias("component"))
    judged = _judge(members, edges, cfg).persist()
    suspicious = judged.where(F.col("flag_reason").isNotNull()).select("component")
    n_suspicious = suspicious.count()
    if n_suspicious:
        log.info("re-splitting %d oversized or loose component(s) with edges >= %.2f", n_suspicious,
                 c.split_min_similarity)
        in_suspicious = members.join(suspicious, "component", "left_semi")
        strict = (edges.where(F.col("similarity") >= c.split_min_similarity)
                  .join(in_suspicious.select(F.col("listing_id").alias("u")), "u", "left_semi"))
        resplit = connected_components(strict.select("u", "v"), c.max_iterations, c.local_max_edges).select(
            F.col("node").alias("listing_id"), F.concat(F.lit("S:"), "component").alias("component"))
        members = members.join(suspicious, "component", "left_anti").unionByName(resplit)
        judged = _judge(members, edges, cfg)
    edges.unpersist()
    return members.join(judged, "component").where(F.col("size") >= 2)


def build_clusters(listing_media: DataFrame, listing_matches: DataFrame, fingerprints: DataFrame,
                   previous: DataFrame | None, run_id: str, cfg: Config) -> tuple[DataFrame, DataFrame]:
    """(clusters, cluster_events of this run). One clusters row per listing in a cluster."""
    members = cluster_members(listing_matches, cfg).persist()
    attrs = listing_attributes(listing_media)
    with_attrs = members.join(attrs, "listing_id", "left")
    stats = with_attrs.groupBy("component").agg(
        F.countDistinct("seller_id").alias("n_sellers"), F.countDistinct("sku_id").alias("n_skus"),
        F.countDistinct("brand_id").alias("n_brands"))

    # Representative: a brand reference if there is one, else the listing matched with most of
    # the cluster (the original is the hub its copies share; copies match each other less often),
    # then the largest media, then the earliest; ties by id so reruns agree.
    strong = listing_matches.where(F.col("similarity") >= cfg.clustering.min_similarity)
    degree = (strong.select(F.col("listing_id_a").alias("listing_id")).unionAll(
        strong.select(F.col("listing_id_b").alias("listing_id"))).groupBy("listing_id")
        .agg(F.count(F.lit(1)).alias("degree")))
    pixels = (listing_media.select("listing_id", "media_key")
              .join(fingerprints.where(F.col("status") == "ok")
                    .select("media_key", (F.col("width").cast("long") * F.col("height")).alias("pixels")), "media_key")
              .groupBy("listing_id").agg(F.max("pixels").alias("pixels")))
    order = Window.partitionBy("component").orderBy(
        F.desc((F.col("source") == "brand_reference").cast("int")), F.desc_nulls_last("degree"),
        F.desc_nulls_last("pixels"),
        F.asc_nulls_last("updated_at"), "listing_id")
    ranked = (with_attrs.join(pixels, "listing_id", "left").join(degree, "listing_id", "left")
              .withColumn("rank", F.row_number().over(order)))

    ids, events = assign_stable_ids(members.select("listing_id", "component"), previous, listing_media, run_id, cfg)
    clusters = (ranked.join(stats, "component").join(ids, "component").select(
        "cluster_id", "listing_id", (F.col("rank") == 1).alias("is_representative"),
        F.col("size").cast("int").alias("cluster_size"), F.col("n_sellers").cast("int"),
        F.col("n_skus").cast("int"), F.col("n_brands").cast("int"),
        F.round(F.coalesce("min_similarity", F.lit(1.0)), 4).alias("min_similarity"),
        F.round(F.coalesce("max_similarity", F.lit(1.0)), 4).alias("max_similarity"),
        "cohesion", F.col("flag_reason").isNotNull().alias("flagged"), "flag_reason"))
    return clusters, events
