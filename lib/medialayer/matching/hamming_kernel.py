"""The compiled loops of `hamming.two_nearest` and of keypoint matching's one-to-one step (imported only
when first needed)."""
from __future__ import annotations

import numpy as np

from ..jit import njit, popcount64


@njit(cache=True, nogil=True)
def two_nearest_kernel(query, base_t, dist, idx):
    """query (n, words) uint64, base_t (words, m) uint64 (transposed, so one query word against every
    base row is one contiguous pass that LLVM vectorises). Ties go to the lower index."""
    n, words = query.shape
    m = base_t.shape[1]
    d = np.empty(m, dtype=np.int64)
    for i in range(n):
        d[:] = 0
        for w in range(words):
            qw = query[i, w]
            row = base_t[w]
            for j in range(m):
                d[j] += popcount64(qw ^ row[j])
        d1 = 1 << 30
        d2 = 1 << 30
        i1 = -1
        i2 = -1
        for j in range(m):
            v = d[j]
            if v < d2:
                if v < d1:
                    d2, i2, d1, i1 = d1, i1, v, j
                else:
                    d2, i2 = v, j
        dist[i, 0] = d1
        dist[i, 1] = d2
        idx[i, 0] = i1
        idx[i, 1] = i2


@njit(cache=True, nogil=True)
def one_to_one_kernel(dist, nidx, unique_only, max_distance, ratio, ambiguous_max_distance):
    """`local._descriptor_matches`, compiled (its dozen small numpy calls cost more than the work):
    the accepted nearest neighbours, then for each point of b the closest of those that chose it (the
    first of equally close ones). Returns (ia, ib) ordered by b's index."""
    n = dist.shape[0]
    m = 0
    for i in range(n):
        m = max(m, nidx[i, 0] + 1)
    chosen_by = np.full(m, -1, dtype=np.int64)
    closest = np.zeros(m, dtype=np.int64)
    for i in range(n):
        j = nidx[i, 0]
        d1 = dist[i, 0]
        if j < 0:
            continue
        if unique_only:
            if not (d1 <= max_distance and d1 < ratio * dist[i, 1]):
                continue
        elif d1 > ambiguous_max_distance:
            continue
        if chosen_by[j] < 0 or d1 < closest[j]:
            chosen_by[j] = i
            closest[j] = d1
    count = 0
    for j in range(m):
        if chosen_by[j] >= 0:
            count += 1
    ia = np.empty(count, dtype=np.int64)
    ib = np.empty(count, dtype=np.int64)
    k = 0
    for j in range(m):
        if chosen_by[j] >= 0:
            ia[k] = chosen_by[j]
            ib[k] = j
            k += 1
    return ia, ib
