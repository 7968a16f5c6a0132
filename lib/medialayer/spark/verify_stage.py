"""Verify stage: candidate pairs + both sides' fingerprints -> media_matches rows with envelopes."""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from ..config import Config
from ..verification import MATCH_SCHEMA, SIDE_COLUMNS, verify_batch

MATCH_SPARK_SCHEMA = from_arrow_schema(MATCH_SCHEMA)
_VERIFY_BATCH = 4096


def verify_candidates(pairs: DataFrame, fingerprints: DataFrame, cfg: Config) -> DataFrame:
    """Every candidate pair is scored with the full fingerprints; pairs below
    matching.record_threshold are dropped, the rest kept with match_found set."""
    sides = fingerprints.where(F.col("status") == "ok").select(*SIDE_COLUMNS)
    a = sides.select(*[F.col(c).alias(f"{c}_a") for c in SIDE_COLUMNS])
    b = sides.select(*[F.col(c).alias(f"{c}_b") for c in SIDE_COLUMNS])
    joined = pairs.join(a, "media_key_a").join(b, "media_key_b")
    ordered = joined.select(*[f"{c}_{s}" for s in "ab" for c in SIDE_COLUMNS])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for start in range(0, batch.num_rows, _VERIFY_BATCH):
                out = verify_batch(batch.slice(start, _VERIFY_BATCH), cfg)
                if out.num_rows:
                    yield out

    return ordered.mapInArrow(run, MATCH_SPARK_SCHEMA)
