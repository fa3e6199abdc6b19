"""How the CNN and the landmark model answer together: a weighted sum of their log-probabilities.

    fused = softmax((1 - w) * log p_cnn + w * log p_landmarks)

``w`` is chosen on the validation split (``choose_weight``: of the weights of a grid within one standard error of
the best top-1 and not below either model alone, the nearest 0.5) and recorded in the bundle, so the device fuses
exactly as it was measured.
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


def standard_error(top1: float, n: int, method: str = "wald") -> float:
    """The binomial standard error of a top-1 over ``n`` images: ``wald`` (sqrt(p(1-p)/n), zero at 0 and 100 %) or
    ``agresti_coull`` (the same with two successes and two failures added: not zero when a split is saturated)."""
    if method == "agresti_coull":
        n, top1 = n + 4, (top1 * n + 2) / (n + 4)
    elif method != "wald":
        raise ValueError(f"standard error method {method!r}: expected wald or agresti_coull")
    return float(np.sqrt(top1 * (1 - top1) / max(n, 1)))


def choose_weight(cnn: np.ndarray, landmarks: np.ndarray, labels: np.ndarray, error: str = "wald",
                  floor_alone: bool = True) -> tuple[float, list[dict]]:
    """The landmark weight of ``GRID`` chosen on these (validation) images, and every weight's figures (what the
    choice was made from).

    The one-standard-error rule: every weight whose top-1 is within one binomial standard error (``error``) of the
    best (and, with ``floor_alone``, not below either model alone) is as good as the best on this evidence, and of
    those the one nearest 0.5 (equal trust) is taken, ties to the lower log-loss. A validation split holds a few
    dozen images of the training signers; a weight that wins there by one image says more about those images than
    about new people, and on held-out training signers the extreme weights it picked were the ones that lost
    (docs/TRAINING.md).

    With the defaults a weight is also never below either model alone on these images (the error is the plain
    Wald one). That keeps the fused answer at least as good as its better input where the weight was chosen, and
    it has a cost where a split is saturated: a CNN names every validation photo of the signers it trained on, the
    Wald error is zero at 100 %, and one photo then decides (a run of 2026-12-03 took 0.15 and fell below the
    landmark model alone on new signers). ``error="agresti_coull", floor_alone=False`` tolerates that photo; it
    tied the defaults on every held-out training signer measured (benchmarks/signers/fusion_rules), so it is not
    the default."""
    table = []
    for weight in GRID:
        top1, nll = _scores(fuse(cnn, landmarks, weight), labels)
        table.append({"weight": weight, "top1": top1, "nll": nll})
    best = max(row["top1"] for row in table)
    floor = best - standard_error(best, len(labels), error)
    if floor_alone:
        floor = max(floor, table[0]["top1"], table[-1]["top1"])
    chosen = min((row for row in table if row["top1"] >= floor - 1e-9),
                 key=lambda row: (abs(row["weight"] - 0.5), row["nll"], row["weight"]))
    return chosen["weight"], table
