import numpy as np

from medialayer.fingerprints.bits import hamming, pack_bits, to_signed, to_unsigned, unpack_bits


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(50, 64))
    assert np.array_equal(unpack_bits(pack_bits(bits)), bits)


def test_hamming_equals_bit_count_of_xor():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**63, size=200, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 200, dtype=np.uint64)
    b = rng.integers(0, 2**63, size=200, dtype=np.uint64)
    expected = [bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b)]
    assert hamming(a, b).tolist() == expected
    # The signed (Spark/Arrow) view of the same bits gives the same distances.
    assert hamming(to_signed(a), to_signed(b)).tolist() == expected
    assert np.array_equal(to_unsigned(to_signed(a)), a)
