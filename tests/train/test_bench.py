"""`python -m nsl.bench.training|sweep` (sections of `nsl bench`) on the tiny synthetic set, --quick.

The sections run in-process (TensorFlow is loaded already); the one-line errors through a subprocess, as the
orchestrator runs them. Figures are checked for shape and consistency (every table cell is the median of its
raw measurements), never for speed.
"""

from __future__ import annotations

import logging
import statistics
import subprocess

import pytest

from nsl.fileio import read_json
from tests.conftest import ROOT, env_python
from nsl.errors import NslError
from nsl.bench.sweep import main as sweep_main, parse_sizes
from nsl.bench.training import bottleneck_note, main as training_main

SECTION_KEYS = {"section", "title", "machine", "tables", "notes", "raw"}


def _section(path, name):
    data = read_json(path)
    assert set(data) == SECTION_KEYS and data["section"] == name and data["title"]
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["tensorflow"]
    for table in data["tables"]:
        assert table["caption"] and all(len(row) == len(table["columns"]) for row in table["rows"])
    assert data["notes"] and all(isinstance(note, str) and note for note in data["notes"])
    return data


@pytest.mark.slow
def raw_rate(data: dict, key: str) -> float:
    return round(statistics.median(data["raw"][key]["first_epoch"]), 1)


def test_training_section(tmp_path, synth_data):
    out = tmp_path / "training.json"
    assert training_main(["--out", str(out), "--quick", "--data", str(synth_data)]) == 0
    data = _section(out, "training")
    (table,) = data["tables"]
    assert table["columns"] == ["what", "images/s", "trainable params"]
    assert len(table["rows"]) == 5 and all(row[1] > 0 for row in table["rows"])
    assert table["rows"][4][0] == "input pipeline, first epoch, decode=python"  # the decoder before, same run
    assert raw_rate(data, "pipeline_python") == table["rows"][4][1]
    assert data["raw"]["environment"]["dtype_policy"] == "float32"  # --mixed-precision auto, no GPU
    raw = data["raw"]
    pipeline, training = raw["pipeline"], raw["training"]
    assert len(pipeline["first_epoch"]) == len(pipeline["cached"]) == 2  # --quick: 2 repeats
    expected = [statistics.median(pipeline["first_epoch"]), statistics.median(pipeline["cached"]),
                statistics.median(training["frozen"]["images_per_s"]),
                statistics.median(training["unfrozen"]["images_per_s"])]
    assert [row[1] for row in table["rows"][:4]] == [round(value, 1) for value in expected]
    assert len(training["frozen"]["images_per_s"]) == 3  # --quick: 3 timed steps after warm-up
    assert 0 < training["frozen"]["trainable_params"] < training["unfrozen"]["trainable_params"]
    assert raw["config"]["imgsz"] == 48 and any(note.startswith("Bottleneck:") for note in data["notes"])


@pytest.mark.slow
def test_sweep_section_and_reuse(tmp_path, synth_data, caplog):
    out, cache = tmp_path / "sweep.json", tmp_path / "cache"
    argv = ["--out", str(out), "--quick", "--data", str(synth_data), "--sizes", "32", "--cache", str(cache)]
    assert sweep_main(argv) == 0
    data = _section(out, "sweep")
    (table,) = data["tables"]
    (row,) = table["rows"]
    cells = dict(zip(table["columns"], row))
    assert cells["input px"] == 32 and 0 <= cells["Keras top-1"] <= 1 and 0 <= cells["int8 TFLite top-1"] <= 1
    assert cells["int8 p50 ms (1 thread)"] > 0 and cells["fp32 p50 ms (1 thread)"] > 0 and cells["int8 size KB"] > 0
    (raw,) = data["raw"]["rows"]
    assert cells["int8 p50 ms (1 thread)"] == round(statistics.median(raw["int8_latency"]["ms_1thread"]), 2)
    assert len(raw["int8_latency"]["ms_all"]) == 2 and raw["test_images"] > 0
    columns = table["columns"]  # agreement with the Keras model beside int8 top-1, on the export's gate images
    assert columns.index("int8 agreement with Keras") == columns.index("int8 TFLite top-1") + 1
    assert 0 <= cells["int8 agreement with Keras"] <= 1 and raw["gate_images"] > raw["test_images"]
    assert any("noisy" in note for note in data["notes"])
    (history,) = cache.glob("*_32px/history.json")
    before = history.stat().st_mtime_ns

    caplog.set_level(logging.INFO, logger="nsl.bench.sweep")
    assert sweep_main(argv) == 0  # a rerun reuses the run and the bundle: only the latency is measured again
    assert history.stat().st_mtime_ns == before and "sweep: reusing" in caplog.text
    assert "sweep: exporting" not in caplog.text
    assert read_json(out)["raw"]["rows"][0]["train_s"] == raw["train_s"]


def test_bottleneck_note_follows_the_figures():
    assert "model is the bottleneck" in bottleneck_note(400, 900, 100, 20).split(";")[0]
    assert "first epoch is pipeline-bound" in bottleneck_note(50, 900, 100, 20).split(";")[0]
    assert "model is the bottleneck" in bottleneck_note(50, 900, 100, 20).split(";")[1]
    assert "pipeline is the bottleneck even when cached" in bottleneck_note(50, 90, 100, 20)


def test_parse_sizes():
    assert parse_sizes("96, 128,96", False) == [96, 128] and parse_sizes(None, True) == [32, 48]
    for bad in ("", "abc", "16,96"):
        with pytest.raises(NslError, match="--sizes"):
            parse_sizes(bad, False)


@pytest.mark.parametrize("args, message", [
    (["sweep", "--sizes", "96,abc"], "--sizes '96,abc': expected comma-separated input sizes"),
    (["training", "--data", "/nonexistent/photos"], "--data /nonexistent/photos: no such folder"),
    (["training", "--weights", "/nonexistent/w.h5"], "--weights /nonexistent/w.h5: no such file"),
    (["training", "--imgsz", "0"], "--imgsz 0: expected a whole number >= 32"),
])
def test_bad_input_is_one_line(tmp_path, synth_data, args, message):
    argv = [*args, "--out", str(tmp_path / "x.json")]
    if "--data" not in args:
        argv += ["--data", str(synth_data)]
    proc = subprocess.run([env_python("train"), "-m", f"nsl.bench.{args[0]}", *argv[1:]], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"nsl bench {args[0]}: error: ") and message in lines[0]
    assert not (tmp_path / "x.json").exists()
