"""The search index's key store: one sorted uint64 array of (hashed join key, row) entries.

Each entry packs a row number into its low `row_bits` bits and the top bits of a 64-bit mix of the
join key above them, so that sorting groups a key's rows together. A directory of slot offsets (by
the entries' top bits, 16 to 32 entries a slot) turns a lookup into reading one slot: a binary
search over a billion entries misses the cache and the TLB at every level.
Eight bytes per (key, row), against twelve for separate key and row arrays, plus 4 bytes per 16
to 32 entries of directory. Both are files beside the warehouse, memory-mapped, so a restart or a
reload costs no rebuild and two index versions never both sit in anonymous memory.

Two different keys share a hash only by chance: at a million media (20 row bits, 44 hash bits,
~1.1e9 entries), a query's ~8,500 keys (band probes included) meet about 0.5 foreign entries.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ENTRIES_PER_SLOT = 32


def row_bits(n_rows: int) -> int:
    """Bits that hold a row number of an index of `n_rows` media."""
    return max(1, int(max(n_rows, 1) - 1).bit_length())


def key_hash(keys: np.ndarray, rbits: int) -> np.ndarray:
    """SplitMix64 finaliser of each key, shifted right by `rbits`: the entry's key part."""
    z = np.asarray(keys).astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(rbits)


def pack_entries(keys: np.ndarray, rows: np.ndarray, rbits: int) -> np.ndarray:
    """Distinct sorted entries of (key, row) pairs (a media reaching one key twice counts once)."""
    if rows.size and int(rows.max()) >= (1 << rbits):
        raise ValueError(f"row {int(rows.max())} does not fit {rbits} row bits")
    packed = (key_hash(keys, rbits) << np.uint64(rbits)) | rows.astype(np.uint64)
    packed.sort()
    keep = np.ones(packed.size, dtype=bool)
    keep[1:] = packed[1:] != packed[:-1]
    return packed[keep]


def directory_bits(n_entries: int, rbits: int) -> int:
    """Top bits of an entry that pick its directory slot: 16 to 32 entries a slot."""
    want = max(1, int(np.ceil(np.log2(max(n_entries, 1) / _ENTRIES_PER_SLOT))))
    return int(min(want, 64 - rbits, 32))


def build_directory(entries: np.ndarray, dbits: int, chunk: int = 1 << 24) -> np.ndarray:
    """Offsets of every directory slot in the sorted entries (2^dbits + 1 of them): a key's rows sit
    inside its slot, so a lookup reads one slot instead of binary-searching the whole array."""
    shift = np.uint64(64 - dbits)
    counts = np.zeros((1 << dbits) + 1, dtype=np.int64)
    for start in range(0, entries.size, chunk):
        slot = (np.asarray(entries[start:start + chunk]) >> shift).astype(np.int64)
        if slot.size:                  # sorted: the chunk covers slots slot[0] .. slot[-1]
            counts[slot[0] + 1: slot[-1] + 2] += np.bincount(slot - slot[0])
    offsets = np.cumsum(counts)
    return offsets.astype(np.uint32) if entries.size < 2**32 else offsets


def lookup(entries: np.ndarray, directory: np.ndarray, keys: np.ndarray, rbits: int) -> tuple[np.ndarray, np.ndarray]:
    """(row of every entry of the keys, index of the key it belongs to), in key order.

    Each key's directory slot (16 to 32 entries on average, contiguous) is read whole and its
    entries compared with the key's hash: one page per key, against a binary search's several
    dependent reads, each a cache and TLB miss in a multi-gigabyte array."""
    if keys.size == 0 or entries.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dbits = int(np.log2(directory.size - 1))
    h = key_hash(keys, rbits)
    slot = (h >> np.uint64(64 - dbits - rbits)).astype(np.int64)
    start = directory[slot].astype(np.int64)
    counts = directory[slot + 1].astype(np.int64) - start
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    owner = np.repeat(np.arange(keys.size), counts)
    pos = np.repeat(start - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(total)
    values = np.asarray(entries[pos])
    hit = (values >> np.uint64(rbits)) == h[owner]
    return (values[hit] & np.uint64((1 << rbits) - 1)).astype(np.int64), owner[hit]


def directory_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".dir.npy")


def in_memory_store(packed_parts: list[np.ndarray], rbits: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted entries, directory) of chunks of packed entries, all in RAM: small indexes, tests."""
    entries = np.concatenate(packed_parts) if packed_parts else np.zeros(0, np.uint64)
    entries.sort()
    return entries, build_directory(entries, directory_bits(entries.size, rbits))


class EntryWriter:
    """Builds a sorted entry file chunk by chunk without holding more than the file's pages.

    Entries go into a file-backed map sized for the most a media can make; the filled prefix is
    sorted in place, the file is cut to it and renamed into place, then its directory is written
    beside it. A store counts only when both files exist, so a killed build leaves nothing that a
    later start would take for finished."""

    def __init__(self, path: Path, capacity: int, rbits: int):
        self.path = Path(path)
        self.rbits = rbits
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.capacity = max(1, int(capacity))
        self._map = np.memmap(self.tmp, dtype=np.uint64, mode="w+", shape=(self.capacity,))
        self.size = 0

    def add(self, packed: np.ndarray) -> None:
        end = self.size + packed.size
        if end > self.capacity:
            raise ValueError(f"index entries exceed the planned {self.capacity}")
        self._map[self.size:end] = packed
        self.size = end

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Sort, cut, flush, rename, write the directory; returns the finished store, mapped."""
        self._map[: self.size].sort()
        self._map.flush()
        self._map = None              # the last reference: the map is closed before the file is cut
        os.truncate(self.tmp, self.size * 8)
        os.replace(self.tmp, self.path)
        entries = _map_entries(self.path)
        directory = build_directory(entries, directory_bits(entries.size, self.rbits))
        final = directory_path(self.path)
        tmp = final.with_name(final.name + ".tmp.npy")
        np.save(tmp, directory)
        os.replace(tmp, final)
        return open_store(self.path)

    def abort(self) -> None:
        self._map = None
        self.tmp.unlink(missing_ok=True)


def store_exists(path: Path) -> bool:
    return Path(path).exists() and directory_path(path).exists()


def open_store(path: Path, populate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A finished entry file and its directory, memory-mapped read-only.

    `populate` reads both files into the mapping at once (MAP_POPULATE): a server pays a few
    seconds at load instead of a page fault on every slot its first thousands of queries touch.
    The pages are the page cache's, shared by every worker process mapping the same files."""
    header = np.load(directory_path(path), mmap_mode="r")
    directory = _map(directory_path(path), header.dtype, header.offset, header.shape[0], populate)
    return _map_entries(path, populate), directory


def _map_entries(path: Path, populate: bool = False) -> np.ndarray:
    size = Path(path).stat().st_size
    return _map(path, np.dtype(np.uint64), 0, size // 8, populate)


def _map(path: Path, dtype: np.dtype, offset: int, count: int, populate: bool) -> np.ndarray:
    if count == 0:                           # an empty file is an empty index (mmap refuses it)
        return np.zeros(0, dtype=dtype)
    flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
    return np.frombuffer(mapped, dtype=dtype, count=count, offset=offset)
