"""The classifier: one flat functional tf_keras graph, 0..255 pixels in, softmax probabilities out.

    image (float32 RGB 0..255) -> [rescale to -1..1] -> backbone layers -> pool -> dropout -> predictions

The backbone is built with ``input_tensor`` so its layers sit in the same graph as the head (not a Model nested
inside a Model): tfmot's QAT accepts it, and phases address backbone layers by index or name.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from nsl.errors import ConfigError, NslError
from nsl.options import ModelOptions
from nsl.train.backbones import Backbone, get_backbone

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "predictions"
HEAD_LAYERS = (INPUT_NAME, "rescale", "pool", "dropout", OUTPUT_NAME)
OFFLINE_HINT = "../shared/weights/mobilenet_v2_1.0_224_no_top.h5"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TRUST_HINT = ("loading it could run Python code it carries (a Lambda layer), so it is refused; pass --trust-model "
              "only if you made it or trust who did")


def build_classifier(options: ModelOptions, num_classes: int, dropout: float | None = None):
    """Build the classifier ``options`` describe (backbone, alpha, imgsz, weights, dropout; checked already)."""
    import tf_keras as keras

    backbone = get_backbone(options.backbone)
    weights, alpha, size = options.weights, options.alpha, options.imgsz
    image = keras.Input((size, size, 3), name=INPUT_NAME, dtype="float32")
    x = image if backbone.normalises else keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(image)
    features = _build_backbone(backbone, x, alpha, weights)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(features.output)
    x = keras.layers.Dropout(options.dropout if dropout is None else dropout, name="dropout")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)(x)
    model = keras.Model(image, out, name=f"nsl_{backbone.name}")
    momentum = options.momentum
    if momentum is not None:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = momentum
    return model


def _build_backbone(backbone: Backbone, x, alpha: float, weights: str):
    if weights == "none":
        return backbone.build(x, alpha, None)
    if weights == "imagenet":
        return _build_imagenet(backbone, x, alpha)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: weights file not found (use weights=imagenet, weights=none or the path "
                          f"of a Keras .h5 weights file of {backbone.name}, e.g. {OFFLINE_HINT})")
    model = backbone.build(x, alpha, None)
    try:
        model.load_weights(str(path))
    except Exception as err:  # h5py/Keras raise ValueError, OSError, KeyError... for a file that does not fit
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NslError(f"{path}: weights do not fit backbone {backbone.name} (alpha {alpha}): {reason[:200]} "
                       f"(pass the no-top weights file of this backbone and alpha, or weights=none)") from None
    log.info("backbone %s: weights loaded from %s", backbone.name, path)
    return model


def _build_imagenet(backbone: Backbone, x, alpha: float):
    try:
        return backbone.build(x, alpha, "imagenet")
    except Exception as err:  # no network: urllib/HTTP errors surface as Exception from keras.utils.get_file
        if isinstance(err, NslError):
            raise
        raise NslError(f"cannot fetch ImageNet weights of {backbone.name} ({type(err).__name__}; offline?): "
                       f"pass a local file with --weights PATH, e.g. --weights {OFFLINE_HINT} "
                       f"(file {backbone.weights_file}), or --weights none") from None


def backbone_layers(model) -> list:
    """The backbone's layers in graph order (everything but the input, rescaling and head)."""
    return [layer for layer in model.layers if layer.name not in HEAD_LAYERS]


def check_keras_file(path: str | Path, trust: bool = False) -> None:
    """Refuse, unless ``trust``, a model file that is not the native Keras format (a zip holding config.json,
    named .keras), whatever its name says: tf_keras loads an HDF5 file through its legacy path, where safe mode
    does not apply and a Lambda layer's code runs on load. Reads the file's signature only (no TensorFlow)."""
    path = Path(path)
    if trust:
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(HDF5_SIGNATURE))
        with zipfile.ZipFile(path) as archive:
            native = path.suffix == ".keras" and "config.json" in archive.namelist()
    except OSError as err:
        raise NslError(f"{path}: cannot read the model file ({err.strerror or err})") from None
    except (zipfile.BadZipFile, ValueError, EOFError):  # not a zip (or a damaged one)
        native = False
    if not native:
        kind = ("an HDF5 (legacy Keras) file, not the native .keras format" if head == HDF5_SIGNATURE
                else "not a native Keras model (a .keras zip holding config.json)")
        raise NslError(f"{path}: {kind}; {TRUST_HINT}")


def load_keras(path: str | Path, compile: bool = False, trust: bool = False):
    """``keras.models.load_model`` of a checked file (``check_keras_file``), with safe mode on unless ``trust``."""
    import tf_keras as keras

    check_keras_file(path, trust)
    return keras.models.load_model(path, compile=compile, safe_mode=not trust)


def load_classifier(path: str | Path, trust: bool = False):
    """Load a saved classifier (.keras) without compiling it; one-line error when it cannot be read, is not the
    native format, or needs code to load (safe mode), unless ``trust``."""
    path = Path(path)
    if not path.is_file():
        raise NslError(f"{path}: model file not found (is this a finished 'nsl train' run?)")
    try:
        return load_keras(path, compile=False, trust=trust)
    except NslError:
        raise
    except Exception as err:
        raise NslError(f"{path}: cannot load the model ({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
