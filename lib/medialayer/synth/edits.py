"""Seller-style image edits, seeded and parametrised: the shared source of test and benchmark copies.

Each edit takes a PIL RGB image and a numpy Generator and returns a new RGB image; parameters are
drawn from ranges that match what sellers do (the issue tracker's "edit families"). Tests, the sample
catalog and `make bench-accuracy` all use these, so a family means the same thing everywhere.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

Edit = Callable[[Image.Image, np.random.Generator], Image.Image]

_WORDS = ["BEST PRICE", "SALE", "FREE SHIPPING", "NEW", "HOT DEAL", "ORIGINAL", "TOP SELLER",
          "LIMITED", "-30%", "BUY NOW", "SHOPMART", "MEGASTORE", "OFFICIAL", "PREMIUM"]


def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, int(size)))


def jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def recompress(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return jpeg_roundtrip(img, rng.integers(15, 45))


def resize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = float(rng.choice([rng.uniform(0.25, 0.6), rng.uniform(1.3, 1.8)]))
    return img.resize((max(8, round(img.width * scale)), max(8, round(img.height * scale))),
                      Image.Resampling.BILINEAR)


def tone(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = ImageEnhance.Brightness(img).enhance(float(rng.choice([rng.uniform(0.65, 0.85), rng.uniform(1.15, 1.4)])))
    out = ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.75, 1.3)))
    out = ImageEnhance.Color(out).enhance(float(rng.uniform(0.5, 1.6)))
    arr = np.asarray(out, dtype=np.float32) * rng.uniform(0.88, 1.12, size=3)   # white-balance cast
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def mirror(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _crop_keep(img: Image.Image, rng: np.random.Generator, lo: float, hi: float) -> Image.Image:
    kw, kh = rng.uniform(lo, hi), rng.uniform(lo, hi)
    w, h = round(img.width * kw), round(img.height * kh)
    x0 = int(rng.integers(0, img.width - w + 1))
    y0 = int(rng.integers(0, img.height - h + 1))
    return img.crop((x0, y0, x0 + w, y0 + h))


def crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A moderate crop: 80-92% of each side kept, at a random offset."""
    return _crop_keep(img, rng, 0.80, 0.92)


def crop_heavy(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A heavy crop: 65-78% of each side kept, at a random offset."""
    return _crop_keep(img, rng, 0.65, 0.78)


def pad(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Letterbox or pad to a new aspect ratio with a flat colour (white, black or a brand colour)."""
    colour = [(255, 255, 255), (0, 0, 0), (240, 240, 240), tuple(int(c) for c in rng.integers(0, 256, 3))][
        int(rng.integers(0, 4))]
    side = max(img.width, img.height)
    target = float(rng.choice([1.0, 16 / 9, 4 / 5, 3 / 2]))
    w = max(img.width, round(side * target)) if target >= 1 else img.width
    h = max(img.height, round(w / target))
    w = max(w, round(img.width * rng.uniform(1.08, 1.25)))
    canvas = Image.new("RGB", (w, h), colour)
    canvas.paste(img, ((w - img.width) // 2 + int(rng.integers(-5, 6)), (h - img.height) // 2))
    return canvas


def rotate(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A small rotation (2-6 degrees either way); corners either filled white or cropped away."""
    angle = float(rng.uniform(2, 6)) * (1 if rng.random() < 0.5 else -1)
    if rng.random() < 0.5:
        return img.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    out = img.rotate(angle, Image.Resampling.BICUBIC, expand=False)
    m = int(0.5 * np.tan(np.radians(abs(angle))) * max(img.width, img.height)) + 2
    return out.crop((m, m, img.width - m, img.height - m))


def watermark(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Semi-transparent shop name, tiled diagonally or placed large across the middle."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = str(rng.choice(_WORDS[10:]))
    alpha = int(rng.integers(70, 140))
    size = max(12, img.height // int(rng.integers(8, 14)))
    f = font(size)
    if rng.random() < 0.5:
        for y in range(0, img.height, size * 3):
            for x in range(-size * 2, img.width, size * 8):
                draw.text((x + (y // 3) % (size * 4), y), text, fill=(255, 255, 255, alpha), font=f)
    else:
        draw.text((img.width // 8, img.height // 2 - size), text, fill=(255, 255, 255, alpha),
                  font=font(size * 2), stroke_width=2, stroke_fill=(0, 0, 0, alpha))
    return Image.alpha_composite(base, layer).convert("RGB")


def sticker(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An opaque badge ("SALE -30%") covering 4-10% of the picture, near a corner."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    frac = float(rng.uniform(0.04, 0.10))
    r = int(np.sqrt(frac * img.width * img.height / np.pi))
    cx = int(rng.choice([r + 5, img.width - r - 5]))
    cy = int(rng.choice([r + 5, img.height - r - 5]))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    if rng.random() < 0.5:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=(255, 255, 255), width=3)
    else:
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    draw.text((cx - r * 0.7, cy - r * 0.25), str(rng.choice(_WORDS[:10])), fill=(255, 255, 255),
              font=font(r * 0.4))
    return out


def text_overlay(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A banner of promotional text across the top or bottom, on a solid or translucent strip."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    band = int(img.height * rng.uniform(0.08, 0.16))
    y0 = 0 if rng.random() < 0.5 else img.height - band
    colour = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(160, 256)),)
    draw.rectangle((0, y0, img.width, y0 + band), fill=colour)
    words = " ".join(rng.choice(_WORDS, size=2, replace=False))
    draw.text((img.width * 0.05, y0 + band * 0.2), words, fill=(255, 255, 255, 255), font=font(band * 0.6))
    return Image.alpha_composite(base, layer).convert("RGB")


def screenshot(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo shown inside a product page (phone or desktop layout) and captured whole."""
    phone = rng.random() < 0.5
    W, H = (720, 1560) if phone else (1440, 900)
    bg = (255, 255, 255) if rng.random() < 0.7 else (245, 245, 248)
    page = Image.new("RGB", (W, H), bg)
    draw = ImageDraw.Draw(page)
    bar = int(H * 0.06)
    draw.rectangle((0, 0, W, bar), fill=tuple(int(c) for c in rng.integers(0, 200, 3)))
    draw.text((W * 0.04, bar * 0.25), "shop.example  |  Search products", fill=(255, 255, 255), font=font(bar * 0.45))
    if phone:
        frac = float(rng.uniform(0.85, 1.0))
        pw = int(W * frac)
        ph = int(pw * img.height / img.width)
        x0, y0 = (W - pw) // 2, bar + int(H * 0.03)
    else:
        frac = float(rng.uniform(0.4, 0.55))
        pw = int(W * frac)
        ph = int(pw * img.height / img.width)
        if ph > H - bar - 40:
            ph = H - bar - 40
            pw = int(ph * img.width / img.height)
        x0, y0 = int(W * 0.04), bar + 20
    page.paste(img.resize((pw, ph), Image.Resampling.LANCZOS), (x0, y0))
    tx, ty = (int(W * 0.05), y0 + ph + 20) if phone else (x0 + pw + 40, y0 + 10)
    f = font(int(H * (0.022 if phone else 0.03)))
    for i, line in enumerate(["Product title goes here", "$ 49.99   free delivery", "Seller: shop " + str(rng.integers(100, 999)),
                              "4.5 stars (1,203 reviews)", "Add to cart"]):
        draw.text((tx, ty + i * int(f.size * 1.8)), line, fill=(30, 30, 30), font=f)
    shot = page
    if rng.random() < 0.5:   # captured on a high-density screen and shared at a smaller size
        shot = page.resize((int(W * 0.75), int(H * 0.75)), Image.Resampling.BILINEAR)
    return jpeg_roundtrip(shot, rng.integers(70, 92)) if rng.random() < 0.5 else shot


def blur(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 1.6))))


def product_on_white(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A cut-out of a photo (an object stand-in) centred on a white square canvas, as catalogues shoot.
    Not an edit: an original of the kind that makes mostly-background frames (benchmark and tests)."""
    w, h = photo.size
    cw, ch = int(w * rng.uniform(0.3, 0.5)), int(h * rng.uniform(0.4, 0.6))
    x0, y0 = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
    obj = photo.crop((x0, y0, x0 + cw, y0 + ch))
    side = 1000
    fit = side * rng.uniform(0.55, 0.75) / max(obj.size)     # products fill most of a catalogue frame
    obj = obj.resize((max(8, round(obj.width * fit)), max(8, round(obj.height * fit))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    mask = Image.new("L", obj.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, obj.width - 1, obj.height - 1), radius=min(obj.size) // 4, fill=255)
    canvas.paste(obj, ((side - obj.width) // 2, (side - obj.height) // 2), mask)
    return canvas


EDITS: dict[str, Edit] = {
    "recompress": recompress, "resize": resize, "tone": tone, "mirror": mirror, "crop": crop,
    "crop_heavy": crop_heavy, "pad": pad, "rotate": rotate, "watermark": watermark, "sticker": sticker,
    "text_overlay": text_overlay, "screenshot": screenshot,
}

# Combinations sellers actually chain; each is also an edit family of its own in the benchmark.
COMBOS: dict[str, tuple[str, ...]] = {
    "mirror+crop": ("mirror", "crop"),
    "crop_heavy+recompress": ("crop_heavy", "recompress"),
    "tone+text_overlay": ("tone", "text_overlay"),
    "rotate+watermark": ("rotate", "watermark"),
    "pad+sticker": ("pad", "sticker"),
    "mirror+screenshot": ("mirror", "screenshot"),
    "crop+tone+recompress": ("crop", "tone", "recompress"),
}


def apply_chain(img: Image.Image, names: tuple[str, ...] | list[str], rng: np.random.Generator) -> Image.Image:
    for name in names:
        img = EDITS[name](img, rng)
    return img


def family_of(name: str) -> tuple[str, ...]:
    """Edit name (single or combination, `a+b`) -> the chain of edits it applies."""
    return COMBOS.get(name, tuple(name.split("+")))
