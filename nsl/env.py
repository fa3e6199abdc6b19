"""Which environment is this? Train commands need TensorFlow; edge commands must never import it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from nsl.errors import EnvironmentMissing

EXTRA_MODULES = {
    "train": ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx"),
    "edge": ("mediapipe", "cv2"),
}


SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the checkout, for an editable install


def git_commit() -> str:
    """The commit of the code that runs ('unknown' for an installed copy that is not a git checkout)."""
    if not (SOURCE_ROOT / ".git").exists():
        return "unknown"
    try:
        proc = subprocess.run(["git", "-C", str(SOURCE_ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


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


DATA_MODULES = ("cv2", "imagehash")  # nsl data synth / check: OpenCV and ImageHash, which both extras install


def require_data_tools(command: str) -> None:
    """``nsl data synth`` / ``check`` run in either environment (no TensorFlow): a one-line error when neither
    extra is installed."""
    missing = [name for name in DATA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise EnvironmentMissing(
            f"'nsl {command}' needs OpenCV and ImageHash ({', '.join(missing)} not installed): "
            f"pip install 'nsl-edge[edge]' or 'nsl-edge[train]'")

