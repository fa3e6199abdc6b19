"""Train / val / test splits: stratified, a held-out subset, or grouped so near-identical frames stay together.

- ``stratified``: every class is cut in the proportions of ``split_ratios`` (default 70/15/15, seed 42, as
  the dataset's authors did); per-class counts are rounded so that the totals match the ratios exactly (the
  largest remainders get the extra image, ties at random), as scikit-learn's stratified split does.
- ``subset``: all images of ``holdout_subset`` (default ``Random Background``) are the test set; train and
  val are a stratified split of the rest, in the ratio of the first two fractions.
- ``grouped``: images whose perceptual hashes differ by at most ``group_hash_distance`` bits are linked, and
  linked images (transitively) form a group that lands on one side only. Groups are dealt out per class
  (by their most common label), largest first, each to the side furthest below its share. ``Sample.group``
  records the group.

The result depends only on the set of samples and the seed (the input order does not matter). Save it with
``nsl.samples.save_split`` and reuse it; nothing here re-splits a run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from nsl.errors import DataError
from nsl.options import DataOptions
from nsl.samples import SPLITS, Sample

log = logging.getLogger(__name__)

def allocate(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """How many of each class's ``counts`` go to a side holding ``fraction`` of all, totals exact."""
    counts = np.asarray(counts)
    exact = counts * fraction
    share = np.floor(exact).astype(np.int64)
    missing = int(round(counts.sum() * fraction)) - int(share.sum())
    if missing > 0:
        order = np.lexsort((rng.random(len(counts)), -(exact - share)))  # largest remainder, ties at random
        share[order[:missing]] += 1
    return np.minimum(share, counts)


def _stratified(samples: list[Sample], ratios: tuple[float, float, float], rng) -> dict[str, list[Sample]]:
    labels = np.array([s.label for s in samples])
    classes, counts = np.unique(labels, return_counts=True)
    n_test = allocate(counts, ratios[2], rng)
    n_val = allocate(counts - n_test, ratios[1] / (ratios[0] + ratios[1]), rng)
    side = np.zeros(len(samples), np.int64)  # 0 train, 1 val, 2 test
    for label, tests, vals in zip(classes, n_test, n_val):
        members = rng.permutation(np.flatnonzero(labels == label))
        side[members[:tests]] = 2
        side[members[tests:tests + vals]] = 1
    return {name: [s for s, k in zip(samples, side) if k == i] for i, name in enumerate(SPLITS)}


def _by_subset(samples: list[Sample], holdout: str, ratios, rng) -> dict[str, list[Sample]]:
    subsets = sorted({s.subset for s in samples})
    test = [s for s in samples if s.subset == holdout]
    rest = [s for s in samples if s.subset != holdout]
    if not test:
        found = ", ".join(repr(name) for name in subsets if name) or "none: not the published layout"
        raise DataError(f"split=subset: no images in subset {holdout!r} (subsets found: {found}); "
                        f"set holdout_subset=NAME or use split=stratified")
    if not rest:
        raise DataError(f"split=subset: every image is in subset {holdout!r}, nothing is left to train on")
    split = _stratified(rest, (ratios[0], ratios[1], 0.0), rng)
    split["test"] = test
    return split


def _deal_groups(group_of: np.ndarray, labels: np.ndarray, ratios, rng) -> np.ndarray:
    """Side (0 train, 1 val, 2 test) of each group: per majority class, largest first, to the neediest side."""
    groups = np.unique(group_of)
    sizes = np.bincount(group_of, minlength=len(groups))
    votes = np.zeros((len(groups), labels.max() + 1), np.int64)
    np.add.at(votes, (group_of, labels), 1)
    majority = votes.argmax(axis=1)
    side_of_group = np.zeros(len(groups), np.int64)
    for label in np.unique(majority):
        members = rng.permutation(np.flatnonzero(majority == label))
        members = members[np.argsort(-sizes[members], kind="stable")]
        target, filled = np.array(ratios) * sizes[members].sum(), np.zeros(3)
        for group in members:
            side = int(np.argmax(target - filled))
            side_of_group[group] = side
            filled[side] += sizes[group]
    return side_of_group


def _grouped(samples: list[Sample], distance: int, ratios, rng) -> dict[str, list[Sample]]:
    from nsl.neardup import connected_groups, near_pairs, phash_files

    hashes, valid = phash_files([s.path for s in samples])
    if not valid.all():
        bad = samples[int(np.flatnonzero(~valid)[0])].path
        raise DataError(f"{bad}: cannot be read to hash it for split=grouped (run 'nsl data check' on the dataset)")
    group_of = connected_groups(len(samples), near_pairs(hashes, distance))
    labels = np.array([s.label for s in samples])
    side = _deal_groups(group_of, labels, ratios, rng)[group_of]
    grouped = [replace(s, group=f"g{g:05d}") for s, g in zip(samples, group_of)]
    log.info("grouped split: %d images in %d groups of near-identical frames (pHash distance <= %d, largest %d)",
             len(samples), group_of.max() + 1, distance, np.bincount(group_of).max())
    return {name: [s for s, k in zip(grouped, side) if k == i] for i, name in enumerate(SPLITS)}


def group_names(samples: list[Sample], options: DataOptions) -> list[str]:
    """Each sample's group: ``group_pattern`` on the file name, or ``group_file`` (CSV path,group)."""
    if options.group_pattern is not None:
        pattern = re.compile(options.group_pattern)
        names = []
        for sample in samples:
            match = pattern.search(Path(sample.path).name)
            if not match:
                raise DataError(f"{sample.path}: file name does not match group_pattern {options.group_pattern!r} "
                                f"(every image needs a group; fix the pattern or use group_file)")
            names.append(match.group(1) if match.groups() else match.group(0))
        return names
    return _groups_from_file(samples, Path(options.group_file), options.data)


def _groups_from_file(samples: list[Sample], path: Path, root: str | None) -> list[str]:
    import csv

    table: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if len(row) < 2 or (line_no == 1 and row[:2] == ["path", "group"]):
                continue
            table[str(Path(root or "", row[0]).resolve()) if not Path(row[0]).is_absolute() else row[0]] = row[1]
    missing = [s.path for s in samples if str(Path(s.path).resolve()) not in table and s.path not in table]
    if missing:
        raise DataError(f"{path}: no group for {missing[0]} ({len(missing)} image(s) missing; a row per image: "
                        f"path,group)")
    return [table.get(str(Path(s.path).resolve()), table.get(s.path)) for s in samples]


def _by_named_groups(samples: list[Sample], options: DataOptions, ratios, rng) -> dict[str, list[Sample]]:
    """Named groups (signers, sessions) dealt whole to one side, each to the side furthest below its share, largest
    first; or the held-out ``split_test_groups`` are the test set and the other groups' images are split
    stratified into train and val (a group split of three signers would leave one signer, or one photo, to
    validate on: validation only steers early stopping, the held-out test groups give the honest figure)."""
    names = group_names(samples, options)
    known = sorted(set(names))
    if options.split_test_groups is not None:
        unknown = [g for g in options.split_test_groups if g not in known]
        if unknown:
            raise DataError(f"split_test_groups: no group {unknown[0]!r} in the data (groups: {', '.join(known)})")
        held = set(options.split_test_groups)
        grouped = [replace(s, group=n) for s, n in zip(samples, names)]
        rest = [s for s in grouped if s.group not in held]
        if not rest:
            raise DataError("split_test_groups: every group is held out, nothing is left to train on")
        split = _stratified(rest, (ratios[0], ratios[1], 0.0), rng)
        split["test"] = [s for s in grouped if s.group in held]
        log.info("grouped split: test groups %s; train and val: the other groups' images, stratified (%s)",
                 ", ".join(sorted(held)), ", ".join(g for g in known if g not in held))
        return split
    side_of = _deal(known, names, ratios, rng)
    grouped = [replace(s, group=n) for s, n in zip(samples, names)]
    for i, name in enumerate(SPLITS):
        log.info("grouped split, %s: %s", name, ", ".join(g for g in known if side_of[g] == i) or "(none)")
    return {name: [s for s in grouped if side_of[s.group] == i] for i, name in enumerate(SPLITS)}


def _deal(groups: list[str], names: list[str], ratios, rng) -> dict[str, int]:
    sizes = {g: names.count(g) for g in groups}
    order = sorted(rng.permutation(groups).tolist(), key=lambda g: -sizes[g])
    target, filled, side_of = np.array(ratios) * sum(sizes.values()), np.zeros(3), {}
    for group in order:
        side = int(np.argmax(target - filled))
        side_of[group], filled[side] = side, filled[side] + sizes[group]
    return side_of


def make_split(samples: list[Sample], options: DataOptions, seed: int) -> dict[str, list[Sample]]:
    """``{'train': [...], 'val': [...], 'test': [...]}`` by ``options.split`` (see the module notes)."""
    if not samples:
        raise DataError("no images to split")
    kind, ratios = options.split, options.split_ratios
    rng = np.random.default_rng(seed)
    ordered = sorted(samples, key=lambda s: (s.path, s.label))
    if kind == "stratified":
        split = _stratified(ordered, ratios, rng)
    elif kind == "subset":
        split = _by_subset(ordered, options.holdout_subset, ratios, rng)
    elif options.group_pattern is not None or options.group_file is not None:
        split = _by_named_groups(ordered, options, ratios, rng)
    else:
        split = _grouped(ordered, options.group_hash_distance, ratios, rng)
    log.info("split (%s, seed %s): %s", kind, seed,
             ", ".join(f"{name} {len(split[name])}" for name in SPLITS))
    return split


def missing_classes(split: dict[str, list[Sample]], labels: int) -> dict[str, list[int]]:
    """Class indices with no image on each side (a small or grouped dataset can leave a class out of a side)."""
    return {name: sorted(set(range(labels)) - {s.label for s in split[name]}) for name in SPLITS}
