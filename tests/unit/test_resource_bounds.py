"""Memory stays bounded on huge images and long videos: each is fingerprinted in a child process under
an address-space limit, and the resident memory it adds is checked (a task holds at most
fetch.concurrency such items at once)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image

from medialayer.synth import av as synth_av

LIMIT_BYTES = 3 * 1024 ** 3            # address space (threads and libraries reserve a lot of it)
MAX_GROWTH_MB = 150                    # resident memory one file may add (one 56 MP RGB copy alone is 169 MB)


def test_huge_image_and_long_video_fingerprint_within_a_memory_limit(tmp_path):
    rng = np.random.default_rng(0)
    small = (rng.random((70, 70, 3)) * 255).astype(np.uint8)
    huge = tmp_path / "huge.jpg"        # 7500 x 7500 = 56 MP: under image.max_pixels, decoded in draft mode
    Image.fromarray(small).resize((7500, 7500), Image.Resampling.BILINEAR).save(huge, quality=85)
    frames = [(rng.random((120, 160, 3)) * 255).astype(np.uint8) for _ in range(40)]
    long_video = synth_av.encode_video(tmp_path / "long.mp4", [frames[i % 40] for i in range(600)], fps=1.0,
                                       audio=synth_av.music(600.0, 8000, seed=1), sr=8000)   # 10 minutes
    script = textwrap.dedent(f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({LIMIT_BYTES}, {LIMIT_BYTES}))
        from medialayer.config import load_config
        from medialayer.fetching import Fetcher
        from medialayer.media import fingerprint_table
        cfg = load_config(overrides={{"video": {{"max_frames": 400}}}})
        import av, cv2, numpy, pyarrow  # noqa: F401 - libraries loaded before the baseline
        from medialayer.fingerprints.orb_descriptors import describer   # ... and the compiled kernels (numba)
        from medialayer.fingerprints.orb_detection import detector
        lc = cfg.image.local
        assert describer(lc.levels, lc.scale_factor, lc.edge_px) is not None
        assert detector(lc.max_keypoints * lc.oversample, lc.scale_factor, lc.levels, lc.edge_px, lc.edge_px,
                        lc.fast_threshold) is not None
        import gc; gc.collect()
        base = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2 ** 20  # resident now
        url = sys.argv[1]
        row = fingerprint_table([url], [None], cfg, Fetcher(cfg.fetch, trusted_local=True), workers=1).to_pylist()[0]
        # VmHWM, not ru_maxrss: a child started by a big parent inherits the parent's ru_maxrss
        peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
        print(json.dumps({{"row": (row["status"], row["error_code"], row["frame_count"], row["duration_s"]),
                          "growth_mb": peak - base}}))
    """)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    out = {}
    for name, path in (("image", huge), ("video", long_video)):
        done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                              timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["image"]["row"][0] == "ok" and out["video"]["row"][0] == "ok", out
    _, _, frame_count, duration = out["video"]["row"]
    assert frame_count <= 400 and duration >= 590          # frames capped by video.max_frames, sound kept whole
    assert all(o["growth_mb"] < MAX_GROWTH_MB for o in out.values()), out
