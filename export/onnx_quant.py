"""int8 ONNX: onnxruntime static quantization (QDQ, per-channel weights) calibrated on the TFLite images.

The quantised file keeps the float32 0..255 input and the float32 output of the float file (QuantizeLinear /
DequantizeLinear nodes sit inside the graph), so a device feeds both files the same way.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from nsl.errors import NslError

log = logging.getLogger(__name__)


class _Images(CalibrationDataReader):
    """onnxruntime's CalibrationDataReader protocol over a uint8 image array, one image per call."""

    def __init__(self, input_name: str, images: np.ndarray):
        self._input_name = input_name
        self._images = iter(images)

    def get_next(self):
        image = next(self._images, None)
        return None if image is None else {self._input_name: image[None].astype(np.float32)}


@contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs per-channel scale notes at INFO on the root logger: keep them out of the CLI."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_onnx(fp32_model: Path, out: Path, calibration: np.ndarray) -> Path:
    """Static QDQ quantization: uint8 activations, int8 per-channel weights, min/max calibration."""
    import onnx

    prepared = out.with_name(out.stem + ".pre.onnx")
    try:
        quant_pre_process(str(fp32_model), str(prepared), skip_symbolic_shape=True)
        input_name = onnx.load(str(prepared)).graph.input[0].name
        with _quiet_root_logger():
            quantize_static(str(prepared), str(out), _Images(input_name, calibration), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    except Exception as err:  # onnxruntime raises a variety of types for graphs it cannot quantise
        raise NslError(f"{out.name}: ONNX quantization failed ({str(err).strip().splitlines()[0][:200]})") from None
    finally:
        prepared.unlink(missing_ok=True)
    return out
