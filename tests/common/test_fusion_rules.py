"""Fusion weight rules: the standard error of a saturated validation split, and the bench that judges rules on
held-out signers from a run's saved answers (planted runs: numpy and CSV only)."""

import numpy as np
import pytest

from nsl.bench.fusion_rules import RULES, judge_run
from nsl.errors import NslError
from nsl.fusion import standard_error
from nsl.rundir import RunDir
from nsl.samples import Sample, save_split


def test_the_standard_error_of_a_saturated_split_is_not_zero_with_agresti_coull():
    assert standard_error(1.0, 51, "wald") == 0.0
    assert 0.02 < standard_error(1.0, 51, "agresti_coull") < 0.03  # about 1.3 of 51 photos
    assert standard_error(0.8, 1000, "agresti_coull") == pytest.approx(standard_error(0.8, 1000, "wald"), rel=0.01)
    with pytest.raises(ValueError, match="wald or agresti_coull"):
        standard_error(0.5, 10, "exact")


def _answers(truth: np.ndarray, right: np.ndarray, classes: int = 3, sharp: float = 4.0) -> np.ndarray:
    logits = np.zeros((len(truth), classes))
    logits[np.arange(len(truth)), np.where(right, truth, (truth + 1) % classes)] = sharp
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _planted_run(folder, groups: list[str]) -> RunDir:
    """A run whose CNN is right on every validation photo and on none of group 'b''s test photos."""
    rng = np.random.default_rng(0)
    run = RunDir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    val_truth, test_truth = rng.integers(0, 3, 20), rng.integers(0, 3, len(groups))
    test = [Sample(f"/data/{g}_{i}.jpg", int(t), group=g) for i, (g, t) in enumerate(zip(groups, test_truth))]
    save_split({"train": [], "val": [Sample(f"/data/v{i}.jpg", int(t)) for i, t in enumerate(val_truth)],
                "test": test}, run.split_file)
    in_b = np.array([g == "b" for g in groups])
    np.savez(run.fusion_inputs_file, val_cnn=_answers(val_truth, np.ones(20, bool)),
             val_landmarks=_answers(val_truth, np.arange(20) % 10 != 0), val_truth=val_truth,
             test_cnn=_answers(test_truth, ~in_b), test_landmarks=_answers(test_truth, np.ones(len(groups), bool)),
             test_truth=test_truth)
    return run


def test_rules_are_judged_on_the_named_groups_only(tmp_path):
    run = _planted_run(tmp_path / "run", ["a"] * 6 + ["b"] * 4)
    only_a = judge_run(run, {"a"})
    assert only_a["n_judged"] == 6 and only_a["n_val"] == 20 and only_a["cnn"] == 1.0
    only_b = judge_run(run, {"b"})
    assert only_b["n_judged"] == 4 and only_b["cnn"] == 0.0 and only_b["landmarks"] == 1.0
    assert set(only_b["rules"]) == set(RULES)
    assert all(score <= only_b["ceiling"][1] for _, score in only_b["rules"].values())
    with pytest.raises(NslError, match="none of its 10 test photos is in --judge c"):
        judge_run(run, {"c"})
    run.fusion_inputs_file.unlink()
    with pytest.raises(NslError, match="fusion_inputs.npz"):
        judge_run(run, {"a"})
