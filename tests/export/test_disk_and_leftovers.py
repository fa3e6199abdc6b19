"""A full disk during training or export, and an export killed with SIGKILL (issue 15, items 6 and 8): one line
and exit 2 (no traceback), nothing half-written, nothing lost (an existing bundle stays whole, the run resumes),
and what a killed export left behind is removed by the next one.

The full disk is a small tmpfs (tests.hostile.small_disk: skipped where mounting is not allowed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from nsl.edge.bundle import open_bundle
from nsl.fileio import sha256_of
from tests.conftest import ROOT, env_python, run_nsl
from tests.edge.conftest import error_line
from tests.hostile import small_disk, write_bundle
from tests.train.conftest import tiny_overrides

RUNTIME_FILES = {".ses"}  # onnxruntime's telemetry session id, written into the temp folder on import


def _entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name not in RUNTIME_FILES)


def test_a_full_disk_during_training_is_one_line_and_the_run_resumes(synth_data, tmp_path):
    with small_disk(tmp_path / "disk", "600k") as disk:
        proc = run_nsl("train", *tiny_overrides(data=synth_data), "--project", disk, "--name", "run",
                       python=env_python("train"), check=False)
        assert proc.returncode == 2, proc.stderr
        line = error_line(proc)
        assert "no space left on device" in line and f"nsl train --resume {disk / 'run'}" in line
        assert not [name for name in _entries(disk) if ".tmp" in name]  # no half-written checkpoint
        state = json.loads((disk / "run" / "checkpoints" / "state.json").read_text())
        saved = shutil.copytree(disk / "run", tmp_path / "saved")  # the space freed: the run goes on elsewhere
    assert state["epoch"] == 0 and not state["finished"]
    run_nsl("train", "--resume", saved, python=env_python("train"))
    assert json.loads((saved / "checkpoints" / "state.json").read_text())["finished"]


def test_a_full_disk_during_export_keeps_the_old_bundle(export_run, tmp_path):
    with small_disk(tmp_path / "disk", "3m") as disk:
        old = write_bundle(disk / "bundle")
        before = {p.name: sha256_of(p) for p in old.iterdir()}
        (disk / "tmp").mkdir()
        proc = run_nsl("export", export_run, "--formats", "tflite", "--out", old, "--force", "--latency-runs", "1",
                       python=env_python("train"), check=False, env={"TMPDIR": str(disk / "tmp")})
        assert proc.returncode == 2, proc.stderr
        assert "no space left on device" in error_line(proc)
        assert {p.name: sha256_of(p) for p in old.iterdir()} == before
        open_bundle(old)  # still whole
        assert _entries(disk) == sorted(["bundle", "tmp", *(f"bundle/{name}" for name in before)])


def test_what_a_killed_export_left_is_removed_by_the_next(export_run, tmp_path):
    out, scratch = tmp_path / "bundle", tmp_path / "tmp"
    scratch.mkdir()
    command = [env_python("train"), "-m", "nsl", "export", str(export_run), "--formats", "tflite", "--out", str(out),
               "--latency-runs", "1"]
    env = {**os.environ, "TMPDIR": str(scratch)}
    log = tmp_path / "export.log"
    with log.open("wb") as stderr:
        export = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 600
    while export.poll() is None and time.monotonic() < deadline:
        if list(tmp_path.glob(".bundle.*.tmp/model_fp32.tflite")):
            break  # killed once the new bundle is being written
        time.sleep(0.2)
    exited = export.poll()
    export.send_signal(signal.SIGKILL)
    export.wait()
    assert exited is None, f"the export ended (exit {exited}) before it could be killed:\n{log.read_text()[-2000:]}"
    left = [p.name for p in tmp_path.glob(".bundle.*.tmp")] + [p.name for p in scratch.glob("nsl-export-*")]
    assert len(left) == 2 and not out.exists(), left
    proc = run_nsl("export", export_run, "--formats", "tflite", "--out", out, "--latency-runs", "1",
                   python=env_python("train"), env={"TMPDIR": str(scratch)})
    assert "(left by an interrupted run)" in proc.stderr
    assert not list(tmp_path.glob(".bundle.*")) and not list(scratch.glob("nsl-export-*"))
    open_bundle(out)
