"""The keypoint matcher's guards, on real photographs (decoded, fingerprinted, then compared)."""
import numpy as np
from PIL import Image

from medialayer.fingerprints.image import image_fingerprints
from medialayer.matching.image import check_aligned
from medialayer.matching.local import LocalEvidence, LocalSide, match_local


def _side(img: Image.Image, cfg) -> LocalSide:
    f = image_fingerprints([np.asarray(img.convert("RGB"))], cfg.image).local[0]
    return LocalSide(f.xy, f.descriptors, f.mirrored, f.frame_w, f.frame_h)


def test_a_crop_is_found_with_its_geometry(photos, cfg):
    img = photos[0]
    crop = img.crop((img.width // 5, img.height // 6, img.width * 19 // 20, img.height * 9 // 10))
    ev = match_local(_side(img, cfg), _side(crop, cfg), cfg.matching.image.local)
    assert ev.found and not ev.mirrored, ev
    assert ev.shared_b > 0.95 and 0.45 < ev.shared_a < 0.75, ev     # the crop keeps ~55% of the area


def test_a_mirrored_copy_is_found_mirrored(photos, cfg):
    img = photos[2]
    ev = match_local(_side(img, cfg), _side(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), cfg),
                     cfg.matching.image.local)
    assert ev.found and ev.mirrored and ev.inliers > 50, ev


def test_overlapping_halves_are_a_partial_overlap_not_a_copy(photos, cfg):
    img = photos[5]
    w, h = img.size
    left = img.crop((0, 0, int(w * 0.6), h))
    right = img.crop((int(w * 0.4), 0, w, h))      # 20% of the width in common
    ev = match_local(_side(left, cfg), _side(right, cfg), cfg.matching.image.local)
    assert not ev.found
    assert ev.rejected in ("partial overlap", "too few inliers", "too few descriptor matches"), ev


def test_a_shared_logo_on_different_photos_is_rejected(photos, cfg):
    logo = photos[1].crop((100, 60, 220, 160)).resize((150, 125))
    a, b = photos[0].copy(), photos[4].copy()
    a.paste(logo, (20, 20))
    b.paste(logo, (20, 20))
    ev = match_local(_side(a, cfg), _side(b, cfg), cfg.matching.image.local)
    assert not ev.found, ev


def test_too_few_keypoints_is_no_evidence(cfg):
    flat = Image.new("RGB", (400, 300), (200, 200, 200))
    ev = match_local(_side(flat, cfg), _side(flat, cfg), cfg.matching.image.local)
    assert not ev.found and ev.rejected == "too few keypoints"


def test_aligned_fit_with_different_frames_is_a_template(cfg):
    local_cfg = cfg.matching.image.local
    ev = LocalEvidence(inliers=120, similarity=0.98, shared_a=0.97, shared_b=0.98, occupancy=0.8)
    assert not check_aligned(ev, 0.40, local_cfg).found            # same chrome, different pictures
    assert check_aligned(ev, 0.05, local_cfg).found                # a real aligned copy
    cropped = LocalEvidence(inliers=120, similarity=0.98, shared_a=0.5, shared_b=1.0, occupancy=0.8)
    assert check_aligned(cropped, 0.40, local_cfg).found           # crops are not aligned fits
    # On pages a fit covering little goes to the pictures, which must agree closely (matching.picture).
    paged = check_aligned(LocalEvidence(inliers=120, similarity=0.98, shared_a=0.97, shared_b=0.98, occupancy=0.5),
                          0.05, local_cfg, page_like=True)
    assert paged.pictures_must_agree == "aligned pages matching on chrome or text only", paged
    # A fit waiting for the pictures to confirm it is judged the same way, and then waits no more.
    waiting = LocalEvidence(inliers=8, unconfirmed=0.7, shared_a=0.97, shared_b=0.98, occupancy=0.8)
    assert not check_aligned(waiting, 0.40, local_cfg).standing
    assert check_aligned(waiting, 0.05, local_cfg).standing


def test_a_fit_with_too_few_inliers_waits_for_the_pictures(photos, cfg):
    """From picture_confirm_min_inliers up to min_inliers, a fit that passes every geometric guard
    is not found but kept standing, with the similarity its inliers earn (matching.picture decides)."""
    from dataclasses import replace

    img = photos[0]
    w, h = img.size
    crop = img.crop((int(w * 0.2), int(h * 0.15), int(w * 0.9), int(h * 0.85)))
    lc = cfg.matching.image.local
    found = match_local(_side(img, cfg), _side(crop, cfg), lc)
    assert found.found and found.inliers >= lc.min_inliers, found
    strict = replace(lc, min_inliers=found.inliers + 1)
    waiting = match_local(_side(img, cfg), _side(crop, cfg), strict)
    assert not waiting.found and waiting.standing and waiting.rejected == "too few inliers", waiting
    assert waiting.inliers == found.inliers and waiting.model is not None
    assert not match_local(_side(img, cfg), _side(crop, cfg), replace(strict, picture_confirm_min_inliers=0)).standing


def test_two_pages_must_share_inliers_on_a_photo(photos, cfg):
    # Screenshots of one shop template agree on their text and chrome; the fit is only a copy when
    # some inliers lie on the photo block of either side.
    from dataclasses import replace

    lc = cfg.matching.image.local
    page = photos[3]
    side = _side(page, cfg)
    copy = _side(page.resize((page.width * 3 // 4, page.height * 3 // 4)), cfg)
    assert match_local(side, copy, lc).found
    corner = (0.0, 0.0, 0.02, 0.02)          # "photos" where no keypoint lies: the fit is all chrome
    ev = match_local(replace(side, block=corner, pasted=True), replace(copy, block=corner), lc)
    assert not ev.found and ev.rejected == "inliers on page chrome only", ev
    ev = match_local(replace(side, block=corner), replace(copy, block=corner, pasted=True), lc)
    assert not ev.found and ev.rejected == "inliers on page chrome only", ev
    whole = (0.0, 0.0, 1.0, 1.0)
    assert match_local(replace(side, block=corner, pasted=True), replace(copy, block=whole), lc).found
    # One page and one plain photo, or two blobs (no pasted photo on either side): the rule does not apply.
    assert match_local(replace(side, block=corner, pasted=True), copy, lc).found
    assert match_local(replace(side, block=corner), replace(copy, block=corner), lc).found


def _badge(img: Image.Image, r: int, at: tuple[int, int]) -> Image.Image:
    from PIL import ImageDraw

    from medialayer.synth.edits import font

    out = img.copy()
    draw = ImageDraw.Draw(out)
    x, y = at
    draw.rectangle((x, y, x + 2 * r, y + 2 * r), fill=(200, 30, 30))
    draw.text((x + r * 0.2, y + r * 0.7), "SALE -30%", fill=(255, 255, 255), font=font(r * 0.4))
    draw.text((x + r * 0.2, y + r * 1.2), "HOT DEAL", fill=(255, 255, 255), font=font(r * 0.3))
    return out


def test_a_badge_shared_by_two_photos_is_not_a_copy(photos, cfg):
    # One shop's "SALE" badge on two different products: the badges fit each other, in a small cluster
    # that leaves both photos' own detail uncovered.
    from dataclasses import replace

    a, b = photos[5], photos[13]
    a = _badge(a, 80, (a.width - 165, 5))
    b = _badge(b, 80, (b.width - 165, b.height - 165))
    lc = cfg.matching.image.local
    unguarded = match_local(_side(a, cfg), _side(b, cfg), replace(lc, confined_spread=0.0))
    assert unguarded.found and unguarded.spread < lc.confined_spread, unguarded
    ev = match_local(_side(a, cfg), _side(b, cfg), lc)
    assert not ev.found and ev.rejected == "confined inliers leave detail uncovered", ev
    # Handed to the pictures' fine detail (matching.picture), which the two photos do not share.
    assert ev.confined > 0 and not ev.standing, ev
    assert match_local(_side(a, cfg), _side(b, cfg), replace(lc, confined_min_detail_agreement=0.0)).confined == 0
    from medialayer.matching.picture import check_pictures

    pictures = image_fingerprints([np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))], cfg.image).pictures
    checked = check_pictures(ev, *pictures, _side(a, cfg), _side(b, cfg), lc)
    assert not checked.found and checked.rejected == "confined inliers leave detail uncovered", checked


def _guided_case(rng: np.random.Generator, n: int = 60):
    """Keypoints of a and of b = a shifted by (30, 20), each descriptor 20 bits off its original."""
    xy_a = rng.uniform(40, 360, size=(n, 2)).astype(np.float32)
    desc_a = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    bits = np.unpackbits(desc_a, axis=1)
    for row in bits:
        row[rng.choice(256, 20, replace=False)] ^= 1
    return xy_a, desc_a, xy_a + np.float32([30, 20]), np.packbits(bits, axis=1)


def test_guided_matching_takes_well_placed_neighbours_past_the_strict_ratio(cfg):
    from dataclasses import replace

    from medialayer.matching.hamming import two_nearest
    from medialayer.matching.local import _descriptor_matches, _guided_matches, _nearest

    lc = replace(cfg.matching.image.local, guided_seed_inliers=6, ratio=0.85, guided_ratio=0.95)
    xy_a, desc_a, xy_b, desc_b = _guided_case(np.random.default_rng(5))
    # Each true match gets a decoy elsewhere, almost as close: the strict ratio test drops it.
    decoys = desc_b.copy()
    bits = np.unpackbits(decoys, axis=1)
    bits[:, :4] ^= 1
    decoys = np.packbits(bits, axis=1)
    db = np.concatenate([desc_b, decoys])
    xb = np.concatenate([xy_b, xy_b[::-1] + 100])
    two = two_nearest(desc_a, db)
    ia, ib = _descriptor_matches(*two, lc)
    nearest = _nearest(*two, lc)
    true_model = np.float64([[1, 0, 30], [0, 1, 20]])
    ga, gb = _guided_matches(xy_a, xb, nearest, true_model, lc)
    strict_hits = int((ib == ia).sum())
    guided_hits = int((gb == ga).sum())
    assert guided_hits > strict_hits + 10, (strict_hits, guided_hits)
    assert (gb == ga).all()                       # never a decoy: it lies elsewhere
    # A wrong fit vouches for nothing: the neighbours are not where it maps a's keypoints.
    wrong = np.float64([[1, 0, 90], [0, 1, -40]])
    assert _guided_matches(xy_a, xb, nearest, wrong, lc)[0].size == 0
    # A repeated pattern (two equally close neighbours) fails even the relaxed ratio.
    twins = np.concatenate([desc_b, desc_b])
    tied = _nearest(*two_nearest(desc_a, twins), lc)
    assert _guided_matches(xy_a, np.concatenate([xy_b, xy_b]), tied, true_model, lc)[0].size == 0


def test_guided_matching_adds_inliers_to_a_damaged_copy_and_keeps_guards(photos, cfg):
    from dataclasses import replace

    from medialayer.synth.edits import jpeg_roundtrip, tone, watermark

    rng = np.random.default_rng(3)
    img = photos[6]
    copy = jpeg_roundtrip(watermark(tone(img.rotate(4, resample=Image.Resampling.BICUBIC), rng), rng), 25)
    lc = cfg.matching.image.local
    off = match_local(_side(img, cfg), _side(copy, cfg), replace(lc, guided_seed_inliers=0))
    on = match_local(_side(img, cfg), _side(copy, cfg), replace(lc, guided_seed_inliers=6))
    assert on.found and on.inliers > off.inliers, (off, on)
    # A logo on two different photos stays a non-match with guidance on.
    logo = photos[1].crop((100, 60, 220, 160)).resize((150, 125))
    a, b = photos[0].copy(), photos[4].copy()
    a.paste(logo, (20, 20))
    b.paste(logo, (20, 20))
    assert not match_local(_side(a, cfg), _side(b, cfg), replace(lc, guided_seed_inliers=6)).found


def test_the_one_textured_patch_of_a_smooth_photo_still_matches_its_copy(photos, cfg, gradient):
    # The legitimate small cluster: all the detail of both pictures is in one patch.
    a = gradient(640, 480, (1.1, 0.9, 0.7), 15.0)
    a.paste(photos[1].resize((110, 85)), (400, 300))
    b = a.resize((512, 384)).crop((10, 8, 500, 376))
    lc = cfg.matching.image.local
    ev = match_local(_side(a, cfg), _side(b, cfg), lc)
    assert ev.found, ev
    assert ev.spread < lc.confined_spread, ev


def test_the_shared_box_equals_the_matrix_form():
    from medialayer.matching.local import _shared_box

    rng = np.random.default_rng(5)
    for _ in range(50):
        angle, scale = rng.uniform(-0.3, 0.3), rng.uniform(0.4, 2.5)
        model = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-200, 200)],
                          [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-200, 200)]])
        wa, ha, wb, hb = (int(v) for v in rng.integers(100, 500, 4))
        m = np.vstack([model, [0.0, 0.0, 1.0]])
        for inverse, mat, (sw, sh, dw, dh) in ((False, m, (wa, ha, wb, hb)), (True, np.linalg.inv(m), (wb, hb, wa, ha))):
            corners = np.array([[0, 0, 1], [sw, 0, 1], [0, sh, 1], [sw, sh, 1]], dtype=np.float64) @ mat.T
            want = (max(0.0, corners[:, 0].min()), max(0.0, corners[:, 1].min()),
                    min(float(dw), corners[:, 0].max()), min(float(dh), corners[:, 1].max()))
            assert np.allclose(_shared_box(model, wa, ha, wb, hb, inverse), want, atol=1e-9)


def _ambiguous_case(rng: np.random.Generator, n: int = 60):
    """a, and b = a shifted by (30, 20) with every descriptor 20 bits off its original, plus for each a
    decoy elsewhere 22 bits off it: each true match is the nearest, but not by the ratio test's margin."""
    xy_a, desc_a, xy_b, desc_b = _guided_case(rng, n)
    bits = np.unpackbits(desc_b, axis=1)
    decoy_bits = bits.copy()
    for row, orig in zip(decoy_bits, np.unpackbits(desc_a, axis=1)):
        same = np.flatnonzero(row == orig)
        row[rng.choice(same, 2, replace=False)] ^= 1                # 22 bits from a's descriptor
    decoy_xy = rng.uniform(40, 360, size=(n, 2)).astype(np.float32)
    a = LocalSide(xy_a, desc_a, desc_a.copy(), 400, 400)
    b = LocalSide(np.concatenate([xy_b, decoy_xy]), np.concatenate([desc_b, np.packbits(decoy_bits, axis=1)]),
                  rng.integers(0, 256, size=(2 * n, 32), dtype=np.uint8), 400, 400)
    return a, b


def test_ambiguous_descriptors_get_a_second_fit_that_the_pictures_must_confirm(cfg):
    from dataclasses import replace

    import cv2

    from medialayer.fingerprints.image import pack_picture
    from medialayer.matching.picture import check_pictures

    lc = cfg.matching.image.local
    assert 22 <= lc.ambiguous_max_distance <= lc.max_descriptor_distance
    a, b = _ambiguous_case(np.random.default_rng(11))
    strict = match_local(a, b, replace(lc, ambiguous_max_distance=0))
    assert not strict.standing, strict                             # every true match fails the ratio test
    ev = match_local(a, b, lc)
    assert ev.standing and not ev.found and ev.rejected == "ambiguous matches, unconfirmed", ev
    assert not ev.mirrored and ev.inliers >= 50, ev
    assert abs(ev.model[2] - 30) < 1 and abs(ev.model[5] - 20) < 1, ev.model
    # The pictures confirm it when they agree under the fit (b's is a's moved by 30, 20 of 400 px).
    rng = np.random.default_rng(3)
    picture_a = cv2.GaussianBlur(rng.integers(0, 256, (48, 48)).astype(np.uint8), (5, 5), 1.5)
    shift = np.float32([[1, 0, 30 * 48 / 400], [0, 1, 20 * 48 / 400]])
    picture_b = cv2.warpAffine(picture_a, shift, (48, 48), borderMode=cv2.BORDER_REFLECT)
    confirmed = check_pictures(ev, pack_picture(picture_a), pack_picture(picture_b), a, b, lc)
    assert confirmed.found and confirmed.similarity == lc.picture_confirmed_similarity, confirmed
    unrelated = cv2.GaussianBlur(rng.integers(0, 256, (48, 48)).astype(np.uint8), (5, 5), 1.5)
    assert not check_pictures(ev, pack_picture(picture_a), pack_picture(unrelated), a, b, lc).found
    # ... and never on mostly-background frames, where outlines and white agree between products.
    assert not check_pictures(ev, pack_picture(picture_a), pack_picture(picture_b), a, b, lc, page_like=True).found
    # Neighbours further than the setting allows are not taken.
    assert not match_local(a, b, replace(lc, ambiguous_max_distance=16)).standing
    # The same descriptors scattered at random: close neighbours, but no geometry agrees.
    scattered = LocalSide(rng.uniform(40, 360, size=b.xy.shape).astype(np.float32), b.descriptors, b.mirrored, 400, 400)
    assert not match_local(a, scattered, lc).standing


def test_descriptor_matches_are_one_to_one_keeping_the_closest(cfg):
    """Several of a's descriptors may pick the same point of b: the closest keeps it (the first of
    equally close ones), the ratio test and max_descriptor_distance drop the rest, and the matches
    come ordered by b's index, the order RANSAC samples them in."""
    from dataclasses import replace

    from medialayer.matching.local import _descriptor_matches

    lc = cfg.matching.image.local
    far = lc.max_descriptor_distance + 1
    #                   a0       a1       a2        a3       a4         a5
    dist = np.array([[20, 60], [12, 60], [30, 31], [12, 70], [far, 90], [5, 80]], dtype=np.int32)
    nidx = np.array([[7, 1], [7, 2], [3, 4], [7, 0], [2, 3], [2, 0]], dtype=np.int64)
    ia, ib = _descriptor_matches(dist, nidx, lc)
    # a2 fails the ratio test, a4 is too far; a1 and a3 tie for b7 (a1 first); a5 alone takes b2.
    assert ia.tolist() == [5, 1] and ib.tolist() == [2, 7]
    loose = replace(lc, ambiguous_max_distance=40)
    ia, ib = _descriptor_matches(dist, nidx, loose, unique_only=False)
    assert ia.tolist() == [5, 2, 1] and ib.tolist() == [2, 3, 7]


def _descriptor_matches_numpy(dist, nidx, cfg, unique_only=True):
    """The numpy version the compiled one replaced (2026-12-07), kept as the reference."""
    d1, n1 = dist[:, 0], nidx[:, 0]
    if unique_only:
        ok = (d1 <= cfg.max_descriptor_distance) & (d1 < cfg.ratio * dist[:, 1]) & (n1 >= 0)
    else:
        ok = (d1 <= cfg.ambiguous_max_distance) & (n1 >= 0)
    ia = np.flatnonzero(ok)
    ib = n1[ia].astype(np.int64)
    if ia.size < 2:
        return ia, ib
    d = d1[ia].astype(np.int64)
    order = np.argsort(ib * (int(d.max()) + 1) + d, kind="stable")
    sorted_b = ib[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = sorted_b[1:] != sorted_b[:-1]
    keep = order[first]
    return ia[keep], ib[keep]


def test_descriptor_matches_equal_the_numpy_reference(cfg):
    from dataclasses import replace

    from medialayer.matching.local import _descriptor_matches

    lc = replace(cfg.matching.image.local, ambiguous_max_distance=40)
    rng = np.random.default_rng(4)
    for n, m in ((0, 5), (1, 5), (256, 256), (256, 30), (90, 256)):
        near = rng.integers(0, 90, n)
        dist = np.stack([near, near + rng.integers(0, 40, n)], axis=1).astype(np.int32)
        nidx = np.stack([rng.integers(-1 if m < 40 else 0, m, n), rng.integers(0, m, n)], axis=1).astype(np.int64)
        for unique_only in (True, False):
            ours = _descriptor_matches(dist, nidx, lc, unique_only)
            reference = _descriptor_matches_numpy(dist, nidx, lc, unique_only)
            assert [x.tolist() for x in ours] == [x.tolist() for x in reference]
