"""Fingerprint versions name the code and the settings that shaped a row."""
from medialayer.config import load_config
from medialayer.versions import CODE_VERSIONS, fingerprint_versions, run_version


def test_default_settings_keep_the_code_versions():
    assert fingerprint_versions(load_config()) == CODE_VERSIONS
    assert fingerprint_versions(None) == CODE_VERSIONS
    assert run_version(load_config()) == "+".join(CODE_VERSIONS.values())


def test_a_shaping_setting_changes_the_versions_of_the_types_it_shapes():
    orb = fingerprint_versions(load_config(overrides={"image": {"local": {"levels": 5}}}))
    assert orb["image"].startswith("image-") and "/" in orb["image"]
    assert "/" in orb["video"]                       # keyframes use the image's ORB settings
    assert orb["audio"] == CODE_VERSIONS["audio"]
    region = fingerprint_versions(load_config(overrides={"image": {"region": {"flat_tolerance": 20}}}))
    assert "/" in region["image"] and region["video"] == CODE_VERSIONS["video"]
    hop = fingerprint_versions(load_config(overrides={"audio": {"hop": 128}}))
    assert hop["image"] == CODE_VERSIONS["image"] and "/" in hop["audio"] and "/" in hop["video"]
    # The same settings give the same version in every process; other values another one.
    assert orb == fingerprint_versions(load_config(overrides={"image": {"local": {"levels": 5}}}))
    assert orb["image"] != fingerprint_versions(load_config(overrides={"image": {"local": {"levels": 4}}}))["image"]


def test_limits_and_other_sections_leave_the_versions_alone():
    limits = load_config(overrides={"image": {"max_pixels": 1000}, "video": {"max_duration_s": 60},
                                    "fetch": {"max_bytes": 1000}, "candidates": {"local": {"bits": 26}},
                                    "matching": {"match_threshold": 0.8}})
    assert fingerprint_versions(limits) == CODE_VERSIONS
