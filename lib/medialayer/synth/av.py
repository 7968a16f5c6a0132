"""Synthetic video and audio for tests, the demo catalog and `make bench-av`.

Videos are slideshows with slow pans and zooms over real photographs (every frame differs, as in a
product demo); audio is either generated music (notes with harmonics, percussion) or, for the
benchmark, speech from espeak-ng. The edits are what sellers do to a copied clip: excerpt, re-encode,
crop, rescale, letterbox, logo, speed, volume, noise and a music bed. Encoding goes through PyAV.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

SCALE = (0, 2, 4, 5, 7, 9, 11)   # major scale steps


def music(duration_s: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A melody with chords and percussion, float32 in [-1, 1]: rich, changing spectral peaks."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    out = np.zeros(n, dtype=np.float64)
    t = 0.0
    base = 48 + int(rng.integers(0, 12))
    while t < duration_s:
        length = float(rng.choice([0.15, 0.25, 0.25, 0.4, 0.6]))
        for voice in range(int(rng.integers(1, 4))):
            step = SCALE[int(rng.integers(0, 7))] + 12 * int(rng.integers(0, 3))
            freq = 440.0 * 2 ** ((base + step - 69) / 12)
            _add_note(out, sr, t, length * (1 + voice * 0.3), freq, 0.25 / (voice + 1), rng)
        if rng.random() < 0.35:
            s, e = int(t * sr), min(n, int((t + 0.05) * sr))
            out[s:e] += rng.normal(0, 0.15, e - s) * np.linspace(1, 0, e - s)
        t += length
    peak = np.abs(out).max() or 1.0
    return (0.8 * out / peak).astype(np.float32)


def _add_note(out: np.ndarray, sr: int, start: float, length: float, freq: float, amp: float,
              rng: np.random.Generator) -> None:
    s = int(start * sr)
    e = min(out.size, s + int(length * sr))
    if e <= s:
        return
    tt = np.arange(e - s) / sr
    env = np.minimum(1.0, tt / 0.01) * np.exp(-tt * (2.0 + 4 * rng.random()))
    wave = sum((0.6 ** k) * np.sin(2 * np.pi * freq * (k + 1) * tt + rng.random() * 6.28) for k in range(4))
    out[s:e] += amp * env * wave


def speech(text: str, sr: int = 16000, voice: str = "en", speed_wpm: int = 160, pitch: int = 50) -> np.ndarray:
    """Speech from espeak-ng (Debian package espeak-ng), resampled to `sr`."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run([exe, "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "--stdout", text], check=True,
                         capture_output=True).stdout
    samples, rate = decode_audio_bytes(wav)
    return resample(samples, rate, sr)


def decode_audio_bytes(data: bytes) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [f.to_ndarray().reshape(-1) for fr in c.decode(stream) for f in res.resample(fr)]
    return np.concatenate(chunks).astype(np.float32), rate


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32)
    n = int(round(x.size * sr_out / sr_in))
    return np.interp(np.arange(n) * (sr_in / sr_out), np.arange(x.size), x).astype(np.float32)


# --- audio edits ----------------------------------------------------------------------------------

def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster, pitch follows (plain resampling)."""
    n = int(round(x.size / factor))
    return np.interp(np.arange(n) * factor, np.arange(x.size), x).astype(np.float32)


def change_tempo(x: np.ndarray, factor: float, sr: int) -> np.ndarray:
    """Play `factor` times faster keeping the pitch: overlap-add of 40 ms grains."""
    win = int(0.04 * sr)
    hop_out = win // 2
    hop_in = hop_out * factor
    w = np.hanning(win)
    n_out = int(x.size / factor)
    out = np.zeros(n_out + win)
    norm = np.zeros(n_out + win)
    pos_in, pos_out = 0.0, 0
    while int(pos_in) + win < x.size and pos_out + win < out.size:
        s = int(pos_in)
        out[pos_out:pos_out + win] += x[s:s + win] * w
        norm[pos_out:pos_out + win] += w
        pos_in += hop_in
        pos_out += hop_out
    norm[norm < 1e-3] = 1.0
    return (out / norm)[:n_out].astype(np.float32)


def mix(x: np.ndarray, bed: np.ndarray, snr_db: float) -> np.ndarray:
    """x with `bed` (music or noise) laid under it at the given signal-to-bed ratio."""
    bed = np.resize(bed, x.size)
    px, pb = float(np.mean(x ** 2)) or 1e-9, float(np.mean(bed ** 2)) or 1e-9
    y = x + bed * np.sqrt(px / pb / 10 ** (snr_db / 10))
    return (y / max(1.0, float(np.abs(y).max()))).astype(np.float32)


# --- video ---------------------------------------------------------------------------------------

def slideshow(photos: Sequence[np.ndarray], duration_s: float, fps: float = 10.0, size: tuple[int, int] = (320, 240),
              seconds_per_photo: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    """RGB frames: each photo shown for a few seconds with a slow pan and zoom (Ken Burns)."""
    w, h = size
    return [_view(photos[k], zoom, centre, w, h)
            for k, zoom, centre in slideshow_plan(len(photos), duration_s, fps, seconds_per_photo, seed)]


def slideshow_plan(n_photos: int, duration_s: float, fps: float = 10.0, seconds_per_photo: float = 4.0,
                   seed: int = 0) -> list[tuple[int, float, np.ndarray]]:
    """Per frame of `slideshow`: (photo index, zoom, view centre). Every photo is shown once before
    any repeats, so a long slideshow shows each photo several times, each time with its own pan and
    zoom: a benchmark reads here which frames show which part of which photo."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fps))
    per = max(1, int(round(seconds_per_photo * fps)))
    showings = []
    order: list[int] = []
    for _ in range(0, n, per):
        if not order:
            order = list(rng.permutation(n_photos))
        k = int(order.pop())
        z0, z1 = 1.0 + 0.3 * rng.random(), 1.0 + 0.3 * rng.random()
        c0, c1 = rng.random(2), rng.random(2)
        showings.append((k, z0, z1, c0, c1))
    plan = []
    for i in range(n):
        k, z0, z1, c0, c1 = showings[i // per]
        a = (i % per) / per
        plan.append((k, z0 + (z1 - z0) * a, c0 + (c1 - c0) * a))
    return plan


def view_box(photo_w: int, photo_h: int, zoom: float, centre: np.ndarray, w: int, h: int) -> tuple[float, ...]:
    """(x0, y0, x1, y1): the part of a photo that one slideshow frame shows, in photo pixels."""
    aspect = w / h
    vw = min(photo_w, photo_h * aspect) / zoom
    vh = vw / aspect
    x0 = (photo_w - vw) * float(centre[0])
    y0 = (photo_h - vh) * float(centre[1])
    return x0, y0, x0 + vw, y0 + vh


def _view(photo: np.ndarray, zoom: float, centre: np.ndarray, w: int, h: int) -> np.ndarray:
    x0, y0, x1, _ = view_box(photo.shape[1], photo.shape[0], zoom, centre, w, h)
    s = w / (x1 - x0)
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def retime(frames: Sequence[np.ndarray], fps: float, start_s: float, end_s: float, speed: float = 1.0,
           out_fps: float | None = None) -> list[np.ndarray]:
    """Frames of [start_s, end_s) of the source, played `speed` times faster, at out_fps."""
    out_fps = out_fps or fps
    n = int(round((end_s - start_s) / speed * out_fps))
    idx = [min(len(frames) - 1, int((start_s + k / out_fps * speed) * fps)) for k in range(n)]
    return [frames[i] for i in idx]


def crop_frames(frames: Sequence[np.ndarray], keep: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    ch, cw = int(h * keep), int(w * keep)
    y, x = (h - ch) // 2, (w - cw) // 2
    return [cv2.resize(f[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA) for f in frames]


def scale_frames(frames: Sequence[np.ndarray], factor: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    size = (max(16, int(w * factor)) // 2 * 2, max(16, int(h * factor)) // 2 * 2)
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def letterbox_frames(frames: Sequence[np.ndarray], bar: float = 0.15) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    b = int(h * bar) // 2 * 2
    out = []
    for f in frames:
        canvas = np.zeros((h + 2 * b, w, 3), dtype=np.uint8)
        canvas[b:b + h] = f
        out.append(canvas)
    return out


def logo_frames(frames: Sequence[np.ndarray], text: str = "SHOP", scale: float = 0.18) -> list[np.ndarray]:
    """A seller's logo box and text burnt into the top-left corner."""
    h, w = frames[0].shape[:2]
    bw, bh = int(w * scale * 1.6), int(h * scale)
    out = []
    for f in frames:
        g = f.copy()
        cv2.rectangle(g, (8, 8), (8 + bw, 8 + bh), (250, 250, 250), -1)
        cv2.putText(g, text, (12, 8 + int(bh * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, bh / 40, (200, 20, 20), 2)
        out.append(g)
    return out


def encode_video(path: str | Path, frames: Sequence[np.ndarray], fps: float, audio: np.ndarray | None = None,
                 sr: int = 16000, codec: str = "libx264", crf: int = 23, audio_codec: str = "aac") -> Path:
    """Write RGB frames (and a mono track) to an MP4 with PyAV."""
    import av

    path = Path(path)
    h, w = frames[0].shape[:2]
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w // 2 * 2, h // 2 * 2, "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            vs.bit_rate = int(400_000 * (23 / max(crf, 1)))
        ast = None
        if audio is not None:
            ast = out.add_stream(audio_codec, rate=sr)
            ast.layout = "mono"
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: vs.height, : vs.width]), format="rgb24")
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if ast is not None:
            _encode_audio_stream(out, ast, audio, sr)
    return path


def encode_audio(path: str | Path, samples: np.ndarray, sr: int = 16000, codec: str | None = None) -> Path:
    """Write a mono track; the codec follows the extension (.mp3, .wav, .ogg/.opus, .m4a)."""
    import av

    path = Path(path)
    ext = path.suffix.lower()
    codec = codec or {".mp3": "libmp3lame", ".wav": "pcm_s16le", ".ogg": "libopus", ".opus": "libopus",
                      ".m4a": "aac"}.get(ext, "libmp3lame")
    rate = 48000 if codec == "libopus" else sr
    data = resample(samples, sr, rate)
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=rate)
        st.layout = "mono"
        _encode_audio_stream(out, st, data, rate)
    return path


def _encode_audio_stream(container, stream, samples: np.ndarray, sr: int) -> None:
    import av

    x = np.clip(np.asarray(samples, dtype=np.float32), -1, 1)
    fmt = stream.codec_context.codec.audio_formats[0].name if stream.codec_context.codec.audio_formats else "flt"
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=sr)
    chunk = 1024
    pts = 0
    for start in range(0, x.size, chunk):
        part = x[start:start + chunk].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(part, format="flt", layout="mono")
        frame.sample_rate = sr
        frame.pts = pts
        pts += part.shape[1]
        for rf in resampler.resample(frame):
            for p in stream.encode(rf):
                container.mux(p)
    for rf in resampler.resample(None):
        for p in stream.encode(rf):
            container.mux(p)
    for p in stream.encode(None):
        container.mux(p)
