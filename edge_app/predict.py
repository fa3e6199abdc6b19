"""``nsl predict``: the device's crop and classification on still images (files or folders).

Hands are found by a tracker (``nsl.edge.hands.make_hands``): MediaPipe in IMAGE mode (the picture padded with a
border first), or a fixed region (``--roi``), or the whole image (``--no-detect``, as the dataset's own crops are
meant to be classified). Each hand is cut by ``nsl.preprocess.crop_hand``, as in ``nsl app``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsl.preprocess import crop_box, crop_hand, read_image
from nsl.edge.recognizer import Recognizer
from nsl.errors import NslError
from nsl.fileio import is_image_file

log = logging.getLogger(__name__)


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in folders; a missing path is an error."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if is_image_file(p) and p.is_file())
            if not found:
                log.warning("%s: no images in this folder", item)
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            raise NslError(f"{item}: no such image file or folder")
    if not paths:
        raise NslError(f"no images found in {', '.join(map(str, inputs))}")
    return paths


def _classify(image: np.ndarray, tracker, bundle, classifier) -> tuple[list[tuple], np.ndarray]:
    """(crop box, handedness, score, models that answered) of each hand in one image, and the probabilities.
    ``classifier``: a ``Recognizer`` (CNN, landmark model or both fused) or a plain classifier of crops."""
    spec = bundle.crop
    hands = tracker.detect(image)
    crops = [crop_hand(image, hand.box, spec, hand.grow, hand.handedness) for hand in hands]
    if not crops:
        return [], np.zeros((0, len(bundle.labels)))
    if isinstance(classifier, Recognizer):
        probs, answered = classifier.predict(np.stack(crops), hands)
    else:
        probs, answered = classifier.predict(np.stack(crops)), [("cnn",)] * len(hands)
    return [(crop_box(hand.box, spec, hand.grow), hand.handedness, hand.score, models)
            for hand, models in zip(hands, answered)], probs


def _rows(path: Path, boxes: list[tuple], probs: np.ndarray, labels, top: int) -> list[dict]:
    if not boxes:
        return [{"path": str(path), "hand": None, "label": None, "text": "no hand", "roman": "no hand",
                 "ascii": "no hand", "confidence": None, "box": None, "top": []}]
    rows = []
    for number, ((box, side, score, models), row) in enumerate(zip(boxes, probs)):
        order = np.argsort(row)[::-1][:top]
        best = int(order[0])
        rows.append({"path": str(path), "hand": number, "handedness": side, "hand_score": round(score, 3),
                     "box": [round(v, 1) for v in box], "label": best, "text": labels[best].name,
                     "roman": labels[best].roman, "ascii": labels[best].ascii, "confidence": round(float(row[best]), 4),
                     "top": [[int(i), round(float(row[i]), 4)] for i in order], "models": list(models)})
    return rows


def predict_images(bundle, classifier, paths: list[Path], tracker, top: int = 3) -> list[dict]:
    """One row per hand ``tracker`` finds (or per image when none is found / an image cannot be read)."""
    rows = []
    for path in tqdm(paths, desc="predict", unit="image", disable=len(paths) < 20 or None):
        try:
            image = read_image(path)
        except NslError as err:
            log.warning("skipping %s", err)
            rows.append({"path": str(path), "hand": None, "label": None, "text": "unreadable", "error": str(err)})
            continue
        boxes, probs = _classify(image, tracker, bundle, classifier)
        rows += _rows(path, boxes, probs, bundle.labels, top)
    if all(row.get("text") == "unreadable" for row in rows):  # nothing classified is not a result
        raise NslError(f"none of the {len(paths)} image(s) can be read (first: {rows[0]['error']})")
    return rows


def format_table(rows: list[dict], devanagari: bool = True) -> str:
    """A plain text table: image, hand, label, confidence, box."""
    lines = [f"{'image':40s} {'hand':>4s}  {'label':14s} {'conf':>6s}  box"]
    for row in rows:
        name = str(row["path"])[-40:]
        if row.get("label") is None:
            lines.append(f"{name:40s} {'-':>4s}  {row['text']:14s} {'-':>6s}  -")
            continue
        text = f"{row['label']} " + (f"{row['text']} ({row['roman']})" if devanagari else row["ascii"])
        box = ",".join(f"{v:.0f}" for v in row["box"])
        lines.append(f"{name:40s} {row['hand']:>4d}  {text:14s} {row['confidence']:6.1%}  {box}")
    return "\n".join(lines)
