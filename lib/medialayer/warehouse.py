"""Warehouse tables: versioned per run, published atomically, safe to rerun.

Layout (Parquet):
    <root>/<table>                      symlink -> .versions/<table>/<run_id>__<stamp>
    <root>/.versions/<table>/<run_id>__<stamp>/part-*.parquet

Why versions: a run reads the previous tables and writes new ones, so it must never overwrite what
it reads; a run killed midway must leave the previous tables readable; and rerunning date D must
rebuild D from the state before D (not stack D on top of itself). Each table is published with an
atomic symlink swap (os.replace), so a reader sees either the old or the new version, never half.
Plain Parquet readers (Spark, pyarrow, pandas) follow the symlink and need to know nothing of this.
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

TABLES = ("fingerprints", "listing_media", "media_matches", "clusters", "runs")
_VERSIONS = ".versions"
_SEP = "__"


class WarehouseLocked(RuntimeError):
    """Another run holds the warehouse."""


@dataclass(frozen=True)
class Version:
    run_id: str
    stamp: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


class Warehouse:
    def __init__(self, spark: SparkSession, root: str | Path, cfg: Config):
        if cfg.warehouse.format != "parquet":
            # Delta *manifests* are read (spark/manifest.py); writing output tables as Delta is not
            # built yet. Refuse plainly rather than write Parquet under a Delta name.
            raise ConfigError("warehouse.format: 'delta' output tables are not supported yet; use 'parquet' "
                              "(Delta manifests are supported as input)")
        self.spark = spark
        self.root = Path(root).resolve()
        self.cfg = cfg
        self.root.mkdir(parents=True, exist_ok=True)

    # --- reading --------------------------------------------------------------------------

    def versions(self, table: str) -> list[Version]:
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

    def read_base(self, table: str, run_id: str) -> DataFrame | None:
        version = self.base_version(table, run_id)
        return self.spark.read.parquet(str(version.path)) if version else None

    def read_current(self, table: str) -> DataFrame:
        path = self.root / table
        if not path.exists():
            raise FileNotFoundError(f"table {table!r} does not exist in warehouse {self.root}")
        return self.spark.read.parquet(str(path))

    # --- writing --------------------------------------------------------------------------

    def stage(self, table: str, run_id: str, df: DataFrame) -> Version:
        """Write `df` as a new, unpublished version of `table`."""
        if _SEP in run_id or "/" in run_id:
            raise ValueError(f"run_id {run_id!r} may not contain {_SEP!r} or '/'")
        stamp = time.time_ns()
        final = self.root / _VERSIONS / table / f"{run_id}{_SEP}{stamp}"
        tmp = final.with_name(final.name + ".tmp")
        df.write.mode("overwrite").parquet(str(tmp))
        os.replace(tmp, final)
        return Version(run_id, stamp, final)

    def publish(self, staged: dict[str, Version]) -> None:
        """Point each table at its newest version; then drop superseded and old versions."""
        for table in staged:
            newest = self.versions(table)[-1]
            link = self.root / table
            if link.exists() and not link.is_symlink():
                raise RuntimeError(f"{link} exists and is not a medialayer table link; refusing to replace it")
            tmp_link = self.root / f".{table}.link.tmp"
            if tmp_link.is_symlink() or tmp_link.exists():
                tmp_link.unlink()
            os.symlink(os.path.relpath(newest.path, self.root), tmp_link)
            os.replace(tmp_link, link)
        for table, version in staged.items():
            self._prune(table, keep=version)

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

    # --- locking --------------------------------------------------------------------------

    def lock(self) -> "_Lock":
        return _Lock(self.root / ".lock")


def _is_other_runs_tmp(entry: Path, run_id: str) -> bool:
    """Leave alone a .tmp that some other (concurrent) run may still be writing; the lock makes this rare."""
    return entry.name.endswith(".tmp") and not entry.name.startswith(run_id + _SEP)


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
