#!/usr/bin/env python
"""Fetch the photographs of OpenCV's sample data (from the opencv-python-headless source
distribution on PyPI), as more clean training images for the session-7 recipes.

OpenCV's sources carry ~20 real photographs (streets, buildings, fruit, animals, a circuit
board, a harbour) beside test patterns, logos and screenshots; we take the photographs.
Most are JPEGs of 0.3-1.3 MP: each is shrunk by 2/3 (INTER_AREA averages the 8x8 blocking
away) so it serves as a clean target, and written as PNG:

    python recipes/fetch_opencv_photos.py              # -> data/opencv-photos/*.png
    python recipes/fetch_opencv_photos.py --sdist F    # the .tar.gz already downloaded

The archive is pinned by its sha256. Nothing here is shipped or committed; recipes name
the folder as a `clean` source. OpenCV's licence (Apache-2.0) is copied beside the output.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_debian_photos import shrink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SDIST = ("https://files.pythonhosted.org/packages/3d/b2/c308bc696bf5d75304175c62222ec8af9a6d5cfe36c14f19f15ea9d1a132/"
         "opencv-python-headless-4.9.0.80.tar.gz")
SHA256 = "71a4cd8cf7c37122901d8e81295db7fb188730e33a0e40039a4e59c1030b0958"
TOP = "opencv-python-headless-4.9.0.80/opencv/"
PHOTOS = [f"samples/data/{n}" for n in (
    "aloeL.jpg", "leuvenA.jpg", "building.jpg", "baboon.jpg", "fruits.jpg", "rubberwhale1.png",
    "graf1.png", "smarties.png", "messi5.jpg", "board.jpg", "home.jpg", "butterfly.jpg", "aero1.jpg")] + [
    "samples/dnn/dnn_model_runner/dnn_conversion/paddlepaddle/data/cat.jpg",
    "doc/tutorials/dnn/dnn_pytorch_tf_detection/images/pexels_double_decker_bus.jpg",
    "doc/tutorials/others/images/boat.jpg",
    "doc/tutorials/dnn/dnn_pytorch_tf_classification/images/squirrel_cls.jpg",
    "doc/tutorials/app/images/astra_color.jpg",
    "samples/cpp/tutorial_code/calib3d/real_time_pose_estimation/Data/resized_IMG_3875.JPG",
    "doc/tutorials/others/images/Background_Subtraction_Tutorial_frame.jpg",
]
SHRINK = 2 / 3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "data" / "opencv-photos"))
    ap.add_argument("--sdist", default=None, help="the opencv-python-headless-4.9.0.80.tar.gz (default: download it)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = Path(args.sdist) if args.sdist else Path(tmp) / "opencv.tar.gz"
        if not args.sdist:
            urllib.request.urlretrieve(SDIST, sdist)
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SHA256:
            print(f"error: {sdist}: sha256 {digest}, expected {SHA256}", file=sys.stderr)
            return 1
        with tarfile.open(sdist) as tar:
            (out / "opencv.LICENSE").write_bytes(tar.extractfile(TOP + "LICENSE").read())
            for rel in PHOTOS:
                data = np.frombuffer(tar.extractfile(TOP + rel).read(), np.uint8)
                im = cv2.imdecode(data, cv2.IMREAD_COLOR)
                cv2.imwrite(str(out / f"opencv-{Path(rel).stem}.png"), shrink(im, SHRINK))
    print(f"wrote {len(PHOTOS)} photos to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
