"""ORB descriptors of a keypoint set and of its mirror image, from one blurred pyramid.

OpenCV's `ORB.compute` builds and blurs a pyramid on every call, and a frame and its mirror took two
calls: 1.76 of the 6.8 ms an image cost (2026-12-07); this takes about 1.05. The descriptor itself is simple: compare the
blurred pyramid level at 256 pairs of points, turned to the keypoint's angle. So both are computed
here from one pyramid, in one compiled pass (numba).

They are OpenCV's descriptors bit for bit, and checked so at first use (`describer`):
- the pyramid is ORB's: each level resized from the one before (INTER_LINEAR_EXACT), then blurred by
  the 7-tap, sigma-2 Gaussian in floating point (OpenCV's fixed-point GaussianBlur differs by one
  grey level here and there, which flips a bit in a quarter of the descriptors);
- the 256 point pairs are OpenCV's own, read back from it by describing single bright dots
  (`_probe_pattern`).
When the check fails (another OpenCV build), `describer` returns None and the caller keeps OpenCV's
two calls, so stored descriptors stay comparable.

The mirror: describing the flipped frame at the mirrored keypoint (w-1-x, y), angle 180-a, reads the
same pixels as describing this frame around the mirror image of that keypoint's level position with
every pattern point's y negated (a pyramid level is centred on the frame, so the flipped frame's
levels are this frame's, flipped). So the mirrored descriptor needs no second pyramid; it equals
OpenCV's on the flipped frame in 99.98% of descriptors, the rest within 2 bits of 256 (rounding in
the resize; the keypoints of bench-accuracy's 109 originals, 2026-12-07).
"""
from __future__ import annotations

import functools
import logging
from typing import Callable

import cv2
import numpy as np

from .orb_pyramid import pyramid

log = logging.getLogger(__name__)

DESCRIPTOR_BYTES = 32
_BLUR_TAPS, _BLUR_SIGMA = 7, 2.0       # ORB's smoothing before the point comparisons (fixed in OpenCV)

# describe(gray, xy, angles, octaves, mirrored, levels_built=None): `levels_built` is ORB's unblurred
# pyramid of `gray` (`orb_pyramid.pyramid`) when the caller has built it already.
Describe = Callable[..., "tuple[np.ndarray, np.ndarray]"]


def blurred_pyramid(gray: np.ndarray, levels: int, scale_factor: float, pad: int = 0,
                    unblurred: list[np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ORB's blurred pyramid of a grey frame, all levels in one flat buffer, each level inside `pad`
    zero pixels: (pixels, level offsets, row strides, level widths, level heights, 1/scale of each
    level as float32). `unblurred`: the pyramid's levels before the blur (`orb_pyramid.pyramid`),
    when already built (at least `levels` of them)."""
    if unblurred is None:
        unblurred = pyramid(gray, levels, scale_factor)
    kernel = cv2.getGaussianKernel(_BLUR_TAPS, _BLUR_SIGMA, ktype=cv2.CV_32F)
    # OpenCV: (float)pow(scaleFactor, level), inverted in float32, maps keypoints back to a level.
    inverse = np.array([np.float32(1.0) / np.float32(scale_factor ** level) for level in range(levels)],
                       dtype=np.float32)
    widths = np.array([img.shape[1] for img in unblurred[:levels]], dtype=np.int64)
    heights = np.array([img.shape[0] for img in unblurred[:levels]], dtype=np.int64)
    strides = widths + 2 * pad
    areas = strides * (heights + 2 * pad)
    offsets = np.concatenate([[0], np.cumsum(areas)[:-1]]).astype(np.int64)
    pixels = np.zeros(int(areas.sum()), dtype=np.uint8)
    for level in range(levels):
        lw, lh = int(widths[level]), int(heights[level])
        framed = pixels[offsets[level]:offsets[level] + areas[level]].reshape(lh + 2 * pad, lw + 2 * pad)
        cv2.sepFilter2D(unblurred[level], -1, kernel, kernel, dst=framed[pad:pad + lh, pad:pad + lw],
                        borderType=cv2.BORDER_REFLECT_101)
    return pixels, offsets, strides, widths, heights, inverse


def describe_with(pattern: np.ndarray, levels: int, scale_factor: float, gray: np.ndarray, xy: np.ndarray,
                  angles: np.ndarray, octaves: np.ndarray, mirrored: bool,
                  unblurred: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (n, 32) of keypoints at `xy` (level-0 pixels), `angles` (degrees) and `octaves`
    (pyramid levels), and their mirrored descriptors ((0, 32) unless `mirrored`). `unblurred`: ORB's
    pyramid of `gray` before the blur, when the caller has it."""
    n = xy.shape[0]
    out = np.zeros((n, DESCRIPTOR_BYTES), dtype=np.uint8)
    out_mirror = np.zeros((n if mirrored else 0, DESCRIPTOR_BYTES), dtype=np.uint8)
    if n:
        from .orb_kernel import describe_kernel

        pad = int(np.ceil(np.hypot(pattern[:, 0], pattern[:, 1]).max())) + 1
        depth = max(levels, int(octaves.max()) + 1)
        if unblurred is not None and len(unblurred) < depth:
            unblurred = None
        pixels, offsets, strides, widths, heights, inverse = blurred_pyramid(gray, depth, scale_factor, pad,
                                                                             unblurred)
        describe_kernel(pixels, offsets, strides, widths, heights, pad, inverse, gray.shape[1],
                        np.ascontiguousarray(xy[:, 0], dtype=np.float32),
                        np.ascontiguousarray(xy[:, 1], dtype=np.float32), np.asarray(angles, dtype=np.float32),
                        np.asarray(octaves, dtype=np.int64), pattern, mirrored, out, out_mirror)
    return out, out_mirror


def _probe_pattern(patch: int) -> np.ndarray | None:
    """ORB's 512 sample points (x, y), consecutive pairs compared, read back from OpenCV.

    A keypoint at angle 0 samples exactly at its pattern points. A single bright dot, blurred, lights a
    7x7 block; bit i is set when the dot lights its second point more than its first. So over dots at
    every offset, bit i's set dots are the block around point 2 less what point 1 claims: point 2 is
    at the block's centre along each axis where the set spans 7 pixels, else 3 in from its far edge
    (the edge away from point 1). Point 1 is the same from the dots that leave the bit clear but
    light point 1. The result is only trusted after `describer`'s check.
    """
    reach = patch // 2 + _BLUR_TAPS // 2            # dots must reach 3 px past the farthest point
    offsets = np.array([(dx, dy) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)])
    spacing = patch // 2 + reach + _BLUR_TAPS // 2 + 1   # a dot never lights another probe's points
    margin = max(patch, reach + _BLUR_TAPS // 2) + 1
    side = int(np.ceil(np.sqrt(len(offsets))))
    size = 2 * margin + (side - 1) * spacing + 1
    maps = []
    for background, dot in ((0, 255), (255, 0)):   # bit set where point 2 / point 1 is lit more
        image = np.full((size, size), background, dtype=np.uint8)
        keypoints = []
        for i, (dx, dy) in enumerate(offsets):
            cx, cy = margin + (i % side) * spacing, margin + (i // side) * spacing
            image[cy + dy, cx + dx] = dot
            keypoints.append(cv2.KeyPoint(float(cx), float(cy), float(patch), 0.0, 1.0, 0))
        orb = cv2.ORB_create(edgeThreshold=patch, patchSize=patch, nlevels=1)
        kept, desc = orb.compute(image, keypoints)
        if desc is None or len(kept) != len(keypoints):
            return None
        order = np.lexsort((np.array([k.pt[0] for k in kept]), np.array([k.pt[1] for k in kept])))
        maps.append(np.unpackbits(desc[order], axis=1, bitorder="little").astype(bool))  # (dots, 256)
    lit_second, lit_first = maps[0], maps[1]
    pattern = np.zeros((2 * lit_second.shape[1], 2), dtype=np.float32)
    for bit in range(lit_second.shape[1]):
        mine, theirs = offsets[lit_second[:, bit]], offsets[lit_first[:, bit]]
        for point, (own, other) in enumerate(((theirs, mine), (mine, theirs))):
            if not len(own):
                return None
            for axis in range(2):
                lo, hi = own[:, axis].min(), own[:, axis].max()
                half = _BLUR_TAPS // 2
                if hi - lo == 2 * half:
                    centre = (lo + hi) / 2
                elif not len(other) or hi > other[:, axis].max():
                    centre = hi - half
                else:
                    centre = lo + half
                pattern[2 * bit + point, axis] = centre
    return pattern


def _self_check(describe: Describe, levels: int, scale_factor: float, patch: int) -> bool:
    """Our straight descriptors equal OpenCV's on a textured test frame, at every level and angle."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, size=(60, 80), dtype=np.uint8)
    gray = cv2.GaussianBlur(cv2.resize(noise, (400, 300), interpolation=cv2.INTER_CUBIC), (3, 3), 0)
    orb = cv2.ORB_create(nfeatures=500, scaleFactor=scale_factor, nlevels=levels, edgeThreshold=patch,
                         patchSize=patch)
    keypoints, expected = orb.detectAndCompute(gray, None)
    if expected is None or len(keypoints) < 50:
        return False
    xy = cv2.KeyPoint_convert(keypoints).astype(np.float32).reshape(-1, 2)
    angles = np.array([k.angle for k in keypoints], dtype=np.float32)
    octaves = np.array([k.octave for k in keypoints], dtype=np.int64)
    ours, _ = describe(gray, xy, angles, octaves, False)
    return bool(np.array_equal(ours, expected))


def checked_or_none(what: str, fallback: str, build: Callable[[], Callable], check: Callable[[Callable], bool]
                    ) -> Callable | None:
    """The compiled function `build()` makes, when `check` finds it equal to OpenCV's; else None, with
    one warning saying why and that the caller falls back to OpenCV (`fallback`: what it does)."""
    try:
        compiled = build()
        if check(compiled):
            return compiled
        reason = f"results differ from OpenCV {cv2.__version__}"
    except Exception as exc:  # noqa: BLE001 - numba missing, no writable cache for compiled code, a failed probe
        reason = f"unavailable ({type(exc).__name__}: {exc})"
    log.warning("compiled %s: %s; %s with OpenCV (slower)", what, reason, fallback)
    return None


@functools.lru_cache(maxsize=8)
def describer(levels: int, scale_factor: float, patch: int) -> Describe | None:
    """`describe(gray, xy, angles, octaves, mirrored) -> (descriptors, mirrored descriptors)` for ORB with
    these settings, or None when numba cannot be used or the result would differ from OpenCV's: the
    caller then describes with OpenCV, and a warning says so once per process."""
    def build() -> Describe:
        pattern = _probe_pattern(patch)
        if pattern is None:
            raise RuntimeError("ORB's sampling pattern could not be read back")

        def describe(gray, xy, angles, octaves, mirrored, levels_built=None):
            return describe_with(pattern, levels, scale_factor, gray, xy, angles, octaves, mirrored, levels_built)
        return describe

    return checked_or_none("ORB descriptors", "describing keypoints", build,
                           lambda describe: _self_check(describe, levels, scale_factor, patch))
