"""Assemble a short 640x480 video from still images, for running the app on something recorded.

``--roi-from-images``: each image is pasted into a fixed region (the region is printed, for ``nsl app --roi``),
as the dataset's capture tool saw a hand; otherwise each image is letterboxed onto the whole frame (real photos,
for the hand tracker). Runs in either environment (OpenCV only).
Usage: python scripts/make_clip.py OUT.mp4 IMAGE... [--frames-per-image 6] [--roi-from-images]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nsl.edge.clips import HEIGHT, WIDTH, letterbox, write_clip  # noqa: E402
from nsl.preprocess import read_image  # noqa: E402
from nsl.errors import NslError  # noqa: E402

ROI = (200, 120, 240, 240)


def in_roi(image: np.ndarray) -> np.ndarray:
    """``image`` pasted into the fixed region of a grey 640x480 frame."""
    x, y, w, h = ROI
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    frame[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--frames-per-image", type=int, default=6)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--roi-from-images", action="store_true")
    args = parser.parse_args()
    place = in_roi if args.roi_from_images else letterbox
    try:
        write_clip((place(read_image(path)) for path in args.images), args.out, args.frames_per_image, args.fps)
    except NslError as err:
        print(f"make_clip: {err}", file=sys.stderr)
        return 1
    if args.roi_from_images:
        print(",".join(map(str, ROI)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
