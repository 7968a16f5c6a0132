"""Video and audio decoding: sampled frames and a mono track; bad files become error codes."""
from __future__ import annotations

import wave

import numpy as np
import pytest

from medialayer.decoding.av import decode_av
from medialayer.errors import MediaError
from medialayer.fetching import Fetcher
from medialayer.fingerprints.video import unpack_keyframes
from medialayer.media import fingerprint_table
from medialayer.synth import av as synth_av


def test_video_frames_are_sampled_small_with_the_sound_track(av_clips, cfg):
    d = decode_av(av_clips["demo"]["path"].read_bytes(), "video", cfg.video, cfg.audio)
    assert d.media_type == "video" and (d.width, d.height) == (320, 240)
    assert abs(d.duration_s - 40.0) < 0.5
    step = 1.0 / cfg.video.sample_fps
    assert abs(len(d.frames) - 40.0 * cfg.video.sample_fps) <= 2
    assert np.allclose(np.diff(d.frame_times), step, atol=0.11)
    assert max(d.frames[0].shape) <= cfg.video.frame_side and d.frames[0].dtype == np.uint8
    assert d.audio is not None and abs(d.audio.size / cfg.audio.sample_rate - 40.0) < 0.5
    # Keyframes: one sampled frame every keyframe_interval_s, kept larger for keypoints.
    assert abs(len(d.keyframes) - 40.0 / cfg.video.keyframe_interval_s) <= 1
    assert np.allclose(np.diff(d.keyframe_times), cfg.video.keyframe_interval_s, atol=0.3)
    assert max(d.keyframes[0].shape) == min(cfg.video.keyframe_side, 320)


def test_keyframes_are_spaced_out_to_fit_their_cap(av_clips, cfg):
    capped = cfg.with_overrides({"video": {"max_keyframes": 5}})
    d = decode_av(av_clips["demo"]["path"].read_bytes(), "video", capped.video, capped.audio)
    assert len(d.keyframes) == 5 and d.keyframe_times[-1] > 30.0       # spread over the whole clip


def test_limits_and_broken_files_raise_coded_errors(av_clips, cfg, tmp_path):
    data = av_clips["demo"]["path"].read_bytes()
    short = cfg.with_overrides({"video": {"max_duration_s": 10}})
    with pytest.raises(MediaError) as err:
        decode_av(data, "video", short.video, short.audio)
    assert err.value.code == "too_long"
    with pytest.raises(MediaError) as err:
        decode_av(data[: len(data) // 3], "video", cfg.video, cfg.audio)
    assert err.value.code == "decode_error"
    sound_only = synth_av.encode_audio(tmp_path / "s.mp4", synth_av.music(2.0, seed=1), codec="aac")
    with pytest.raises(MediaError) as err:
        decode_av(sound_only.read_bytes(), "video", cfg.video, cfg.audio)
    assert err.value.code == "no_video_stream"
    silent = synth_av.encode_video(tmp_path / "mute.mp4", av_clips["demo"]["frames"][:20], av_clips["fps"])
    with pytest.raises(MediaError) as err:
        decode_av(silent.read_bytes(), "audio", cfg.video, cfg.audio)
    assert err.value.code == "no_audio_stream"


def test_fingerprint_rows_for_video_audio_and_bad_files(av_clips, cfg, tmp_path):
    sr = av_clips["sr"]
    audio = synth_av.encode_audio(tmp_path / "a.mp3", av_clips["demo"]["sound"][: 10 * sr], sr)
    empty = tmp_path / "empty.wav"                       # a valid WAV header holding no samples
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
    urls = [str(av_clips["demo"]["path"]), str(audio), str(empty), str(tmp_path / "missing.mp4")]
    table = fingerprint_table(urls, [None] * len(urls), cfg, Fetcher(cfg.fetch, trusted_local=True)).to_pylist()
    video, sound, zero, missing = table
    assert video["status"] == "ok" and video["media_type"] == "video" and video["frame_count"] > 100
    assert video["peak_count"] > 200 and video["fingerprint_version"].startswith("video-")
    assert video["phash"] is None                          # image hashes stay null on video rows
    kf = unpack_keyframes(video["kf_times"], video["kf_counts"], video["kp_xy"], video["kp_desc"],
                          video["kp_frame_w"], video["kp_frame_h"], video["kp_angle"])
    assert kf.times.size >= 15 and kf.counts.max() <= cfg.video.keyframe_keypoints
    assert kf.xy.shape[0] == kf.descriptors.shape[0] == video["kp_count"] == int(kf.counts.sum())
    assert kf.features(3).count == kf.counts[3] and video["kp_desc_mirror"] is None
    assert sound["status"] == "ok" and sound["media_type"] == "audio" and sound["frame_count"] is None
    assert abs(sound["duration_s"] - 10.0) < 0.5 and sound["peak_count"] > 50
    assert zero["status"] == "error" and zero["error_code"] == "decode_error"
    assert missing["status"] == "error" and missing["error_code"] == "not_found" and missing["media_type"] == "video"


@pytest.mark.parametrize("pixel_format", ["yuv420p", "yuvj420p", "yuv444p", "rgb24", "nv12"])
def test_a_frames_mean_colour_does_not_depend_on_its_pixel_format(pixel_format):
    """Planar YUV is read from its planes (limited or full range), anything else through an RGB
    thumbnail; both give the picture's mean colour."""
    import av

    from medialayer.decoding.av import _mean_colour

    y, x = np.mgrid[0:180, 0:320]
    rgb = np.stack([40 + 150 * x / 320, 90 + 60 * y / 180, 160 - 80 * x / 320], axis=-1).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pixel_format)
    colour = _mean_colour(frame, (16, 9))
    assert np.abs(colour - rgb.reshape(-1, 3).mean(axis=0)).max() <= 6, (pixel_format, colour)
