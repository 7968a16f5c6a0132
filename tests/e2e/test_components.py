from medialayer.spark.components import connected_components


def test_chains_and_stars_resolve_to_their_smallest_node(spark):
    edges = [("e", "d"), ("d", "c"), ("c", "b"), ("b", "a"), ("x", "z"), ("y", "z"), ("q", "p")]
    df = spark.createDataFrame(edges, "u string, v string")
    got = {r["node"]: r["component"] for r in connected_components(df, 20).collect()}
    assert got == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "a", "x": "x", "y": "x", "z": "x", "p": "p", "q": "p"}
