"""Which environment is this? Train commands need TensorFlow; edge commands must never import it."""

from __future__ import annotations

import importlib.util
import os

from nsl.errors import EnvironmentMissing

EXTRA_MODULES = {
    "train": ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx"),
    "edge": ("mediapipe", "cv2"),
}


def prepare_tensorflow() -> None:
    """Settings that must be in place before TensorFlow is first imported."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot's QAT works only with tf_keras (Keras 2)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def missing_modules(extra: str) -> list[str]:
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, command: str) -> None:
    """Raise a one-line error naming the extra to install when ``command`` runs in the wrong environment."""
    missing = missing_modules(extra)
    if missing:
        raise EnvironmentMissing(
            f"'nsl {command}' needs the {extra} environment ({', '.join(missing)} not installed): "
            f"pip install 'nsl-edge[{extra}]', or run it with .venvs/{extra}/bin/nsl")
    if extra == "train":
        prepare_tensorflow()
