"""`nsl data check` finds planted problems; `nsl data synth` / `check` through the CLI, with one-line errors."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import run_nsl
from nsl.datacheck import check_dataset, color_kind, format_report
from nsl.samples import Sample, save_split
from nsl.synth import SUBSETS, synthesize


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("data") / "synth", classes=4, per_class=5, size=48, seed=3)


@pytest.fixture()
def planted(synth, tmp_path) -> Path:
    """The synthetic set with a zero-byte file, a truncated JPEG, a text file named .jpg, a copy of an image in
    another class, and a notes file."""
    root = shutil.copytree(synth, tmp_path / "planted")
    plain = root / SUBSETS[0]
    (plain / "0" / "empty.jpg").write_bytes(b"")
    data = (plain / "1" / "1_0000.jpg").read_bytes()
    (plain / "1" / "cut.jpg").write_bytes(data[: len(data) // 3])
    (plain / "2" / "text.jpg").write_text("hello")
    shutil.copy(plain / "3" / "3_0000.jpg", root / SUBSETS[1] / "3" / "copy.jpg")
    (plain / "3" / "notes.txt").write_text("not an image")
    return root


def test_check_finds_planted_problems(planted):
    report = check_dataset(planted)
    reasons = {Path(b["path"]).name: b["reason"] for b in report["bad_files"]}
    assert reasons.keys() == {"empty.jpg", "cut.jpg", "text.jpg"}
    assert reasons["empty.jpg"].startswith("empty file") and reasons["text.jpg"].startswith("not an image")
    assert reasons["cut.jpg"].startswith("unreadable")
    assert report["images"] == 44 and report["usable_images"] == 41
    assert [Path(p).name for p in report["other_files"]] == ["notes.txt"]
    assert [sorted(Path(p).name for p in group) for group in report["exact_duplicates"]] == [["3_0000.jpg", "copy.jpg"]]
    assert report["near_duplicates"]["pairs"] > 0  # frames of one capture session
    assert report["color_modes"] == {"colour": 41, "grey": 0, "binary": 0}
    assert report["image_sizes"] == {"48x48": 41}
    assert report["classes"][3]["counts"] == {SUBSETS[0]: 5, SUBSETS[1]: 6}
    # the class table counts what training can use: not the truncated JPEG (class 1), nor the text file (class 2)
    assert [row["counts"][SUBSETS[0]] for row in report["classes"]] == [5, 5, 5, 5]
    assert sum(row["total"] for row in report["classes"]) == sum(report["subsets"].values()) == 41
    assert len(report["warnings"]) == 2
    assert any("near-identical sibling" in note for note in report["notes"])
    text = format_report(report)
    assert "text.jpg: not an image" in text and "exact duplicates  1 group(s)" in text


def test_duplicates_straddling_train_and_test(planted, tmp_path):
    original = str(planted / SUBSETS[0] / "3" / "3_0000.jpg")
    copy = str(planted / SUBSETS[1] / "3" / "copy.jpg")
    neighbour = str(planted / SUBSETS[0] / "3" / "3_0001.jpg")  # same capture session as the original
    split_file = save_split({"train": [Sample(original, 3)], "val": [], "test": [Sample(copy, 3), Sample(neighbour, 3)]},
                            tmp_path / "split.csv")
    report = check_dataset(planted, split_file=split_file)
    assert report["split"]["straddling"] == {"train-test exact": 1, "train-test near": 1}
    exact = [sorted([a, b]) for a, b, kind in report["split"]["train_test_examples"] if kind == "exact"]
    assert exact == [sorted([original, copy])]
    assert any("straddle train and test" in note for note in report["warnings"])


def test_colour_grey_and_binary_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = np.repeat(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))[..., None], 3, axis=2)
    binary = np.zeros((64, 64), np.uint8)
    cv2.circle(binary, (32, 32), 20, 255, 3)
    assert color_kind(Image.fromarray(colour)) == "colour"
    assert color_kind(Image.fromarray(grey)) == "grey"  # three equal channels count as grey
    assert color_kind(Image.fromarray(binary)) == "binary"
    assert color_kind(Image.fromarray(binary).convert("RGB")) == "binary"


def test_a_binary_dataset_gets_a_colour_mode_hint(tmp_path):
    for label in range(2):
        (tmp_path / str(label)).mkdir()
        for k in range(3):
            outline = np.zeros((40, 40), np.uint8)
            cv2.circle(outline, (20, 20), 6 + 4 * k + label, 255, 2)
            cv2.imwrite(str(tmp_path / str(label) / f"{k}.png"), outline)
    report = check_dataset(tmp_path)
    assert report["color_modes"] == {"colour": 0, "grey": 0, "binary": 6}
    assert any("color_mode=binary" in note for note in report["notes"]) and not report["warnings"]


def test_cli_synth_and_check(tmp_path):
    out = tmp_path / "synth"
    run_nsl("data", "synth", out, "--classes", "3", "--per-class", "2", "--size", "32", "--seed", "1")
    assert sorted(p.name for p in (out / SUBSETS[0]).iterdir()) == ["0", "1", "2"]
    proc = run_nsl("data", "check", out)
    assert "no problems found" in proc.stdout and "Plain Background" in proc.stdout
    report = json.loads(run_nsl("data", "check", out, "--json").stdout)
    assert report["usable_images"] == 12 and report["warnings"] == []
    (out / SUBSETS[0] / "0" / "zero.jpg").write_bytes(b"")
    assert run_nsl("data", "check", out, check=False).returncode == 0
    strict = run_nsl("data", "check", out, "--strict", check=False)
    assert strict.returncode == 1 and "warning: 1 file(s) cannot be used" in strict.stdout


@pytest.mark.parametrize("args, message", [
    (["data", "check", "{tmp}/missing"], "missing: dataset folder not found"),
    (["data", "check", "{tmp}/empty"], "empty: dataset folder is empty"),
    (["data", "check", "{tmp}/classes"], "classes/1: class folder has no images"),
    (["data", "check", "{tmp}/classes", "--labels", "{tmp}/nope.csv"], "nope.csv: labels file not found"),
    (["data", "synth", "{tmp}/classes"], "classes: already exists and is not empty"),
])
def test_cli_bad_input_gives_one_line_error(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "classes" / "0").mkdir(parents=True)
    (tmp_path / "classes" / "1").mkdir()
    cv2.imwrite(str(tmp_path / "classes" / "0" / "a.png"), np.zeros((8, 8), np.uint8))
    proc = run_nsl(*[a.format(tmp=tmp_path) for a in args], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nsl data: error: ") and message in lines[0]


def test_colour_modes_of_the_capture_tool_stages():
    """The NSL capture tool's stages (real frames): the original is colour, then grey, then thresholded."""
    from PIL import Image

    from tests.conftest import real_data

    folder = real_data("nsl_capture_stages")
    kinds = {path.stem: color_kind(Image.open(path)) for path in sorted(folder.glob("*.jpg"))}
    assert kinds == {"1_Original": "colour", "2_Gray": "grey", "5_Adaptive_Threshold": "binary",
                     "6_Threshold": "binary"}


def test_a_pixel_bomb_is_unusable_as_training_and_the_device_would_find_it(tmp_path, synth):
    """Between Pillow's warning (89.5 MP) and its error (179 MP) Pillow decodes; read_image refuses. The check and
    the trainer's decode check use the same limit, so the report does not count a file training cannot read."""
    from tests.hostile import png_bomb

    root = shutil.copytree(synth, tmp_path / "data")
    png_bomb(root / SUBSETS[0] / "0" / "bomb.png", 10000, 10000)  # 100 MP
    report = check_dataset(root)
    assert {Path(b["path"]).name: b["reason"] for b in report["bad_files"]} == {
        "bomb.png": "unreadable (10000x10000 is 100 megapixels, more than the 89.5 MP an image may have "
                    "(refused before decoding: downscale it))"}
    from nsl.dataset import load_for_training

    assert "bomb.png" in {Path(path).name for path, _ in load_for_training(root, max_bad_fraction=0.5).bad_files}
