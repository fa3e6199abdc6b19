"""Quantization-aware fine-tuning (tensorflow-model-optimization) of the flat tf_keras classifier.

Every layer tfmot's default 8-bit registry knows is wrapped with fake quantisation; the others (the input
``Rescaling``) stay float and the int8 TFLite converter calibrates them, so the result is still full-integer
with uint8 input. The model then trains a few epochs at a low learning rate on the run's training split,
fed by the trainer's own input pipeline (same crop preprocessing and augmentation as training).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from nsl.errors import NslError
from nsl.options import Options
from nsl.samples import Sample

log = logging.getLogger(__name__)

QAT_LR = 1e-5
# QAT epochs ``nsl export --int8`` trains by itself when post-training int8 misses the gate: off by default, because
# on the fine-tuned asl_36 models QAT (2 epochs, towards the labels or the float model) agreed with the float
# model far less than post-training int8 did (docs/QUANTIZATION.md); ``--qat-fallback N`` turns it on.
QAT_FALLBACK_EPOCHS = 0


def quantization_aware(model):
    """A QAT copy of ``model`` that shares its trained weights (unsupported layers stay float)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_module)

    registry = registry_module.Default8BitQuantizeRegistry()
    left_float = []

    def annotate(layer):  # BatchNormalization is folded into the convolution before it by quantize_apply
        if registry.supports(layer) or isinstance(layer, keras.layers.BatchNormalization):
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        left_float.append(layer.name)
        return layer

    try:
        annotated = keras.models.clone_model(model, clone_function=annotate)
        with tfmot.quantization.keras.quantize_scope():
            qat_model = tfmot.quantization.keras.quantize_apply(annotated)
    except (ValueError, RuntimeError) as err:
        raise NslError(f"QAT: tensorflow-model-optimization cannot quantise this model "
                       f"({str(err).splitlines()[0][:200]}); export without --qat") from None
    if left_float:
        log.info("QAT: %d layer(s) stay float and are calibrated at conversion: %s", len(left_float),
                 ", ".join(left_float[:5]))
    return qat_model


@contextmanager
def _range_ema(decay: float):
    """Temporarily replace tfmot's fixed activation-range EMA decay (0.999, from an initial -6..6)."""
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize

    def with_decay(*args, **kwargs):
        return original(*args, **{**kwargs, "ema_decay": decay})

    quant_ops.MovingAvgQuantize = with_decay
    try:
        yield
    finally:
        quant_ops.MovingAvgQuantize = original


def initialise_ranges(qat_model, images: np.ndarray, batch: int = 16) -> None:
    """Set every activation range from the calibration images before training.

    tfmot starts each range at -6..6 and moves it with an EMA of 0.999 per step, so a short fine-tune would
    keep ranges far too wide (a softmax output quantised over -6..6). Eager forward passes in training mode
    with a fast EMA (the first batch sets the range, later ones average at 0.5) fix that; no weight changes.
    """
    for start in range(0, len(images), batch):
        with _range_ema(0.0 if start == 0 else 0.5):
            qat_model(images[start:start + batch].astype(np.float32), training=True)


def freeze_batch_norm(model) -> None:
    """BatchNorm in inference mode (moving statistics kept), as the trainer does when fine-tuning."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # QuantizeWrapper holds the real layer
        if "BatchNormalization" in type(inner).__name__:
            inner.trainable = False
            layer.trainable = False


def fine_tune(model, train_samples: list[Sample], options: Options, epochs: int, calibration: np.ndarray,
              lr: float = QAT_LR, target: str = "labels"):
    """QAT copy of ``model``, ranges from ``calibration``, trained ``epochs`` epochs on ``train_samples``:
    towards the labels (``target`` 'labels'), or towards the float model's own probabilities on the same
    augmented images ('float': distillation, which asks the int8 model to answer as the float one does)."""
    import tf_keras as keras

    from nsl.train.pipeline import make_dataset

    if epochs < 1:
        raise NslError(f"--qat must be a number of epochs >= 1, got {epochs}")
    qat_model = quantization_aware(model)
    freeze_batch_norm(qat_model)
    initialise_ranges(qat_model, calibration)
    steps = options.hparams.steps_per_epoch
    dataset = make_dataset(train_samples, options, training=True, repeat=bool(steps))
    if target == "float":
        dataset = dataset.map(lambda images, _: (images, model(images, training=False)))
        loss, metric = keras.losses.KLDivergence(), keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss, metric = "sparse_categorical_crossentropy", "accuracy"
    qat_model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=[metric])
    history = qat_model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0)
    log.info("QAT (%s): %d epoch(s) at lr %g, training accuracy %.4f", target, epochs, lr,
             history.history["accuracy"][-1])
    return qat_model


def qat_savedmodel(model, train_samples: list[Sample], options: Options, epochs: int, calibration: np.ndarray,
                   folder: Path, lr: float = QAT_LR, target: str = "labels") -> Path:
    """Fine-tune with QAT and export the result as a SavedModel for the converters."""
    from nsl.export.converters import to_savedmodel

    return to_savedmodel(fine_tune(model, train_samples, options, epochs, calibration, lr, target), folder)
