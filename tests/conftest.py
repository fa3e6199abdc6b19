"""Shared test helpers: where the real photos are, and running ``nsl`` in either environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("NSL_REAL_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS_DIR = Path(os.environ.get("NSL_WEIGHTS", ROOT.parent / "shared" / "weights"))


def env_python(name: str) -> str:
    """The interpreter of the train or edge environment (set by scripts/test.sh), else this one."""
    return os.environ.get(f"NSL_{name.upper()}_PYTHON", sys.executable)


def run_nsl(*args, python: str | None = None, check: bool = True, timeout: float = 900,
            cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``nsl ARGS`` in a subprocess, as a user would; returns the completed process (text output)."""
    cmd = [python or sys.executable, "-m", "nsl", *map(str, args)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def real_data(subfolder: str) -> Path:
    """A folder of ../shared/data (or NSL_REAL_DATA); skips the test with a reason when it is absent."""
    path = REAL_DATA / subfolder
    if not path.is_dir():
        pytest.skip(f"real photos not found at {path} (set NSL_REAL_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def test_cache() -> Path:
    """A folder shared by the tests of one run (and both environments), for expensive artifacts."""
    path = Path(os.environ.get("NSL_TEST_CACHE", ROOT / ".cache" / "tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def hand_model(test_cache) -> Path:
    """MediaPipe's hand model, built offline once (``nsl hand-model build``, edge environment) into the shared
    test cache. Here, not in tests/edge, because the train half (which runs first) needs it too: the README's
    API example ends in the edge environment."""
    folder = test_cache / "hand_model"
    path = folder / "hand_landmarker.task"
    if not path.is_file():
        proc = run_nsl("hand-model", "build", python=env_python("edge"), check=False,
                       env={"NSL_CACHE_DIR": str(folder)})
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            if "pip download" in last:  # no network or no package index: nothing the code can fix
                pytest.skip(f"cannot build the hand model offline: {last}")
            raise AssertionError(f"nsl hand-model build failed:\n{proc.stderr}")
    return path
