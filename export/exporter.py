"""``nsl export``: a trained model -> a verified model bundle, written whole or not at all.

    source (run or .keras) -> SavedModel (+ the PTQ-remedied one for int8) -> each selected format
    (formats.FORMATS) -> labels into ONNX files -> every file through its device runtime on the gate images
    (everything calibration did not use) -> int8 gate (fidelity to the Keras model, nsl.export.verify.Gate),
    QAT when PTQ misses it and --qat-fallback asks -> the run's landmark model, gated the same way
    (nsl.export.landmark_export) -> metadata.json + report
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsl.edge.classifier import open_classifier
from nsl.export import bundle as bundle_meta
from nsl.export.calibration import calibration_images, stratified_sample
from nsl.export.formats import ExportContext, build_format, default_onnx_weight_bits, select_formats
from nsl.export.ptq import DEFAULT_REMEDY, remedied_savedmodels
from nsl.export.qat import QAT_FALLBACK_EPOCHS, QAT_LR
from nsl.export.report import render_report
from nsl.export.source import ExportSource, resolve_source
from nsl.export.verify import (LATENCY_RUNS, MAX_DISTANCE, MAX_DROP, MIN_AGREEMENT, Gate, GateImages, check_gate,
                               evaluate_file, gate_parts, load_gate_images, predict_all, probability_metrics)
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
    calib: int | None = None              # None: adapts to the training split (calibration.default_per_class)
    qat: int = 0
    qat_lr: float = QAT_LR
    qat_fallback: int = QAT_FALLBACK_EPOCHS  # QAT epochs when a post-training int8 file misses the gate (0: off)
    remedy: str = DEFAULT_REMEDY
    onnx_calibration: str = "minmax"
    onnx_weight_bits: int | None = None     # None: 7 with remedy 'round', else 8 (formats.default_onnx_weight_bits)
    max_drop: float = MAX_DROP
    min_agreement: float = MIN_AGREEMENT
    max_distance: float = MAX_DISTANCE
    allow_drop: bool = False
    latency_runs: int = LATENCY_RUNS
    trust_model: bool = False     # load a model file that is not the native format, outside safe mode

    @property
    def onnx_bits(self) -> int:
        return self.onnx_weight_bits or default_onnx_weight_bits(self.remedy)

    @property
    def gate(self) -> Gate:
        return Gate(self.max_drop, self.min_agreement, self.max_distance)


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


def _keras_reference(model, gate: GateImages) -> tuple[np.ndarray, dict]:
    """The Keras model's probabilities on the gate images (the reference every file is compared with)."""
    probs = predict_all(_KerasPredictor(model), gate.images)
    metrics = probability_metrics(probs, gate.labels, None, gate.accuracy_count)
    return probs, {"top1": metrics["top1"], "top3": metrics["top3"], "n_images": metrics["n_images"]}


class _KerasPredictor:
    def __init__(self, model):
        self._model = model

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._model(images.astype(np.float32), training=False), np.float32)


def _calibration(options: ExportOptions, source: ExportSource) -> tuple[list, np.ndarray | None, dict]:
    """(chosen training samples, their crops, the record for metadata); nothing without int8 or QAT."""
    if not (options.int8 or options.qat):
        return [], None, {"images": 0}
    seed = source.options.hparams.seed
    chosen = stratified_sample(source.train, options.calib, len(source.labels), seed)
    images = calibration_images(chosen, source.options.crop, source.data_root)
    return chosen, images, {"images": len(images), "per_class": len(chosen) // len(source.labels), "seed": seed,
                            "requested": options.calib}


def _gate_images(source: ExportSource, calibration: list) -> GateImages:
    """Every image calibration did not use: test, validation, and unused training images when those are few."""
    split = {"train": source.train, "val": list(source.val), "test": source.test}
    gate = load_gate_images(gate_parts(split, calibration), source.options.crop, source.data_root)
    log.info("gate images: %s", gate.describe())
    return gate


def _measure(path: Path, fmt, source: ExportSource, gate: GateImages, keras_probs: np.ndarray,
             latency_runs: int) -> dict:
    """One built file: labels stamped into an ONNX file, measured on the gate images -> its ``files`` entry."""
    if fmt.fmt == "onnx":
        bundle_meta.stamp_onnx_labels(path, source.labels, source.options.crop)
    metrics, _ = evaluate_file(path, gate, keras_probs, latency_runs)
    return bundle_meta.file_entry(path, fmt.fmt, fmt.precision, open_classifier(path).quantization(), metrics,
                                  fmt.qat)


def _build_and_evaluate(options: ExportOptions, source: ExportSource, model, calibration: np.ndarray | None,
                        tmp: Path, work: Path, gate: GateImages,
                        keras_probs: np.ndarray) -> tuple[dict[str, dict], ExportContext, dict]:
    """Convert every selected format into ``tmp`` and measure each file -> (metadata ``files``, the context,
    the PTQ remedy's record)."""
    from nsl.export.converters import to_savedmodel
    from nsl.export.qat import qat_savedmodel

    selected = select_formats(list(options.formats), options.fp16, options.int8, options.qat > 0)
    ptq_saved, remedy = remedied_savedmodels(model, calibration if options.int8 else None, options.remedy,
                                             options.formats, options.onnx_bits, work)
    remedy["onnx_calibration"] = options.onnx_calibration
    ctx = ExportContext(work, to_savedmodel(model, work / "saved_model"), calibration, ptq_saved_models=ptq_saved,
                        onnx_calibration=options.onnx_calibration, onnx_weight_bits=options.onnx_bits)
    if options.qat:
        ctx.qat_saved_model = qat_savedmodel(model, source.train, source.options, options.qat, calibration,
                                             work / "qat_saved_model", options.qat_lr)
    files = {fmt.name: _measure(build_format(fmt, ctx, tmp), fmt, source, gate, keras_probs, options.latency_runs)
             for fmt in selected}
    return files, ctx, remedy


def _qat_fallback(options: ExportOptions, source: ExportSource, model, ctx: ExportContext, tmp: Path,
                  gate: GateImages, keras_probs: np.ndarray, files: dict[str, dict]) -> dict | None:
    """``--qat-fallback EPOCHS``: when a post-training int8 file misses the gate (and no --qat was asked for),
    QAT for that many epochs; the QAT int8 file of that format replaces the post-training one when it is closer
    to the float model (smaller mean distance), else it is dropped. Returns the record (None: not run)."""
    from nsl.export.formats import FORMATS
    from nsl.export.qat import qat_savedmodel

    missed = options.gate.failures(files)
    failing = [name for name in files if any(line.startswith(name + ":") for line in missed)]
    if not failing or options.qat or options.qat_fallback < 1:
        return None
    log.warning("int8 gate: post-training quantisation missed it (%s); quantisation-aware training for %d "
                "epoch(s)", "; ".join(missed), options.qat_fallback)
    ctx.qat_saved_model = qat_savedmodel(model, source.train, source.options, options.qat_fallback,
                                         ctx.calibration, ctx.work / "qat_saved_model", options.qat_lr)
    record = {"epochs": options.qat_fallback, "lr": options.qat_lr, "ptq_failures": missed, "replaced": {},
              "kept": {}}
    for name in failing:
        fmt = next(f for f in FORMATS if f.qat and f.fmt == files[name]["format"])
        entry = _measure(build_format(fmt, ctx, tmp), fmt, source, gate, keras_probs, options.latency_runs)
        if entry["metrics"]["fidelity"]["mean_distance"] < files[name]["metrics"]["fidelity"]["mean_distance"]:
            files[fmt.name] = entry
            record["replaced"][name] = {"by": fmt.name, "metrics": files.pop(name)["metrics"]}
            (tmp / name).unlink()
        else:
            record["kept"][name] = {"qat_file": fmt.name, "qat_metrics": entry["metrics"]}
            (tmp / fmt.name).unlink()
        log.warning("int8 gate: %s %s", name, f"replaced by {fmt.name}" if name in record["replaced"]
                    else f"kept: {fmt.name} was no closer to the float model")
    return record


def _export_cnn(options: ExportOptions, source: ExportSource, tmp: Path, work: Path) -> tuple:
    """The CNN's files -> (entries, Keras figures, gate failures, settings for metadata, source checked)."""
    from nsl.train.model import load_classifier

    model = load_classifier(source.model_path, options.trust_model)
    source = _check_model(model, source)
    chosen, calibration, calibration_record = _calibration(options, source)
    gate = _gate_images(source, chosen)
    keras_probs, keras_metrics = _keras_reference(model, gate)
    log.info("Keras model: top1 %.4f top3 %.4f on %d test images", keras_metrics["top1"], keras_metrics["top3"],
             keras_metrics["n_images"])
    files, ctx, remedy = _build_and_evaluate(options, source, model, calibration, tmp, work, gate, keras_probs)
    fallback = _qat_fallback(options, source, model, ctx, tmp, gate, keras_probs, files)
    failures = check_gate(files, options.gate, options.allow_drop)
    settings = {"calibration_images": calibration_record["images"], "calibration": calibration_record,
                "ptq": remedy, "qat_fallback": fallback, "gate": {**options.gate.to_dict(), "images": gate.parts}}
    return files, keras_metrics, failures, settings, source


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
    metadata["export"].setdefault("gate", options.gate.to_dict())


def run_export(options: ExportOptions) -> tuple[Path, dict]:
    """Export, verify and write the bundle; returns (bundle folder, metadata). Raises GateError on a miss."""
    options.gate  # the thresholds are checked before anything is converted
    source = resolve_source(options.path, options.data, options.labels)
    out = Path(options.out) if options.out else source.default_out
    bundle_meta.check_output(out, options.force)
    with scratch_dir("nsl-export-") as work, atomic_dir(out, options.force) as tmp:
        files, keras_metrics, failures, cnn_settings = {}, {}, [], {"calibration_images": 0}
        if source.model_path is not None:
            files, keras_metrics, failures, cnn_settings, source = _export_cnn(options, source, tmp, Path(work))
        settings = {**cnn_settings, "qat_epochs": options.qat, "qat_lr": options.qat_lr if options.qat else None,
                    "max_drop": options.max_drop, "gate_failures": failures}
        metadata = bundle_meta.build_metadata(source.labels, source.options.crop, files, keras_metrics, source.name,
                                              settings)
        if source.run is not None and source.run.landmark_model.is_file():
            _add_landmarks(metadata, options, source, tmp, Path(work))
        bundle_meta.write_metadata(tmp, metadata)
        write_text(tmp / "export_report.md", render_report(metadata))
    log.info("bundle: %s (%d files)", out, len(files))
    return out, metadata
