"""The compiled loop of `hamming.two_nearest` (imported only when first needed)."""
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
