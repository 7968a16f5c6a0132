import pytest
import yaml

from medialayer.config import ConfigError, load_config


def test_defaults_load_and_validate():
    cfg = load_config()
    assert cfg.spark.master.startswith("local")
    assert cfg.candidates.image.bits_per_band >= 16
    assert len(cfg.config_hash) == 16


def test_override_file_merges_over_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"fetch": {"max_bytes": 1000}, "spark": {"extra": {"spark.foo": "1"}}}))
    cfg = load_config(path)
    assert cfg.fetch.max_bytes == 1000
    assert cfg.fetch.retries == load_config().fetch.retries   # untouched keys keep their defaults
    assert cfg.spark.extra == {"spark.foo": "1"}


def test_unknown_key_is_refused_with_its_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("fetch:\n  max_bytez: 10\n")
    with pytest.raises(ConfigError, match=r"fetch.*max_bytez"):
        load_config(path)


@pytest.mark.parametrize("override, message", [
    ({"matching": {"match_threshold": 1.5}}, "matching.match_threshold"),
    ({"fetch": {"retries": -1}}, "fetch.retries"),
    ({"fetch": {"max_bytes": "big"}}, "fetch.max_bytes"),
    ({"warehouse": {"format": "csv"}}, "warehouse.format"),
    ({"candidates": {"image": {"bits_per_band": 40}}}, "candidates.image.bits_per_band"),
    ({"spark": {"extra": {"foo": 1}}}, "spark.extra"),
    ({"spark": {"numpy_avx512": "off"}}, "spark.numpy_avx512"),
    ({"matching": {"image": {"calibration": [[0.5, 0.1], [0.1, 0.9]]}}}, "calibration"),
    ({"matching": {"image": {"local": {"guided_seed_inliers": 40}}}}, "matching.image.local.guided_seed_inliers"),
    ({"matching": {"image": {"local": {"guided_ratio": 1.5}}}}, "matching.image.local.guided_ratio"),
    ({"matching": {"image": {"local": {"min_picture_agreement": 2.0}}}}, "matching.image.local.min_picture_agreement"),
    ({"matching": {"image": {"local": {"picture_confirm_min_inliers": 30}}}},
     "matching.image.local.picture_confirm_min_inliers"),
    ({"matching": {"image": {"local": {"picture_confirm_agreement": 0.5}}}},
     "matching.image.local.picture_confirm_agreement"),
    ({"matching": {"image": {"local": {"picture_trusted_spread": 2.0}}}}, "matching.image.local.picture_trusted_spread"),
    ({"matching": {"image": {"local": {"ambiguous_max_distance": 300}}}}, "matching.image.local.ambiguous_max_distance"),
    ({"matching": {"image": {"local": {"confined_min_detail_agreement": 1.5}}}},
     "matching.image.local.confined_min_detail_agreement"),
    ({"matching": {"image": {"local": {"confined_detail_sigma": 0}}}}, "matching.image.local.confined_detail_sigma"),
    ({"matching": {"image": {"local": {"aligned_page_picture_agreement": -0.5}}}},
     "matching.image.local.aligned_page_picture_agreement"),
    ({"matching": {"image": {"local": {"aligned_page_detail_agreement": 1.2}}}},
     "matching.image.local.aligned_page_detail_agreement"),
    ({"matching": {"image": {"local": {"small_fit_spread": -0.1}}}}, "matching.image.local.small_fit_spread"),
    ({"matching": {"image": {"local": {"small_fit_detail_agreement": 2}}}},
     "matching.image.local.small_fit_detail_agreement"),
    ({"image": {"picture_side": 400}}, "image.picture_side"),
    ({"video": {"keyframe_spread_grid": 0}}, "video.keyframe_spread_grid"),
    ({"image": {"region": {"max_tilt_deg": 60}}}, "image.region.max_tilt_deg"),
    ({"image": {"region": {"min_tilt_fill": 1.5}}}, "image.region.min_tilt_fill"),
    ({"video": {"keyframe_oversample": 17}}, "video.keyframe_oversample"),
])
def test_bad_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(overrides=override)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_conf_default_is_the_packaged_default():
    """conf/default.yaml is what people read and pass to --conf; the package loads its own copy.
    A stale conf copy would silently override newer defaults, so the two must be identical."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert (root / "conf" / "default.yaml").read_text() == (root / "lib" / "medialayer" / "default.yaml").read_text(), \
        "conf/default.yaml differs from lib/medialayer/default.yaml: copy the packaged one over it"
