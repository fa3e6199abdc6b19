"""One training run end to end: data -> split -> model -> phases -> best model -> test metrics -> report.

The run directory (docs/ARCHITECTURE.md) is filled as the run goes, each file written atomically, so an
interrupted run can be resumed (``resume_run``) and a finished one evaluated again (``nsl val``).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np

from nsl.config import save_config
from nsl.errors import ConfigError, NslError
from nsl.fileio import read_json, write_json
from nsl.labels import Label, labels_from_dicts, labels_to_dicts
from nsl.samples import load_split, save_split

log = logging.getLogger(__name__)


def new_run_dir(project: str | Path, name: str) -> Path:
    """``project/name``, or ``name2``, ``name3``, ... when taken (Ultralytics style)."""
    project = Path(project)
    candidate, number = project / name, 2
    while candidate.exists():
        candidate, number = project / f"{name}{number}", number + 1
    candidate.mkdir(parents=True)
    return candidate


def set_up_tensorflow(config: dict) -> None:
    """Threads, seeds and the dtype policy, before any model is built."""
    import tensorflow as tf
    import tf_keras as keras

    if config.get("workers"):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(config["workers"]))
        except RuntimeError:  # already initialised in this process (tests): keep what it has
            pass
    seed = int(config["seed"])
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def load_data(config: dict) -> tuple[list[Label], dict]:
    """Scan and split the data of ``config['data']`` (nothing written yet)."""
    from nsl.dataset import load_for_training
    from nsl.train.split import make_split

    index = load_for_training(Path(config["data"]).expanduser().resolve(), config)
    split = make_split(index.samples, config)
    for name in ("train", "val"):
        if not split.get(name):
            raise NslError(f"{config['data']}: the {name} split is empty ({len(index.samples)} images, "
                           f"split_ratios={config['split_ratios']}); add images or change split_ratios")
    log.info("data: %s (%s layout): %d classes, train/val/test %d/%d/%d images", index.root, index.layout,
             len(index.labels), len(split["train"]), len(split["val"]), len(split.get("test", [])))
    return index.labels, split


def write_run_inputs(run_dir: Path, config: dict, labels: list[Label], split: dict) -> None:
    """config.yaml, labels.json and split.csv: what every later step of the run reads."""
    save_config(config, run_dir / "config.yaml")
    write_json(run_dir / "labels.json", labels_to_dicts(labels))
    save_split(split, run_dir / "split.csv")


def load_run(run_dir: str | Path) -> tuple[dict, list[Label], dict]:
    """The saved config, labels and split of a run directory (one-line error when it is not one)."""
    import yaml

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise NslError(f"{run_dir}: not a run directory (no config.yaml; make one with 'nsl train')")
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    if not (run_dir / "labels.json").is_file():
        raise NslError(f"{run_dir / 'labels.json'}: missing (the run stopped before its data was prepared)")
    return config, labels_from_dicts(read_json(run_dir / "labels.json")), load_split(run_dir / "split.csv")


def fit_data(config: dict, split: dict, num_classes: int):
    """Training and validation datasets, steps per epoch and class weights for train.trainer."""
    from nsl.train.pipeline import class_weights, make_dataset
    from nsl.train.trainer import FitData

    one_hot = num_classes if float(config["label_smoothing"]) else 0
    steps = config.get("steps_per_epoch")
    return FitData(
        train=make_dataset(split["train"], config, training=True, repeat=bool(steps), one_hot=one_hot),
        val=make_dataset(split["val"], config, training=False, one_hot=one_hot),
        steps_per_epoch=int(steps) if steps else None,
        class_weight=class_weights(split["train"], num_classes, str(config["class_weights"])))


def _dropout(config: dict) -> float:
    return float(config["single"]["dropout"] if config["strategy"] == "single" else config["dropout"])


def train_run(config: dict, run_dir: str | Path | None = None, extra_callbacks=(),
              split_of: str | Path | None = None) -> Path:
    """A new run: ``config`` resolved (nsl.config.resolve); ``run_dir`` default project/name[N];
    ``split_of``: a run directory whose labels and split this run reuses instead of splitting the data.
    The data and the model are checked before the run directory is made, so a mistake leaves nothing behind."""
    from nsl.train.checkpoint import TrainState, save_checkpoint
    from nsl.train.model import build_classifier
    from nsl.train.trainer import distribution_scope, use_mixed_precision

    set_up_tensorflow(config)
    labels, split = load_run(split_of)[1:] if split_of else load_data(config)
    use_mixed_precision(str(config["mixed_precision"]))
    with distribution_scope():
        model = build_classifier(config, len(labels), dropout=_dropout(config))
        plan = _plan(model, config, labels, split, extra_callbacks)
        run_dir = Path(run_dir) if run_dir else new_run_dir(config["project"], config["name"])
        run_dir.mkdir(parents=True, exist_ok=True)
        log.info("run: %s", run_dir)
        write_run_inputs(run_dir, config, labels, split)
        state = TrainState()
        save_checkpoint(run_dir, None, state)
        _train_and_finish(model, config, labels, split, run_dir, state, [], plan)
    return run_dir


def resume_run(run_dir: str | Path, extra_callbacks=()) -> Path:
    """Continue an interrupted run at the phase and epoch of its last checkpoint."""
    from nsl.train.checkpoint import load_last_model, load_state
    from nsl.train.model import build_classifier
    from nsl.train.trainer import distribution_scope, use_mixed_precision

    run_dir = Path(run_dir)
    config, labels, split = load_run(run_dir)
    state = load_state(run_dir)
    if state.finished and (run_dir / "metrics.json").is_file():
        log.info("%s: this run has finished already (see %s)", run_dir, run_dir / "report.md")
        return run_dir
    set_up_tensorflow(config)
    use_mixed_precision(str(config["mixed_precision"]))
    history_path = run_dir / "history.json"
    history = [h for h in read_json(history_path) if h["epoch"] <= state.epoch] if history_path.is_file() else []
    log.info("resuming %s at phase %d, epoch %d", run_dir, state.phase + 1, state.epoch + 1)
    with distribution_scope():
        model = load_last_model(run_dir) if state.epoch else None
        if model is None:
            model = build_classifier(config, len(labels), dropout=_dropout(config))
            state.phase = state.phase_epoch = 0
        plan = _plan(model, config, labels, split, extra_callbacks)
        _train_and_finish(model, config, labels, split, run_dir, state, history, plan)
    return run_dir


def _plan(model, config: dict, labels, split, extra_callbacks):
    """Phases, options and datasets, checked against the model (every phase's ``trainable`` must resolve)."""
    from nsl.train.phases import phases_from_config, trainable_layers
    from nsl.train.trainer import TrainOptions

    phases = phases_from_config(config)
    for phase in phases:
        try:
            trainable_layers(model, phase.trainable)
        except ConfigError as err:
            raise ConfigError(f"config key 'phases', phase '{phase.name}': {err}") from None
    options = TrainOptions.from_config(config, extra_callbacks=list(extra_callbacks))
    return phases, options, fit_data(config, split, len(labels))


def _train_and_finish(model, config, labels, split, run_dir: Path, state, history, plan) -> None:
    from nsl.train.trainer import train_phases

    phases, options, data = plan
    try:
        model = train_phases(model, phases, data, run_dir, state, history, options)
    except KeyboardInterrupt:
        log.warning("interrupted after epoch %d; the run is saved, continue it with: nsl train --resume %s",
                    state.epoch, run_dir)
        raise
    finish_run(model, config, labels, split, run_dir, history, phases)


def float32_copy(model, config: dict, num_classes: int):
    """The same classifier rebuilt in float32 (no mixed-precision casts, default trainable flags) with
    ``model``'s weights: what best.keras holds for export."""
    import tf_keras as keras

    from nsl.train.model import build_classifier

    keras.mixed_precision.set_global_policy("float32")
    clean = build_classifier({**config, "weights": "none"}, num_classes, dropout=_dropout(config))
    clean.set_weights(model.get_weights())
    return clean


def finish_run(model, config, labels, split, run_dir: Path, history: list, phases) -> dict:
    """Save the best model as a clean float32 graph, evaluate it on the test split, write the report."""
    from nsl.train.checkpoint import save_model
    from nsl.train.evaluate import evaluate
    from nsl.train.report import write_report

    final = float32_copy(model, config, len(labels))
    save_model(final, run_dir / "best.keras")
    write_json(run_dir / "history.json", history)
    test, source = (split["test"], "test split") if split.get("test") else (split["val"], "val split (no test split)")
    metrics = evaluate(final, test, config, labels, run_dir / "metrics.json", source=source)
    write_report(run_dir, config, history, metrics, labels, phases)
    return metrics
