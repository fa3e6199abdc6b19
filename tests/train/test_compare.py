"""`nsl compare`: both strategies on the same split and the same epoch budget, measured in one table."""

from __future__ import annotations

import pytest

from nsl.fileio import read_json
from tests.conftest import env_python, run_nsl
from tests.train.conftest import tiny_overrides


@pytest.mark.slow
def test_compare_trains_both_strategies_on_the_same_split(tmp_path, synth_data):
    out = tmp_path / "cmp"
    proc = run_nsl("compare", "--data", synth_data, "--out", out,
                   *[item for item in tiny_overrides() if not item.startswith("epochs=")],
                   "phases=[{name: head, epochs: 1, lr: 1.0e-3, trainable: none}, "
                   "{name: full, epochs: 1, lr: 1.0e-4, trainable: all}]", python=env_python("train"))
    result = read_json(out / "comparison.json")
    assert result["epoch_budget"] == 2 and set(result["runs"]) == {"progressive", "single"}
    for name, row in result["runs"].items():
        history = read_json(out / name / "history.json")
        assert row["epochs_run"] == len(history) == 2
        assert 1 <= row["best_epoch"] <= 2 and row["wall_s"] > 0 and 0 <= row["test_top1"] <= 1
    assert [e["phase"] for e in read_json(out / "single" / "history.json")] == ["single", "single"]
    assert (out / "progressive" / "split.csv").read_text() == (out / "single" / "split.csv").read_text()
    assert "| progressive |" in proc.stdout and (out / "comparison.md").read_text().count("| single |") == 1
