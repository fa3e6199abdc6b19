"""The table of formats a bundle can hold: one function per file, every step wrapped the same way.

``build_format`` times each step, checks that it left a non-empty file and logs one line. The order of
``FORMATS`` is the build order (an int8 ONNX file is quantised from the float one).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from nsl.export import converters
from nsl.errors import NslError

log = logging.getLogger(__name__)

KNOWN_FORMATS = ("tflite", "onnx")
ONNX_CALIBRATIONS = ("minmax", "percentile", "entropy")  # onnxruntime's activation-range calibrators
ONNX_WEIGHT_BITS = 7  # int8 ONNX weights within -64..64 with adaptive rounding: see nsl.export.onnx_quant.quantize_onnx


def default_onnx_weight_bits(remedy: str) -> int:
    """7 with adaptive rounding, 8 otherwise: measured on the asl_36 runs (docs/QUANTIZATION.md), 7-bit weights
    raised ONNX agreement from 72.5 to 89.1 % with 'round' but lowered it from 69.9 to 57.2 % without a remedy."""
    return ONNX_WEIGHT_BITS if remedy == "round" else 8


@dataclass
class ExportContext:
    """What the steps share: the float SavedModel, calibration crops, the SavedModel the post-training int8 files
    are converted from (the float one with the PTQ remedy applied, nsl.export.ptq), how onnxruntime calibrates,
    the QAT SavedModel, a scratch folder."""

    work: Path
    saved_model: Path
    calibration: np.ndarray | None = None
    qat_saved_model: Path | None = None
    ptq_saved_models: dict[int, Path] = field(default_factory=dict)  # weight bits -> remedied SavedModel
    onnx_calibration: str = "minmax"
    onnx_weight_bits: int = ONNX_WEIGHT_BITS
    _onnx: dict = field(default_factory=dict, repr=False)

    def _converted(self, saved_model: Path, name: str) -> Path:
        if name not in self._onnx:
            self._onnx[name] = converters.onnx_from_savedmodel(saved_model, self.work / f"{name}.onnx")
        return self._onnx[name]

    def float_onnx(self) -> Path:
        """The float ONNX file (converted once)."""
        return self._converted(self.saved_model, "float")

    def ptq_source(self, weight_bits: int = 8) -> Path:
        """The SavedModel post-training int8 weights of ``weight_bits`` come from (the float one: no remedy)."""
        return self.ptq_saved_models.get(weight_bits, self.saved_model)

    def ptq_onnx(self) -> Path:
        """The float ONNX file the int8 one is quantised from (the remedied model's; converted once)."""
        source = self.ptq_source(self.onnx_weight_bits)
        return self.float_onnx() if source == self.saved_model else self._converted(source, "ptq")


def _tflite_fp32(ctx: ExportContext, out: Path) -> Path:
    return converters.tflite_fp32(ctx.saved_model, out)


def _tflite_fp16(ctx: ExportContext, out: Path) -> Path:
    return converters.tflite_fp16(ctx.saved_model, out)


def _tflite_int8(ctx: ExportContext, out: Path) -> Path:
    return converters.tflite_int8(ctx.ptq_source(), out, ctx.calibration)


def _onnx_fp32(ctx: ExportContext, out: Path) -> Path:
    out.write_bytes(ctx.float_onnx().read_bytes())
    return out


def _onnx_int8(ctx: ExportContext, out: Path) -> Path:
    from nsl.export.onnx_quant import quantize_onnx

    return quantize_onnx(ctx.ptq_onnx(), out, ctx.calibration, ctx.onnx_calibration,
                         weight_bits=ctx.onnx_weight_bits)


def _tflite_qat(ctx: ExportContext, out: Path) -> Path:
    return converters.tflite_int8(ctx.qat_saved_model, out, ctx.calibration)


def _onnx_qat(ctx: ExportContext, out: Path) -> Path:
    """The QAT model's weights, int8 by onnxruntime with the same calibration (see strip_fake_quant)."""
    from nsl.export.onnx_quant import quantize_onnx, strip_fake_quant

    fake_quant = converters.onnx_from_savedmodel(ctx.qat_saved_model, ctx.work / "qat_fake_quant.onnx")
    return quantize_onnx(strip_fake_quant(fake_quant, ctx.work / "qat_float.onnx"), out, ctx.calibration,
                         weight_bits=ctx.onnx_weight_bits)


@dataclass(frozen=True)
class Format:
    """One bundle file: its name, format (runtime), precision, whether it comes from QAT, and its builder."""

    name: str
    fmt: str
    precision: str
    build: Callable[[ExportContext, Path], Path]
    qat: bool = False


FORMATS = (
    Format("model_fp32.tflite", "tflite", "fp32", _tflite_fp32),
    Format("model_fp16.tflite", "tflite", "fp16", _tflite_fp16),
    Format("model_int8.tflite", "tflite", "int8", _tflite_int8),
    Format("model_qat_int8.tflite", "tflite", "int8", _tflite_qat, qat=True),
    Format("model_fp32.onnx", "onnx", "fp32", _onnx_fp32),
    Format("model_int8.onnx", "onnx", "int8", _onnx_int8),
    Format("model_qat_int8.onnx", "onnx", "int8", _onnx_qat, qat=True),
)


def parse_formats(text: str) -> list[str]:
    """``tflite,onnx`` -> ['tflite', 'onnx']; a one-line error for an unknown name."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KNOWN_FORMATS]
    if unknown or not names:
        raise NslError(f"--formats: unknown format {', '.join(unknown) or repr(text)} "
                       f"(choose from {', '.join(KNOWN_FORMATS)}, comma separated)")
    return names


def select_formats(formats: list[str], fp16: bool, int8: bool, qat: bool) -> list[Format]:
    """Float files always; fp16 (TFLite only), int8 and QAT files when asked."""
    wanted = {"fp32": True, "fp16": fp16, "int8": int8}
    return [f for f in FORMATS if f.fmt in formats and (qat if f.qat else wanted[f.precision])]


def build_format(fmt: Format, ctx: ExportContext, out_dir: Path) -> Path:
    """Run one step: timed, checked for a non-empty file, one log line."""
    out = out_dir / fmt.name
    start = time.perf_counter()
    fmt.build(ctx, out)
    if not out.is_file() or out.stat().st_size == 0:
        raise NslError(f"{fmt.name}: the {fmt.fmt} {fmt.precision} step finished without writing a file")
    log.info("export %-24s %8.1f KB  %5.1f s", fmt.name, out.stat().st_size / 1024, time.perf_counter() - start)
    return out
