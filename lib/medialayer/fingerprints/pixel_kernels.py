"""Compiled loops over a frame's pixels for `image` and `region` (imported when first needed).

Each replaces a few numpy or OpenCV calls whose fixed cost dominated on small pictures, with the
same result to the bit (tests/unit/fingerprints/test_pixel_kernels.py).
"""
from __future__ import annotations

import numpy as np

from ..jit import njit


@njit(cache=True, nogil=True)
def area_from_integral(integral, out_w, out_h, w, h):
    """`image.area_resize`'s block means from the float64 integral image (h+1, w+1) of a (h, w)
    picture: the integral read at fractional block edges by linear interpolation, in the same order
    of operations as the numpy version had, so the means round alike."""
    sx = w / out_w
    sy = h / out_h
    corners = np.empty((out_h + 1, out_w + 1), dtype=np.float64)
    for r in range(out_h + 1):
        y = r * sy
        y0 = min(int(y), h - 1)
        fy = y - y0
        for c in range(out_w + 1):
            x = c * sx
            x0 = min(int(x), w - 1)
            fx = x - x0
            left = integral[y0, x0] * (1 - fy) + integral[y0 + 1, x0] * fy
            right = integral[y0, x0 + 1] * (1 - fy) + integral[y0 + 1, x0 + 1] * fy
            corners[r, c] = left * (1 - fx) + right * fx
    area = sx * sy
    out = np.empty((out_h, out_w), dtype=np.uint8)
    for r in range(out_h):
        for c in range(out_w):
            total = corners[r + 1, c + 1] - corners[r, c + 1] - corners[r + 1, c] + corners[r, c]
            v = np.rint(total / area)
            out[r, c] = 0 if v < 0 else (255 if v > 255 else np.uint8(v))
    return out


@njit(cache=True, nogil=True)
def component_stats(labels, count):
    """OpenCV's connectedComponentsWithStats table (count, 5) int32: left, top, width, height, area
    of each label, from a label image. OpenCV's own statistics pass cost 3x its labelling here. A
    label with no pixel (the background of a frame that has none) gets a row of zeros, where OpenCV
    leaves sentinels."""
    left = np.full(count, labels.shape[1], dtype=np.int32)
    top = np.full(count, labels.shape[0], dtype=np.int32)
    right = np.full(count, -1, dtype=np.int32)
    bottom = np.full(count, -1, dtype=np.int32)
    area = np.zeros(count, dtype=np.int32)
    for y in range(labels.shape[0]):
        for x in range(labels.shape[1]):
            k = labels[y, x]
            area[k] += 1
            if x < left[k]:
                left[k] = x
            if x > right[k]:
                right[k] = x
            if y < top[k]:
                top[k] = y
            bottom[k] = y
    stats = np.zeros((count, 5), dtype=np.int32)
    for k in range(count):
        if area[k]:
            stats[k, 0] = left[k]
            stats[k, 1] = top[k]
            stats[k, 2] = right[k] - left[k] + 1
            stats[k, 3] = bottom[k] - top[k] + 1
        stats[k, 4] = area[k]
    return stats
