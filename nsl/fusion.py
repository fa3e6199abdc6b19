"""How the CNN and the landmark model answer together: a weighted sum of their log-probabilities.

    fused = softmax((1 - w) * log p_cnn + w * log p_landmarks)

``w`` is chosen on the validation split (``choose_weight``: the weight of a grid with the best top-1, ties to the
lower log-loss, then to the middle) and recorded in the bundle, so the device fuses exactly as it was measured.
Where no hand was found (the ``--roi`` path, or a photo MediaPipe misses) the CNN answers alone. numpy only: the
train side chooses the weight, the device applies it, with the same function.
"""

from __future__ import annotations

import numpy as np

GRID = tuple(round(0.05 * i, 2) for i in range(21))
EPS = 1e-7


def fuse(cnn: np.ndarray | None, landmarks: np.ndarray | None, weight: float) -> np.ndarray:
    """Fused probabilities (N, C). Either input may be None (that model did not answer): the other one alone.
    Rows of ``landmarks`` that are NaN (no hand) take the CNN's row."""
    if landmarks is None:
        return np.asarray(cnn, np.float32)
    if cnn is None:
        return np.asarray(landmarks, np.float32)
    cnn, landmarks = np.asarray(cnn, np.float64), np.asarray(landmarks, np.float64)
    has_hand = ~np.isnan(landmarks).any(axis=1)
    logits = (1 - weight) * np.log(cnn + EPS) + weight * np.log(np.where(has_hand[:, None], landmarks, 1.0) + EPS)
    logits -= logits.max(axis=1, keepdims=True)
    fused = np.exp(logits)
    fused /= fused.sum(axis=1, keepdims=True)
    return np.where(has_hand[:, None], fused, cnn).astype(np.float32)


def _scores(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    top1 = float(np.mean(probs.argmax(axis=1) == labels)) if len(labels) else 0.0
    nll = float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + EPS))) if len(labels) else 0.0
    return top1, nll


def choose_weight(cnn: np.ndarray, landmarks: np.ndarray, labels: np.ndarray) -> tuple[float, list[dict]]:
    """The landmark weight of ``GRID`` with the best top-1 on these (validation) images, ties to the lower log-loss
    and then to 0.5; and every weight's figures (what the choice was made from)."""
    table = []
    for weight in GRID:
        top1, nll = _scores(fuse(cnn, landmarks, weight), labels)
        table.append({"weight": weight, "top1": top1, "nll": nll})
    best = min(table, key=lambda row: (-row["top1"], row["nll"], abs(row["weight"] - 0.5)))
    return best["weight"], table
