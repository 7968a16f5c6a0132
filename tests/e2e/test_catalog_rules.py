"""The catalog layer's rules on small hand-made tables (local Spark, no media): decisions per
relation, the chaining guard, and stable cluster ids across runs."""
from __future__ import annotations

import pytest

from medialayer.spark.cluster_ids import assign_stable_ids
from medialayer.spark.clusters import cluster_members
from medialayer.spark.listing_stage import build_listing_matches

LM_COLS = "listing_id media_key media_url media_type seller_id sku_id brand_id category source updated_at".split()


def listing_media(spark, rows):
    """rows: (listing_id, media_key, seller_id, brand_id, source)"""
    data = [(lid, mk, f"file:///{mk}.jpg", "image", seller, f"sku-{lid}", brand, "home", source, None)
            for lid, mk, seller, brand, source in rows]
    return spark.createDataFrame(data, "listing_id string, media_key string, media_url string, media_type string, "
                                       "seller_id string, sku_id string, brand_id string, category string, "
                                       "source string, updated_at timestamp")


def media_matches(spark, rows):
    """rows: (media_key_a, media_key_b, similarity, match_type)"""
    data = [(a, b, True, "high" if s >= 0.9 else "medium", s, t, "image", f"{t} match", "[]", "test", "r")
            for a, b, s, t in rows]
    return spark.createDataFrame(data, "media_key_a string, media_key_b string, match_found boolean, "
                                       "confidence string, similarity double, match_type string, media_type string, "
                                       "reason string, envelope string, method string, run_id string")


def _decisions(df):
    return {(r["listing_id_a"], r["listing_id_b"]): r for r in df.collect()}


def test_decisions_follow_the_relation_rules(spark, spark_cfg):
    lm = listing_media(spark, [
        ("ref", "m_ref", "brand-official", "acme", "brand_reference"),
        ("auth", "m_auth", "s_auth", "acme", "listing"),
        ("thief", "m_thief", "s_thief", "acme", "listing"),
        ("weak", "m_weak", "s_weak", "acme", "listing"),
        ("mid", "m_mid", "s_mid", "acme", "listing"),
        ("own1", "m_own1", "s1", "b", "listing"),
        ("own2", "m_own2", "s1", "b", "listing"),
        ("own3", "m_own3", "s1", "b", "listing"),
        ("other", "m_other", "s2", "b", "listing"),
        ("hist", "m_hist", "s3", "b", "seller_history"),
        ("shared1", "m_shared", "s4", "c", "listing"),
        ("shared2", "m_shared", "s5", "c", "listing"),
    ])
    matches = media_matches(spark, [
        ("m_auth", "m_ref", 0.97, "near_duplicate"),
        ("m_ref", "m_thief", 0.95, "mirrored"),
        ("m_ref", "m_weak", 0.78, "edited_copy"),
        ("m_mid", "m_ref", 0.85, "partial_copy"),
        ("m_own1", "m_own2", 0.96, "near_duplicate"),
        ("m_own1", "m_own3", 0.80, "partial_copy"),
        ("m_other", "m_own1", 0.93, "edited_copy"),
        ("m_hist", "m_other", 0.91, "near_duplicate"),
    ])
    auth = spark.createDataFrame([("acme", "s_auth")], "brand_id string, seller_id string")
    d = _decisions(build_listing_matches(lm, matches, auth, spark_cfg))
    expect = {
        ("auth", "ref"): ("brand_reference", "approve"),
        ("ref", "thief"): ("brand_reference", "block"),
        ("ref", "weak"): ("brand_reference", "approve"),       # below brand_review_min_similarity
        ("mid", "ref"): ("brand_reference", "review"),
        ("own1", "own2"): ("same_seller", "merge"),
        ("own1", "own3"): ("same_seller", "approve"),           # an edit, not a near-duplicate
        ("other", "own1"): ("cross_seller", "review"),
        ("hist", "other"): ("seller_history", "review"),
        ("shared1", "shared2"): ("cross_seller", "review"),     # the same file on two sellers' listings
    }
    assert {k: (r["relation"], r["decision"]) for k, r in d.items()} == expect
    assert d[("auth", "ref")]["authorized"] is True and d[("ref", "thief")]["authorized"] is False
    assert d[("own1", "own3")]["authorized"] is None
    assert "s_thief" in d[("ref", "thief")]["decision_reason"] and "acme" in d[("ref", "thief")]["decision_reason"]
    assert d[("shared1", "shared2")]["match_type"] == "exact" and d[("shared1", "shared2")]["similarity"] == 1.0


def test_without_authorizations_every_strong_brand_copy_is_blocked(spark, spark_cfg):
    lm = listing_media(spark, [("ref", "m_ref", "brand-official", "acme", "brand_reference"),
                               ("x", "m_x", "s_x", "acme", "listing"),
                               ("y", "m_y", "brand-official", "acme", "listing")])
    matches = media_matches(spark, [("m_ref", "m_x", 0.95, "near_duplicate"), ("m_ref", "m_y", 0.95, "near_duplicate")])
    d = _decisions(build_listing_matches(lm, matches, None, spark_cfg))
    assert d[("ref", "x")]["decision"] == "block"
    assert d[("ref", "y")]["decision"] == "approve"       # the brand's own seller


def test_hot_media_pairs_with_its_earliest_listing_only(spark, spark_cfg):
    cfg = spark_cfg.with_overrides({"decisions": {"max_listings_per_media": 3}})
    lm = listing_media(spark, [(f"l{i}", "m_stock", f"s{i}", "b", "listing") for i in range(6)])
    rows = build_listing_matches(lm, media_matches(spark, []), None, cfg).collect()
    assert len(rows) == 5 and all("l0" in (r["listing_id_a"], r["listing_id_b"]) for r in rows)


def _edges(spark, rows):
    data = [(min(a, b), max(a, b), float(s)) for a, b, s in rows]
    return spark.createDataFrame(data, "listing_id_a string, listing_id_b string, similarity double")


def _clusters(members):
    out = {}
    for r in members.collect():
        out.setdefault(r["component"], set()).add(r["listing_id"])
    flags = {r["component"]: r["flag_reason"] for r in members.select("component", "flag_reason").distinct().collect()}
    return {frozenset(v): flags[k] for k, v in out.items()}


def test_weak_chain_does_not_glue_unrelated_listings(spark, spark_cfg):
    """A chain of links just above min_similarity (each an edit of the previous) joins 12 listings
    whose ends have nothing in common; it is split at split_min_similarity, so it dissolves, while a
    tight group next to it stays one unflagged cluster."""
    chain = [(f"c{i:02d}", f"c{i + 1:02d}", 0.85) for i in range(11)]
    tight = [(f"t{i}", f"t{j}", 0.97) for i in range(4) for j in range(i + 1, 4)]
    clusters = _clusters(cluster_members(_edges(spark, chain + tight), spark_cfg))
    assert clusters == {frozenset({"t0", "t1", "t2", "t3"}): None}


def test_strong_but_loose_chain_is_split_where_weak_and_flagged_where_not(spark, spark_cfg):
    """Two tight groups bridged by one 0.85 link split apart; a chain of strong links cannot be split
    by similarity, so it stays together but is flagged for review."""
    group_a = [(f"a{i}", f"a{j}", 0.95) for i in range(4) for j in range(i + 1, 4)]
    group_b = [(f"b{i}", f"b{j}", 0.95) for i in range(4) for j in range(i + 1, 4)]
    bridge = [("a3", "b0", 0.85)]
    strong_chain = [(f"s{i:02d}", f"s{i + 1:02d}", 0.95) for i in range(9)]
    clusters = _clusters(cluster_members(_edges(spark, group_a + group_b + bridge + strong_chain), spark_cfg))
    assert clusters[frozenset(f"a{i}" for i in range(4))] is None
    assert clusters[frozenset(f"b{i}" for i in range(4))] is None
    chain_flag = clusters[frozenset(f"s{i:02d}" for i in range(10))]
    assert chain_flag and chain_flag.startswith("low cohesion")
    assert len(clusters) == 3


def test_oversized_component_is_flagged(spark, spark_cfg):
    cfg = spark_cfg.with_overrides({"clustering": {"max_cluster_size": 5}})
    clique = [(f"k{i}", f"k{j}", 0.99) for i in range(7) for j in range(i + 1, 7)]
    clusters = _clusters(cluster_members(_edges(spark, clique), cfg))
    (flag,) = clusters.values()
    assert flag.startswith("oversized: 7 listings")


def _members(spark, groups: dict[str, list[str]]):
    return spark.createDataFrame([(lid, comp) for comp, ids in groups.items() for lid in ids],
                                 "listing_id string, component string")


def test_cluster_ids_survive_growth_merges_and_splits(spark, spark_cfg):
    previous = spark.createDataFrame(
        [(cid, lid) for cid, ids in {"A": [1, 2, 3, 4], "B": [5, 6, 7], "C": [8, 9], "D": [11, 12, 13, 14, 15, 16],
                                     "E": [20, 21], "F": [30, 31, 32]}.items() for lid in map(str, ids)],
        "cluster_id string, listing_id string")
    today = {"x": ["1", "2", "3", "4", "10"],          # A plus a new listing
             "y": ["5", "6", "7", "8", "9"],           # B and C merged
             "z": ["11", "12", "13", "14"],            # most of D
             "w": ["15", "16"],                        # the rest of D
             "v": ["30", "31", "32"],                  # F unchanged
             "u": ["40", "41"]}                        # new
    # Listing 20 left the catalog; 21 is still listed but no longer matches anything.
    listed = [str(i) for i in (1, 2, 3, 4, 10, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 21, 30, 31, 32, 40, 41)]
    lm = listing_media(spark, [(lid, f"m{lid}", "s", "b", "listing") for lid in listed])
    ids, events = assign_stable_ids(_members(spark, today), previous, lm, "2026-11-02", spark_cfg)
    got = {r["component"]: r["cluster_id"] for r in ids.collect()}
    assert got["x"] == "A" and got["y"] == "B" and got["z"] == "D" and got["v"] == "F"
    assert got["w"].startswith("cl-") and got["u"].startswith("cl-") and got["w"] != got["u"]
    ev = {(r["cluster_id"], r["event"]): sorted(r["related_cluster_ids"]) for r in events.collect()}
    assert ev == {("A", "changed"): [], ("B", "merged"): ["C"], ("D", "changed"): [],
                  (got["w"], "split"): ["D"], (got["u"], "created"): [],
                  ("C", "merged_into"): ["B"], ("E", "retired"): []}
    # Reproducible: the same inputs give the same fresh ids (a rerun of the date).
    again = {r["component"]: r["cluster_id"] for r in
             assign_stable_ids(_members(spark, today), previous, lm, "2026-11-02", spark_cfg)[0].collect()}
    assert again == got


def test_a_cluster_that_keeps_only_half_of_its_members_gets_a_new_id(spark, spark_cfg):
    previous = spark.createDataFrame([("A", str(i)) for i in range(1, 5)], "cluster_id string, listing_id string")
    lm = listing_media(spark, [(str(i), f"m{i}", "s", "b", "listing") for i in range(1, 7)])
    ids, events = assign_stable_ids(_members(spark, {"x": ["1", "2", "5", "6"]}), previous, lm, "r2", spark_cfg)
    (row,) = ids.collect()
    assert row["cluster_id"] != "A"
    assert {r["event"] for r in events.collect()} == {"split", "retired"}


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_unpublished_versions_are_invisible_and_reruns_replace(spark, spark_cfg, tmp_path, fmt):
    """A run that dies after writing but before publishing leaves the previous table readable; a rerun
    of the same date builds on the earlier date's version and replaces, not duplicates."""
    from medialayer.warehouse import Warehouse

    cfg = spark_cfg.with_overrides({"warehouse": {"format": fmt}})
    wh = Warehouse(spark, tmp_path / "wh", cfg)

    def frame(values):
        return spark.createDataFrame([(v,) for v in values], "x long")

    wh.publish({"runs": wh.stage("runs", "2026-11-01", frame([1, 2]))})
    wh.stage("runs", "2026-11-02", frame([99]))                  # the run dies here
    assert sorted(r["x"] for r in wh.read_current("runs").collect()) == [1, 2]
    assert sorted(r["x"] for r in wh.read_base("runs", "2026-11-02").collect()) == [1, 2]
    wh.publish({"runs": wh.stage("runs", "2026-11-02", frame([3]))})      # the rerun
    wh.publish({"runs": wh.stage("runs", "2026-11-02", frame([3]))})      # and again
    assert [r["x"] for r in wh.read_current("runs").collect()] == [3]
    assert sorted(r["x"] for r in wh.read_base("runs", "2026-11-02").collect()) == [1, 2]
    assert [v.run_id for v in wh.versions("runs")] == ["2026-11-01", "2026-11-02"]   # superseded ones pruned
    if fmt == "delta":
        from deltalake import DeltaTable
        assert DeltaTable(str(tmp_path / "wh" / "runs")).to_pyarrow_table().column("x").to_pylist() == [3]
        # The dead run's files and the superseded rerun's were vacuumed; one data directory per run stays.
        data_dirs = {p.parent.name for p in (tmp_path / "wh" / "runs").rglob("*.parquet")}
        assert sorted(d.split("__")[0] for d in data_dirs) == ["2026-11-01", "2026-11-02"]


def test_a_warehouse_refuses_the_other_format(spark, spark_cfg, tmp_path):
    from medialayer.config import ConfigError
    from medialayer.warehouse import Warehouse

    wh = Warehouse(spark, tmp_path, spark_cfg)
    wh.publish({"runs": wh.stage("runs", "2026-11-01", spark.createDataFrame([(1,)], "x long"))})
    with pytest.raises(ConfigError, match="table 'runs'.*parquet"):
        Warehouse(spark, tmp_path, spark_cfg.with_overrides({"warehouse": {"format": "delta"}}))


def test_an_older_run_date_is_refused_once_a_later_one_exists(spark, spark_cfg, tmp_path):
    from datetime import date

    from medialayer.pipeline import run_pipeline
    from medialayer.warehouse import RunOrderError, Warehouse

    wh = Warehouse(spark, tmp_path, spark_cfg)
    wh.publish({"runs": wh.stage("runs", "2026-11-05", spark.createDataFrame([(1,)], "x long"))})
    with pytest.raises(RunOrderError, match="2026-11-03 is older than the newest run .* \\(2026-11-05\\)"):
        run_pipeline(spark, spark_cfg, str(tmp_path / "no-manifest.parquet"), str(tmp_path), date(2026, 11, 3))
    assert not (tmp_path / ".lock").exists()


def test_rows_of_an_older_fingerprint_version_are_fetched_again(spark):
    """Video rows written before video fingerprints existed (error unsupported_type, image version)
    are redone; current rows of every type, and permanent errors of the current version, are not.
    Rows made under other fingerprint settings are redone as well: the settings are part of the
    version (`versions.fingerprint_versions`)."""
    from datetime import datetime

    from medialayer.config import load_config
    from medialayer.pipeline import _media_to_fetch
    from medialayer.versions import CODE_VERSIONS, fingerprint_versions

    old = datetime(2026, 1, 1)
    base = spark.createDataFrame([
        ("k-old-video", "error", "unsupported_type", "image-v2", old, "video"),
        ("k-image", "ok", None, CODE_VERSIONS["image"], old, "image"),
        ("k-video", "ok", None, CODE_VERSIONS["video"], old, "video"),
        ("k-audio-404", "error", "http_404", CODE_VERSIONS["audio"], old, "audio"),
        ("k-old-image", "ok", None, "image-v1", old, "image"),
    ], "media_key string, status string, error_code string, fingerprint_version string, fetched_at timestamp, "
       "media_type string")
    catalog = spark.createDataFrame([(k, f"http://x/{k}", None) for k in
                                     ("k-old-video", "k-image", "k-video", "k-audio-404", "k-old-image", "k-new")],
                                    "media_key string, media_url string, media_type string")
    manifest = spark.createDataFrame([], "media_key string, updated_at timestamp")
    defaults = fingerprint_versions(load_config())
    assert defaults == CODE_VERSIONS
    due = {r["media_key"] for r in _media_to_fetch(catalog, manifest, base, defaults).collect()}
    assert due == {"k-old-video", "k-old-image", "k-new"}
    # A smaller working frame for keypoints changes image rows and videos' keyframes, not audio rows.
    smaller = fingerprint_versions(load_config(overrides={"image": {"local": {"max_side": 360}}}))
    assert smaller["image"].startswith(CODE_VERSIONS["image"] + "/") and smaller["audio"] == CODE_VERSIONS["audio"]
    due = {r["media_key"] for r in _media_to_fetch(catalog, manifest, base, smaller).collect()}
    assert due == {"k-old-video", "k-old-image", "k-new", "k-image", "k-video"}
