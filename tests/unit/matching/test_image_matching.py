"""Each seller edit the foundation handles, through real encoding and decoding (medialayer.match)."""
import pytest
from PIL import Image

import medialayer
from medialayer.sample_catalog import EDITS


@pytest.mark.parametrize("edit", ["recompress", "resize", "crop", "watermark", "brightness"])
def test_edited_copy_matches_its_original(photos, save, edit):
    for k, img in enumerate(photos[:4]):
        original = save(img, f"o{k}.jpg", quality=92)
        copy = save(EDITS[edit](img), f"c{k}.jpg", quality=85)
        result = medialayer.match(original, copy)
        assert result.match_found, (edit, k, result)
        assert result.match_type in ("near_duplicate", "edited_copy")


def test_mirrored_copy_matches_original_as_mirrored(photos, save):
    for k, img in enumerate(photos[:4]):
        original = save(img, f"o{k}.jpg")
        flipped = save(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), f"m{k}.jpg", quality=80)
        result = medialayer.match(original, flipped)
        assert result.match_found and result.match_type == "mirrored", result
        assert "mirror" in result.reason


def test_unrelated_photos_do_not_match(photos, save):
    paths = [save(p, f"p{k}.jpg") for k, p in enumerate(photos)]
    pairs = [(a, b, None) for i, a in enumerate(paths) for b in paths[i + 1:]]
    results = medialayer.match_pairs(pairs)
    false_matches = [(p[:2], r.similarity) for p, r in zip(pairs, results) if r.match_found]
    assert not false_matches
    assert all(r.match_type == "no_match" and r.confidence == "none" for r in results)


def test_byte_identical_files_are_exact(photos, save):
    a = save(photos[0], "a.jpg")
    b = save(photos[0], "b.jpg")
    result = medialayer.match(a, b)
    assert (result.match_type, result.similarity, result.confidence) == ("exact", 1.0, "high")


def test_reason_names_resizing_and_tone_change(photos, save):
    img = photos[1]
    a = save(img, "a.jpg", quality=92)
    smaller = save(img.resize((img.width // 2, img.height // 2)), "small.jpg")
    brighter = save(EDITS["brightness"](img), "bright.jpg")
    assert "resizing" in medialayer.match(a, smaller).reason
    assert "colour or brightness" in medialayer.match(a, brighter).reason


def test_envelope_has_the_documented_shape(photos, save):
    env = medialayer.match(save(photos[0], "a.jpg"), save(photos[0], "b.png")).to_dict()
    assert set(env) == {"match_found", "confidence", "similarity", "match_type", "media_type", "reason",
                        "matched_segments"}
    assert env["media_type"] == "image" and env["matched_segments"] == []
    assert 0.0 <= env["similarity"] <= 1.0


def test_unreadable_side_gives_an_error_envelope(photos, save, tmp_path):
    result = medialayer.match(save(photos[0], "a.jpg"), str(tmp_path / "missing.jpg"))
    assert not result.match_found and result.error_code == "not_found"
    assert result.to_dict()["error_code"] == "not_found"
