"""The compiled loop of `orb_descriptors` (imported only when first needed: numba is slow to import)."""
from __future__ import annotations

import numpy as np

from ..jit import njit


@njit(cache=True, nogil=True)
def describe_kernel(pixels, offsets, strides, widths, heights, pad, inverse, frame_w, kx, ky, kangle, koctave,
                    pattern, mirrored, out, out_mirror):
    """OpenCV ORB's comparisons: point p of the pattern is read at the keypoint plus
    (round(px*a - py*b), round(px*b + py*a)), a and b the angle's cosine and sine, all in float32 and
    rounded half to even as OpenCV's cvRound. The mirrored descriptor reads the pattern with y negated,
    around the mirror image of where OpenCV puts the mirrored keypoint (w-1-x) on the flipped level:
    a level's pixels are centred on the frame's, its keypoint positions are x*scale, so on coarse
    levels that is up to a pixel from the straight keypoint's own mirror image. Levels are stored with
    `pad` pixels around them, more than the pattern reaches, so only keypoint positions need bounding."""
    to_radians = np.float32(np.pi / 180.0)
    points = pattern.shape[0]
    px = np.ascontiguousarray(pattern[:, 0])
    py = np.ascontiguousarray(pattern[:, 1])
    # Each pattern point's turned offset, straight and mirrored, for one keypoint at a time: in int32,
    # so the loop vectorises (x86 has no packed float -> int64 conversion; int64 here doubled the
    # kernel's time, 0.46 against 0.25 ms an image, 2026-12-07).
    rx = np.empty(points, dtype=np.int32)
    ry = np.empty(points, dtype=np.int32)
    rx_m = np.empty(points, dtype=np.int32)
    ry_m = np.empty(points, dtype=np.int32)
    for j in range(kx.shape[0]):
        level = koctave[j]
        s = inverse[level]
        step = strides[level]
        w = widths[level]
        cx = min(max(int(np.rint(kx[j] * s)), 0), w - 1)
        cy = min(max(int(np.rint(ky[j] * s)), 0), heights[level] - 1)
        cxm = min(max(w - 1 - int(np.rint(np.float32(frame_w - 1 - kx[j]) * s)), 0), w - 1)
        angle = kangle[j] * to_radians
        a = np.float32(np.cos(np.float64(angle)))
        b = np.float32(np.sin(np.float64(angle)))
        row = offsets[level] + (cy + pad) * step + pad
        centre = row + cx
        centre_m = row + cxm
        for k in range(points):
            xa = px[k] * a
            yb = py[k] * b
            xb = px[k] * b
            ya = py[k] * a
            ry[k] = np.int32(np.rint(xb + ya))
            rx[k] = np.int32(np.rint(xa - yb))
            ry_m[k] = np.int32(np.rint(xb - ya))
            rx_m[k] = np.int32(np.rint(xa + yb))
        # Unsigned indices: no negative-index checks (every read is inside the padded level).
        for byte in range(out.shape[1]):
            value = 0
            value_m = 0
            for bit in range(8):
                k = byte * 16 + bit * 2
                t0 = pixels[np.uint64(centre + ry[k] * step + rx[k])]
                t1 = pixels[np.uint64(centre + ry[k + 1] * step + rx[k + 1])]
                value |= (t0 < t1) << bit
                if mirrored:
                    m0 = pixels[np.uint64(centre_m + ry_m[k] * step + rx_m[k])]
                    m1 = pixels[np.uint64(centre_m + ry_m[k + 1] * step + rx_m[k + 1])]
                    value_m |= (m0 < m1) << bit
            out[j, byte] = value
            if mirrored:
                out_mirror[j, byte] = value_m
