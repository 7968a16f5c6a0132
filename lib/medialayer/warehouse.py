"""Warehouse tables: versioned per run, published atomically, safe to rerun; Parquet or Delta.

Why versions: a run reads the previous tables and writes new ones, so it must never overwrite what
it reads; a run killed midway must leave the previous tables readable; and rerunning date D must
rebuild D from the state before D (not stack D on top of itself). So every run writes new versions
beside the old ones and a run always builds on the newest version written by an *earlier* run date
(`read_base`), whatever a half-finished run of its own date left behind.

Parquet layout (warehouse.format: parquet):
    <root>/<table>                      symlink -> .versions/<table>/<run_id>__<stamp>
    <root>/.versions/<table>/<run_id>__<stamp>/part-*.parquet
  Publishing swaps the symlink with os.replace, so a reader sees the old or the new version, never
  half. Plain Parquet readers (Spark, pyarrow, pandas) follow the symlink and need to know nothing.

Delta layout (warehouse.format: delta):
    <root>/<table>/_delta_log/...       a standard Delta table (reader 1 / writer 2)
    <root>/<table>/<run_id>__<stamp>/part-*.parquet
  Spark writes the data files; publishing is one Delta commit (overwrite) that adds them, with the
  run id in the commit's metadata. Uncommitted files are invisible to Delta readers (delta-rs,
  Spark's Delta connector, Trino, DuckDB); old versions stay readable by time travel until pruned.
  The Delta Spark connector is not needed (its jars come from Maven, which is not always reachable):
  delta-rs (`deltalake`) writes the log.

Publishing is atomic per table. A run that dies between two tables' commits leaves some tables at
the new version and some at the old; rerunning that date rebuilds every table from the versions
before it, so the end state is the same as an uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from .config import Config, ConfigError

log = logging.getLogger(__name__)

TABLES = ("fingerprints", "listing_media", "media_matches", "listing_matches", "clusters", "cluster_events",
          "sku_suggestions", "review_queue", "runs")
_VERSIONS = ".versions"
_SEP = "__"
_RUN_KEY = "medialayer_run_id"
_STAMP_KEY = "medialayer_stamp"


class WarehouseLocked(RuntimeError):
    """Another run holds the warehouse."""


class RunOrderError(RuntimeError):
    """A run date older than the warehouse's newest run: it would rewrite history under later runs."""


@dataclass(frozen=True)
class Version:
    """One written version of a table: its run, when it was written, and where its files are."""
    run_id: str
    stamp: int
    path: Path
    delta_version: int | None = None     # the Delta log version once committed

    @property
    def name(self) -> str:
        return self.path.name


class Warehouse:
    """The output tables of one warehouse directory, in the format conf names."""

    def __init__(self, spark: SparkSession, root: str | Path, cfg: Config):
        self.spark = spark
        self.root = Path(root).resolve()
        self.cfg = cfg
        self.format = cfg.warehouse.format
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_format()

    def _check_format(self) -> None:
        """Refuse to mix formats in one warehouse: the other format's tables would shadow ours."""
        for table in TABLES:
            path = self.root / table
            if not path.exists():
                continue
            is_delta = (path / "_delta_log").is_dir() and not path.is_symlink()
            if is_delta != (self.format == "delta"):
                found = "delta" if is_delta else "parquet"
                raise ConfigError(f"warehouse.format is {self.format!r} but table {table!r} in {self.root} is "
                                  f"{found}; use warehouse.format: {found} or a new warehouse directory")

    # --- reading --------------------------------------------------------------------------

    def versions(self, table: str) -> list[Version]:
        """Complete versions of `table`, oldest first (Delta: committed ones only)."""
        if self.format == "delta":
            return self._delta_versions(table)
        base = self.root / _VERSIONS / table
        if not base.is_dir():
            return []
        out = []
        for entry in base.iterdir():
            if entry.name.endswith(".tmp") or _SEP not in entry.name:
                continue
            run_id, _, stamp = entry.name.rpartition(_SEP)
            if stamp.isdigit() and (entry / "_SUCCESS").exists():
                out.append(Version(run_id, int(stamp), entry))
        return sorted(out, key=lambda v: (v.run_id, v.stamp))

    def base_version(self, table: str, run_id: str) -> Version | None:
        """The newest complete version written by a run before `run_id`: what run `run_id` builds on."""
        earlier = [v for v in self.versions(table) if v.run_id < run_id]
        return earlier[-1] if earlier else None

    def latest_run_id(self) -> str | None:
        """The newest run date any table has a version of."""
        runs = [v.run_id for t in TABLES for v in self.versions(t)]
        return max(runs) if runs else None

    def read_base(self, table: str, run_id: str) -> DataFrame | None:
        version = self.base_version(table, run_id)
        return self._read_version(table, version) if version else None

    def read_current(self, table: str) -> DataFrame:
        path = self.root / table
        if not path.exists():
            raise FileNotFoundError(f"table {table!r} does not exist in warehouse {self.root}")
        if self.format == "delta":
            return self._read_version(table, self._delta_versions(table)[-1])
        return self.spark.read.parquet(str(path))

    def _read_version(self, table: str, version: Version) -> DataFrame:
        if self.format == "parquet":
            return self.spark.read.parquet(str(version.path))
        from deltalake import DeltaTable
        from pyspark.sql.pandas.types import from_arrow_schema
        import pyarrow as pa

        snapshot = DeltaTable(str(self.root / table), version=version.delta_version)
        schema = from_arrow_schema(pa.schema(snapshot.schema().to_arrow()))
        files = snapshot.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        return self.spark.read.schema(schema).parquet(*files)

    # --- writing --------------------------------------------------------------------------

    def stage(self, table: str, run_id: str, df: DataFrame) -> Version:
        """Write `df` as a new, unpublished version of `table`."""
        if _SEP in run_id or "/" in run_id:
            raise ValueError(f"run_id {run_id!r} may not contain {_SEP!r} or '/'")
        stamp = time.time_ns()
        if self.format == "delta":
            final = self.root / table / f"{run_id}{_SEP}{stamp}"
            df.write.mode("overwrite").parquet(str(final))
            return Version(run_id, stamp, final)
        final = self.root / _VERSIONS / table / f"{run_id}{_SEP}{stamp}"
        tmp = final.with_name(final.name + ".tmp")
        df.write.mode("overwrite").parquet(str(tmp))
        os.replace(tmp, final)
        return Version(run_id, stamp, final)

    def publish(self, staged: dict[str, Version]) -> None:
        """Make each staged version its table's current one; then drop superseded and old versions."""
        for table, version in staged.items():
            if self.format == "delta":
                self._commit_delta(table, version)
            else:
                self._swap_link(table)
        for table, version in staged.items():
            if self.format == "delta":
                self._prune_delta(table)
            else:
                self._prune(table, keep=version)

    def _swap_link(self, table: str) -> None:
        newest = self.versions(table)[-1]
        link = self.root / table
        if link.exists() and not link.is_symlink():
            raise RuntimeError(f"{link} exists and is not a medialayer table link; refusing to replace it")
        tmp_link = self.root / f".{table}.link.tmp"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        os.symlink(os.path.relpath(newest.path, self.root), tmp_link)
        os.replace(tmp_link, link)

    def _prune(self, table: str, keep: Version) -> None:
        versions = self.versions(table)
        current = (self.root / table).resolve()
        latest_per_run: dict[str, Version] = {}
        for v in versions:
            latest_per_run[v.run_id] = v
        retained_runs = sorted(latest_per_run)[-self.cfg.warehouse.keep_versions:]
        keep_paths = {latest_per_run[r].path for r in retained_runs} | {keep.path, current}
        base = self.root / _VERSIONS / table
        for entry in base.iterdir():
            if entry not in keep_paths and not _is_other_runs_tmp(entry, keep.run_id):
                shutil.rmtree(entry, ignore_errors=True)

    # --- Delta ----------------------------------------------------------------------------

    def _delta_versions(self, table: str) -> list[Version]:
        path = self.root / table
        if not (path / "_delta_log").is_dir():
            return []
        from deltalake import DeltaTable

        out = []
        for commit in DeltaTable(str(path)).history():
            run_id, stamp = commit.get(_RUN_KEY), commit.get(_STAMP_KEY)
            if run_id is None or stamp is None:
                continue       # a commit by someone else (OPTIMIZE, VACUUM): not a run's version
            out.append(Version(run_id, int(stamp), path / f"{run_id}{_SEP}{stamp}", int(commit["version"])))
        # A rerun's commit supersedes the earlier ones of its run, and pruning vacuums runs beyond
        # keep_versions: the log still lists those commits, but their files are gone.
        latest: dict[str, Version] = {}
        for v in sorted(out, key=lambda v: (v.run_id, v.stamp)):
            latest[v.run_id] = v
        return [latest[r] for r in sorted(latest)[-self.cfg.warehouse.keep_versions:]]

    def _commit_delta(self, table: str, version: Version) -> None:
        import pyarrow.parquet as pq
        from deltalake import DeltaTable
        from deltalake.schema import Schema
        from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions

        table_path = self.root / table
        files = sorted(version.path.glob("*.parquet"))
        if not files:
            raise RuntimeError(f"staged version {version.path} holds no Parquet files")
        actions = []
        for f in files:
            st = f.stat()
            rows = pq.read_metadata(f).num_rows       # the footer only
            actions.append(AddAction(str(f.relative_to(table_path)), st.st_size, {}, int(st.st_mtime * 1000), True,
                                     json.dumps({"numRecords": rows})))
        schema = pq.read_schema(files[0])
        props = CommitProperties(custom_metadata={_RUN_KEY: version.run_id, _STAMP_KEY: str(version.stamp)})
        if (table_path / "_delta_log").is_dir():
            DeltaTable(str(table_path)).create_write_transaction(actions, mode="overwrite", schema=schema,
                                                                 commit_properties=props)
        else:
            create_table_with_add_actions(str(table_path), Schema.from_arrow(schema), actions, mode="error",
                                          name=table, commit_properties=props)

    def _prune_delta(self, table: str) -> None:
        """Keep the newest version of each of the last keep_versions runs (time travel, reruns) and
        delete every other data file, including those of runs that died before committing."""
        from deltalake import DeltaTable

        versions = self._delta_versions(table)
        latest_per_run: dict[str, Version] = {}
        for v in versions:
            latest_per_run[v.run_id] = v
        retained = [latest_per_run[r].delta_version for r in sorted(latest_per_run)[-self.cfg.warehouse.keep_versions:]]
        removed = DeltaTable(str(self.root / table)).vacuum(
            retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True,
            keep_versions=[v for v in retained if v is not None])
        if removed:
            log.debug("pruned %d old data file(s) of %s", len(removed), table)
        for entry in (self.root / table).iterdir():      # directories vacuum emptied
            if entry.is_dir() and entry.name != "_delta_log" and not any(entry.rglob("*.parquet")):
                shutil.rmtree(entry, ignore_errors=True)

    # --- locking --------------------------------------------------------------------------

    def lock(self) -> "_Lock":
        return lock_warehouse(self.root)


def _is_other_runs_tmp(entry: Path, run_id: str) -> bool:
    """Leave alone a .tmp that some other (concurrent) run may still be writing; the lock makes this rare."""
    return entry.name.endswith(".tmp") and not entry.name.startswith(run_id + _SEP)


def lock_warehouse(root: str | Path) -> "_Lock":
    """The run lock of the warehouse at `root` (a context manager): what a run holds while it works."""
    return _Lock(Path(root) / ".lock")


class _Lock:
    """An exclusive lock file: a second run on the same warehouse is refused, not interleaved.
    A lock left by a dead process on this host is taken over."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> "_Lock":
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder and holder.get("host") == info["host"] and not _pid_alive(holder.get("pid", -1)):
                    log.warning("removing stale warehouse lock of dead process %s", holder.get("pid"))
                    self.path.unlink(missing_ok=True)
                    continue
                raise WarehouseLocked(
                    f"warehouse is locked by another run ({holder or 'unknown holder'}); "
                    f"wait for it to finish, or delete {self.path} if that run is gone") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            return self
        raise WarehouseLocked(f"could not take the warehouse lock {self.path}")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
