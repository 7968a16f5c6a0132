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

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import LocalFeatureConfig, VideoConfig
from .image import dhash_from_thumbs, grayscale_thumbs, phash_from_thumbs
from .local import (DESCRIPTOR_BYTES, LocalFeatures, extract_local_features, pack_angles, pack_xy, unpack_angles,
                    unpack_descriptors, unpack_xy)

# v2: keyframe keypoints (frame grabs that were cropped or overlaid); v3: each frame's mean colour
VIDEO_FINGERPRINT_VERSION = "video-v3"


@dataclass(frozen=True)
class FrameHashes:
    times: np.ndarray     # (n,) float32 seconds
    phash: np.ndarray     # (n,) uint64
    dhash: np.ndarray     # (n,) uint64
    centre_phash: np.ndarray   # (n,) uint64, of the centre crop
    centre_dhash: np.ndarray
    # (n,) uint64 mean colour R | G << 8 | B << 16 (the layout of an image's tone word), or None
    # (fingerprints made before video-v3)
    colour: np.ndarray | None = None


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


def frame_hashes(times: np.ndarray, frames: Sequence[np.ndarray], cfg: VideoConfig,
                 colours: np.ndarray | None = None) -> FrameHashes:
    """Hashes of the informative frames (luma standard deviation >= video.min_frame_contrast), with
    their mean colours when `colours` ((n, 3) R, G, B per frame) is given."""
    keep_t, keep_k, bigs, smalls = [], [], [], []
    for k, (t, frame) in enumerate(zip(times, frames)):
        trimmed = trim_flat_borders(frame, cfg)
        if trimmed.size == 0 or min(trimmed.shape) < 8 or float(trimmed.std()) < cfg.min_frame_contrast:
            continue
        h, w = trimmed.shape
        dy, dx = int(h * (1 - cfg.centre_crop) / 2), int(w * (1 - cfg.centre_crop) / 2)
        keep_t.append(t)
        keep_k.append(k)
        for part in (trimmed, trimmed[dy:h - dy, dx:w - dx]):
            big, small = grayscale_thumbs(np.ascontiguousarray(part))
            bigs.append(big)
            smalls.append(small)
    colour = None
    if colours is not None:
        rgb = np.asarray(colours, dtype=np.uint64).reshape(-1, 3)[keep_k] if keep_k else np.zeros((0, 3), np.uint64)
        colour = rgb[:, 0] | (rgb[:, 1] << np.uint64(8)) | (rgb[:, 2] << np.uint64(16))
    if not bigs:
        z = np.zeros(0, dtype=np.uint64)
        return FrameHashes(np.zeros(0, dtype=np.float32), z, z.copy(), z.copy(), z.copy(), colour)
    phash, _ = phash_from_thumbs(np.stack(bigs))
    dhash, _ = dhash_from_thumbs(np.stack(smalls))
    return FrameHashes(np.asarray(keep_t, dtype=np.float32), phash[0::2], dhash[0::2], phash[1::2], dhash[1::2],
                       colour)


def pack_frames(fh: FrameHashes) -> tuple[bytes, bytes]:
    """(frame_times blob: float32 seconds, frame_hashes blob: per frame, uint64 pHash, dHash, centre
    pHash, centre dHash, and the mean colour word when the frames have one)."""
    cols = [fh.phash, fh.dhash, fh.centre_phash, fh.centre_dhash]
    if fh.colour is not None:
        cols.append(fh.colour)
    h = np.stack(cols, axis=1)
    return fh.times.astype("<f4").tobytes(), h.astype("<u8").tobytes()


def unpack_frames(times: bytes | None, hashes: bytes | None) -> FrameHashes:
    """Frames of either layout: 5 words per frame (video-v3, with colour) or 4 (before)."""
    t = np.frombuffer(times or b"", dtype="<f4")
    words = np.frombuffer(hashes or b"", dtype="<u8")
    per_frame = 5 if t.size and words.size == 5 * t.size else 4
    h = words[:words.size - words.size % per_frame].reshape(-1, per_frame)
    n = min(t.size, h.shape[0])
    colour = h[:n, 4].astype(np.uint64) if per_frame == 5 else None
    return FrameHashes(t[:n], *(h[:n, k].astype(np.uint64) for k in range(4)), colour)


@dataclass(frozen=True)
class Keyframes:
    """Keypoints of a video's keyframes, concatenated in keyframe order: keyframe k owns the
    `counts[k]` rows after those of the keyframes before it."""
    times: np.ndarray         # (k,) float32 seconds
    counts: np.ndarray        # (k,) keypoints per keyframe
    xy: np.ndarray            # (n, 2) float32 in the keyframe's working frame
    descriptors: np.ndarray   # (n, 32) uint8
    angles: np.ndarray        # (n,) float32 degrees
    frame_w: int
    frame_h: int

    def features(self, k: int) -> LocalFeatures:
        lo = int(self.counts[:k].sum())
        hi = lo + int(self.counts[k])
        return LocalFeatures(self.xy[lo:hi], self.descriptors[lo:hi], np.zeros((0, DESCRIPTOR_BYTES), np.uint8),
                             self.frame_w, self.frame_h, self.angles[lo:hi])


def keyframe_features(times: np.ndarray, frames: Sequence[np.ndarray], cfg: VideoConfig,
                      local: LocalFeatureConfig) -> Keyframes:
    """ORB keypoints (video.keyframe_keypoints, straight only) of the informative keyframes."""
    kcfg = dataclasses.replace(local, max_keypoints=cfg.keyframe_keypoints, spread_grid=cfg.keyframe_spread_grid,
                                oversample=cfg.keyframe_oversample)
    kept_t, feats = [], []
    w = h = 0
    for t, frame in zip(times, frames):
        h, w = frame.shape[:2]
        if cfg.keyframe_keypoints <= 0 or float(frame.std()) < cfg.min_frame_contrast:
            continue
        f = extract_local_features(np.ascontiguousarray(frame), kcfg, mirrored=False)
        if f.count:
            kept_t.append(t)
            feats.append(f)
    if not feats:
        return Keyframes(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, 2), np.float32),
                         np.zeros((0, DESCRIPTOR_BYTES), np.uint8), np.zeros(0, np.float32), w, h)
    return Keyframes(np.asarray(kept_t, dtype=np.float32), np.array([f.count for f in feats], dtype=np.int64),
                     np.concatenate([f.xy for f in feats]), np.concatenate([f.descriptors for f in feats]),
                     np.concatenate([f.angles for f in feats]), w, h)


def pack_keyframes(kf: Keyframes) -> dict[str, bytes | int]:
    """Fingerprint columns of the keyframes: times and counts of their own, and the keypoints in the
    image keypoint columns (kp_xy, kp_desc, kp_angle; kp_frame_w/h is the keyframe size)."""
    return {"kf_times": kf.times.astype("<f4").tobytes(), "kf_counts": kf.counts.astype("<u2").tobytes(),
            "kp_xy": pack_xy(kf.xy), "kp_desc": kf.descriptors.tobytes(), "kp_angle": pack_angles(kf.angles),
            "kp_count": int(kf.counts.sum()), "kp_frame_w": kf.frame_w, "kp_frame_h": kf.frame_h}


def unpack_keyframes(times: bytes | None, counts: bytes | None, xy: bytes | None, desc: bytes | None,
                     frame_w: int | None, frame_h: int | None, angles: bytes | None = None) -> Keyframes:
    t = np.frombuffer(times or b"", dtype="<f4").astype(np.float32)
    c = np.frombuffer(counts or b"", dtype="<u2").astype(np.int64)
    p, d = unpack_xy(xy), unpack_descriptors(desc)
    n = min(t.size, c.size)
    t, c = t[:n], c[:n]
    if int(c.sum()) != p.shape[0] or p.shape[0] != d.shape[0]:
        t, c = t[:0], c[:0]                 # inconsistent blobs: no keyframes rather than misaligned ones
    a = unpack_angles(angles)
    if a.size != p.shape[0]:
        a = np.zeros(p.shape[0], dtype=np.float32)
    return Keyframes(t, c, p, d, a, int(frame_w or 0), int(frame_h or 0))
