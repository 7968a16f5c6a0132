import numpy as np

from medialayer.candidates import band_keys, band_positions, collision_probability
from medialayer.config import load_config


def _flip_bits(h: np.ndarray, n_bits: int, rng) -> np.ndarray:
    out = h.copy()
    for i in range(len(out)):
        for bit in rng.choice(64, n_bits, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out


def test_positions_are_deterministic_and_in_range():
    cfg = load_config().candidates.image
    p1, p2 = band_positions(cfg), band_positions(cfg)
    assert np.array_equal(p1, p2)
    assert p1.shape == (cfg.bands, cfg.bits_per_band)
    assert p1.min() >= 0 and p1.max() < 64


def test_identical_hashes_share_every_band_and_bands_do_not_mix():
    cfg = load_config().candidates.image
    pos = band_positions(cfg)
    h = np.array([0x0123456789ABCDEF, 0x0123456789ABCDEF], dtype=np.uint64)
    keys = band_keys(h, pos)
    assert np.array_equal(keys[0], keys[1])
    band_ids = keys.view(np.uint64) >> np.uint64(32)
    assert band_ids[0].tolist() == list(range(cfg.bands))


def test_measured_collision_rate_matches_the_formula():
    cfg = load_config().candidates.image
    pos = band_positions(cfg)
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    for d in (4, 10, 32):
        near = _flip_bits(base, d, rng)
        shared = (band_keys(base, pos) == band_keys(near, pos)).any(axis=1).mean()
        assert abs(shared - collision_probability(d, cfg)) < 0.05, d


def test_default_layout_finds_near_duplicates_and_rejects_random_pairs():
    cfg = load_config().candidates.image
    assert collision_probability(8, cfg) > 0.97      # recompress/resize/mirror/watermark territory
    assert collision_probability(32, cfg) < 0.001    # unrelated hashes
