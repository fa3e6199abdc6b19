"""A synthetic dataset the size of the NSL set for scripts/gpu_check.sh, made in seconds rather than the hour the
drawn-hand generator alone would take for 54,000 images.

    python scripts/gpu_check_data.py OUT [--classes 36] [--per-class 1500] [--size 256] [--bases 12] [--workers N]

OUT/Plain Background/<class>/*.jpg and OUT/Random Background/<class>/*.jpg (the published layout, so labels=nsl36
works), ``per-class`` images per class in all (half in each subset, as the NSL set's 1,000 + 500 are not: the
split does not matter for a speed check). ``bases`` images per class and subset are drawn by ``nsl.train.synth``
(the drawn hands the tests use); every other file is one of them shifted by a few pixels, its brightness changed
and sensor noise added, then JPEG-encoded again: distinct files of the same size and decode cost as the drawn ones.
A finished folder (its ``.complete`` stamp names the arguments) is reused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

SUBSETS = ("Plain Background", "Random Background")


def variants(job: tuple) -> int:
    """Fill one class folder of one subset up to ``count`` files from its drawn bases."""
    folder, count, seed = job
    folder = Path(folder)
    bases = sorted(folder.glob("*.jpg"))
    images = [cv2.imread(str(path)) for path in bases]
    rng = np.random.default_rng(seed)
    for index in range(len(bases), count):
        image = images[index % len(images)]
        dx, dy = rng.integers(-6, 7, 2)
        moved = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), image.shape[1::-1],
                               borderMode=cv2.BORDER_REFLECT)
        noisy = moved.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.normal(0, 3, moved.shape)
        ok, encoded = cv2.imencode(".jpg", np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError(f"{folder}: OpenCV could not encode a JPEG")
        (folder / f"{folder.name}_v{index:05d}.jpg").write_bytes(encoded.tobytes())
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--classes", type=int, default=36)
    parser.add_argument("--per-class", type=int, default=1500, help="images per class, both subsets together")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bases", type=int, default=6, help="drawn images per class and subset")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    stamp = json.dumps({k: getattr(args, k) for k in ("classes", "per_class", "size", "bases")}, sort_keys=True)
    done = args.out / ".complete"
    if done.is_file() and done.read_text() == stamp:
        print(f"gpu_check_data: reusing {args.out}")
        return 0
    from nsl.train.synth import synthesize

    per_subset = max(1, args.per_class // len(SUBSETS))
    bases = min(args.bases, per_subset)
    shutil.rmtree(args.out, ignore_errors=True)
    synthesize(args.out, classes=args.classes, per_class=bases, size=args.size, force=True)
    jobs = [(str(args.out / subset / str(label)), per_subset, 1000 * s + label)
            for s, subset in enumerate(SUBSETS) for label in range(args.classes)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        total = sum(pool.map(variants, jobs))
    done.write_text(stamp)
    print(f"gpu_check_data: {total} images ({args.classes} classes x {per_subset} x {len(SUBSETS)} subsets, "
          f"{args.size} px) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
