"""The model bundle's ``metadata.json`` (schema 1, docs/ARCHITECTURE.md): labels, input, crop, files, provenance."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from nsl.edge.bundle import METADATA_FILE, SCHEMA
from nsl.preprocess import CropSpec
from nsl import __version__
from nsl.errors import NslError
from nsl.env import git_commit
from nsl.fileio import sha256_of, write_json
from nsl.labels import Label, labels_to_dicts

log = logging.getLogger(__name__)

def check_output(out: Path, force: bool) -> None:
    """An existing bundle is kept unless ``force``: say so before any work is done."""
    if out.exists() and not force:
        raise NslError(f"{out}: already exists (pass --force to replace it, or --out another folder)")


def stamp_onnx_labels(path: Path, labels: list[Label], crop: CropSpec) -> None:
    """Write the labels (and crop preprocessing) into an ONNX file's metadata properties, in place."""
    import onnx

    model = onnx.load(str(path))
    values = {"labels": json.dumps(labels_to_dicts(labels), ensure_ascii=False),
              "preprocess": json.dumps(crop.to_dict()), "nsl_bundle_schema": str(SCHEMA)}
    kept = [prop for prop in model.metadata_props if prop.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def file_entry(path: Path, fmt: str, precision: str, quantization: dict, metrics: dict, qat: bool) -> dict:
    """One entry of ``files``: format, precision, sha256, size, input/output quantisation and figures."""
    entry = {"format": fmt, "precision": precision, "sha256": sha256_of(path), "size_bytes": path.stat().st_size,
             "input": quantization["input"], "output": quantization["output"], "metrics": metrics}
    if qat:
        entry["qat"] = True
    return entry


def default_files(files: dict[str, dict]) -> dict[str, str]:
    """Per format: the int8 file with the best top-1 (PTQ on a tie), else the float32 file."""
    chosen = {}
    for fmt in ("tflite", "onnx"):
        candidates = [(name, e) for name, e in files.items() if e["format"] == fmt]
        int8 = [(name, e) for name, e in candidates if e["precision"] == "int8"]
        pool = int8 or [(name, e) for name, e in candidates if e["precision"] == "fp32"] or candidates
        if pool:
            chosen[fmt] = max(pool, key=lambda item: (item[1]["metrics"]["top1"], not item[1].get("qat")))[0]
    return chosen


def build_metadata(labels: list[Label], crop: CropSpec, files: dict[str, dict], keras_metrics: dict,
                   source_run: str, export_settings: dict) -> dict:
    """The whole ``metadata.json``; ``export_settings`` records how it was made (calibration, QAT, gate)."""
    return {
        "schema": SCHEMA,
        "labels": labels_to_dicts(labels),
        "input": {"height": crop.size, "width": crop.size, "channels": 3, "dtype": "float32", "layout": "NHWC",
                  "color_order": "RGB", "value_range": [0, 255]},
        "preprocess": crop.to_dict(),
        "files": files,
        "default_file": default_files(files),
        "keras_metrics": keras_metrics,
        "export": export_settings,
        "source_run": source_run,
        "package_version": __version__,
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_metadata(folder: Path, metadata: dict) -> Path:
    return write_json(folder / METADATA_FILE, metadata)
