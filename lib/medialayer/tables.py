"""Reading a warehouse's tables without Spark (pyarrow / delta-rs): for the API, the report and notebooks."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa


def table_path(root: str | Path, name: str) -> Path:
    path = Path(root) / name
    if not path.exists():
        raise FileNotFoundError(f"table {name!r} does not exist in warehouse {root}: run the pipeline first")
    return path


def is_delta(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def scan_table(root: str | Path, name: str, columns: list[str] | None = None,
               batch_size: int = 4096, where=None) -> Iterator[pa.RecordBatch]:
    """The current version of table `name`, batch by batch: for tables too large to hold at once.
    `where` (a pyarrow.dataset expression) skips row groups whose statistics rule them out."""
    yield from _dataset(root, name).to_batches(columns=columns, batch_size=batch_size, filter=where)


def table_columns(root: str | Path, name: str) -> list[str]:
    """Column names of the current version of table `name` (a warehouse written by an older
    version may lack columns added since)."""
    return list(_dataset(root, name).schema.names)


def read_table(root: str | Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """The current version of table `name` of the warehouse at `root`, Parquet or Delta."""
    return pa.table(_dataset(root, name).to_table(columns=columns))


def _dataset(root: str | Path, name: str):
    """A pyarrow dataset over the current files of table `name` (Delta snapshot or Parquet)."""
    path = table_path(root, name)
    if is_delta(path):
        from deltalake import DeltaTable
        return DeltaTable(str(path)).to_pyarrow_dataset()
    import pyarrow.dataset as ds
    return ds.dataset(str(path), format="parquet")
