"""Keras callbacks of the trainer: the per-epoch record, early stopping across phases, checkpoints, progress.

They share one ``TrainState`` (nsl.rundir) owned by the trainer; the order in the callback list matters:
record -> global best -> plateau -> checkpoint, so a checkpoint holds the epoch's full outcome.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import tf_keras as keras
from tqdm import tqdm

from nsl.rundir import RunDir, TrainState
from nsl.train.checkpoint import save_checkpoint, save_model

log = logging.getLogger(__name__)


def current_lr(model) -> float:
    return float(f"{float(keras.backend.get_value(model.optimizer.learning_rate)):.6g}")  # float32 -> 1e-3, not 0.0010000000474


class EpochRecorder(keras.callbacks.Callback):
    """Appends one history entry per epoch (phase, lr, trainable parameters, losses, accuracies, seconds, and
    the wall-clock time it ended, so device samples such as scripts/gpu_check.sh's can be matched to epochs)."""

    def __init__(self, state: TrainState, history: list, phase_name: str, phase_index: int, trainable_params: int):
        super().__init__()
        self.state, self.history = state, history
        self.phase_name, self.phase_index, self.trainable_params = phase_name, phase_index, trainable_params

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.lr = time.perf_counter(), current_lr(self.model)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        logs = logs or {}
        self.state.epoch, self.state.phase_epoch = epoch + 1, self.state.phase_epoch + 1
        self.state.wall_s += seconds
        entry = {"epoch": epoch + 1, "phase": self.phase_name, "phase_index": self.phase_index, "lr": self.lr,
                 "trainable_params": self.trainable_params, "seconds": round(seconds, 3),
                 "ended": round(time.time(), 3)}
        entry.update({key: float(logs[key]) for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs})
        self.history.append(entry)
        log.info("epoch %d (%s) lr %.2g: loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1fs", epoch + 1,
                 self.phase_name, self.lr, entry.get("loss", math.nan), entry.get("accuracy", math.nan),
                 entry.get("val_loss", math.nan), entry.get("val_accuracy", math.nan), seconds)


class GlobalBest(keras.callbacks.Callback):
    """Early stopping on validation loss across all phases; saves the best model whenever it improves and
    keeps its weights so the trainer can restore the best of the whole run."""

    def __init__(self, state: TrainState, patience: int, best_path: Path, best_weights: list):
        super().__init__()
        self.state, self.patience, self.best_path, self.best_weights = state, patience, Path(best_path), best_weights

    def on_epoch_end(self, epoch, logs=None):
        val_loss = (logs or {}).get("val_loss")
        if val_loss is None or not math.isfinite(val_loss):
            self.state.wait += 1
        elif self.state.best_val_loss is None or val_loss < self.state.best_val_loss:
            self.state.best_val_loss, self.state.best_epoch, self.state.wait = float(val_loss), epoch + 1, 0
            self.best_weights[:] = [self.model.get_weights()]
            save_model(self.model, self.best_path)
        else:
            self.state.wait += 1
        if self.patience and self.state.wait >= self.patience:
            log.info("early stop: validation loss has not improved for %d epochs (best %.4f at epoch %d)",
                     self.state.wait, self.state.best_val_loss or math.nan, self.state.best_epoch)
            self.state.stopped_early = True
            self.model.stop_training = True


class Checkpointer(keras.callbacks.Callback):
    """After every epoch: history.json, then checkpoints/last.keras, then checkpoints/state.json, each atomically.
    The state last: killed between two writes, the state still names an epoch whose history and model are on disk
    (a resume reads the history up to the state's epoch, so an entry written ahead of it is dropped, never lost)."""

    def __init__(self, run: RunDir, state: TrainState, history: list):
        super().__init__()
        self.run, self.state, self.history = run, state, history

    def on_epoch_end(self, epoch, logs=None):
        self.state.lr = current_lr(self.model)
        self.run.write_history(self.history)
        save_checkpoint(self.run, self.model, self.state)


class Progress(keras.callbacks.Callback):
    """A tqdm bar over the batches of each epoch, on a terminal only (logs carry the per-epoch line)."""

    def __init__(self, steps: int | None, phase_name: str):
        super().__init__()
        self.steps, self.phase_name, self.bar = steps, phase_name, None

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1} {self.phase_name}", unit="batch",
                        leave=False, disable=not sys.stderr.isatty())

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()
