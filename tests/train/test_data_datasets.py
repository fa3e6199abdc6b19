"""Reading datasets: the published layout, class folders, a user's own labels, TFRecords, bad files."""

import shutil
from pathlib import Path

import pytest

from nsl.errors import DataError
from nsl.dataset import load_for_training, natural_key, scan_dataset
from nsl.synth import SUBSETS, synthesize


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("data") / "synth", classes=12, per_class=3, size=32, seed=0)


def _flat_copy(src: Path, dst: Path, names=None) -> Path:
    """One subset of the synthetic set as a plain folder-per-class tree (optionally renamed)."""
    for folder in sorted((src / SUBSETS[0]).iterdir()):
        shutil.copytree(folder, dst / (names[int(folder.name)] if names else folder.name))
    return dst


def test_published_layout_is_the_union_of_subsets(synth):
    index = scan_dataset(synth)
    assert index.layout == "nsl" and len(index.labels) == 12 and index.labels[0].name == "क"
    assert index.counts() == {subset: {label: 3 for label in range(12)} for subset in SUBSETS}
    sample = next(s for s in index.samples if s.subset == SUBSETS[1] and s.label == 11)
    assert Path(sample.path).parent == synth / SUBSETS[1] / "11"


def test_class_folders_sort_numerically(synth, tmp_path):
    index = scan_dataset(_flat_copy(synth, tmp_path / "flat"))
    assert index.layout == "folders"
    labels_in_order = [s.label for s in index.samples]
    assert labels_in_order == sorted(labels_in_order)  # 10 and 11 come after 9, not after 1
    assert all(Path(s.path).parent.name == str(s.label) for s in index.samples)
    assert sorted(["10", "9", "1", "img10", "img9"], key=natural_key) == ["1", "9", "10", "img9", "img10"]


def test_user_label_set_auto_and_csv(synth, tmp_path):
    names = [f"sign{i}" for i in range(12)]
    root = _flat_copy(synth, tmp_path / "mine", names)
    index = scan_dataset(root, "auto")
    assert [label.name for label in index.labels] == names  # natural order: sign10 after sign9
    assert all(Path(s.path).parent.name == names[s.label] for s in index.samples)
    csv = tmp_path / "labels.csv"
    csv.write_text("index,name,roman\n" + "".join(f"{11 - i},{n},r{i}\n" for i, n in enumerate(names)))
    index = scan_dataset(root, csv)
    assert all(s.label == 11 - names.index(Path(s.path).parent.name) for s in index.samples)
    with pytest.raises(DataError, match="class folder 'sign0' is not a number"):
        scan_dataset(root, "nsl36")
    csv.write_text("index,name\n0,a\n1,b\n")
    with pytest.raises(DataError, match="labels.csv: labels file does not match class folder 'sign0'"):
        scan_dataset(root, csv)


def test_bad_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        scan_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: dataset folder is empty"):
        scan_dataset(tmp_path / "empty")
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="no class folders found"):
        scan_dataset(tmp_path / "loose")
    (tmp_path / "classes" / "0").mkdir(parents=True)
    (tmp_path / "classes" / "1").mkdir()
    (tmp_path / "classes" / "0" / "a.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match=r"classes/1: class folder has no images"):
        scan_dataset(tmp_path / "classes")


def test_load_for_training_drops_bad_files_and_stops_past_the_limit(synth, tmp_path):
    root = _flat_copy(synth, tmp_path / "flat")
    (root / "0" / "zero.jpg").write_bytes(b"")
    (root / "1" / "text.jpg").write_text("not an image")
    good = (root / "2" / "2_0000.jpg").read_bytes()
    (root / "2" / "cut.jpg").write_bytes(good[: len(good) // 2])
    (root / "3" / "notes.txt").write_text("ignored")
    index = load_for_training(root, max_bad_fraction=0.1)
    assert len(index.samples) == 36 and index.other_files == [str(root / "3" / "notes.txt")]
    reasons = dict(index.bad_files)
    assert reasons[str(root / "0" / "zero.jpg")].startswith("empty file")
    assert reasons[str(root / "1" / "text.jpg")].startswith("not an image")
    assert reasons[str(root / "2" / "cut.jpg")].startswith("unreadable")
    with pytest.raises(DataError, match=r"8% of the images cannot be used \(more than max_bad_fraction=0.05\)"):
        load_for_training(root, max_bad_fraction=0.05)


def test_grey_and_odd_sized_images_are_fine(tmp_path):
    import cv2
    import numpy as np
    for label in (0, 1):
        (tmp_path / str(label)).mkdir()
        cv2.imwrite(str(tmp_path / str(label) / "grey.png"), np.full((31, 57), 40 * label, np.uint8))
    index = load_for_training(tmp_path)
    assert len(index.samples) == 2 and not index.bad_files


def test_tfrecords_are_extracted_once_into_the_cache(synth, tmp_path, monkeypatch):
    from nsl.env import prepare_tensorflow
    prepare_tensorflow()
    import tensorflow as tf

    monkeypatch.setenv("NSL_CACHE_DIR", str(tmp_path / "cache"))
    images = sorted((synth / SUBSETS[0]).rglob("*.jpg"))[:10]
    records = tmp_path / "records"
    records.mkdir()
    with tf.io.TFRecordWriter(str(records / "train.tfrecord")) as writer:
        for path in images:
            feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.read_bytes()])),
                       "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(path.parent.name)]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    index = scan_dataset(records)
    assert index.layout == "tfrecord" and index.root == records
    assert sorted((s.label, Path(s.path).read_bytes()) for s in index.samples) == \
        sorted((int(p.parent.name), p.read_bytes()) for p in images)
    assert all(Path(s.path).is_relative_to(tmp_path / "cache") for s in index.samples)
    first = Path(index.samples[0].path).stat().st_mtime_ns
    assert Path(scan_dataset(records / "train.tfrecord").samples[0].path).stat().st_mtime_ns == first  # reused
    (records / "broken.tfrecord").write_bytes(b"garbage that is not a record")
    with pytest.raises(DataError, match="broken.tfrecord: not a readable TFRecord file"):
        scan_dataset(records)


def test_scanning_and_splitting_never_import_tensorflow(synth):
    """The edge environment (no TensorFlow) scans folders too, e.g. for `nsl val BUNDLE --data DIR`."""
    import subprocess

    from tests.conftest import ROOT, env_python

    code = ("import sys; from nsl.dataset import scan_dataset; from nsl.train.split import make_split; "
            "from nsl.options import DataOptions; "
            f"index = scan_dataset({str(synth)!r}); split = make_split(index.samples, DataOptions(), 42); "
            "print(len(index.samples), len(split['test']), 'tensorflow' in sys.modules)")
    proc = subprocess.run([env_python("edge"), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["72", "11", "False"]
