"""landmarks.fusion_on=groups: the fusion weight is chosen on training groups the fold models never saw.

A real (tiny) models=both run on the synthetic set with synthetic landmarks, grouped by a CSV into four groups,
one held out as the test set: the three training groups are dealt into two folds, each fold a run trained without
its groups, and the weight is the grid's best on the folds' answers (recomputed here from what the folds wrote)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from nsl.fileio import read_json
from nsl.fusion import choose_weight
from tests.conftest import env_python, run_nsl
from tests.export.conftest import write_synthetic_hands
from tests.train.conftest import tiny_overrides


def test_folds_are_dealt_whole_and_balanced():
    from nsl.train.fusion_folds import deal_folds, fold_split
    from nsl.samples import Sample

    assert deal_folds({"hand1": 144, "hand2": 143, "hand3": 1}, 2) == [["hand1"], ["hand2", "hand3"]]
    assert deal_folds({"a": 5, "b": 5}, 4) == [["a"], ["b"]]  # no more folds than groups
    split = {"train": [Sample(path=f"{g}{i}", label=i % 2, group=g) for g in "abc" for i in range(4)],
             "val": [Sample(path=f"v{g}", label=0, group=g) for g in "abc"], "test": []}
    part = fold_split(split, ["b"])
    assert {s.group for s in part["train"] + part["val"]} == {"a", "c"}
    assert {s.group for s in part["test"]} == {"b"} and len(part["test"]) == 5


@pytest.mark.slow
def test_the_weight_is_chosen_on_groups_the_fold_models_never_saw(tmp_path, synth_data):
    hands = write_synthetic_hands(synth_data, tmp_path / "hands.npz")
    groups = tmp_path / "groups.csv"
    with open(groups, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for path in sorted(synth_data.rglob("*.jpg")):
            writer.writerow([path.relative_to(synth_data).as_posix(), f"g{int(path.stem.split('_')[-1]) % 4}"])
    run_nsl("train", *tiny_overrides(data=synth_data, epochs=1), f"hands={hands}", "models=both", "crop=hands",
            "split=grouped", f"group_file={groups}", "split_test_groups=[g3]", "landmarks.epochs=15",
            "landmarks.fusion_on=groups", f"--project={tmp_path}", "--name=run", python=env_python("train"))
    run = tmp_path / "run"
    fusion = read_json(run / "fusion.json")
    assert fusion["chosen_on"].startswith("training groups out of fold (2 folds: g0, g2; g1")
    assert "val_split_choice" in fusion and fusion["val_split_choice"]["weight"] in [r["weight"] for r in fusion["val_grid"]]

    answers = []
    for fold, held in (("fold0", {"g0", "g2"}), ("fold1", {"g1"})):
        rows = list(csv.DictReader(open(run / "folds" / fold / "split.csv", encoding="utf-8")))
        assert {r["group"] for r in rows if r["split"] == "test"} == held
        assert not held & {r["group"] for r in rows if r["split"] in ("train", "val")}
        assert "g3" not in {r["group"] for r in rows}  # the run's test signers never reach a fold
        with np.load(run / "folds" / fold / "fusion_inputs.npz") as data:
            answers.append((data["test_cnn"], data["test_landmarks"], data["test_truth"]))
    cnn, landmarks, truth = (np.concatenate([a[k] for a in answers]) for k in range(3))
    main = list(csv.DictReader(open(run / "split.csv", encoding="utf-8")))
    assert len(truth) == sum(r["split"] in ("train", "val") for r in main)  # every training-side image, once
    weight, grid = choose_weight(cnn, landmarks, truth)
    assert fusion["weight"] == weight and fusion["val_grid"] == grid
    assert f"chosen on the {fusion['chosen_on']}" in (run / "report.md").read_text(encoding="utf-8")
