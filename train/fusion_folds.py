"""The fusion weight chosen on people the models did not see (``landmarks.fusion_on=groups``).

A validation split drawn from the training signers flatters both models, and the landmark model most (it scored
97.9 % on such a split and 87 % on new signers), so a weight chosen there leans on it more than new signers reward.
Here the training groups (signers, sessions) are dealt into ``fusion_folds`` folds; for each fold a run of the same
settings trains both models on the other folds' images (its own train and val images, the held fold left out) and
answers on the held fold. The weight is chosen on those answers, every training image answered once by models that
never saw its group: cross-fitting, as a stacked ensemble is fitted. The run's own models, trained on every group,
are the ones exported; the folds only choose the weight. Each fold is a run folder under ``RUN/folds`` (reused,
resumed after an interruption), at the price of about one more training of the run.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from nsl.rundir import RunDir

log = logging.getLogger(__name__)


def deal_folds(groups: dict[str, int], folds: int) -> list[list[str]]:
    """Groups (name -> image count) dealt into at most ``folds`` folds of near-equal image counts: largest group
    first, each to the lightest fold (ties by name, so the deal is the same on every machine)."""
    folds = min(folds, len(groups))
    dealt, sizes = [[] for _ in range(folds)], [0] * folds
    for name in sorted(groups, key=lambda g: (-groups[g], g)):
        lightest = sizes.index(min(sizes))
        dealt[lightest].append(name)
        sizes[lightest] += groups[name]
    return [sorted(fold) for fold in dealt]


def training_groups(split: dict) -> dict[str, int]:
    """Image count of each named group on the training side (train + val)."""
    counts: dict[str, int] = {}
    for sample in split["train"] + split["val"]:
        if sample.group:
            counts[sample.group] = counts.get(sample.group, 0) + 1
    return counts


def fold_split(split: dict, held: list[str]) -> dict:
    """Train and val without the held groups; the held groups' training-side images are the fold's test."""
    keep = set(held)
    return {"train": [s for s in split["train"] if s.group not in keep],
            "val": [s for s in split["val"] if s.group not in keep],
            "test": [s for s in split["train"] + split["val"] if s.group in keep]}


def out_of_fold(run: RunDir, options, labels, split, train_fold) -> tuple[tuple, str] | None:
    """(cnn, landmarks, truth) answered on every training-side image by fold models that never saw its group, and
    a line saying how; None (said in a warning) when the split has fewer than two named training groups, or a fold
    would have no training or validation image. ``train_fold(options, folder, labels, split)`` makes a fold's run
    (``nsl.train.run.fold_run``: passed in, so this module does not import the one that calls it)."""
    groups = training_groups(split)
    if len(groups) < 2:
        log.warning("fusion_on=groups: the training side has %d named group(s) (needs split=grouped with "
                    "group_pattern or group_file, and at least two groups besides the test groups); the weight "
                    "is chosen on the validation split", len(groups))
        return None
    folds = deal_folds(groups, options.landmarks.fusion_folds)
    parts = [fold_split(split, held) for held in folds]
    if any(not part["train"] or not part["val"] for part in parts):
        log.warning("fusion_on=groups: a fold of %s would have no training or validation image; the weight is "
                    "chosen on the validation split", folds)
        return None
    answers = [_fold_answers(run, options, labels, i, held, part, train_fold)
               for i, (held, part) in enumerate(zip(folds, parts))]
    if any(a is None for a in answers):
        log.warning("fusion_on=groups: a fold trained no landmark model (too few hands without its groups); the "
                    "weight is chosen on the validation split")
        return None
    cnn, landmarks, truth = (np.concatenate([a[k] for a in answers]) for k in range(3))
    how = (f"training groups out of fold ({len(folds)} folds: " + "; ".join(", ".join(f) for f in folds) +
           f"; {len(truth)} images)")
    return (cnn, landmarks, truth), how


def _fold_answers(run: RunDir, options, labels, index: int, held: list[str], part: dict,
                  train_fold) -> tuple | None:
    fold = RunDir(run.folds_dir / f"fold{index}")
    log.info("fusion fold %d: trained without %s (%d train, %d val images), answers on its %d images",
             index + 1, ", ".join(held), len(part["train"]), len(part["val"]), len(part["test"]))
    single = dataclasses.replace(options, landmarks=dataclasses.replace(options.landmarks, fusion_on="val"))
    train_fold(single, fold.path, labels, part)
    if not fold.fusion_inputs_file.is_file():
        return None
    with np.load(fold.fusion_inputs_file, allow_pickle=False) as data:
        return data["test_cnn"], data["test_landmarks"], data["test_truth"]
