import numpy as np
from PIL import Image

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
