"""The device side of recognising new signers: the hands pass over a dataset, the fused recognizer, and nsl val
through the device path, on real photos (edge environment: MediaPipe, no TensorFlow)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from nsl.edge import recognizer as recognizer_module
from nsl.edge.bundle import open_bundle
from nsl.edge.dataset_hands import collect_hands
from nsl.edge.hands import Hand
from nsl.edge.recognizer import Recognizer
from nsl.landmarks import HandsTable, hand_features
from nsl.train import hands as train_hands
from tests.conftest import env_python, real_data, run_nsl
from tests.edge.conftest import error_line
from tests.export.conftest import make_fused_bundle


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six classes of real NSL photos (one each) and one drawn picture with no hand in it."""
    source = real_data("nsl_consonants")
    root = tmp_path_factory.mktemp("photos")
    for label in range(6):
        (root / str(label)).mkdir()
        for photo in sorted((source / str(label)).iterdir())[:1]:
            shutil.copy(photo, root / str(label) / photo.name)
    drawing = np.full((240, 240, 3), 230, np.uint8)
    cv2.circle(drawing, (120, 120), 60, (40, 90, 200), -1)
    cv2.imwrite(str(root / "5" / "drawn.png"), drawing)
    return root


def test_hands_pass_finds_hands_in_photos_and_redoes_only_changed_files(photos, hand_model, tmp_path):
    out, table, summary = collect_hands(photos, hand_model, tmp_path / "hands.npz")
    assert summary["images"] == 7 and summary["found"] >= 5 and summary["redone"] == 7
    drawn = table.row_for(photos / "5" / "drawn.png")
    assert not table.found[drawn] and "5/drawn.png" in summary["missing"]
    found = np.flatnonzero(table.found)
    assert table.landmarks[found].shape[1:] == (21, 3) and np.isfinite(table.landmarks[found]).all()
    assert set(table.handedness[found]) <= {"Left", "Right"} and table.world[found].shape[1:] == (21, 3)
    x0, y0, x1, y1 = table.crop_box[found[0]]
    assert x1 - x0 == pytest.approx(y1 - y0) and x1 - x0 > table.box[found[0]][2] - table.box[found[0]][0]
    reloaded = HandsTable.load(out)
    assert np.array_equal(reloaded.found, table.found)
    first = sorted((photos / "0").iterdir())[0]
    image = cv2.imread(str(first))
    cv2.imwrite(str(first), cv2.resize(image, None, fx=0.8, fy=0.8))  # the same photo, smaller: a changed file
    _, again, summary = collect_hands(photos, hand_model, out)
    assert summary["redone"] == 1
    row = again.row_for(first)
    if again.found[row] and table.found[row]:  # landmark features do not depend on the picture's size
        before = hand_features(table.landmarks[row], table.handedness[row])
        after = hand_features(again.landmarks[row], again.handedness[row])
        assert np.abs(before - after).max() < 0.1


def test_the_feature_function_is_the_same_object_on_both_sides():
    assert recognizer_module.hand_features is hand_features
    assert train_hands.HandsTable.features.__globals__["hand_features"] is hand_features


@pytest.fixture(scope="module")
def fused_bundle(test_cache) -> Path:
    return make_fused_bundle(test_cache)


def test_fused_recognizer_uses_landmarks_when_there_are_any(fused_bundle):
    bundle = open_bundle(fused_bundle)
    assert Recognizer.open(bundle).kind == "fused" and bundle.fusion["rule"] == "log_linear"
    table = HandsTable.load(Path(fused_bundle).parent / "synth_tiny_hands.npz")
    rows = np.flatnonzero(table.found)[:4]
    hands = [Hand(box=tuple(table.box[r]), score=0.9, handedness=str(table.handedness[r]),
                  landmarks=table.landmarks[r], world=table.world[r]) for r in rows]
    crops = np.zeros((len(hands), bundle.crop.size, bundle.crop.size, 3), np.uint8)
    fused, answered = Recognizer.open(bundle).predict(crops, hands)
    assert answered == [("cnn", "landmarks")] * len(hands) and fused.shape == (len(hands), len(bundle.labels))
    landmarks, _ = Recognizer.open(bundle, kind="landmarks").predict(crops, hands)
    cnn, only_cnn = Recognizer.open(bundle, kind="cnn").predict(crops, hands)
    assert only_cnn == [("cnn",)] * len(hands) and not np.allclose(fused, cnn)
    roi = [Hand(box=(0, 0, 10, 10), score=1.0, grow=False)]  # no landmarks: the CNN alone
    probs, answered = Recognizer.open(bundle).predict(crops[:1], roi)
    assert answered == [("cnn",)] and np.allclose(probs, Recognizer.open(bundle, kind="cnn").predict(crops[:1], roi)[0])
    assert "tensorflow" not in sys.modules


def test_model_kind_that_the_bundle_lacks_is_a_one_line_error(tiny_bundle, photos):
    proc = run_nsl("predict", photos, "--model", tiny_bundle, "--model-kind", "landmarks",
                   python=env_python("edge"), check=False)
    assert proc.returncode == 2 and "needs a landmarks model" in error_line(proc)


def test_val_through_the_device_path_on_real_photos(tiny_bundle, photos, hand_model):
    proc = run_nsl("val", tiny_bundle, "--data", photos, "--hand-model", hand_model, "--json",
                   python=env_python("edge"))
    import json

    metrics = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert metrics["n_images"] == 7 and 5 / 7 <= metrics["hand_found"] < 1  # the drawing has no hand
    assert set(metrics["by_model"]) == {"cnn"} and metrics["default_kind"] == "cnn"
    assert sum(map(sum, metrics["confusion_matrix"])) == 7
    table = run_nsl("val", tiny_bundle, "--data", photos, "--hand-model", hand_model, python=env_python("edge"))
    assert "device path: 7 images" in table.stdout and "| cnn (default) |" in table.stdout


def test_the_classifier_bench_times_the_landmark_files_on_the_hands_of_a_hands_file(fused_bundle, photos, tmp_path):
    """nsl bench --sections classifier on a fused bundle: with --hands every file is timed, the landmark files on
    landmark features; without it the CNN files alone, and a note names the files left out and the option."""
    hands = Path(fused_bundle).parent / "synth_tiny_hands.npz"
    files = open_bundle(fused_bundle).files
    landmark_files = {name for name, entry in files.items() if entry.get("model") == "landmarks"}
    assert landmark_files and landmark_files != set(files)
    timed = {}
    for name, extra in (("with", ["--hands", hands]), ("without", [])):
        out = tmp_path / name
        run_nsl("bench", "--model", fused_bundle, "--images", photos, "--sections", "classifier", "--quick",
                "--out", out, *extra, python=env_python("edge"), timeout=300)
        section = json.loads((out / "bench.json").read_text(encoding="utf-8"))["sections"]["classifier"]
        table = section["tables"][0]
        rows = [dict(zip(table["columns"], row)) for row in table["rows"]]
        assert all(0 < row["p50 ms"] <= row["p90 ms"] for row in rows)
        timed[name] = ({row["file"] for row in rows}, " ".join(section["notes"]))
    assert timed["with"][0] == set(files) and "landmark files: the features of" in timed["with"][1]
    assert timed["without"][0] == set(files) - landmark_files
    assert "not timed: " + ", ".join(sorted(landmark_files)) in timed["without"][1] and "--hands" in timed["without"][1]
