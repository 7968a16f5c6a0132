"""Local features: ORB keypoints with 256-bit binary descriptors, for the image and its mirror.

Global hashes describe the whole frame, so a heavy crop or a screenshot defeats them; keypoints on
the shared part survive. They are stored compactly (quarter-pixel uint16 coordinates in a bounded
working frame, 32-byte descriptors) so verification can run a geometric fit without the pixels.
Mirrored descriptors are those of the mirrored keypoints of the same detection (no second detection
pass), so a flipped copy matches by descriptor as well; `orb_descriptors` computes both kinds in one
pass over one pyramid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sized

import functools

import cv2
import numpy as np

from ..config import LocalFeatureConfig
from ..decoding.image import shrink
from .bits import sampling_luts
from .orb_descriptors import DESCRIPTOR_BYTES, Describe, describer
from .orb_detection import Keypoints, detector, oriented
from .orb_pyramid import mask_pyramid, pyramid

_COORD_SCALE = 4.0          # stored coordinates are quarter pixels in the working frame

cv2.setNumThreads(1)        # Spark runs one task per core; OpenCV's own pool would oversubscribe


@dataclass(frozen=True)
class LocalFeatures:
    xy: np.ndarray            # float32 (n, 2) in the working frame
    descriptors: np.ndarray   # uint8 (n, 32)
    mirrored: np.ndarray      # uint8 (n, 32): descriptors of the mirrored image at (w-1-x, y)
    frame_w: int
    frame_h: int
    angles: np.ndarray | None = None   # float32 (n,) ORB orientation in degrees (mirror: 180 - angle)

    @property
    def count(self) -> int:
        return int(self.xy.shape[0])


def empty_features(frame_w: int = 0, frame_h: int = 0) -> LocalFeatures:
    z = np.zeros((0, DESCRIPTOR_BYTES), dtype=np.uint8)
    return LocalFeatures(np.zeros((0, 2), dtype=np.float32), z, z.copy(), frame_w, frame_h,
                         np.zeros(0, dtype=np.float32))


def working_gray(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The grey working frame: long side bounded by `max_side` (resized before the colour conversion)."""
    return cv2.cvtColor(shrink(rgb, max_side), cv2.COLOR_RGB2GRAY)


def _orb(cfg: LocalFeatureConfig) -> cv2.ORB:
    return cv2.ORB_create(nfeatures=cfg.max_keypoints * cfg.oversample, scaleFactor=cfg.scale_factor,
                          nlevels=cfg.levels, edgeThreshold=cfg.edge_px, patchSize=cfg.edge_px,
                          fastThreshold=cfg.fast_threshold)


def spread_order(xy: np.ndarray, response: np.ndarray, w: int, h: int, keep: int, grid: int) -> np.ndarray:
    """Indices of the strongest keypoints, at most keep/grid^2 per grid cell first, then the strongest
    of the rest; strongest first (ties by index).

    Without this a tiled watermark or a block of text, whose letter corners are the strongest in the
    picture, takes every slot and the photo underneath gets none.
    """
    from .orb_detect_kernel import spread_kernel

    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    return spread_kernel(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]),
                         np.asarray(response, dtype=np.float64), int(w), int(h), int(keep), int(grid))


def extract_local_features(gray: np.ndarray, cfg: LocalFeatureConfig,
                           within: tuple[int, int, int, int] | None = None, only_within: bool = True,
                           mirrored: bool = True) -> LocalFeatures:
    """Keypoints of a grey working frame (see `working_gray`), from the box `within` (x0, y0, x1, y1:
    a photo block on a page) when one is given.

    `only_within`: a pasted photo (a solid rectangle) keeps every slot, so page chrome and text
    never become evidence. Otherwise (a blob that may be one detailed patch of a smooth photo, or a
    product on a plain background) the block's keypoints come first and the rest of the frame fills
    the budget they leave.

    `mirrored=False` skips the mirrored descriptors (left empty): video keyframes, which are only
    ever compared with images, and an image brings its own mirror.
    """
    h, w = gray.shape
    if min(h, w) < 2 * cfg.edge_px + 8:
        return empty_features(w, h)
    detect = detector(cfg.max_keypoints * cfg.oversample, cfg.scale_factor, cfg.levels, cfg.edge_px, cfg.edge_px,
                      cfg.fast_threshold)
    describe = describer(cfg.levels, cfg.scale_factor, cfg.edge_px)
    if detect is None or describe is None:
        return _opencv_features(gray, cfg, within, only_within, mirrored, describe)
    # One pyramid for detection and description. FAST's corners are shared by the block's mask and the
    # rest's, and a smooth picture's retries at lower thresholds share one pass at the lowest.
    levels = pyramid(gray, cfg.levels, cfg.scale_factor)
    corners: dict = {}

    def found(mask: np.ndarray | None) -> Keypoints:
        masks = mask_pyramid(mask, levels) if mask is not None else None
        return _with_retries(lambda threshold, retry: detect(levels, masks, threshold, corners,
                                                             cfg.min_fast_threshold if retry else None), cfg)

    keypoints = _chosen(found, lambda kps, keep: _spread_keypoints(kps, w, h, keep, cfg.spread_grid), Keypoints.then,
                        (h, w), cfg.max_keypoints, within, only_within)
    if not keypoints.count:
        return empty_features(w, h)
    # Oriented and described once, after the choice: only a quarter of the detected keypoints are kept,
    # and a smooth picture's retries at a lower threshold cost neither. The descriptors equal
    # detectAndCompute's (same pyramid, same keypoints).
    keypoints = oriented(levels, keypoints, cfg.edge_px)
    return LocalFeatures(keypoints.xy, *describe(gray, keypoints.xy, keypoints.angle, keypoints.octave, mirrored,
                                                 levels), w, h, keypoints.angle)


def _chosen(found: Callable, spread: Callable, join: Callable, shape: tuple[int, int], keep: int,
            within: tuple[int, int, int, int] | None, only_within: bool):
    """The keypoints kept (see `extract_local_features`): the spread choice of those `found` (under a
    mask, or None), from the block `within` first when there is one, then from the rest of the frame
    for the slots the block leaves unless `only_within`. `join` puts two choices one after the other."""
    if within is None:
        return spread(found(None), keep)
    inside = np.zeros(shape, dtype=np.uint8)
    x0, y0, x1, y1 = within
    inside[y0:y1, x0:x1] = 255
    keypoints = spread(found(inside), keep)
    room = keep - len(keypoints)
    if room > 0 and not only_within:
        keypoints = join(keypoints, spread(found(cv2.bitwise_not(inside)), room))
    return keypoints


def _spread_keypoints(keypoints: Keypoints, w: int, h: int, keep: int, grid: int) -> Keypoints:
    """The spread subset (see `spread_order`) of detected keypoints, strongest first."""
    if not keypoints.count:
        return keypoints
    return keypoints.take(spread_order(keypoints.xy, keypoints.response, w, h, keep, grid))


def _opencv_features(gray: np.ndarray, cfg: LocalFeatureConfig, within: tuple[int, int, int, int] | None,
                     only_within: bool, mirrored: bool, describe: Describe | None) -> LocalFeatures:
    """`extract_local_features` with OpenCV's ORB detection: what the compiled detection replaces when
    it cannot be used (and the descriptors too, when `describe` is None)."""
    h, w = gray.shape
    orb = _orb(cfg)
    keypoints = _chosen(lambda mask: _detect(orb, gray, mask, cfg),
                        lambda kps, keep: _spread(kps, w, h, keep, cfg.spread_grid), list.__add__,
                        (h, w), cfg.max_keypoints, within, only_within)
    if not keypoints:
        return empty_features(w, h)
    if describe is not None:
        xy = cv2.KeyPoint_convert(keypoints).astype(np.float32).reshape(-1, 2)
        angles = np.fromiter((k.angle for k in keypoints), dtype=np.float32, count=len(keypoints))
        octaves = np.fromiter((k.octave for k in keypoints), dtype=np.int64, count=len(keypoints))
        return LocalFeatures(xy, *describe(gray, xy, angles, octaves, mirrored), w, h, angles)
    return _opencv_described(orb, gray, keypoints, mirrored)


def _opencv_described(orb: cv2.ORB, gray: np.ndarray, keypoints: list, mirrored: bool) -> LocalFeatures:
    """The features of `keypoints` described by OpenCV: two ORB.compute calls, one on the flipped
    frame. What `orb_descriptors` replaces when it cannot be used."""
    h, w = gray.shape
    keypoints, desc = _described(orb, gray, keypoints)
    if not keypoints or desc is None:
        return empty_features(w, h)
    desc_m = np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
    if mirrored:
        described = _with_mirror(orb, gray, keypoints, desc)
        if described is None:
            return empty_features(w, h)
        keypoints, desc, desc_m = described
    xy = cv2.KeyPoint_convert(keypoints).astype(np.float32).reshape(-1, 2)
    angles = np.array([k.angle for k in keypoints], dtype=np.float32)
    return LocalFeatures(xy, np.ascontiguousarray(desc, dtype=np.uint8),
                         np.ascontiguousarray(desc_m, dtype=np.uint8), w, h, angles)


def _with_mirror(orb: cv2.ORB, gray: np.ndarray, keypoints: list,
                 desc: np.ndarray) -> tuple[list, np.ndarray, np.ndarray] | None:
    """(keypoints, descriptors, mirrored descriptors) of the keypoints describable both ways: the
    mirrored ones at the mirrored keypoints of the flipped frame. None when none are."""
    w = gray.shape[1]
    flipped = cv2.flip(gray, 1)
    mirrored_kps = [cv2.KeyPoint(w - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave)
                    for k in keypoints]
    kept_m, desc_m = _described(orb, flipped, mirrored_kps)
    if desc_m is None or len(kept_m) != len(keypoints):
        # A point describable straight but not mirrored (border rounding): keep only both-sided ones.
        have = {(round(m.pt[0], 3), round(m.pt[1], 3)) for m in kept_m}
        both = [i for i, m in enumerate(mirrored_kps) if (round(m.pt[0], 3), round(m.pt[1], 3)) in have]
        keypoints = [keypoints[i] for i in both]
        desc = desc[both]
        mirrored_kps = [mirrored_kps[i] for i in both]
        kept_m, desc_m = _described(orb, flipped, mirrored_kps)
        if desc_m is None or len(kept_m) != len(keypoints):
            return None
    return keypoints, desc, desc_m


def _with_retries(detect_at: Callable[[int, bool], Sized], cfg: LocalFeatureConfig) -> Sized:
    """What `detect_at(threshold, retry)` finds at FAST's default threshold or, while that is fewer
    than `min_keypoints`, at halved thresholds down to `min_fast_threshold` (`retry` True).

    Smooth, low-texture pictures give FAST almost nothing at the default contrast threshold; retry
    lower, because a few weak corners are better evidence than none (RANSAC still decides).
    """
    threshold = cfg.fast_threshold
    detected = detect_at(threshold, False)
    while len(detected) < cfg.min_keypoints and threshold > cfg.min_fast_threshold:
        threshold = max(cfg.min_fast_threshold, threshold // 2)
        detected = detect_at(threshold, True)
    return detected


def _detect(orb: cv2.ORB, gray: np.ndarray, mask: np.ndarray | None, cfg: LocalFeatureConfig) -> tuple:
    """OpenCV's ORB keypoints under `mask` (not yet described), with `_with_retries`' lower thresholds."""
    def at(threshold: int, _retry: bool) -> tuple:
        orb.setFastThreshold(threshold)
        return orb.detect(gray, mask)

    return _with_retries(at, cfg)


def _spread(keypoints: tuple, w: int, h: int, keep: int, grid: int) -> list:
    """The spread subset (see `spread_order`) of detected keypoints, strongest first."""
    if not keypoints:
        return []
    response = np.fromiter((k.response for k in keypoints), dtype=np.float64, count=len(keypoints))
    chosen = spread_order(cv2.KeyPoint_convert(keypoints), response, w, h, keep, grid)
    return [keypoints[i] for i in chosen]


def _described(orb: cv2.ORB, gray: np.ndarray, keypoints: list) -> tuple[list, np.ndarray | None]:
    """Descriptors for `keypoints`, returned in the given order.

    compute() regroups keypoints by pyramid level and drops any it cannot describe; pair its output
    back to the input by (position, level).
    """
    kept, desc = orb.compute(gray, keypoints)
    if desc is None or not kept:
        return [], None
    if len(kept) == len(keypoints):
        # Fast path: nothing dropped, output grouped by level in input order within each level.
        order = np.argsort(np.fromiter((k.octave for k in keypoints), dtype=np.int64, count=len(keypoints)),
                           kind="stable")
        if np.abs(cv2.KeyPoint_convert(kept) - cv2.KeyPoint_convert(keypoints)[order]).max() <= 1e-3:
            back = np.empty_like(order)
            back[order] = np.arange(order.size)
            return keypoints, desc[back]
    index = {(round(k.pt[0], 3), round(k.pt[1], 3), k.octave): i for i, k in enumerate(kept)}
    rows = [index.get((round(k.pt[0], 3), round(k.pt[1], 3), k.octave)) for k in keypoints]
    present = [i for i, r in enumerate(rows) if r is not None]
    return [keypoints[i] for i in present], desc[[rows[i] for i in present]]


def pack_xy(xy: np.ndarray) -> bytes:
    return np.clip(np.round(xy * _COORD_SCALE), 0, 65535).astype("<u2").tobytes()


def pack_angles(angles: np.ndarray) -> bytes:
    """Orientations as one byte each (256 steps per turn)."""
    return (np.round(np.asarray(angles, dtype=np.float64) * 256.0 / 360.0).astype(np.int64) % 256).astype(np.uint8).tobytes()


def unpack_angles(blob: bytes | None) -> np.ndarray:
    if not blob:
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(blob, dtype=np.uint8).astype(np.float32) * (360.0 / 256.0)


def unpack_xy(blob: bytes | None) -> np.ndarray:
    if not blob:
        return np.zeros((0, 2), dtype=np.float32)
    return (np.frombuffer(blob, dtype="<u2").astype(np.float32) / _COORD_SCALE).reshape(-1, 2)


def unpack_descriptors(blob: bytes | None) -> np.ndarray:
    if not blob:
        return np.zeros((0, DESCRIPTOR_BYTES), dtype=np.uint8)
    return np.frombuffer(blob, dtype=np.uint8).reshape(-1, DESCRIPTOR_BYTES)


def descriptor_words(descriptors: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """Bit-sampling LSH words of descriptors: (n, 32) uint8 x (L, b) bit positions -> (n, L) int64.

    A word is the table number and the sampled bits; two descriptors a few bits apart share a word in
    some table with high probability, unrelated ones rarely. Words are the candidate-join keys.
    Bit p of a descriptor is numbered as np.unpackbits numbers it (most significant bit of each byte
    first); sampled bit k is the word's bit k. Built by one 256-entry lookup per (table, descriptor
    byte it samples): the batch job words hundreds of millions of descriptors.
    """
    words = np.empty((tables.shape[0], descriptors.shape[0]), dtype=np.int64)
    columns = np.ascontiguousarray(descriptors.T)            # one descriptor byte per row
    for t, luts in enumerate(_word_luts(np.asarray(tables, dtype=np.int64).tobytes(), tables.shape)):
        acc = words[t]
        acc[:] = np.int64(t) << np.int64(40)
        for byte, lut in luts:
            acc |= np.take(lut, columns[byte])
    return words.T


@functools.lru_cache(maxsize=8)
def _word_luts(raw: bytes, shape: tuple[int, int]) -> list[list[tuple[int, np.ndarray]]]:
    """Per table, (descriptor byte, its 256 values' contributions to the word) for each byte sampled:
    `bits.sampling_luts`' tables one column at a time, since a few long words gather faster per table."""
    luts = sampling_luts(np.frombuffer(raw, dtype=np.int64).reshape(shape), msb_first=True)
    return [[(byte, np.ascontiguousarray(lut[:, t]).view(np.int64)) for byte, lut in luts if lut[:, t].any()]
            for t in range(shape[0])]


@functools.lru_cache(maxsize=8)
def word_tables(n_tables: int, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.stack([rng.choice(256, size=bits, replace=False) for _ in range(n_tables)])
    out.flags.writeable = False
    return out
