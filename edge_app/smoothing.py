"""Temporal smoothing of the classifier's output, one smoother per tracked hand.

``majority``: the most frequent top-1 of the last N frames, its confidence the mean probability of that class
over them. ``ema``: an exponential average of the probabilities (alpha = 2 / (N + 1)). Below the confidence
threshold the label is "unknown"; a frame without a hand shows "no hand"."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from nsl.errors import NslError

NO_HAND = "no hand"
UNKNOWN = "unknown"
METHODS = ("majority", "ema")


@dataclass(frozen=True)
class Smoothed:
    index: int | None    # None: below the threshold ("unknown")
    confidence: float


class LabelSmoother:
    def __init__(self, window: int = 5, method: str = "majority", threshold: float = 0.5):
        if method not in METHODS:
            raise NslError(f"--smooth-method {method!r}: expected one of {', '.join(METHODS)}")
        if window < 1:
            raise NslError(f"--smooth {window}: expected a number of frames >= 1 (1 = no smoothing)")
        if not 0.0 <= threshold <= 1.0:
            raise NslError(f"--threshold {threshold}: expected a probability between 0 and 1")
        self.window, self.method, self.threshold = window, method, threshold
        self.history: deque = deque(maxlen=window)
        self.average: np.ndarray | None = None

    def update(self, probs: np.ndarray) -> Smoothed:
        probs = np.asarray(probs, dtype=np.float32)
        if self.method == "ema":
            alpha = 2.0 / (self.window + 1)
            self.average = probs if self.average is None else alpha * probs + (1 - alpha) * self.average
            index = int(np.argmax(self.average))
            confidence = float(self.average[index])
        else:
            self.history.append(probs)
            votes = Counter(int(np.argmax(p)) for p in self.history)
            stacked = np.stack(self.history)
            # most votes; a tie goes to the class with the higher mean probability
            index = max(votes, key=lambda k: (votes[k], stacked[:, k].mean()))
            confidence = float(stacked[:, index].mean())
        return Smoothed(index if confidence >= self.threshold else None, confidence)


class HandSmoothers:
    """A ``LabelSmoother`` per track id; a hand unseen for ``max_age`` frames loses its history."""

    def __init__(self, window: int = 5, method: str = "majority", threshold: float = 0.5, max_age: int = 15):
        LabelSmoother(window, method, threshold)  # validate the options now, not on the first hand
        self.options = (window, method, threshold)
        self.max_age = max_age
        self.smoothers: dict[int, tuple[LabelSmoother, int]] = {}

    def update(self, track_id: int, probs: np.ndarray, frame_index: int) -> Smoothed:
        smoother = self.smoothers.get(track_id, (None, 0))[0] or LabelSmoother(*self.options)
        self.smoothers[track_id] = (smoother, frame_index)
        return smoother.update(probs)

    def prune(self, frame_index: int) -> None:
        for track_id, (_, seen) in list(self.smoothers.items()):
            if frame_index - seen > self.max_age:
                del self.smoothers[track_id]
