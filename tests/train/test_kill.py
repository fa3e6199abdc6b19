"""kill -9 at several points of a training run: nothing half-written, nothing lost, ``--resume`` finishes it.

One run of the tiny recipe (six epochs over three phases) is killed with SIGKILL three times at different
moments: while it builds its model (the data just split, no checkpoint yet), right after its second epoch's checkpoint, and after its
fourth; each time every file left in the run folder must be whole (JSON parses, each ``.keras`` loads) and a
resume must go on from the last checkpoint. The last resume finishes the run: six epochs in the history, each
once, and the final metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import tf_keras as keras
import yaml

from tests.conftest import ROOT, env_python, run_nsl
from tests.train.conftest import tiny_overrides

pytestmark = [pytest.mark.train, pytest.mark.slow]
PHASES = [{"name": "head", "epochs": 2, "lr": 1e-3, "trainable": "none"},
          {"name": "top", "epochs": 2, "lr": 1e-4, "trainable": 0.1},
          {"name": "all", "epochs": 2, "lr": 1e-5, "trainable": "all"}]


def _epoch_of(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoints/state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _kill_when(command: list[str], ready, timeout: float = 600) -> int:
    """Start ``command``; SIGKILL it as soon as ``ready()`` holds; its exit code (-9 when killed)."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not ready():
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _assert_whole(run_dir: Path) -> None:
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))  # raises on a half-written file
    for path in run_dir.rglob("*.keras"):
        keras.models.load_model(path, compile=False)
    yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))


def test_a_run_killed_three_times_resumes_to_the_same_end(tmp_path, synth_data):
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump({"phases": PHASES}), encoding="utf-8")
    run_dir = tmp_path / "runs" / "killed"
    python = env_python("train")
    start = [python, "-m", "nsl", "train", "--config", str(config), f"data={synth_data}",
             *[item for item in tiny_overrides() if not item.startswith("epochs=")],
             "--project", str(tmp_path / "runs"), "--name", "killed"]
    resume = [python, "-m", "nsl", "train", "--resume", str(run_dir)]

    assert _kill_when(start, lambda: (run_dir / "split.csv").is_file()) == -signal.SIGKILL
    _assert_whole(run_dir)
    for epoch in (2, 4):  # the first resume starts from the first epoch: there was no checkpoint yet
        code = _kill_when(resume, lambda: _epoch_of(run_dir) >= epoch)
        assert code == -signal.SIGKILL, f"the run ended by itself (exit {code}) before epoch {epoch}'s kill"
        _assert_whole(run_dir)
        assert _epoch_of(run_dir) >= epoch and not (run_dir / "metrics.json").exists()

    proc = run_nsl("train", "--resume", run_dir, python=python)
    assert f"nsl export {run_dir}" in proc.stdout
    _assert_whole(run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4, 5, 6]
    assert [entry["phase"] for entry in history] == ["head", "head", "top", "top", "all", "all"]
    assert (run_dir / "metrics.json").is_file() and (run_dir / "best.keras").is_file()
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
