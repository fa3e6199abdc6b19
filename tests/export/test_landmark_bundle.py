"""A run with both models (CNN + landmark model) and its bundle: trained, fused, exported to all four landmark files
whose int8 versions agree with the Keras model; and the signer-style grouped split it is meant to be judged on."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nsl.config import resolve
from nsl.dataset import scan_dataset
from nsl.edge.bundle import open_bundle
from nsl.fileio import read_json
from nsl.rundir import RunDir
from nsl.train.split import make_split
from tests.conftest import env_python, run_nsl
from tests.export.conftest import make_fused_bundle, write_synthetic_hands

LANDMARK_FILES = {"landmarks_fp32.tflite", "landmarks_int8.tflite", "landmarks_fp32.onnx", "landmarks_int8.onnx"}


@pytest.fixture(scope="module")
def fused_bundle(test_cache) -> Path:
    return make_fused_bundle(test_cache)


@pytest.mark.slow
def test_both_models_train_fuse_and_export(fused_bundle):
    metadata = read_json(fused_bundle / "metadata.json")
    run = RunDir.open(metadata["source_run"])
    assert metadata["schema"] == 2 and LANDMARK_FILES <= set(metadata["files"])
    assert {"model_fp32.tflite", "model_int8.tflite"} <= set(metadata["files"])
    fusion, section = metadata["fusion"], metadata["models"]["landmarks"]
    assert fusion["rule"] == "log_linear" and 0 <= fusion["weight"] <= 1 and fusion["chosen_on"] == "val split"
    assert section["features"]["layout"] == "xyz21" and section["features"]["size"] == 63
    assert section["default_file"] == {"tflite": "landmarks_int8.tflite", "onnx": "landmarks_int8.onnx"}
    by_model = read_json(run.metrics_file)["by_model"]
    assert set(by_model) == {"cnn", "landmarks", "fused"} and by_model["landmarks"]["top1"] > 0.8  # shapes differ
    from nsl.train.hands import load_arrays

    arrays = load_arrays(run)  # the landmark gate: every hand calibration (all training hands) did not use
    hands = {name: len(arrays[name]["labels"]) for name in ("test", "val")}
    assert section["gate"]["images"] == hands and section["calibration"]["hands"] == len(arrays["train"]["labels"])
    for name in ("landmarks_int8.tflite", "landmarks_int8.onnx"):
        figures = metadata["files"][name]["metrics"]["fidelity"]
        assert metadata["files"][name]["metrics"]["agreement"] >= 0.9, name
        assert figures["n_images"] == sum(hands.values()) and figures["agreement_ci95"][0] < figures["agreement"]
    assert metadata["default_file"]["tflite"].startswith("model_")  # the CNN's defaults stay the CNN's
    assert "landmarks" in (run.path / "report.md").read_text() and run.split()["train"][0].box is not None


@pytest.mark.slow
def test_a_landmark_only_run_exports_without_a_cnn(test_cache, tmp_path):
    """And its model is an averaged ensemble (landmarks.ensemble=2): still one file per format, gated like any."""
    from tests.train.conftest import make_synth, tiny_overrides

    data = make_synth(test_cache / "synth_tiny")
    hands = write_synthetic_hands(data, tmp_path / "hands.npz")
    run_nsl("train", *tiny_overrides(data=data, hands=hands, models="landmarks",  # two members: one averaged file
                                     **{"landmarks.epochs": 20, "landmarks.ensemble": 2}),
            f"--project={tmp_path}", "--name=lm", python=env_python("train"))
    run_nsl("export", tmp_path / "lm", "--int8", "--latency-runs", "1", "--max-drop", "100",
            python=env_python("train"))
    bundle = open_bundle(tmp_path / "lm" / "bundle")
    assert set(bundle.files) == LANDMARK_FILES and bundle.has("landmarks") and not bundle.has("cnn")
    gate = bundle.metadata["models"]["landmarks"]["gate"]  # the default bars, passed without --allow-drop
    assert (gate["min_agreement"], gate["max_distance"]) == (0.8, 0.12) and not bundle.metadata["export"][
        "gate_failures"]
    assert all(bundle.files[name]["metrics"]["fidelity"]["n_images"] == sum(gate["images"].values())
               for name in ("landmarks_int8.tflite", "landmarks_int8.onnx"))
    assert not (tmp_path / "lm" / "best.keras").exists() and (tmp_path / "lm" / "landmarks.keras").is_file()
    import tf_keras as keras

    layers = [layer.name for layer in keras.models.load_model(tmp_path / "lm" / "landmarks.keras").layers]
    assert {"m1_predictions", "m2_predictions"} <= set(layers) and layers[-1] == "predictions"


def test_models_need_a_hands_file_with_a_one_line_error(test_cache, tmp_path):
    from tests.train.conftest import make_synth, tiny_overrides

    data = make_synth(test_cache / "synth_tiny")
    proc = run_nsl("train", *tiny_overrides(data=data, hands="none", models="both"), f"--project={tmp_path}",
                   python=env_python("train"), check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "nsl data hands" in lines[-1] and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_grouped_split_by_file_name_never_puts_a_group_on_both_sides(test_cache, tmp_path):
    from tests.train.conftest import make_synth

    source = scan_dataset(make_synth(test_cache / "synth_tiny"))
    for number, sample in enumerate(source.samples):  # four "signers", named in the file names
        target = tmp_path / "data" / str(sample.label) / f"signer{number % 4}_{number:04d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample.path, target)
    samples = scan_dataset(tmp_path / "data").samples
    options = resolve(overrides={"split": "grouped", "group_pattern": r"^(signer\d)_"})
    split = make_split(samples, options.data, 0)
    sides = {}
    for name, members in split.items():
        for sample in members:
            sides.setdefault(sample.group, set()).add(name)
    assert set(sides) == {f"signer{i}" for i in range(4)} and all(len(s) == 1 for s in sides.values())
    held = resolve(overrides={"split": "grouped", "group_pattern": r"^(signer\d)_",
                              "split_test_groups": ["signer3"]})
    split = make_split(samples, held.data, 0)
    assert {s.group for s in split["test"]} == {"signer3"} and len(split["test"]) == len(samples) // 4
    assert not {s.group for s in split["train"] + split["val"]} & {"signer3"} and split["val"]
    with pytest.raises(Exception, match="split_test_groups: no group 'signer9'"):
        make_split(samples, resolve(overrides={"split": "grouped", "group_pattern": r"^(signer\d)_",
                                               "split_test_groups": ["signer9"]}).data, 0)
