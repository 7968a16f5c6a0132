"""Audio fingerprints in the landmark family: spectral peaks, hashed in pairs with their time gap.

What is stored is the peaks themselves (time in hops, frequency in 1/16 bin), not the hashes: a
peak pair hash changes when a clip is sped up or pitched, so matching re-hashes the query's peaks
under a few speed hypotheses (time scaled, with or without the frequencies) against the
reference's plain hashes. Peaks are local maxima of the log spectrogram that stand out from their
neighbourhood, thinned to a fixed density, so volume changes do nothing and noise or a music bed
removes some landmarks but does not invent aligned ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import AudioConfig

AUDIO_FINGERPRINT_VERSION = "audio-v1"
PEAK_DTYPE = np.dtype([("t", "<u4"), ("f", "<u2")])
_F_SCALE = 16.0          # stored frequency unit: 1/16 of an FFT bin
_BLOCK_HOPS = 32 * 64    # peak-picking block (a multiple of the 32-hop thinning block): ~65 s at 8 kHz


@dataclass(frozen=True)
class Peaks:
    t: np.ndarray         # (n,) float64, in hops
    f: np.ndarray         # (n,) float64, in FFT bins (fractional)

    @property
    def size(self) -> int:
        return int(self.t.size)


def spectral_peaks(samples: np.ndarray, cfg: AudioConfig) -> Peaks:
    """Prominent local maxima of the log-magnitude spectrogram, at most cfg.peaks_per_second."""
    x = np.asarray(samples, dtype=np.float32)
    n_fft, hop = cfg.fft_size, cfg.hop
    if x.size < n_fft:
        return Peaks(np.zeros(0), np.zeros(0))
    window = np.hanning(n_fft).astype(np.float32)
    n_frames = 1 + (x.size - n_fft) // hop
    spec = np.empty((n_frames, n_fft // 2 + 1), dtype=np.float32)
    chunk = 2048                                     # frames per FFT call: bounded memory on long files
    for start in range(0, n_frames, chunk):
        stop = min(n_frames, start + chunk)
        frames = np.lib.stride_tricks.sliding_window_view(x[start * hop:(stop - 1) * hop + n_fft], n_fft)[::hop]
        spec[start:stop] = np.abs(np.fft.rfft(frames * window, axis=1))
    np.add(spec, 1e-6, out=spec)
    log_s = np.log(spec, out=spec)                                   # (time, freq), in place
    nb_t, nb_f = cfg.neighbourhood_hops, cfg.neighbourhood_bins
    kernel = np.ones((2 * nb_t + 1, 2 * nb_f + 1), np.uint8)
    loud_floor = float(log_s.max()) - cfg.dynamic_range_nepers       # digital silence has no peaks
    lo, hi = cfg.min_bin, min(log_s.shape[1] - 2, cfg.max_bin)
    # Peak picking in blocks of frames (with margins wider than both filters), so the filter
    # outputs stay a few MB however long the file is; the result equals the whole-file computation.
    pad = 4 * nb_t + 2
    found_t, found_f, found_s = [], [], []
    for start in range(0, n_frames, _BLOCK_HOPS):
        a, b = max(0, start - pad), min(n_frames, start + _BLOCK_HOPS + pad)
        blk = log_s[a:b]
        local_max = cv2.dilate(blk, kernel)
        background = cv2.blur(blk, (4 * nb_f + 1, 4 * nb_t + 1))     # (width=freq, height=time)
        is_peak = (blk == local_max) & (blk > background + cfg.min_prominence) & (blk > loud_floor)
        is_peak[:, :lo] = False
        is_peak[:, hi + 1:] = False
        is_peak[: start - a] = False
        is_peak[start - a + _BLOCK_HOPS:] = False
        t_idx, f_idx = np.nonzero(is_peak)
        found_t.append(t_idx + a)
        found_f.append(f_idx)
        found_s.append(blk[t_idx, f_idx] - background[t_idx, f_idx])
    t_idx, f_idx, strength = np.concatenate(found_t), np.concatenate(found_f), np.concatenate(found_s)
    if t_idx.size == 0:
        return Peaks(np.zeros(0), np.zeros(0))
    keep = _thin(t_idx, strength, cfg.peaks_per_second * hop / cfg.sample_rate * 32, 32)
    t_idx, f_idx = t_idx[keep], f_idx[keep]
    # Parabolic interpolation: the frequency between bins, so rescaling for speed stays accurate.
    a, b, c = log_s[t_idx, f_idx - 1], log_s[t_idx, f_idx], log_s[t_idx, f_idx + 1]
    denom = a - 2 * b + c
    delta = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    f = f_idx + np.clip(delta, -0.5, 0.5)
    order = np.lexsort((f, t_idx))
    return Peaks(t_idx[order].astype(np.float64), f[order].astype(np.float64))


def _thin(t_idx: np.ndarray, strength: np.ndarray, per_block: float, block: int) -> np.ndarray:
    """Indices of the strongest peaks, at most `per_block` in every `block` hops."""
    limit = max(1, int(round(per_block)))
    blk = t_idx // block
    order = np.lexsort((-strength, blk))
    sorted_blk = blk[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_blk)) + 1]
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    return np.sort(order[rank < limit])


def pack_peaks(peaks: Peaks) -> bytes:
    out = np.empty(peaks.size, dtype=PEAK_DTYPE)
    out["t"] = np.round(peaks.t).astype(np.uint32)
    out["f"] = np.clip(np.round(peaks.f * _F_SCALE), 0, 65535).astype(np.uint16)
    return out.tobytes()


def unpack_peaks(blob: bytes | None) -> Peaks:
    arr = np.frombuffer(blob or b"", dtype=PEAK_DTYPE)
    return Peaks(arr["t"].astype(np.float64), arr["f"].astype(np.float64) / _F_SCALE)


@dataclass(frozen=True)
class Landmarks:
    hash: np.ndarray      # (m,) int64
    t: np.ndarray         # (m,) float64 anchor time, in the reference's hops
    anchor: np.ndarray    # (m,) int64 index of the anchor peak (to count distinct evidence)


def landmarks(peaks: Peaks, cfg: AudioConfig, speed: float = 1.0, pitch_follows: bool = False) -> Landmarks:
    """Peak-pair hashes (f1, f2 - f1, dt) with the anchor's time.

    `speed` maps this clip's time onto the other's (a clip played 3% fast has speed 1.03: its t is
    multiplied by 1.03 before hashing); with `pitch_follows` its frequencies, raised 3% by plain
    resampling, are divided by 1.03 too; without it only time changes (a tempo change keeps pitch).
    """
    n = peaks.size
    if n < 2:
        z = np.zeros(0, dtype=np.int64)
        return Landmarks(z, np.zeros(0), z.copy())
    t = peaks.t * speed
    f = peaks.f / speed if pitch_follows else peaks.f
    q = cfg.freq_quantum_bins
    anchors, targets = [], []
    taken = np.zeros(n, dtype=np.int64)
    for k in range(1, cfg.pair_search + 1):
        i = np.arange(n - k)
        j = i + k
        dt = t[j] - t[i]
        ok = (dt >= 0.5) & (dt <= cfg.max_dt_hops) & (np.abs(f[j] - f[i]) <= cfg.max_df_bins) & (taken[i] < cfg.fan_out)
        i, j = i[ok], j[ok]
        taken[i] += 1
        anchors.append(i)
        targets.append(j)
    i = np.concatenate(anchors)
    j = np.concatenate(targets)
    f1 = np.round(f[i] / q).astype(np.int64)
    df = np.round((f[j] - f[i]) / q).astype(np.int64) + int(np.ceil(cfg.max_df_bins / q))
    dt = np.round(t[j] - t[i]).astype(np.int64)
    h = (f1 << 16) | (df << 8) | dt
    return Landmarks(h, t[i], i.astype(np.int64))
