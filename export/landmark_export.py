"""The landmark model of a run (``models=landmarks|both``) into the same bundle as the CNN: fp32 and int8 TFLite and
ONNX, each run through its device runtime on the validation + test features and gated like the CNN's files (the same
``nsl.export.verify.Gate``: agreement with the Keras landmark model, probability distance, top-1 drop).

Calibration: the training features the model learnt from (``RUN_DIR/landmarks.npz``); reference: the Keras
landmark model. The bundle's metadata gains ``models.landmarks`` (its default file per runtime, the feature layout
and normalisation of ``nsl.landmarks`` that the device must compute, its Keras figures) and, with a CNN beside it,
``fusion`` (the rule chosen on the validation split).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from nsl.edge.classifier import open_classifier
from nsl.export import bundle as bundle_meta
from nsl.export.formats import FORMATS, ExportContext, build_format
from nsl.errors import DataError
from nsl.export.verify import GateImages, check_gate, evaluate_file, probability_metrics
from nsl.landmarks import feature_spec
from nsl.labels import labels_to_dicts
from nsl.rundir import RunDir

log = logging.getLogger(__name__)

PREFIX = "landmarks_"


def landmark_formats(formats: tuple[str, ...], int8: bool) -> list:
    """The CNN's format steps (no fp16, no QAT: the file is tiny), renamed landmarks_*."""
    chosen = [f for f in FORMATS if f.fmt in formats and not f.qat and f.precision in (("fp32", "int8") if int8
                                                                                       else ("fp32",))]
    return [dataclasses.replace(f, name=PREFIX + f.name.removeprefix("model_")) for f in chosen]


def _stamp_onnx(path: Path, labels, layout: str) -> None:
    import onnx

    model = onnx.load(str(path))
    model.metadata_props.add(key="labels", value=json.dumps(labels_to_dicts(labels), ensure_ascii=False))
    model.metadata_props.add(key="features", value=json.dumps(feature_spec(layout)))
    onnx.save(model, str(path))


def _gate_features(arrays: dict) -> GateImages:
    """The landmark gate: every hand calibration did not use (calibration takes all training features), the test
    hands first (the accuracy figures), then the validation hands."""
    parts = {name: arrays[name] for name in ("test", "val") if len(arrays[name]["labels"])}
    if not parts:
        raise DataError("the run's landmarks.npz holds no test or validation hands: nothing to gate the landmark "
                        "model on (retrain with a validation split)")
    return GateImages(np.concatenate([part["features"] for part in parts.values()]).astype(np.float32),
                      np.concatenate([part["labels"] for part in parts.values()]).astype(np.int64),
                      {name: int(len(part["labels"])) for name, part in parts.items()})


def export_landmarks(run: RunDir, options, labels, tmp: Path, work: Path) -> tuple[dict, dict, list[str]]:
    """-> (file entries, the ``models.landmarks`` metadata section, gate failures)."""
    from nsl.export.converters import to_savedmodel
    from nsl.train.hands import load_arrays
    from nsl.train.model import load_classifier

    arrays = load_arrays(run)
    layout = run.options().landmarks.layout
    model = load_classifier(run.landmark_model, options.trust_model)
    test, calibration = arrays["test"], arrays["train"]["features"]
    gate = _gate_features(arrays)
    keras_probs = np.asarray(model(gate.images, training=False), np.float32)
    keras = probability_metrics(keras_probs, gate.labels, None, gate.accuracy_count)
    ctx = ExportContext(work / "landmarks", to_savedmodel(model, work / "landmarks" / "saved_model"), calibration,
                        onnx_calibration=options.onnx_calibration, onnx_weight_bits=8)
    files = {}
    for fmt in landmark_formats(options.formats, options.int8):
        path = build_format(fmt, ctx, tmp)
        if fmt.fmt == "onnx":
            _stamp_onnx(path, labels, layout)
        metrics, _ = evaluate_file(path, gate, keras_probs, options.latency_runs)
        entry = bundle_meta.file_entry(path, fmt.fmt, fmt.precision, open_classifier(path).quantization(), metrics,
                                       False)
        files[fmt.name] = {**entry, "model": "landmarks"}
    failures = check_gate(files, options.gate, options.allow_drop)
    section = {"default_file": bundle_meta.default_files(files), "features": feature_spec(layout),
               "keras_metrics": {"top1": keras["top1"], "top3": keras["top3"], "n_images": keras["n_images"],
                                 "without_hand": test["without_hand"]},
               "calibration": {"hands": int(len(calibration)) if options.int8 else 0, "split": "train"},
               "ptq": {"remedy": "none", "why": "no conv + BatchNorm layers to remedy",
                       "onnx_calibration": options.onnx_calibration, "onnx_weight_bits": 8},
               "gate": {**options.gate.to_dict(), "images": gate.parts}}
    log.info("landmark model: Keras top1 %.4f on %d test hands; gate on %s; %d files", keras["top1"],
             keras["n_images"], gate.describe(), len(files))
    return files, section, failures


def fusion_section(run: RunDir) -> dict | None:
    """The fusion rule the run chose on its validation split (None without both models)."""
    fusion = run.fusion()
    if not fusion:
        return None
    return {"rule": fusion["rule"], "weight": fusion["weight"], "chosen_on": fusion["chosen_on"],
            "test_top1": {k: v["top1"] for k, v in fusion["test"].items()}}
