"""Training runs: what a run leaves, each phase's lr and trainable weights, early stopping across phases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tf_keras as keras
import yaml

from nsl.fileio import read_json
from tests.conftest import run_nsl
from tests.train.conftest import tiny_config
from nsl.train.callbacks import GlobalBest
from nsl.config import updated
from nsl.rundir import TrainState
from nsl.train.evaluate import validate_run
from nsl.train.run import train_run
from nsl.samples import load_split

RUN_FILES = ("config.yaml", "labels.json", "split.csv", "best.keras", "history.json", "metrics.json", "report.md",
             "training_curves.png", "confusion_matrix.png", "checkpoints/last.keras", "checkpoints/state.json")


def test_tiny_run_leaves_the_documented_run_dir(tiny_run):
    for name in RUN_FILES:
        assert (tiny_run / name).is_file() and (tiny_run / name).stat().st_size > 0, name
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert config["imgsz"] == 48 and config["weights"] == "none"
    history = read_json(tiny_run / "history.json")
    assert [(e["epoch"], e["phase"], e["lr"]) for e in history] == [
        (1, "head", 1e-3), (2, "top", pytest.approx(1e-4)), (3, "full", pytest.approx(1e-5))]
    params = [e["trainable_params"] for e in history]
    assert params[0] < params[1] < params[2]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(e) for e in history)
    metrics = read_json(tiny_run / "metrics.json")
    split = load_split(tiny_run / "split.csv")
    assert metrics["n_images"] == len(split["test"]) > 0
    assert len(metrics["confusion_matrix"]) == len(read_json(tiny_run / "labels.json")) == 6
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n_images"]
    assert 0 <= metrics["top1"] <= metrics["top3"] <= 1 and len(metrics["per_class"]) == 6
    model = keras.models.load_model(tiny_run / "best.keras", compile=False)
    assert model.input_shape == (None, 48, 48, 3) and model.output_shape == (None, 6)
    assert "nsl export" in (tiny_run / "report.md").read_text()


def test_global_best_spans_phases_and_stops_on_patience(tmp_path):
    """Scripted validation losses over two phases: the best stays the one of phase 1; patience 2 stops."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state, best_weights, best_path = TrainState(), [], tmp_path / "best.keras"
    for phase_losses in ([1.0, 0.5], [0.6, 0.7]):
        callback = GlobalBest(state, patience=2, best_path=best_path, best_weights=best_weights)
        callback.set_model(model)
        for loss in phase_losses:
            model.layers[0].set_weights([np.full((2, 1), loss, np.float32), np.zeros(1, np.float32)])
            callback.on_epoch_end(state.epoch, {"val_loss": loss})
            state.epoch += 1
    assert (state.best_val_loss, state.best_epoch, state.wait, state.stopped_early) == (0.5, 2, 2, True)
    assert model.stop_training and best_weights[0][0][0, 0] == 0.5
    assert keras.models.load_model(best_path).layers[0].get_weights()[0][0, 0] == 0.5


@pytest.mark.slow
def test_early_stopping_restores_the_global_best(tmp_path, synth_data):
    """A last phase with a wild learning rate makes validation worse; the run must end with the best weights."""
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], self.model.get_weights()))

    phases = [{"name": "head", "epochs": 2, "lr": 1e-3, "trainable": "none"},
              {"name": "wild", "epochs": 2, "lr": 5.0, "trainable": 0.3}]
    config = updated(tiny_config(synth_data, patience=0), {"phases": phases, "epochs": None})
    run_dir = train_run(config, tmp_path / "run", extra_callbacks=[Record()])
    losses = [loss for loss, _ in seen]
    best = int(np.argmin(losses))
    assert len(seen) == 4 and best < 3, f"expected the wild phase to do worse: {losses}"
    final = keras.models.load_model(run_dir / "best.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, seen[best][1]))
    state = read_json(run_dir / "checkpoints/state.json")
    assert state["best_epoch"] == best + 1 and state["best_val_loss"] == pytest.approx(losses[best])
    history = read_json(run_dir / "history.json")
    assert [e["phase"] for e in history] == ["head", "head", "wild", "wild"]


def test_val_on_the_test_split_and_on_a_folder(tiny_run, synth_data):
    metrics = validate_run(tiny_run)
    assert metrics["top1"] == pytest.approx(read_json(tiny_run / "metrics.json")["top1"])
    assert metrics["confusion_matrix"] == read_json(tiny_run / "metrics.json")["confusion_matrix"]
    proc = run_nsl("val", tiny_run, "--data", synth_data, "--json")
    metrics = json.loads(proc.stdout)
    assert metrics["n_images"] == 120 and metrics["source"] == str(synth_data)
    proc = run_nsl("val", synth_data, check=False)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
