"""Packed bit hashes: uint64 in memory, int64 in Arrow/Spark (same bits), compared with XOR+popcount."""
from __future__ import annotations

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
