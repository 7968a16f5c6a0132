"""ORB keypoint detection on a pyramid we build once: what `cv2.ORB.detect` finds, around OpenCV's FAST
with the rest compiled (numba).

OpenCV's detection cost 1.5 of the 6.1 ms an image took (2026-12-07), and a smooth picture's retries
at lower FAST thresholds ran it whole up to three times. Most of that is not the corner test:
OpenCV builds its own pyramid (which `orb_descriptors` then builds again), scans every pixel of every
level though only those `edge` pixels in from the border are kept (a tenth of the coarsest level),
orients every keypoint though only a quarter are kept, and returns Python KeyPoint objects (turning
them back into arrays cost the caller 0.23 ms an image). Here the pyramid is shared with the descriptors, FAST scans only the kept
area, the keypoints stay arrays, only the kept ones are oriented (`oriented`), and a smooth picture's
retries reuse one FAST pass at the lowest threshold they may reach.

The keypoints are OpenCV's, checked so at first use (`detector`): FAST-9 with non-maximum
suppression, the border and the mask, the best twice-the-quota by FAST score, Harris responses on 7x7
windows, the best quota per level by response (ties at the cut kept), the intensity-centroid angle by
OpenCV's fastAtan2. Only their order within a level differs (OpenCV's comes out of nth_element; ours
is row by row), which matters only between keypoints of equal response. When the check fails (another
OpenCV build), `detector` returns None and the caller keeps `cv2.ORB.detect`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .orb_descriptors import checked_or_none
from .orb_pyramid import level_scales, mask_pyramid, pyramid

_HARRIS_BLOCK = 7                      # ORB's Harris window (fixed in OpenCV)
_HARRIS_K = np.float32(0.04)


@dataclass(frozen=True)
class Keypoints:
    xy: np.ndarray          # float32 (n, 2), frame pixels
    response: np.ndarray    # float32 (n,), Harris
    octave: np.ndarray      # int64 (n,), pyramid level
    level_xy: np.ndarray    # int64 (n, 2), pixels of their level
    angle: np.ndarray | None = None    # float32 (n,), degrees: None until `oriented`

    @property
    def count(self) -> int:
        return int(self.xy.shape[0])

    def __len__(self) -> int:
        return self.count

    def take(self, index: np.ndarray) -> "Keypoints":
        return Keypoints(self.xy[index], self.response[index], self.octave[index], self.level_xy[index],
                         None if self.angle is None else self.angle[index])

    def then(self, other: "Keypoints") -> "Keypoints":
        """These keypoints followed by `other`'s (both oriented or neither)."""
        angle = None if self.angle is None or other.angle is None else np.concatenate([self.angle, other.angle])
        return Keypoints(np.concatenate([self.xy, other.xy]), np.concatenate([self.response, other.response]),
                         np.concatenate([self.octave, other.octave]), np.concatenate([self.level_xy, other.level_xy]),
                         angle)


def features_per_level(total: int, scale_factor: float, levels: int) -> list[int]:
    """ORB's quota per level: a geometric series in 1/scale_factor summing to `total`, rounded, the
    rest to the last level (in float32, as OpenCV computes it)."""
    factor = np.float32(1.0 / scale_factor)
    desired = np.float32(total * (np.float32(1.0) - factor) / (np.float32(1.0) - np.float32(float(factor) ** levels)))
    out = []
    for _ in range(levels - 1):
        out.append(int(np.rint(desired)))
        desired = np.float32(desired * factor)
    out.append(max(total - sum(out), 0))
    return out


@functools.lru_cache(maxsize=8)
def patch_rows(half: int) -> np.ndarray:
    """Half-width of each row of ORB's circular orientation patch (OpenCV's `umax`, made symmetric)."""
    umax = np.zeros(half + 2, dtype=np.int64)
    vmax = int(np.floor(half * np.sqrt(np.float32(2.0)) / 2 + 1))
    vmin = int(np.ceil(half * np.sqrt(np.float32(2.0)) / 2))
    for v in range(vmax + 1):
        umax[v] = int(np.rint(np.sqrt(float(half * half - v * v))))
    v0 = 0
    for v in range(half, vmin - 1, -1):
        while umax[v0] == umax[v0 + 1]:
            v0 += 1
        umax[v] = v0
        v0 += 1
    umax.flags.writeable = False
    return umax


# detect(pyramid levels, mask levels or None, FAST threshold, corners=None, fast_at=None): `corners`, a
# dict, keeps `fast_corners` for the next call on the same pyramid (another mask, a lower threshold);
# see `detect_with`.
Detect = Callable[..., Keypoints]


def fast_corners(levels: list[np.ndarray], threshold: int, edge: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAST-9 corners (non-maximum suppressed) of each level: (x, y, start), level l's corners at
    start[l]:start[l + 1], in level pixels. Found only where ORB can keep them, `edge` pixels in from
    the border, plus the ring that suppression compares against.

    OpenCV's FAST (vectorised) on a view of that part of the level: it tests pixels 3 in from the
    view's edges, so the view reaches 4 past the kept area, and corners of the ring are found (they
    suppress their kept neighbours) but dropped by the caller.
    """
    detector = cv2.FastFeatureDetector_create(threshold, True)
    margin = edge - 4
    found = []
    for img in levels:
        h, w = img.shape
        if h <= 2 * edge or w <= 2 * edge or margin < 0:
            found.append(np.zeros((0, 2), dtype=np.float32))
            continue
        corners = detector.detect(img[margin:h - margin, margin:w - margin])
        found.append(cv2.KeyPoint_convert(corners).reshape(-1, 2) if corners else np.zeros((0, 2), np.float32))
    xy = np.concatenate(found).astype(np.int64) + margin
    start = np.zeros(len(levels) + 1, dtype=np.int64)
    start[1:] = np.cumsum([len(f) for f in found])
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), start


def detect_with(total: int, scale_factor: float, edge: int, levels: list[np.ndarray],
                masks: list[np.ndarray] | None, threshold: int, found: dict | None = None,
                fast_at: int | None = None) -> Keypoints:
    """Keypoints of a pyramid (`pyramid`) at one FAST threshold, under `masks` (`mask_pyramid`) when
    given.

    `found` keeps the levels' `fast_corners` by the threshold they were found at, between calls on
    one pyramid: a call at threshold t uses corners found at any t0 <= t, keeping those scoring t or
    more (the same corners). When none were found low enough, FAST runs at `fast_at` (default t):
    a smooth picture's retries ask for the lowest threshold they may reach, and then every retry
    reuses that one pass.
    """
    from .orb_detect_kernel import CIRCLE, pyramid_keypoints

    found = {} if found is None else found
    usable = [t0 for t0 in found if t0 <= threshold]
    if usable:
        at = max(usable)
    else:
        at = threshold if fast_at is None else min(fast_at, threshold)
        found[at] = fast_corners(levels, at, edge)
    corner_x, corner_y, corner_start = found[at]
    quotas, scales = _settings(total, scale_factor, len(levels))
    return Keypoints(*pyramid_keypoints(tuple(levels), tuple(masks) if masks is not None else _no_masks(len(levels)),
                                        masks is not None, corner_x, corner_y, corner_start, at, threshold, edge,
                                        quotas, _HARRIS_BLOCK, _HARRIS_K, CIRCLE, scales))


def oriented(levels: list[np.ndarray], keypoints: Keypoints, patch: int) -> Keypoints:
    """`keypoints` with ORB's angles: orientation is computed last, for the keypoints the spread choice
    keeps, since it costs more than the rest of the selection."""
    from .orb_detect_kernel import orientations

    angle = orientations(tuple(levels), np.ascontiguousarray(keypoints.level_xy[:, 0]),
                         np.ascontiguousarray(keypoints.level_xy[:, 1]), keypoints.octave, patch_rows(patch // 2))
    return Keypoints(keypoints.xy, keypoints.response, keypoints.octave, keypoints.level_xy, angle)


@functools.lru_cache(maxsize=8)
def _settings(total: int, scale_factor: float, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(quota per level, level scales) of one ORB setting."""
    return np.array(features_per_level(total, scale_factor, levels), dtype=np.int64), level_scales(levels, scale_factor)


@functools.lru_cache(maxsize=4)
def _no_masks(levels: int) -> tuple[np.ndarray, ...]:
    return tuple(np.zeros((1, 1), dtype=np.uint8) for _ in range(levels))


def _self_check(detect: Detect, orb_cfg: dict, threshold: int) -> bool:
    """Our keypoints equal cv2.ORB.detect's on textured test frames, with and without a mask, and at
    thresholds low enough to fill every level's quota from corners found lower still: same positions,
    levels, responses, angles."""
    rng = np.random.default_rng(11)
    noise = rng.integers(0, 256, size=(45, 60), dtype=np.uint8)
    gray = cv2.GaussianBlur(cv2.resize(noise, (400, 300), interpolation=cv2.INTER_CUBIC), (3, 3), 0)
    mask = np.zeros_like(gray)
    mask[40:250, 90:330] = 255
    orb = cv2.ORB_create(**orb_cfg)
    flipped = gray[:, ::-1].copy()
    low = {}                                  # corners found at threshold 2, asked for at 5 and 3
    for frame, m, t, corners in ((gray, None, threshold, None), (gray, mask, threshold, None),
                                 (flipped, None, 5, low), (flipped, None, 3, low)):
        orb.setFastThreshold(t)
        expected = orb.detect(frame, m)
        levels = pyramid(frame, orb_cfg["nlevels"], orb_cfg["scaleFactor"])
        ours = oriented(levels, detect(levels, mask_pyramid(m, levels) if m is not None else None, t, corners, 2),
                        orb_cfg["patchSize"])
        if not expected or ours.count != len(expected):
            return False
        theirs = np.array([(k.octave, k.pt[1], k.pt[0], k.response, k.angle) for k in expected])
        mine = np.column_stack([ours.octave, ours.xy[:, 1], ours.xy[:, 0], ours.response, ours.angle])
        order_t = np.lexsort((theirs[:, 2], theirs[:, 1], theirs[:, 0]))
        order_m = np.lexsort((mine[:, 2], mine[:, 1], mine[:, 0]))
        if not np.array_equal(theirs[order_t].astype(np.float32), mine[order_m].astype(np.float32)):
            return False
    return True


@functools.lru_cache(maxsize=8)
def detector(total: int, scale_factor: float, levels: int, edge: int, patch: int, threshold: int) -> Detect | None:
    """`detect(pyramid levels, mask levels or None, fast threshold, corners=None, fast_at=None) ->
    Keypoints` (not yet `oriented`) for ORB with these settings, or None when numba cannot be used or
    the keypoints would differ from OpenCV's: the caller then detects with `cv2.ORB`, and a warning says
    so once per process."""
    orb_cfg = dict(nfeatures=total, scaleFactor=scale_factor, nlevels=levels, edgeThreshold=edge,
                   patchSize=patch, fastThreshold=threshold)

    def detect(pyramid_levels, mask_levels, fast_threshold, corners=None, fast_at=None):
        return detect_with(total, scale_factor, edge, pyramid_levels, mask_levels, fast_threshold, corners, fast_at)

    return checked_or_none("ORB detection", "detecting keypoints", lambda: detect,
                           lambda compiled: _self_check(compiled, orb_cfg, threshold))
