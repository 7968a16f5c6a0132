"""A Bloom filter of join keys: which keys some new media asks with.

In an incremental run the new media are a small share of the catalog, yet every old media offers all
of its keys, and nearly all of those keys meet no question: they are moved, sorted and joined for
nothing. A filter of the asked keys, small enough to broadcast, lets each old media's keys be tested
where they are made. A Bloom filter never says no to a key it holds, so no meeting is lost; its false
positives (a few percent of keys) only keep rows that meet nobody.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .search_keys import key_hash

_ONE = np.uint64(1)


@dataclass(frozen=True)
class KeyFilter:
    """A bit array of 2**log2_bits bits, `probes` bits set per key (double hashing of one 64-bit
    SplitMix hash: bit_i = h + i * (h >> 32 | 1), modulo the size)."""
    words: np.ndarray          # uint64, 2**(log2_bits - 6) of them
    probes: int

    @classmethod
    def empty(cls, log2_bits: int, probes: int) -> "KeyFilter":
        if not 6 <= log2_bits <= 40:
            raise ValueError(f"log2_bits must be within 6..40, got {log2_bits}")
        if probes < 1:
            raise ValueError(f"probes must be at least 1, got {probes}")
        return cls(np.zeros(1 << (log2_bits - 6), dtype=np.uint64), int(probes))

    @classmethod
    def from_bytes(cls, data: bytes, probes: int) -> "KeyFilter":
        return cls(np.frombuffer(data, dtype="<u8").astype(np.uint64, copy=False), int(probes))

    def to_bytes(self) -> bytes:
        return self.words.astype("<u8", copy=False).tobytes()

    @property
    def bits(self) -> int:
        return int(self.words.size) * 64

    def _positions(self, keys: np.ndarray) -> np.ndarray:
        """(probes, n) bit positions of each key."""
        h = key_hash(np.asarray(keys, dtype=np.int64).view(np.uint64), 0)
        step = (h >> np.uint64(32)) | _ONE
        mask = np.uint64(self.bits - 1)
        i = np.arange(self.probes, dtype=np.uint64)[:, None]
        return (h[None, :] + i * step[None, :]) & mask

    def add(self, keys: np.ndarray) -> None:
        """Set the bits of `keys` (in place: the words array is this filter's own)."""
        if np.asarray(keys).size == 0:
            return
        pos = self._positions(keys).ravel()
        np.bitwise_or.at(self.words, (pos >> np.uint64(6)).astype(np.int64), _ONE << (pos & np.uint64(63)))

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """True for every key that was added (and for a few that were not)."""
        keys = np.asarray(keys)
        out = np.ones(keys.size, dtype=bool)
        if keys.size == 0:
            return out
        for pos in self._positions(keys):
            out &= ((self.words[(pos >> np.uint64(6)).astype(np.int64)] >> (pos & np.uint64(63))) & _ONE) != 0
        return out

    def union(self, other: "KeyFilter") -> "KeyFilter":
        if other.words.size != self.words.size or other.probes != self.probes:
            raise ValueError("only filters of one size and one probe count can be joined")
        return KeyFilter(self.words | other.words, self.probes)

    def fill(self) -> float:
        """The share of bits set: the false-positive rate is about fill ** probes."""
        return float(np.bitwise_count(self.words).sum()) / self.bits if self.words.size else 0.0


def filter_log2_bits(n_keys: int, bits_per_key: float, max_bytes: int) -> int:
    """The power-of-two size for `n_keys` keys at about `bits_per_key` bits each, at most
    `max_bytes` (and at least 64 bits). Past the cap the filter only grows less selective."""
    want = max(64, int(np.ceil(max(1, n_keys) * bits_per_key)))
    cap = max(64, int(max_bytes) * 8)
    return max(6, min(int(np.ceil(np.log2(want))), int(np.floor(np.log2(cap)))))
