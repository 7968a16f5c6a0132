"""Stable cluster ids across runs, and the record of merges and splits.

The rule. Let P be a cluster of the previous run, counting only its members still in the catalog,
and C a cluster of this run. C inherits P's id when C holds more than clustering.id_min_overlap
(default: half) of P's members. Because that share is over half, at most one new cluster can
inherit any old id. When several old clusters qualify for C (a merge), C takes the id of the one it
shares most members with (ties: the smaller id) and the others are recorded as merged into it. A
new cluster that inherits nothing gets a fresh id derived from the run and its smallest listing id,
so rerunning a date reproduces the same ids.

Review decisions keyed by cluster id therefore carry over while a cluster grows, loses a few
members or absorbs others; `cluster_events` tells a consumer where an id went when it did not.

cluster_events rows (this run's only; the table keeps the history):
    created      a new cluster with no members from any previous cluster
    changed      kept its id; members joined or left
    merged       kept its id and absorbed the clusters in related_cluster_ids
    split        a new id for members that came from the clusters in related_cluster_ids, whose ids
                 went elsewhere (or nowhere)
    merged_into  an old id absorbed by the cluster in related_cluster_ids
    retired      an old id no cluster inherits (its members left the catalog, or no longer match)
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..config import Config

EVENT_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()), T.StructField("cluster_id", T.StringType()),
    T.StructField("event", T.StringType()), T.StructField("related_cluster_ids", T.ArrayType(T.StringType())),
    T.StructField("cluster_size", T.IntegerType()),
])


def fresh_cluster_id(run_id: str, first_listing: F.Column) -> F.Column:
    return F.concat(F.lit("cl-"), F.substring(F.sha2(F.concat(F.lit(run_id + "|"), first_listing), 256), 1, 16))


def assign_stable_ids(members: DataFrame, previous: DataFrame | None, listing_media: DataFrame, run_id: str,
                      cfg: Config) -> tuple[DataFrame, DataFrame]:
    """members (listing_id, component) -> ((component, cluster_id), this run's cluster_events)."""
    sizes = members.groupBy("component").agg(F.count(F.lit(1)).alias("cluster_size"),
                                             F.min("listing_id").alias("first_listing"))
    if previous is None:
        ids = sizes.select("component", fresh_cluster_id(run_id, F.col("first_listing")).alias("cluster_id"))
        events = ids.join(sizes, "component").select(
            F.lit(run_id).alias("run_id"), "cluster_id", F.lit("created").alias("event"),
            F.array().cast("array<string>").alias("related_cluster_ids"), F.col("cluster_size").cast("int"))
        return ids, _typed(events)

    listed = listing_media.select("listing_id").distinct()
    prev = previous.select(F.col("cluster_id").alias("prev_id"), "listing_id").join(listed, "listing_id", "left_semi")
    prev_sizes = prev.groupBy("prev_id").agg(F.count(F.lit(1)).alias("prev_size"))
    overlap = (members.join(prev, "listing_id").groupBy("component", "prev_id").agg(F.count(F.lit(1)).alias("overlap"))
               .join(prev_sizes, "prev_id")).persist()      # read three times below
    qualifying = overlap.where(F.col("overlap") > F.col("prev_size") * cfg.clustering.id_min_overlap)
    heir_rank = Window.partitionBy("component").orderBy(F.desc("overlap"), "prev_id")
    heirs = (qualifying.withColumn("r", F.row_number().over(heir_rank))
             .groupBy("component").agg(
                 F.max(F.when(F.col("r") == 1, F.col("prev_id"))).alias("heir"),
                 F.sort_array(F.collect_list(F.when(F.col("r") > 1, F.col("prev_id")))).alias("absorbed")))
    contributors = overlap.groupBy("component").agg(F.sort_array(F.collect_set("prev_id")).alias("contributors"))
    # Did the inheriting cluster keep exactly the same members?
    same = (overlap.join(heirs, "component").where(F.col("prev_id") == F.col("heir"))
            .select("component", "overlap", "prev_size"))

    table = (sizes.join(heirs, "component", "left").join(contributors, "component", "left")
             .join(same, "component", "left"))
    table = table.withColumn("cluster_id", F.coalesce("heir", fresh_cluster_id(run_id, F.col("first_listing")))).persist()
    empty = F.array().cast("array<string>")
    event = (F.when(F.col("heir").isNull() & (F.coalesce(F.size("contributors"), F.lit(0)) == 0), "created")
             .when(F.col("heir").isNull(), "split")
             .when(F.size("absorbed") > 0, "merged")
             .when((F.col("overlap") != F.col("cluster_size")) | (F.col("overlap") != F.col("prev_size")), "changed"))
    related = (F.when(F.col("heir").isNull(), F.coalesce("contributors", empty))
               .when(F.size("absorbed") > 0, F.col("absorbed")).otherwise(empty))
    new_events = table.select(F.lit(run_id).alias("run_id"), "cluster_id", event.alias("event"),
                              related.alias("related_cluster_ids"), F.col("cluster_size").cast("int")
                              ).where(F.col("event").isNotNull())

    # Old ids nobody inherits.
    inherited = table.select(F.col("heir").alias("prev_id")).where(F.col("prev_id").isNotNull())
    absorbed_into = (table.select(F.explode("absorbed").alias("prev_id"), F.col("cluster_id").alias("into")))
    old_ids = previous.select(F.col("cluster_id").alias("prev_id")).distinct().join(inherited, "prev_id", "left_anti")
    gone = old_ids.join(absorbed_into, "prev_id", "left").select(
        F.lit(run_id).alias("run_id"), F.col("prev_id").alias("cluster_id"),
        F.when(F.col("into").isNotNull(), "merged_into").otherwise("retired").alias("event"),
        F.when(F.col("into").isNotNull(), F.array("into")).otherwise(empty).alias("related_cluster_ids"),
        F.lit(0).cast("int").alias("cluster_size"))
    events = new_events.unionByName(gone)
    return table.select("component", "cluster_id"), _typed(events)


def _typed(events: DataFrame) -> DataFrame:
    return events.select(*[F.col(f.name).cast(f.dataType) for f in EVENT_SCHEMA.fields])
