"""sku_suggestions: clusters whose listings carry several SKUs suggest grouping those SKUs.

Brand reference listings are evidence, not catalog SKUs, so their SKUs are left out. A cluster that
spans more SKUs or brands than conf allows (`sku`), or that clustering flagged as oversized or loose,
is flagged instead of suggested: such groups are more often a chain or a shared stock image than
one product.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..config import Config
from .listing_stage import listing_attributes


def inner_edges(clusters: DataFrame, listing_matches: DataFrame) -> DataFrame:
    """listing_matches rows whose two listings are in the same cluster, with that cluster_id."""
    a = clusters.select(F.col("listing_id").alias("listing_id_a"), F.col("cluster_id"))
    b = clusters.select(F.col("listing_id").alias("listing_id_b"), F.col("cluster_id").alias("cluster_id_b"))
    return (listing_matches.join(a, "listing_id_a").join(b, "listing_id_b")
            .where(F.col("cluster_id") == F.col("cluster_id_b")).drop("cluster_id_b"))


def build_sku_suggestions(clusters: DataFrame, listing_media: DataFrame, listing_matches: DataFrame,
                          cfg: Config) -> DataFrame:
    s = cfg.sku
    attrs = listing_attributes(listing_media).where(F.coalesce(F.col("source"), F.lit("listing")) != "brand_reference")
    members = clusters.select("cluster_id", "listing_id", "is_representative", "flagged", "flag_reason").join(
        attrs.select("listing_id", "sku_id", "brand_id"), "listing_id")
    skus = members.where(F.col("sku_id").isNotNull())

    # Canonical SKU: the representative's, else the SKU most listings carry (ties: smallest id).
    counts = skus.groupBy("cluster_id", "sku_id").agg(F.count(F.lit(1)).alias("n"),
                                                       F.max(F.col("is_representative").cast("int")).alias("rep"))
    pick = Window.partitionBy("cluster_id").orderBy(F.desc("rep"), F.desc("n"), "sku_id")
    canonical = (counts.withColumn("r", F.row_number().over(pick)).where(F.col("r") == 1)
                 .select("cluster_id", F.col("sku_id").alias("canonical_sku_id")))

    groups = members.groupBy("cluster_id").agg(
        F.sort_array(F.collect_set("sku_id")).alias("sku_ids"),
        F.countDistinct("brand_id").alias("n_brands"),
        F.sort_array(F.collect_set("brand_id")).alias("brand_ids"),
        F.max(F.col("flagged").cast("int")).alias("cluster_flagged"),
        F.first("flag_reason", ignorenulls=True).alias("cluster_flag_reason"),
        F.count(F.lit(1)).alias("n_listings"))
    evidence = inner_edges(clusters, listing_matches).groupBy("cluster_id").agg(
        F.sum("matched_media").alias("evidence_matches"), F.avg("similarity").alias("mean_similarity"))

    n_skus = F.size("sku_ids")
    reason = (F.when(F.col("cluster_flagged") == 1, F.col("cluster_flag_reason"))
              .when(n_skus > s.max_skus, F.format_string(f"spans %d SKUs (sku.max_skus {s.max_skus})", n_skus))
              .when(F.col("n_brands") > s.max_brands,
                    F.concat(F.lit("spans brands "), F.array_join("brand_ids", ", "),
                             F.lit(f" (sku.max_brands {s.max_brands})"))))
    out = (groups.where(n_skus >= 2).join(canonical, "cluster_id", "left").join(evidence, "cluster_id", "left")
           .withColumn("flag_reason", reason))
    confidence = (F.when(F.col("flag_reason").isNotNull(), "low")
                  .when(F.col("mean_similarity") >= s.high_confidence_similarity, "high").otherwise("medium"))
    return out.select(
        "cluster_id", "canonical_sku_id", "sku_ids", n_skus.alias("n_skus"), "n_listings",
        F.coalesce("evidence_matches", F.lit(0)).cast("long").alias("evidence_matches"),
        F.round("mean_similarity", 4).alias("mean_similarity"), confidence.alias("confidence"),
        F.col("flag_reason").isNotNull().alias("flagged"), "flag_reason")
