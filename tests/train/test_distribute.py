"""Strategies and what follows from them: TF_CONFIG read as TensorFlow reads it, the chief writes the run, the
global batch and the linear learning-rate rule, and a run under MultiWorkerMirroredStrategy (one worker, on the
CPU) that is interrupted and resumed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from nsl.config import resolve
from nsl.errors import ConfigError
from nsl.fileio import read_json
from tests.conftest import env_python
from tests.train.conftest import tiny_overrides


def tf_config(port: int, index: int = 0, workers: int = 1) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{port + i}" for i in range(workers)]},
                       "task": {"type": "worker", "index": index}})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_tf_config_roles_and_one_line_errors(monkeypatch):
    from nsl.train.distribute import worker_role

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert worker_role().is_chief and worker_role().workers == 1
    monkeypatch.setenv("TF_CONFIG", tf_config(2000, index=1, workers=3))
    role = worker_role()
    assert (role.task_type, role.task_id, role.workers, role.is_chief) == ("worker", 1, 3, False)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not worker_role().is_chief and worker_role().workers == 2  # a named chief writes, worker 0 does not
    for bad in ("{not json", '{"cluster": {}}', json.dumps({"cluster": {"worker": ["a:1"]},
                                                            "task": {"type": "worker", "index": 4}})):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(ConfigError, match="^TF_CONFIG: expected"):
            worker_role()


def test_global_batch_and_the_linear_learning_rate_rule():
    from nsl.train.distribute import global_batch, lr_scale

    hparams = resolve(overrides=["batch=32"]).hparams
    assert (global_batch(hparams, 1), lr_scale(hparams, 1)) == (32, 1.0)
    assert (global_batch(hparams, 4), lr_scale(hparams, 4)) == (128, 4.0)
    assert lr_scale(resolve(overrides=["scale_lr=off"]).hparams, 4) == 1.0


def test_a_bad_tf_config_is_one_line_before_a_run_exists(synth_data, tmp_path):
    env = {**os.environ, "TF_CONFIG": "{not json"}
    proc = subprocess.run([str(env_python("train")), "-m", "nsl", "train", *tiny_overrides(data=synth_data),
                           f"--project={tmp_path}", "--name=bad"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "TF_CONFIG" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_multi_worker_run_checkpoints_and_resumes(synth_data, tmp_path):
    """One worker in TF_CONFIG: MultiWorkerMirroredStrategy on the CPU; Ctrl-C after the first epoch, then
    --resume under the same strategy finishes the run, and environment.json records both sessions."""
    phases = ("phases=[{name: head, epochs: 1, lr: 1.0e-3, trainable: none}, "
              "{name: full, epochs: 2, lr: 1.0e-4, trainable: all}]")
    run_dir = tmp_path / "mw"
    env = {**os.environ, "TF_CONFIG": tf_config(free_port())}
    recipe = tiny_overrides(data=synth_data, epochs="null")  # the phases' own epochs: 1 + 2
    command = [str(env_python("train")), "-m", "nsl", "train", *recipe, phases, f"--project={tmp_path}", "--name=mw"]
    # a suite started in the background ('cmd &' in a script) ignores SIGINT, and so would the run: not under test
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    history, state_file = run_dir / "history.json", run_dir / "checkpoints/state.json"
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and not (
            state_file.is_file() and read_json(state_file).get("epoch", 0) >= 1):  # the first epoch checkpointed
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    state = read_json(run_dir / "checkpoints/state.json")
    assert not state["finished"] and 1 <= state["epoch"] < 3, stderr
    assert f"nsl train --resume {run_dir}" in stderr

    env["TF_CONFIG"] = tf_config(free_port())
    done = subprocess.run([str(env_python("train")), "-m", "nsl", "train", "--resume", str(run_dir)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    state = read_json(run_dir / "checkpoints/state.json")
    assert state["finished"] and state["epoch"] == 3 and (run_dir / "metrics.json").is_file()
    assert [e["phase"] for e in read_json(history)] == ["head", "full", "full"]
    environment = read_json(run_dir / "environment.json")
    assert environment["strategy"] == "MultiWorkerMirroredStrategy" and environment["replicas"] == 1
    assert environment["workers"] == {"task_type": "worker", "task_id": 0, "workers": 1, "chief": True}
    assert [s["strategy"] for s in environment["earlier_sessions"]] == ["MultiWorkerMirroredStrategy"]
    assert "MultiWorkerMirroredStrategy" in done.stderr  # the block at the start of the session
