"""What an export starts from: a run folder made by ``nsl train``, or a ``.keras`` file plus a data folder.

Either way the result is the same: the model file, the run's options (crop preprocessing, imgsz, seed), the
labels, and the training, validation and test samples (calibration and the int8 gate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nsl.config import resolve, updated
from nsl.errors import NslError
from nsl.labels import Label
from nsl.options import Options
from nsl.rundir import RunDir
from nsl.samples import Sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportSource:
    """A model with everything needed to calibrate, validate and describe it."""

    model_path: Path | None   # None: a landmark-only run (models=landmarks) has no CNN
    options: Options
    labels: list[Label]
    train: list[Sample]
    test: list[Sample]
    name: str                 # what metadata.json records as source_run
    default_out: Path         # RUN_DIR/bundle, or beside the .keras file
    from_run: bool = True     # False: a .keras file whose input size sets imgsz
    val: tuple[Sample, ...] = ()  # the validation split (not used for calibration: the int8 gate measures on it)

    @property
    def run(self) -> RunDir | None:
        """The run folder it came from (None for a .keras file)."""
        return RunDir(Path(self.name)) if self.from_run else None

    @property
    def data_root(self) -> str | None:
        return self.options.data.data

    def with_imgsz(self, size: int) -> "ExportSource":
        import dataclasses

        return dataclasses.replace(self, options=updated(self.options, {"imgsz": size}))


def from_run(run_dir: Path) -> ExportSource:
    """A finished ``nsl train`` run: best.keras, config.yaml, labels.json, split.csv."""
    run = RunDir.open(run_dir)
    model = None if not run.best_model.is_file() and run.landmark_model.is_file() else run.require_model()
    if not run.split_file.is_file():
        raise NslError(f"{run.split_file}: missing (is this a folder made by 'nsl train'?)")
    split = run.split()
    return ExportSource(model, run.options(), run.labels(), split["train"], split["test"], str(run.path.resolve()),
                        run.default_bundle, val=tuple(split.get("val") or ()))


def from_keras_file(model_path: Path, data: str | None, labels_spec: str) -> ExportSource:
    """A .keras model the trainer did not make: ``data`` is read and split as the trainer would."""
    from nsl.dataset import scan_dataset
    from nsl.train.split import make_split

    if not data:
        raise NslError(f"{model_path}: a .keras file needs --data DIR (labelled images for calibration and "
                       f"validation)")
    index = scan_dataset(data, labels_spec)
    options = resolve(overrides={"data": str(data), "labels": str(labels_spec)})
    split = make_split(index.samples, options.data, options.hparams.seed)
    return ExportSource(model_path, options, index.labels, split["train"], split["test"], str(model_path.resolve()),
                        model_path.with_name(model_path.stem + "_bundle"), from_run=False,
                        val=tuple(split.get("val") or ()))


def resolve_source(path: str, data: str | None, labels_spec: str) -> ExportSource:
    """A run folder or a .keras file (whose imgsz the exporter takes from the model's input layer)."""
    target = Path(path)
    if target.suffix == ".keras":
        if not target.is_file():
            raise NslError(f"{target}: model file not found")
        return from_keras_file(target, data, labels_spec)
    return from_run(target)
