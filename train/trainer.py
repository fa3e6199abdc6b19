"""Progressive (or single-phase) training of a classifier, with early stopping across phases and resume.

For each phase: set what is trainable (train.phases), recompile with a fresh Adam at the phase's learning rate,
fit its epochs with learning-rate reduction on plateau. Early stopping watches validation loss over all phases
together and the best weights of the whole run are restored at the end. A ``TrainState`` checkpointed after every
epoch lets ``nsl train --resume`` continue at the right phase and epoch.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
import tf_keras as keras

from nsl.train.callbacks import Checkpointer, EpochRecorder, GlobalBest, Progress
from nsl.options import HParams, Options, Phase
from nsl.rundir import RunDir, TrainState
from nsl.train.checkpoint import save_checkpoint
from nsl.train.distribute import use_mixed_precision  # noqa: F401  (the trainer's API since issue 1)
from nsl.train.model import load_classifier
from nsl.train.phases import apply_phase, count_trainable_params

log = logging.getLogger(__name__)


@dataclass
class FitData:
    """What ``fit`` needs besides the model; ``steps_per_epoch`` None means whole passes over ``train``."""

    train: object
    val: object
    steps_per_epoch: int | None = None
    class_weight: dict | None = None


@dataclass
class LoopOptions:
    """How the phases are run: the run's hyper-parameters, BatchNorm handling and callbacks added by the caller."""

    hparams: HParams = field(default_factory=HParams)
    freeze_bn: bool = True
    extra_callbacks: list = field(default_factory=list)
    trust_model: bool = False     # best.keras of an earlier session may be loaded outside safe mode (--trust-model)
    lr_scale: float = 1.0         # every phase's learning rate times this (replicas, nsl.train.distribute)

    @classmethod
    def from_options(cls, options: Options, extra_callbacks=(), trust_model: bool = False,
                     lr_scale: float = 1.0) -> "LoopOptions":
        return cls(options.hparams, options.model.frozen_bn, list(extra_callbacks), trust_model, lr_scale)


def set_up_tensorflow(hparams: HParams) -> None:
    """Threads and seeds, before any model is built."""
    if hparams.workers:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(hparams.workers)
        except RuntimeError:  # already initialised in this process (tests): keep what it has
            pass
    random.seed(hparams.seed)
    np.random.seed(hparams.seed)
    keras.utils.set_random_seed(hparams.seed)


def compile_for_phase(model, lr: float, label_smoothing: float = 0.0) -> None:
    """Compile with a fresh optimizer (Keras reads ``trainable`` at compile time, and Adam's moments from an
    earlier phase do not belong to the new set of weights)."""
    if label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])


def train_phases(model, phases: list[Phase], data: FitData, run: RunDir, state: TrainState,
                 history: list, options: LoopOptions):
    """Run the phases from where ``state`` stands; returns the model holding the best weights of the run.

    ``model`` is fresh (state at phase 0, epoch 0) or, when resuming, the compiled checkpoint of the last epoch.
    KeyboardInterrupt propagates after the last complete epoch was checkpointed.
    """
    best_weights: list = []
    for index, phase in enumerate(phases):
        if index < state.phase or state.stopped_early:
            continue
        if index > state.phase or state.phase_epoch == 0:
            state.phase, state.phase_epoch = index, 0
            trainable = apply_phase(model, phase, options.freeze_bn)
            compile_for_phase(model, phase.lr * options.lr_scale, options.hparams.label_smoothing)
            log.info("phase %d/%d '%s': lr %g, backbone trainable: %s, %d trainable parameters",
                     index + 1, len(phases), phase.name, phase.lr * options.lr_scale, phase.trainable, trainable)
        else:
            trainable = count_trainable_params(model)
            log.info("resuming phase '%s' at its epoch %d of %d", phase.name, state.phase_epoch + 1, phase.epochs)
        remaining = phase.epochs - state.phase_epoch
        if remaining > 0:
            callbacks = _callbacks(run, state, history, phase, index, trainable, data, options, best_weights)
            model.fit(data.train, validation_data=data.val, initial_epoch=state.epoch,
                      epochs=state.epoch + remaining, steps_per_epoch=data.steps_per_epoch,
                      class_weight=data.class_weight, callbacks=callbacks, verbose=0)
        if not state.stopped_early:
            state.phase, state.phase_epoch = index + 1, 0
            save_checkpoint(run, None, state)
    state.finished = True
    save_checkpoint(run, None, state)
    _restore_best(model, best_weights, run, options.trust_model)
    return model


def _callbacks(run, state, history, phase, index, trainable, data, options, best_weights) -> list:
    hp = options.hparams
    callbacks = [
        EpochRecorder(state, history, phase.name, index, trainable),
        GlobalBest(state, hp.patience, run.best_model, best_weights),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=hp.plateau_factor,
                                          patience=hp.plateau_patience, min_lr=1e-7, verbose=0),
        Checkpointer(run, state, history),
        Progress(data.steps_per_epoch, phase.name),
    ]
    if hp.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run.tensorboard_dir), histogram_freq=0,
                                                     write_graph=False, profile_batch=0))
    return callbacks + list(options.extra_callbacks)


def _restore_best(model, best_weights: list, run: RunDir, trust: bool = False) -> None:
    """Best weights of this session, else (a resumed run whose best came earlier) those in best.keras (checked as
    every model file is: nsl.train.model.load_classifier)."""
    if best_weights:
        model.set_weights(best_weights[0])
        return
    if run.best_model.is_file():
        model.set_weights(load_classifier(run.best_model, trust).get_weights())
