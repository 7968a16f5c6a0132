"""Fingerprint stage: media rows -> fingerprints rows, fetched and hashed inside Spark partitions."""
from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from ..config import Config
from ..fetching import Fetcher
from ..media import FINGERPRINT_SCHEMA, fingerprint_rows

log = logging.getLogger(__name__)

FINGERPRINT_SPARK_SCHEMA = from_arrow_schema(FINGERPRINT_SCHEMA)
# Media per partition when spreading fetches: small enough to balance, large enough to batch.
_ROWS_PER_PARTITION = 250


def fingerprint_media(media: DataFrame, cfg: Config, n_media: int) -> DataFrame:
    """`media` (media_key, media_url, media_type), one row per media_key -> FINGERPRINT_SCHEMA rows.

    Every input row comes out exactly once, as status ok or error: the per-item code never raises.
    """
    parallelism = media.sparkSession.sparkContext.defaultParallelism
    partitions = max(parallelism, min(4000, math.ceil(n_media / _ROWS_PER_PARTITION)))
    batch_rows = cfg.spark.fingerprint_batch_rows

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fetcher = Fetcher(cfg.fetch)
        with ThreadPoolExecutor(max_workers=cfg.fetch.concurrency) as pool:
            for batch in batches:
                for start in range(0, batch.num_rows, batch_rows):
                    part = batch.slice(start, batch_rows)
                    out = fingerprint_rows(part.column("media_url").to_pylist(),
                                           part.column("media_type").to_pylist(), cfg, fetcher, pool)
                    # Keep the manifest's key (rows without a URL have a per-listing key).
                    yield out.set_column(0, "media_key", part.column("media_key"))

    spread = media.select("media_key", "media_url", "media_type").repartition(partitions, "media_key")
    return spread.mapInArrow(run, FINGERPRINT_SPARK_SCHEMA)


def with_run_id(df: DataFrame, run_id: str) -> DataFrame:
    return df.withColumn("run_id", F.lit(run_id))
