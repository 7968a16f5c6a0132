"""The picture check behind keypoint fits, on real photographs."""
import numpy as np
from PIL import Image

from medialayer.fingerprints.image import pack_picture, shrink_gray, unpack_picture
from medialayer.matching.picture import picture_agreement


def _gray(img: Image.Image, side: int = 400) -> np.ndarray:
    g = np.asarray(img.convert("L"))
    return shrink_gray(g, side)


def test_pictures_round_trip_and_bad_blobs_are_none():
    pic = np.arange(48 * 30, dtype=np.uint8).reshape(30, 48)
    assert (unpack_picture(pack_picture(pic)) == pic).all()
    assert unpack_picture(None) is None and unpack_picture(b"") is None
    assert unpack_picture(bytes([48]) + b"\x00" * 47) is None      # not a whole number of rows


def test_a_copy_agrees_under_its_fit_and_another_photo_does_not(photos):
    a = _gray(photos[0])
    h, w = a.shape
    # b: a's middle, scaled by 0.8 (the fit maps a's working frame to b's: x_b = 0.8 (x_a - 40)).
    crop = photos[0].resize((w, h)).crop((40, 30, w - 40, h - 30))
    b = _gray(crop.resize((int(crop.width * 0.8), int(crop.height * 0.8))))
    model = (0.8, 0.0, -32.0, 0.0, 0.8, -24.0)
    pa, pb = shrink_gray(a, 48), shrink_gray(b, 48)
    same = picture_agreement(pa, pb, model, (w, h), (b.shape[1], b.shape[0]), False, 0.3)
    assert same is not None and same > 0.9, same
    other = _gray(photos[4].resize((crop.width, crop.height)).resize((b.shape[1], b.shape[0])))
    diff = picture_agreement(pa, shrink_gray(other, 48), model, (w, h), (b.shape[1], b.shape[0]), False, 0.3)
    assert diff is not None and diff < 0.5, diff
    # Mirrored: b flipped left-right, and the fit given against the flipped b.
    flipped = picture_agreement(pa, pb[:, ::-1], model, (w, h), (b.shape[1], b.shape[0]), True, 0.3)
    assert abs(flipped - same) < 1e-6
    # A fit that lays the copy in the wrong place does not agree.
    wrong = (0.8, 0.0, 30.0, 0.0, 0.8, 20.0)
    off = picture_agreement(pa, pb, wrong, (w, h), (b.shape[1], b.shape[0]), False, 0.3)
    assert off is None or off < same - 0.2, (off, same)


def test_an_opaque_banner_on_the_copy_is_trimmed_away(photos):
    from medialayer.synth.edits import text_overlay

    img = photos[2]
    a = _gray(img)
    h, w = a.shape
    banner = _gray(text_overlay(img.resize((w, h)), np.random.default_rng(1)))
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    pa, pb = shrink_gray(a, 48), shrink_gray(banner, 48)
    assert picture_agreement(pa, pb, identity, (w, h), (w, h), False, 0.3) > 0.9


def test_the_residual_quantile_equals_numpys():
    from medialayer.matching.picture import _quantile

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 7, 48, 2304):
        for q in (0.0, 0.3, 0.5, 0.85, 0.999, 1.0):
            v = np.abs(rng.normal(size=n))
            ties = rng.integers(0, 4, n).astype(np.float64)     # many equal order statistics
            assert _quantile(v, q) == np.quantile(v, q)
            assert _quantile(ties, q) == np.quantile(ties, q)
