"""nsl export on a real tiny run: every file in its runtime, int8 details, agreement, gate, metadata, tampering."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nsl.edge.bundle import load_bundle, open_bundle
from nsl.fileio import sha256_of
from nsl.edge.classifier import open_classifier
from nsl.export.images import load_images
from nsl.export.verify import Gate
from nsl.rundir import RunDir
from nsl.errors import NslError
from nsl.fileio import read_json
from tests.conftest import env_python, run_nsl
from tests.edge.conftest import error_line
from tests.export.conftest import is_trained
from tests.train.conftest import make_synth

EXPECTED_FILES = {"model_fp32.tflite", "model_fp16.tflite", "model_int8.tflite", "model_qat_int8.tflite",
                  "model_fp32.onnx", "model_int8.onnx", "model_qat_int8.onnx"}


@pytest.fixture(scope="module")
def test_images(export_run):
    run = RunDir.open(export_run)
    return load_images(run.split()["test"], run.options().crop)


def test_every_file_loads_and_runs_in_its_runtime(export_bundle, test_images):
    metadata = read_json(export_bundle / "metadata.json")
    assert set(metadata["files"]) == EXPECTED_FILES
    assert (export_bundle / "export_report.md").read_text(encoding="utf-8").count("| model_") == len(EXPECTED_FILES)
    images, _ = test_images
    for name in EXPECTED_FILES:
        probs = open_classifier(export_bundle / name, threads=1).predict(images[:5])
        assert probs.dtype == np.float32 and probs.shape == (5, len(metadata["labels"])), name
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05, err_msg=name)


def test_int8_tflite_takes_and_gives_uint8(export_bundle):
    from ai_edge_litert.interpreter import Interpreter

    metadata = read_json(export_bundle / "metadata.json")
    for name in ("model_int8.tflite", "model_qat_int8.tflite"):
        interpreter = Interpreter(model_path=str(export_bundle / name))
        model_in, model_out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        assert model_in["dtype"] == np.uint8 and model_out["dtype"] == np.uint8, name
        recorded = metadata["files"][name]
        assert recorded["input"] == {"dtype": "uint8", "scale": pytest.approx(model_in["quantization"][0]),
                                     "zero_point": model_in["quantization"][1]}
        assert recorded["output"]["scale"] == pytest.approx(model_out["quantization"][0])
        # the model takes 0..255 pixels, so one uint8 step is about one pixel level
        assert 0.9 < recorded["input"]["scale"] < 1.1
    sizes = {name: entry["size_bytes"] for name, entry in metadata["files"].items()}
    for fmt in ("tflite", "onnx"):  # int8 weights: well under half the float file
        assert sizes[f"model_int8.{fmt}"] < 0.4 * sizes[f"model_fp32.{fmt}"]
        assert sizes[f"model_qat_int8.{fmt}"] < 0.4 * sizes[f"model_fp32.{fmt}"]


def test_int8_agrees_with_keras_on_the_test_split(export_run, export_bundle, test_images):
    """Agreement = share of test images whose int8 top-1 equals the Keras model's top-1, computed here
    independently of the exporter. Required: >= 0.8 for the post-training int8 files. Why that bar: full-integer
    MobileNetV2 loses about 0.5 point on ImageNet (DESIGN-NOTES section 4), but this tiny run (64 px, head only,
    18 test images) is unsure of several answers (top-2 margins down to 0.3) and measured 0.83-1.0 across
    retrainings; a broken quantisation (wrong scale, swapped channels, lost rescaling) agrees on about 1/6."""
    if not is_trained():
        pytest.skip("the untrained fallback run has near-uniform outputs: agreement means nothing there "
                    "(needs ../shared/weights for a trained tiny run)")
    from nsl.train.model import load_classifier

    images, labels = test_images
    keras_probs = load_classifier(export_run / "best.keras").predict(images.astype(np.float32), verbose=0)
    assert (keras_probs.argmax(1) == labels).mean() >= 0.8  # the run really is trained
    metadata = read_json(export_bundle / "metadata.json")
    gate_images = sum(metadata["export"]["gate"]["images"].values())
    for name in ("model_int8.tflite", "model_int8.onnx"):
        probs = open_classifier(export_bundle / name).predict(images)
        agreement = float((probs.argmax(1) == keras_probs.argmax(1)).mean())
        assert agreement >= 0.8, f"{name}: top-1 agrees with Keras on {agreement:.2%} of the test images"
        figures = metadata["files"][name]["metrics"]["fidelity"]  # on every image calibration left out
        assert figures["n_images"] == gate_images > len(images) and figures["agreement"] >= 0.75
        low, high = figures["agreement_ci95"]
        assert low < figures["agreement"] <= high
    for name in ("model_fp32.tflite", "model_fp32.onnx"):
        assert metadata["files"][name]["metrics"]["agreement"] == 1.0
        assert metadata["files"][name]["metrics"]["max_prob_diff"] < 1e-3
        assert metadata["files"][name]["metrics"]["fidelity"]["mean_distance"] < 1e-4


def test_gate_boundary_on_measured_figures(export_bundle):
    """Each threshold of the gate fails exactly where the measured figure crosses it (the drop: the lower end of
    its paired 95 % interval)."""
    metadata = read_json(export_bundle / "metadata.json")
    files = {"model_int8.tflite": metadata["files"]["model_int8.tflite"]}
    figures = files["model_int8.tflite"]["metrics"]["fidelity"]
    drop, agreement, distance = figures["top1_drop_ci95"][0], figures["agreement"], figures["mean_distance"]
    assert Gate(drop, agreement, distance).failures(files) == []
    cases = [(Gate(drop - 0.01, agreement, distance), "points below float"),
             (Gate(drop, agreement, distance - 1e-6), "mean probability distance")]
    if agreement < 1.0:  # a file that agrees on every image cannot miss a higher bar: there is none
        cases.append((Gate(drop, agreement + 1e-6, distance), "agrees with float on"))
    for gate, what in cases:
        failures = gate.failures(files)
        assert len(failures) == 1 and failures[0].startswith("model_int8.tflite: ") and what in failures[0]


@pytest.mark.slow
def test_gate_failure_exits_nonzero_and_writes_nothing(export_run, tmp_path):
    out = tmp_path / "bundle"
    proc = run_nsl("export", export_run, "--int8", "--formats", "tflite", "--calib", "12", "--latency-runs", "1",
                   "--max-drop", "-101", "--out", out, python=env_python("train"), check=False)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "int8 gate failed: model_int8.tflite: top-1" in line and "allowed -101" in line
    assert "--allow-drop" in line
    assert not out.exists()


def test_metadata_round_trips(export_run, export_bundle):
    metadata = read_json(export_bundle / "metadata.json")
    bundle, classifier = load_bundle(export_bundle, backend="onnx", precision="int8", threads=1)
    options = RunDir.open(export_run).options()
    assert metadata["schema"] == 1 and bundle.metadata == metadata
    assert metadata["labels"] == read_json(export_run / "labels.json")
    assert bundle.crop == options.crop and metadata["preprocess"] == bundle.crop.to_dict()
    assert metadata["input"] == {"height": options.model.imgsz, "width": options.model.imgsz, "channels": 3,
                                 "dtype": "float32", "layout": "NHWC", "color_order": "RGB", "value_range": [0, 255]}
    assert metadata["source_run"] == str(export_run.resolve()) and metadata["package_version"] == "0.1.0"
    assert len(metadata["git_commit"]) >= 7 and metadata["created"].endswith("Z")
    for name, entry in metadata["files"].items():
        assert entry["sha256"] == sha256_of(export_bundle / name)
        assert entry["size_bytes"] == (export_bundle / name).stat().st_size
        assert set(entry["metrics"]) >= {"top1", "top3", "agreement", "max_prob_diff", "latency_ms_1thread",
                                         "latency_ms_all", "n_images"}
    assert json.loads(classifier.metadata()["labels"]) == metadata["labels"]
    assert set(metadata["default_file"]) == {"tflite", "onnx"}
    settings = metadata["export"]
    assert {key: settings[key] for key in ("calibration_images", "qat_epochs", "qat_lr", "max_drop")} == {
        "calibration_images": 48, "qat_epochs": 1, "qat_lr": 1e-5, "max_drop": 25.0}
    assert settings["calibration"] == {"images": 48, "per_class": 8, "seed": options.hparams.seed, "requested": 48}
    assert settings["ptq"]["remedy"] == "round" and settings["ptq"]["onnx_weight_bits"] == 7
    assert settings["ptq"]["8_bit"]["adaptive_rounding"]["layers"] > 0  # a record of what the remedy did
    assert settings["qat_fallback"] is None  # --qat was asked for: no fallback
    gate = settings["gate"]
    assert {key: gate[key] for key in ("max_drop", "min_agreement", "max_distance")} == {
        "max_drop": 25.0, "min_agreement": 0.75, "max_distance": 0.25}
    split = RunDir.open(export_run).split()  # 48 of the training images calibrated, the rest joined the gate
    assert gate["images"] == {"test": len(split["test"]), "val": len(split["val"]),
                              "train, not calibration": len(split["train"]) - 48}
    recorded = Gate(gate["max_drop"], gate["min_agreement"], gate["max_distance"])
    assert settings["gate_failures"] == recorded.failures(metadata["files"])  # recorded as measured
    assert not [line for line in settings["gate_failures"] if "qat" not in line], "post-training int8 passed"


def test_tampered_file_is_refused(export_bundle, tmp_path):
    copy = shutil.copytree(export_bundle, tmp_path / "bundle")
    target = copy / "model_int8.tflite"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(NslError, match="model_int8.tflite: sha256 does not match"):
        load_bundle(copy, backend="onnx")  # every file is checked, not only the one opened
    assert open_bundle(export_bundle).path == export_bundle


@pytest.mark.parametrize("case", ["no_model", "unknown_format", "existing_output", "too_few_calib", "label_count"])
def test_bad_input_gives_one_line_errors(case, export_run, export_bundle, tmp_path):
    run, args = export_run, []
    if case == "no_model":
        run = shutil.copytree(export_run, tmp_path / "run", ignore=shutil.ignore_patterns("*.keras", "tensorboard"))
        expected = "no best.keras in this run"
    elif case == "unknown_format":
        args, expected = ["--formats", "tflite,coreml"], "--formats: unknown format coreml"
    elif case == "existing_output":
        args, expected = ["--out", export_bundle], "already exists (pass --force"
    elif case == "too_few_calib":
        args, expected = ["--int8", "--calib", "10000", "--out", tmp_path / "b"], "too few calibration images"
    else:
        run = shutil.copytree(export_run, tmp_path / "run", ignore=shutil.ignore_patterns("tensorboard"))
        (run / "labels.json").write_text(json.dumps(read_json(run / "labels.json")[:-1]), encoding="utf-8")
        args, expected = ["--out", tmp_path / "b"], "outputs but there are"
    proc = run_nsl("export", run, *args, python=env_python("train"), check=False)
    assert proc.returncode == 2 and expected in error_line(proc)


@pytest.mark.slow
def test_export_of_a_keras_file_with_a_data_folder(export_run, test_cache, tmp_path):
    out, synth_data = tmp_path / "bundle", make_synth(test_cache / "synth_tiny")
    run_nsl("export", export_run / "best.keras", "--data", synth_data, "--labels", "nsl36", "--formats", "tflite",
            "--latency-runs", "1", "--out", out, python=env_python("train"))
    metadata = read_json(out / "metadata.json")
    assert set(metadata["files"]) == {"model_fp32.tflite"}
    assert metadata["source_run"].endswith("best.keras") and len(metadata["labels"]) == 6
    assert metadata["input"]["height"] == RunDir.open(export_run).options().model.imgsz
