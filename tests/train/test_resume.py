"""An interrupted run (Ctrl-C is a KeyboardInterrupt) resumes at the right phase and epoch."""

from __future__ import annotations

import logging

import pytest
import tf_keras as keras

from nsl.fileio import read_json
from tests.conftest import env_python, run_nsl
from tests.train.conftest import tiny_config
from nsl.config import updated
from nsl.train.run import train_run


class InterruptAfter(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the end of global epoch ``epoch`` (after that epoch's checkpoint)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resume_continues_mid_phase_after_an_interrupt(tmp_path, synth_data, caplog):
    phases = [{"name": "head", "epochs": 1, "lr": 1e-3, "trainable": "none"},
              {"name": "top", "epochs": 2, "lr": 1e-4, "trainable": 0.1},
              {"name": "top2", "epochs": 1, "lr": 1e-5, "trainable": 0.2}]
    config = updated(tiny_config(synth_data), {"epochs": None, "phases": phases})
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        train_run(config, run_dir, extra_callbacks=[InterruptAfter(2)])
    assert f"nsl train --resume {run_dir}" in caplog.text
    state = read_json(run_dir / "checkpoints/state.json")
    assert (state["phase"], state["phase_epoch"], state["epoch"], state["finished"]) == (1, 1, 2, False)
    assert "saved after epoch 2," in caplog.text  # the epoch the disk holds
    assert len(read_json(run_dir / "history.json")) == 2 and not (run_dir / "metrics.json").exists()
    checkpoint = keras.models.load_model(run_dir / "checkpoints/last.keras")

    proc = run_nsl("train", "--resume", run_dir, python=env_python("train"))
    assert f"nsl export {run_dir} --int8" in proc.stdout
    history = read_json(run_dir / "history.json")
    assert [(e["epoch"], e["phase"]) for e in history] == [(1, "head"), (2, "top"), (3, "top"), (4, "top2")]
    assert history[2]["trainable_params"] == history[1]["trainable_params"]  # same phase, not recompiled anew
    assert history[2]["lr"] == pytest.approx(float(checkpoint.optimizer.learning_rate.numpy()))
    state = read_json(run_dir / "checkpoints/state.json")
    assert state["finished"] and state["epoch"] == 4 and (run_dir / "metrics.json").is_file()
    proc = run_nsl("train", "--resume", run_dir, python=env_python("train"))  # finished: nothing to do
    assert proc.returncode == 0 and len(read_json(run_dir / "history.json")) == 4


def test_resume_of_something_else_is_a_one_line_error(tmp_path):
    proc = run_nsl("train", "--resume", tmp_path, check=False, python=env_python("train"))
    assert proc.returncode == 2 and "not a run directory" in proc.stderr and "Traceback" not in proc.stderr
