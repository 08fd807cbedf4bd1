#!/usr/bin/env python
"""Fetch the real photographs the recipes train on (since session 3; session 7 added the
Ubuntu community ones of lomiri-wallpapers), from Debian packages.

Debian's desktop wallpaper packages ship photographs (CC-BY / CC-BY-SA / CC0 / GPL / LGPL, see each
package's copyright file, copied beside the output). We take the photographic ones (not
the renders), resize each so its long side is 1024 px (INTER_AREA: that averages away
JPEG blocking and sensor noise, so the images serve as clean targets) and write PNGs:

    python recipes/fetch_debian_photos.py                 # -> data/debian-photos/*.png
    python recipes/fetch_debian_photos.py --debs DIR      # .deb files already downloaded

Needs apt-get and dpkg-deb (Debian/Ubuntu), or the .deb files and dpkg-deb. Nothing here
is shipped in the package or committed; recipes name the folder as a `clean` source.
"""
from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds", "lomiri-wallpapers-16.04",
            "lomiri-wallpapers-20.04")
# (package, path inside it): photographs with texture (foliage, wood, water, boats, buildings);
# the renders and illustrations of these packages are left out.
PHOTOS = [
    ("plasma-workspace-wallpapers", f"usr/share/wallpapers/{n}/contents/images/{f}")
    for n, f in [("BytheWater", "1280x1024.jpg"), ("ColdRipple", "1280x1024.jpg"),
                 ("ColorfulCups", "2560x1600.jpg"), ("EveningGlow", "1280x1024.jpg"),
                 ("FallenLeaf", "1280x1024.jpg"), ("Grey", "1280x1024.jpg"), ("Kite", "1280x1024.jpg"),
                 ("OneStandsOut", "1280x1024.jpg"), ("Path", "1280x1024.jpg"),
                 ("Volna", "5120x2880.jpg"), ("summer_1am", "1280x1024.jpg")]
] + [
    ("mate-backgrounds", f"usr/share/backgrounds/mate/nature/{n}.jpg")
    for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
              "Storm", "TwoWings", "Wood", "YellowFlower")
] + [  # session 7: Ubuntu community photographs (CC-BY / CC-BY-SA / CC0): skies, mountains, foliage
    ("lomiri-wallpapers-16.04", f"usr/share/backgrounds/{n}.jpg")
    for n in ("aitzgorri_by_Aitzol_Berasategi", "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly",
              "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
              "Picture_0B_by_freespace", "Picture_1A_by_freespace", "seeding_by_Clements_Engelhardt",
              "sunset_by_Aitzol_Berasategi", "Wine_by_Jakkub_Mede", "free_by_Peter_Nerlich")
] + [("lomiri-wallpapers-20.04", "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg")]
LONG_SIDE = 1024


def shrink(im, factor: float):
    """``im`` resized by ``factor`` if it is below 1, with INTER_AREA (averages blocking and noise away)."""
    if factor >= 1:
        return im
    h, w = im.shape[:2]
    return cv2.resize(im, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "data" / "debian-photos"))
    ap.add_argument("--debs", default=None, help="folder with the .deb files (default: apt-get download them)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        debs = Path(args.debs) if args.debs else Path(tmp)
        if not args.debs:
            subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True)
        for pkg in PACKAGES:
            found = sorted(glob.glob(str(debs / f"{pkg}_*.deb")))
            if not found:
                print(f"error: no {pkg}_*.deb in {debs}", file=sys.stderr)
                return 1
            (Path(tmp) / "x" / pkg).mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", found[-1], str(Path(tmp) / "x" / pkg)], check=True)
            copyright_file = Path(tmp) / "x" / pkg / "usr/share/doc" / pkg / "copyright"
            if copyright_file.is_file():
                shutil.copy(copyright_file, out / f"{pkg}.copyright")
        for pkg, rel in PHOTOS:
            src = Path(tmp) / "x" / pkg / rel
            im = cv2.imread(str(src), cv2.IMREAD_COLOR)
            if im is None:
                print(f"error: cannot read {pkg}:{rel}", file=sys.stderr)
                return 1
            name = rel.split("/")[-4] if "/contents/" in rel else Path(rel).stem.split("_by_")[0]
            cv2.imwrite(str(out / f"{pkg.split('-')[0]}-{name}.png"), shrink(im, LONG_SIDE / max(im.shape[:2])))
    print(f"wrote {len(PHOTOS)} photos to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
