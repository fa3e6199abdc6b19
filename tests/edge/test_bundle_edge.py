"""The device side of a bundle (edge environment, no TensorFlow): load_bundle, both backends, nsl val BUNDLE."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from nsl.edge.bundle import load_bundle
from nsl.export.images import load_images
from nsl.fileio import read_json
from tests.conftest import env_python, run_nsl
from tests.edge.conftest import error_line
from nsl.samples import load_split


@pytest.fixture(scope="module")
def run_test_split(tiny_bundle):
    """The test split of the run the bundle came from, prepared by the bundle's own crop preprocessing."""
    metadata = read_json(tiny_bundle / "metadata.json")
    bundle, _ = load_bundle(tiny_bundle, threads=1)
    return load_images(load_split(f"{metadata['source_run']}/split.csv")["test"], bundle.crop)


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_bundle_classifies_like_the_train_side(tiny_bundle, run_test_split, backend, precision):
    bundle, classifier = load_bundle(tiny_bundle, backend=backend, precision=precision, threads=2)
    images, labels = run_test_split
    probs = classifier.predict(images)
    name = f"model_{precision}.{backend}"
    assert classifier.path.name == name and probs.shape == (len(images), len(bundle.labels))
    train_side = bundle.files[name]["metrics"]
    assert train_side["n_images"] == len(labels)
    assert float(np.mean(probs.argmax(1) == labels)) == pytest.approx(train_side["top1"])
    assert "tensorflow" not in sys.modules and "tf_keras" not in sys.modules


def test_single_crop_and_default_file(tiny_bundle, run_test_split):
    bundle, classifier = load_bundle(tiny_bundle)
    assert classifier.path.name == bundle.metadata["default_file"]["tflite"]
    probs = classifier.predict(run_test_split[0][0])  # one (H, W, 3) crop is a batch of one
    assert probs.shape == (1, len(bundle.labels)) and probs.dtype == np.float32


def test_nsl_val_bundle_runs_in_the_edge_env(tiny_bundle):
    proc = run_nsl("val", tiny_bundle, "--json", python=env_python("edge"))  # the source run's test split
    results, exported = json_from(proc.stdout), read_json(tiny_bundle / "metadata.json")["files"]
    assert set(results) == set(exported)
    for name, entry in results.items():  # same images, same runtime: the export's own figures
        for key in ("top1", "top3", "n_images"):
            assert entry["metrics"][key] == pytest.approx(exported[name]["metrics"][key]), (name, key)


def test_nsl_val_refuses_a_tampered_bundle(tiny_bundle, tmp_path):
    copy = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    (copy / "model_fp32.onnx").write_bytes((copy / "model_fp32.onnx").read_bytes()[:-10])
    proc = run_nsl("val", copy, python=env_python("edge"), check=False)
    assert proc.returncode == 2 and "model_fp32.onnx: sha256 does not match" in error_line(proc)


def json_from(stdout: str) -> dict:
    import json

    return json.loads(stdout[stdout.index("{"):])
