"""What names a hand: the bundle's CNN on the crop, its landmark model on the hand's landmarks, or both fused.

``Recognizer.open(bundle, backend, precision, threads, kind)`` opens the models the bundle holds; ``kind`` is
``cnn``, ``landmarks`` or ``fused`` (default: fused when the bundle has both, else the one it has). ``predict(crops,
hands)`` gives one probability row per hand and which models answered it: a hand without landmarks (the ``--roi``
path, a ready crop) is named by the CNN alone; the fusion rule is the bundle's (``nsl.fusion``, chosen on the
validation split at export). The landmark features are ``nsl.landmarks.hand_features``, the function training used.
"""

from __future__ import annotations

import numpy as np

from nsl.edge.bundle import Bundle, open_model
from nsl.errors import NslError
from nsl.fusion import fuse
from nsl.landmarks import hand_features

KINDS = ("cnn", "landmarks", "fused")


class Recognizer:
    def __init__(self, bundle: Bundle, cnn=None, landmarks=None, kind: str = "cnn"):
        self.bundle, self.cnn, self.landmarks, self.kind = bundle, cnn, landmarks, kind
        self.weight = float((bundle.fusion or {}).get("weight", 0.5))
        self.layout = bundle.feature_layout or "xyz21"

    @classmethod
    def open(cls, bundle: Bundle, backend: str = "tflite", precision: str | None = None, threads: int | None = None,
             kind: str | None = None) -> "Recognizer":
        has_cnn, has_landmarks = bundle.has("cnn"), bundle.has("landmarks")
        kind = kind or ("fused" if has_cnn and has_landmarks else "landmarks" if has_landmarks else "cnn")
        if kind not in KINDS:
            raise NslError(f"--model-kind {kind!r}: expected one of {', '.join(KINDS)}")
        missing = [m for m, needed, have in (("cnn", kind in ("cnn", "fused"), has_cnn),
                                             ("landmarks", kind in ("landmarks", "fused"), has_landmarks))
                   if needed and not have]
        if missing:
            raise NslError(f"{bundle.path}: --model-kind {kind} needs a {missing[0]} model, and this bundle has none "
                           f"(train with models=both and export again)")
        cnn = open_model(bundle, backend, precision, threads, "cnn") if kind in ("cnn", "fused") else None
        landmarks = open_model(bundle, backend, precision, threads, "landmarks") \
            if kind in ("landmarks", "fused") else None
        return cls(bundle, cnn, landmarks, kind)

    @property
    def path(self):
        """The file that names the crop (the CNN's, else the landmark model's): what the summary reports."""
        return (self.cnn or self.landmarks).path

    @property
    def backend(self) -> str:
        return (self.cnn or self.landmarks).backend

    @property
    def files(self) -> list[str]:
        return [model.path.name for model in (self.cnn, self.landmarks) if model is not None]

    def _landmark_probs(self, hands) -> np.ndarray:
        """(N, C) landmark-model probabilities, NaN rows for hands without landmarks."""
        out = np.full((len(hands), len(self.bundle.labels)), np.nan, np.float32)
        rows = [i for i, hand in enumerate(hands) if getattr(hand, "landmarks", None) is not None]
        if rows:
            features = np.stack([hand_features(hands[i].landmarks, hands[i].handedness, hands[i].world, self.layout)
                                 for i in rows])
            out[rows] = self.landmarks.predict(features)
        return out

    def predict(self, crops: np.ndarray, hands) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """-> (probabilities (N, classes), per hand the models that answered)."""
        cnn = self.cnn.predict(crops) if self.cnn is not None else None
        landmarks = self._landmark_probs(hands) if self.landmarks is not None else None
        has_hand = ~np.isnan(landmarks).any(axis=1) if landmarks is not None else np.zeros(len(hands), bool)
        if self.kind == "cnn":
            return cnn, [("cnn",)] * len(hands)
        if self.kind == "landmarks":  # no landmarks: nobody can name it (uniform, shown as unknown)
            probs = np.where(has_hand[:, None], landmarks, 1.0 / len(self.bundle.labels)).astype(np.float32)
            return probs, [("landmarks",) if h else () for h in has_hand]
        return fuse(cnn, landmarks, self.weight), [("cnn", "landmarks") if h else ("cnn",) for h in has_hand]
