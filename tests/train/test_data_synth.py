"""The synthetic dataset: published layout, determinism, sessions, distinct classes."""

import hashlib

import cv2
import numpy as np
import pytest

from nsl.errors import DataError
from nsl.synth import SESSION_LENGTH, SUBSETS, class_poses, synthesize


def _digests(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))}


def test_layout_and_counts(tmp_path):
    out = synthesize(tmp_path / "synth", classes=12, per_class=3, size=40, seed=1)
    assert sorted(p.name for p in out.iterdir()) == sorted(SUBSETS)
    for subset in SUBSETS:
        folders = sorted((out / subset).iterdir(), key=lambda p: int(p.name))
        assert [p.name for p in folders] == [str(i) for i in range(12)]
        assert all(len(list(folder.glob("*.jpg"))) == 3 for folder in folders)
    image = cv2.imread(str(out / SUBSETS[1] / "11" / "11_0002.jpg"))
    assert image.shape == (40, 40, 3)


def test_same_arguments_give_identical_files_and_another_seed_does_not(tmp_path):
    a = _digests(synthesize(tmp_path / "a", classes=3, per_class=6, size=48, seed=7))
    b = _digests(synthesize(tmp_path / "b", classes=3, per_class=6, size=48, seed=7))
    c = _digests(synthesize(tmp_path / "c", classes=3, per_class=6, size=48, seed=8))
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_sessions_are_near_identical_and_sessions_differ(tmp_path):
    out = synthesize(tmp_path / "s", classes=1, per_class=2 * SESSION_LENGTH, size=64, seed=0)
    frames = [cv2.imread(str(p)).astype(np.float32) for p in sorted((out / SUBSETS[1] / "0").glob("*.jpg"))]
    within = np.abs(frames[0] - frames[1]).mean()
    across = np.abs(frames[0] - frames[SESSION_LENGTH]).mean()
    assert within * 3 < across


def test_class_poses_are_fixed_and_pairwise_distinct():
    poses = class_poses(36)
    assert poses == class_poses(36) and len(set(poses)) == 36
    assert all(sum(x != y for x, y in zip(p.traits(), q.traits())) >= 3
               for i, p in enumerate(poses) for q in poses[i + 1:])


def test_refuses_a_non_empty_folder_unless_forced(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists and is not empty"):
        synthesize(tmp_path, classes=2, per_class=1, size=32)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    synthesize(tmp_path, classes=2, per_class=1, size=32, force=True)
    assert not (tmp_path / "keep.txt").exists() and (tmp_path / SUBSETS[0] / "1").is_dir()
