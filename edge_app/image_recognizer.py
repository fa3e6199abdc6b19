"""``nsl.Recognizer``: a bundle that names the signs in one image, for notebooks and scripts.

    from nsl import Recognizer
    for hand in Recognizer("runs/exp/bundle").predict("photo.jpg"):
        print(hand.index, hand.name, hand.roman, hand.confidence, hand.box)

The same pieces as ``nsl predict``: the bundle opened and verified (``open_bundle``), its models behind one call
(``nsl.edge.recognizer.Recognizer``: CNN, landmark model or both fused), MediaPipe in IMAGE mode (or a fixed
region, or the whole image), and the device's crop (``nsl.preprocess.crop_hand``). Edge side: no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsl.errors import NslError
from nsl.preprocess import crop_box, crop_hand, read_image


@dataclass(frozen=True)
class Prediction:
    """One hand: the class (index into the bundle's labels, Devanagari, romanised), how sure, where, its landmarks."""

    index: int
    name: str
    roman: str
    confidence: float
    box: tuple[float, float, float, float]          # the crop cut for the classifier, pixels (x0, y0, x1, y1)
    landmarks: np.ndarray | None = None              # (21, 3) pixels (z in x's scale); None without a hand model
    handedness: str = ""
    hand_score: float = 0.0
    top: list[tuple[int, float]] = field(default_factory=list)   # (index, probability), best first
    models: tuple[str, ...] = ()                     # the models that answered (cnn, landmarks)


class ImageRecognizer:
    """``bundle``: a folder made by ``nsl export``. ``detect=False``: the image is a ready crop (as the dataset's
    own images); ``roi=(x0, y0, x1, y1)``: classify that region. Otherwise MediaPipe finds up to ``hands`` hands
    (``hand_model``: a hand_landmarker.task, default the user cache's, made by ``nsl hand-model build``)."""

    def __init__(self, bundle: str | Path, backend: str = "tflite", precision: str | None = None,
                 threads: int | None = None, model_kind: str | None = None, hand_model: str | Path | None = None,
                 hands: int = 1, detect: bool = True, roi: tuple | None = None, top: int = 3):
        from nsl.edge.bundle import open_bundle
        from nsl.edge.hand_model import resolve
        from nsl.edge.hands import make_hands
        from nsl.edge.recognizer import Recognizer

        self.bundle = open_bundle(bundle)
        self.models = Recognizer.open(self.bundle, backend, precision, threads, model_kind)
        model_path = resolve(hand_model) if detect and roi is None else None
        self.tracker = make_hands(model_path, roi, hands, mode="image", whole_image=not detect)
        self.top = max(1, int(top))

    @property
    def labels(self):
        return self.bundle.labels

    def predict(self, image: str | Path | np.ndarray) -> list[Prediction]:
        """The hands in ``image`` (a file, or an RGB uint8 array H x W x 3), best class first; [] when none."""
        frame = read_image(image) if isinstance(image, (str, Path)) else _rgb(image)
        hands = self.tracker.detect(frame)
        if not hands:
            return []
        crops = np.stack([crop_hand(frame, hand.box, self.bundle.crop, hand.grow, hand.handedness) for hand in hands])
        probs, answered = self.models.predict(crops, hands)
        return [self._prediction(hand, row, models) for hand, row, models in zip(hands, probs, answered)]

    def _prediction(self, hand, row: np.ndarray, models) -> Prediction:
        order = [int(i) for i in np.argsort(row)[::-1][:self.top]]
        label = self.labels[order[0]]
        return Prediction(index=order[0], name=label.name, roman=label.roman, confidence=float(row[order[0]]),
                          box=tuple(float(v) for v in crop_box(hand.box, self.bundle.crop, hand.grow)),
                          landmarks=hand.landmarks, handedness=hand.handedness, hand_score=float(hand.score),
                          top=[(i, float(row[i])) for i in order], models=tuple(models))

    def close(self) -> None:
        self.tracker.close()

    def __enter__(self) -> "ImageRecognizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise NslError(f"predict: expected an RGB image, uint8 H x W x 3 (or a file path), got {array.dtype} "
                       f"{array.shape}")
    return np.ascontiguousarray(array)
