"""The README's first command: scripts/demo.sh runs every stage (synthetic data, three-phase training, int8
export, offline hand model, the app on clips) and ends with its table; a second run reuses every stage.
Quick mode (NSL_DEMO_QUICK=1) keeps the steps and shrinks the data and epochs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def run_demo(folder: Path, hand_model: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NSL_DEMO_DIR": str(folder), "NSL_DEMO_QUICK": "1", "NSL_DEMO_SKIP_SETUP": "1",
           "NSL_CACHE_DIR": str(hand_model.parent)}
    return subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, hand_model):
    for name in ("train", "edge"):
        if not (ROOT / ".venvs" / name / "bin" / "nsl").exists():
            pytest.skip(f".venvs/{name} is missing: run the suite through scripts/test.sh")
    folder = tmp_path_factory.mktemp("demo")
    first = run_demo(folder, hand_model)
    assert first.returncode == 0, f"demo failed:\n{first.stdout[-4000:]}\n{first.stderr[-4000:]}"
    return folder, first


def test_demo_runs_every_stage_and_ends_with_the_table(demo_run):
    folder, proc = demo_run
    for step in range(1, 7):
        assert f"== {step}/6" in proc.stdout
    run = folder / "runs" / "nsl36"
    history = json.loads((run / "history.json").read_text())
    assert {entry["phase"] for entry in history} == {"head", "top", "full"}, "all three phases trained"
    metadata = json.loads((run / "bundle" / "metadata.json").read_text())
    assert {"model_int8.tflite", "model_int8.onnx", "model_fp32.tflite", "model_fp32.onnx"} <= set(metadata["files"])
    table = proc.stdout[proc.stdout.index("== summary"):]
    assert "Keras model (best.keras)" in table and "model_int8.tflite" in table and "FPS" in table
    for log in ("app_synthetic.jsonl", "app_real_photos.jsonl"):
        if log == "app_real_photos.jsonl" and "skipped: no real photos" in proc.stdout:
            continue
        lines = (folder / log).read_text().splitlines()
        assert json.loads(lines[-1])["summary"]["frames"] == len(lines) - 1 > 0


def test_a_second_demo_run_reuses_every_stage(demo_run, hand_model):
    folder, _ = demo_run
    model = folder / "runs" / "nsl36" / "best.keras"
    stamp = model.stat().st_mtime_ns
    again = run_demo(folder, hand_model)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"reusing {folder / 'runs' / 'nsl36'}" in again.stdout
    assert model.stat().st_mtime_ns == stamp and not (folder / "runs" / "nsl362").exists()
