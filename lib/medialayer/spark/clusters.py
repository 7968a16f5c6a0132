"""Clusters table: listings joined by strong media matches or by sharing the same media."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..config import Config
from .components import connected_components


def build_clusters(listing_media: DataFrame, matches: DataFrame, fingerprints: DataFrame, cfg: Config) -> DataFrame:
    """One row per listing that belongs to a cluster of two or more listings.

    The graph has a node per listing and per media; a listing links to each of its media, and media
    link to each other only through matches at or above clustering.min_similarity, so weak matches
    never chain unrelated listings together.
    """
    strong = matches.where(F.col("match_found") & (F.col("similarity") >= cfg.clustering.min_similarity))
    media_edges = strong.select(F.concat(F.lit("M:"), "media_key_a").alias("u"),
                                F.concat(F.lit("M:"), "media_key_b").alias("v"))
    # Only media that can connect two listings matter: matched media, or media shared by listings.
    matched = strong.select(F.col("media_key_a").alias("media_key")).union(strong.select("media_key_b"))
    shared = (listing_media.groupBy("media_key").agg(F.countDistinct("listing_id").alias("n"))
              .where(F.col("n") > 1).select("media_key"))
    relevant = matched.union(shared).distinct()
    links = listing_media.join(relevant, "media_key").select(
        F.concat(F.lit("L:"), "listing_id").alias("u"), F.concat(F.lit("M:"), "media_key").alias("v"))
    components = connected_components(media_edges.union(links), cfg.clustering.max_iterations)

    listing_comp = (components.where(F.col("node").startswith("L:"))
                    .select(F.expr("substring(node, 3)").alias("listing_id"), "component"))
    media_comp = (components.where(F.col("node").startswith("M:"))
                  .select(F.expr("substring(node, 3)").alias("media_key"), "component"))

    listings = listing_media.groupBy("listing_id").agg(F.first("seller_id", ignorenulls=True).alias("seller_id"),
                                                        F.first("sku_id", ignorenulls=True).alias("sku_id"))
    members = listing_comp.join(listings, "listing_id")
    stats = members.groupBy("component").agg(
        F.count(F.lit(1)).alias("cluster_size"),
        F.countDistinct("seller_id").alias("n_sellers"),
        F.countDistinct("sku_id").alias("n_skus"),
        F.min("listing_id").alias("first_listing"),
    ).where(F.col("cluster_size") >= 2)
    sims = (strong.join(media_comp.withColumnRenamed("media_key", "media_key_a"), "media_key_a")
            .groupBy("component").agg(F.min("similarity").alias("min_similarity"),
                                      F.max("similarity").alias("max_similarity")))

    # Representative: the listing whose media in the cluster has the most pixels (the likely original).
    pixels = (listing_media.join(media_comp, "media_key")
              .join(fingerprints.select("media_key", (F.col("width") * F.col("height")).alias("pixels")), "media_key")
              .groupBy("listing_id", "component").agg(F.max("pixels").alias("pixels")))
    ranked = members.join(pixels, ["listing_id", "component"], "left").withColumn(
        "rank", F.row_number().over(Window.partitionBy("component").orderBy(F.desc_nulls_last("pixels"), "listing_id")))

    shared_only = F.lit(1.0)  # clusters held together only by identical media have similarity 1
    return (ranked.join(stats, "component").join(sims, "component", "left")
            .select(F.concat(F.lit("cl-"), F.substring(F.sha2("first_listing", 256), 1, 16)).alias("cluster_id"),
                    "listing_id",
                    (F.col("rank") == 1).alias("is_representative"),
                    F.col("cluster_size").cast("int"), F.col("n_sellers").cast("int"), F.col("n_skus").cast("int"),
                    F.coalesce("min_similarity", shared_only).alias("min_similarity"),
                    F.coalesce("max_similarity", shared_only).alias("max_similarity")))
