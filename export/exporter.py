"""``nsl export``: a trained model -> a verified model bundle, written whole or not at all.

    source (run or .keras) -> SavedModel -> each selected format (formats.FORMATS) -> labels into ONNX files
    -> every file through its device runtime on the test split -> accuracy gate -> metadata.json + report
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsl.edge.classifier import open_classifier
from nsl.export import bundle as bundle_meta
from nsl.export.calibration import DEFAULT_CALIB, calibration_images
from nsl.export.formats import ExportContext, build_format, select_formats
from nsl.export.images import load_images
from nsl.export.qat import QAT_LR
from nsl.export.report import render_report
from nsl.export.source import ExportSource, resolve_source
from nsl.export.verify import LATENCY_RUNS, check_gate, evaluate_file, predict_all, probability_metrics
from nsl.errors import NslError
from nsl.fileio import atomic_dir, scratch_dir, write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportOptions:
    """Everything ``nsl export`` accepts (see export.commands for the flags)."""

    path: str
    data: str | None = None
    labels: str = "nsl36"
    out: str | None = None
    force: bool = False
    formats: tuple[str, ...] = ("tflite", "onnx")
    fp16: bool = False
    int8: bool = False
    calib: int = DEFAULT_CALIB
    qat: int = 0
    qat_lr: float = QAT_LR
    max_drop: float = 1.0
    allow_drop: bool = False
    latency_runs: int = LATENCY_RUNS
    trust_model: bool = False     # load a model file that is not the native format, outside safe mode


def _check_model(model, source: ExportSource) -> ExportSource:
    """Output size must equal the label count; a .keras file's input size becomes imgsz."""
    outputs = int(model.output_shape[-1])
    if outputs != len(source.labels):
        raise NslError(f"{source.model_path}: the model has {outputs} outputs but there are {len(source.labels)} "
                       f"labels (pass the labels it was trained with: --labels nsl36|auto|CSV)")
    size = int(model.input_shape[1])
    if not source.from_run:
        return source.with_imgsz(size)
    if size != source.options.model.imgsz:
        raise NslError(f"{source.model_path}: model input is {size} px but the run's config says imgsz "
                       f"{source.options.model.imgsz} (a damaged run folder?)")
    return source


def _keras_reference(model, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, dict]:
    """The Keras model's probabilities on the test images (the reference every file is compared with)."""
    probs = predict_all(_KerasPredictor(model), images)
    metrics = probability_metrics(probs, labels, None)
    return probs, {"top1": metrics["top1"], "top3": metrics["top3"], "n_images": metrics["n_images"]}


class _KerasPredictor:
    def __init__(self, model):
        self._model = model

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._model(images.astype(np.float32), training=False), np.float32)


def _calibration(options: ExportOptions, source: ExportSource) -> np.ndarray | None:
    if not (options.int8 or options.qat):
        return None
    return calibration_images(source.train, options.calib, len(source.labels), source.options.crop,
                              source.data_root, source.options.hparams.seed)


def _build_and_evaluate(options: ExportOptions, source: ExportSource, model, calibration: np.ndarray | None,
                        tmp: Path, work: Path, test: tuple[np.ndarray, np.ndarray],
                        keras_probs: np.ndarray) -> dict[str, dict]:
    """Convert every selected format into ``tmp`` and measure each file; returns metadata ``files``."""
    from nsl.export.converters import to_savedmodel
    from nsl.export.qat import qat_savedmodel

    crop = source.options.crop
    selected = select_formats(list(options.formats), options.fp16, options.int8, options.qat > 0)
    ctx = ExportContext(work, to_savedmodel(model, work / "saved_model"), calibration)
    if options.qat:
        ctx.qat_saved_model = qat_savedmodel(model, source.train, source.options, options.qat, calibration,
                                             work / "qat_saved_model", options.qat_lr)
    files = {}
    for fmt in selected:
        path = build_format(fmt, ctx, tmp)
        if fmt.fmt == "onnx":
            bundle_meta.stamp_onnx_labels(path, source.labels, crop)
        metrics, _ = evaluate_file(path, *test, keras_probs, options.latency_runs)
        files[fmt.name] = bundle_meta.file_entry(path, fmt.fmt, fmt.precision, open_classifier(path).quantization(),
                                                 metrics, fmt.qat)
    return files


def _export_cnn(options: ExportOptions, source: ExportSource, tmp: Path, work: Path) -> tuple:
    """The CNN's files -> (entries, Keras figures, gate failures, calibration size, source checked)."""
    from nsl.train.model import load_classifier

    model = load_classifier(source.model_path, options.trust_model)
    source = _check_model(model, source)
    calibration = _calibration(options, source)
    test = load_images(source.test, source.options.crop, source.data_root, what="test images")
    keras_probs, keras_metrics = _keras_reference(model, *test)
    log.info("Keras model: top1 %.4f top3 %.4f on %d test images", keras_metrics["top1"], keras_metrics["top3"],
             keras_metrics["n_images"])
    files = _build_and_evaluate(options, source, model, calibration, tmp, work, test, keras_probs)
    float_top1 = {fmt: keras_metrics["top1"] for fmt in options.formats}
    failures = check_gate(files, float_top1, options.max_drop, options.allow_drop)
    return files, keras_metrics, failures, 0 if calibration is None else len(calibration), source


def _add_landmarks(metadata: dict, options: ExportOptions, source: ExportSource, tmp: Path, work: Path) -> None:
    """The run's landmark model (and the fusion rule) into the bundle; schema 2 says a bundle holds more than a CNN."""
    from nsl.export.landmark_export import export_landmarks, fusion_section

    files, section, failures = export_landmarks(source.run, options, source.labels, tmp, work)
    metadata["files"].update(files)
    metadata["schema"] = 2
    metadata["models"] = {"landmarks": section}
    fusion = fusion_section(source.run) if source.model_path is not None else None
    if fusion:
        metadata["fusion"] = fusion
    metadata["export"]["gate_failures"] += failures


def run_export(options: ExportOptions) -> tuple[Path, dict]:
    """Export, verify and write the bundle; returns (bundle folder, metadata). Raises GateError on a drop."""
    source = resolve_source(options.path, options.data, options.labels)
    out = Path(options.out) if options.out else source.default_out
    bundle_meta.check_output(out, options.force)
    with scratch_dir("nsl-export-") as work, atomic_dir(out, options.force) as tmp:
        files, keras_metrics, failures, calibrated = {}, {}, [], 0
        if source.model_path is not None:
            files, keras_metrics, failures, calibrated, source = _export_cnn(options, source, tmp, Path(work))
        settings = {"calibration_images": calibrated, "qat_epochs": options.qat,
                    "qat_lr": options.qat_lr if options.qat else None, "max_drop": options.max_drop,
                    "gate_failures": failures}
        metadata = bundle_meta.build_metadata(source.labels, source.options.crop, files, keras_metrics, source.name,
                                              settings)
        if source.run is not None and source.run.landmark_model.is_file():
            _add_landmarks(metadata, options, source, tmp, Path(work))
        bundle_meta.write_metadata(tmp, metadata)
        write_text(tmp / "export_report.md", render_report(metadata))
    log.info("bundle: %s (%d files)", out, len(files))
    return out, metadata
