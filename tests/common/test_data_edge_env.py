"""`nsl data synth` and `nsl data check` need no TensorFlow: they run in the edge environment as they are."""

import importlib.util
import json

import pytest

from tests.conftest import run_nsl

PROBE = ("import runpy, sys; sys.argv = ['nsl'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('nsl', run_name='__main__')\n"
         "finally:\n    print('TF_LOADED' if 'tensorflow' in sys.modules else 'TF_ABSENT', file=sys.stderr)")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None,
                    reason="this environment has TensorFlow: the point is the edge environment without it")
def test_data_synth_then_check_run_without_tensorflow(tmp_path):
    out = tmp_path / "synth"
    synth = run_nsl("data", "synth", str(out), "--classes", "3", "--per-class", "4", "--size", "64")
    assert "next: nsl data check" in synth.stdout
    images = sorted(out.rglob("*.jpg"))
    assert len(images) == 3 * 4 * 2  # 3 classes x 4 images x 2 subsets
    check = run_nsl("data", "check", str(out), "--json")
    report = json.loads(check.stdout)
    assert [row["index"] for row in report["classes"]] == [0, 1, 2]
    assert sum(row["total"] for row in report["classes"]) == len(images)
    assert {"name", "roman", "ascii"} <= set(report["classes"][0])


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="needs the environment without TF")
def test_data_check_imports_no_tensorflow_and_tfrecords_name_the_train_environment(tmp_path):
    import subprocess
    import sys

    (tmp_path / "train.tfrecord").write_bytes(b"\0" * 16)
    proc = subprocess.run([sys.executable, "-c", PROBE, "data", "check", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("TF_ABSENT"), proc.stderr
    assert "TFRecord files; reading them needs TensorFlow (the train environment" in proc.stderr
