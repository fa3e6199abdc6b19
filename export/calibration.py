"""Calibration images for int8: a class-stratified sample of the training split, prepared as on the device."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from nsl.preprocess import CropSpec
from nsl.export.images import load_images
from nsl.errors import DataError
from nsl.samples import Sample

log = logging.getLogger(__name__)

DEFAULT_CALIB = 256


def stratified_sample(samples: list[Sample], size: int, num_classes: int, seed: int = 0) -> list[Sample]:
    """The same number of images from every class (``ceil(size / classes)`` each), drawn with ``seed``.

    A class with fewer training images than that is an error: its activations would be under-represented
    in the ranges the int8 file keeps, which is the failure calibration exists to prevent.
    """
    if size < 1:
        raise DataError(f"--calib must be at least 1, got {size}")
    by_class: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_class[sample.label].append(sample)
    per_class = math.ceil(size / num_classes)
    counts = {label: len(by_class[label]) for label in range(num_classes)}
    short = {label: count for label, count in counts.items() if count < per_class}
    if short:
        label, count = min(short.items(), key=lambda item: item[1])
        fits = max(1, min(counts.values())) * num_classes
        raise DataError(f"too few calibration images: class {label} has {count} training image(s), "
                        f"--calib {size} needs {per_class} per class ({len(short)} class(es) short); "
                        f"use --calib {fits} or add images of that class")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(num_classes):
        picks = rng.choice(len(by_class[label]), size=per_class, replace=False)
        chosen.extend(by_class[label][i] for i in sorted(picks))
    return chosen


def calibration_images(train_samples: list[Sample], size: int, num_classes: int, spec: CropSpec,
                       root: str | Path | None = None, seed: int = 0) -> np.ndarray:
    """uint8 crops (N, size, size, 3) for the TFLite converter and onnxruntime's calibrator."""
    chosen = stratified_sample(train_samples, size, num_classes, seed)
    images, _ = load_images(chosen, spec, root, what="calibration images")
    log.info("calibration: %d training images, %d per class", len(images), len(chosen) // num_classes)
    return images
