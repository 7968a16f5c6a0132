"""Two consecutive nightly runs on local Spark, for a Parquet and a Delta warehouse.

Day one is the sample catalog (planted copy groups, a brand reference, bad rows). Day two's manifest
holds only new listings, as a nightly feed delivers them: copies that must join existing clusters
under the same ids, the brand reference copied by an unauthorized and by an authorized seller, and a
seller re-listing its own product.
"""
from __future__ import annotations

import collections
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from medialayer.pipeline import run_pipeline
from medialayer.sample_catalog import build_day_two, build_sample_catalog
from medialayer.warehouse import TABLES

DAY1, DAY2 = date(2026, 11, 1), date(2026, 11, 2)
VOLATILE = ("fetched_at", "started_at", "durations_s")
KEYS = {"fingerprints": ["media_key"], "listing_media": ["listing_id", "media_key"],
        "media_matches": ["media_key_a", "media_key_b"], "listing_matches": ["listing_id_a", "listing_id_b"],
        "clusters": ["listing_id"], "cluster_events": ["run_id", "cluster_id", "event"],
        "sku_suggestions": ["cluster_id"], "review_queue": ["item_id"], "runs": ["run_id"]}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    cat = build_sample_catalog(tmp_path_factory.mktemp("catalog2"), n_groups=3, n_singletons=3, max_side=480)
    return cat, build_day_two(cat, max_side=480)


def read_table(warehouse, name: str, fmt: str) -> pd.DataFrame:
    if fmt == "delta":
        from deltalake import DeltaTable
        return DeltaTable(str(warehouse / name)).to_pandas()
    return pq.read_table(warehouse / name).to_pandas()


@pytest.fixture(scope="module", params=["parquet", "delta"])
def two_days(request, spark, spark_cfg, catalog, tmp_path_factory):
    fmt = request.param
    cat, day2 = catalog
    cfg = spark_cfg.with_overrides({"fetch": {"local_roots": [str(cat.media_dir)]}, "warehouse": {"format": fmt}})
    if fmt == "delta":
        # Day two's new media are too large a share of this small catalog for the incremental key
        # schemes' defaults: switched on here, so that every day-two check also holds through them
        # (mirrored keys asked by the new media, offered keys filtered by the asked ones).
        cfg = cfg.with_overrides({"candidates": {"mirrors_asked_below": 1.0, "offered_filter": {"below": 1.0}}})
    warehouse = tmp_path_factory.mktemp(f"wh_{fmt}")
    auth = str(cat.authorizations_path)
    s1 = run_pipeline(spark, cfg, str(cat.manifest_path), str(warehouse), DAY1, auth)
    day1 = {t: read_table(warehouse, t, fmt) for t in TABLES}
    s2 = run_pipeline(spark, cfg, str(day2.manifest_path), str(warehouse), DAY2, auth)
    return {"fmt": fmt, "cfg": cfg, "warehouse": warehouse, "s1": s1, "s2": s2, "day1": day1, "auth": auth,
            "day2": {t: read_table(warehouse, t, fmt) for t in TABLES}}


def _pair(listing_matches: pd.DataFrame, x: str, y: str) -> pd.Series:
    a, b = sorted((x, y))
    rows = listing_matches[(listing_matches["listing_id_a"] == a) & (listing_matches["listing_id_b"] == b)]
    assert len(rows) == 1, f"expected one listing_matches row for {a} / {b}, got {len(rows)}"
    return rows.iloc[0]


def test_day_two_fetches_only_the_new_media(two_days, catalog):
    _, day2 = catalog
    s2 = two_days["s2"]
    assert s2.media_fetched == s2.media_new == len(day2.new_listings)
    fps = two_days["day2"]["fingerprints"]
    assert set(fps.loc[fps["run_id"] == DAY2.isoformat(), "media_url"]) == set(
        pq.read_table(day2.manifest_path).column("media_url").to_pylist())
    before = two_days["day1"]["fingerprints"].set_index("media_key")["run_id"]
    after = fps.set_index("media_key")["run_id"]
    assert (after.loc[before.index] == before).all()          # day-one rows kept, not re-fetched
    assert s2.media_total == s2.media_reused + s2.media_new


def test_new_copies_join_existing_clusters_under_the_same_ids(two_days, catalog):
    cat, day2 = catalog
    c1 = two_days["day1"]["clusters"].set_index("listing_id")["cluster_id"]
    c2 = two_days["day2"]["clusters"].set_index("listing_id")["cluster_id"]
    assert (c2.loc[c1.index] == c1).all(), "a day-one listing changed cluster id"
    for listing, product in day2.joins_group.items():
        original = f"L-{product}-orig"
        assert c2[listing] == c1[original], f"{listing} did not join the cluster of {product}"
    assert day2.unrelated not in c2.index
    events = two_days["day2"]["cluster_events"]
    today = events[events["run_id"] == DAY2.isoformat()]
    joined = {c1[f"L-{product}-orig"] for product in day2.joins_group.values()}
    assert set(today["event"]) == {"changed"} and set(today["cluster_id"]) == joined   # the video group is untouched


def test_brand_reference_copies_are_blocked_unless_the_seller_is_authorized(two_days, catalog):
    cat, day2 = catalog
    lm = two_days["day2"]["listing_matches"]
    ref = next(iter(cat.brand_references))
    blocked = _pair(lm, ref, day2.blocked)
    assert blocked["relation"] == "brand_reference" and blocked["decision"] == "block"
    assert not blocked["authorized"] and "not authorized" in blocked["decision_reason"]
    approved = _pair(lm, ref, day2.approved)
    assert approved["relation"] == "brand_reference" and approved["decision"] == "approve"
    assert approved["authorized"]
    # The unauthorized copier and the authorized seller also match each other: a cross-seller copy.
    between = _pair(lm, day2.blocked, day2.approved)
    assert between["relation"] == "cross_seller" and between["decision"] == "review"


def test_same_seller_duplicates_get_merge_suggestions(two_days, catalog):
    _, day2 = catalog
    merge = _pair(two_days["day2"]["listing_matches"], *day2.merge_pair)
    assert merge["relation"] == "same_seller" and merge["decision"] == "merge"
    assert merge["match_type"] in two_days["cfg"].decisions.merge_match_types


def test_review_queue_puts_brand_abuse_first_with_one_item_per_cluster(two_days, catalog):
    cat, day2 = catalog
    queue = two_days["day2"]["review_queue"]
    clusters = two_days["day2"]["clusters"].set_index("listing_id")["cluster_id"]
    brand_cluster = clusters[next(iter(cat.brand_references))]
    assert queue["cluster_id"].dropna().is_unique
    first = queue.sort_values(["priority", "rank"]).iloc[0]
    assert first["cluster_id"] == brand_cluster and first["priority"] == 1 and first["suggested_decision"] == "block"
    assert day2.blocked in set(first["listing_ids"])
    assert any("not authorized" in r for r in first["reasons"])
    # Cross-seller copy clusters follow at priority 2.
    others = queue[queue["cluster_id"] != brand_cluster]
    assert len(others) and (others["priority"] >= 2).all()


def test_sku_suggestions_name_a_canonical_sku_per_multi_sku_cluster(two_days):
    sku = two_days["day2"]["sku_suggestions"]
    clusters = two_days["day2"]["clusters"]
    assert set(sku["cluster_id"]) == set(clusters.loc[clusters["n_skus"] >= 2, "cluster_id"])
    for _, row in sku.iterrows():
        assert row["canonical_sku_id"] in set(row["sku_ids"]) and row["n_skus"] == len(row["sku_ids"]) >= 2
        assert row["evidence_matches"] > 0 and 0 < row["mean_similarity"] <= 1


def test_runs_table_records_both_days(two_days, catalog):
    runs = two_days["day2"]["runs"].sort_values("run_id")
    assert list(runs["run_id"]) == [DAY1.isoformat(), DAY2.isoformat()]
    day1, day2 = runs.iloc[0], runs.iloc[1]
    expected = collections.Counter(catalog[0].bad_listings.values())     # 3 bad images, 2 bad videos
    assert day1["media_errors"] == 5 and dict(day1["errors_by_code"]) == dict(expected)
    assert dict(expected) == {"decode_error": 2, "not_found": 1, "unsupported_type": 1, "no_video_stream": 1}
    assert day2["media_fetched"] == len(catalog[1].new_listings) and day2["media_errors"] == 0
    assert dict(day2["decisions"])["block"] >= 1 and dict(day2["decisions"])["merge"] >= 1
    assert set(dict(day2["durations_s"])) >= {"fingerprints", "candidates", "verify", "decisions", "clusters"}


def test_rerunning_day_two_changes_nothing(two_days, spark, catalog):
    cat, day2 = catalog
    fmt, warehouse = two_days["fmt"], two_days["warehouse"]
    run_pipeline(spark, two_days["cfg"], str(day2.manifest_path), str(warehouse), DAY2, two_days["auth"])
    for table in TABLES:
        old, new = two_days["day2"][table], read_table(warehouse, table, fmt)
        drop = [c for c in VOLATILE if c in new.columns]
        a = old.drop(columns=drop).sort_values(KEYS[table]).reset_index(drop=True)
        b = new.drop(columns=drop).sort_values(KEYS[table]).reset_index(drop=True)
        assert len(a) == len(b), f"{table}: {len(a)} rows before the rerun, {len(b)} after"
        assert a.map(repr).equals(b.map(repr)), table


def test_tables_read_back_with_other_readers(two_days):
    """Delta: delta-rs reads every table, at reader version 1, and time-travels to day one.
    Parquet: plain pyarrow reads every table through its published link; nothing Delta is left."""
    warehouse = two_days["warehouse"]
    if two_days["fmt"] == "parquet":
        for table in TABLES:
            assert not (warehouse / table / "_delta_log").exists()
            assert pq.read_table(warehouse / table).num_rows == len(two_days["day2"][table])
        return
    from deltalake import DeltaTable

    for table in TABLES:
        dt = DeltaTable(str(warehouse / table))
        assert dt.protocol().min_reader_version == 1          # readable by any Delta reader
        assert dt.to_pyarrow_table().num_rows == len(two_days["day2"][table])
    clusters = DeltaTable(str(warehouse / "clusters"), version=0).to_pandas()
    assert set(clusters["listing_id"]) == set(two_days["day1"]["clusters"]["listing_id"])


def test_every_pair_needing_a_person_is_in_exactly_one_queue_item(two_days):
    lm = two_days["day2"]["listing_matches"]
    queue = two_days["day2"]["review_queue"]
    covered = {}
    for item in queue.itertuples():
        for lid in list(item.listing_ids) + list(item.related_listing_ids):
            covered.setdefault(lid, set()).add(item.item_id)
    needs = lm[lm["decision"].isin(["block", "review"])]
    assert len(needs)
    for row in needs.itertuples():
        shared = covered.get(row.listing_id_a, set()) & covered.get(row.listing_id_b, set())
        assert len(shared) == 1, f"{row.listing_id_a} / {row.listing_id_b} ({row.decision}) is in {len(shared)} items"
