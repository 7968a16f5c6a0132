"""Video and audio decoding: sampled frames and a mono track; bad files become error codes."""
from __future__ import annotations

import wave

import numpy as np
import pytest

from medialayer.decoding.av import decode_av
from medialayer.errors import MediaError
from medialayer.fetching import Fetcher
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
    assert sound["status"] == "ok" and sound["media_type"] == "audio" and sound["frame_count"] is None
    assert abs(sound["duration_s"] - 10.0) < 0.5 and sound["peak_count"] > 50
    assert zero["status"] == "error" and zero["error_code"] == "decode_error"
    assert missing["status"] == "error" and missing["error_code"] == "not_found" and missing["media_type"] == "video"
