"""review_queue: one item per cluster or stray pair that needs a person, most urgent first.

A cluster is one item however many of its pairs need review: the reviewer resolves the group, not
forty rows. A listing that matches a cluster's member too weakly to be clustered joins that item
as a related listing (`related_listing_ids`, with its reasons). Pairs of unclustered listings, or
across two clusters, are items of their own. Priorities (1 = first):
    1 brand abuse: a block or review against a brand reference
    2 cross-seller copies (review between sellers, or against another seller's history)
    3 flagged clusters and SKU groups (oversized, loose, too many SKUs or brands)
    4 large clusters (review.large_cluster_size) and, when review.include_merges, merge suggestions
Item ids are stable while the cluster keeps its id (`cluster:<cluster_id>`, `pair:<a>|<b>`), so a
decision recorded against an item still applies on the next run.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..config import Config
from .listing_stage import listing_attributes
from .sku_stage import inner_edges

_SEVERITY = {"block": 0, "review": 1, "merge": 2}


def build_review_queue(clusters: DataFrame, listing_media: DataFrame, listing_matches: DataFrame,
                       sku_suggestions: DataFrame, cfg: Config) -> DataFrame:
    r = cfg.review
    edges = inner_edges(clusters, listing_matches)
    severity = F.coalesce(*[F.when(F.col("decision") == d, F.lit(v)) for d, v in _SEVERITY.items()], F.lit(9))
    is_brand = (F.col("relation") == "brand_reference") & F.col("decision").isin("block", "review")
    is_cross = F.col("relation").isin("cross_seller", "seller_history") & (F.col("decision") == "review")
    per_cluster = edges.groupBy("cluster_id").agg(
        F.max(is_brand.cast("int")).alias("brand_abuse"), F.max(is_cross.cast("int")).alias("cross"),
        F.max((F.col("decision") == "block").cast("int")).alias("blocks"),
        F.max((F.col("decision") == "merge").cast("int")).alias("merges"),
        F.max("similarity").alias("max_similarity"),
        F.collect_set(F.when(F.col("decision") != "approve", F.struct(severity.alias("s"), F.col("decision_reason")
                                                                      .alias("reason")))).alias("edge_reasons"))
    members = clusters.groupBy("cluster_id").agg(
        F.sort_array(F.collect_set("listing_id")).alias("listing_ids"),
        F.first("cluster_size").alias("n_listings"), F.max(F.col("flagged").cast("int")).alias("flagged"),
        F.first("flag_reason", ignorenulls=True).alias("flag_reason"))
    sellers = clusters.join(listing_attributes(listing_media), "listing_id").groupBy("cluster_id").agg(
        F.sort_array(F.collect_set("seller_id")).alias("seller_ids"))
    sku_flags = sku_suggestions.where("flagged").select("cluster_id", F.col("flag_reason").alias("sku_flag_reason"))

    # Pairs that need a person but are not inside one cluster. One whose other side is clustered
    # (a weak copy of a clustered listing) joins that cluster's item; the rest are items of their own.
    cl = clusters.select("listing_id", "cluster_id")
    stray = (listing_matches.where(F.col("decision").isin("block", "review"))
             .join(cl.withColumnRenamed("listing_id", "listing_id_a").withColumnRenamed("cluster_id", "ca"),
                   "listing_id_a", "left")
             .join(cl.withColumnRenamed("listing_id", "listing_id_b").withColumnRenamed("cluster_id", "cb"),
                   "listing_id_b", "left")
             .where(F.col("ca").isNull() | F.col("cb").isNull() | (F.col("ca") != F.col("cb")))).persist()
    one_sided = stray.where(F.col("ca").isNull() != F.col("cb").isNull())
    attached = one_sided.select(
        F.coalesce("ca", "cb").alias("cluster_id"),
        F.when(F.col("ca").isNull(), F.col("listing_id_a")).otherwise(F.col("listing_id_b")).alias("outside"),
        F.struct(severity.alias("s"), F.col("decision_reason").alias("reason")).alias("r"),
        is_brand.cast("int").alias("brand_abuse"), is_cross.cast("int").alias("cross"),
        (F.col("decision") == "block").cast("int").alias("blocks")).groupBy("cluster_id").agg(
        F.sort_array(F.collect_set("outside")).alias("related_listing_ids"),
        F.collect_set("r").alias("outside_reasons"), F.max("brand_abuse").alias("o_brand"),
        F.max("cross").alias("o_cross"), F.max("blocks").alias("o_blocks"))

    c = (members.join(per_cluster, "cluster_id", "left").join(sellers, "cluster_id", "left")
         .join(sku_flags, "cluster_id", "left").join(attached, "cluster_id", "left")
         .fillna(0, ["brand_abuse", "cross", "blocks", "merges", "o_brand", "o_cross", "o_blocks"])
         .withColumn("brand_abuse", F.greatest("brand_abuse", "o_brand"))
         .withColumn("cross", F.greatest("cross", "o_cross"))
         .withColumn("blocks", F.greatest("blocks", "o_blocks")))
    flagged = (F.col("flagged") == 1) | F.col("sku_flag_reason").isNotNull()
    large = F.col("n_listings") >= r.large_cluster_size
    merges = (F.col("merges") == 1) & F.lit(r.include_merges)
    needs = (F.col("brand_abuse") == 1) | (F.col("cross") == 1) | flagged | large | merges
    priority = (F.when(F.col("brand_abuse") == 1, 1).when(F.col("cross") == 1, 2).when(flagged, 3).otherwise(4))
    suggested = (F.when(F.col("blocks") == 1, "block")
                 .when((F.col("brand_abuse") == 1) | (F.col("cross") == 1) | flagged, "review")
                 .when(F.col("merges") == 1, "merge").otherwise("review"))
    no_reasons = F.array().cast("array<struct<s:int,reason:string>>")
    flag_reasons = F.filter(F.array(
        F.when(F.col("flag_reason").isNotNull(), F.concat(F.lit("cluster "), F.col("flag_reason"))),
        F.when(F.col("sku_flag_reason").isNotNull(), F.concat(F.lit("SKU group "), F.col("sku_flag_reason")))),
        lambda x: x.isNotNull())
    edge_reasons = F.transform(F.array_sort(F.concat(F.coalesce("edge_reasons", no_reasons),
                                                     F.coalesce("outside_reasons", no_reasons))),
                               lambda x: x["reason"])
    size_reason = F.filter(F.array(F.when(large & ~flagged, F.format_string("large cluster of %d listings",
                                                                            F.col("n_listings")))),
                           lambda x: x.isNotNull())
    reasons = F.slice(F.array_distinct(F.concat(flag_reasons, edge_reasons, size_reason)), 1, r.max_reasons)
    cluster_items = c.where(needs).select(
        F.concat(F.lit("cluster:"), "cluster_id").alias("item_id"), F.lit("cluster").alias("item_type"),
        "cluster_id", priority.alias("priority"), suggested.alias("suggested_decision"), reasons.alias("reasons"),
        "listing_ids", F.coalesce("related_listing_ids", F.array().cast("array<string>")).alias("related_listing_ids"),
        F.coalesce("seller_ids", F.array().cast("array<string>")).alias("seller_ids"),
        F.col("n_listings").cast("int"), F.round(F.coalesce("max_similarity", F.lit(1.0)), 4).alias("max_similarity"))

    pair_items = stray.where(~(F.col("ca").isNull() != F.col("cb").isNull())).select(
        F.concat(F.lit("pair:"), "listing_id_a", F.lit("|"), "listing_id_b").alias("item_id"),
        F.lit("pair").alias("item_type"), F.lit(None).cast("string").alias("cluster_id"),
        F.when(F.col("relation") == "brand_reference", 1).otherwise(2).alias("priority"),
        F.col("decision").alias("suggested_decision"), F.array("decision_reason").alias("reasons"),
        F.array("listing_id_a", "listing_id_b").alias("listing_ids"),
        F.array().cast("array<string>").alias("related_listing_ids"),
        F.array_sort(F.array_distinct(F.filter(F.array("seller_id_a", "seller_id_b"), lambda x: x.isNotNull())))
        .alias("seller_ids"),
        F.lit(2).alias("n_listings"), F.col("similarity").alias("max_similarity"))

    items = cluster_items.unionByName(pair_items)
    # rank: the item's place within its priority tier (work the queue by priority, then rank).
    order = Window.partitionBy("priority").orderBy(F.desc("n_listings"), F.desc("max_similarity"), "item_id")
    return items.withColumn("rank", F.row_number().over(order).cast("int")).select(
        "item_id", "item_type", "cluster_id", F.col("priority").cast("int"), "rank", "suggested_decision",
        "reasons", "listing_ids", "related_listing_ids", "seller_ids", "n_listings", "max_similarity")

