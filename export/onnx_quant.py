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


class _RankOneWeights(logging.Filter):
    """Counts (and drops) the quantizer's warning for each 1-D weight it cannot quantise per channel.

    Such weights are the scale and shift of BatchNorm layers that tf2onnx left unfolded; onnxruntime quantises
    them per tensor instead, which is correct, but it says so once per weight and use.
    """

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Axis ") and "is out-of-range for weight" in message:
            self.names.add(message.split("'")[1] if "'" in message else message)
            return False
        return True


@contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs per-channel scale notes at INFO on the root logger: keep them out of the CLI."""
    root = logging.getLogger()
    level, rank_one = root.level, _RankOneWeights()
    root.setLevel(max(level, logging.WARNING))
    root.addFilter(rank_one)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeFilter(rank_one)
        if rank_one.names:
            log.info("onnx int8: %d one-dimensional weights (unfolded BatchNorm) quantised per tensor",
                     len(rank_one.names))


def quantize_onnx(fp32_model: Path, out: Path, calibration: np.ndarray, method: str = "minmax",
                  per_channel: bool = True, weight_bits: int = 8) -> Path:
    """Static QDQ quantization: uint8 activations, int8 weights (per channel by default), activation ranges by
    ``method``: min/max of the calibration images, or onnxruntime's percentile or entropy calibrators.

    ``weight_bits`` 7 (onnxruntime's reduce_range, weights within -64..64; what ``nsl export`` uses with adaptive
    rounding, nsl.export.formats.default_onnx_weight_bits): onnxruntime's u8s8 kernels on x86 CPUs without VNNI
    (AVX2) add pairs of uint8 x int8 products in int16, which can saturate with full-range weights. Measured on the
    asl_36 runs (docs/QUANTIZATION.md): with adaptive rounding aimed at that grid, 7 bits agreed with the float
    model on 89.1 % of the photos against 72.5 % for 8 bits; without a remedy 7 bits was worse (57.2 against
    69.9 %: the coarser grid's rounding error outweighs it). 8 uses the full -127..127.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod

    if weight_bits not in (7, 8):
        raise NslError(f"ONNX int8 weights: 7 or 8 bits, got {weight_bits}")
    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]

    prepared = out.with_name(out.stem + ".pre.onnx")
    try:
        quant_pre_process(str(fp32_model), str(prepared), skip_symbolic_shape=True)
        input_name = onnx.load(str(prepared)).graph.input[0].name
        with _quiet_root_logger():
            quantize_static(str(prepared), str(out), _Images(input_name, calibration), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=calibrate, reduce_range=weight_bits == 7)
    except Exception as err:  # onnxruntime raises a variety of types for graphs it cannot quantise
        raise NslError(f"{out.name}: ONNX quantization failed ({str(err).strip().splitlines()[0][:200]})") from None
    finally:
        prepared.unlink(missing_ok=True)
    return out


def strip_fake_quant(source: Path, out: Path) -> Path:
    """Drop QuantizeLinear -> DequantizeLinear pairs (tf2onnx's form of tfmot's fake quantisation).

    What remains is the float graph with the QAT-trained weights; ``quantize_onnx`` then gives it real int8
    weights (tf2onnx leaves them float32, so the file would be as large and as slow as the float one).
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    bypass, dropped = {}, set()
    for node in graph.node:
        quant = producers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if quant is not None and quant.op_type == "QuantizeLinear":
            bypass[node.output[0]] = quant.input[0]
            dropped.update((node.name, quant.name))
    kept = [node for node in graph.node if node.name not in dropped]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = bypass.get(name, name)
    for output in graph.output:
        if output.name in bypass:
            kept.append(helper.make_node("Identity", [bypass[output.name]], [output.name]))
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    log.debug("%s: removed %d fake-quant pairs", source.name, len(bypass))
    return out
