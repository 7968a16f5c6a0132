"""One-to-many search: the catalog's image fingerprints indexed by the batch job's own join keys.

A query is fingerprinted like any media, its query-side keys (`candidates.image_keys`) are looked
up in the index's sorted key array, the rows that share a band (or `candidates.local.min_shared`
keypoint words) are verified with `verification.verify_batch`, and the best matches come back.
Keys, bucket caps and verification are the batch job's, so the API and the job agree on a pair.
One difference, for latency at scale: rows that share only one band with the query (what
unrelated hashes produce by chance) are verified up to api.search_weak_candidates per query.

Memory: the index keeps its key array in RAM (12 bytes per key; `bytes_per_media` reports the
measured figure, about 2,000 keys per image with the default 256 keypoint words straight and
mirrored) and memory-maps the verification columns from an Arrow IPC cache file beside the
warehouse, so resident memory grows only with the rows queries actually touch.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .candidates import WORD_FLAG, image_keys
from .config import Config
from .media import FINGERPRINT_SCHEMA
from .tables import read_table
from .verification import SIDE_COLUMNS, global_prefilter, pair_batch, verify_batch

log = logging.getLogger(__name__)

LISTING_FIELDS = ("listing_id", "seller_id", "sku_id", "brand_id")
_BUILD_BATCH = 2048


class IndexNotFound(FileNotFoundError):
    """The warehouse has no fingerprints table to index."""


@dataclass
class SearchHit:
    media_key: str
    media_url: str
    listing_id: str | None
    seller_id: str | None
    sku_id: str | None
    brand_id: str | None
    envelope: dict

    def to_dict(self) -> dict:
        return {"media_key": self.media_key, "media_url": self.media_url, "listing_id": self.listing_id,
                "seller_id": self.seller_id, "sku_id": self.sku_id, "brand_id": self.brand_id, **self.envelope}


# Verification's columns, plus the keypoint orientations the candidate keys are binned by.
INDEX_COLUMNS = (*SIDE_COLUMNS, "kp_angle")


def _side_schema() -> pa.Schema:
    return pa.schema([FINGERPRINT_SCHEMA.field(c) for c in INDEX_COLUMNS]
                     + [pa.field("media_url", pa.string())] + [pa.field(f, pa.string()) for f in LISTING_FIELDS])


class SearchIndex:
    """Sorted (key, row) arrays over an Arrow table of the indexed media's verification columns."""

    def __init__(self, table: pa.Table, cfg: Config, version: str = "memory"):
        self.cfg = cfg
        self.version = version
        self.table = table
        # Row lookups go batch by batch: ChunkedArray.take would concatenate whole (mapped) columns.
        self._batches = table.to_batches()
        self._batch_starts = np.cumsum([0] + [b.num_rows for b in self._batches])[:-1]
        started = time.monotonic()
        keys, rows = [], []
        for start in range(0, table.num_rows, _BUILD_BATCH):
            part = table.slice(start, _BUILD_BATCH)
            k = image_keys(_keyable(part), cfg.candidates)
            keep = k.indexed
            keys.append(k.key[keep])
            rows.append((k.row[keep] + start).astype(np.int32))
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        row = np.concatenate(rows) if rows else np.zeros(0, np.int32)
        order = np.lexsort((row, key))
        key, row = key[order], row[order]
        distinct = np.ones(key.size, dtype=bool)          # one entry per (key, row)
        distinct[1:] = (key[1:] != key[:-1]) | (row[1:] != row[:-1])
        key, row = key[distinct], row[distinct]
        # Bucket caps, as in the batch join: common words and crowded bands are not evidence.
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        sizes = np.diff(np.r_[starts, key.size])
        is_word = (key[starts] & WORD_FLAG) != 0
        cap = np.where(is_word, cfg.candidates.local.max_bucket_size, cfg.candidates.max_bucket_size)
        ok_bucket = np.repeat(sizes <= cap, sizes)
        self.keys, self.rows = key[ok_bucket], row[ok_bucket]
        self.oversized_buckets = int((sizes > cap).sum())
        self.last_skipped_weak = 0
        self.build_seconds = time.monotonic() - started
        log.info("search index %s: %d media, %d keys (%d oversized buckets skipped) in %.1fs", version,
                 table.num_rows, self.keys.size, self.oversized_buckets, self.build_seconds)

    # --- building from a warehouse ------------------------------------------------------

    @classmethod
    def from_warehouse(cls, root: str | Path, cfg: Config) -> "SearchIndex":
        """The current `fingerprints` (ok images) of a Parquet or Delta warehouse, with the first
        listing of each media. The verification columns are cached as Arrow IPC and memory-mapped."""
        root = Path(root).resolve()
        version = warehouse_version(root)
        cache_dir = root / ".search_index"
        cache = cache_dir / f"{version}.arrow"
        if not cache.exists():
            table = _load_table(root)
            cache_dir.mkdir(exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=_BUILD_BATCH)
            os.replace(tmp, cache)
            for old in cache_dir.glob("*.arrow"):
                if old != cache:
                    old.unlink(missing_ok=True)
        mapped = pa.ipc.open_file(pa.memory_map(str(cache), "r")).read_all()
        return cls(mapped, cfg, version)

    # --- querying -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.table.num_rows

    @property
    def bytes_per_media(self) -> float:
        """Resident bytes of the key arrays per indexed media (the mapped columns are on disk)."""
        return (self.keys.nbytes + self.rows.nbytes) / max(1, self.size)

    def take_rows(self, rows: np.ndarray, columns: list[str] | tuple[str, ...]) -> pa.Table:
        """Index rows `rows` (in that order) with `columns`, touching only the batches that hold them."""
        rows = np.asarray(rows, dtype=np.int64)
        names = list(columns)
        if rows.size == 0:
            return self.table.schema.empty_table().select(names)
        which = np.searchsorted(self._batch_starts, rows, side="right") - 1
        parts, order = [], []
        for b in np.unique(which):
            sel = np.flatnonzero(which == b)
            local = rows[sel] - self._batch_starts[b]
            batch = self._batches[b]
            parts.append(pa.RecordBatch.from_arrays([batch.column(n).take(pa.array(local)) for n in names],
                                                    names=names))
            order.append(sel)
        out = pa.Table.from_batches(parts)
        inverse = np.empty(rows.size, dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(rows.size)
        return out.take(pa.array(inverse)).combine_chunks()

    def candidates(self, query: pa.Table) -> np.ndarray:
        """Index rows sharing a band, or at least min_shared keypoint words, with the one query row
        (the batch join's rule), except that single-band rows beyond a budget are skipped."""
        return self._candidates(query)[0]

    def _candidates(self, query: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(candidate rows, keypoint words each shares with the query)."""
        none = (np.zeros(0, np.int32), np.zeros(0, np.int64))
        k = image_keys(_keyable(query), self.cfg.candidates)
        qkeys = np.unique(k.key[k.query])
        if qkeys.size == 0 or self.keys.size == 0:
            return none
        lo = np.searchsorted(self.keys, qkeys, "left")
        hi = np.searchsorted(self.keys, qkeys, "right")
        hit = hi > lo
        if not hit.any():
            return none
        lo, hi, qk = lo[hit], hi[hit], qkeys[hit]
        counts = hi - lo
        idx = np.repeat(lo - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(counts.sum())
        rows = self.rows[idx]
        word = (np.repeat(qk, counts) & WORD_FLAG) != 0
        uniq, inverse = np.unique(rows, return_inverse=True)
        bands = np.bincount(inverse, weights=(~word).astype(np.float64), minlength=uniq.size)
        words = np.bincount(inverse, weights=word.astype(np.float64), minlength=uniq.size)
        min_shared = self.cfg.candidates.local.min_shared
        strong = (bands >= 2) | (words >= min_shared)
        # A single shared band is what unrelated hashes produce by chance (about 2^-16 per band and
        # media: thousands per query in a million-media index). Those are verified only up to
        # api.search_weak_candidates, most shared words first; near-duplicates share many bands.
        weak = np.flatnonzero((bands == 1) & ~strong)
        weak = weak[np.argsort(-words[weak], kind="stable")][: self.cfg.api.search_weak_candidates]
        self.last_skipped_weak = int(((bands == 1) & ~strong).sum()) - weak.size
        chosen = np.concatenate([np.flatnonzero(strong), weak])
        chosen = chosen[np.argsort(uniq[chosen], kind="stable")]
        return uniq[chosen].astype(np.int32), words[chosen].astype(np.int64)

    def search(self, query: pa.Table, k: int) -> list[SearchHit]:
        """Top-k verified matches of a one-row fingerprint table (status ok), best first."""
        cand, words = self._candidates(query)
        if cand.size == 0:
            return []
        sides = _side_schema()
        q = query.select(list(SIDE_COLUMNS)).cast(pa.schema([sides.field(c) for c in SIDE_COLUMNS]))
        refs = self.take_rows(cand, SIDE_COLUMNS)
        both = pa.concat_tables([q, refs])
        n = cand.size
        # Each pair is scored in the batch job's orientation (smaller media_key first), so both agree.
        qkey = q.column("media_key")[0].as_py() or ""
        swap = np.array([key < qkey for key in refs.column("media_key").to_pylist()], dtype=bool)
        pos = np.arange(1, n + 1)
        a, b = np.where(swap, pos, 0), np.where(swap, 0, pos)
        pairs = pair_batch(both, a, b)
        # The batch job's prefilter (matching.image.local_min_words), so both agree on every pair.
        worth = (words >= self.cfg.matching.image.local_min_words) | global_prefilter(pairs, self.cfg)
        if not worth.all():
            cand, pairs = cand[worth], pairs.filter(pa.array(worth))
            if cand.size == 0:
                return []
        verified = verify_batch(pairs, self.cfg, keep_below_record=True)
        found = np.asarray(verified.column("match_found").to_numpy(zero_copy_only=False), dtype=bool)
        sims = verified.column("similarity").to_numpy(zero_copy_only=False)
        order = [i for i in np.argsort(-sims, kind="stable") if found[i]][:k]
        rows = self.take_rows(cand[order], ["media_key", "media_url", *LISTING_FIELDS]).to_pylist()
        envelopes = verified.take(pa.array(np.asarray(order, dtype=np.int64))).to_pylist()
        out = []
        for row, env in zip(rows, envelopes):
            envelope = {key: env[key] for key in ("match_found", "confidence", "similarity", "match_type",
                                                  "media_type", "reason", "matched_segments")}
            envelope["matched_segments"] = envelope["matched_segments"] or []
            out.append(SearchHit(row["media_key"], row["media_url"], row["listing_id"], row["seller_id"],
                                 row["sku_id"], row["brand_id"], envelope))
        return out


def _keyable(table: pa.Table) -> pa.Table:
    """image_keys reads status and media_type; indexed rows are all ok images."""
    if "status" in table.column_names:
        return table
    n = table.num_rows
    return table.append_column("status", pa.array(["ok"] * n))


def warehouse_version(root: Path) -> str:
    """An id of the warehouse's current fingerprints version: changes when a newer run lands."""
    table = root / "fingerprints"
    if (table / "_delta_log").is_dir():
        from deltalake import DeltaTable
        return f"delta-{DeltaTable(str(table)).version()}"
    if table.is_symlink():
        return "parquet-" + os.readlink(table).replace("/", "_").replace(".", "")
    if table.exists():
        return f"parquet-{int(table.stat().st_mtime_ns)}"
    raise IndexNotFound(f"no fingerprints table in warehouse {root}: run the pipeline first")


def _load_table(root: Path) -> pa.Table:
    fps = read_table(root, "fingerprints", list(dict.fromkeys([*INDEX_COLUMNS, "media_url", "status"])))
    keep = pc.and_(pc.equal(fps.column("status"), "ok"), pc.equal(fps.column("media_type"), "image"))
    fps = fps.filter(keep.fill_null(False)).drop_columns(["status"])
    listing = pa.table({"media_key": pa.array([], pa.string()), **{f: pa.array([], pa.string()) for f in LISTING_FIELDS}})
    if (root / "listing_media").exists():
        lm = read_table(root, "listing_media", ["media_key", *LISTING_FIELDS])
        # The first listing (by id) stands for a media item listed several times.
        lm = lm.sort_by([("media_key", "ascending"), ("listing_id", "ascending")])
        keys = lm.column("media_key").to_numpy(zero_copy_only=False)
        first = np.r_[True, keys[1:] != keys[:-1]] if keys.size else np.zeros(0, bool)
        listing = lm.filter(pa.array(first))
    at = pc.index_in(fps.column("media_key"), value_set=listing.column("media_key").combine_chunks())
    for f in LISTING_FIELDS:       # (Arrow's join cannot carry the list columns)
        fps = fps.append_column(f, listing.column(f).take(at))
    return fps.select(_side_schema().names).cast(_side_schema()).combine_chunks()


class IndexHolder:
    """The current index of a warehouse, swapped for a new one when a newer run lands (checked at
    most every `interval_s`); queries keep using the old index while the new one builds."""

    def __init__(self, root: str | Path, cfg: Config, interval_s: float):
        self.root = Path(root).resolve()
        self.cfg = cfg
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._index = SearchIndex.from_warehouse(self.root, cfg)
        self._checked = time.monotonic()

    @property
    def index(self) -> SearchIndex:
        if time.monotonic() - self._checked >= self.interval_s and self._lock.acquire(blocking=False):
            try:
                self._checked = time.monotonic()
                if warehouse_version(self.root) != self._index.version:
                    log.info("a newer run landed in %s: reloading the search index", self.root)
                    self._index = SearchIndex.from_warehouse(self.root, self.cfg)
            except Exception:  # noqa: BLE001 - a failed reload keeps serving the old index
                log.exception("search index reload failed; still serving version %s", self._index.version)
            finally:
                self._lock.release()
        return self._index
