"""The search index's packed entry store: every key finds exactly its rows, built in memory or in a file."""
from __future__ import annotations

import numpy as np
import pytest

from medialayer.search_keys import (EntryWriter, build_directory, directory_bits, directory_path, in_memory_store,
                                    lookup, open_store, pack_entries, row_bits, store_exists)


def _truth(keys: np.ndarray, rows: np.ndarray) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for k, r in zip(keys.tolist(), rows.tolist()):
        out.setdefault(k, set()).add(r)
    return out


def _random_pairs(rng, n_rows: int, n_pairs: int, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    # Real join keys: word keys carry bit 62, band keys are small; duplicates on purpose, and one
    # hot key (a near-blank picture's band) that thousands of rows share.
    universe = np.concatenate([rng.integers(0, 2**40, n_keys // 2),
                               rng.integers(0, 2**47, n_keys - n_keys // 2) | (1 << 62)]).astype(np.int64)
    keys = universe[rng.integers(0, universe.size, n_pairs)]
    keys[: n_pairs // 10] = 42
    return keys, rng.integers(0, n_rows, n_pairs)


def _check_lookups(entries, directory, truth, rb, probe):
    got_rows, which = lookup(entries, directory, probe, rb)
    for i, key in enumerate(probe.tolist()):
        assert set(got_rows[which == i].tolist()) == truth.get(key, set()), key


def test_row_bits_fit_every_row():
    assert row_bits(0) == 1 and row_bits(1) == 1 and row_bits(2) == 1
    assert row_bits(3) == 2 and row_bits(1024) == 10 and row_bits(1025) == 11
    assert row_bits(1_000_000) == 20


def test_lookup_returns_exactly_each_keys_rows():
    rng = np.random.default_rng(7)
    n_rows = 5000
    keys, rows = _random_pairs(rng, n_rows, 60_000, 20_000)
    rb = row_bits(n_rows)
    entries, directory = in_memory_store([pack_entries(keys, rows, rb)], rb)
    truth = _truth(keys, rows)
    assert entries.size == sum(len(v) for v in truth.values())       # (key, row) pairs once each
    assert np.all(entries[1:] > entries[:-1])
    assert len(truth[42]) > 1000
    probe = np.array(list(truth)[:3000] + [123456789, -5], dtype=np.int64)   # two absent keys
    _check_lookups(entries, directory, truth, rb, probe)


def test_directory_slots_hold_their_entries_whatever_the_chunking():
    rng = np.random.default_rng(3)
    entries = np.sort(rng.integers(0, 2**63, 100_000, dtype=np.uint64) * np.uint64(2))
    dbits = directory_bits(entries.size, 17)
    assert 2**dbits * 16 <= entries.size <= 2**dbits * 64                # ~32 entries a slot
    slots = np.arange(2**dbits + 1, dtype=np.uint64)
    bounds = np.searchsorted(entries, slots[:-1] << np.uint64(64 - dbits))
    expected = np.r_[bounds, entries.size]
    for chunk in (1000, 77_777, 1 << 24):
        assert np.array_equal(build_directory(entries, dbits, chunk).astype(np.int64), expected)


def test_rows_that_do_not_fit_the_row_bits_are_refused():
    with pytest.raises(ValueError, match="row bits"):
        pack_entries(np.array([1, 2]), np.array([0, 4]), 2)


def test_entry_file_equals_the_in_memory_store_and_leaves_no_temporary(tmp_path):
    rng = np.random.default_rng(11)
    n_rows = 3000
    rb = row_bits(n_rows)
    path = tmp_path / "v1.keys"
    writer = EntryWriter(path, capacity=100_000, rbits=rb)
    chunks, all_keys, all_rows = [], [], []
    for start in range(0, n_rows, 1000):       # rows are chunk-local, as in the index build
        keys, rows = _random_pairs(rng, 1000, 20_000, 8000)
        packed = pack_entries(keys, rows + start, rb)
        writer.add(packed)
        chunks.append(packed)
        all_keys.append(keys)
        all_rows.append(rows + start)
    entries, directory = writer.finish()
    memory_entries, memory_directory = in_memory_store(chunks, rb)
    assert np.array_equal(np.asarray(entries), memory_entries)
    assert np.array_equal(np.asarray(directory), memory_directory)
    assert path.stat().st_size == memory_entries.size * 8            # cut to what was filled
    assert store_exists(path) and not list(tmp_path.glob("*.tmp*"))
    mapped, mapped_dir = open_store(path, populate=True)               # a restart maps the same store
    truth = _truth(np.concatenate(all_keys), np.concatenate(all_rows))
    _check_lookups(mapped, mapped_dir, truth, rb, np.array(list(truth)[:2000], dtype=np.int64))


def test_an_aborted_build_leaves_nothing_and_an_overfull_one_fails(tmp_path):
    path = tmp_path / "v2.keys"
    writer = EntryWriter(path, capacity=10, rbits=4)
    with pytest.raises(ValueError, match="exceed"):
        writer.add(np.arange(11, dtype=np.uint64))
    writer.abort()
    assert not store_exists(path) and not list(tmp_path.iterdir())
    empty, directory = EntryWriter(tmp_path / "v3.keys", capacity=5, rbits=4).finish()
    assert empty.size == 0 and directory_path(tmp_path / "v3.keys").exists()
    assert lookup(empty, directory, np.array([1, 2]), 4)[0].size == 0
