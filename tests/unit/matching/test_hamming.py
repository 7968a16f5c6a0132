"""two_nearest against a brute-force Hamming scan, ties and bad shapes included."""
import numpy as np
import pytest

from medialayer.matching.hamming import two_nearest


def _brute(q: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.unpackbits(q[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)
    idx = np.argsort(d, axis=1, kind="stable")[:, :2]     # stable: ties go to the lower index
    return np.take_along_axis(d, idx, axis=1), idx


def test_matches_a_brute_force_scan() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    # Queries near some base rows (a few bits flipped), and unrelated ones.
    near = base[rng.choice(300, 40, replace=False)].copy()
    flips = rng.integers(0, 256, (40, 2))
    for row, bits in zip(near, flips):
        for bit in bits:
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    query = np.concatenate([near, rng.integers(0, 256, (60, 32), dtype=np.uint8)])
    dist, idx = two_nearest(query, base)
    want_d, want_i = _brute(query, base)
    assert dist.shape == (100, 2) and idx.shape == (100, 2)
    np.testing.assert_array_equal(dist, want_d)
    np.testing.assert_array_equal(idx, want_i)
    assert (dist[:40, 0] <= 2).all() and (dist[40:, 0] > 60).all()


def test_ties_go_to_the_lower_index() -> None:
    rng = np.random.default_rng(8)
    rows = rng.integers(0, 256, (20, 32), dtype=np.uint8)
    base = np.concatenate([rows, rows])            # every row twice: rows i and i + 20 tie
    dist, idx = two_nearest(rows[:5], base)
    np.testing.assert_array_equal(dist, np.zeros((5, 2), dtype=np.int32))
    np.testing.assert_array_equal(idx, np.stack([np.arange(5), np.arange(5) + 20], axis=1))


def test_empty_query_and_bad_shapes() -> None:
    base = np.zeros((4, 32), dtype=np.uint8)
    dist, idx = two_nearest(np.zeros((0, 32), dtype=np.uint8), base)
    assert dist.shape == (0, 2) and idx.shape == (0, 2)
    with pytest.raises(ValueError, match="at least two"):
        two_nearest(base, base[:1])
    with pytest.raises(ValueError, match="shapes differ"):
        two_nearest(np.zeros((3, 16), dtype=np.uint8), base)


def test_descriptor_widths_that_are_not_whole_words() -> None:
    rng = np.random.default_rng(9)
    base = rng.integers(0, 256, (50, 12), dtype=np.uint8)
    query = rng.integers(0, 256, (30, 12), dtype=np.uint8)
    dist, idx = two_nearest(query, base)
    want_d, want_i = _brute(query, base)
    np.testing.assert_array_equal(dist, want_d)
    np.testing.assert_array_equal(idx, want_i)
