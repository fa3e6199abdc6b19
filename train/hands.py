"""A run's hand landmarks: the hands file of its dataset (``nsl data hands``, read with numpy), the hand box of every
sample (``crop=hands``), and the landmark features of every split (``models=landmarks|both``).

The features of the run are kept in ``RUN_DIR/landmarks.npz`` (paths, features, labels per split), so an export or a
later evaluation needs neither the hands file nor MediaPipe.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from nsl.errors import DataError
from nsl.landmarks import HandsTable, default_hands_path
from nsl.options import Options
from nsl.rundir import RunDir
from nsl.samples import SPLITS, Sample

log = logging.getLogger(__name__)

MIN_HANDS_PER_CLASS = 2  # below this in the training split the landmark model is skipped, with the reason


def hands_file(options: Options) -> Path | None:
    """The hands file the options name: a path, ``auto`` (the one ``nsl data hands`` keeps for the dataset, if
    made), or None."""
    setting = options.data.hands
    if setting == "none":
        return None
    if setting != "auto":
        return Path(setting).expanduser()
    path = default_hands_path(Path(options.data.data).expanduser().resolve()) if options.data.data else None
    return path if path is not None and path.is_file() else None


def with_auto_resolved(options: Options) -> Options:
    """``models=auto`` and ``crop=auto`` made concrete, as the run records them: with a hands file for the dataset,
    both models and the device's hand crops; without one, the CNN on the dataset's own framing."""
    from nsl.config import updated

    changes, found = {}, None
    if "auto" in (options.model.models, options.preprocess.crop):
        found = hands_file(options) is not None
    if options.model.models == "auto":
        changes["models"] = "both" if found else "cnn"
    if options.preprocess.crop == "auto":
        changes["crop"] = "hands" if found else "image"
    if not changes:
        return options
    log.info("%s (%s)", ", ".join(f"{key}=auto: {value}" for key, value in changes.items()),
             "a hands file was found" if found else "no hands file: run 'nsl data hands DATA' in the edge "
                                                    "environment to add the landmark model and the device's crops")
    return updated(options, changes)


def needs_hands(options: Options) -> bool:
    return options.preprocess.crop == "hands" or options.model.models in ("landmarks", "both")


def load_hands(options: Options) -> HandsTable | None:
    """The dataset's hands table when the run needs it; a one-line error naming the command that makes it."""
    if not needs_hands(options):
        return None
    path = hands_file(options)
    if path is None:
        why = "crop=hands" if options.preprocess.crop == "hands" else f"models={options.model.models}"
        raise DataError(f"{why} needs the dataset's hand landmarks: run 'nsl data hands {options.data.data}' in the "
                        f"edge environment first (or pass hands=PATH)")
    table = HandsTable.load(path)
    log.info("hands: %s (a hand in %d of %d images)", path, int(table.found.sum()), len(table))
    return table


def _row(table: HandsTable, sample: Sample) -> int | None:
    row = table.row_for(Path(sample.path).resolve())
    return row if row is not None and table.found[row] else None


def attach_boxes(split: dict[str, list[Sample]], table: HandsTable) -> tuple[dict[str, list[Sample]], dict]:
    """Each sample with its hand's landmark box and handedness (None when no hand was found: it stays whole); and
    the counts."""
    out, counts = {}, {}
    for name in SPLITS:
        samples = []
        for sample in split.get(name, []):
            row = _row(table, sample)
            samples.append(replace(sample, box=None, side="") if row is None else
                           replace(sample, box=tuple(float(v) for v in table.box[row]),
                                   side=str(table.handedness[row])))
        out[name] = samples
        counts[name] = {"images": len(samples), "without_hand": sum(s.box is None for s in samples)}
    log.info("crop=hands: images without a hand stay whole: %s",
             ", ".join(f"{k} {v['without_hand']} of {v['images']}" for k, v in counts.items()))
    return out, counts


def landmark_arrays(split: dict[str, list[Sample]], table: HandsTable, layout: str) -> dict[str, dict]:
    """Per split: features (n, F) and labels (n,) of the samples with a hand, their paths, and how many had none."""
    arrays = {}
    for name in SPLITS:
        samples = split.get(name, [])
        rows = [_row(table, s) for s in samples]
        kept = [(s, r) for s, r in zip(samples, rows) if r is not None]
        features = table.features(np.array([r for _, r in kept], np.int64), layout) if kept else \
            np.zeros((0, 0), np.float32)
        arrays[name] = {"features": features, "labels": np.array([s.label for s, _ in kept], np.int64),
                        "paths": np.array([s.path for s, _ in kept], dtype=str), "without_hand": len(samples) - len(kept)}
    return arrays


def too_few_hands(arrays: dict[str, dict], num_classes: int, minimum: int = MIN_HANDS_PER_CLASS) -> str | None:
    """Why the landmark model cannot be trained on these hands (None when it can): fewer than ``minimum`` training
    hands in some class, or no validation hand."""
    counts = np.bincount(arrays["train"]["labels"], minlength=num_classes) if len(arrays["train"]["labels"]) else \
        np.zeros(num_classes, np.int64)
    short = int((counts < minimum).sum())
    if short:
        return (f"{short} of {num_classes} classes have fewer than {minimum} training images with a hand "
                f"found (binary or thresholded images have no landmarks; see 'nsl data hands')")
    if not len(arrays["val"]["labels"]):
        return "no validation image has a hand found"
    return None


def save_arrays(run: RunDir, arrays: dict[str, dict]) -> None:
    from nsl.fileio import atomic_path

    with atomic_path(run.landmark_data) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **{f"{name}_{key}": value for name, item in arrays.items()
                                       for key, value in item.items() if key != "without_hand"},
                            without_hand=np.array([arrays[n]["without_hand"] for n in SPLITS]))


def load_arrays(run: RunDir) -> dict[str, dict]:
    if not run.landmark_data.is_file():
        raise DataError(f"{run.landmark_data}: missing (the run has no landmark model)")
    with np.load(run.landmark_data, allow_pickle=False) as data:
        return {name: {"features": data[f"{name}_features"], "labels": data[f"{name}_labels"],
                       "paths": data[f"{name}_paths"], "without_hand": int(data["without_hand"][i])}
                for i, name in enumerate(SPLITS)}
