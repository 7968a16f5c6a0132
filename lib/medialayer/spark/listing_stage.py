"""listing_matches: media matches mapped to pairs of listings, with their relation and a decision.

A pair of listings appears once (listing_id_a < listing_id_b), carrying its strongest media match
and the number of media pairs that matched. Listings that list the very same media URL are a pair
too (match_type exact). The decision rules are documented in conf/default.yaml (`decisions`).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ..config import Config

LISTING_ATTRS = ("seller_id", "sku_id", "brand_id", "source", "updated_at")

SHARED_MEDIA_REASON = "The same media file is listed by both listings"


def listing_attributes(listing_media: DataFrame) -> DataFrame:
    """One row per listing: its seller, SKU, brand, source and newest update time."""
    return listing_media.groupBy("listing_id").agg(
        F.first("seller_id", ignorenulls=True).alias("seller_id"),
        F.first("sku_id", ignorenulls=True).alias("sku_id"),
        F.first("brand_id", ignorenulls=True).alias("brand_id"),
        F.first("source", ignorenulls=True).alias("source"),
        F.max("updated_at").alias("updated_at"))


def _ranked_listing_media(listing_media: DataFrame) -> DataFrame:
    """(media_key, listing_id, rank, n): listings of each media, earliest first (the likely original)."""
    lm = listing_media.select("media_key", "listing_id", "updated_at").dropDuplicates(["media_key", "listing_id"])
    by_media = Window.partitionBy("media_key")
    return (lm.withColumn("rank", F.row_number().over(by_media.orderBy(F.asc_nulls_last("updated_at"), "listing_id")))
            .withColumn("n", F.count(F.lit(1)).over(by_media))
            .select("media_key", "listing_id", "rank", "n"))


def _media_pairs_to_listings(listing_media: DataFrame, matches: DataFrame, cfg: Config) -> DataFrame:
    """(listing_x, listing_y, media_key_x, media_key_y, similarity, confidence, match_type, match_reason)
    for every listing pair behind a matched media pair or a shared media file."""
    cap = cfg.decisions.max_listings_per_media
    ranked = _ranked_listing_media(listing_media).persist()
    # A hot media item (more than `cap` listings) speaks only through its earliest listing.
    eligible = ranked.where((F.col("n") <= cap) | (F.col("rank") == 1))
    found = matches.where(F.col("match_found")).select(
        "media_key_a", "media_key_b", "similarity", "confidence", "match_type", F.col("reason").alias("match_reason"))
    a = eligible.select(F.col("media_key").alias("media_key_a"), F.col("listing_id").alias("listing_x"))
    b = eligible.select(F.col("media_key").alias("media_key_b"), F.col("listing_id").alias("listing_y"))
    matched = (found.join(a, "media_key_a").join(b, "media_key_b")
               .select("listing_x", "listing_y", F.col("media_key_a").alias("media_key_x"),
                       F.col("media_key_b").alias("media_key_y"), "similarity", "confidence", "match_type",
                       "match_reason"))

    # Shared media: all pairs for ordinary media; a star around the earliest listing for hot ones.
    x = ranked.select("media_key", F.col("listing_id").alias("listing_x"), F.col("rank").alias("rank_x"), "n")
    y = ranked.select("media_key", F.col("listing_id").alias("listing_y"), F.col("rank").alias("rank_y"))
    ordinary = (x.where((F.col("n") > 1) & (F.col("n") <= cap)).join(y, "media_key")
                .where(F.col("listing_x") < F.col("listing_y")))
    hot = (x.where((F.col("n") > cap) & (F.col("rank_x") == 1)).join(y, "media_key")
           .where(F.col("rank_y") > 1))
    shared = ordinary.unionByName(hot).select(
        "listing_x", "listing_y", F.col("media_key").alias("media_key_x"), F.col("media_key").alias("media_key_y"),
        F.lit(1.0).alias("similarity"), F.lit("high").alias("confidence"), F.lit("exact").alias("match_type"),
        F.lit(SHARED_MEDIA_REASON).alias("match_reason"))
    return matched.unionByName(shared).where(F.col("listing_x") != F.col("listing_y"))


def build_listing_matches(listing_media: DataFrame, matches: DataFrame, authorizations: DataFrame | None,
                          cfg: Config) -> DataFrame:
    """One row per pair of listings sharing matched media, with relation, decision and reason."""
    pairs = _media_pairs_to_listings(listing_media, matches, cfg)
    swap = F.col("listing_x") > F.col("listing_y")
    ordered = pairs.select(
        F.when(swap, F.col("listing_y")).otherwise(F.col("listing_x")).alias("listing_id_a"),
        F.when(swap, F.col("listing_x")).otherwise(F.col("listing_y")).alias("listing_id_b"),
        F.when(swap, F.col("media_key_y")).otherwise(F.col("media_key_x")).alias("media_key_a"),
        F.when(swap, F.col("media_key_x")).otherwise(F.col("media_key_y")).alias("media_key_b"),
        "similarity", "confidence", "match_type", "match_reason")
    # The strongest media pair speaks for the listing pair; ties broken by keys so reruns agree.
    best = F.max(F.struct("similarity", F.col("media_key_a"), F.col("media_key_b"), "confidence", "match_type",
                          "match_reason"))
    per_pair = (ordered.groupBy("listing_id_a", "listing_id_b")
                .agg(best.alias("best"), F.countDistinct("media_key_a", "media_key_b").alias("matched_media"))
                .select("listing_id_a", "listing_id_b", "best.*", "matched_media"))

    attrs = listing_attributes(listing_media)
    side = lambda s: attrs.select(F.col("listing_id").alias(f"listing_id_{s}"),  # noqa: E731
                                  *[F.col(c).alias(f"{c}_{s}") for c in LISTING_ATTRS])
    rows = per_pair.join(side("a"), "listing_id_a").join(side("b"), "listing_id_b")
    rows = _with_relation(rows)
    rows = _with_authorization(rows, authorizations)
    decision, reason = _decision(cfg)
    return rows.withColumn("decision", decision).withColumn("decision_reason", reason).select(
        "listing_id_a", "listing_id_b", "seller_id_a", "seller_id_b", "sku_id_a", "sku_id_b", "brand_id_a",
        "brand_id_b", "source_a", "source_b", "relation", "decision", "decision_reason",
        F.round("similarity", 4).alias("similarity"), "confidence", "match_type", "match_reason",
        "matched_media", "media_key_a", "media_key_b", "authorized")


def _with_relation(rows: DataFrame) -> DataFrame:
    ref_a, ref_b = F.col("source_a") == "brand_reference", F.col("source_b") == "brand_reference"
    same_seller = F.col("seller_id_a").isNotNull() & (F.col("seller_id_a") == F.col("seller_id_b"))
    relation = (F.when(ref_a | ref_b, "brand_reference")
                .when((F.col("source_a") == "seller_history") | (F.col("source_b") == "seller_history"), "seller_history")
                .when(same_seller, "same_seller")
                .otherwise("cross_seller"))
    # For a brand reference pair: which side is the reference, which the (possible) copier.
    copier_is_b = ref_a & ~ref_b
    return (rows.withColumn("relation", relation)
            .withColumn("both_references", ref_a & ref_b)
            .withColumn("same_seller", F.coalesce(same_seller, F.lit(False)))
            .withColumn("ref_brand", F.when(copier_is_b, F.coalesce("brand_id_a", "brand_id_b"))
                        .otherwise(F.coalesce("brand_id_b", "brand_id_a")))
            .withColumn("ref_seller", F.when(copier_is_b, F.col("seller_id_a")).otherwise(F.col("seller_id_b")))
            .withColumn("copier_seller", F.when(copier_is_b, F.col("seller_id_b")).otherwise(F.col("seller_id_a")))
            .withColumn("copier_listing", F.when(copier_is_b, F.col("listing_id_b")).otherwise(F.col("listing_id_a"))))


def _with_authorization(rows: DataFrame, authorizations: DataFrame | None) -> DataFrame:
    """`authorized`: for brand_reference pairs, whether the copier may use the brand's media (listed in
    the authorizations table, or the reference's own seller); null for other relations."""
    is_ref = F.col("relation") == "brand_reference"
    if authorizations is None:
        listed = F.lit(False)
    else:
        auth = (authorizations.select(F.col("brand_id").alias("auth_brand"), F.col("seller_id").alias("auth_seller"))
                .dropDuplicates().withColumn("listed", F.lit(True)))
        rows = rows.join(F.broadcast(auth), (F.col("ref_brand") == F.col("auth_brand"))
                         & (F.col("copier_seller") == F.col("auth_seller")), "left")
        listed = F.coalesce(F.col("listed"), F.lit(False))
    own = F.col("ref_seller").isNotNull() & (F.col("ref_seller") == F.col("copier_seller"))
    return rows.withColumn("authorized", F.when(is_ref, listed | own))


def _decision(cfg: Config) -> tuple[Column, Column]:
    d = cfg.decisions
    sim = F.col("similarity")
    sim_txt = F.format_number(sim, 2)
    rel = F.col("relation")
    copier = F.coalesce(F.col("copier_seller"), F.lit("(unknown seller)"))
    brand = F.coalesce(F.col("ref_brand"), F.lit("(unknown brand)"))
    mergeable = F.col("match_type").isin(*d.merge_match_types) & (sim >= d.merge_min_similarity)

    rules = [
        (F.col("both_references"), "approve",
         F.lit("both listings are brand reference media")),
        ((rel == "brand_reference") & F.col("authorized"), "approve",
         F.concat(F.lit("seller "), copier, F.lit(" is authorized for brand "), brand)),
        ((rel == "brand_reference") & (sim >= d.brand_block_min_similarity), "block",
         F.concat(F.lit("seller "), copier, F.lit(" is not authorized for brand "), brand,
                  F.lit(" and listing "), F.col("copier_listing"), F.lit(" copies its reference media ("),
                  F.col("match_type"), F.lit(", similarity "), sim_txt, F.lit(")"))),
        ((rel == "brand_reference") & (sim >= d.brand_review_min_similarity), "review",
         F.concat(F.lit("listing "), F.col("copier_listing"), F.lit(" of seller "), copier,
                  F.lit(" (not authorized) resembles a reference of brand "), brand, F.lit(" ("),
                  F.col("match_type"), F.lit(", similarity "), sim_txt, F.lit(")"))),
        (rel == "brand_reference", "approve",
         F.concat(F.lit("weak resemblance to a reference of brand "), brand, F.lit(" (similarity "), sim_txt,
                  F.lit(")"))),
        ((rel == "same_seller") & mergeable, "merge",
         F.concat(F.lit("near-duplicate media within seller "), F.col("seller_id_a"), F.lit(" ("),
                  F.col("match_type"), F.lit(", similarity "), sim_txt, F.lit("): merge the listings"))),
        (rel == "same_seller", "approve",
         F.concat(F.lit("seller "), F.col("seller_id_a"), F.lit(" reuses its own media ("), F.col("match_type"),
                  F.lit(")"))),
        ((rel == "seller_history") & F.col("same_seller"), "approve",
         F.concat(F.lit("seller "), F.col("seller_id_a"), F.lit(" reuses media from its own history"))),
        (rel == "seller_history", "review",
         F.concat(F.lit("media match another seller's historical listing ("), F.col("match_type"),
                  F.lit(", similarity "), sim_txt, F.lit(")"))),
        (rel == "cross_seller", "review",
         F.concat(F.lit("cross-seller copy between "), F.coalesce("seller_id_a", F.lit("?")), F.lit(" and "),
                  F.coalesce("seller_id_b", F.lit("?")), F.lit(" ("), F.col("match_type"), F.lit(", similarity "),
                  sim_txt, F.lit(")"))),
    ]
    decision: Column | None = None
    reason: Column | None = None
    for cond, dec, why in rules:
        decision = F.when(cond, F.lit(dec)) if decision is None else decision.when(cond, F.lit(dec))
        reason = F.when(cond, why) if reason is None else reason.when(cond, why)
    return decision.otherwise(F.lit("approve")), reason.otherwise(F.lit("no rule applies"))
