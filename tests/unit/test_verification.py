from dataclasses import replace

import numpy as np
import pyarrow as pa

from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.synth.edits import recompress
from medialayer.verification import PREFILTER_COLUMNS, column_rows, global_prefilter, pair_batch, verify_batch


def test_column_rows_read_blobs_in_place_as_to_pylist_would():
    values = [b"\x01\x02\x03", None, b"", b"\xff" * 40, None, b"tail"]
    for kind in (pa.binary(), pa.large_binary()):
        column = pa.array(values, type=kind)
        for part in (column, column.slice(1, 4), pa.chunked_array([column.slice(0, 2), column.slice(2)])):
            rows = column_rows(part)
            assert [None if r is None else bytes(r) for r in rows] == part.to_pylist()
            assert all(r is None or isinstance(r, memoryview) for r in rows)
    assert column_rows(pa.array([b"x", b"y"])) == [memoryview(b"x"), memoryview(b"y")]
    assert column_rows(pa.array([[1.0, 2.0], None])) == [[1.0, 2.0], None]     # other types: to_pylist
    assert column_rows(pa.array([], type=pa.binary())) == []


def test_global_prefilter_keeps_hash_copies_and_drops_strangers(photos, cfg, fingerprinted):
    """Pairs without shared keypoint words go on to keypoint matching only when their global hashes
    already score record_threshold; the prefilter must agree with full verification on those."""
    rng = np.random.default_rng(3)
    images = [photos[0], recompress(photos[0], rng), photos[7], photos[12]]
    table = fingerprinted(images, cfg, "p")
    a, b = np.array([0, 0, 2]), np.array([1, 2, 3])
    full = pair_batch(table, a, b)
    slim = full.select([f"{c}_{s}" for s in "ab" for c in PREFILTER_COLUMNS])
    keep = global_prefilter(slim, cfg)
    assert keep.tolist() == [True, False, False]
    verified = verify_batch(full, cfg, keep_below_record=True).column("similarity").to_numpy()
    assert verified[0] >= cfg.matching.record_threshold

    # A pair with a video or audio side is never decided by image hashes.
    video = slim.set_column(slim.schema.get_field_index("media_type_b"), "media_type_b",
                            pa.array(["video"] * 3))
    assert global_prefilter(video, cfg).all()



def test_a_keypoint_fit_is_refused_when_the_pictures_under_it_disagree(photos, cfg, fingerprinted):
    """The verifier's last keypoint check: the same fit is kept between a photo and its watermarked
    copy, and refused between two different photos (as when only a shared watermark word fitted)."""
    from dataclasses import replace

    from medialayer.matching.local import LocalEvidence
    from medialayer.synth.edits import watermark
    from medialayer.matching.picture import check_pictures
    from medialayer.verification import local_side

    images = [photos[5], watermark(photos[5], np.random.default_rng(4)), photos[9].resize(photos[5].size)]
    rows = fingerprinted(images, cfg, "w").to_pylist()
    assert all(r["picture"] for r in rows)
    sides = [local_side(r["kp_xy"], r["kp_desc"], r["kp_desc_mirror"], r["kp_frame_w"], r["kp_frame_h"]) for r in rows]
    # Inliers spread over the picture, as a copy's are (a smaller fit also has its fine detail checked).
    fit = LocalEvidence(inliers=40, similarity=0.93, shared_a=1.0, shared_b=1.0, occupancy=0.9, spread=0.5,
                        model=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    lc = cfg.matching.image.local
    assert check_pictures(fit, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1], lc).found
    refused = check_pictures(fit, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], lc)
    assert not refused.found and refused.rejected.startswith("pictures disagree"), refused
    # Off, or a row without a picture (fingerprinted before pictures were kept): the fit stands.
    off = replace(lc, min_picture_agreement=-1.0)
    assert check_pictures(fit, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], off).found
    assert check_pictures(fit, rows[0]["picture"], None, sides[0], sides[2], lc).found


def test_an_aligned_trusted_fit_is_left_to_the_pictures(photos, cfg, fingerprinted):
    """A sticker on a smooth photo can move its frame hashes far enough for the aligned-template
    guard to refuse an aligned fit. A fit with many inliers spread over the frame is no shared word
    or logo, so the guard hands it to the pictures: kept for the sticker copy, refused for a
    different photo, and refused without pictures. Untrusted fits are refused as before."""
    from dataclasses import replace

    from medialayer.matching.image import check_aligned
    from medialayer.matching.local import LocalEvidence
    from medialayer.matching.picture import check_pictures
    from medialayer.synth.edits import sticker
    from medialayer.verification import local_side

    images = [photos[5], sticker(photos[5], np.random.default_rng(3)), photos[9].resize(photos[5].size)]
    rows = fingerprinted(images, cfg, "s").to_pylist()
    sides = [local_side(r["kp_xy"], r["kp_desc"], r["kp_desc_mirror"], r["kp_frame_w"], r["kp_frame_h"]) for r in rows]
    lc = cfg.matching.image.local
    assert lc.aligned_trusted_to_pictures
    trusted = LocalEvidence(inliers=lc.picture_trusted_inliers + 20, similarity=0.98, shared_a=0.99, shared_b=0.99,
                            occupancy=0.8, spread=lc.picture_trusted_spread + 0.1, model=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    far = lc.aligned_max_frame_distance + 0.1        # the frames' hashes differ: a template, or a sticker
    handed = check_aligned(trusted, far, lc)
    assert handed.found and handed.pictures_must_agree.startswith("aligned frames that differ"), handed
    assert check_pictures(handed, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1], lc).found
    other = check_pictures(handed, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], lc)
    assert not other.found and other.rejected.startswith("pictures disagree"), other
    blind = check_pictures(handed, rows[0]["picture"], None, sides[0], sides[1], lc)
    assert not blind.found and blind.rejected == handed.pictures_must_agree
    # The same pictures do not rescue a fit the guard does not trust, nor any fit with the option off.
    confined = replace(trusted, spread=lc.confined_spread)
    assert check_aligned(confined, far, lc).rejected.startswith("aligned frames that differ")
    off = replace(lc, aligned_trusted_to_pictures=False)
    assert not check_aligned(trusted, far, off).found
    paged = replace(trusted, occupancy=lc.aligned_page_min_occupancy - 0.1)
    assert check_aligned(paged, 0.0, lc, page_like=True).pictures_must_agree.startswith("aligned pages")
    # A trusted fit is judged by its better-covered side; any other by its worse-covered side too.
    one_sided = replace(trusted, occupancy=1.0, occupancy_least=lc.aligned_page_min_occupancy - 0.1)
    assert not check_aligned(one_sided, 0.0, lc, page_like=True).pictures_must_agree
    # On pages an untrusted found fit goes to the pictures too, which must then agree closely, fine
    # detail included.
    few = replace(paged, inliers=lc.picture_trusted_inliers - 20)
    handed = check_aligned(few, 0.0, lc, page_like=True)
    assert handed.found and handed.agreement_needed == lc.aligned_page_picture_agreement > lc.min_picture_agreement
    assert handed.detail_needed == lc.aligned_page_detail_agreement > 0
    few_one_sided = replace(one_sided, inliers=lc.picture_trusted_inliers - 20)
    assert check_aligned(few_one_sided, 0.0, lc, page_like=True).pictures_must_agree.startswith("aligned pages")
    assert not check_aligned(few, 0.0, replace(lc, aligned_page_picture_agreement=0.0), page_like=True).found
    assert not check_aligned(few, far, lc).found          # frames that differ: refused as before


def test_a_sticker_on_a_product_shot_on_white_is_a_copy_though_its_inliers_cover_little_of_the_frame(
        photos, cfg, fingerprinted):
    """A mostly-white frame whose aligned fit covers little of it looks like two pages sharing chrome.
    Such a fit goes to the pictures, which must agree as closely as aligned_page_picture_agreement:
    the sticker copy's do; another product under the same sticker does not match."""
    from medialayer.synth.edits import product_on_white, sticker
    from medialayer.verification import local_evidence

    assert cfg.matching.image.local.aligned_page_picture_agreement > 0
    rng = np.random.default_rng(1401)
    product = product_on_white(photos[14], rng)
    same_sticker = np.random.default_rng()
    same_sticker.bit_generator.state = rng.bit_generator.state
    other = product_on_white(photos[3], np.random.default_rng(7))     # the same 1000-px canvas
    images = [product, sticker(product, rng), sticker(other, same_sticker)]
    table = fingerprinted(images, cfg, "w")
    a, b = np.array([0, 0]), np.array([1, 2])
    copy, stranger = verify_batch(pair_batch(table, a, b), cfg, keep_below_record=True).to_pylist()
    assert copy["match_found"] and "sticker" in copy["reason"], copy
    assert not stranger["match_found"], stranger
    first = pair_batch(table, a[:1], b[:1])
    refuse = cfg.with_overrides({"matching": {"image": {"local": {"aligned_page_picture_agreement": 0.0}}}})
    ev = local_evidence(first, refuse)[0]
    assert not ev.found and ev.rejected == "aligned pages matching on chrome or text only", ev
    strict = cfg.with_overrides({"matching": {"image": {"local": {"aligned_page_picture_agreement": 1.0}}}})
    ev = local_evidence(first, strict)[0]
    assert not ev.found and ev.rejected.startswith("pictures disagree"), ev
    strict = cfg.with_overrides({"matching": {"image": {"local": {"aligned_page_detail_agreement": 1.0}}}})
    ev = local_evidence(first, strict)[0]
    assert not ev.found and ev.rejected.startswith("fine detail disagrees"), ev


def test_a_seller_badge_template_around_different_photos_is_not_a_copy(photos, cfg, fingerprinted, gradient):
    """A seller frames every listing the same way: the photo on a black canvas, a FREE SHIPPING
    badge over its corner. Around a smooth photo the badge's corners are all of that side's detail,
    so a fit on the badge covered the better side fully and matched a framed star field at 0.98.
    The worse-covered side counts on such frames, and the pictures' fine detail must agree too."""
    from PIL import Image, ImageDraw

    from medialayer.synth.edits import font
    from medialayer.verification import local_evidence

    def framed(img: Image.Image) -> Image.Image:
        canvas = Image.new("RGB", (800, 600), (0, 0, 0))
        pic = img.copy()
        pic.thumbnail((480, 360))
        canvas.paste(pic, (220, 60))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((0, 400, 260, 600), fill=(60, 60, 170))
        draw.text((20, 480), "FREE SHIPPING", fill=(255, 255, 255), font=font(30))
        return canvas

    smooth = framed(gradient(480, 360, (0.5, 0.7, 1.0), 12.0))
    others = [framed(p) for p in photos[:12]]
    table = fingerprinted([smooth, *others, smooth.resize((760, 570))], cfg, "t")
    a, b = np.zeros(len(others) + 1, dtype=np.int64), np.arange(1, len(others) + 2)
    batch = pair_batch(table, a, b)
    rows = verify_batch(batch, cfg, keep_below_record=True).to_pylist()
    assert not any(r["match_found"] for r in rows[:-1]), [(k, r["similarity"]) for k, r in enumerate(rows)]
    assert rows[-1]["match_found"], rows[-1]               # the framed photo itself, resized
    # The badge does fit: the guards, not a lack of keypoints, refuse these pairs.
    fits = local_evidence(batch, cfg)[:-1]
    assert max(ev.inliers for ev in fits) >= 50
    assert any(ev.occupancy == 1.0 and ev.occupancy_least < cfg.matching.image.local.aligned_page_min_occupancy
               for ev in fits)


def test_a_photo_turned_on_a_filled_canvas_matches_on_its_hashes_alone(photos, cfg, tmp_path):
    """A copy rotated a few degrees, its corners filled white and a watermark laid over it: with no
    keypoints at all, the straightened photo's hashes find it, and the reason names the rotation."""
    from PIL import Image

    from medialayer.synth.edits import watermark

    hashes_only = cfg.with_overrides({"image": {"local": {"max_keypoints": 0}}})
    rng = np.random.default_rng(11)
    paths = []
    for k in (0, 2, 5):
        turned = photos[k].convert("RGB").rotate(-5.0, Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        for name, img in (("o", photos[k].convert("RGB")), ("t", watermark(turned, rng))):
            p = tmp_path / f"{name}{k}.jpg"
            img.save(p, quality=88)
            paths.append(str(p))
    a, b = np.array([0, 2, 4]), np.array([1, 3, 5])
    # Without the tilted region (and without peeling the filled corners off, which sometimes gets
    # close enough on its own) the hashes see a turned picture.
    untilted = hashes_only.with_overrides({"image": {"region": {"max_tilt_deg": 0, "peel_below": 0}}})
    for conf, found in ((hashes_only, True), (untilted, False)):
        table = fingerprint_table(paths, ["image"] * len(paths), conf, Fetcher(conf.fetch, trusted_local=True))
        out = verify_batch(pair_batch(table, a, b), conf, keep_below_record=True).to_pylist()
        assert [r["match_found"] for r in out] == [found] * 3, out
        if found:
            assert all("a small rotation on a filled canvas" in r["reason"] for r in out), out
            assert all(r["match_type"] in ("near_duplicate", "edited_copy") for r in out), out
    # With keypoints, the fit names the rotation (the fit's shared box is the whole canvas: no
    # partial_copy, no "padding").
    table = fingerprint_table(paths, ["image"] * len(paths), cfg, Fetcher(cfg.fetch, trusted_local=True))
    out = verify_batch(pair_batch(table, a, b), cfg, keep_below_record=True).to_pylist()
    for r in out:
        assert r["match_found"] and r["match_type"] in ("near_duplicate", "edited_copy"), r
        assert "rotation by about 5 degrees" in r["reason"] and "padding" not in r["reason"], r


def test_hashes_alone_do_not_match_pictures_whose_colours_no_tone_edit_relates(cfg, fingerprinted, gradient):
    """Hashes are blind to colour, so two smooth pictures with one layout of light and dark (a red and
    a blue gradient) meet on them. Below confidence.high the colours decide: a tone edit of the red
    one still matches, the blue one does not, and the reason says why."""
    from medialayer.synth.edits import tone

    red = gradient(480, 360, (1.3, 0.55, 0.45), 0.0)
    images = [red, tone(red, np.random.default_rng(5)), gradient(480, 360, (0.45, 0.7, 1.3), 10.0)]
    table = fingerprinted(images, cfg, "g")
    a, b = np.array([0, 0]), np.array([1, 2])
    out = verify_batch(pair_batch(table, a, b), cfg, keep_below_record=True).to_pylist()
    assert out[0]["match_found"] and out[0]["similarity"] < cfg.matching.confidence.high, out[0]
    assert not out[1]["match_found"] and "colours are not related" in out[1]["reason"], out[1]
    assert out[1]["similarity"] == cfg.matching.record_threshold
    # Without the colour check the blue gradient matches on its hashes.
    off = cfg.with_overrides({"matching": {"image": {"weak_global_max_chroma": -1}}})
    blind = verify_batch(pair_batch(table, a, b), off, keep_below_record=True).to_pylist()
    assert blind[1]["match_found"] and blind[1]["similarity"] < cfg.matching.confidence.high, blind[1]


def test_chroma_distance_forgives_tone_edits_but_not_another_hue(photos):
    from PIL import Image

    from medialayer.config import load_config
    from medialayer.fingerprints.image import pack_tone
    from medialayer.matching.image import chroma_distance, colours_refute
    from medialayer.synth.edits import tone

    def tone_word(img) -> int:
        return pack_tone(np.asarray(img.convert("RGB").resize((64, 48))))

    rng = np.random.default_rng(8)
    originals, edited, swapped = [], [], []
    for k in range(6):
        img = photos[k].convert("RGB")
        for _ in range(3):
            originals.append(tone_word(img))
            edited.append(tone_word(tone(img, rng)))
            r, g, b = img.split()
            swapped.append(tone_word(Image.merge("RGB", (b, r, g))))
    originals, edited, swapped = (np.array(v, dtype=np.int64) for v in (originals, edited, swapped))
    assert chroma_distance(originals, originals).max() == 0.0
    limit = 0.10
    assert chroma_distance(originals, edited).max() <= limit
    # Rotating the channels of a coloured photo is another hue (the grey ones barely move).
    assert (chroma_distance(originals, swapped) > limit).sum() >= 6
    m = load_config().matching
    assert m.image.weak_global_max_chroma == limit
    far = np.array([0x204080, 0x804020, 0x204080, 0x204080], dtype=np.int64)
    near = np.array([0x804020, 0x204080, 0x214282, 0], dtype=np.int64)
    sims = np.array([0.8, 0.95, 0.8, 0.8])
    # Weak and far: refused; strong: stands; alike colours: stand; no tone word: stands.
    assert colours_refute(sims, far, near, m).tolist() == [True, False, False, False]


def test_shape_rule_compares_the_areas_the_hash_pairing_took():
    from medialayer.config import load_config
    from medialayer.matching.image import ImageSide, shapes_refute

    m = load_config().matching
    wide = ImageSide(1200, 800, 0)                                   # 3:2 frame
    tall = ImageSide(800, 1200, 0)                                   # 2:3 frame
    boxed = ImageSide(1000, 1000, 0, [0.2, 0.3, 0.8, 0.7, 0, 0])     # square frame, a 3:2 region
    unknown = ImageSide(0, 0, 0)
    frames, regions, region_frame = 0, 1, 3                          # indices of matching.image._PAIRINGS
    sides_a = [wide, wide, wide, boxed, boxed, wide]
    sides_b = [tall, tall, boxed, wide, wide, unknown]
    pairing = np.array([frames, frames, regions, region_frame, frames, frames])
    sims = np.array([0.8, 0.95, 0.8, 0.8, 0.8, 0.8])
    # Other proportions, weak: refused; strong: stands; region vs the other's region, and a region
    # vs the other's frame, of one shape: stand; the square frame vs a 3:2 frame: refused;
    # unknown size: stands.
    assert shapes_refute(sims, pairing, sides_a, sides_b, m).tolist() == [True, False, False, False, True, False]


def test_close_picture_agreement_confirms_a_weak_fit_and_strong_spread_fits_are_trusted(photos, cfg, fingerprinted):
    """The picture check as evidence both ways: a fit with too few inliers is confirmed by a copy's
    picture (raised to picture_confirmed_similarity), never by another photo's, nor on mostly-flat
    frames; a fit with many well-spread inliers stands without the check."""
    from dataclasses import replace

    from medialayer.matching.local import LocalEvidence
    from medialayer.matching.picture import check_pictures
    from medialayer.synth.edits import watermark
    from medialayer.verification import local_side

    images = [photos[5], watermark(photos[5], np.random.default_rng(4)), photos[9].resize(photos[5].size)]
    rows = fingerprinted(images, cfg, "c").to_pylist()
    sides = [local_side(r["kp_xy"], r["kp_desc"], r["kp_desc_mirror"], r["kp_frame_w"], r["kp_frame_h"]) for r in rows]
    lc = cfg.matching.image.local
    assert lc.picture_confirm_min_inliers > 0 and lc.picture_trusted_inliers > 0
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    weak = LocalEvidence(inliers=lc.picture_confirm_min_inliers, unconfirmed=0.6, shared_a=1.0, shared_b=1.0,
                         occupancy=0.8, spread=0.2, model=identity, rejected="too few inliers")
    assert not weak.found and weak.standing

    confirmed = check_pictures(weak, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1], lc)
    assert confirmed.found and confirmed.similarity == lc.picture_confirmed_similarity and not confirmed.rejected
    # A found fit short of the threshold (occupancy penalty) is raised too; a stronger one is kept.
    short = replace(weak, unconfirmed=0.0, similarity=0.7, inliers=lc.min_inliers)
    assert check_pictures(short, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1], lc).similarity \
        == lc.picture_confirmed_similarity
    strong = replace(short, similarity=0.9)
    assert check_pictures(strong, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1], lc).similarity == 0.9

    for other in (
        check_pictures(weak, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], lc),      # another photo
        check_pictures(weak, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1], lc, page_like=True),
        check_pictures(weak, rows[0]["picture"], None, sides[0], sides[1], lc),                    # no picture
        check_pictures(weak, rows[0]["picture"], rows[1]["picture"], sides[0], sides[1],
                       replace(lc, picture_confirm_min_inliers=0)),                                 # turned off
    ):
        assert not other.found, other

    trusted = LocalEvidence(inliers=lc.picture_trusted_inliers, similarity=0.95, shared_a=1.0, shared_b=1.0,
                            occupancy=1.0, spread=lc.picture_trusted_spread, model=identity)
    assert check_pictures(trusted, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], lc).found
    narrow = replace(trusted, spread=lc.picture_trusted_spread / 2)
    assert not check_pictures(narrow, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], lc).found
    untrusted = replace(lc, picture_trusted_inliers=0)
    assert not check_pictures(trusted, rows[0]["picture"], rows[2]["picture"], sides[0], sides[2], untrusted).found


def _smooth_copy_and_other(photos, cfg, fingerprinted, gradient):
    """A smooth photo (a gradient with one small textured patch), its resized and cropped copy, and
    another smooth photo with its own patch in the same place, all saved at JPEG quality 40: their
    keypoint sides, their stored pictures, and the copy's true fit, found with the spread guards
    off (its inliers lie on the patch)."""
    from medialayer.matching.local import match_local
    from medialayer.verification import local_side

    def smooth(colour: tuple, patch):
        img = gradient(640, 480, colour, 15.0)
        img.paste(patch.resize((110, 85)), (400, 300))
        return img

    a = smooth((1.1, 0.9, 0.7), photos[1])
    copy = a.resize((512, 384)).crop((10, 8, 500, 376))
    other = smooth((1.0, 0.95, 0.8), photos[6]).resize((512, 384)).crop((10, 8, 500, 376))
    rows = fingerprinted([a, copy, other], cfg, "d", quality=40).to_pylist()
    sides = [local_side(r["kp_xy"], r["kp_desc"], r["kp_desc_mirror"], r["kp_frame_w"], r["kp_frame_h"]) for r in rows]
    fit = match_local(sides[0], sides[1], replace(cfg.matching.image.local, min_inlier_spread=0.0, confined_spread=0.0))
    return sides, [r["picture"] for r in rows], fit


def test_a_confined_fit_is_confirmed_by_fine_detail_never_by_smooth_grey_levels(photos, cfg, fingerprinted, gradient):
    """A smooth photo's copy fits only on its one textured patch. Refused for confined inliers, the
    fit still counts when the pictures' fine detail agrees under it. Another smooth photo with its
    own patch in the same place agrees in grey levels (gradients correlate), not in detail."""
    from medialayer.fingerprints.image import unpack_picture
    from medialayer.matching.picture import check_pictures, picture_agreement

    sides, pics, fit = _smooth_copy_and_other(photos, cfg, fingerprinted, gradient)
    lc = cfg.matching.image.local
    assert lc.confined_min_detail_agreement > 0
    # The copy's true fit, as the spread guards would have refused it.
    assert fit.found and fit.spread < lc.confined_spread, fit
    ev = replace(fit, similarity=0.0, confined=fit.similarity, rejected="inliers confined to a small patch")
    assert not ev.standing

    confirmed = check_pictures(ev, pics[0], pics[1], sides[0], sides[1], lc)
    assert confirmed.found and confirmed.similarity == lc.picture_confirmed_similarity and not confirmed.rejected

    frames = [(s.frame_w, s.frame_h) for s in sides]
    grey = picture_agreement(unpack_picture(pics[0]), unpack_picture(pics[2]), fit.model, frames[0], frames[2],
                             False, lc.picture_trim)
    assert grey >= lc.picture_confirm_agreement, grey      # grey levels alone would confirm the other photo
    for refused in (
        check_pictures(ev, pics[0], pics[2], sides[0], sides[2], lc),                              # another photo
        check_pictures(ev, pics[0], pics[1], sides[0], sides[1], lc, page_like=True),              # flat frames
        check_pictures(ev, pics[0], None, sides[0], sides[1], lc),                                 # no picture
        check_pictures(ev, pics[0], pics[1], sides[0], sides[1], replace(lc, confined_min_detail_agreement=0.95)),
        check_pictures(replace(ev, confined=0.0), pics[0], pics[1], sides[0], sides[1], lc),      # not handed over
    ):
        assert not refused.found and refused.rejected == ev.rejected, refused


def test_a_small_found_fit_needs_the_fine_detail_to_agree_too(photos, cfg, fingerprinted, gradient):
    """Two smooth photos that share a watermark word fit on the word alone, and their grey pictures
    correlate under that fit as a gradient does under any. A found fit that small must also agree in
    fine detail: the copy does, the other photo does not; a wide fit, or a mostly-flat frame, is
    judged as before."""
    from medialayer.matching.picture import check_pictures

    sides, pics, fit = _smooth_copy_and_other(photos, cfg, fingerprinted, gradient)
    lc = cfg.matching.image.local
    assert lc.small_fit_detail_agreement > 0 and lc.small_fit_spread > lc.confined_spread
    assert fit.found and fit.spread < lc.small_fit_spread, fit
    assert check_pictures(fit, pics[0], pics[1], sides[0], sides[1], lc).found          # the copy
    refused = check_pictures(fit, pics[0], pics[2], sides[0], sides[2], lc)              # another photo
    assert not refused.found and refused.rejected.startswith("fine detail disagrees"), refused
    # Grey levels alone pass it: without the rule, or when the fit is wide, or on flat frames.
    assert check_pictures(fit, pics[0], pics[2], sides[0], sides[2], replace(lc, small_fit_detail_agreement=0.0)).found
    wide = replace(fit, spread=lc.small_fit_spread)
    assert check_pictures(wide, pics[0], pics[2], sides[0], sides[2], lc).found
    assert check_pictures(fit, pics[0], pics[2], sides[0], sides[2], lc, page_like=True).found


def test_a_copy_with_too_few_inliers_is_matched_only_when_its_pictures_confirm(photos, cfg, fingerprinted):
    """Through the verifier: with min_inliers set above any fit here, a heavy crop still matches,
    at picture_confirmed_similarity (confidence low: reviewed, not acted on); a different photo
    does not, and without confirmation the crop does not either."""
    img = photos[0]          # not mostly flat: pictures may confirm
    w, h = img.size
    crop = img.crop((int(w * 0.2), int(h * 0.15), int(w * 0.9), int(h * 0.85)))
    table = fingerprinted([img, crop, photos[8]], cfg, "k")
    strict = {"matching": {"image": {"local": {"min_inliers": 400, "calibration": [[400, 0.95], [500, 0.99]]}}}}
    a, b = np.array([0, 0]), np.array([1, 2])
    confirming = cfg.with_overrides(strict)
    out = verify_batch(pair_batch(table, a, b), confirming, keep_below_record=True).to_pylist()
    lc = confirming.matching.image.local
    assert out[0]["match_found"] and out[0]["similarity"] == lc.picture_confirmed_similarity, out[0]
    assert out[0]["confidence"] == "low" and out[0]["match_type"] == "partial_copy", out[0]
    assert not out[1]["match_found"], out[1]
    off = cfg.with_overrides({"matching": {"image": {"local": {**strict["matching"]["image"]["local"],
                                                               "picture_confirm_min_inliers": 0}}}})
    assert not verify_batch(pair_batch(table, a, b), off, keep_below_record=True).to_pylist()[0]["match_found"]


# matching.image.local settings under which no keypoint fit can pass: the hashes decide alone.
_NO_KEYPOINT_EVIDENCE = {"min_inliers": 400, "calibration": [[400, 0.95], [500, 0.99]],
                         "picture_confirm_min_inliers": 0}


def _product_on_white(colour: tuple[int, int, int], check_px: int = 0):
    """A rounded product of one colour on a white canvas, plain or with a checked pattern."""
    from PIL import Image, ImageDraw

    fill = np.zeros((260, 320, 3)) + np.array(colour, dtype=np.float64)
    if check_px:
        yy, xx = np.mgrid[0:260, 0:320]
        fill += ((xx // check_px + yy // check_px) % 2 * 2 - 1)[..., None] * 40.0
    mask = Image.new("L", (320, 260), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, 319, 259), 50, fill=255)
    canvas = Image.new("RGB", (480, 480), (255, 255, 255))
    canvas.paste(Image.fromarray(np.clip(fill, 0, 255).astype(np.uint8)), (80, 110), mask)
    return canvas


def test_hashes_alone_do_not_match_a_plain_product_with_a_patterned_one(cfg, fingerprinted):
    """Hashes see the outline and the layout of light and dark: a plain product and a checked one of
    the same shape and colour meet on them. Below confidence.high the detail inside decides: the
    plain one is refused (and the reason says why), a toned, stickered copy of the checked one is
    not. The match threshold is lowered here so that every pair lands in the band the rule
    judges (matching.threshold <= similarity < confidence.high)."""
    from medialayer.synth.edits import sticker, tone

    checked = _product_on_white((70, 80, 100), check_px=20)
    copy = sticker(tone(checked, np.random.default_rng(5)), np.random.default_rng(6))
    table = fingerprinted([checked, _product_on_white((70, 80, 100)), copy], cfg, "d")
    a, b = np.array([0, 0]), np.array([1, 2])
    wide = cfg.with_overrides({"matching": {"match_threshold": 0.5, "record_threshold": 0.3,
                                            "confidence": {"high": 0.999, "medium": 0.99}}})
    # (The chance rule, which refuses this pair too, is off: this test is the detail rule's.)
    blind = verify_batch(pair_batch(table, a, b), wide.with_overrides(
        {"matching": {"image": {"weak_global_max_detail_ratio": -1, "weak_global_max_chance_share": -1}}}),
        keep_below_record=True).to_pylist()
    assert all(r["match_found"] for r in blind), blind
    out = verify_batch(pair_batch(table, a, b), wide, keep_below_record=True).to_pylist()
    assert not out[0]["match_found"] and "one is plain where the other is detailed" in out[0]["reason"], out[0]
    assert out[0]["similarity"] == wide.matching.record_threshold
    assert out[1]["match_found"], out[1]


def test_detail_rule_measures_the_areas_the_hash_pairing_took(cfg, fingerprinted):
    """details_refute on stored pictures: matches between a plain and a patterned area are refused,
    weak ones (weak_global_max_detail_ratio) and strong ones (strong_global_max_detail_ratio: the
    hashes are as blind to contrast at 0.95 as at 0.8); sides without a picture stand; a content
    region is measured inside itself, so the white page around a product does not count as detail."""
    from medialayer.matching.image import ImageSide, details_refute

    m = cfg.matching
    plain, checked = _product_on_white((120, 90, 60)), _product_on_white((120, 90, 60), check_px=20)
    rows = fingerprinted([plain, checked, plain.resize((360, 360))], cfg, "r").to_pylist()
    assert all(r["region"] is not None and r["picture"] for r in rows)
    sides = [ImageSide(r["width"], r["height"], r["tone"] or 0, r["region"]) for r in rows]
    pics = [r["picture"] for r in rows]
    frames, regions = 0, 1                                           # indices of matching.image._PAIRINGS
    pairing = np.array([regions, regions, regions, regions, frames])
    sims = np.array([0.8, 0.95, 0.8, 0.8, 0.8])
    got = details_refute(sims, pairing, [pics[0], pics[0], pics[0], None, pics[0]],
                         [pics[1], pics[1], pics[2], pics[1], pics[2]],
                         [sides[0]] * 5, [sides[1], sides[1], sides[2], sides[1], sides[2]], m)
    # plain vs checked, weak and strong: refused; plain vs its resized self: stands; no picture:
    # stands; frame vs frame of the plain one and its copy: stands.
    assert got.tolist() == [True, True, False, False, False]
    every = ([pics[0]] * 5, [pics[1]] * 5, [sides[0]] * 5, [sides[1]] * 5)
    weak_off = cfg.with_overrides({"matching": {"image": {"weak_global_max_detail_ratio": -1}}}).matching
    assert details_refute(sims, pairing, *every, weak_off).tolist() == [False, True, False, False, False]
    strong_off = cfg.with_overrides({"matching": {"image": {"strong_global_max_detail_ratio": -1}}}).matching
    assert details_refute(sims, pairing, *every, strong_off).tolist() == [True, False, True, True, True]
    both_off = cfg.with_overrides({"matching": {"image": {"weak_global_max_detail_ratio": -1,
                                                          "strong_global_max_detail_ratio": -1}}}).matching
    assert not details_refute(sims, pairing, *every, both_off).any()


def test_hashes_alone_do_not_match_a_dark_product_with_a_light_one(cfg, fingerprinted):
    """Hash bits compare pixels and coefficients with each other, never with a fixed level: a dark
    grey product and a light grey one of the same outline meet on them at any score. The brightness
    rule refuses that pair (and says why); a copy of the dark one brightened 1.4x still matches.
    Keypoint evidence is switched off, so the hashes decide alone."""
    from PIL import ImageEnhance

    dark, light = _product_on_white((40, 40, 46)), _product_on_white((150, 150, 160))
    brighter = ImageEnhance.Brightness(dark).enhance(1.4)
    table = fingerprinted([dark, light, brighter], cfg, "bright")
    a, b = np.array([0, 0]), np.array([1, 2])
    hashes_only = cfg.with_overrides({"matching": {"image": {"local": _NO_KEYPOINT_EVIDENCE}}})
    blind = verify_batch(pair_batch(table, a, b), hashes_only.with_overrides(
        {"matching": {"image": {"global_max_brightness_ratio": -1}}}), keep_below_record=True).to_pylist()
    assert all(r["match_found"] for r in blind), blind
    out = verify_batch(pair_batch(table, a, b), hashes_only, keep_below_record=True).to_pylist()
    assert not out[0]["match_found"] and "several times brighter" in out[0]["reason"], out[0]
    assert out[0]["similarity"] == cfg.matching.record_threshold
    assert out[1]["match_found"], out[1]


def test_brightness_rule_measures_the_areas_the_hash_pairing_took(cfg, fingerprinted):
    """brightness_refute on stored pictures: matches between a dark and a light area are refused
    however strong; matches under the threshold and sides without a picture are not measured. Each
    side is measured where the hash pairing compared it: the frames of two small products on one
    large white page agree in brightness, their content regions do not."""
    from PIL import ImageOps

    from medialayer.matching.image import ImageSide, brightness_refute

    m = cfg.matching
    dark, light = _product_on_white((40, 40, 46)), _product_on_white((150, 150, 160))
    images = [dark, light, _product_on_white((60, 60, 66))]
    images += [ImageOps.expand(img, border=400, fill=(255, 255, 255)) for img in (dark, light)]
    rows = fingerprinted(images, cfg, "br").to_pylist()
    assert all(r["region"] is not None and r["picture"] for r in rows)
    sides = [ImageSide(r["width"], r["height"], r["tone"] or 0, r["region"]) for r in rows]
    pics = [r["picture"] for r in rows]
    frames, regions = 0, 1                                           # indices of matching.image._PAIRINGS
    first = [0, 0, 0, 0, 0, 3, 3]
    second = [1, 1, 1, 1, 2, 4, 4]
    pairing = np.array([regions, regions, regions, regions, regions, frames, regions])
    sims = np.array([0.8, 0.98, 0.6, 0.8, 0.8, 0.8, 0.8])
    pictures_a = [pics[k] for k in first]
    pictures_a[3] = None
    got = brightness_refute(sims, pairing, pictures_a, [pics[k] for k in second], [sides[k] for k in first],
                            [sides[k] for k in second], m)
    # dark vs light: refused, weak or strong; under the threshold: not measured; no picture: stands;
    # dark vs a 1.5x lighter one: stands; the padded pair: frames stand, regions are refused.
    assert got.tolist() == [True, True, False, False, False, False, True]
    off = cfg.with_overrides({"matching": {"image": {"global_max_brightness_ratio": -1}}}).matching
    assert not brightness_refute(sims, pairing, pictures_a, [pics[k] for k in second], [sides[k] for k in first],
                                 [sides[k] for k in second], off).any()


def test_a_padded_copy_with_a_corner_badge_matches_on_its_peeled_region(photos, cfg, fingerprinted,
                                                                       padded_with_badge):
    """A badge stuck on the corner of a padded canvas reaches into the padding. With the content
    region peeled to the photo, the region hashes match the original's frame on their own (keypoint
    evidence is switched off here); with the trimmed box alone (badge included) they do not."""
    img = photos[2]
    canvas, _ = padded_with_badge(img)
    found = {}
    for peel in (0.5, 0.0):
        c = cfg.with_overrides({"matching": {"image": {"local": _NO_KEYPOINT_EVIDENCE}},
                                "image": {"region": {"peel_below": peel}}})
        table = fingerprinted([img, canvas], c, f"peel{int(peel * 10)}")
        out = verify_batch(pair_batch(table, np.array([0]), np.array([1])), c, keep_below_record=True).to_pylist()[0]
        found[peel] = out
    assert found[0.5]["match_found"] and "padding" in found[0.5]["reason"], found[0.5]
    assert not found[0.0]["match_found"], found[0.0]


def _one_way_sides(seed: int = 3):
    """a: 80 keypoints; b: the same picture twice (shifted, and smaller), each descriptor a few bits
    off. a's descriptors meet two equally near ones in b and fail the ratio test; each of b's meets
    one in a, so b asking a finds a fit that a asking b does not."""
    from medialayer.matching.local import LocalSide

    rng = np.random.default_rng(seed)
    n = 80
    xy_a = rng.uniform(40, 360, size=(n, 2)).astype(np.float32)
    desc_a = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)

    def noisy(desc):
        bits = np.unpackbits(desc, axis=1)
        for row in bits:
            row[rng.choice(256, 8, replace=False)] ^= 1
        return np.packbits(bits, axis=1)

    xy_b = np.concatenate([xy_a * 0.95 + np.float32([12, 8]), xy_a * 0.5 + np.float32([180, 120])])
    desc_b = np.concatenate([noisy(desc_a), noisy(desc_a)])
    order = rng.permutation(2 * n)            # strongest-first order mixes the two copies
    a = LocalSide(xy_a, desc_a, desc_a.copy(), 400, 400)
    b = LocalSide(xy_b[order], desc_b[order], desc_b[order].copy(), 400, 400)
    return a, b


def test_a_keypoint_fit_must_hold_both_ways(cfg):
    """Nearest-neighbour matching differs with the side that asks. A fit that only one way finds is
    refused (both_ways), so the verdict no longer depends on which media is a; a fit found both ways
    scores the stronger reading."""
    from medialayer.matching.local import LocalSide
    from medialayer.verification import local_fit

    a, b = _one_way_sides()
    lc = cfg.matching.image.local
    assert lc.both_ways
    one_way = replace(lc, both_ways=False)
    frames = (0.1, 0.1)          # the frames look alike: the aligned-template guard stays out of it
    assert not local_fit(a, b, None, None, frames, False, one_way).found
    asked_by_b = local_fit(b, a, None, None, frames, False, one_way)
    assert asked_by_b.found, asked_by_b
    for x, y in ((a, b), (b, a)):
        ev = local_fit(x, y, None, None, frames, False, lc)
        assert not ev.found, ev
    refused = local_fit(b, a, None, None, frames, False, lc)
    assert refused.rejected.startswith("the fit does not hold the other way round"), refused
    # A plain copy holds both ways, at the stronger of its two scores.
    copy = LocalSide(a.xy * 0.9 + np.float32([20, 10]), a.descriptors, a.mirrored, 400, 400)
    both = local_fit(a, copy, None, None, frames, False, lc)
    forward = local_fit(a, copy, None, None, frames, False, one_way)
    backward = local_fit(copy, a, None, None, frames, False, one_way)
    assert both.found and both.similarity == max(forward.similarity, backward.similarity)
    assert local_fit(copy, a, None, None, frames, False, lc).similarity == both.similarity


def test_chance_distance_follows_the_hashes_bit_balance():
    from medialayer.matching.image import chance_distance

    rng = np.random.default_rng(3)
    n = 2000
    balanced = {c: rng.integers(-(1 << 62), 1 << 62, n) for c in
                ("phash", "dhash", "phash_mirror", "dhash_mirror", "region_phash", "region_dhash",
                 "region_phash_mirror", "region_dhash_mirror")}
    skewed = {c: np.full(n, -1 << 6, dtype=np.int64) for c in balanced}     # 58 of 64 bits set
    frames, mirrored = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    assert abs(chance_distance(balanced, balanced, frames, mirrored).mean() - 0.5) < 0.01
    p = 58 / 64
    assert np.allclose(chance_distance(skewed, skewed, frames, mirrored), 2 * p * (1 - p))
    # The mirrored orientation and the region pairing read their own columns.
    flipped = {**skewed, "phash_mirror": balanced["phash_mirror"], "dhash_mirror": balanced["dhash_mirror"]}
    assert abs(chance_distance(skewed, flipped, frames, ~mirrored).mean() - 0.5) < 0.01
    regions = np.full(n, 1, dtype=np.int64)
    assert np.allclose(chance_distance(skewed, flipped, regions, mirrored), 2 * p * (1 - p))


def test_chance_rule_refuses_weak_hash_matches_of_smooth_against_detailed_pictures():
    from medialayer.config import load_config
    from medialayer.fingerprints.image import pack_picture
    from medialayer.matching.image import GlobalScores, ImageSide, chance_refute

    m = load_config().matching
    y, x = np.mgrid[0:36, 0:48]
    light = 60 + 3.0 * x
    smooth = pack_picture(light)
    printed = pack_picture(np.where((y % 4 == 0) & (x % 3 != 0), 20, light))     # lines of print
    toned = pack_picture(np.clip(0.7 * light + 30, 0, 255))                      # a tone edit: still smooth
    side = ImageSide(480, 360, 0)
    n = 6
    sims = np.array([0.8, 0.8, 0.8, 0.95, 0.8, 0.8])
    distance = np.array([0.15, 0.15, 0.15, 0.15, 0.15, 0.15])
    chance = np.array([0.25, 0.25, 0.5, 0.25, 0.25, 0.25])
    glob = GlobalScores(sims, distance, np.zeros(n, bool), np.zeros(n, bool), distance, distance,
                        np.zeros(n, bool), np.zeros(n, dtype=np.int64), chance)
    a = [smooth, smooth, smooth, smooth, smooth, None]
    b = [printed, toned, printed, printed, smooth, printed]
    # Near chance and print against nothing: refused. A tone edit keeps the (lack of) detail; hashes
    # that agree twice as well as chance stand; so do strong matches and sides without a picture.
    assert chance_refute(glob, a, b, [side] * n, [side] * n, m).tolist() == [True, False, False, False, False, False]
    off = load_config(overrides={"matching": {"image": {"weak_global_max_chance_share": -1}}}).matching
    assert not chance_refute(glob, a, b, [side] * n, [side] * n, off).any()
