"""The run directory made by ``nsl train``: the one place that knows its file names and how to read them.

    RUN_DIR/
      config.yaml            the resolved options (nsl.config.save_config); read back through the resolver
      plan.json              the epochs each phase runs, and how ``epochs`` was meant (total or per phase)
      labels.json            [{"index": 0, "name": "क", "roman": "ka"}, ...]
      split.csv              path,label,subset,group,split (nsl.samples)
      best.keras             best model of the run (float32, 0..255 RGB in, softmax out)
      checkpoints/last.keras + checkpoints/state.json     resume point (TrainState)
      history.json, metrics.json, report.md, training_curves.png, confusion_matrix.png, tensorboard/
      landmarks.keras, landmarks.npz, landmarks_history.json, landmarks_metrics.json   the landmark model
                             (models=landmarks|both), the features of every split it used, its record
      fusion.json            models=both: the fusion weight chosen on the validation split, and every model's figures
      environment.json       where it trained: devices, TensorFlow/CUDA/cuDNN builds, dtype policy, strategy,
                             replicas, global batch, threads (each resumed session in front of the earlier ones)
      bundle/                the default output of ``nsl export``

No TensorFlow here: the export side, the benchmarks, ``nsl val BUNDLE`` on a device and the scripts read runs
through ``RunDir``; the train side writes them through it. Options are always read through
``nsl.config.resolve`` on top of today's defaults, so a run made before a key existed still exports and resumes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from nsl.errors import NslError
from nsl.fileio import read_json, write_json
from nsl.labels import Label, labels_from_dicts, labels_to_dicts
from nsl.samples import Sample, load_split, save_split

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Where training stands; ``phase_epoch`` epochs of phase ``phase`` are done, ``epoch`` in all."""

    phase: int = 0
    phase_epoch: int = 0
    epoch: int = 0
    lr: float | None = None
    best_val_loss: float | None = None
    best_epoch: int = 0
    wait: int = 0
    stopped_early: bool = False
    finished: bool = False
    wall_s: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "TrainState":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RunDir:
    """A run folder; ``RunDir.open(path)`` checks that it is one, ``RunDir.create(project, name)`` makes a new one."""

    path: Path

    CONFIG = "config.yaml"
    LABELS = "labels.json"
    SPLIT = "split.csv"
    BEST = "best.keras"
    HISTORY = "history.json"
    METRICS = "metrics.json"
    REPORT = "report.md"
    CURVES = "training_curves.png"
    CONFUSION = "confusion_matrix.png"
    CHECKPOINTS = "checkpoints"
    LAST = "last.keras"
    STATE = "state.json"
    TENSORBOARD = "tensorboard"
    BUNDLE = "bundle"
    LANDMARK_MODEL = "landmarks.keras"
    LANDMARK_DATA = "landmarks.npz"
    LANDMARK_HISTORY = "landmarks_history.json"
    LANDMARK_METRICS = "landmarks_metrics.json"
    FUSION = "fusion.json"
    FUSION_INPUTS = "fusion_inputs.npz"
    FOLDS = "folds"
    PLAN = "plan.json"
    ENVIRONMENT = "environment.json"

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # --- making and finding runs ---
    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run (its config and labels written); a one-line error otherwise."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise NslError(f"{run.path}: run folder not found (pass the folder 'nsl train' made)")
        if not run.config_file.is_file():
            raise NslError(f"{run.path}: not a run directory (no {cls.CONFIG}; make one with 'nsl train')")
        if not run.labels_file.is_file():
            raise NslError(f"{run.labels_file}: missing (the run stopped before its data was prepared)")
        return run

    @classmethod
    def next_free(cls, project: str | Path, name: str) -> "RunDir":
        """``project/name``, or ``name2``, ``name3``, ... when taken (Ultralytics style); not created yet."""
        project = Path(project)
        candidate, number = project / name, 2
        while candidate.exists():
            candidate, number = project / f"{name}{number}", number + 1
        return cls(candidate)

    @classmethod
    def for_new_run(cls, project: str | Path, name: str, exist_ok: bool = False) -> "RunDir":
        """Where a new run goes: ``project/name`` itself with ``exist_ok`` (an earlier run's results cleared; a
        folder that is not a run is refused), else the next free ``name``, ``name2``, ..."""
        if not exist_ok:
            return cls.next_free(project, name)
        run = cls(Path(project) / name)
        if run.path.is_dir() and any(run.path.iterdir()):
            if not run.config_file.is_file():
                raise NslError(f"{run.path}: exists and is not a run folder; exist_ok reuses only a run's folder "
                               f"(choose another name)")
            log.warning("exist_ok: reusing %s; its earlier results are replaced", run.path)
            run.clear_results()
        return run

    # --- paths ---
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def labels_file(self) -> Path:
        return self.path / self.LABELS

    @property
    def split_file(self) -> Path:
        return self.path / self.SPLIT

    @property
    def best_model(self) -> Path:
        return self.path / self.BEST

    @property
    def history_file(self) -> Path:
        return self.path / self.HISTORY

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def report_file(self) -> Path:
        return self.path / self.REPORT

    @property
    def curves_png(self) -> Path:
        return self.path / self.CURVES

    @property
    def confusion_png(self) -> Path:
        return self.path / self.CONFUSION

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def last_model(self) -> Path:
        return self.checkpoint_dir / self.LAST

    @property
    def state_file(self) -> Path:
        return self.checkpoint_dir / self.STATE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def default_bundle(self) -> Path:
        return self.path / self.BUNDLE

    @property
    def landmark_model(self) -> Path:
        return self.path / self.LANDMARK_MODEL

    @property
    def landmark_data(self) -> Path:
        return self.path / self.LANDMARK_DATA

    @property
    def landmark_history_file(self) -> Path:
        return self.path / self.LANDMARK_HISTORY

    @property
    def landmark_metrics_file(self) -> Path:
        return self.path / self.LANDMARK_METRICS

    @property
    def fusion_file(self) -> Path:
        return self.path / self.FUSION

    @property
    def fusion_inputs_file(self) -> Path:
        """Each model's probabilities on val and test (what the fusion weight is chosen and measured on)."""
        return self.path / self.FUSION_INPUTS

    @property
    def folds_dir(self) -> Path:
        """Runs on part of the training groups, whose answers on the other part choose the fusion weight."""
        return self.path / self.FOLDS

    @property
    def plan_file(self) -> Path:
        return self.path / self.PLAN

    @property
    def environment_file(self) -> Path:
        return self.path / self.ENVIRONMENT

    def environment(self) -> dict | None:
        """Where the run trained (devices, builds, dtype policy, strategy, replicas, batch, threads): one record
        per session, the last first; None for a run made before it was written."""
        return read_json(self.environment_file) if self.environment_file.is_file() else None

    def write_environment(self, record: dict) -> None:
        """Adds this session's record (a resumed run may continue on another machine) in front of earlier ones."""
        earlier = self.environment() or {}
        write_json(self.environment_file, {**record, "earlier_sessions": [
            {k: v for k, v in earlier.items() if k != "earlier_sessions"}, *earlier.get("earlier_sessions", [])]
            if earlier else []})

    def fusion(self) -> dict | None:
        return read_json(self.fusion_file) if self.fusion_file.is_file() else None

    # --- what a run holds ---
    def options(self):
        """The run's options: its config.yaml on top of today's defaults (paths not re-checked)."""
        from nsl.config import resolve

        try:
            saved = yaml.safe_load(self.config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
            raise NslError(f"{self.config_file}: cannot be read ({str(err).splitlines()[0]})") from None
        if not isinstance(saved, dict):
            raise NslError(f"{self.config_file}: expected a mapping of key: value (a damaged run folder?)")
        saved.setdefault("epochs_mode", "per_phase")  # saved before epochs meant the run's total: keep its meaning
        for key, then in (("strategy", "progressive"), ("crop", "image"), ("models", "cnn"), ("crop_mirror", False)):
            saved.setdefault(key, then)  # a config saved before the key existed (or before auto): what it meant then
        if isinstance(saved.get("landmarks"), dict):
            saved["landmarks"].setdefault("ensemble", 1)  # saved before landmark ensembles: one model
        return resolve(base=saved, check_paths=False)

    def labels(self) -> list[Label]:
        return labels_from_dicts(read_json(self.labels_file), str(self.labels_file))

    def split(self) -> dict[str, list[Sample]]:
        return load_split(self.split_file)

    def test_samples(self) -> tuple[list[Sample], str]:
        """The test split, or the validation split when the run has no test split, with what it is."""
        split = self.split()
        return (split["test"], "test split") if split.get("test") else (split["val"], "val split (no test split)")

    def state(self) -> TrainState | None:
        if not self.state_file.is_file():
            return None
        try:
            return TrainState.from_dict(read_json(self.state_file))
        except (ValueError, TypeError) as err:
            raise NslError(f"{self.state_file}: unreadable resume state ({err})") from None

    def history(self, up_to_epoch: int | None = None) -> list[dict]:
        if not self.history_file.is_file():
            return []
        history = read_json(self.history_file)
        return history if up_to_epoch is None else [h for h in history if h["epoch"] <= up_to_epoch]

    def metrics(self) -> dict:
        if not self.metrics_file.is_file():
            raise NslError(f"{self.metrics_file}: missing (the run has not finished; resume it with "
                           f"'nsl train --resume {self.path}')")
        return read_json(self.metrics_file)

    @property
    def is_finished(self) -> bool:
        return self.metrics_file.is_file() and (self.best_model.is_file() or self.landmark_model.is_file())

    @property
    def can_resume(self) -> bool:
        """Interrupted after its first checkpoint and not finished."""
        return self.state_file.is_file() and self.config_file.is_file() and not self.is_finished

    def require_model(self) -> Path:
        if not self.best_model.is_file() and self.landmark_model.is_file():
            raise NslError(f"{self.path}: a landmark-only run (models=landmarks) has no CNN ({self.BEST}); "
                           f"export it with 'nsl export {self.path}'")
        if not self.best_model.is_file():
            raise NslError(f"{self.path}: no {self.BEST} in this run (training did not finish a first epoch; "
                           f"train it, or export a .keras file with --data DIR)")
        return self.best_model

    # --- writing (the train side) ---
    def write_inputs(self, options, labels: list[Label], split: dict[str, list[Sample]]) -> None:
        """config.yaml, labels.json and split.csv: what every later step of the run reads."""
        from nsl.config import save_config

        self.path.mkdir(parents=True, exist_ok=True)
        save_config(options, self.config_file)
        write_json(self.labels_file, labels_to_dicts(labels))
        save_split(split, self.split_file)

    def write_plan(self, hparams) -> dict:
        """plan.json: the phases as they will run (``HParams.phase_plan``) and the budget they came from."""
        phases = hparams.phase_plan()
        plan = {"strategy": hparams.strategy, "epochs": hparams.epochs, "epochs_mode": hparams.epochs_mode,
                "total_epochs": sum(p.epochs for p in phases), "phases": [asdict(p) for p in phases]}
        write_json(self.plan_file, plan)
        return plan

    def clear_results(self) -> None:
        """Remove what training writes (``exist_ok``: a new run under the same name), the bundle made from it too."""
        import shutil

        for name in (self.BEST, self.HISTORY, self.METRICS, self.REPORT, self.CURVES, self.CONFUSION,
                     self.LANDMARK_MODEL, self.LANDMARK_DATA, self.LANDMARK_HISTORY, self.LANDMARK_METRICS,
                     self.FUSION, self.FUSION_INPUTS, self.PLAN, self.ENVIRONMENT, self.SPLIT, self.LABELS, self.CONFIG):
            (self.path / name).unlink(missing_ok=True)
        for name in (self.CHECKPOINTS, self.TENSORBOARD, self.BUNDLE, self.FOLDS):
            shutil.rmtree(self.path / name, ignore_errors=True)

    def write_state(self, state: TrainState) -> None:
        write_json(self.state_file, asdict(state))

    def write_history(self, history: list[dict]) -> None:
        write_json(self.history_file, history)
