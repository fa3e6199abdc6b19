"""The ``classifier`` section of ``nsl bench`` (edge environment, no TensorFlow):

    python -m nsl.bench.classifier --out classifier.json --model BUNDLE (--images DIR | --data DIR | --clip VIDEO|DIR)

Every file of the bundle through the runtime that runs it (ai-edge-litert for .tflite, onnxruntime
for .onnx), batch 1, one thread and all cores, on real images prepared as the device prepares a crop. Each
figure is the median over ``--repeats`` rounds; a round opens the file, makes ``--warmup`` untimed calls and
``--runs`` timed ones (p50/p90 of those, images/s = calls / their total time). Rounds interleave the files so
that a noisy neighbour spreads over all of them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from nsl.bench.section import positive, run_section, sample, section, section_parser, table
from nsl.edge.bundle import open_bundle
from nsl.edge.classifier import open_classifier
from nsl.edge.predict import collect_images
from nsl.errors import NslError
from nsl.fileio import is_video_file
from nsl.preprocess import prepare, read_image, to_rgb
from nsl.stats import median, percentiles

log = logging.getLogger(__name__)

RUNTIMES = {"tflite": "ai-edge-litert", "onnx": "onnxruntime"}
PACKAGES = ("ai-edge-litert", "onnxruntime", "mediapipe", "opencv-contrib-python", "numpy")
MAX_IMAGES = 32


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` RGB frames spread over a video file."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise NslError(f"{path}: no frames could be read from this video")
    return [to_rgb(frame, bgr=True) for frame in sample(frames, count)]


def real_images(images: str | None, clip: str | None, count: int = MAX_IMAGES) -> tuple[list[np.ndarray], str]:
    """Real images to classify: a folder (or file list), else the clip's frames; -> (RGB images, where from)."""
    source = images or clip
    if source is None:
        raise NslError("the classifier section needs real images: --images DIR (or --data DIR, or --clip)")
    path = Path(source)
    if path.is_file() and is_video_file(path):
        return video_frames(path, count), f"{count} frames of {path.name}"
    paths = sample(collect_images([path]), count)
    return [read_image(p) for p in paths], f"{len(paths)} images of {path}"


def landmark_inputs(hands: str, layout: str, count: int = MAX_IMAGES) -> list[np.ndarray]:
    """Landmark-model inputs: the features of up to ``count`` hands a hands file (nsl data hands) found."""
    from nsl.landmarks import HandsTable

    table = HandsTable.load(hands)
    rows = sample(list(np.flatnonzero(table.found)), count)
    if not rows:
        raise NslError(f"--hands {hands}: no hand was found in any image of this hands file")
    return list(table.features(np.array(rows), layout).astype(np.float32))


def _label(name: str, entry: dict) -> str:
    return f"{entry.get('precision', '?')}{' QAT' if entry.get('qat') or 'qat' in name else ''}"


def time_calls(classifier, crops: list[np.ndarray], runs: int, warmup: int) -> list[float]:
    """Milliseconds of ``runs`` batch-1 ``predict`` calls after ``warmup`` untimed ones, cycling the crops."""
    for i in range(warmup):
        classifier.predict(crops[i % len(crops)][None])
    times = []
    for i in range(runs):
        batch = crops[i % len(crops)][None]
        began = time.perf_counter()
        classifier.predict(batch)
        times.append((time.perf_counter() - began) * 1000)
    return times


def classifier_section(args) -> dict:
    runs = positive(args.runs, 100, 10, args.quick, "runs")
    warmup = positive(args.warmup, 10, 2, args.quick, "warmup", minimum=0)
    repeats = positive(args.repeats, 3, 1, args.quick, "repeats")
    bundle = open_bundle(args.model)
    images, origin = real_images(args.images or args.data, args.clip)
    layout = bundle.feature_layout or "xyz21"
    inputs = {"cnn": [prepare(image, bundle.crop) for image in images]}
    if args.hands:
        inputs["landmarks"] = landmark_inputs(args.hands, layout)
    kind_of = {name: entry.get("model", "cnn") for name, entry in bundle.files.items()}
    cores = os.cpu_count() or 1
    names = sorted((n for n in bundle.files if kind_of[n] in inputs),
                   key=lambda n: (bundle.files[n]["format"], n != "model_fp32.tflite", n))
    skipped = sorted(set(bundle.files) - set(names))
    configs = [(name, threads) for name in names for threads in sorted({1, cores})]
    samples: dict[tuple, list[dict]] = {config: [] for config in configs}
    with tqdm(total=len(configs) * repeats, desc="classifier", unit="file", file=sys.stderr,
              disable=None) as progress:
        for _ in range(repeats):
            for name, threads in configs:
                classifier = open_classifier(bundle.path / name, threads)
                times = time_calls(classifier, inputs[kind_of[name]], runs, warmup)
                del classifier
                p50, p90 = percentiles(times)
                samples[(name, threads)].append({"p50": p50, "p90": p90, "per_s": 1000 * len(times) / sum(times)})
                progress.update()
    figures = {config: {key: median([s[key] for s in runs_]) for key in ("p50", "p90", "per_s")}
               for config, runs_ in samples.items()}
    rows = []
    for name, threads in configs:
        entry, fig = bundle.files[name], figures[(name, threads)]
        reference = figures.get(("model_fp32.tflite", threads))
        ratio = fig["p50"] / reference["p50"] if reference else None
        rows.append([name, RUNTIMES[entry["format"]], _label(name, entry), threads, fig["p50"], fig["p90"],
                     fig["per_s"], ratio, entry.get("size_bytes", 0) / 1e6])
    caption = (f"Classifier.predict, batch 1, input {bundle.crop.size}x{bundle.crop.size} ({origin}, prepared as "
               f"the device prepares a crop); median over {repeats} round(s) of {runs} timed calls after {warmup} "
               f"warm-up calls; ratio = p50 / p50 of model_fp32.tflite at the same threads (0.5 = twice as fast)")
    columns = ["file", "runtime", "precision", "threads", "p50 ms", "p90 ms", "images/s", "ratio to fp32 TFLite",
               "size MB"]
    notes = _classifier_notes(rows, cores)
    if args.hands:
        notes.append(f"landmark files: the features of {len(inputs['landmarks'])} hands of {args.hands} "
                     f"(nsl.landmarks.hand_features, layout {layout}); the ratio column "
                     f"compares them with the CNN's fp32 file, not like with like")
    if skipped:
        notes.append(f"not timed: {', '.join(skipped)} (landmark model files need --hands HANDS.npz)")
    raw = {"bundle": str(bundle.path), "runs": runs, "warmup": warmup, "repeats": repeats, "images": origin,
           "samples": [{"file": n, "threads": t, "rounds": samples[(n, t)]} for n, t in configs]}
    return section("classifier", "Classifier latency, batch 1", [table(caption, columns, rows)], notes, raw, PACKAGES)


def _classifier_notes(rows: list[list], cores: int) -> list[str]:
    notes = [f"threads 'all' = os.cpu_count() = {cores}; the app gives the classifier half the cores by default "
             f"(the hand tracker runs beside it)"]
    for threads in sorted({1, cores}):
        by_name = {row[0]: row for row in rows if row[3] == threads}
        fp32, int8 = by_name.get("model_fp32.tflite"), by_name.get("model_int8.tflite")
        if fp32 and int8:
            notes.append(f"{threads} thread(s): int8 TFLite {int8[4]:.2f} ms vs fp32 TFLite {fp32[4]:.2f} ms "
                         f"(ratio {int8[7]:.2f})")
    return notes


def parse_args(argv):
    parser = section_parser("classifier", "latency of every bundle file per runtime, batch 1, 1 thread and all cores")
    parser.add_argument("--model", required=True, metavar="BUNDLE", help="model bundle (nsl export)")
    parser.add_argument("--images", default=None, metavar="DIR", help="real images to classify")
    parser.add_argument("--data", default=None, metavar="DIR", help="labelled images (if no --images)")
    parser.add_argument("--clip", default=None, metavar="VIDEO|DIR", help="a recorded clip's frames (if neither)")
    parser.add_argument("--hands", default=None, metavar="HANDS.npz",
                        help="a hands file (nsl data hands): its hands' features time the bundle's landmark model")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_section("classifier", parse_args, classifier_section, argv)


if __name__ == "__main__":
    sys.exit(main())
