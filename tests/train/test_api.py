"""The README's Python API example runs as written, on tiny sizes: train() -> a run (exist_ok reusing a taken name),
export() -> a bundle, and in the edge environment Recognizer(bundle).predict(image) -> labelled hands.

The blocks are read from the README and only the listed arguments are swapped for tiny ones (each swap must
apply, so the example cannot drift from what is tested)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from nsl.fileio import read_json
from tests.conftest import ROOT, env_python, real_data

README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Python API (notebooks)", 1)[1].split("\n## ", 1)[0]
TRAIN_BLOCK, EDGE_BLOCK = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)
TINY = {"imgsz=160, epochs=10": "imgsz=48, epochs=3, weights='none', alpha=0.35, batch=16, steps_per_epoch=2, "
                                "patience=0, tensorboard=False, workers=2",
        "export(run, int8=True)": "export(run, int8=True, formats='tflite', calib=12, latency_runs=1, allow_drop=True)"}


def swapped(block: str, swaps: dict[str, str]) -> str:
    for old, new in swaps.items():
        assert old in block, f"README's API example no longer has {old!r}: update the test's swaps"
        block = block.replace(old, new)
    return block


def run_python(python: str, code: str, cwd, cache_dir) -> subprocess.CompletedProcess:
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=1200,
                          env={**os.environ, "NSL_CACHE_DIR": str(cache_dir)})
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_the_readme_api_example_runs(tmp_path, synth_data, hand_model):
    stale = tmp_path / "runs" / "notebook"  # a run of the same name already there: exist_ok reuses the name
    (stale / "bundle").mkdir(parents=True)
    (stale / "config.yaml").write_text("imgsz: 32\n", encoding="utf-8")
    (stale / "metrics.json").write_text('{"top1": 0.0}', encoding="utf-8")
    (stale / "bundle" / "metadata.json").write_text("{}", encoding="utf-8")

    code = swapped(TRAIN_BLOCK, {**TINY, '"data/synth"': repr(str(synth_data))})
    proc = run_python(env_python("train"), code + "\nprint('BUNDLE', bundle)\n", tmp_path, hand_model.parent)
    assert "plan: 3 epochs" in proc.stderr and not (tmp_path / "runs" / "notebook2").exists()
    plan = read_json(stale / "plan.json")
    assert plan["strategy"] == "single" and [p["epochs"] for p in plan["phases"]] == [3]  # the default recipe
    metadata = read_json(stale / "bundle" / "metadata.json")
    assert "model_int8.tflite" in metadata["files"] and metadata["preprocess"]["size"] == 48
    assert proc.stdout.strip().splitlines()[-1] == f"BUNDLE {os.path.join('runs', 'notebook', 'bundle')}"

    photo = sorted(p for p in real_data("hands_natural").rglob("*.jpg"))[0]
    edge = swapped(EDGE_BLOCK, {'"runs/notebook/bundle"': repr(str(stale / "bundle")), '"photo.jpg"': repr(str(photo))})
    report = ("\nimport json\nfrom nsl.preprocess import read_image\n"
              "crop = read_image(%r)\n"
              "rows = [vars(h) | {'landmarks': None if h.landmarks is None else list(h.landmarks.shape)}\n"
              "        for h in recognizer.predict(%r) + Recognizer(%r, detect=False).predict(crop)]\n"
              "print('JSON', json.dumps(rows, ensure_ascii=False))\n") % (
        str(next(synth_data.rglob("*.jpg"))), str(photo), str(stale / "bundle"))
    out = run_python(env_python("edge"), edge + report, tmp_path, hand_model.parent).stdout
    rows = json.loads(out.split("JSON ", 1)[1])
    labels = read_json(stale / "bundle" / "metadata.json")["labels"]
    found, crop = rows[:-1], rows[-1]
    assert found and found[0]["landmarks"] == [21, 3] and found[0]["handedness"] in ("Left", "Right")
    for row in rows:
        assert 0 <= row["index"] < len(labels) and 0.0 <= row["confidence"] <= 1.0 and len(row["box"]) == 4
        assert (row["name"], row["roman"]) == (labels[row["index"]]["name"], labels[row["index"]]["roman"])
        assert row["top"][0][0] == row["index"] and len(row["top"]) == 3
    assert crop["landmarks"] is None and crop["models"] == ["cnn"]
