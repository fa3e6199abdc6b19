"""Fixtures of the edge tests (edge environment: mediapipe, no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest


def error_line(proc) -> str:
    """The one error line of a failed ``nsl`` run (log lines may come before it; no traceback after it)."""
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("nsl ") and ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture(scope="session")
def tiny_bundle(test_cache) -> Path:
    """A model bundle of a tiny trained run with every file kind (TFLite fp32/fp16/int8/QAT int8, ONNX
    fp32/int8/QAT int8), 6 synthetic classes, made once by ``nsl export`` in the train environment (subprocess
    with NSL_TRAIN_PYTHON) and cached in the test cache; see tests/export/conftest.py. Read-only: copy it
    before changing anything. Its ``metadata.json`` names the run (``source_run``) and so its test split."""
    from tests.export.conftest import make_export_bundle

    return make_export_bundle(test_cache)
