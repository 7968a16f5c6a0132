"""Global perceptual image fingerprints, computed for a batch at once.

pHash (low-frequency DCT signs) survives recompression, resizing and tone changes; dHash
(horizontal gradient signs) is an independent second opinion that cuts false positives. Both are
also stored for the mirrored image, so a flipped copy is one XOR away. The mirrored pHash needs no
second DCT: mirroring a row reverses it, which flips the sign of every odd horizontal frequency.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from .bits import pack_bits

FINGERPRINT_VERSION = "image-global-v1"
HASH_COLUMNS = ("phash", "phash_mirror", "dhash", "dhash_mirror")
# Not a hash: mean R, G, B and luma standard deviation, one byte each, so a reason can say
# "colour or brightness change" (the hashes are deliberately blind to tone).
TONE_COLUMN = "tone"

_DCT_SIZE = 32
_LOW = 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_D = _dct_matrix(_DCT_SIZE)
# Low-frequency block, with the DC term (which carries brightness, not structure) swapped for C[0, 8].
_ROWS, _COLS = np.meshgrid(np.arange(_LOW), np.arange(_LOW), indexing="ij")
_ROWS, _COLS = _ROWS.ravel().copy(), _COLS.ravel().copy()
_COLS[0] = _LOW
_MIRROR_SIGN = np.where(_COLS % 2 == 1, -1.0, 1.0)


def grayscale_thumbs(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two small grey images the hashes are computed from: 32x32 for pHash, 9x8 for dHash."""
    gray = Image.fromarray(rgb).convert("L")
    big = np.asarray(gray.resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return big, small


def phash_from_thumbs(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32, 32) grey -> (phash, phash_mirror) as uint64 arrays."""
    coeffs = np.einsum("ij,njk,lk->nil", _D, thumbs.astype(np.float64), _D, optimize=True)
    low = coeffs[:, _ROWS, _COLS]                       # (n, 64)
    mirrored = low * _MIRROR_SIGN
    bits = low > np.median(low, axis=1, keepdims=True)
    bits_m = mirrored > np.median(mirrored, axis=1, keepdims=True)
    return pack_bits(bits), pack_bits(bits_m)


def dhash_from_thumbs(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 8, 9) grey -> (dhash, dhash_mirror) as uint64 arrays."""
    diff = thumbs[:, :, 1:] > thumbs[:, :, :-1]
    flipped = thumbs[:, :, ::-1]
    diff_m = flipped[:, :, 1:] > flipped[:, :, :-1]
    n = thumbs.shape[0]
    return pack_bits(diff.reshape(n, 64)), pack_bits(diff_m.reshape(n, 64))


def image_fingerprints(images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """RGB arrays -> {column: uint64 array}, one entry per image, in HASH_COLUMNS order."""
    if len(images) == 0:
        return {c: np.zeros(0, dtype=np.uint64) for c in (*HASH_COLUMNS, TONE_COLUMN)}
    bigs, smalls = zip(*(grayscale_thumbs(im) for im in images))
    phash, phash_m = phash_from_thumbs(np.stack(bigs))
    dhash, dhash_m = dhash_from_thumbs(np.stack(smalls))
    tone = np.array([pack_tone(im, big) for im, big in zip(images, bigs)], dtype=np.uint64)
    return {"phash": phash, "phash_mirror": phash_m, "dhash": dhash, "dhash_mirror": dhash_m, TONE_COLUMN: tone}


def pack_tone(rgb: np.ndarray, gray32: np.ndarray) -> int:
    r, g, b = (int(round(float(v))) for v in rgb.reshape(-1, 3).mean(axis=0))
    contrast = min(255, int(round(float(gray32.std()))))
    return r | (g << 8) | (b << 16) | (contrast << 24)


def unpack_tone(tone: int) -> tuple[int, int, int, int]:
    t = int(tone)
    return t & 255, (t >> 8) & 255, (t >> 16) & 255, (t >> 24) & 255
