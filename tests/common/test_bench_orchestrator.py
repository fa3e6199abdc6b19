"""nsl bench's orchestrator without running a section: environments found or not, skips, generic rendering."""

from __future__ import annotations

import json

from nsl.bench.orchestrator import format_cell, render_markdown
from tests.conftest import run_nsl

NO_PYTHON = "/nonexistent/bin/python"


def test_missing_environment_of_a_named_section_names_the_extra(tmp_path):
    proc = run_nsl("bench", "--sections", "training", "--out", tmp_path, check=False,
                   env={"NSL_TRAIN_PYTHON": NO_PYTHON})
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("nsl bench: error: section training needs the train environment")
    assert "pip install 'nsl-edge[train]'" in line and "Traceback" not in proc.stderr


def test_unnamed_sections_without_inputs_or_environment_are_skipped_with_a_note(tmp_path):
    proc = run_nsl("bench", "--out", tmp_path, env={"NSL_TRAIN_PYTHON": NO_PYTHON, "NSL_EDGE_PYTHON": NO_PYTHON})
    merged = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert merged["sections"] == {} and merged["failed"] == {}
    assert set(merged["skipped"]) == {"classifier", "app", "training", "sweep", "signers"}
    assert "needs --model" in merged["skipped"]["classifier"]
    assert "nsl-edge[train]" in merged["skipped"]["training"]
    assert "## Skipped" in (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert "skipped: classifier, app, training, sweep, signers" in proc.stderr


def test_generic_rendering_of_any_section():
    merged = {"command": "nsl bench --x", "created": "2026-01-01T00:00:00Z", "git_commit": "abc",
              "sections": {"made_up": {"section": "made_up", "title": "A new section", "machine": {"cores": 2},
                                       "tables": [{"caption": "median of 3 runs", "columns": ["what", "ms", "ok"],
                                                   "rows": [["a|b", 1234.56, True], ["c", 0.012345, None]]}],
                                       "notes": ["a note"], "raw": {}}},
              "skipped": {}, "failed": {"other": "exit 1: boom"}}
    text = render_markdown(merged)
    assert "## A new section" in text and "*median of 3 runs*" in text and "- a note" in text
    assert "| what | ms | ok |" in text and "| a\\|b | 1234.6 | yes |" in text and "| c | 0.0123 | - |" in text
    assert "## Failed" in text and "- other: exit 1: boom" in text


def test_number_format():
    assert [format_cell(v) for v in (4.123, 12.34, 0.5, 1.0, 0.0, 250.0, 7, "x", None, float("nan"))] == \
           ["4.12", "12.3", "0.500", "1.00", "0", "250.0", "7", "x", "-", "-"]
