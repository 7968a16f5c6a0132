from medialayer.spark.components import connected_components


def test_chains_and_stars_resolve_to_their_smallest_node(spark):
    edges = [("e", "d"), ("d", "c"), ("c", "b"), ("b", "a"), ("x", "z"), ("y", "z"), ("q", "p")]
    df = spark.createDataFrame(edges, "u string, v string")
    got = {r["node"]: r["component"] for r in connected_components(df, 20).collect()}
    assert got == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "a", "x": "x", "y": "x", "z": "x", "p": "p", "q": "p"}


def test_driver_union_find_agrees_with_the_spark_iteration(spark):
    """Small graphs take the union-find path; a random graph with chains, stars and self-loops gives
    the same components either way, and a graph over the limit still goes through Spark."""
    import random

    rng = random.Random(3)
    nodes = [f"n{i:03d}" for i in range(300)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(220)] + [("n001", "n001")]
    df = spark.createDataFrame(edges, "u string, v string")
    spark_path = {r["node"]: r["component"] for r in connected_components(df, 40, local_max_edges=0).collect()}
    local_path = {r["node"]: r["component"] for r in connected_components(df, 40, local_max_edges=10_000).collect()}
    assert local_path == spark_path and len(set(spark_path.values())) > 10
    over_limit = {r["node"]: r["component"] for r in connected_components(df, 40, local_max_edges=50).collect()}
    assert over_limit == spark_path
