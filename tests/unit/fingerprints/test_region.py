import numpy as np
from PIL import Image, ImageDraw

from medialayer.decoding.image import shrink
from medialayer.fingerprints.region import BLOCK, BORDERS, content_region
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
