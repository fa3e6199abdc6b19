"""Quantization-aware fine-tuning (tensorflow-model-optimization) of the flat tf_keras classifier.

Every layer tfmot's default 8-bit registry knows is wrapped with fake quantisation; the others (the input
``Rescaling``) stay float and the int8 TFLite converter calibrates them, so the result is still full-integer
with uint8 input. The model then trains a few epochs at a low learning rate on the run's training split,
fed by the trainer's own input pipeline (same crop preprocessing and augmentation as training).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nsl.errors import NslError
from train.samples import Sample

log = logging.getLogger(__name__)

QAT_LR = 1e-5


def quantization_aware(model):
    """A QAT copy of ``model`` that shares its trained weights (unsupported layers stay float)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_module)

    registry = registry_module.Default8BitQuantizeRegistry()
    left_float = []

    def annotate(layer):
        if registry.supports(layer):
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


def fine_tune(model, train_samples: list[Sample], config: dict, epochs: int, lr: float = QAT_LR):
    """QAT copy of ``model`` trained ``epochs`` epochs on ``train_samples`` (config: imgsz, batch, crop...)."""
    import tf_keras as keras

    from train.pipeline import make_dataset

    if epochs < 1:
        raise NslError(f"--qat must be a number of epochs >= 1, got {epochs}")
    qat_model = quantization_aware(model)
    qat_model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    steps = config.get("steps_per_epoch")
    dataset = make_dataset(train_samples, config, training=True, repeat=bool(steps))
    history = qat_model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0)
    log.info("QAT: %d epoch(s) at lr %g, training accuracy %.4f", epochs, lr, history.history["accuracy"][-1])
    return qat_model


def qat_savedmodel(model, train_samples: list[Sample], config: dict, epochs: int, folder: Path,
                   lr: float = QAT_LR) -> Path:
    """Fine-tune with QAT and export the result as a SavedModel for the converters."""
    from export.converters import to_savedmodel

    return to_savedmodel(fine_tune(model, train_samples, config, epochs, lr), folder)
