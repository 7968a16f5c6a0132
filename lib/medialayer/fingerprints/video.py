"""Video fingerprints: a pHash and a dHash per sampled frame and of its centre, with its timestamp.

The centre hashes (the middle `video.centre_crop` of each side) make cropped copies comparable: a
copy that keeps the middle 80% of the picture hashes like the original's centre, and the other way
round for a zoomed-out copy.

The frames' flat borders (letterbox and pillarbox bars, padding added when a clip is re-framed)
are trimmed before hashing, so a letterboxed copy hashes like the original. Near-blank frames
(fades, black leaders, title cards on one colour) describe nothing and are dropped: they would
match every other video's fades.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import VideoConfig
from .image import dhash_from_thumbs, grayscale_thumbs, phash_from_thumbs

VIDEO_FINGERPRINT_VERSION = "video-v1"


@dataclass(frozen=True)
class FrameHashes:
    times: np.ndarray     # (n,) float32 seconds
    phash: np.ndarray     # (n,) uint64
    dhash: np.ndarray     # (n,) uint64
    centre_phash: np.ndarray   # (n,) uint64, of the centre crop
    centre_dhash: np.ndarray


def trim_flat_borders(gray: np.ndarray, cfg: VideoConfig) -> np.ndarray:
    """The frame without uniform bars along its edges (at most video.max_trim_fraction per side)."""
    h, w = gray.shape
    g = gray.astype(np.float32)
    tol = cfg.border_tolerance

    def flat_lines(lines: np.ndarray) -> np.ndarray:      # (k, n) -> which lines are one flat colour
        return (lines.max(axis=1) - lines.min(axis=1)) <= tol

    def count(flags: np.ndarray, limit: int) -> int:
        n = 0
        while n < limit and flags[n]:
            n += 1
        return n

    lim_h, lim_w = int(h * cfg.max_trim_fraction), int(w * cfg.max_trim_fraction)
    rows, cols = flat_lines(g), flat_lines(g.T)
    top, bottom = count(rows, lim_h), count(rows[::-1], lim_h)
    left, right = count(cols, lim_w), count(cols[::-1], lim_w)
    return gray[top:h - bottom, left:w - right]


def frame_hashes(times: np.ndarray, frames: Sequence[np.ndarray], cfg: VideoConfig) -> FrameHashes:
    """Hashes of the informative frames (luma standard deviation >= video.min_frame_contrast)."""
    keep_t, bigs, smalls = [], [], []
    for t, frame in zip(times, frames):
        trimmed = trim_flat_borders(frame, cfg)
        if trimmed.size == 0 or min(trimmed.shape) < 8 or float(trimmed.std()) < cfg.min_frame_contrast:
            continue
        h, w = trimmed.shape
        dy, dx = int(h * (1 - cfg.centre_crop) / 2), int(w * (1 - cfg.centre_crop) / 2)
        keep_t.append(t)
        for part in (trimmed, trimmed[dy:h - dy, dx:w - dx]):
            big, small = grayscale_thumbs(np.ascontiguousarray(part))
            bigs.append(big)
            smalls.append(small)
    if not bigs:
        z = np.zeros(0, dtype=np.uint64)
        return FrameHashes(np.zeros(0, dtype=np.float32), z, z.copy(), z.copy(), z.copy())
    phash, _ = phash_from_thumbs(np.stack(bigs))
    dhash, _ = dhash_from_thumbs(np.stack(smalls))
    return FrameHashes(np.asarray(keep_t, dtype=np.float32), phash[0::2], dhash[0::2], phash[1::2], dhash[1::2])


def pack_frames(fh: FrameHashes) -> tuple[bytes, bytes]:
    """(frame_times blob: float32 seconds, frame_hashes blob: 4 uint64 per frame: pHash, dHash,
    centre pHash, centre dHash)."""
    h = np.stack([fh.phash, fh.dhash, fh.centre_phash, fh.centre_dhash], axis=1)
    return fh.times.astype("<f4").tobytes(), h.astype("<u8").tobytes()


def unpack_frames(times: bytes | None, hashes: bytes | None) -> FrameHashes:
    t = np.frombuffer(times or b"", dtype="<f4")
    h = np.frombuffer(hashes or b"", dtype="<u8").reshape(-1, 4)
    n = min(t.size, h.shape[0])
    return FrameHashes(t[:n], *(h[:n, k].astype(np.uint64) for k in range(4)))
