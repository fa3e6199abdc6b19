"""Keras -> SavedModel -> TFLite (fp32, fp16, full integer) and ONNX (tf2onnx), one function per conversion.

Everything goes through the SavedModel that ``model.export()`` writes: the TFLite converter and tf2onnx both
read it, so every file is converted from the same graph. Full-integer TFLite takes uint8 input and gives uint8
output; its input scale comes out at about 1.0 because the model takes 0..255 pixels.
"""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from nsl.errors import NslError

log = logging.getLogger(__name__)

ONNX_OPSET = 13


def to_savedmodel(model, folder: Path) -> Path:
    """``model.export(folder)`` (an inference-only SavedModel with a ``serving_default`` signature)."""
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)  # 'Assets written to', renamed resource inputs: noise for a user
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # export() prints the signature; keep stdout for tables
            model.export(str(folder))
    finally:
        tf_log.setLevel(level)
    return folder


def _convert(converter, out: Path) -> Path:
    try:
        out.write_bytes(converter.convert())
    except Exception as err:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise NslError(f"{out.name}: TFLite conversion failed ({str(err).strip().splitlines()[0][:200]})") from None
    return out


def tflite_fp32(saved_model: Path, out: Path) -> Path:
    import tensorflow as tf

    return _convert(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)), out)


def tflite_fp16(saved_model: Path, out: Path) -> Path:
    """Weights stored as float16 (half the size), computed in float32 on CPUs."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return _convert(converter, out)


def tflite_int8(saved_model: Path, out: Path, calibration: np.ndarray, per_channel: bool = True) -> Path:
    """Full-integer TFLite, uint8 in and out, activation ranges from ``calibration`` (uint8 crops, N x H x W x 3),
    weights per output channel (the converter's default) or, ``per_channel`` False, one scale per tensor.

    Also used for a QAT model: its fake-quant ranges are kept and the calibration covers what they leave open.
    """
    import tensorflow as tf

    def representative():
        for image in calibration:
            yield [image[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    if not per_channel:
        converter._experimental_disable_per_channel = True  # the converter's only switch for it
    return _convert(converter, out)


def onnx_from_savedmodel(saved_model: Path, out: Path, opset: int = ONNX_OPSET) -> Path:
    """tf2onnx's documented ``--saved-model`` path, in a subprocess (it resets TensorFlow's default graph)."""
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--output", str(out),
           "--opset", str(opset)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error" in line]
        reason = (errors or proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NslError(f"{out.name}: tf2onnx failed (exit {proc.returncode}: {reason[:200]})")
    log.debug("tf2onnx: %s", proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
    return out
