import io

import numpy as np
import pytest
from PIL import Image

from medialayer.config import load_config
from medialayer.decoding import decode_image, infer_media_type, sniff_media_type
from medialayer.errors import MediaError


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_decodes_at_bounded_size_and_keeps_original_dimensions(photos, cfg):
    img = photos[0].resize((1600, 1200))
    out = decode_image(_bytes(img, "JPEG"), cfg.image)
    assert (out.width, out.height) == (1600, 1200)
    assert max(out.rgb.shape[:2]) <= cfg.image.decode_max_side
    assert out.rgb.dtype == np.uint8 and out.rgb.shape[2] == 3


def test_decompression_bomb_is_refused_before_decoding(photos):
    cfg = load_config(overrides={"image": {"max_pixels": 10_000}})
    with pytest.raises(MediaError) as err:
        decode_image(_bytes(photos[0].resize((200, 200)), "PNG"), cfg.image)
    assert err.value.code == "decompression_bomb"


def test_huge_declared_dimensions_in_a_small_file_are_refused(cfg):
    bomb = _bytes(Image.new("1", (20000, 20000)), "PNG")   # 400 Mpx that compresses to a few KB
    assert len(bomb) < 200_000
    with pytest.raises(MediaError) as err:
        decode_image(bomb, cfg.image)
    assert err.value.code == "decompression_bomb"


def test_truncated_jpeg_is_a_decode_error(photos, cfg):
    data = _bytes(photos[1], "JPEG")
    with pytest.raises(MediaError) as err:
        decode_image(data[: len(data) // 3], cfg.image)
    assert err.value.code == "decode_error"


def test_html_is_unsupported(cfg):
    with pytest.raises(MediaError) as err:
        decode_image(b"<!doctype html><html></html>", cfg.image)
    assert err.value.code == "unsupported_type"


def test_transparency_is_flattened_onto_white(cfg):
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    out = decode_image(_bytes(rgba, "PNG"), cfg.image)
    assert out.rgb.min() == 255   # fully transparent red shows as the white page behind it


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "L", "LA"])
def test_unusual_modes_decode_to_rgb(photos, cfg, mode):
    img = photos[2].resize((120, 90))
    if mode == "I;16":
        src = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257)
        assert src.mode == "I;16"
        data = _bytes(src, "PNG")
    elif mode == "P":
        src = img.convert("P")
        src.info["transparency"] = 0
        data = _bytes(src, "PNG", transparency=0)
    elif mode == "CMYK":
        data = _bytes(img.convert("CMYK"), "JPEG")
    else:
        data = _bytes(img.convert(mode), "PNG")
    out = decode_image(data, cfg.image)
    assert out.rgb.shape == (90, 120, 3)


def test_exif_rotation_is_applied(photos, cfg):
    upright = photos[0].resize((300, 200))
    stored = upright.transpose(Image.Transpose.ROTATE_90)   # sideways pixels ...
    exif = Image.Exif()
    exif[0x0112] = 6                                      # ... and a tag saying "rotate 90 CW to view"
    out = decode_image(_bytes(stored, "JPEG", exif=exif.tobytes()), cfg.image)
    assert (out.width, out.height) == (300, 200)
    assert out.rgb.shape[:2] == (200, 300)


def test_sniffing_trusts_content_over_names():
    assert sniff_media_type(b"\xff\xd8\xff\xe0rest") == "image"
    assert sniff_media_type(b"\x00\x00\x00\x18ftypmp42") == "video"
    assert sniff_media_type(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "audio"
    assert sniff_media_type(b"<html>") is None
    assert infer_media_type("https://x.test/a/b.JPG?x=1") == "image"
    assert infer_media_type("https://x.test/clip.mp4") == "video"
    assert infer_media_type("https://x.test/noext") is None


def test_fast_jpeg_path_agrees_with_the_pillow_path(photos, cfg):
    # Bytes after the end marker send the same picture through Pillow instead of OpenCV.
    data = _bytes(photos[3].resize((1000, 750)), "JPEG", quality=90)
    fast = decode_image(data, cfg.image)
    slow = decode_image(data + b"trailing", cfg.image)
    assert fast.rgb.shape == slow.rgb.shape == (300, 400, 3)
    assert (fast.width, fast.height) == (slow.width, slow.height) == (1000, 750)
    assert np.abs(fast.rgb.astype(int) - slow.rgb.astype(int)).mean() < 3.0
    # Channel order: the fast path must return RGB, not OpenCV's BGR.
    assert np.allclose(fast.rgb.reshape(-1, 3).mean(0), slow.rgb.reshape(-1, 3).mean(0), atol=2.0)


def test_grey_jpeg_decodes_to_three_equal_channels(photos, cfg):
    out = decode_image(_bytes(photos[0].convert("L").resize((900, 600)), "JPEG"), cfg.image)
    assert out.rgb.shape == (267, 400, 3)
    assert (out.rgb[..., 0] == out.rgb[..., 1]).all() and (out.rgb[..., 1] == out.rgb[..., 2]).all()
