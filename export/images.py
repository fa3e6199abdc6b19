"""Labelled image files -> the classifier's uint8 crops, by the device's own path (read_image + prepare).

TF-free: used by calibration and by the validation gate, which also runs as ``nsl val BUNDLE`` on the device.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsl.preprocess import CropSpec, load_input
from nsl.errors import DataError, NslError
from nsl.labels import Label, label_keys
from nsl.samples import Sample

log = logging.getLogger(__name__)


def sample_path(sample: Sample, root: str | Path | None = None) -> Path:
    """A sample's file: as written in the split, or relative to the dataset folder ``root``."""
    path = Path(sample.path)
    if not path.is_absolute() and not path.exists() and root:
        path = Path(root) / path
    return path


def load_images(samples: list[Sample], spec: CropSpec, root: str | Path | None = None,
                what: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """(uint8 crops N x size x size x 3, int labels N); unreadable files are skipped with a warning."""
    if not samples:
        raise DataError(f"no {what} to load (an empty split: check the run's split.csv or --data)")
    images, labels, skipped = [], [], []
    for sample in tqdm(samples, desc=what, unit="img", leave=False):
        try:
            images.append(load_input(sample_path(sample, root), spec, sample.box, sample.side))
            labels.append(sample.label)
        except NslError as err:
            skipped.append(str(err))
    if skipped:
        log.warning("%s: skipped %d unreadable file(s), first: %s", what, len(skipped), skipped[0])
    if not images:
        raise DataError(f"none of the {len(samples)} {what} could be read (first: {skipped[0]})")
    return np.stack(images), np.asarray(labels, np.int64)



def samples_for_labels(root: str | Path, labels: list[Label]) -> list[Sample]:
    """A labelled folder (any layout nsl.dataset reads) with its class folders matched to ``labels``
    by index, name or romanisation; a folder that names no label is an error."""
    from nsl.dataset import scan_dataset

    index = scan_dataset(root, "auto")
    keys = label_keys(labels)
    folders = [label.name for label in index.labels]
    unknown = [name for name in folders if name not in keys]
    if unknown:
        raise DataError(f"{root}: class folder '{unknown[0]}' matches no label of the model (name folders by "
                        f"label index 0..{len(labels) - 1}, name or romanisation)")
    return [replace(sample, label=keys[folders[sample.label]]) for sample in index.samples]
