"""The compiled loops of `orb_detection` and of the keypoint choice (`local.spread_order`), imported only
when first needed: numba is slow to import."""
from __future__ import annotations

import numpy as np

from ..jit import njit

# The 16 pixels of FAST's radius-3 circle, (dx, dy) in order around it.
CIRCLE = np.array([(0, 3), (1, 3), (2, 2), (3, 1), (3, 0), (3, -1), (2, -2), (1, -3),
                   (0, -3), (-1, -3), (-2, -2), (-3, -1), (-3, 0), (-3, 1), (-2, 2), (-1, 3)], dtype=np.int64)

# fastAtan2's polynomial (degrees): each coefficient a float32 times float32(180 / pi), as OpenCV has it.
_DEGREES = np.float32(180.0 / np.pi)
_ATAN_P1 = np.float32(0.9997878412794807) * _DEGREES
_ATAN_P3 = np.float32(-0.3258083974640975) * _DEGREES
_ATAN_P5 = np.float32(0.1555786518463281) * _DEGREES
_ATAN_P7 = np.float32(-0.04432655554792128) * _DEGREES
_ATAN_EPS = np.float32(np.finfo(np.float64).eps)


@njit(cache=True, nogil=True)
def fast_atan2(y, x):
    """OpenCV's fastAtan2 (degrees in [0, 360), about 0.3 degree accurate), float32 step for step."""
    ax = abs(x)
    ay = abs(y)
    if ax >= ay:
        c = ay / (ax + _ATAN_EPS)
        c2 = c * c
        a = (((_ATAN_P7 * c2 + _ATAN_P5) * c2 + _ATAN_P3) * c2 + _ATAN_P1) * c
    else:
        c = ax / (ay + _ATAN_EPS)
        c2 = c * c
        a = np.float32(90.0) - (((_ATAN_P7 * c2 + _ATAN_P5) * c2 + _ATAN_P3) * c2 + _ATAN_P1) * c
    if x < 0:
        a = np.float32(180.0) - a
    if y < 0:
        a = np.float32(360.0) - a
    return a


@njit(cache=True, nogil=True)
def _arc_low(ring, pair, quad):
    """The largest t for which 9 contiguous circle pixels all have ring values of at least t: running
    minima over 2, 4 and 8 pixels, then 9 (`pair` and `quad` are scratch)."""
    for k in range(16):
        pair[k] = min(ring[k], ring[(k + 1) & 15])
    for k in range(16):
        quad[k] = min(pair[k], pair[(k + 2) & 15])
    best = -(1 << 30)
    for k in range(16):
        best = max(best, min(min(quad[k], quad[(k + 4) & 15]), ring[(k + 8) & 15]))
    return best


@njit(cache=True, nogil=True)
def level_keypoints(img, xs, ys, found_at, min_score, mask, use_mask, edge, keep_fast, keep, block, harris_k,
                    circle):
    """One pyramid level's ORB keypoints (Harris score) at FAST threshold `min_score`, from its FAST
    corners `xs`, `ys` (non-maximum suppressed) found at that threshold or a lower one, `found_at`, as
    OpenCV's ORB picks them: corners scoring under `min_score` dropped (FAST at a threshold finds
    exactly the corners FAST at a lower one finds that score at least that much: a weaker neighbour
    never suppresses a stronger corner), then those within `edge` of the border, then those off
    `mask`; the best
    `keep_fast` by FAST score, then the best `keep` by Harris response (ties at either cut all kept, as
    KeyPointsFilter::retainBest does). Returns (x, y, response) in level pixels, in the corners' order.
    Pixels are read from the flat level with unsigned indices (no negative-index checks)."""
    h, w = img.shape
    flat = img.reshape(-1)
    n_in = xs.shape[0]
    x_out = np.empty(n_in, dtype=np.int64)
    y_out = np.empty(n_in, dtype=np.int64)
    score = np.empty(n_in, dtype=np.int64)
    counts = np.zeros(256, dtype=np.int64)
    ring = np.empty(16, dtype=np.int64)
    ring_neg = np.empty(16, dtype=np.int64)
    pair = np.empty(16, dtype=np.int64)
    quad = np.empty(16, dtype=np.int64)
    ring_at = np.empty(16, dtype=np.int64)
    for k in range(16):
        ring_at[k] = circle[k, 1] * w + circle[k, 0]
    n = 0
    for i in range(n_in):
        x = xs[i]
        y = ys[i]
        if x < edge or y < edge or x >= w - edge or y >= h - edge:
            continue
        if use_mask and mask[y, x] == 0:
            continue
        x_out[n] = x
        y_out[n] = y
        n += 1
    xs = x_out
    ys = y_out
    if keep <= 0:
        n = 0
    # FAST's scores, needed only to drop corners found at a lower threshold or to cut to keep_fast.
    if n > keep_fast or found_at < min_score:
        kept = 0
        for i in range(n):
            # The largest threshold at which the corner still is one, so it does not depend on the
            # threshold it was found at. A corner is darker or brighter, never both (9 + 9 > 16).
            centre = ys[i] * w + xs[i]
            v = np.int64(flat[np.uint64(centre)])
            for k in range(16):
                ring[k] = v - np.int64(flat[np.uint64(centre + ring_at[k])])
                ring_neg[k] = -ring[k]
            s = _arc_low(ring, pair, quad)
            if s <= 0:
                s = _arc_low(ring_neg, pair, quad)
            s -= 1
            if s < min_score:
                continue
            xs[kept] = xs[i]
            ys[kept] = ys[i]
            score[kept] = s
            counts[min(max(s, 0), 255)] += 1
            kept += 1
        n = kept
        if n > keep_fast:
            # The best keep_fast by FAST score, every corner tied with the last one kept.
            total = 0
            floor = 255
            while floor > 0:
                total += counts[floor]
                if total >= keep_fast:
                    break
                floor -= 1
            kept = 0
            for i in range(n):
                if score[i] >= floor:
                    xs[kept] = xs[i]
                    ys[kept] = ys[i]
                    kept += 1
            n = kept
    # Harris responses on block x block windows of Sobel gradients, in OpenCV's float32 steps.
    r = block // 2
    scale = np.float32(1.0) / (np.float32(4 * block) * np.float32(255.0))
    scale4 = scale * scale * scale * scale
    response = np.empty(n, dtype=np.float32)
    for i in range(n):
        a = 0
        b = 0
        c = 0
        for yy in range(ys[i] - r, ys[i] - r + block):
            mid = yy * w + xs[i] - r
            up = mid - w
            down = mid + w
            for j in range(block):
                ix = ((np.int64(flat[np.uint64(mid + j + 1)]) - np.int64(flat[np.uint64(mid + j - 1)])) * 2
                      + (np.int64(flat[np.uint64(up + j + 1)]) - np.int64(flat[np.uint64(up + j - 1)]))
                      + (np.int64(flat[np.uint64(down + j + 1)]) - np.int64(flat[np.uint64(down + j - 1)])))
                iy = ((np.int64(flat[np.uint64(down + j)]) - np.int64(flat[np.uint64(up + j)])) * 2
                      + (np.int64(flat[np.uint64(down + j - 1)]) - np.int64(flat[np.uint64(up + j - 1)]))
                      + (np.int64(flat[np.uint64(down + j + 1)]) - np.int64(flat[np.uint64(up + j + 1)])))
                a += ix * ix
                b += iy * iy
                c += ix * iy
        fa = np.float32(a)
        fb = np.float32(b)
        fc = np.float32(c)
        response[i] = (fa * fb - fc * fc - harris_k * (fa + fb) * (fa + fb)) * scale4
    # The best `keep` by response, ties at the cut kept.
    cut = -np.inf
    if n > keep:
        cut = np.sort(response)[n - keep]
    kept = 0
    for i in range(n):
        if response[i] >= cut:
            xs[kept] = xs[i]
            ys[kept] = ys[i]
            response[kept] = response[i]
            kept += 1
    return xs[:kept].copy(), ys[:kept].copy(), response[:kept].copy()


@njit(cache=True, nogil=True)
def orientations(levels, level_x, level_y, octave, umax):
    """ORB's keypoint angles (degrees): the direction of the intensity centroid over the circular
    patch whose row half-widths are `umax`, by OpenCV's fastAtan2. Computed for the keypoints kept
    after the spread choice only (a quarter of those detected)."""
    half = umax.shape[0] - 2
    angle = np.empty(level_x.shape[0], dtype=np.float32)
    for i in range(level_x.shape[0]):
        img = levels[octave[i]]
        w = img.shape[1]
        flat = img.reshape(-1)
        centre = level_y[i] * w + level_x[i]
        m10 = 0
        m01 = 0
        for u in range(-half, half + 1):
            m10 += u * np.int64(flat[np.uint64(centre + u)])
        for v in range(1, half + 1):
            span = umax[v]
            below = centre + v * w - span
            above = centre - v * w - span
            v_sum = 0
            weighted = 0
            both = 0
            for j in range(2 * span + 1):        # u = j - span
                lower = np.int64(flat[np.uint64(below + j)])
                upper = np.int64(flat[np.uint64(above + j)])
                v_sum += lower - upper
                weighted += j * (lower + upper)
                both += lower + upper
            m10 += weighted - span * both
            m01 += v * v_sum
        angle[i] = fast_atan2(np.float32(m01), np.float32(m10))
    return angle


@njit(cache=True, nogil=True)
def pyramid_keypoints(levels, masks, use_mask, corner_x, corner_y, corner_start, found_at, min_score, edge, quotas,
                      block, harris_k, circle, scales):
    """`level_keypoints` of every level in one call: `levels` and `masks` are tuples of the level
    images and masks, level l's corners are corner_x/y[corner_start[l]:corner_start[l + 1]]. Returns
    (xy float32 (n, 2) in frame pixels, response, octave, level pixels int64 (n, 2)), level by level."""
    total = 0
    parts_x = []
    parts_y = []
    parts_r = []
    for level in range(len(levels)):
        lo = corner_start[level]
        hi = corner_start[level + 1]
        xs, ys, response = level_keypoints(levels[level], corner_x[lo:hi], corner_y[lo:hi], found_at, min_score,
                                           masks[level], use_mask, edge, 2 * quotas[level], quotas[level], block,
                                           harris_k, circle)
        parts_x.append(xs)
        parts_y.append(ys)
        parts_r.append(response)
        total += xs.shape[0]
    xy = np.empty((total, 2), dtype=np.float32)
    at_level = np.empty((total, 2), dtype=np.int64)
    response = np.empty(total, dtype=np.float32)
    octave = np.empty(total, dtype=np.int64)
    at = 0
    for level in range(len(parts_x)):
        scale = scales[level]
        for i in range(parts_x[level].shape[0]):
            at_level[at, 0] = parts_x[level][i]
            at_level[at, 1] = parts_y[level][i]
            xy[at, 0] = np.float32(parts_x[level][i]) * scale
            xy[at, 1] = np.float32(parts_y[level][i]) * scale
            response[at] = parts_r[level][i]
            octave[at] = level
            at += 1
    return xy, response, octave, at_level


@njit(cache=True, nogil=True)
def spread_kernel(x, y, response, w, h, keep, grid):
    """`local.spread_order`, compiled (0.13 -> 0.05 ms an image, 2026-12-07): one stable sort by
    strength, the per-cell quota taken in that order, then the rest; the result in strength order."""
    n = response.shape[0]
    order = np.argsort(-response, kind="mergesort")       # strongest first, ties by index
    if n <= keep:
        return order
    quota = max(1, keep // (grid * grid))
    taken = np.zeros(grid * grid, dtype=np.int64)
    first = np.zeros(n, dtype=np.bool_)
    for r in range(n):
        i = order[r]
        cell = (min(grid - 1, int(y[i] * np.float32(grid) / np.float32(h))) * grid
                + min(grid - 1, int(x[i] * np.float32(grid) / np.float32(w))))
        if taken[cell] < quota:
            taken[cell] += 1
            first[i] = True
    chosen = np.empty(keep, dtype=np.int64)
    m = 0
    for i in range(n):                                      # each cell's strongest, in index order
        if first[i] and m < keep:
            chosen[m] = i
            m += 1
    for r in range(n):                                      # then the strongest of the rest
        if m >= keep:
            break
        if not first[order[r]]:
            chosen[m] = order[r]
            m += 1
    chosen = chosen[:m]
    return chosen[np.argsort(-response[chosen], kind="mergesort")]
