"""`nsl capture`: a recorded clip of real photos -> the published layout, signer and session in every name, the
landmarks of every crop; resumable; and the train side consumes it with split=grouped by signer."""

import csv
import json
import re

import cv2
import numpy as np
import pytest

from nsl.edge.capture import LANDMARKS_FILE, SIGNER_PATTERN
from nsl.edge.clips import letterbox, write_clip
from nsl.fileio import sha256_of
from nsl.landmarks import HandsTable
from nsl.preprocess import read_image
from tests.conftest import env_python, real_data, run_nsl
from tests.edge.conftest import error_line

CLASSES, PHOTOS, HOLD = 3, 3, 3  # per signer: 3 classes x 3 photos, each photo held 3 frames; one crop per photo
LABELS = "index,name,roman,ascii\n0,०,śūnya,shunya\n1,१,ek,ek\n2,२,dui,dui\n"
NAME = re.compile(r"^(?P<signer>[^_]+)_(?P<session>[^_]+)_(?P<cls>\d\d)_(?P<number>\d{4})\.jpg$")


def _clip(folder, first_photo: int):
    """Real webcam photos of NSL digits: for each class, PHOTOS photos starting at ``first_photo``, in class order."""
    root = real_data("nsl_numbers")
    photos = [sorted((root / str(c)).glob("*.png"))[first_photo + i] for c in range(CLASSES) for i in range(PHOTOS)]
    return write_clip((letterbox(read_image(p)) for p in photos), folder / f"from{first_photo}.mp4", HOLD, fps=15)


def _capture(out, signer, clip, labels, hand_model, *extra, check=True):
    return run_nsl("capture", "--out", out, "--signer", signer, "--session", "s1", "--source", clip, "--headless",
                   "--burst", PHOTOS, "--every", HOLD, "--countdown", 0, "--labels", labels, "--size", 64,
                   "--hand-model", hand_model, "--json", *extra, check=check)


@pytest.fixture(scope="module")
def captured(tmp_path_factory, hand_model):
    """Two signers, each from their own clip: asha from photos 0-2 of each class, bikram from photos 3-5."""
    folder = tmp_path_factory.mktemp("capture")
    labels = folder / "digits.csv"
    labels.write_text(LABELS, encoding="utf-8")
    out = folder / "mine"
    summaries = {signer: json.loads(_capture(out, signer, _clip(folder, first), labels, hand_model).stdout)
                 for signer, first in (("asha", 0), ("bikram", 3))}
    return out, labels, summaries, folder


def test_a_session_writes_the_layout_names_and_landmarks(captured):
    out, _, summaries, _ = captured
    assert summaries["asha"]["saved"] == summaries["bikram"]["saved"] == CLASSES * PHOTOS
    assert sorted(p.name for p in out.iterdir()) == ["0", "1", "2", LANDMARKS_FILE]
    for index in range(CLASSES):
        names = sorted(p.name for p in (out / str(index)).iterdir())
        parsed = [NAME.match(name).groupdict() for name in names]
        assert [(p["signer"], p["session"], int(p["cls"]), int(p["number"])) for p in parsed] == \
               [(signer, "s1", index, n) for signer in ("asha", "bikram") for n in range(PHOTOS)]
        for path in (out / str(index)).iterdir():
            assert cv2.imread(str(path)).shape == (64, 64, 3)  # the app's crop, at --size
    table = HandsTable.load(out / LANDMARKS_FILE)
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.jpg"))
    assert sorted(map(str, table.paths)) == files and table.found.all()
    assert all(table.sha256[table.index_of(f)] == sha256_of(out / f) for f in files)
    inside = table.landmarks[:, :, :2]  # in the saved crop's pixels: the hand fills the crop, less the margin
    assert np.isfinite(inside).all() and inside.min() > -8 and inside.max() < 64 + 8
    assert set(map(str, table.handedness)) <= {"Left", "Right"} and table.meta["capture"] is True
    assert [row["this_signer"] for row in summaries["bikram"]["classes"]] == [PHOTOS] * CLASSES
    assert summaries["bikram"]["group_pattern"] == SIGNER_PATTERN


def test_each_class_holds_the_crops_of_its_own_photos(captured):
    """The clip shows the classes in order and a burst takes one crop per photo: each class folder holds crops of
    that class's photos (the crop of class k is nearer to class k's photos, letterboxed and cut the same way,
    than to any other class's)."""
    out, _, _, _ = captured
    means = {index: np.stack([cv2.imread(str(p)).astype(float) for p in sorted((out / str(index)).glob("asha_*"))])
             for index in range(CLASSES)}
    for index in range(CLASSES):
        for other in range(CLASSES):
            if other != index:
                mine = np.abs(means[index][:, None] - means[index][None]).mean()
                theirs = np.abs(means[index][:, None] - means[other][None]).mean()
                assert mine < theirs, (index, other, mine, theirs)


def test_a_second_run_resumes_without_overwriting(captured, hand_model):
    out, labels, _, folder = captured
    before = {p: sha256_of(p) for p in out.glob("*/*.jpg")}
    summary = json.loads(_capture(out, "asha", _clip(folder, 0), labels, hand_model, "--max-frames", 2 * HOLD).stdout)
    assert summary["saved"] == 2  # one class started again: the signer had every class complete
    assert all(sha256_of(p) == digest for p, digest in before.items())
    new = sorted(set(out.glob("*/*.jpg")) - set(before))
    assert [p.name for p in new] == ["asha_s1_00_0003.jpg", "asha_s1_00_0004.jpg"]
    assert len(HandsTable.load(out / LANDMARKS_FILE)) == len(before) + 2
    for path in new:  # leave the fixture as the other tests expect it
        path.unlink()


def test_a_signer_name_the_file_names_cannot_carry_is_one_line(tmp_path, hand_model):
    proc = run_nsl("capture", "--out", tmp_path / "x", "--signer", "asha_1", "--source", "0", "--headless",
                   check=False)
    assert proc.returncode == 2 and "--signer 'asha_1': use letters, digits and '-'" in error_line(proc)
    assert not (tmp_path / "x").exists()


def _symlink_merge(merged, nsl_dataset, captured_dir):
    """docs/DATA.md, "Merging a captured folder": the captured folder is one more subset of the published layout."""
    merged.mkdir()
    for subset in nsl_dataset.iterdir():
        (merged / subset.name).symlink_to(subset.resolve(), target_is_directory=True)
    (merged / "Captured").symlink_to(captured_dir.resolve(), target_is_directory=True)


@pytest.mark.slow
def test_train_split_grouped_by_signer_consumes_it_merged_with_a_dataset(captured, tmp_path):
    """A tiny training in the train environment on the NSL-layout data plus the capture: every captured signer is
    its own group (the pattern of docs/DATA.md), the dataset's files one group, and asha is the test set."""
    out, labels, _, _ = captured
    train_python = env_python("train")
    dataset = tmp_path / "nsl"
    run_nsl("data", "synth", dataset, "--classes", CLASSES, "--per-class", 4, "--size", 64)
    merged = tmp_path / "merged"
    _symlink_merge(merged, dataset, out)
    check = json.loads(run_nsl("data", "check", merged, "--labels", labels, "--json").stdout)
    assert [row["total"] for row in check["classes"]] == [2 * 4 + 2 * PHOTOS] * CLASSES
    pattern = r"^[^_]+(?=_[^_]+_\d\d_\d{4}\.jpg$)|^"
    run_nsl("train", f"data={merged}", f"labels={labels}", "split=grouped", f"group_pattern={pattern}",
            "split_test_groups=[asha]", "imgsz=32", "weights=none", "alpha=0.35", "batch=8", "steps_per_epoch=2",
            "epochs=1", "patience=0", "tensorboard=false", "workers=1", f"--project={tmp_path}", "--name=run",
            python=train_python, timeout=900)
    with open(tmp_path / "run" / "split.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    test = [row for row in rows if row["split"] == "test"]
    assert len(test) == CLASSES * PHOTOS and all("asha_s1_" in row["path"] for row in test)
    rest = [row for row in rows if row["split"] != "test"]
    assert any("bikram_s1_" in row["path"] for row in rest)
    assert not any("asha_" in row["path"] for row in rest)
    assert (tmp_path / "run" / "metrics.json").is_file()


class ScriptedWindow:
    """A window stand-in: per shown frame, the key action of ``script`` (None: no key); keeps what was drawn."""

    def __init__(self, script):
        self.script, self.shown, self.closed = list(script), [], False

    def show(self, image, wait_ms=1):
        self.shown.append(image)
        return self.script.pop(0) if self.script else "quit"

    def close(self, summary=None):
        self.closed = True


def test_keys_start_go_back_and_redo_on_the_live_view(tmp_path, hand_model):
    """Space starts the countdown, a burst saves and moves on, p goes back, r discards that class's take."""
    from nsl.edge.capture import CaptureStore
    from nsl.edge.capture_app import Capture, CaptureOptions
    from nsl.edge.hands import make_hands
    from nsl.edge.sources import FrameSource, SourceSpec
    from nsl.labels import load_labels
    from nsl.preprocess import CropSpec

    photos = tmp_path / "photos"
    photos.mkdir()
    for number, photo in enumerate(sorted((real_data("nsl_numbers") / "0").glob("*.png"))[:6]):
        (photos / f"{number}.png").symlink_to(photo)
    options = CaptureOptions(out=str(tmp_path / "out"), signer="asha", burst=2, every=1, countdown=0, mirror=True)
    store = CaptureStore(options.out, load_labels("nsl36"), "asha", "s1", CropSpec(size=64))
    window = ScriptedWindow([None, "pause", None, None, "previous", "redo"])
    capture = Capture(options, store, FrameSource(SourceSpec("folder", photos)), make_hands(hand_model), window)
    summary = capture.run()
    assert summary["frames"] == 6 and summary["saved"] == 2  # frame 1 waited, 2 started, 3-4 saved the burst
    assert capture.position == 0 and capture.state == "waiting"  # back on class 0 after p, then r
    assert not list((tmp_path / "out").glob("*/*.jpg"))  # r discarded the take
    assert len(HandsTable.load(tmp_path / "out" / LANDMARKS_FILE)) == 0 and window.closed
    assert len(window.shown) == 6 and all(image.shape[2] == 3 for image in window.shown)
    drawn = window.shown[2]  # during the burst: the crop preview sits in the bottom-right corner
    assert drawn[-40:, -40:].any()
