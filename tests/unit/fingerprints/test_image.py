import numpy as np
from PIL import Image

from medialayer.fingerprints.bits import hamming
from medialayer.fingerprints.image import (HASH_COLUMNS, REGION_HASH_COLUMNS, TONE_COLUMN, image_fingerprints,
                                           unpack_tone)


def _fp(img: Image.Image, cfg):
    return image_fingerprints([np.asarray(img.convert("RGB"))], cfg.image)


def test_mirrored_hash_equals_hash_of_the_flipped_image(photos, cfg):
    for img in photos[:5]:
        flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        a, b = _fp(img, cfg).hashes, _fp(flipped, cfg).hashes
        assert hamming(a["phash_mirror"], b["phash"])[0] <= 2
        assert hamming(a["dhash_mirror"], b["dhash"])[0] <= 2


def test_unrelated_photos_are_far_apart(photos, cfg):
    fps = image_fingerprints([np.asarray(p) for p in photos], cfg.image).hashes
    i, j = np.triu_indices(len(photos), k=1)
    assert hamming(fps["phash"][i], fps["phash"][j]).min() >= 16


def test_batch_result_equals_single_results(photos, cfg):
    batch = image_fingerprints([np.asarray(p) for p in photos[:4]], cfg.image)
    for k, img in enumerate(photos[:4]):
        single = _fp(img, cfg)
        for column in batch.hashes:
            assert batch.hashes[column][k] == single.hashes[column][0]
        assert np.array_equal(batch.local[k].descriptors, single.local[0].descriptors)


def test_tone_records_brightness(photos, cfg):
    img = photos[0]
    dark = Image.eval(img, lambda v: v // 2)
    r1, g1, b1, _ = unpack_tone(_fp(img, cfg).hashes["tone"][0])
    r2, g2, b2, _ = unpack_tone(_fp(dark, cfg).hashes["tone"][0])
    assert r2 < r1 and g2 < g1 and b2 < b1


def test_region_hashes_equal_frame_hashes_without_a_region(photos, cfg):
    fp = _fp(photos[1], cfg)
    assert fp.region_fractions[0] is None
    for c in HASH_COLUMNS:
        assert fp.hashes[f"region_{c}"][0] == fp.hashes[c][0]


def test_padded_photo_has_a_region_whose_hash_matches_the_photo(photos, cfg):
    img = photos[1]
    canvas = Image.new("RGB", (img.width + 300, img.height + 200), (255, 255, 255))
    canvas.paste(img, (150, 100))
    plain, padded = _fp(img, cfg), _fp(canvas, cfg)
    x0, y0, x1, y1 = padded.region_fractions[0][:4]
    assert abs(x0 - 150 / canvas.width) < 0.03 and abs(x1 - (150 + img.width) / canvas.width) < 0.03
    assert abs(y0 - 100 / canvas.height) < 0.03 and abs(y1 - (100 + img.height) / canvas.height) < 0.03
    assert hamming(plain.hashes["phash"], padded.hashes["region_phash"])[0] <= 8
    assert hamming(plain.hashes["phash"], padded.hashes["phash"])[0] > 12


def test_local_features_are_bounded_and_mirrored(photos, cfg):
    fp = _fp(photos[0], cfg).local[0]
    assert 50 <= fp.count <= cfg.image.local.max_keypoints
    assert fp.descriptors.shape == fp.mirrored.shape == (fp.count, 32)
    assert max(fp.frame_w, fp.frame_h) <= cfg.image.local.max_side
    assert (fp.xy[:, 0] < fp.frame_w).all() and (fp.xy[:, 1] < fp.frame_h).all()
    # The mirrored descriptors describe the flipped picture: the flipped image's own straight
    # descriptors find close partners among them far more often than among the straight ones.
    flipped = _fp(photos[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT), cfg).local[0]

    def close(a, b):
        d = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)
        return int((d.min(axis=1) <= 40).sum())

    assert close(flipped.descriptors, fp.mirrored) > 2 * close(flipped.descriptors, fp.descriptors)


def test_empty_batch_has_every_column(cfg):
    fp = image_fingerprints([], cfg.image)
    assert set(fp.hashes) == {*HASH_COLUMNS, *REGION_HASH_COLUMNS, TONE_COLUMN}
    assert fp.local == [] and fp.region_fractions == []


def test_keypoints_stay_on_a_pasted_photo_and_spill_past_a_blob(photos, cfg):
    from medialayer.fingerprints.local import extract_local_features, working_gray

    gray = working_gray(np.asarray(photos[0].convert("RGB")), cfg.image.local.max_side)
    h, w = gray.shape
    box = (w // 3, h // 3, w // 2, h // 2)       # a small box: fewer corners than the budget
    inside = extract_local_features(gray, cfg.image.local, box, only_within=True)
    spilled = extract_local_features(gray, cfg.image.local, box, only_within=False)
    in_box = lambda f: ((f.xy[:, 0] >= box[0]) & (f.xy[:, 0] < box[2])  # noqa: E731
                        & (f.xy[:, 1] >= box[1]) & (f.xy[:, 1] < box[3]))
    assert inside.count > 0 and in_box(inside).all()
    assert inside.count < cfg.image.local.max_keypoints
    # The block's keypoints come first; the rest of the frame fills the budget after them.
    assert spilled.count == cfg.image.local.max_keypoints
    k = int(in_box(spilled).sum())
    assert k >= inside.count - 2 and in_box(spilled)[:k].all() and not in_box(spilled)[k:].any()


def test_a_solid_block_in_a_corner_is_a_badge_and_keypoints_spill_past_it(photos, cfg):
    from PIL import ImageDraw

    def page(at: tuple[int, int]) -> Image.Image:
        canvas = Image.new("RGB", (640, 480), (255, 255, 255))
        canvas.paste(photos[1].resize((120, 90)), at)   # small: fewer corners than the budget
        draw = ImageDraw.Draw(canvas)
        for i in range(6):               # text elsewhere, so border trimming keeps the page
            draw.text((330, 300 + 22 * i), "Product title goes here", fill=(20, 20, 20))
        return canvas

    def keypoints_inside(img: Image.Image) -> tuple[float, float]:
        """(share of the keypoints on the block, the region's pasted-photo flag)."""
        fp = _fp(img, cfg)
        region, local = fp.region_fractions[0], fp.local[0]
        assert region is not None and int(region[4]) == 1, region        # found as a block
        x = local.xy[:, 0] / local.frame_w
        y = local.xy[:, 1] / local.frame_h
        ok = (x >= region[0] - 0.01) & (x <= region[2] + 0.01) & (y >= region[1] - 0.01) & (y <= region[3] + 0.01)
        return float(ok.mean()), region[5]

    share, pasted = keypoints_inside(page((60, 60)))
    assert share == 1.0 and pasted == 1.0            # a photo on a page: its keypoints only
    share, pasted = keypoints_inside(page((0, 0)))
    assert share < 0.95 and pasted == 0.0            # a corner block: the rest of the frame too


def test_a_small_photo_on_a_page_takes_its_keypoints_from_a_larger_decode(photos, cfg, fingerprinted):
    """A desktop screenshot shows the photo at 40% of the page width: 160 px of the 400-px working
    frame. Its keypoints come from a second decode of the file, so they meet the original's."""
    from PIL import ImageDraw

    from medialayer.config import load_config
    from medialayer.verification import local_evidence, pair_batch

    photo = photos[0]
    page = Image.new("RGB", (1440, 900), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 1440, 54), fill=(30, 90, 160))
    pw = 576
    page.paste(photo.resize((pw, round(pw * photo.height / photo.width))), (58, 74))
    for i in range(5):
        draw.text((700, 90 + 40 * i), "Product title goes here", fill=(30, 30, 30))
    # The photo, the page, and the page no larger than the working frame.
    images = [photo, page, page.resize((400, 250))]
    zoomed = fingerprinted(images, cfg, "z")
    plain = fingerprinted(images, load_config(overrides={"image": {"detail_max_side": 0}}), "p")
    for table in (zoomed, plain):
        assert table.column("status").to_pylist() == ["ok"] * 3
    region = zoomed.column("region")[1].as_py()
    assert region is not None and int(region[4]) == 1 and region[5] == 1.0     # a pasted photo
    assert region[2] - region[0] < 0.5                                          # a small one
    for table in (zoomed, plain):          # both keep their keypoints on the photo
        xy = np.frombuffer(table.column("kp_xy")[1].as_py(), dtype="<u2").reshape(-1, 2) / 4.0
        w, h = table.column("kp_frame_w")[1].as_py(), table.column("kp_frame_h")[1].as_py()
        assert (xy[:, 0] / w >= region[0] - 0.01).all() and (xy[:, 0] / w <= region[2] + 0.01).all()
        assert (xy[:, 1] / h >= region[1] - 0.01).all() and (xy[:, 1] / h <= region[3] + 0.01).all()
    # The frame and the original are the same; only the page's keypoints changed.
    assert zoomed.column("phash").to_pylist() == plain.column("phash").to_pylist()
    assert zoomed.column("kp_desc")[0].as_py() == plain.column("kp_desc")[0].as_py()
    small_region = zoomed.column("region")[2].as_py()
    assert small_region is not None and int(small_region[4]) == 1          # found, but nothing to zoom into
    assert zoomed.column("kp_desc")[2].as_py() == plain.column("kp_desc")[2].as_py()
    assert zoomed.column("kp_count")[1].as_py() == cfg.image.local.max_keypoints
    inliers = [local_evidence(pair_batch(t, np.array([0]), np.array([1])), cfg)[0].inliers for t in (zoomed, plain)]
    assert inliers[0] >= 2 * inliers[1], inliers


def test_the_second_decode_is_larger_and_never_raises(photos, cfg):
    import io

    from medialayer.decoding import decode_image
    from medialayer.media import _decode_larger

    buf = io.BytesIO()
    photos[1].resize((1200, 900)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    first = decode_image(data, cfg.image)
    assert max(first.rgb.shape[:2]) == cfg.image.decode_max_side
    assert max(_decode_larger(data, first, cfg, 900).shape[:2]) == 900
    assert _decode_larger(data[: len(data) // 3], first, cfg, 900) is None     # truncated: None, not an error
    small = decode_image(data, cfg.image)
    assert _decode_larger(data, type(small)(small.rgb, 400, 300, small.format), cfg, 900) is None  # nothing more


def test_area_resize_equals_opencvs_area_resize(photos):
    import cv2

    from medialayer.fingerprints.image import area_resize
    from medialayer.fingerprints.local import working_gray

    differing = total = 0
    for img in photos[:6]:
        gray = working_gray(np.asarray(img.convert("RGB")), 400)            # the working frame
        for g in (gray, gray[17:-23, 31:-9], gray[40:60, 50:90]):              # regions of it, one tiny
            h, w = g.shape
            for size in ((32, 32), (48, max(1, round(48 * h / w))), (9, 8)):
                want = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
                got = area_resize(g, size)
                assert got.shape == want.shape and got.dtype == np.uint8
                diff = np.abs(got.astype(int) - want.astype(int))
                assert diff.max() <= 1                                    # rounding of near-ties only
                differing, total = differing + int((diff > 0).sum()), total + diff.size
    assert differing < 0.01 * total
