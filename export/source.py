"""What an export starts from: a run folder made by ``nsl train``, or a ``.keras`` file plus a data folder.

Either way the result is the same: the model file, the resolved configuration (crop preprocessing, imgsz),
the labels, and the training and test samples (calibration and the validation gate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nsl import config as nsl_config
from nsl.errors import NslError
from nsl.fileio import read_json
from nsl.labels import Label, labels_from_dicts
from nsl.samples import Sample, load_split

log = logging.getLogger(__name__)

MODEL_FILE = "best.keras"


@dataclass(frozen=True)
class ExportSource:
    """A model with everything needed to calibrate, validate and describe it."""

    model_path: Path
    config: dict
    labels: list[Label]
    train: list[Sample]
    test: list[Sample]
    name: str                 # what metadata.json records as source_run
    default_out: Path         # RUN_DIR/bundle, or beside the .keras file
    from_run: bool = True     # False: a .keras file whose input size sets imgsz

    @property
    def data_root(self) -> str | None:
        return self.config.get("data")


def from_run(run_dir: Path) -> ExportSource:
    """A finished ``nsl train`` run: best.keras, config.yaml, labels.json, split.csv."""
    model = run_dir / MODEL_FILE
    if not run_dir.is_dir():
        raise NslError(f"{run_dir}: run folder not found (pass the folder 'nsl train' made, or a .keras file)")
    if not model.is_file():
        raise NslError(f"{run_dir}: no {MODEL_FILE} in this run (training did not finish a first epoch; "
                       f"train it, or export a .keras file with --data DIR)")
    for name in ("config.yaml", "labels.json", "split.csv"):
        if not (run_dir / name).is_file():
            raise NslError(f"{run_dir / name}: missing (is this a folder made by 'nsl train'?)")
    config = nsl_config.resolve(run_dir / "config.yaml")
    split = load_split(run_dir / "split.csv")
    return ExportSource(model, config, labels_from_dicts(read_json(run_dir / "labels.json")), split["train"],
                        split["test"], str(run_dir.resolve()), run_dir / "bundle")


def from_keras_file(model_path: Path, data: str | None, labels_spec: str) -> ExportSource:
    """A .keras model the trainer did not make: ``data`` is read and split as the trainer would."""
    from nsl.dataset import scan_dataset
    from nsl.train.split import make_split

    if not data:
        raise NslError(f"{model_path}: a .keras file needs --data DIR (labelled images for calibration and "
                       f"validation)")
    index = scan_dataset(data, labels_spec)
    config = nsl_config.resolve(overrides={"data": str(data), "labels": str(labels_spec)})
    split = make_split(index.samples, config)
    return ExportSource(model_path, config, index.labels, split["train"], split["test"], str(model_path.resolve()),
                        model_path.with_name(model_path.stem + "_bundle"), from_run=False)


def resolve_source(path: str, data: str | None, labels_spec: str) -> ExportSource:
    """A run folder or a .keras file (whose imgsz the exporter takes from the model's input layer)."""
    target = Path(path)
    if target.suffix == ".keras":
        if not target.is_file():
            raise NslError(f"{target}: model file not found")
        return from_keras_file(target, data, labels_spec)
    return from_run(target)
