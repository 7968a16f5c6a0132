"""The whole job on a generated catalog of real photographs, on local Spark."""
from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

import medialayer
from medialayer.pipeline import run_pipeline
from medialayer.sample_catalog import build_sample_catalog

DAY1 = date(2026, 11, 1)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return build_sample_catalog(tmp_path_factory.mktemp("catalog"), n_groups=3, n_singletons=5, max_side=480)


@pytest.fixture(scope="module")
def run_cfg(spark_cfg, catalog):
    return spark_cfg.with_overrides({"fetch": {"local_roots": [str(catalog.media_dir)]}})


@pytest.fixture(scope="module")
def first_run(spark, run_cfg, catalog, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("wh")
    summary = run_pipeline(spark, run_cfg, str(catalog.manifest_path), str(warehouse), DAY1)
    return warehouse, summary


def _table(warehouse, name):
    return pq.read_table(warehouse / name).to_pandas()


def test_each_planted_group_becomes_one_cluster(first_run, catalog):
    warehouse, _ = first_run
    clusters = _table(warehouse, "clusters")
    by_cluster = clusters.groupby("cluster_id")["listing_id"].apply(set).tolist()
    for product, listings in catalog.groups.items():
        assert set(listings) in by_cluster, f"{product} was split or merged: {by_cluster}"
    assert len(by_cluster) == len(catalog.groups)


def test_unrelated_and_bad_listings_stay_out_of_clusters(first_run, catalog):
    warehouse, _ = first_run
    clustered = set(_table(warehouse, "clusters")["listing_id"])
    assert not clustered & set(catalog.singletons)
    assert not clustered & set(catalog.bad_listings)


def test_every_manifest_row_is_in_fingerprints_with_its_status(first_run, catalog):
    warehouse, summary = first_run
    fps = _table(warehouse, "fingerprints")
    manifest = pq.read_table(catalog.manifest_path).to_pandas()
    assert set(manifest["media_url"]) == set(fps["media_url"])
    assert fps["media_key"].is_unique                       # one row per media URL
    assert summary.rows_in == len(manifest)
    status = dict(zip(fps["media_url"], zip(fps["status"], fps["error_code"])))
    for lid, code in catalog.bad_listings.items():
        url = manifest.loc[manifest["listing_id"] == lid, "media_url"].iloc[0]
        assert status[url] == ("error", code)
    good = manifest[~manifest["listing_id"].isin(list(catalog.bad_listings))]
    assert all(status[u][0] == "ok" for u in good["media_url"])


def test_matches_carry_the_envelope_and_agree_with_pairwise_matching(first_run, catalog, run_cfg):
    warehouse, summary = first_run
    matches = _table(warehouse, "media_matches")
    assert summary.candidates >= len(matches) > 0
    assert (matches["media_key_a"] < matches["media_key_b"]).all()
    fps = _table(warehouse, "fingerprints").set_index("media_key")
    row = matches[matches["match_type"] == "mirrored"].iloc[0]
    direct = medialayer.match(fps.loc[row["media_key_a"], "media_url"], fps.loc[row["media_key_b"], "media_url"],
                              cfg=run_cfg)
    assert direct.to_dict()["similarity"] == round(row["similarity"], 4)
    assert direct.match_type == row["match_type"] and direct.reason == row["reason"]
    import json
    env = json.loads(row["envelope"])
    assert env["match_type"] == "mirrored" and env["matched_segments"] == []


def test_rerun_of_the_same_date_gives_the_same_tables(spark, run_cfg, catalog, first_run):
    warehouse, _ = first_run
    before = {t: _table(warehouse, t) for t in ("fingerprints", "media_matches", "clusters", "runs")}
    again = run_pipeline(spark, run_cfg, str(catalog.manifest_path), str(warehouse), DAY1)
    assert again.media_new == before["fingerprints"].shape[0]   # rebuilt from the state before DAY1
    for table, old in before.items():
        new = _table(warehouse, table)
        drop = [c for c in ("fetched_at", "started_at", "durations_s") if c in new.columns]
        key = {"fingerprints": ["media_key"], "media_matches": ["media_key_a", "media_key_b"],
               "clusters": ["listing_id"], "runs": ["run_id"]}[table]
        a = old.drop(columns=drop).sort_values(key).reset_index(drop=True)
        b = new.drop(columns=drop).sort_values(key).reset_index(drop=True)
        assert a.map(repr).equals(b.map(repr)), table   # repr: binary and list columns too


def test_next_day_fetches_nothing_already_fingerprinted(spark, run_cfg, catalog, first_run):
    warehouse, _ = first_run
    day2 = run_pipeline(spark, run_cfg, str(catalog.manifest_path), str(warehouse), date(2026, 11, 2))
    assert day2.media_new == len(catalog.bad_listings)     # only the failed ones are retried
    assert day2.clusters == len(catalog.groups)
    runs = _table(warehouse, "runs")
    assert sorted(runs["run_id"]) == ["2026-11-01", "2026-11-02"]
