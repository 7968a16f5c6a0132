"""Reading and validating catalog manifests (Parquet or Delta) into the normalised column set."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..config import MANIFEST_FIELDS, REQUIRED_MANIFEST_FIELDS, Config
from .session import delta_connector_available

log = logging.getLogger(__name__)


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the path or column and what is wrong."""


def is_delta_table(path: str) -> bool:
    return Path(path, "_delta_log").is_dir()


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """A Parquet file/directory or a Delta table, by what is at `path`.

    Delta goes through the Spark connector when its jars are on the classpath; otherwise through
    `deltalake`, which lists the files of the current snapshot for Spark to read (Maven, and so
    `spark.jars.packages`, is not reachable everywhere this runs).
    """
    if not os.path.exists(path):
        raise ManifestError(f"manifest not found: {path}")
    try:
        if is_delta_table(path):
            return _read_delta(spark, path)
        return spark.read.parquet(path)
    except ManifestError:
        raise
    except Exception as exc:  # noqa: BLE001 - surface Spark's reason, but with the path in front
        raise ManifestError(f"cannot read manifest at {path}: {str(exc).splitlines()[0]}") from exc


def _read_delta(spark: SparkSession, path: str) -> DataFrame:
    if delta_connector_available(spark):
        return spark.read.format("delta").load(path)
    from deltalake import DeltaTable

    table = DeltaTable(path)
    protocol = table.protocol()
    if protocol.min_reader_version > 1:
        features = getattr(protocol, "reader_features", None) or []
        raise ManifestError(
            f"Delta table {path} needs reader features {features or protocol.min_reader_version} "
            "(deletion vectors or column mapping); put the Delta Spark connector on the classpath to read it")
    files = table.file_uris()
    schema = spark.createDataFrame([], _spark_schema_of(table)).schema
    if not files:
        return spark.createDataFrame([], schema)
    partition_cols = table.metadata().partition_columns
    if not partition_cols:
        return spark.read.schema(schema).parquet(*files)
    # Partition values live in the log, not in the files: read per partition and add them back.
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()   # arro3 -> pyarrow
    by_partition: dict[tuple, list[str]] = {}
    for i, rel in enumerate(actions["path"]):
        key = tuple(actions[f"partition.{c}"][i] for c in partition_cols)
        by_partition.setdefault(key, []).append(os.path.join(path, unquote(rel)))
    data_schema = [f for f in schema.fields if f.name not in partition_cols]
    from pyspark.sql.types import StructType

    frames = []
    for key, part_files in by_partition.items():
        df = spark.read.schema(StructType(data_schema)).parquet(*part_files)
        for col_name, value in zip(partition_cols, key):
            df = df.withColumn(col_name, F.lit(value).cast(schema[col_name].dataType))
        frames.append(df.select(*schema.fieldNames()))
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out


def _spark_schema_of(table):
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    arrow_schema = pa.schema(table.schema().to_arrow())
    return from_arrow_schema(arrow_schema)


def read_manifest(spark: SparkSession, path: str, cfg: Config) -> DataFrame:
    """Manifest rows with the normalised columns of DESIGN.md plus `media_key`; fails fast on a
    missing required column or null ids, naming the column."""
    raw = read_table(spark, path)
    return normalise_manifest(raw, cfg, source=path)


def normalise_manifest(raw: DataFrame, cfg: Config, source: str = "manifest") -> DataFrame:
    mapping = cfg.manifest.columns
    present = set(raw.columns)
    missing = [f"{field} (column {mapping[field]!r})" for field in REQUIRED_MANIFEST_FIELDS
               if mapping[field] not in present]
    if missing:
        raise ManifestError(f"{source}: required column(s) missing: {', '.join(missing)}; "
                            f"columns present: {sorted(present)}. Map names with manifest.columns in conf.")
    cols: list[Column] = []
    for field in MANIFEST_FIELDS:
        name = mapping[field]
        if name in present:
            col = F.col(f"`{name}`")
            cols.append((col.cast("timestamp") if field == "updated_at" else col.cast("string")).alias(field))
        else:
            default = F.lit("listing") if field == "source" else F.lit(None)
            cols.append(default.cast("timestamp" if field == "updated_at" else "string").alias(field))
    df = raw.select(*cols)
    url = F.regexp_replace(F.col("media_url"), r"^[ \t\r\n]+|[ \t\r\n]+$", "")
    df = df.withColumn("media_url", F.when(url == "", F.lit(None)).otherwise(url))
    df = df.withColumn("media_type", F.lower(F.trim("media_type")))
    df = df.withColumn("source", F.coalesce(F.lower(F.trim("source")), F.lit("listing")))

    counts = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("listing_id").isNull().cast("long")).alias("null_listing"),
        F.sum(F.col("media_url").isNull().cast("long")).alias("null_url"),
        F.sum((~F.col("media_type").isin("image", "video", "audio") & F.col("media_type").isNotNull()).cast("long")).alias("bad_type"),
        F.sum((~F.col("source").isin("listing", "brand_reference", "seller_history")).cast("long")).alias("bad_source"),
    ).first()
    if counts["rows"] == 0:
        raise ManifestError(f"{source}: the manifest has no rows")
    if counts["null_listing"]:
        raise ManifestError(f"{source}: column {mapping['listing_id']!r} (listing_id) is null in "
                            f"{counts['null_listing']} of {counts['rows']} rows")
    if counts["null_url"] and cfg.manifest.null_media_url == "fail":
        raise ManifestError(f"{source}: column {mapping['media_url']!r} (media_url) is null or empty in "
                            f"{counts['null_url']} of {counts['rows']} rows "
                            "(set manifest.null_media_url: error_row to report them as error rows instead)")
    if counts["bad_type"]:
        raise ManifestError(f"{source}: column {mapping['media_type']!r} (media_type) has {counts['bad_type']} "
                            "values other than image, video, audio")
    if counts["bad_source"]:
        raise ManifestError(f"{source}: column {mapping['source']!r} (source) has {counts['bad_source']} "
                            "values other than listing, brand_reference, seller_history")
    log.info("manifest %s: %d rows", source, counts["rows"])
    return df.withColumn("media_key", media_key_column(F.col("media_url"), F.col("listing_id")))


def media_key_column(url: Column, listing_id: Column) -> Column:
    """Same value as media.media_key(url); rows without a URL get a per-listing key so each is kept."""
    key = F.substring(F.sha2(url, 256), 1, 32)
    missing = F.concat(F.lit("missing:"), F.substring(F.sha2(listing_id, 256), 1, 24))
    return F.when(url.isNull(), missing).otherwise(key)


AUTHORIZATION_COLUMNS = ("brand_id", "seller_id")


def read_authorizations(spark: SparkSession, path: str) -> DataFrame:
    """Brand authorizations (brand_id, seller_id): which sellers may use a brand's reference media.
    Parquet, Delta or CSV with a header; fails fast naming a missing column."""
    if path.endswith(".csv"):
        if not os.path.exists(path):
            raise ManifestError(f"authorizations not found: {path}")
        raw = spark.read.option("header", True).csv(path)
    else:
        raw = read_table(spark, path)
    missing = [c for c in AUTHORIZATION_COLUMNS if c not in raw.columns]
    if missing:
        raise ManifestError(f"{path}: authorizations column(s) missing: {', '.join(missing)}; "
                            f"columns present: {sorted(raw.columns)}")
    return (raw.select(*[F.trim(F.col(c).cast("string")).alias(c) for c in AUTHORIZATION_COLUMNS])
            .where(F.col("brand_id").isNotNull() & F.col("seller_id").isNotNull()).dropDuplicates())
