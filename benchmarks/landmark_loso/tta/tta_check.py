"""Test-time augmentation of the landmark model, judged on held-out training signers: each fold run (A: trained on
hand1, judged on hand2+hand3; B: trained on hand2+hand3, judged on hand1; the groups its split recorded) answers
its judged photos plain and as the mean over in-plane rotations / scales of the normalised landmarks. Train
environment:

    python benchmarks/landmark_loso/tta/tta_check.py RUN_A42 RUN_B42 RUN_A7 RUN_B7
"""

import sys
from pathlib import Path

import numpy as np

from nsl.env import prepare_tensorflow
from nsl.rundir import RunDir

prepare_tensorflow()
import tf_keras as keras  # noqa: E402  (after prepare_tensorflow)

from nsl.train.landmark_model import predict  # noqa: E402

JUDGED = {"A": {"hand2", "hand3"}, "B": {"hand1"}}  # by the first letter of the run's folder name
AUGMENTATIONS = {"plain": [(0, 1.0)], "rot+-7.5": [(-7.5, 1), (0, 1), (7.5, 1)],
                 "rot+-15": [(-15, 1), (0, 1), (15, 1)],
                 "rot+-7.5 x scale+-5%": [(d, s) for d in (-7.5, 0, 7.5) for s in (0.95, 1, 1.05)]}


def rotate_scale(features: np.ndarray, degrees: float, scale: float) -> np.ndarray:
    """Every hand's points turned about the wrist by ``degrees`` in the image plane and scaled by ``scale``."""
    points = features.reshape(len(features), -1, 3).astype(np.float64).copy()
    angle, x, y = np.deg2rad(degrees), points[..., 0].copy(), points[..., 1].copy()
    points[..., 0], points[..., 1] = np.cos(angle) * x - np.sin(angle) * y, np.sin(angle) * x + np.cos(angle) * y
    return (points * scale).reshape(len(features), -1).astype(np.float32)


def mean_answer(model, features: np.ndarray, augmentation: list) -> np.ndarray:
    return np.mean([predict(model, rotate_scale(features, d, s)) for d, s in augmentation], axis=0)


def check(folder: Path) -> str:
    run = RunDir(folder)
    group_of = {sample.path: sample.group for sample in run.split()["test"]}
    arrays = np.load(folder / "landmarks.npz", allow_pickle=False)
    model = keras.models.load_model(folder / "landmarks.keras", compile=False)
    keep = np.array([group_of.get(str(path)) in JUDGED[folder.name[0]] for path in arrays["test_paths"]])
    features, labels = arrays["test_features"][keep], arrays["test_labels"][keep]
    figures = []
    for name, augmentation in AUGMENTATIONS.items():
        test = np.mean(mean_answer(model, features, augmentation).argmax(1) == labels)
        val = np.mean(mean_answer(model, arrays["val_features"], augmentation).argmax(1) == arrays["val_labels"])
        figures.append(f"{name}: {test:.3f} (val {val:.2f})")
    return f"{folder} {keep.sum()} " + " | ".join(figures)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(check(Path(argument)))
