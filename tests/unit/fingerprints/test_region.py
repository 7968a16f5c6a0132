from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw

from medialayer.decoding.image import shrink
from medialayer.fingerprints.region import BLOCK, BORDERS, TILTED, content_region, straighten, tilted_photo
from medialayer.synth.edits import screenshot


def _region(img: Image.Image, cfg):
    thumb = shrink(np.asarray(img.convert("RGB")), cfg.image.region.analysis_side)
    box = content_region(thumb, cfg.image.region)
    if box is None:
        return None, thumb
    return box, thumb


def test_plain_photo_has_no_region(photos, cfg):
    # astronaut, chelsea, coffee, motorcycle, china: textured to every edge (the rocket's black
    # night sky, by contrast, legitimately frames a region).
    assert all(_region(photos[k], cfg)[0] is None for k in (0, 1, 2, 4, 5))


def test_letterbox_bars_are_trimmed(photos, cfg):
    img = photos[5]
    canvas = Image.new("RGB", (img.width, img.height * 2), (0, 0, 0))
    canvas.paste(img, (0, img.height // 2))
    box, thumb = _region(canvas, cfg)
    assert box is not None and box.kind == BORDERS
    assert abs(box.y0 / thumb.shape[0] - 0.25) < 0.03 and abs(box.y1 / thumb.shape[0] - 0.75) < 0.03


def test_photo_inside_a_screenshot_is_found(photos, cfg):
    rng = np.random.default_rng(3)
    for img in photos[:4]:
        shot = screenshot(img, rng)
        box, thumb = _region(shot, cfg)
        assert box is not None and box.kind == BLOCK
        # The photo keeps its aspect ratio inside the page; the box must too (text is not included).
        assert abs(np.log((box.width / box.height) / (img.width / img.height))) < 0.12


def test_a_pasted_photo_is_a_solid_block_and_a_blob_is_not(photos, cfg):
    # A photo pasted on a page fills its box; a round object on a plain backdrop (or one detailed
    # patch of a smooth photo) does not, and keypoint extraction treats the two differently.
    shot, thumb = _region(screenshot(photos[1], np.random.default_rng(5)), cfg)
    assert shot is not None and shot.kind == BLOCK and shot.solidity >= cfg.image.region.min_photo_solidity
    disc = Image.new("RGB", (640, 480), (250, 250, 250))
    patch = photos[0].resize((200, 200))
    mask = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, 199, 199), fill=255)
    disc.paste(patch, (220, 140), mask)
    draw = ImageDraw.Draw(disc)              # page chrome, so that border trimming keeps the page
    draw.rectangle((0, 0, 639, 30), fill=(40, 60, 120))
    draw.text((20, 400), "Product title goes here", fill=(20, 20, 20))
    blob, _ = _region(disc, cfg)
    assert blob is not None and blob.kind == BLOCK, blob
    assert 0.6 < blob.solidity < cfg.image.region.min_photo_solidity, blob      # a disc covers pi/4 of its box


def _turned(img: Image.Image, degrees: float) -> Image.Image:
    """The photo rotated on a white canvas that grows to hold it (the corners filled white)."""
    return img.convert("RGB").rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))


def _gray(img: Image.Image, side: int = 400) -> np.ndarray:
    return np.asarray(Image.fromarray(shrink(np.asarray(img.convert("RGB")), side)).convert("L"), dtype=np.float64)


def test_a_photo_turned_on_a_white_canvas_is_found_and_straightened(photos, cfg):
    rc = cfg.image.region
    for k in (0, 1, 2, 5):
        for degrees in (-6.0, -2.5, 3.0, 5.5):
            turned = _turned(photos[k], degrees)
            thumb = shrink(np.asarray(turned), rc.analysis_side)
            assert content_region(thumb, rc) is None        # filled corners: nothing to trim
            tilt = tilted_photo(thumb, rc)
            assert tilt is not None, (k, degrees)
            assert abs(abs(tilt.angle) - abs(degrees)) < 0.8, (k, degrees, tilt)
            gray = _gray(turned)
            upright = straighten(gray.astype(np.uint8), tilt, gray.shape[1] / thumb.shape[1])
            original = _gray(photos[k])
            # The straightened photo is the original again: same aspect, pixels that correlate.
            assert abs(np.log((upright.shape[1] / upright.shape[0]) / (original.shape[1] / original.shape[0]))) < 0.05
            # Compared at the scale the hashes see (they are computed from 32 px thumbnails).
            size = (64, round(64 * original.shape[0] / original.shape[1]))
            back = np.asarray(Image.fromarray(upright).resize(size, Image.Resampling.BOX), dtype=np.float64)
            ref = np.asarray(Image.fromarray(original.astype(np.uint8)).resize(size, Image.Resampling.BOX), dtype=np.float64)
            assert np.corrcoef(back.ravel(), ref.ravel())[0, 1] > 0.95, (k, degrees)


def test_only_a_tilted_rectangle_on_a_flat_canvas_counts_as_tilted(photos, cfg):
    rc = cfg.image.region

    def tilt_of(img: Image.Image):
        return tilted_photo(shrink(np.asarray(img.convert("RGB")), rc.analysis_side), rc)

    assert all(tilt_of(photos[k]) is None for k in (0, 1, 2, 4, 5))          # full-bleed photos
    padded = Image.new("RGB", (photos[5].width + 200, photos[5].height), (255, 255, 255))
    padded.paste(photos[5], (100, 0))
    assert tilt_of(padded) is None                                           # straight on its canvas
    assert tilt_of(screenshot(photos[1], np.random.default_rng(2))) is None  # a page
    # A round product on white, however it is turned, does not fill a rectangle.
    disc = Image.new("RGB", (600, 450), (255, 255, 255))
    ImageDraw.Draw(disc).ellipse((120, 40, 480, 410), fill=(180, 40, 40))
    assert tilt_of(_turned(disc, 4.0)) is None
    # Turned and cropped to the frame (no filled corners): nothing to straighten here.
    turned = photos[0].convert("RGB").rotate(4.0, Image.Resampling.BICUBIC, expand=False)
    assert tilt_of(turned.crop((30, 30, turned.width - 30, turned.height - 30))) is None
    # Off: no tilt, ever.
    from dataclasses import replace
    assert tilted_photo(shrink(np.asarray(_turned(photos[0], 4.0)), rc.analysis_side), replace(rc, max_tilt_deg=0.0)) is None


def test_a_tilted_copy_is_hashed_straightened(photos, cfg):
    from medialayer.fingerprints.bits import hamming
    from medialayer.fingerprints.image import image_fingerprints

    for k in (0, 2, 5):
        fps = image_fingerprints([shrink(np.asarray(photos[k].convert("RGB")), 400),
                                  shrink(np.asarray(_turned(photos[k], -5.0)), 400)], cfg.image)
        assert fps.region_fractions[0] is None and int(fps.region_fractions[1][4]) == TILTED
        h = fps.hashes
        frame = hamming(h["phash"][0], h["phash"][1])
        region = hamming(h["phash"][0], h["region_phash"][1])
        assert region <= 8 and region < frame, (k, region, frame)


def test_a_badge_reaching_into_the_padding_is_peeled_off(photos, cfg, padded_with_badge):
    # A seller pads the photo to a square, then sticks a round badge on the canvas corner: it covers
    # the photo's corner and reaches into the padding, so trimmed borders alone enclose the badge too.
    canvas, photo_box = padded_with_badge(photos[2])
    photo = np.array(photo_box) / canvas.width
    box, thumb = _region(canvas, cfg)
    assert box is not None and box.kind == BORDERS
    got = np.array([box.x0, box.y0, box.x1, box.y1]) / thumb.shape[0]
    assert np.abs(got - photo).max() < 0.03, (got, photo)
    unpeeled = replace(cfg.image.region, peel_below=0.0)
    plain = content_region(thumb, unpeeled)
    assert plain.x0 / thumb.shape[0] < 0.03 and plain.y1 / thumb.shape[0] > 0.97      # the badge's corner
