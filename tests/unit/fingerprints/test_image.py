import numpy as np
from PIL import Image

from medialayer.fingerprints.bits import hamming
from medialayer.fingerprints.image import image_fingerprints, unpack_tone


def _fp(img: Image.Image) -> dict:
    return image_fingerprints([np.asarray(img.convert("RGB"))])


def test_mirrored_hash_equals_hash_of_the_flipped_image(photos):
    for img in photos[:5]:
        flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        a, b = _fp(img), _fp(flipped)
        assert hamming(a["phash_mirror"], b["phash"])[0] <= 2
        assert hamming(a["dhash_mirror"], b["dhash"])[0] <= 2


def test_unrelated_photos_are_far_apart(photos):
    fps = image_fingerprints([np.asarray(p) for p in photos])
    n = len(photos)
    i, j = np.triu_indices(n, k=1)
    distances = hamming(fps["phash"][i], fps["phash"][j])
    assert distances.min() >= 16


def test_batch_result_equals_single_results(photos):
    batch = image_fingerprints([np.asarray(p) for p in photos[:4]])
    for k, img in enumerate(photos[:4]):
        single = _fp(img)
        for column in batch:
            assert batch[column][k] == single[column][0]


def test_tone_records_brightness(photos):
    img = photos[0]
    dark = Image.eval(img, lambda v: v // 2)
    r1, g1, b1, _ = unpack_tone(_fp(img)["tone"][0])
    r2, g2, b2, _ = unpack_tone(_fp(dark)["tone"][0])
    assert r2 < r1 and g2 < g1 and b2 < b1


def test_empty_batch_has_every_column():
    from medialayer.fingerprints.image import HASH_COLUMNS, TONE_COLUMN

    assert set(image_fingerprints([])) == {*HASH_COLUMNS, TONE_COLUMN}
