import numpy as np
import pytest

from medialayer.key_filter import KeyFilter, filter_log2_bits


def test_a_filter_holds_every_key_added_and_few_others():
    rng = np.random.default_rng(3)
    keys = rng.integers(-2**63, 2**63 - 1, size=200_000, dtype=np.int64)
    f = KeyFilter.empty(filter_log2_bits(keys.size, 10, 1 << 30), probes=3)
    f.add(keys[:100_000])
    f.add(keys[100_000:])
    assert f.contains(keys).all()
    others = rng.integers(-2**63, 2**63 - 1, size=200_000, dtype=np.int64)
    passed = f.contains(others).mean()
    # ~10 bits a key, 3 probes: about 1.7% pass (fill ** probes), far from all or none
    assert 0.005 < passed < 0.04
    assert passed == pytest.approx(f.fill() ** 3, rel=0.2)


def test_filters_of_parts_join_into_the_filter_of_the_whole():
    keys = np.arange(-5_000, 5_000, dtype=np.int64) * 7919
    whole, a, b = (KeyFilter.empty(16, 2) for _ in range(3))
    whole.add(keys)
    a.add(keys[::2])
    b.add(keys[1::2])
    joined = a.union(b)
    assert np.array_equal(joined.words, whole.words)
    again = KeyFilter.from_bytes(joined.to_bytes(), 2)
    assert np.array_equal(again.words, whole.words) and again.contains(keys).all()
    with pytest.raises(ValueError, match="one size"):
        whole.union(KeyFilter.empty(17, 2))


def test_an_empty_filter_passes_nothing_and_empty_input_is_fine():
    f = KeyFilter.empty(10, 3)
    f.add(np.zeros(0, dtype=np.int64))
    assert not f.contains(np.arange(1000, dtype=np.int64)).any()
    assert f.contains(np.zeros(0, dtype=np.int64)).size == 0


def test_filter_size_follows_the_key_count_up_to_its_cap():
    assert filter_log2_bits(1_000_000, 10, 1 << 30) == 24          # 1e7 bits -> 2^24
    assert filter_log2_bits(1_000_000, 10, 1 << 20) == 23          # capped at 1 MB = 2^23 bits
    assert filter_log2_bits(0, 10, 1 << 20) == 6                   # never below one word
    with pytest.raises(ValueError):
        KeyFilter.empty(5, 3)
