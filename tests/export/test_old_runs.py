"""A run folder written before the typed options (the layout of commit 4cfceab) still exports and resumes.

Its ``config.yaml`` is the exact text that version's ``save_config`` wrote for the tiny recipe, less a key added
since (``bn_momentum``), plus one no longer known, and with ``mixed_precision`` as that version saved ``=off``
after YAML had turned it into a boolean (the string 'False'). The model files are the tiny run's own.
"""

from __future__ import annotations

import json
import shutil

import pytest

from nsl.fileio import read_json
from tests.conftest import env_python, run_nsl

OLD_CONFIG = """data: {data}
labels: nsl36
split: stratified
split_ratios:
- 0.7
- 0.15
- 0.15
holdout_subset: Random Background
group_hash_distance: 6
max_bad_fraction: 0.05
seed: 42
imgsz: 48
batch: 16
cache: true
color_mode: color
threshold_block: 11
threshold_c: 2
blur: 5
crop_margin: 0.1
crop_square: true
augment:
  rotation: 5.0
  zoom: 0.1
  shift: 0.1
  brightness: 0.15
  contrast: 0.15
  hflip: false
backbone: mobilenet_v2
alpha: 0.35
weights: none
dropout: 0.2
freeze_bn: auto
label_smoothing: 0.0
strategy: progressive
phases:
- name: head
  epochs: 3
  lr: 0.001
  trainable: none
- name: top
  epochs: 3
  lr: 0.0001
  trainable: 140
- name: full
  epochs: 4
  lr: 1.0e-05
  trainable: all
single:
  epochs: 40
  lr: 0.0001
  dropout: 0.5
epochs: 1
patience: 0
plateau_patience: 2
plateau_factor: 0.5
class_weights: auto
steps_per_epoch: 2
mixed_precision: 'False'
tensorboard: false
workers: 2
project: runs
name: exp
retired_option: 3
"""


@pytest.fixture
def old_run(tiny_run, synth_data, tmp_path):
    run = tmp_path / "old_run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("bundle", "tensorboard", "plan.json"))
    (run / "config.yaml").write_text(OLD_CONFIG.format(data=synth_data), encoding="utf-8")
    return run


@pytest.mark.slow
def test_an_old_run_exports(old_run, tmp_path):
    out = tmp_path / "bundle"
    run_nsl("export", old_run, "--formats", "tflite", "--latency-runs", "1", "--out", out, python=env_python("train"))
    metadata = read_json(out / "metadata.json")
    assert set(metadata["files"]) == {"model_fp32.tflite"} and metadata["preprocess"]["size"] == 48
    assert metadata["preprocess"]["mirror_left"] is False  # trained before crop_mirror: its crops were never mirrored


@pytest.mark.slow
def test_an_interrupted_old_run_resumes(old_run):
    state = read_json(old_run / "checkpoints" / "state.json")
    state.update(phase=1, phase_epoch=0, epoch=1, finished=False, stopped_early=False)
    (old_run / "checkpoints" / "state.json").write_text(json.dumps(state))
    (old_run / "metrics.json").unlink()
    history = read_json(old_run / "history.json")[:1]
    (old_run / "history.json").write_text(json.dumps(history))
    proc = run_nsl("train", "--resume", old_run, python=env_python("train"))
    assert f"nsl export {old_run} --int8" in proc.stdout
    assert "retired_option" in proc.stderr  # the migration says what it dropped
    assert [e["phase"] for e in read_json(old_run / "history.json")] == ["head", "top", "full"]
    plan = read_json(old_run / "plan.json")  # epochs: 1 meant one per phase then, and still does
    assert plan["epochs_mode"] == "per_phase" and [p["epochs"] for p in plan["phases"]] == [1, 1, 1]
    assert (old_run / "metrics.json").is_file()
