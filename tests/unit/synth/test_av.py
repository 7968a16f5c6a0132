"""The slideshow's plan says which part of which photo every frame shows (bench-av places frame
grabs with it), and the frames are those views."""
import cv2
import numpy as np

from medialayer.synth import av as S


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for k in range(4):
        small = rng.integers(0, 256, (12 + k, 16, 3), dtype=np.uint8)
        out.append(cv2.resize(small, (400 + 20 * k, 300), interpolation=cv2.INTER_CUBIC))
    return out


def test_each_frame_is_the_view_its_plan_names() -> None:
    photos = _photos()
    frames = S.slideshow(photos, 12.0, 10.0, (160, 120), seconds_per_photo=1.5, seed=4)
    plan = S.slideshow_plan(len(photos), 12.0, 10.0, 1.5, seed=4)
    assert len(plan) == len(frames) == 120
    for i in (0, 17, 58, 119):
        k, zoom, centre = plan[i]
        x0, y0, x1, y1 = S.view_box(photos[k].shape[1], photos[k].shape[0], zoom, centre, 160, 120)
        assert 0 <= x0 < x1 <= photos[k].shape[1] and 0 <= y0 < y1 <= photos[k].shape[0]
        crop = photos[k][int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))]
        view = cv2.resize(crop, (160, 120), interpolation=cv2.INTER_AREA).astype(np.float64)
        others = [cv2.resize(p, (160, 120), interpolation=cv2.INTER_AREA).astype(np.float64) for p in photos]
        err = np.abs(view - frames[i]).mean()
        assert err < 12, f"frame {i}: {err:.1f}"
        assert all(err < np.abs(o - frames[i]).mean() for j, o in enumerate(others) if j != k)


def test_every_photo_is_shown_once_before_any_repeats() -> None:
    plan = S.slideshow_plan(4, 20.0, 10.0, 1.0, seed=9)
    showings = [plan[i][0] for i in range(0, len(plan), 10)]
    assert sorted(showings[:4]) == [0, 1, 2, 3] and sorted(showings[4:8]) == [0, 1, 2, 3]
    # Each showing pans and zooms on its own: the same photo's two showings differ.
    first = next(i for i in range(0, len(plan), 10) if plan[i][0] == showings[0])
    again = next(i for i in range(40, len(plan), 10) if plan[i][0] == showings[0])
    assert (plan[first][1], tuple(plan[first][2])) != (plan[again][1], tuple(plan[again][2]))
