"""One training run end to end: data -> split -> model -> phases -> best model -> test metrics -> report.

The run directory (``nsl.rundir.RunDir``) is filled as the run goes, each file written atomically, so an
interrupted run can be resumed (``resume_run``), a finished one evaluated again (``nsl val``), and a script can ask
for a run to exist whatever state it was left in (``ensure_run``: reuse, resume or train).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from nsl.config import to_dict
from nsl.errors import ConfigError, NslError, disk_full_message, is_disk_full
from nsl.labels import Label
from nsl.options import Options
from nsl.rundir import RunDir, TrainState

log = logging.getLogger(__name__)


def load_data(options: Options) -> tuple[list[Label], dict]:
    """Scan and split the data of ``options.data`` (nothing written yet)."""
    from nsl.dataset import load_for_training
    from nsl.train.split import make_split

    data = options.data
    if not data.data:
        raise NslError("no dataset given: pass data=FOLDER or --data FOLDER (e.g. one made by 'nsl data synth')")
    index = load_for_training(Path(data.data).expanduser().resolve(), data.labels, data.max_bad_fraction)
    split = make_split(index.samples, data, options.hparams.seed)
    if options.preprocess.crop == "hands":
        from nsl.train.hands import attach_boxes, load_hands

        split, _ = attach_boxes(split, load_hands(options))
    for name in ("train", "val"):
        if not split.get(name):
            raise NslError(f"{data.data}: the {name} split is empty ({len(index.samples)} images, "
                           f"split_ratios={list(data.split_ratios)}); add images or change split_ratios")
    log.info("data: %s (%s layout): %d classes, train/val/test %d/%d/%d images", index.root, index.layout,
             len(index.labels), len(split["train"]), len(split["val"]), len(split.get("test", [])))
    return index.labels, split


def fit_data(options: Options, split: dict, num_classes: int, batch: int | None = None):
    """Training and validation datasets (``batch``: the global batch), steps per epoch and class weights for
    nsl.train.trainer."""
    from nsl.train.pipeline import class_weights, make_dataset
    from nsl.train.trainer import FitData

    hp = options.hparams
    one_hot = num_classes if hp.label_smoothing else 0
    steps = hp.steps_per_epoch
    return FitData(
        train=make_dataset(split["train"], options, training=True, repeat=bool(steps), one_hot=one_hot, batch=batch),
        val=make_dataset(split["val"], options, training=False, one_hot=one_hot, batch=batch),
        steps_per_epoch=steps,
        class_weight=class_weights(split["train"], num_classes, hp.class_weights))


def _new_model(options: Options, num_classes: int):
    from nsl.train.model import build_classifier

    return build_classifier(options.model, num_classes, dropout=options.hparams.dropout_override)


def train_run(options: Options, run_dir: str | Path | None = None, extra_callbacks=(),
              split_of: str | Path | None = None, given: tuple | None = None, min_hands: int | None = None) -> Path:
    """A new run: ``run_dir`` default project/name[N]; ``split_of``: a run directory whose labels and split this
    run reuses instead of splitting the data; ``given``: (labels, split) to use as they are, and ``min_hands`` the
    training hands a class needs for the landmark model (the fusion folds: nsl.train.fusion_folds).
    The data and the model are checked before the run directory is made, so a mistake leaves nothing behind."""
    from nsl.train.checkpoint import save_checkpoint
    from nsl.train.distribute import Placement, use_mixed_precision
    from nsl.train.trainer import set_up_tensorflow

    from nsl.train.hands import with_auto_resolved
    from nsl.train.landmark_stage import landmark_inputs

    options = with_auto_resolved(options)
    set_up_tensorflow(options.hparams)
    placement = Placement.make(options.hparams)  # first: a multi-worker strategy must precede other ops
    if given is not None:
        labels, split = given
    elif split_of:
        source = RunDir.open(split_of)
        labels, split = source.labels(), source.split()
    else:
        labels, split = load_data(options)
    arrays = landmark_inputs(options, split, labels, min_hands)
    if options.model.models == "landmarks":
        use_mixed_precision("off")  # the landmark model is small: float32, as before placements existed
        return _landmarks_only(options, labels, split, arrays, run_dir)
    with placement.strategy.scope():
        model = _new_model(options, len(labels))
        plan = _plan(model, options, labels, split, extra_callbacks, placement=placement)
        run = _make_run(options, worker_folder(placement, run_dir), labels, split, arrays)
        record_environment(run, options, placement)
        state = TrainState()
        save_checkpoint(run, None, state)
        _train_and_finish(model, options, labels, split, run, state, [], plan)
    return finish_worker(placement, run)


def record_environment(run: RunDir, options: Options, placement) -> dict:
    """The environment block: logged, and written to the run's environment.json (the report shows it)."""
    from nsl.train.distribute import summary_lines

    record = placement.record(options.hparams)
    for line in summary_lines(record):
        log.info("%s", line)
    run.write_environment(record)
    return record


def worker_folder(placement, run_dir):
    """The chief (or a single process) writes ``run_dir``; another worker of a cluster a throw-away folder (every
    worker runs the same steps, saving included; only the chief's files are kept)."""
    import tempfile

    if placement.role.is_chief:
        return run_dir
    return Path(tempfile.mkdtemp(prefix=f"nsl-{placement.role.task_type}{placement.role.task_id}-")) / "run"


def finish_worker(placement, run: RunDir) -> Path:
    if placement.role.is_chief:
        return run.path
    shutil.rmtree(run.path.parent, ignore_errors=True)
    log.info("worker %s %d finished (the chief holds the run)", placement.role.task_type, placement.role.task_id)
    return run.path


def _make_run(options: Options, run_dir, labels, split, arrays) -> RunDir:
    """The run folder with what every later step reads (config, labels, split, landmark features)."""
    from nsl.train.hands import save_arrays

    out = options.output
    run = RunDir(Path(run_dir)) if run_dir else RunDir.for_new_run(out.project, out.name, out.exist_ok)
    run.path.mkdir(parents=True, exist_ok=True)
    wanted = Path(out.project) / out.name
    if not run_dir and run.path != wanted:
        log.warning("run: %s   (%s exists: this run is %s; pass exist_ok=true to reuse the name)",
                    run.path, wanted, run.name)
    else:
        log.info("run: %s", run.path)
    run.write_inputs(options, labels, split)
    run.write_plan(options.hparams)
    if arrays is not None:
        save_arrays(run, arrays)
    return run


def _landmarks_only(options: Options, labels, split, arrays, run_dir) -> Path:
    """models=landmarks: no CNN; the landmark model is the run's model and its metrics the run's."""
    from nsl.fileio import write_json
    from nsl.train.landmark_stage import finish_landmarks
    from nsl.train.report import write_report

    run = _make_run(options, run_dir, labels, split, arrays)
    metrics = finish_landmarks(run, options, labels, split)
    write_json(run.metrics_file, metrics)
    write_report(run, options, run.history(), metrics, labels, ())
    return run.path


def resume_run(run_dir: str | Path, extra_callbacks=(), trust_model: bool = False) -> Path:
    """Continue an interrupted run at the phase and epoch of its last checkpoint. Its model files must be in the
    native format (checked before any training) unless ``trust_model``: a run folder may come from anyone."""
    from nsl.train.checkpoint import load_last_model, load_state
    from nsl.train.distribute import Placement
    from nsl.train.model import check_keras_file
    from nsl.train.trainer import set_up_tensorflow

    run = RunDir.open(run_dir)
    for model_file in (run.last_model, run.best_model):
        if model_file.is_file():
            check_keras_file(model_file, trust_model)
    options, labels, split = run.options(), run.labels(), run.split()
    state = load_state(run)
    if state.finished and run.metrics_file.is_file():
        log.info("%s: this run has finished already (see %s)", run.path, run.report_file)
        return run.path
    if not run.plan_file.is_file():  # a run saved before plans were recorded: record how it goes on
        run.write_plan(options.hparams)
    set_up_tensorflow(options.hparams)
    placement = Placement.make(options.hparams)
    if not placement.role.is_chief:  # resumes from the chief's checkpoint, writes a copy
        copy = RunDir(worker_folder(placement, None))
        shutil.copytree(run.path, copy.path)
        run = copy
    history = run.history(up_to_epoch=state.epoch)
    log.info("resuming %s at phase %d, epoch %d", run.path, state.phase + 1, state.epoch + 1)
    with placement.strategy.scope():
        record_environment(run, options, placement)
        model = load_last_model(run, trust_model) if state.epoch else None
        if model is None:
            model = _new_model(options, len(labels))
            state.phase = state.phase_epoch = 0
        plan = _plan(model, options, labels, split, extra_callbacks, trust_model, placement)
        _train_and_finish(model, options, labels, split, run, state, history, plan)
    return finish_worker(placement, run)


def fold_run(options: Options, folder: Path, labels, split: dict) -> None:
    """A fusion fold's run (nsl.train.fusion_folds) on the ``split`` given: kept when its answers are saved, resumed
    after an interruption, else trained from the start (a class may have a single training hand in a fold)."""
    fold = RunDir(Path(folder))
    if fold.fusion_inputs_file.is_file():
        log.info("reusing %s (finished)", fold.path)
        return
    if fold.can_resume:
        resume_run(fold.path)
    if not fold.fusion_inputs_file.is_file():  # new, stopped before its first checkpoint, or before its answers
        shutil.rmtree(fold.path, ignore_errors=True)
        train_run(options, fold.path, given=(labels, split), min_hands=1)


def ensure_run(options: Options, run_dir: str | Path, extra_callbacks=(), trust_model: bool = False) -> Path:
    """``run_dir`` finished with ``options``: reused when it is, resumed when it was interrupted, trained when it is
    absent or stopped before its first checkpoint. A run made with other options is an error, never overwritten."""
    from nsl.train.hands import with_auto_resolved

    options = with_auto_resolved(options)
    run = RunDir(Path(run_dir))
    if run.config_file.is_file():
        saved = run.options()
        if to_dict(saved) != to_dict(options):
            changed = [k for k, v in to_dict(options).items() if to_dict(saved).get(k) != v]
            raise NslError(f"{run.path}: exists with other settings ({', '.join(changed[:5])}); "
                           f"choose another --name, or delete it")
    if run.is_finished:
        log.info("reusing %s (finished)", run.path)
        return run.path
    if run.can_resume:
        return resume_run(run.path, extra_callbacks, trust_model)
    if run.path.exists():
        log.info("%s stopped before its first checkpoint: starting it again", run.path)
        shutil.rmtree(run.path)
    return train_run(options, run.path, extra_callbacks)


def _plan(model, options: Options, labels, split, extra_callbacks, trust_model: bool = False, placement=None):
    """Phases, loop options and datasets, checked against the model (every phase's ``trainable`` must resolve);
    ``placement`` (nsl.train.distribute) sets the global batch and the learning-rate scale."""
    from nsl.train.phases import trainable_layers
    from nsl.train.trainer import LoopOptions

    phases = options.hparams.phase_plan()
    log.info("%s", plan_text(options.hparams))
    for phase in phases:
        try:
            trainable_layers(model, phase.trainable)
        except ConfigError as err:
            raise ConfigError(f"config key 'phases', phase '{phase.name}': {err}") from None
    scale, batch = (placement.lr_scale, placement.global_batch) if placement else (1.0, None)
    loop = LoopOptions.from_options(options, extra_callbacks, trust_model, scale)
    return phases, loop, fit_data(options, split, len(labels), batch)


def plan_text(hparams) -> str:
    """The plan, one line: how many epochs each phase runs and where that came from (printed before training)."""
    phases = hparams.phase_plan()
    total = sum(p.epochs for p in phases)
    if hparams.epochs is None:
        origin = "the phases' own epochs"
    elif hparams.strategy == "single" or hparams.epochs_mode == "total":
        origin = f"epochs={hparams.epochs} in all" + (f" (raised to {total}: every phase runs at least one epoch)"
                                                      if total > hparams.epochs else "")
    else:
        origin = f"epochs={hparams.epochs} per phase (a run saved before epochs meant the total)"
    steps = ", ".join(f"{p.name} {p.epochs} (lr {p.lr:g}, trainable {p.trainable})" for p in phases)
    return f"plan: {total} epochs, {origin}: {steps}"


def _train_and_finish(model, options: Options, labels, split, run: RunDir, state, history, plan) -> None:
    from nsl.train.trainer import train_phases

    phases, loop, data = plan
    try:
        model = train_phases(model, phases, data, run, state, history, loop)
        finish_run(model, options, labels, split, run, history, phases)
    except KeyboardInterrupt:  # the epoch on disk, not this session's: Ctrl-C may land inside a checkpoint write
        saved = run.state() or TrainState()
        log.warning("interrupted; the run is saved after epoch %d, continue it with: nsl train --resume %s",
                    saved.epoch, run.path)
        raise
    except Exception as err:
        if not is_disk_full(err):
            raise
        saved = run.state() or TrainState()  # what the disk holds, not what this session had reached
        then = f"continue from its last saved epoch ({saved.epoch}) with: nsl train --resume {run.path}"
        raise NslError(disk_full_message(err, then)) from None


def float32_copy(model, options: Options, num_classes: int):
    """The same classifier rebuilt in float32 (no mixed-precision casts, default trainable flags) with
    ``model``'s weights: what best.keras holds for export."""
    import dataclasses

    import tf_keras as keras

    from nsl.train.model import build_classifier

    keras.mixed_precision.set_global_policy("float32")
    unweighted = dataclasses.replace(options.model, weights="none")
    clean = build_classifier(unweighted, num_classes, dropout=options.hparams.dropout_override)
    clean.set_weights(model.get_weights())
    return clean


def finish_run(model, options: Options, labels, split, run: RunDir, history: list, phases) -> dict:
    """Save the best model as a clean float32 graph, evaluate it on the test split, write the report."""
    from nsl.train.checkpoint import save_model
    from nsl.train.evaluate import evaluate
    from nsl.train.report import write_report

    final = float32_copy(model, options, len(labels))
    save_model(final, run.best_model)
    run.write_history(history)
    test, source = (split["test"], "test split") if split.get("test") else (split["val"], "val split (no test split)")
    metrics = evaluate(final, test, options, labels, run.metrics_file, source=source)
    fusion = None
    if run.landmark_data.is_file():
        from nsl.train.landmark_stage import finish_landmarks

        fusion = finish_landmarks(run, options, labels, split, cnn_model=final, train_fold=fold_run)
    write_report(run, options, history, metrics, labels, phases, fusion)
    return metrics
