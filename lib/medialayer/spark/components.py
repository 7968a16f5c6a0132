"""Connected components in Spark with the large-star / small-star iteration (Kiveris et al., 2014).

Each round rewires edges towards the smallest node id of the neighbourhood; when a round changes
nothing, every edge points from a node to its component's minimum. Rounds are O(log n) in practice,
each a couple of shuffles; the graph never reaches the driver (only two numbers per round do).
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


class ComponentsDidNotConverge(RuntimeError):
    pass


def _large_star(edges: DataFrame) -> DataFrame:
    both = edges.select("u", "v").union(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    mins = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    return (both.join(mins, "u").where(F.col("v") > F.col("u"))
            .select(F.col("v").alias("u"), F.col("m").alias("v")).distinct())


def _small_star(edges: DataFrame) -> DataFrame:
    oriented = edges.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v")).where(F.col("u") != F.col("v"))
    mins = oriented.groupBy("u").agg(F.min("v").alias("m"))
    joined = oriented.join(mins, "u")
    neighbours = joined.where(F.col("v") != F.col("m")).select(F.col("v").alias("u"), F.col("m").alias("v"))
    return neighbours.union(mins.select("u", F.col("m").alias("v"))).distinct()


def _signature(edges: DataFrame) -> tuple[int, int]:
    row = edges.agg(F.count(F.lit(1)).alias("n"),
                    F.coalesce(F.sum(F.xxhash64("u", "v").cast("decimal(38,0)")), F.lit(0)).alias("h")).first()
    return int(row["n"]), int(row["h"])


def _union_find(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:                 # path compression
            parent[x], x = root, parent[x]
        return root

    for u, v in edges:
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        ru, rv = find(u), find(v)
        if ru != rv:
            lo, hi = (ru, rv) if ru < rv else (rv, ru)
            parent[hi] = lo                      # the smaller id stays root: roots are component minima
    return [(node, find(node)) for node in parent]


def connected_components(edges: DataFrame, max_iterations: int, local_max_edges: int = 0) -> DataFrame:
    """`edges` (u, v) of string node ids -> (node, component) where component is the smallest
    node id in the node's component. Nodes appear only if they have at least one edge.

    A graph of at most `local_max_edges` edges (a few MB: small catalogs, nightly increments of
    small sellers, tests) is solved by union-find on the driver instead: the iteration's dozens
    of tiny Spark jobs cost far more than the graph. Same result either way (a test checks it)."""
    current = edges.select(F.col("u").cast("string"), F.col("v").cast("string")).where(F.col("u") != F.col("v"))
    current = current.localCheckpoint()
    if local_max_edges > 0:
        small = current.limit(local_max_edges + 1).collect()       # bounded by the limit, never the catalog
        if len(small) <= local_max_edges:
            pairs = _union_find([(r["u"], r["v"]) for r in small])
            schema = "node string, component string"
            return current.sparkSession.createDataFrame(pairs, schema) if pairs else \
                current.sparkSession.createDataFrame([], schema)
    signature = _signature(current)
    for round_no in range(1, max_iterations + 1):
        current = _small_star(_large_star(current)).localCheckpoint()
        new_signature = _signature(current)
        log.debug("components round %d: %d edges", round_no, new_signature[0])
        if new_signature == signature:
            log.info("connected components converged after %d round(s)", round_no)
            roots = current.select(F.col("v").alias("node"), F.col("v").alias("component")).distinct()
            return current.select(F.col("u").alias("node"), F.col("v").alias("component")).union(roots).distinct()
        signature = new_signature
    raise ComponentsDidNotConverge(
        f"connected components did not converge in {max_iterations} rounds (clustering.max_iterations)")
