"""``nsl val BUNDLE --data DIR`` through the device path: every labelled photo as the app would see it.

    read_image -> hand tracker (IMAGE mode, padded, as nsl predict) -> crop_hand -> CNN / landmark model -> fusion

Reported per model kind the bundle can run (cnn, landmarks, fused): top-1 over all images (an image where no hand
is found counts as a miss for the landmark model, and the CNN names the whole image there, as ``--no-detect``
would), the hand-found rate, and the confusion matrix of the bundle's default kind. Edge environment only.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsl.edge.bundle import Bundle
from nsl.edge.hands import make_hands
from nsl.edge.recognizer import Recognizer
from nsl.errors import DataError, NslError
from nsl.preprocess import crop_hand, prepare, read_image

log = logging.getLogger(__name__)


def _kinds(bundle: Bundle) -> list[str]:
    return [k for k, ok in (("cnn", bundle.has("cnn")), ("landmarks", bundle.has("landmarks")),
                            ("fused", bundle.has("cnn") and bundle.has("landmarks"))) if ok]


def device_path_metrics(bundle: Bundle, samples: list, hand_model: str | Path, backend: str = "tflite",
                        precision: str | None = None) -> dict:
    """Top-1 per model kind over ``samples`` (nsl.samples.Sample: path, label) through the device path."""
    if not samples:
        raise DataError("no images to evaluate")
    kinds = _kinds(bundle)
    recognizers = {kind: Recognizer.open(bundle, backend, precision, None, kind) for kind in kinds}
    predictions: dict[str, list[int]] = {kind: [] for kind in kinds}
    truth, found, unreadable = [], 0, 0
    tracker = make_hands(hand_model, None, 1, mode="image")
    try:
        for sample in tqdm(samples, desc="device path", unit="img", leave=False):
            try:
                image = read_image(sample.path)
            except NslError as err:
                log.warning("skipped: %s", err)
                unreadable += 1
                continue
            hands = tracker.detect(image)[:1]
            found += bool(hands)
            for kind, recognizer in recognizers.items():
                predictions[kind].append(_top1(recognizer, image, hands, bundle))
            truth.append(sample.label)
    finally:
        tracker.close()
    if not truth:
        raise DataError(f"none of the {len(samples)} images could be read (first: {samples[0].path})")
    return _summary(bundle, kinds, predictions, np.asarray(truth), found, unreadable)


def _top1(recognizer: Recognizer, image: np.ndarray, hands: list, bundle: Bundle) -> int:
    """The recognizer's top-1 for one photo (-1: it could not name it)."""
    if hands:
        crops = np.stack([crop_hand(image, hands[0].box, bundle.crop, hands[0].grow, hands[0].handedness)])
    else:  # no hand found: the CNN names the whole picture, the landmark model cannot answer
        crops, hands = prepare(image, bundle.crop)[None], [_NoHand()]
    probs, answered = recognizer.predict(crops, hands)
    return int(np.argmax(probs[0])) if answered[0] else -1


class _NoHand:
    landmarks = None
    handedness = ""
    world = None


def _summary(bundle: Bundle, kinds: list[str], predictions: dict, truth: np.ndarray, found: int,
             unreadable: int) -> dict:
    n = len(truth)
    by_kind = {kind: {"top1": float(np.mean(np.asarray(predictions[kind]) == truth)) if n else 0.0,
                      "unanswered": int(np.sum(np.asarray(predictions[kind]) < 0))} for kind in kinds}
    default = "fused" if "fused" in kinds else kinds[0]
    confusion = np.zeros((len(bundle.labels), len(bundle.labels)), np.int64)
    for true, predicted in zip(truth, predictions[default]):
        if predicted >= 0:
            confusion[true, predicted] += 1
    return {"n_images": int(n), "unreadable": unreadable, "hand_found": found / n if n else 0.0,
            "by_model": by_kind, "default_kind": default, "confusion_matrix": confusion.tolist(),
            "classes_seen": dict(Counter(int(t) for t in truth))}


def format_device_path(metrics: dict) -> str:
    lines = [f"device path: {metrics['n_images']} images, hand found in {metrics['hand_found']:.1%}",
             "| model | top-1 % | not answered |", "|---|---|---|"]
    lines += [f"| {kind}{' (default)' if kind == metrics['default_kind'] else ''} | {m['top1'] * 100:.2f} | "
              f"{m['unanswered']} |" for kind, m in metrics["by_model"].items()]
    return "\n".join(lines)
