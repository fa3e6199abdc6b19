"""``nsl data hands DATA``: one pass of the app's own hand finder over a dataset -> its hands file.

Every image is read with ``nsl.preprocess.read_image`` and given to ``MediaPipeHands`` in IMAGE mode with the
padding ``nsl predict`` uses, so a training image's landmarks and crop box are what the device would find in the
same picture. The result is a ``nsl.landmarks.HandsTable`` saved as ``.npz`` (the contract with the train
environment, read there with numpy alone). A rerun redoes only the images whose content changed (sha256).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsl.dataset import scan_dataset
from nsl.edge.hands import STILL_PADDING, STILL_RETRY_PADDING, MediaPipeHands
from nsl.errors import NslError
from nsl.fileio import sha256_of
from nsl.landmarks import HandsTable, default_hands_path
from nsl.preprocess import CropSpec, crop_box, read_image

log = logging.getLogger(__name__)


def _row(path: Path, relative: str, digest: str, hands: MediaPipeHands, spec: CropSpec) -> dict:
    row = {"path": relative, "sha256": digest, "found": False}
    try:
        image = read_image(path)
    except NslError as err:
        log.warning("skipped: %s", err)
        return row
    row["image_size"] = [image.shape[1], image.shape[0]]
    found = hands.detect(image)
    if found:
        hand = max(found, key=lambda h: h.score)
        row.update(found=True, landmarks=hand.landmarks, world=hand.world, handedness=hand.handedness,
                   handedness_score=hand.score, box=list(hand.box), crop_box=list(crop_box(hand.box, spec)))
    return row


def collect_hands(root: str | Path, hand_model: str | Path, out: str | Path | None = None, margin: float = 0.10,
                  square: bool = True, force: bool = False) -> tuple[Path, HandsTable, dict]:
    """Find the hand in every image of ``root``; write the hands file (``out``, default in the user cache);
    returns (its path, the table, a summary per class and subset)."""
    index = scan_dataset(root, "auto")
    root = Path(index.root).resolve()
    out = Path(out) if out else default_hands_path(root)
    spec = CropSpec(margin=margin, square=square)
    meta = {"hand_model": Path(hand_model).name, "mode": "image", "padding": STILL_PADDING,
            "retry_padding": STILL_RETRY_PADDING, "margin": margin, "square": square}  # as nsl predict
    previous = _previous(out, root, meta, force)
    rows, redone = [], 0
    with MediaPipeHands(hand_model, max_hands=1, mode="image") as hands:
        for sample in tqdm(index.samples, desc="hands", unit="img", leave=False):
            path = Path(sample.path)
            relative, digest = path.resolve().relative_to(root).as_posix(), sha256_of(path)
            old = previous.index_of(relative) if previous is not None else None
            if old is not None and previous.sha256[old] == digest:
                rows.append(previous.rows()[old] | {"path": relative})
            else:
                rows.append(_row(path, relative, digest, hands, spec))
                redone += 1
    table = HandsTable.from_rows(str(root), rows, meta)
    table.save(out)
    log.info("hands: %d of %d images looked at (the others are unchanged since %s was written)", redone, len(rows),
             out)
    return out, table, {**_summary(index, table), "redone": redone}


def _previous(out: Path, root: Path, meta: dict, force: bool) -> HandsTable | None:
    """The existing file's rows, when it was made the same way (else everything is redone)."""
    if force or not out.is_file():
        return None
    try:
        table = HandsTable.load(out)
    except NslError:
        return None
    same = table.root == str(root) and all(table.meta.get(k) == v for k, v in meta.items())
    return table if same else None


def _summary(index, table: HandsTable) -> dict:
    """Hands found per class and subset, and the images without one."""
    found, total = Counter(), Counter()
    for sample in index.samples:
        row = table.row_for(sample.path)
        key = (sample.subset or "-", index.labels[sample.label].name)
        total[key] += 1
        found[key] += bool(row is not None and table.found[row])
    per = [{"subset": subset, "class": name, "images": total[(subset, name)], "found": found[(subset, name)]}
           for subset, name in sorted(total)]
    return {**table.summary(), "per_class": per}


def format_summary(out: Path, summary: dict) -> str:
    lines = [f"{'subset':20s} {'class':12s} {'found':>7s} / images"]
    lines += [f"{row['subset'][:20]:20s} {row['class'][:12]:12s} {row['found']:7d} / {row['images']}"
              for row in summary["per_class"]]
    share = summary["found"] / summary["images"] if summary["images"] else 0.0
    lines.append(f"hand found in {summary['found']} of {summary['images']} images ({share:.0%})")
    if summary["missing"]:
        shown = summary["missing"][:10]
        lines.append("no hand: " + ", ".join(shown) + (f" and {len(summary['missing']) - 10} more"
                                                      if len(summary["missing"]) > 10 else ""))
    lines.append(f"hands file: {out}")
    return "\n".join(lines)


def found_rate(table: HandsTable) -> float:
    return float(np.mean(table.found)) if len(table) else 0.0
