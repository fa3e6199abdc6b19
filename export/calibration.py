"""Calibration images for int8: a class-stratified sample of the training split, prepared as on the device."""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from nsl.preprocess import CropSpec
from nsl.export.images import load_images
from nsl.errors import DataError
from nsl.samples import Sample

log = logging.getLogger(__name__)

DEFAULT_CALIB = 256        # the most images the default takes


def default_per_class(samples: list[Sample], num_classes: int, limit: int = DEFAULT_CALIB) -> int:
    """Calibration images per class when ``--calib`` is not given: ``ceil(limit / classes)``, or every training
    image of the smallest class when it has fewer (at least one), so a tiny dataset calibrates without an error.

    Why not fewer, to keep training images for the gate: measured on the fine-tuned asl_36 models, calibrating on
    all 7 training images a class instead of 3 brought the int8 files closer to the float model, and the float
    model agrees with itself more on its own training images (int8 agreement there was 2-11 points above the
    held-out images'), so they make a lenient gate (docs/QUANTIZATION.md)."""
    counts = Counter(sample.label for sample in samples)
    smallest = min(counts.get(label, 0) for label in range(num_classes))
    return max(1, min(math.ceil(limit / num_classes), smallest))


def stratified_sample(samples: list[Sample], size: int | None, num_classes: int, seed: int = 0) -> list[Sample]:
    """The same number of images from every class (``ceil(size / classes)`` each; ``size`` None: the adaptive
    default), drawn with ``seed``.

    A class with fewer training images than asked for is an error: its activations would be under-represented
    in the ranges the int8 file keeps, which is the failure calibration exists to prevent.
    """
    if size is not None and size < 1:
        raise DataError(f"--calib must be at least 1, got {size}")
    by_class: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_class[sample.label].append(sample)
    per_class = default_per_class(samples, num_classes) if size is None else math.ceil(size / num_classes)
    counts = {label: len(by_class[label]) for label in range(num_classes)}
    short = {label: count for label, count in counts.items() if count < per_class}
    if short:
        label, count = min(short.items(), key=lambda item: item[1])
        fits = max(1, min(counts.values())) * num_classes
        raise DataError(f"too few calibration images: class {label} has {count} training image(s), "
                        f"--calib {size} needs {per_class} per class ({len(short)} class(es) short); "
                        f"use --calib {fits}, leave --calib out (it adapts) or add images of that class")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(num_classes):
        picks = rng.choice(len(by_class[label]), size=per_class, replace=False)
        chosen.extend(by_class[label][i] for i in sorted(picks))
    return chosen


def calibration_images(chosen: list[Sample], spec: CropSpec, root: str | Path | None = None) -> np.ndarray:
    """uint8 crops (N, size, size, 3) of ``chosen`` (``stratified_sample``) for the TFLite converter and
    onnxruntime's calibrator."""
    images, labels = load_images(chosen, spec, root, what="calibration images")
    log.info("calibration: %d training images, %d per class", len(images), len(images) // max(1, len(set(labels))))
    return images
