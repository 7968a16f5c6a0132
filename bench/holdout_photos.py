"""Build the held-out photo pool: 45 pictures no matching rule was tuned on, for `bench_accuracy.py --photos`.

Debian packages the packaged benchmark never reads: the wallpapers of ukui-wallpapers,
lomiri-wallpapers (-16.04, -20.04) and sway-backgrounds, and the 12 photographs stored inside
jigzo-data's puzzle files. They are fetched with `apt-get download` and unpacked with `dpkg -x` into
a work directory, not installed, so the packaged pool (which scans /usr/share/backgrounds) is left
as it is. warty-final-ubuntu.png is left out: it is lomiri-default-background.png's artwork again.

    make bench-accuracy-holdout       # builds bench/.cache/holdout with this script once, then runs
                                      # bench_accuracy.py --photos bench/.cache/holdout
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from medialayer.synth.photos import photos_in

PACKAGES = ("ukui-wallpapers", "lomiri-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
            "sway-backgrounds", "jigzo-data")
SAME_ARTWORK = {"warty-final-ubuntu.png"}
SWAY_KEPT = "Sway_Wallpaper_Blue_2048x1536.png"       # one of sway's eight sizes of one artwork
PUZZLES = "usr/share/games/jigzo/puzzles/00_default"


def jpeg_inside(blob: bytes) -> bytes | None:
    """The JPEG stream stored in a jigzo puzzle file (its header, then the picture)."""
    start, end = blob.find(b"\xff\xd8\xff"), blob.rfind(b"\xff\xd9")
    return blob[start:end + 2] if 0 <= start < end else None


def build(out: Path, work: Path) -> int:
    debs, root = work / "debs", work / "root"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    out.mkdir(parents=True, exist_ok=True)
    backgrounds = root / "usr/share/backgrounds"
    kept = [p for p in photos_in(backgrounds) if p.name not in SAME_ARTWORK]
    kept.append(backgrounds / "sway" / SWAY_KEPT)
    for p in kept:
        shutil.copyfile(p, out / p.name)
    for puzzle in sorted((root / PUZZLES).glob("*.pzl")):
        picture = jpeg_inside(puzzle.read_bytes())
        if picture is not None:
            (out / f"jigzo_{puzzle.stem.split('-')[0]}.jpg").write_bytes(picture)
    return len(list(out.iterdir()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="directory to write the pictures to")
    ap.add_argument("--work", type=Path, default=None, help="where the packages are unpacked (default: OUT.work)")
    args = ap.parse_args()
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        sys.exit("needs Debian's apt-get and dpkg (the pool is made of Debian packages)")
    n = build(args.out, args.work or args.out.with_name(args.out.name + ".work"))
    print(f"{n} pictures in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
