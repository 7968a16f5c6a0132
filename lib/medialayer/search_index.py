"""One-to-many search: the catalog's fingerprints indexed by the batch job's own join keys.

Images (most of a catalog) are described here; videos and audio files sit beside them in RAM
(`search_av`): a video or audio query finds videos and audio files, an image query finds images
and the videos it was grabbed from.

A query is fingerprinted like any media, its keys (`candidates.image_keys`) are looked up in the
index's sorted entry store (`search_keys`), the rows that share two bands (or
`candidates.local.min_shared` keypoint words) are verified with `verification.verify_batch`, and
the best matches come back. Keys, bucket caps and verification are the batch job's, so the API and
the job agree on a pair. Where search differs from the job's candidate join:
- The index stores each media's straight keys only and the query brings both orientations (with
  the neighbouring-bin probes of both), which finds the same mirrored copies with half the entries.
- Rows that share one band, or one-bit neighbours of two of the query's bands
  (`api.search_band_probes`), are weak: what unrelated hashes produce by chance, thousands per
  query in a million-media index.
  Those whose global hashes could not pass verification (and that share no keypoint word) are
  dropped, as verification's prefilter would drop them; the closest of the rest are verified, up
  to `api.search_weak_candidates`. The probes find copies whose pHashes are 12-20 bits apart and
  share no band, which the job leaves to keypoint words.

Memory: the entries (8 bytes per key, about 1,100 keys per image with the default 256 keypoint
words; `bytes_per_media` reports the figure), their directory and the verification columns are
files beside the warehouse, memory-mapped: resident memory is what queries touch, shared with the
page cache, and a restart or a reload maps them again instead of rebuilding. Only the global
hashes (72 bytes per media) are read into RAM.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from .candidates import WORD_FLAG, image_keys
from .config import Config
from .envelope import swap_sides
from .matching.image import score_global
from .media import FINGERPRINT_SCHEMA
from .search_av import AVKeyStore, keyable
from .search_keys import (EntryWriter, directory_path, in_memory_store, lookup, open_store,
                          pack_entries, row_bits, store_exists)
from .tables import read_table, scan_table, table_columns
from .verification import GLOBAL_HASH_COLUMNS, SIDE_COLUMNS, global_prefilter, pair_batch, verify_batch
from .versions import fingerprint_versions

log = logging.getLogger(__name__)

LISTING_FIELDS = ("listing_id", "seller_id", "sku_id", "brand_id")
_BUILD_BATCH = 2048
_HIT_WORD, _HIT_BAND, _HIT_PROBE = 0, 1, 2     # what kind of query key met an index entry


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
    """A sorted entry array (`search_keys`) over an Arrow table of the indexed media's verification columns.

    `entries_path` names a finished key store for `table` (from_warehouse builds it first); without
    one the store is built in memory (tests, small indexes)."""

    def __init__(self, table: pa.Table, cfg: Config, version: str = "memory", entries_path: Path | None = None,
                 populate: bool = False, av_table: pa.Table | None = None,
                 mapped_from: tuple[Path, int] | None = None):
        self.cfg = cfg
        self.version = version
        self.table = table
        # The Arrow file `table` is mapped from, and the map's address: candidate rows' pages are
        # requested from the kernel all at once before they are read (see _prefetch).
        self._fd = os.open(mapped_from[0], os.O_RDONLY) if mapped_from and hasattr(os, "posix_fadvise") else None
        self._base = mapped_from[1] if mapped_from else 0
        if self._fd is not None:
            weakref.finalize(self, os.close, self._fd)      # a reloading server drops old indexes
        # Videos and audio files: few beside the images, their keys in RAM (see search_av).
        self.av_table = av_table if av_table is not None else table.schema.empty_table()
        self._av = AVKeyStore(self.av_table, cfg)
        # Candidate rows are sliced from their batch (see take_rows).
        self._batches = table.to_batches()
        self._batch_starts = np.cumsum([0] + [b.num_rows for b in self._batches])[:-1]
        self.rbits = row_bits(table.num_rows)
        self.last_skipped_weak = 0
        # Global hashes in RAM (72 bytes per media): weak rows are ranked by them, and rows that
        # verification's prefilter would drop are dropped before their keypoints are read.
        self._global = {c: table.column(c).fill_null(0).to_numpy().astype(np.int64) for c in GLOBAL_HASH_COLUMNS}
        self._region = np.asarray(table.column("region").is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        started = time.monotonic()
        if entries_path is not None:       # built by from_warehouse
            self.entries, self.directory = open_store(entries_path, populate)
            how = "mapped"
        else:
            self.entries, self.directory = build_entries(table, cfg, version)
            how = "built in memory"
        self.build_seconds = time.monotonic() - started
        log.info("search index %s: %d media, %d entries %s in %.1fs", version, table.num_rows,
                 self.entries.size, how, self.build_seconds)

    # --- building from a warehouse ------------------------------------------------------

    @classmethod
    def from_warehouse(cls, root: str | Path, cfg: Config, populate: bool = False) -> "SearchIndex":
        """The current `fingerprints` (ok images, and beside them videos and audio files) of a
        Parquet or Delta warehouse, with the first listing of each media. The verification columns
        are cached as Arrow IPC and the key entries as a sorted uint64 file, both memory-mapped; a
        restart maps them again without a rebuild.
        `populate` (a server: api.search_prefetch) reads the key files into memory at load."""
        root = Path(root).resolve()
        version = warehouse_version(root)
        warn_on_other_versions(root, cfg)
        cache_dir = root / ".search_index"
        cache = cache_dir / f"{version}.arrow"
        av_cache = cache_dir / f"{version}.av.arrow"
        entries = cache_dir / f"{version}.{_keys_digest(cfg)}.keys"
        cache_dir.mkdir(exist_ok=True)
        # One builder at a time: the server's workers start together, and the second maps what the
        # first built instead of writing the same files (and deleting each other's temporaries).
        with _build_lock(cache_dir):
            if not cache.exists():
                _write_cache(root, cache, ("image",))
            if not av_cache.exists():
                _write_cache(root, av_cache, ("video", "audio"))
            if not store_exists(entries):
                # Built from a mapping of its own, closed afterwards: the Arrow file's pages, read
                # once from end to end, are then dropped from the page cache, so that they do not
                # push out the key entries that every query reads (queries touch only their rows).
                with pa.memory_map(str(cache), "r") as source:
                    build_entries(pa.ipc.open_file(source).read_all(), cfg, version, entries)
                _drop_from_page_cache(cache)
            keep = (cache, av_cache, entries, directory_path(entries))
            for old in [*cache_dir.glob("*.arrow"), *cache_dir.glob("*.keys"), *cache_dir.glob("*.npy"),
                        *cache_dir.glob("*.tmp")]:
                if old not in keep:
                    old.unlink(missing_ok=True)
        source = pa.memory_map(str(cache), "r")
        base = source.read_buffer(1).address            # where the map starts: buffer address - base = file offset
        source.seek(0)
        mapped = pa.ipc.open_file(source).read_all()
        av = pa.ipc.open_file(pa.memory_map(str(av_cache), "r")).read_all()
        return cls(mapped, cfg, version, entries, populate, av_table=av, mapped_from=(cache, base))

    # --- querying -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Indexed media: images, videos and audio files."""
        return self.table.num_rows + self.av_table.num_rows

    @property
    def av_bytes_per_media(self) -> float:
        """RAM of the video and audio keys per indexed video or audio file."""
        return self._av.nbytes / max(1, self.av_table.num_rows)

    @property
    def bytes_per_media(self) -> float:
        """Bytes of key entries and directory per indexed media (memory-mapped, as the verification
        columns are; the global hashes, 72 bytes per media, are in RAM)."""
        return (self.entries.nbytes + self.directory.nbytes) / max(1, self.table.num_rows)

    def take_rows(self, rows: np.ndarray, columns: list[str] | tuple[str, ...]) -> pa.Table:
        """Index rows `rows` (in that order) with `columns`: one zero-copy slice per row, then one
        copy of just those rows (a take per batch and column costs more than the rows at 1M media,
        and ChunkedArray.take would concatenate whole mapped columns)."""
        rows = np.asarray(rows, dtype=np.int64)
        names = list(columns)
        if rows.size == 0:
            return self.table.schema.empty_table().select(names)
        which = np.searchsorted(self._batch_starts, rows, side="right") - 1
        local = rows - self._batch_starts[which]
        self._prefetch(which.tolist(), local.tolist(), names)
        slices = [self._batches[b].select(names).slice(i, 1) for b, i in zip(which.tolist(), local.tolist())]
        return pa.Table.from_batches(slices).combine_chunks()

    def _prefetch(self, which: list[int], local: list[int], names: list[str]) -> None:
        """Ask the kernel for every page that rows `local` of batches `which` need in `names`, all
        at once (posix_fadvise WILLNEED), in two rounds: fixed-width values and offsets, then the
        variable-length bytes the offsets point at.

        At a million media most rows are not in the page cache, and reading a mapped row faults its
        pages in one at a time: about a dozen disk reads per candidate, one after the other, which
        made a cold query's p95 twice a warm one's. Requested together, they overlap."""
        if self._fd is None or not which:
            return
        advise = os.posix_fadvise
        later = []
        for b, i in zip(which, local):
            batch = self._batches[b]
            for name in names:
                column = batch.column(name)
                fixed = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                width = column.type.bit_width // 8 if fixed else 0
                buffers = column.buffers()
                if width and len(buffers) == 2:                   # fixed width: the value itself
                    advise(self._fd, buffers[1].address - self._base + (column.offset + i) * width, width,
                           os.POSIX_FADV_WILLNEED)
                elif pa.types.is_binary(column.type) or pa.types.is_string(column.type):
                    at = buffers[1].address - self._base + (column.offset + i) * 4
                    advise(self._fd, at, 8, os.POSIX_FADV_WILLNEED)
                    later.append((buffers, column.offset + i))
        for buffers, j in later:                                   # the offsets are on their way in
            offsets = np.frombuffer(buffers[1], dtype=np.int32, count=2, offset=4 * j)
            if offsets[1] > offsets[0]:
                advise(self._fd, buffers[2].address - self._base + int(offsets[0]), int(offsets[1] - offsets[0]),
                       os.POSIX_FADV_WILLNEED)

    def candidates(self, query: pa.Table) -> np.ndarray:
        """Index rows worth verifying against the one query row: sharing two bands or min_shared
        keypoint words (the batch join's rule), or weak ones (see the module docstring) within the
        budget; rows that verification's prefilter would drop are left out."""
        return self._candidates(query)[0]

    def _candidates(self, query: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(candidate rows, keypoint words each shares with the query)."""
        none = (np.zeros(0, np.int32), np.zeros(0, np.int64))
        c = self.cfg.candidates
        k = image_keys(keyable(query), c, mirrored_probes=True)
        qkeys = np.unique(k.key)          # straight and mirrored, exact bins and probes
        if qkeys.size == 0 or self.entries.size == 0:
            return none
        is_word = (qkeys & WORD_FLAG) != 0
        probes = np.zeros(0, np.int64)
        if self.cfg.api.search_band_probes:
            flips = np.int64(1) << np.arange(c.image.bits_per_band, dtype=np.int64)
            probes = np.setdiff1d((qkeys[~is_word][:, None] ^ flips[None, :]).ravel(), qkeys)
        kind = np.concatenate([np.where(is_word, _HIT_WORD, _HIT_BAND), np.full(probes.size, _HIT_PROBE)])
        rows, which = lookup(self.entries, self.directory, np.concatenate([qkeys, probes]), self.rbits)
        # Bucket caps, as in the batch join: common words and crowded bands are not evidence.
        cap = np.where(kind == _HIT_WORD, c.local.max_bucket_size, c.max_bucket_size)
        use = (np.bincount(which, minlength=kind.size) <= cap)[which]
        rows, which = rows[use], which[use]
        if rows.size == 0:
            return none
        hit = kind[which]
        uniq, inverse = np.unique(rows, return_inverse=True)
        bands, words, probed = (np.bincount(inverse, weights=(hit == h).astype(np.float64), minlength=uniq.size)
                                for h in (_HIT_BAND, _HIT_WORD, _HIT_PROBE))
        strong = (bands >= 2) | (words >= c.local.min_shared)
        # A single shared band is what unrelated hashes produce by chance (about 2^-16 per band and
        # media: thousands per query in a million-media index); one probe hit, tens of thousands.
        # Verification's prefilter would drop those whose global hashes are far apart and that share
        # no keypoint word; here they must share api.search_weak_min_words (one shared word is what
        # unrelated media produce by chance, ~80 rows per query at a million). Of the rest, up to
        # api.search_weak_candidates are verified, the closest first.
        weak = np.flatnonzero(((bands == 1) | (probed >= 2)) & ~strong)
        n_weak = weak.size
        if weak.size:
            sim = self._global_similarity(query, uniq[weak])
            m = self.cfg.matching
            plausible = (sim >= m.record_threshold) | (words[weak] >= self.cfg.api.search_weak_min_words)
            weak, sim = weak[plausible], sim[plausible]
            weak = weak[np.lexsort((-words[weak], -sim))][: self.cfg.api.search_weak_candidates]
        self.last_skipped_weak = n_weak - weak.size
        # Verification's prefilter, on the global hashes in RAM: a pair sharing fewer than
        # matching.image.local_min_words words is verified only when its global hashes could pass,
        # so such rows are dropped before their keypoints are read from disk.
        strong = np.flatnonzero(strong)
        few_words = words[strong] < self.cfg.matching.image.local_min_words
        if few_words.any():
            sim = self._global_similarity(query, uniq[strong[few_words]])
            drop = strong[few_words][sim < self.cfg.matching.record_threshold]
            strong = np.setdiff1d(strong, drop)
        chosen = np.concatenate([strong, weak])
        chosen = chosen[np.argsort(uniq[chosen], kind="stable")]
        return uniq[chosen].astype(np.int32), words[chosen].astype(np.int64)

    def _global_similarity(self, query: pa.Table, rows: np.ndarray) -> np.ndarray:
        """Global-hash similarity of the query with each of `rows` (verification's global score)."""
        n = rows.size
        q = {c: np.full(n, query.column(c).fill_null(0).to_numpy()[0], dtype=np.int64) for c in GLOBAL_HASH_COLUMNS}
        r = {c: self._global[c][rows] for c in GLOBAL_HASH_COLUMNS}
        q_region = np.full(n, query.column("region").is_valid().to_numpy(zero_copy_only=False)[0], dtype=bool)
        # Both orientations: verification scores a pair with the smaller media_key first, and the
        # mirrored pairings are not exactly symmetric; the larger score never drops what it keeps.
        return np.maximum(score_global(q, r, self.cfg.matching, q_region, self._region[rows]).similarity,
                          score_global(r, q, self.cfg.matching, self._region[rows], q_region).similarity)

    def search(self, query: pa.Table, k: int) -> list[SearchHit]:
        """Top-k verified matches of a one-row fingerprint table (status ok), best first: catalog
        images for an image query, and videos and audio files for any query (see search_av)."""
        found = self._image_matches(query) if query.column("media_type")[0].as_py() == "image" else []
        found += self._av_matches(query)
        found.sort(key=lambda hit: -hit.envelope["similarity"])
        return found[:k]

    def _image_matches(self, query: pa.Table) -> list[SearchHit]:
        cand, words = self._candidates(query)
        if cand.size == 0:
            return []
        refs = self.take_rows(cand, SIDE_COLUMNS)
        pairs, swap = self._pairs(query, refs)
        # The batch job's prefilter (matching.image.local_min_words), so both agree on every pair.
        worth = (words >= self.cfg.matching.image.local_min_words) | global_prefilter(pairs, self.cfg)
        if not worth.all():
            cand, pairs, swap = cand[worth], pairs.filter(pa.array(worth)), swap[worth]
            if cand.size == 0:
                return []
        return self._hits(verify_batch(pairs, self.cfg, keep_below_record=True), swap,
                          lambda order: self.take_rows(cand[order], ["media_key", "media_url", *LISTING_FIELDS]))

    def _av_matches(self, query: pa.Table) -> list[SearchHit]:
        rows = self._av.candidates(query)
        if rows.size == 0:
            return []
        refs = self.av_table.take(pa.array(rows)).select(list(SIDE_COLUMNS))
        pairs, swap = self._pairs(query, refs)
        return self._hits(verify_batch(pairs, self.cfg, keep_below_record=True), swap,
                          lambda order: self.av_table.take(pa.array(rows[order])).select(
                              ["media_key", "media_url", *LISTING_FIELDS]))

    def _pairs(self, query: pa.Table, refs: pa.Table) -> tuple[pa.RecordBatch, np.ndarray]:
        """The query against each of `refs`, each pair in the batch job's orientation (smaller
        media_key first), so both agree on every envelope; and which pairs put the catalog side first."""
        sides = _side_schema()
        q = query.select(list(SIDE_COLUMNS)).cast(pa.schema([sides.field(c) for c in SIDE_COLUMNS]))
        both = pa.concat_tables([q, refs.select(list(SIDE_COLUMNS)).cast(q.schema)])
        qkey = q.column("media_key")[0].as_py() or ""
        swap = np.array([key < qkey for key in refs.column("media_key").to_pylist()], dtype=bool)
        pos = np.arange(1, refs.num_rows + 1)
        return pair_batch(both, np.where(swap, pos, 0), np.where(swap, 0, pos)), swap

    @staticmethod
    def _hits(verified: pa.RecordBatch, swapped: np.ndarray, listing_of) -> list[SearchHit]:
        """The matches among verified pairs, best first, with their listings (`listing_of(order)`);
        segments oriented query -> catalog media (`swapped` pairs were scored the other way round)."""
        found = np.asarray(verified.column("match_found").to_numpy(zero_copy_only=False), dtype=bool)
        sims = verified.column("similarity").to_numpy(zero_copy_only=False)
        order = np.asarray([i for i in np.argsort(-sims, kind="stable") if found[i]], dtype=np.int64)
        if order.size == 0:
            return []
        rows = listing_of(order).to_pylist()
        envelopes = verified.take(pa.array(order)).to_pylist()
        out = []
        for row, env, swap in zip(rows, envelopes, swapped[order]):
            envelope = {key: env[key] for key in ("match_found", "confidence", "similarity", "match_type",
                                                  "media_type", "reason", "matched_segments")}
            envelope["matched_segments"] = [swap_sides(g) if swap else g for g in envelope["matched_segments"] or []]
            out.append(SearchHit(row["media_key"], row["media_url"], row["listing_id"], row["seller_id"],
                                 row["sku_id"], row["brand_id"], envelope))
        return out


def build_entries(table: pa.Table, cfg: Config, version: str = "memory",
                  path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The key store of `table`'s rows: straight keypoint words and straight band keys (a query
    brings both orientations, so a mirrored copy still meets them; half the entries). Written to
    `path` when given (batch by batch, memory-mapped), else built in RAM."""
    c = cfg.candidates
    rbits = row_bits(table.num_rows)
    per_media = c.local.keypoints * c.local.tables + 2 * c.image.bands
    n = table.num_rows
    writer = EntryWriter(path, n * per_media, rbits) if path is not None else None
    parts = []
    next_log = time.monotonic() + 15
    try:
        for start in range(0, n, _BUILD_BATCH):
            k = image_keys(keyable(table.slice(start, _BUILD_BATCH)), c)
            keep = k.query & k.indexed
            packed = pack_entries(k.key[keep], k.row[keep] + start, rbits)
            if writer is not None:
                writer.add(packed)
            else:
                parts.append(packed)
            if time.monotonic() >= next_log:
                log.info("search index %s: keys of %d/%d media", version, min(n, start + _BUILD_BATCH), n)
                next_log = time.monotonic() + 15
        if writer is not None:
            return writer.finish()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return in_memory_store(parts, rbits)


@contextlib.contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    with open(cache_dir / "build.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is building the search index in %s: waiting for it", cache_dir)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _drop_from_page_cache(path: Path) -> None:
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _keys_digest(cfg: Config) -> str:
    """Names the entry file by the settings its keys depend on: a changed conf rebuilds it."""
    c = cfg.candidates
    spec = json.dumps([dataclasses.asdict(c.image), dataclasses.asdict(c.local)], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def warn_on_other_versions(root: Path, cfg: Config) -> int:
    """Log a warning when indexed media were fingerprinted by other code or settings than the
    queries will be (a service run with another conf than the pipeline's): such pairs compare
    fingerprints made two ways, and copies go unfound without an error. Returns how many media."""
    if "fingerprint_version" not in table_columns(root, "fingerprints"):
        return 0
    rows = read_table(root, "fingerprints", ["media_type", "status", "fingerprint_version"])
    rows = rows.filter(pc.equal(rows.column("status"), "ok"))
    counts = rows.group_by(["media_type", "fingerprint_version"]).aggregate([("status", "count")]).to_pylist()
    current = fingerprint_versions(cfg)
    other = [r for r in counts if r["fingerprint_version"] != current.get(r["media_type"], r["fingerprint_version"])]
    n = sum(r["status_count"] for r in other)
    if n:
        seen = ", ".join(f'{r["status_count"]} {r["media_type"]} at {r["fingerprint_version"]}' for r in other)
        log.warning("%d indexed media were fingerprinted by other code or settings than this service fingerprints "
                    "queries with (%s; here: %s): their copies may go unfound. Serve with the pipeline's conf, "
                    "or run the pipeline with this one", n, seen,
                    ", ".join(f"{t} {v}" for t, v in current.items()))
    return n


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


def _write_cache(root: Path, path: Path, media_types: tuple[str, ...]) -> None:
    """The ok rows of `media_types` in `fingerprints`, with the first listing of each media, written
    batch by batch to an Arrow IPC file: a million media's keypoint blobs never sit in memory at once."""
    import pandas as pd

    schema = _side_schema()
    listing = {f: pa.array([], pa.string()) for f in ("media_key", *LISTING_FIELDS)}
    if (root / "listing_media").exists():
        lm = read_table(root, "listing_media", ["media_key", *LISTING_FIELDS])
        # The first listing (by id) stands for a media item listed several times.
        lm = lm.sort_by([("media_key", "ascending"), ("listing_id", "ascending")])
        keys = lm.column("media_key").to_numpy(zero_copy_only=False)
        first = np.r_[True, keys[1:] != keys[:-1]] if keys.size else np.zeros(0, bool)
        lm = lm.filter(pa.array(first))
        listing = {f: lm.column(f).combine_chunks() for f in ("media_key", *LISTING_FIELDS)}
    lookup_index = pd.Index(listing["media_key"].to_numpy(zero_copy_only=False))
    present = set(table_columns(root, "fingerprints"))
    columns = [c for c in dict.fromkeys([*INDEX_COLUMNS, "media_url", "status"]) if c in present]
    tmp = path.with_suffix(".tmp")
    wanted = ds.field("media_type").isin(list(media_types))    # the video/audio pass skips image row groups
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in scan_table(root, "fingerprints", columns, batch_size=_BUILD_BATCH, where=wanted):
            keep = pc.and_(pc.equal(batch.column("status"), "ok"),
                           pc.is_in(batch.column("media_type"), pa.array(list(media_types)))).fill_null(False)
            batch = batch.filter(keep)
            if batch.num_rows == 0:
                continue
            at = lookup_index.get_indexer(batch.column("media_key").to_numpy(zero_copy_only=False))
            at = pa.array(at, mask=at < 0)          # a media without a listing gets nulls
            arrays = {name: batch.column(name) for name in batch.schema.names if name != "status"}
            for f in LISTING_FIELDS:
                arrays[f] = listing[f].take(at)
            # Columns the warehouse's version predates are null (video keyframes, say).
            writer.write_batch(pa.RecordBatch.from_arrays(
                [arrays[f.name].cast(f.type) if f.name in arrays else pa.nulls(batch.num_rows, f.type)
                 for f in schema], schema=schema))
    os.replace(tmp, path)


class IndexHolder:
    """The current index of a warehouse, swapped for a new one when a newer run lands (checked at
    most every `interval_s`); queries keep using the old index while the new one builds."""

    def __init__(self, root: str | Path, cfg: Config, interval_s: float):
        self.root = Path(root).resolve()
        self.cfg = cfg
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._index = SearchIndex.from_warehouse(self.root, cfg, cfg.api.search_prefetch)
        self._checked = time.monotonic()

    @property
    def index(self) -> SearchIndex:
        if time.monotonic() - self._checked >= self.interval_s and self._lock.acquire(blocking=False):
            try:
                self._checked = time.monotonic()
                if warehouse_version(self.root) != self._index.version:
                    log.info("a newer run landed in %s: reloading the search index", self.root)
                    self._index = SearchIndex.from_warehouse(self.root, self.cfg, self.cfg.api.search_prefetch)
            except Exception:  # noqa: BLE001 - a failed reload keeps serving the old index
                log.exception("search index reload failed; still serving version %s", self._index.version)
            finally:
                self._lock.release()
        return self._index
