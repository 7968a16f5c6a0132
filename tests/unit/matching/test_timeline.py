"""Time-line voting, segment runs and edge snapping: the pure pieces of video/audio alignment."""
from __future__ import annotations

import numpy as np

from medialayer.matching.av import Alignment, _agreeing_run, snap_to_edges
from medialayer.matching.timeline import vote_line


def test_vote_line_finds_the_offset_and_speed_among_chance_pairs():
    rng = np.random.default_rng(0)
    tq = np.arange(0, 80, 0.25)                                  # long enough for a 4% drift to show
    tr = 1.04 * tq + 30.0                                        # a 4% faster copy placed at 30 s
    noise_q, noise_r = rng.uniform(0, 80, 60), rng.uniform(0, 120, 60)
    line = vote_line(np.r_[tq, noise_q], np.r_[tr, noise_r], np.ones(tq.size + 60), (0.96, 1.0, 1.04), 1.0)
    assert line.speed == 1.04 and abs(line.offset - 30.0) < 0.6
    # (over a few seconds a 4% drift stays inside one bin: match_video settles the speed along the line)


def test_vote_line_prefers_unchanged_speed_on_a_tie():
    tq = np.zeros(8)                                             # a still picture: every speed fits
    tr = np.full(8, 12.0)
    assert vote_line(tq, tr, np.ones(8), (0.95, 1.0, 1.05), 1.0).speed == 1.0


def test_agreeing_run_ignores_dropped_frames_and_breaks_on_long_disagreement():
    agree = np.array([1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    inside = np.ones(agree.size, dtype=bool)
    run = _agreeing_run(agree, inside, max_bad=3)
    assert run.tolist() == [1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]     # one bad frame is tolerated, five are not
    assert _agreeing_run(agree, inside, max_bad=5).sum() == agree.sum()


def test_snap_to_edges_extends_only_short_shortfalls():
    al = Alignment(0.9, 0.6, 9.2, 30.6, 39.2, 1.0, 20, "")
    snapped = snap_to_edges(al, dur_q=10.0, dur_r=120.0, snap_s=1.0)
    assert (snapped.q_start, snapped.r_start) == (0.0, 30.0)
    assert abs(snapped.q_end - 10.0) < 1e-9 and abs(snapped.r_end - 40.0) < 1e-9
    far = snap_to_edges(Alignment(0.9, 3.0, 9.2, 33.0, 39.2, 1.0, 20, ""), 10.0, 120.0, 1.0)
    assert far.q_start == 3.0 and far.r_start == 33.0                   # 3 s short: a real boundary
