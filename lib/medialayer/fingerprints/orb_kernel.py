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
        for byte in range(out.shape[1]):
            value = 0
            value_m = 0
            for bit in range(8):
                k = byte * 16 + bit * 2
                xa0 = pattern[k, 0] * a
                yb0 = pattern[k, 1] * b
                xb0 = pattern[k, 0] * b
                ya0 = pattern[k, 1] * a
                xa1 = pattern[k + 1, 0] * a
                yb1 = pattern[k + 1, 1] * b
                xb1 = pattern[k + 1, 0] * b
                ya1 = pattern[k + 1, 1] * a
                t0 = pixels[centre + int(np.rint(xb0 + ya0)) * step + int(np.rint(xa0 - yb0))]
                t1 = pixels[centre + int(np.rint(xb1 + ya1)) * step + int(np.rint(xa1 - yb1))]
                value |= (t0 < t1) << bit
                if mirrored:
                    m0 = pixels[centre_m + int(np.rint(xb0 - ya0)) * step + int(np.rint(xa0 + yb0))]
                    m1 = pixels[centre_m + int(np.rint(xb1 - ya1)) * step + int(np.rint(xa1 + yb1))]
                    value_m |= (m0 < m1) << bit
            out[j, byte] = value
            if mirrored:
                out_mirror[j, byte] = value_m
