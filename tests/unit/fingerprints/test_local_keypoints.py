import numpy as np
import pytest

from medialayer.fingerprints.local import spread_order


def _spread_order_numpy(xy, response, w, h, keep, grid):
    """The numpy version the compiled one replaced (2026-12-07), kept as the reference."""
    n = response.shape[0]
    if n <= keep:
        return np.argsort(-response, kind="stable")
    cell = (np.minimum(grid - 1, (xy[:, 1] * grid / h).astype(np.int64)) * grid
            + np.minimum(grid - 1, (xy[:, 0] * grid / w).astype(np.int64)))
    order = np.lexsort((-response, cell))
    sorted_cell = cell[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_cell)) + 1]
    first_of_cell = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first_of_cell
    quota = max(1, keep // (grid * grid))
    first = np.flatnonzero(rank < quota)
    rest = np.flatnonzero(rank >= quota)
    chosen = np.concatenate([first, rest[np.argsort(-response[rest], kind="stable")]])[:keep]
    return chosen[np.argsort(-response[chosen], kind="stable")]


@pytest.mark.parametrize("keep,grid", [(256, 8), (40, 8), (10, 4), (2000, 8), (256, 1)])
def test_spread_order_equals_the_numpy_reference(keep, grid):
    rng = np.random.default_rng(keep + grid)
    w, h = 400, 300
    for n in (0, 5, 300, 1024):
        xy = (rng.random((n, 2)) * [w, h]).astype(np.float32)
        xy[: n // 4] = xy[: n // 4] * 0.2                       # a crowded corner, as a watermark makes
        response = rng.random(n).astype(np.float32).astype(np.float64)
        response[: n // 3] = np.round(response[: n // 3], 1)     # ties
        assert np.array_equal(spread_order(xy, response, w, h, keep, grid),
                              _spread_order_numpy(xy, response, w, h, keep, grid))


def test_spread_order_caps_each_cell_then_fills_with_the_strongest():
    # 64 strong keypoints in one cell and 8 weak ones spread over other cells: each cell gets its quota
    # first (20 // 64 -> 1), so the weak ones all make it into 20 slots.
    rng = np.random.default_rng(1)
    crowded = rng.random((64, 2)).astype(np.float32) * 40
    spread = np.array([[25 + 50 * i, 250] for i in range(8)], dtype=np.float32)   # one per cell
    xy = np.concatenate([crowded, spread])
    response = np.concatenate([1.0 + rng.random(64), 0.1 * rng.random(8)])
    chosen = spread_order(xy, response, 400, 300, 20, 8)
    assert set(range(64, 72)) <= set(chosen.tolist()) and len(chosen) == 20
    assert np.all(np.diff(response[chosen]) <= 0)                  # strongest first
