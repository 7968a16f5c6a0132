import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from medialayer.spark.manifest import ManifestError, read_manifest


def _write(tmp_path, rows, name="m.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_missing_required_column_is_named(spark, spark_cfg, tmp_path):
    path = _write(tmp_path, [{"listing_id": "a", "url": "x.jpg"}])
    with pytest.raises(ManifestError, match="media_url"):
        read_manifest(spark, path, spark_cfg)


def test_column_mapping_from_conf(spark, spark_cfg, tmp_path):
    path = _write(tmp_path, [{"id": "a", "url": "x.jpg", "seller": "s1"}])
    cfg = spark_cfg.with_overrides({"manifest": {"columns": {"listing_id": "id", "media_url": "url",
                                                             "seller_id": "seller"}}})
    row = read_manifest(spark, path, cfg).first()
    assert (row["listing_id"], row["media_url"], row["seller_id"], row["source"]) == ("a", "x.jpg", "s1", "listing")


def test_null_ids_and_urls_fail_fast(spark, spark_cfg, tmp_path):
    nulls = _write(tmp_path, [{"listing_id": None, "media_url": "x.jpg"}, {"listing_id": "b", "media_url": "y"}])
    with pytest.raises(ManifestError, match=r"listing_id.*1 of 2"):
        read_manifest(spark, nulls, spark_cfg)
    empty_url = _write(tmp_path, [{"listing_id": "a", "media_url": "  "}], "u.parquet")
    with pytest.raises(ManifestError, match="media_url"):
        read_manifest(spark, empty_url, spark_cfg)
    cfg = spark_cfg.with_overrides({"manifest": {"null_media_url": "error_row"}})
    assert read_manifest(spark, empty_url, cfg).first()["media_key"].startswith("missing:")


def test_unreadable_path_fails_with_the_path(spark, spark_cfg, tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(spark, str(tmp_path / "nope"), spark_cfg)
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ManifestError, match="bad.parquet"):
        read_manifest(spark, str(bad), spark_cfg)


def test_delta_manifest_reads_without_the_delta_jars(spark, spark_cfg, tmp_path):
    rows = [{"listing_id": f"l{i}", "media_url": f"/m/{i}.jpg", "category": "c" + str(i % 2)} for i in range(6)]
    table = str(tmp_path / "delta_manifest")
    write_deltalake(table, pa.Table.from_pylist(rows), partition_by=["category"])
    write_deltalake(table, pa.Table.from_pylist(rows[:2]), mode="overwrite", partition_by=["category"])
    df = read_manifest(spark, table, spark_cfg)
    got = sorted((r["listing_id"], r["category"]) for r in df.collect())
    assert got == [("l0", "c0"), ("l1", "c1")]     # the current snapshot only, with partition values
