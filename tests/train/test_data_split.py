"""Splits: reproducible, stratified, a held-out subset, and grouped splits that keep near-duplicates together."""

from collections import Counter
from pathlib import Path

import pytest

from nsl.config import resolve
from nsl.errors import ConfigError, DataError
from nsl.dataset import scan_dataset
from nsl.neardup import near_pairs, phash_files
from nsl.samples import Sample, load_split, save_split
from nsl.train.split import make_split
from nsl.synth import SESSION_LENGTH, SUBSETS, synthesize


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    root = synthesize(tmp_path_factory.mktemp("data") / "synth", classes=6, per_class=4 * SESSION_LENGTH, size=48)
    return scan_dataset(root).samples


def _config(**changes):
    return resolve(overrides=changes)


def _split(samples, options):
    return make_split(samples, options.data, options.hparams.seed)


def _sides(split) -> dict[str, str]:
    return {s.path: name for name, members in split.items() for s in members}


def test_stratified_split_is_reproducible_and_keeps_class_proportions(samples, tmp_path):
    split = _split(samples, _config())
    assert {name: len(members) for name, members in split.items()} == {"train": 168, "val": 36, "test": 36}
    for name, share in (("train", 28), ("val", 6), ("test", 6)):
        assert Counter(s.label for s in split[name]) == {label: share for label in range(6)}
    assert sorted(_sides(split)) == sorted(s.path for s in samples)  # every image once
    assert _split(list(reversed(samples)), _config()) == split  # input order does not matter
    assert _sides(_split(samples, _config(seed=43))) != _sides(split)
    assert load_split(save_split(split, tmp_path / "split.csv")) == split


def test_a_split_file_keeps_each_hand_box_and_its_side(tmp_path):
    """The split a run saves carries the hand box and handedness (crop=hands mirrors Left hands); a split file
    written before the side column reads back with no side (nothing mirrored, as that run trained)."""
    split = {"train": [Sample("a.png", 0, box=(1.0, 2.0, 30.0, 40.0), side="Left"), Sample("b.png", 1)],
             "val": [Sample("c.png", 1, box=(0.0, 0.0, 5.0, 5.0), side="Right")], "test": []}
    path = save_split(split, tmp_path / "split.csv")
    assert load_split(path) == split
    old = tmp_path / "old.csv"
    old.write_text("path,label,subset,group,split,box\na.png,0,,,train,1.00 2.00 30.00 40.00\n", encoding="utf-8")
    assert load_split(old)["train"] == [Sample("a.png", 0, box=(1.0, 2.0, 30.0, 40.0))]


def test_subset_split_holds_out_the_whole_subset(samples):
    split = _split(samples, _config(split="subset"))
    assert {s.subset for s in split["test"]} == {SUBSETS[1]}
    assert len(split["test"]) == sum(s.subset == SUBSETS[1] for s in samples)
    assert {s.subset for s in split["train"] + split["val"]} == {SUBSETS[0]}
    assert len(split["val"]) == round(120 * 0.15 / 0.85)
    with pytest.raises(DataError, match="no images in subset 'Indoor'"):
        _split(samples, _config(split="subset", holdout_subset="Indoor"))


def test_grouped_split_never_puts_near_duplicates_on_both_sides(samples):
    config = _config(split="grouped")
    split = _split(samples, config)
    assert _split(samples, config) == split
    side = _sides(split)
    paths = sorted(side)
    hashes, valid = phash_files(paths)
    pairs = near_pairs(hashes, config.data.group_hash_distance)
    assert valid.all() and len(pairs) >= len(paths)  # sessions of 5 frames give many near-identical pairs
    assert all(side[paths[i]] == side[paths[j]] for i, j in pairs)
    groups = {}
    for name, members in split.items():
        for s in members:
            groups.setdefault(s.group, set()).add(name)
    assert all(len(names) == 1 for names in groups.values()) and len(groups) >= 24
    assert all(split[name] for name in ("train", "val", "test"))
    stratified = _sides(_split(samples, _config()))
    straddling = sum(stratified[paths[i]] != stratified[paths[j]] for i, j in pairs)
    assert straddling > 0  # what the grouped split prevents: the random split leaks near-duplicates


def test_bad_split_settings(samples):
    with pytest.raises(ConfigError, match="config key 'split': expected one of stratified, subset, grouped"):
        _split(samples, _config(split="random"))
    with pytest.raises(ConfigError, match="config key 'split_ratios'"):
        _split(samples, _config(split_ratios=[0.8, 0.3, 0.1]))
    with pytest.raises(DataError, match="cannot be read to hash it"):
        _split(samples + [Sample(str(Path(samples[0].path).with_name("missing.jpg")), 0)], _config(split="grouped"))
