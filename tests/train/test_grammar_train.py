"""The grammar on the train side, through the CLI: key=value beside flags in any order, `epochs` as the run's total
with the plan shown and recorded, a taken --name said out loud, and the data verbs in both grammars."""

from __future__ import annotations

import pytest

from nsl.fileio import read_json
from tests.conftest import env_python, run_nsl
from tests.train.conftest import tiny_overrides

TWO_PHASES = "phases=[{name: head, epochs: 1, lr: 1.0e-3, trainable: none}, {name: full, epochs: 1, lr: 1.0e-4, " \
             "trainable: all}]"


@pytest.mark.slow
def test_epochs_is_the_total_the_plan_is_shown_and_a_taken_name_is_said(tmp_path, synth_data):
    (tmp_path / "runs" / "plan").mkdir(parents=True)  # the name is taken
    recipe = [item for item in tiny_overrides() if not item.startswith("epochs=")]
    proc = run_nsl("train", "--data", synth_data, *recipe[:3], "--name", "plan", *recipe[3:], TWO_PHASES,
                   "epochs=4", cwd=tmp_path, python=env_python("train"))
    run = tmp_path / "runs" / "plan2"
    plan_line = next(line for line in proc.stderr.splitlines() if line.startswith("plan:"))
    assert plan_line.startswith("plan: 4 epochs, epochs=4 in all: head 2") and "full 2" in plan_line
    assert proc.stderr.index(plan_line) < proc.stderr.index("epoch 1 ")  # shown before training starts
    assert "runs/plan exists: this run is plan2" in proc.stderr
    assert "note: runs/plan exists, so this run is runs/plan2" in proc.stdout
    assert "next: nsl export runs/plan2 --int8" in proc.stdout
    plan = read_json(run / "plan.json")
    assert (plan["epochs"], plan["epochs_mode"], plan["total_epochs"]) == (4, "total", 4)
    assert [(p["name"], p["epochs"]) for p in plan["phases"]] == [("head", 2), ("full", 2)]
    assert [e["phase"] for e in read_json(run / "history.json")] == ["head", "head", "full", "full"]


def test_data_synth_and_check_in_both_grammars(tmp_path):
    train = env_python("train")
    run_nsl("data", "synth", tmp_path / "a", "--classes", "2", "--per-class", "1", "--size", "32", python=train)
    run_nsl("data", "synth", tmp_path / "b", "classes=2", "per_class=1", "size=32", python=train)
    files = [sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d).rglob("*.jpg")) for d in "ab"]
    assert files[0] == files[1] and len(files[0]) == 4
    assert [(tmp_path / "a" / f).read_bytes() for f in files[0]] == [(tmp_path / "b" / f).read_bytes() for f in files[1]]
    by_flag = run_nsl("data", "check", tmp_path / "a", "--json", "--labels", "auto", python=train)
    by_key = run_nsl("data", "check", tmp_path / "a", "json=true", "labels=auto", python=train)
    assert by_flag.stdout == by_key.stdout and by_key.stdout.lstrip().startswith("{")
