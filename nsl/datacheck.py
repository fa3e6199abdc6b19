"""`nsl data check`: what a dataset folder holds and what is wrong with it, as a plain dict (JSON-ready).

One pass over the files (threads) gives each image's sha256, decoded size, colour mode (colour, grey, or
binary: grey with nearly all pixels in two distant levels) and perceptual hash. From those: counts per
class and subset, unusable files, size distribution, exact duplicates (same sha256), near-duplicates (pHash
within ``distance`` bits; the pair search covers all images, about 10 s for 54,000) and, given a split file,
duplicates that sit on two sides of the split (train/test leakage).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from nsl.labels import labels_to_dicts
from nsl.dataset import DatasetIndex, scan_dataset
from nsl.neardup import connected_groups, hamming, near_pairs, open_reduced, phash_image
from nsl.samples import load_split

log = logging.getLogger(__name__)

EXAMPLES = 10  # pairs / groups listed in full; the rest are counted
GREY_TOLERANCE = 12  # channel spread of a grey image saved as a colour JPEG (1% of pixels may exceed it)
BINARY_SHARE = 0.9  # share of pixels in the two dominant, distant levels of a binary image
LAYOUT_NAMES = {"nsl": "published layout", "folders": "class folders", "tfrecord": "TFRecords"}


@dataclass
class FileFacts:
    sha256: str = ""
    width: int = 0
    height: int = 0
    color: str = ""  # colour | grey | binary
    phash: int | None = None
    problem: str | None = None


def color_kind(image: Image.Image) -> str:
    """colour, grey (one channel, or three equal ones) or binary (grey with ~two levels far apart)."""
    if image.mode not in ("L", "1", "LA", "I", "I;16", "F"):
        small = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
        rgb = np.asarray(small, dtype=np.int16)
        spread = rgb.max(axis=2) - rgb.min(axis=2)
        if np.count_nonzero(spread > GREY_TOLERANCE) > 0.01 * spread.size:
            return "colour"
    histogram = np.asarray(image.convert("L").histogram()[:256], dtype=np.float64)
    share = histogram.reshape(16, 16).sum(axis=1) / max(1.0, histogram.sum())
    first, second = np.argsort(share)[::-1][:2]
    if abs(int(first) - int(second)) >= 8 and share[first] + share[second] >= BINARY_SHARE:
        return "binary"
    return "grey"


def inspect_file(path: str) -> FileFacts:
    """Everything the check needs of one file, from one read."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return FileFacts(problem=f"unreadable ({err.strerror or err})")
    if not data:
        return FileFacts(problem="empty file (0 bytes)")
    facts = FileFacts(sha256=hashlib.sha256(data).hexdigest())
    try:
        image, (facts.width, facts.height), _ = open_reduced(io.BytesIO(data))
        with image:
            facts.color, facts.phash = color_kind(image), phash_image(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        facts.problem = "not an image (unknown format)" if "cannot identify" in str(err) else f"unreadable ({err})"
    return facts


def _inspect_all(paths: list[str], workers: int) -> list[FileFacts]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(inspect_file, paths, chunksize=32), total=len(paths), desc="checking images",
                         unit="img", leave=False, disable=len(paths) < 500))


def _class_table(index: DatasetIndex) -> list[dict]:
    counts = index.counts()
    rows = []
    for label in labels_to_dicts(index.labels):
        per_subset = {subset: table.get(label["index"], 0) for subset, table in counts.items()}
        rows.append({**label, "counts": per_subset, "total": sum(per_subset.values())})
    return rows


def _duplicates(paths: list[str], facts: list[FileFacts], distance: int) -> tuple[list[list[str]], dict, np.ndarray]:
    """Exact duplicate groups, a near-duplicate summary, and all near pairs (indices, exact ones included)."""
    by_sha: dict[str, list[str]] = {}
    for path, fact in zip(paths, facts):
        by_sha.setdefault(fact.sha256, []).append(path)
    exact = [group for group in by_sha.values() if len(group) > 1]
    valid = np.array([f.phash is not None for f in facts], bool)
    hashes = np.array([f.phash or 0 for f in facts], np.uint64)
    pairs = near_pairs(hashes, distance, valid)
    similar = pairs[[facts[i].sha256 != facts[j].sha256 for i, j in pairs]] if len(pairs) else pairs
    groups = connected_groups(len(paths), similar)
    sizes = np.bincount(groups)
    summary = {"max_distance": distance, "pairs": int(len(similar)), "groups": int((sizes > 1).sum()),
               "images_in_groups": int(sizes[sizes > 1].sum()),
               "examples": [[paths[i], paths[j], hamming(facts[i].phash, facts[j].phash)] for i, j in similar[:EXAMPLES]]}
    return exact, summary, pairs


def _straddling(split_file: Path, paths: list[str], pairs: np.ndarray, facts: list[FileFacts]) -> dict:
    """Exact and near duplicates whose two images sit on different sides of the split."""
    side = {os.path.abspath(s.path): name for name, members in load_split(split_file).items() for s in members}
    where = [side.get(os.path.abspath(p)) for p in paths]
    crossing: Counter = Counter()
    examples = []
    for i, j in pairs.tolist():
        if where[i] and where[j] and where[i] != where[j]:
            kind = "exact" if facts[i].sha256 == facts[j].sha256 else "near"
            sides = "-".join(sorted((where[i], where[j]), key=("train", "val", "test").index))
            crossing[f"{sides} {kind}"] += 1
            if sides == "train-test" and len(examples) < EXAMPLES:
                examples.append([paths[i], paths[j], kind])
    in_dataset = sum(w is not None for w in where)
    return {"file": str(split_file), "counts": dict(Counter(side.values())), "files_not_in_dataset": len(side) - in_dataset,
            "straddling": dict(sorted(crossing.items())), "train_test_examples": examples}


def _warnings(report: dict) -> list[str]:
    notes = []
    if report["bad_files"]:
        notes.append(f"{len(report['bad_files'])} file(s) cannot be used (skipped by training)")
    empty = [f"{row['index']} ({row['name']})" for row in report["classes"] if row["total"] == 0]
    if empty:
        notes.append(f"{len(empty)} class(es) of the label set have no images: {', '.join(empty[:8])}")
    if report["exact_duplicates"]:
        notes.append(f"{len(report['exact_duplicates'])} group(s) of byte-identical files")
    split = report.get("split")
    if split:
        leaks = sum(n for key, n in split["straddling"].items() if key.startswith("train-test"))
        if leaks:
            notes.append(f"{leaks} duplicate pair(s) straddle train and test (consider split=grouped)")
        if split["files_not_in_dataset"]:
            notes.append(f"{split['files_not_in_dataset']} file(s) of the split are not in this dataset")
    return notes


def _notes(report: dict) -> list[str]:
    """Hints that are not problems: near-duplicate frames, a dataset of one colour mode."""
    notes = []
    share = report["near_duplicates"]["images_in_groups"] / max(1, report["usable_images"])
    if share >= 0.2:
        notes.append(f"{share:.0%} of the images have a near-identical sibling (consecutive frames?): a stratified "
                     f"split puts siblings in train and test; split=grouped keeps them together")
    modes = report["color_modes"]
    for mode in ("grey", "binary"):
        if report["usable_images"] and modes[mode] == report["usable_images"]:
            notes.append(f"all images are {mode}: train with color_mode={mode} so the device prepares crops alike")
    return notes


def check_dataset(root: str | Path, labels: str | Path = "nsl36", split_file: str | Path | None = None,
                  distance: int = 6, workers: int = 4) -> dict:
    """The full report of ``root`` (see the module notes); ``warnings`` lists the problems found."""
    index = scan_dataset(root, labels)
    paths = [s.path for s in index.samples]
    facts = _inspect_all(paths, workers)
    bad = index.bad_files + [(p, f.problem) for p, f in zip(paths, facts) if f.problem]
    good = [(p, f) for p, f in zip(paths, facts) if not f.problem]
    usable = {p for p, _ in good}  # the class table counts what training can use, as the usable total does
    counted = replace(index, samples=[s for s in index.samples if s.path in usable])
    sizes = Counter(f"{f.width}x{f.height}" for _, f in good)
    exact, near, pairs = _duplicates([p for p, _ in good], [f for _, f in good], distance)
    report = {"root": str(index.root), "layout": index.layout, "images": len(paths) + len(index.bad_files),
              "usable_images": len(good), "labels": len(index.labels), "classes": _class_table(counted),
              "subsets": {name: sum(t.values()) for name, t in counted.counts().items()},
              "bad_files": [{"path": p, "reason": r} for p, r in bad], "other_files": index.other_files,
              "color_modes": {kind: sum(f.color == kind for _, f in good) for kind in ("colour", "grey", "binary")},
              "image_sizes": dict(sizes.most_common()), "exact_duplicates": exact, "near_duplicates": near}
    if split_file:
        report["split"] = _straddling(Path(split_file), [p for p, _ in good], pairs, [f for _, f in good])
    report["warnings"], report["notes"] = _warnings(report), _notes(report)
    return report


def _table(rows: list[list[str]], right_from: int = 1) -> list[str]:
    widths = [max(len(str(row[k])) for row in rows) for k in range(len(rows[0]))]
    return ["  ".join(str(cell).rjust(w) if k >= right_from else str(cell).ljust(w)
                      for k, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]


def _class_lines(report: dict) -> list[str]:
    subsets = list(report["subsets"]) or [""]
    header = ["class", "name", "roman"] + [name or "images" for name in subsets] + (["total"] if len(subsets) > 1 else [])
    rows = [header]
    for row in report["classes"]:
        counts = [row["counts"].get(name, 0) for name in subsets]
        rows.append([row["index"], row["name"], row["roman"], *counts] + ([row["total"]] if len(subsets) > 1 else []))
    totals = [report["subsets"].get(name, 0) for name in subsets]
    rows.append(["total", "", "", *totals] + ([sum(totals)] if len(subsets) > 1 else []))
    return _table(rows, right_from=3)


def format_report(report: dict) -> str:
    """The report as plain text: the class table, then one line per finding, then the warnings."""
    near, modes = report["near_duplicates"], report["color_modes"]
    sizes = ", ".join(f"{size}: {n}" for size, n in list(report["image_sizes"].items())[:6])
    more = len(report["image_sizes"]) - 6
    layout = LAYOUT_NAMES.get(report["layout"], report["layout"])
    lines = [f"Dataset {report['root']} ({layout}): {report['images']} images, "
             f"{report['usable_images']} usable, {report['labels']} labels", "", *_class_lines(report), "",
             f"colour modes      colour {modes['colour']}, grey {modes['grey']}, binary {modes['binary']}",
             f"image sizes       {sizes or '-'}{f' (+{more} other sizes)' if more > 0 else ''}",
             f"unusable files    {len(report['bad_files'])}",
             *[f"                  {b['path']}: {b['reason']}" for b in report["bad_files"][:EXAMPLES]],
             f"ignored files     {len(report['other_files'])} (not image files by their extension)",
             f"exact duplicates  {len(report['exact_duplicates'])} group(s)",
             *[f"                  {' = '.join(group[:3])}" for group in report["exact_duplicates"][:EXAMPLES]],
             f"near-duplicates   {near['pairs']} pair(s) in {near['groups']} group(s), {near['images_in_groups']} "
             f"images (pHash distance <= {near['max_distance']})"]
    split = report.get("split")
    if split:
        crossing = ", ".join(f"{key} {n}" for key, n in split["straddling"].items()) or "none"
        counts = ", ".join(f"{name} {split['counts'].get(name, 0)}" for name in ("train", "val", "test"))
        lines += [f"split             {split['file']}: {counts}", f"straddling pairs  {crossing}",
                  *[f"                  {a} ~ {b} ({kind})" for a, b, kind in split["train_test_examples"]]]
    lines += ["", *(f"note: {note}" for note in report["notes"])]
    lines += [f"warning: {note}" for note in report["warnings"]] or ["no problems found"]
    return "\n".join(lines)
