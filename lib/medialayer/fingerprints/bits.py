"""Packed bit hashes: uint64 in memory, int64 in Arrow/Spark (same bits), compared with XOR+popcount."""
from __future__ import annotations

import functools

import numpy as np

_SHIFTS64 = np.arange(64, dtype=np.uint64)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, 64) booleans -> (n,) uint64, bit i of the value = column i."""
    bits = np.asarray(bits, dtype=np.uint64)
    if bits.ndim != 2 or bits.shape[1] != 64:
        raise ValueError(f"expected (n, 64) bits, got {bits.shape}")
    return np.bitwise_or.reduce(bits << _SHIFTS64, axis=1)


def unpack_bits(values: np.ndarray) -> np.ndarray:
    """(n,) uint64 -> (n, 64) uint8 bits."""
    v = np.asarray(values, dtype=np.uint64)
    return ((v[:, None] >> _SHIFTS64) & np.uint64(1)).astype(np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance between two arrays of packed 64-bit hashes."""
    x = np.bitwise_xor(np.asarray(a).view(np.uint64), np.asarray(b).view(np.uint64))
    return np.bitwise_count(x).astype(np.int32)


def to_signed(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.uint64).view(np.int64)


def to_unsigned(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)


def sample_bits(data: np.ndarray, positions: np.ndarray, msb_first: bool = False) -> np.ndarray:
    """Bit sampling, the core of both LSH schemes: (n, nbytes) uint8 rows and (R, k) bit positions
    -> (n, R) uint64 whose bit j in column r is the row's bit positions[r, j].

    Bit p lies in byte p // 8, counted from its least significant bit (a little-endian integer's
    numbering), or from its most significant with `msb_first` (np.unpackbits' numbering). One
    256-entry lookup per sampled byte serves every row of `positions` at once: a bit at a time made
    (n, R, k) arrays, and the batch job samples billions of bits."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    out = np.zeros((data.shape[0], np.shape(positions)[0]), dtype=np.uint64)
    for byte, lut in sampling_luts(positions, msb_first):
        out |= lut[data[:, byte]]
    return out


def sampling_luts(positions: np.ndarray, msb_first: bool = False) -> list[tuple[int, np.ndarray]]:
    """For each byte some row of `positions` samples: (byte, (256, rows) uint64), what each of its
    values adds to every row's sampled value (see `sample_bits`). Cached per layout."""
    positions = np.asarray(positions, dtype=np.int64)
    return _sampling_luts(positions.tobytes(), positions.shape, msb_first)


@functools.lru_cache(maxsize=16)
def _sampling_luts(raw: bytes, shape: tuple[int, int], msb_first: bool) -> list[tuple[int, np.ndarray]]:
    positions = np.frombuffer(raw, dtype=np.int64).reshape(shape)
    values = np.arange(256, dtype=np.uint64)
    out = []
    for byte in np.unique(positions // 8).tolist():
        lut = np.zeros((256, shape[0]), dtype=np.uint64)
        rows, ks = np.nonzero(positions // 8 == byte)
        for r, k in zip(rows.tolist(), ks.tolist()):     # a row may sample several bits of one byte
            shift = 7 - positions[r, k] % 8 if msb_first else positions[r, k] % 8
            lut[:, r] |= ((values >> np.uint64(shift)) & np.uint64(1)) << np.uint64(k)
        lut.flags.writeable = False
        out.append((byte, lut))
    return out
