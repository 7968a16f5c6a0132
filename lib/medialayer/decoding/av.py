"""Video and audio decoding with PyAV (its wheels carry FFmpeg): sampled small frames and a mono track.

Frames are decoded in order (inter-coded video needs it) but only the sampled ones are converted,
straight to a small grey picture by FFmpeg's scaler, so memory and time do not grow with the
resolution. Every limit (duration, frames, samples) is checked before the work it bounds.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np

from ..config import AudioConfig, VideoConfig
from ..errors import MediaError

log = logging.getLogger(__name__)


@dataclass
class DecodedAV:
    media_type: str                      # "video" or "audio"
    duration_s: float
    width: int | None = None             # video only: the coded frame size
    height: int | None = None
    frame_times: np.ndarray | None = None        # (n,) float64 seconds
    frames: list[np.ndarray] | None = None       # n grey uint8 frames, long side <= video.frame_side
    frame_colours: np.ndarray | None = None      # (n, 3) uint8 mean R, G, B of each sampled frame
    keyframe_times: np.ndarray | None = None     # (k,) seconds: every video.keyframe_interval_s
    keyframes: list[np.ndarray] | None = None    # k grey uint8 frames, long side <= video.keyframe_side
    audio: np.ndarray | None = None              # mono float32 at audio.sample_rate, or None (no track)


def decode_av(data: bytes, media_type: str, video_cfg: VideoConfig, audio_cfg: AudioConfig) -> DecodedAV:
    """Decode `data` as `media_type` ("video" or "audio"); failures raise MediaError with a code."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except Exception as exc:  # noqa: BLE001 - PyAV raises many error types for bad input
        raise MediaError("decode_error", f"not a readable {media_type} container: {_short(exc)}") from None
    try:
        with container:
            vstream = container.streams.video[0] if container.streams.video else None
            astream = container.streams.audio[0] if container.streams.audio else None
            if media_type == "video" and vstream is None:
                raise MediaError("no_video_stream", "the file has no video stream")
            if media_type == "audio" and astream is None:
                raise MediaError("no_audio_stream", "the file has no audio stream")
            duration = _declared_duration(container, vstream if media_type == "video" else astream)
            if duration is not None and duration > video_cfg.max_duration_s:
                raise MediaError("too_long", f"{duration:.0f} s is longer than video.max_duration_s "
                                             f"({video_cfg.max_duration_s:.0f} s)")
            out = DecodedAV(media_type, duration or 0.0)
            if media_type == "video":
                out.width, out.height = int(vstream.codec_context.width or 0), int(vstream.codec_context.height or 0)
                out.frame_times, out.frames, out.frame_colours, out.keyframe_times, out.keyframes = _sample_frames(
                    container, vstream, video_cfg, duration)
                if not out.frames:
                    raise MediaError("decode_error", "no decodable video frame")
                container.seek(0)
            if astream is not None:
                out.audio = _decode_audio(container, astream, audio_cfg, video_cfg.max_duration_s)
            if media_type == "audio" and (out.audio is None or out.audio.size < audio_cfg.sample_rate * 0.5):
                raise MediaError("decode_error", "the audio track holds less than half a second of sound")
            last_frame = float(out.frame_times[-1]) if out.frame_times is not None and out.frame_times.size else 0.0
            heard = out.audio.size / audio_cfg.sample_rate if out.audio is not None else 0.0
            out.duration_s = max(out.duration_s, last_frame, heard)
            return out
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt streams surface as assorted FFmpeg errors
        raise MediaError("decode_error", f"{media_type} decoding failed: {_short(exc)}") from None


def _declared_duration(container, stream) -> float | None:
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000.0
    return None


def _sample_frames(container, stream, cfg: VideoConfig, duration: float | None = None
                   ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray, list[np.ndarray]]:
    """Frames at cfg.sample_fps (the first frame at or after each tick), grey, long side <= frame_side,
    with each one's mean colour (`_mean_colour`: a frame grab keeps its frame's colours, which the
    grey hashes cannot tell); and keyframes: one of those frames every
    keyframe_interval_s (spaced out so that a video of the declared `duration` fits max_keyframes),
    grey, long side <= keyframe_side."""
    stream.thread_type = "AUTO"
    step = 1.0 / cfg.sample_fps
    times: list[float] = []
    frames: list[np.ndarray] = []
    colours: list[np.ndarray] = []
    key_times: list[float] = []
    keys: list[np.ndarray] = []
    key_step = cfg.keyframe_interval_s
    if duration and cfg.max_keyframes > 0:
        key_step = max(key_step, duration / cfg.max_keyframes)
    next_t = next_key = 0.0
    size = key_size = colour_size = None
    for frame in container.decode(stream):
        t = frame.time if frame.time is not None else (len(times) * step)
        if t > cfg.max_duration_s:
            raise MediaError("too_long", f"frames past {cfg.max_duration_s:.0f} s (video.max_duration_s)")
        if t + 1e-6 < next_t:
            continue
        if size is None:
            size = _fit(frame.width, frame.height, cfg.frame_side)
            key_size = _fit(frame.width, frame.height, cfg.keyframe_side)
            colour_size = _fit(frame.width, frame.height, _COLOUR_SIDE)
        frames.append(frame.to_ndarray(format="gray", width=size[0], height=size[1]))
        colours.append(_mean_colour(frame, colour_size))
        times.append(float(t))
        next_t = max(next_t + step, t + step * 0.5)
        if t + 1e-6 >= next_key and len(keys) < cfg.max_keyframes and cfg.keyframe_keypoints > 0:
            keys.append(frame.to_ndarray(format="gray", width=key_size[0], height=key_size[1]))
            key_times.append(float(t))
            next_key = max(next_key + key_step, t + key_step * 0.5)
        if len(frames) >= cfg.max_frames:
            log.info("video sampling stopped at video.max_frames=%d (%.0f s)", cfg.max_frames, t)
            break
    colour_array = np.clip(np.round(np.asarray(colours, dtype=np.float64).reshape(-1, 3)), 0, 255).astype(np.uint8)
    return np.asarray(times, dtype=np.float64), frames, colour_array, np.asarray(key_times, dtype=np.float64), keys


_COLOUR_SIDE = 16         # long side of the RGB thumbnail the mean colour of a frame not in planar YUV is read from
_COLOUR_GRID = (32, 18)   # about this many points (x, y) per plane a planar YUV frame's mean colour is read from
_YUV_PLANAR = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}
# Y'CbCr -> R'G'B' (full-range values, chroma centred on 0): BT.709 when the stream says so, else
# BT.601, FFmpeg's own default for an unspecified colour space.
_TO_RGB = {"709": np.array([[1.0, 0.0, 1.5748], [1.0, -0.1873, -0.4681], [1.0, 1.8556, 0.0]]),
           "601": np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])}


def _mean_colour(frame, colour_size: tuple[int, int]) -> np.ndarray:
    """Mean R, G, B of a decoded frame. Planar YUV (nearly every video) is read from a sparse grid of
    its planes, without scaling the frame (a scaled RGB copy costs a quarter of the decoding on small
    videos); the conversion is linear, so the mean's conversion is the mean colour. Other pixel
    formats go through a small RGB thumbnail."""
    if frame.format.name not in _YUV_PLANAR:
        return frame.to_ndarray(format="rgb24", width=colour_size[0], height=colour_size[1]).reshape(-1, 3).mean(axis=0)
    means = []
    for plane in frame.planes[:3]:
        pixels = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        step_y, step_x = max(1, plane.height // _COLOUR_GRID[1]), max(1, plane.width // _COLOUR_GRID[0])
        means.append(float(pixels[step_y // 2::step_y, step_x // 2:plane.width:step_x].mean()))
    y, cb, cr = means
    if frame.format.name.startswith("yuvj") or int(frame.color_range or 0) == 2:   # full range
        ycc = np.array([y, cb - 128.0, cr - 128.0])
    else:                                                                          # limited (TV) range
        ycc = np.array([(y - 16.0) * 255.0 / 219.0, (cb - 128.0) * 255.0 / 224.0, (cr - 128.0) * 255.0 / 224.0])
    matrix = _TO_RGB["709" if int(getattr(frame, "colorspace", 0) or 0) == 1 else "601"]
    return np.clip(matrix @ ycc, 0.0, 255.0)


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) with the long side at most `side`, never upscaled, at least 8 pixels each."""
    scale = min(1.0, side / max(width, height, 1))
    return max(8, int(round(width * scale))), max(8, int(round(height * scale)))


def _decode_audio(container, stream, cfg: AudioConfig, max_duration_s: float) -> np.ndarray | None:
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=cfg.sample_rate)
    limit = int(max_duration_s * cfg.sample_rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        for frame in container.decode(stream):
            frame.pts = None       # let the resampler count samples itself (gaps and bad pts happen)
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
            if total > limit:
                raise MediaError("too_long", f"audio past {max_duration_s:.0f} s (video.max_duration_s)")
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken audio track of a video is not fatal to the video
        if not chunks:
            log.info("audio track not decodable: %s", _short(exc))
            return None
    if not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
