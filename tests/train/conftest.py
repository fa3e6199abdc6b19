"""Fixtures of the training tests, and the tiny training recipe every stage's tests can reuse.

The tiny recipe (``TINY_RECIPE``): MobileNetV2 alpha 0.35, 48 px, weights none, batch 16, three phases of one
epoch each (head / layers 140+ / all) of 2 steps, on a 6-class synthetic set of 64 px images. A run takes about
20-30 s on 2 cores. ``make_tiny_run(cache)`` trains it once through the real CLI (``nsl train`` in the train
environment, a subprocess) and reuses the run while the code that made it is unchanged, so tests of the export
and the edge app (either environment) can take a real RUN_DIR:

    from tests.train.conftest import make_tiny_run
    run_dir = make_tiny_run(test_cache)        # RUN_DIR with best.keras, split.csv, labels.json, metrics.json

No TensorFlow is imported here: the edge environment may import this module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nsl.env import prepare_tensorflow
from tests.conftest import ROOT, env_python, run_nsl

prepare_tensorflow()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

TINY_DATA = {"classes": 6, "per_class": 10, "size": 64, "seed": 0}  # 6 x 10 x 2 subsets = 120 images
TINY_RECIPE = ["strategy=progressive", "imgsz=48", "weights=none", "alpha=0.35", "batch=16", "steps_per_epoch=2",
               "epochs=3", "patience=0", "tensorboard=false", "workers=2"]


def tiny_overrides(**extra) -> list[str]:
    """The tiny recipe as key=value items, with ``extra`` keys replaced."""
    items = dict(item.split("=", 1) for item in TINY_RECIPE)
    items.update({key: str(value) for key, value in extra.items()})
    return [f"{key}={value}" for key, value in items.items()]


def tiny_config(data: Path, **extra):
    """The resolved options (nsl.options.Options) of the tiny recipe (for calling the Python API in-process)."""
    from nsl.config import resolve

    return resolve(overrides=tiny_overrides(data=data, **extra))


def make_synth(folder: Path, **options) -> Path:
    """The tiny synthetic dataset (published layout), made once per folder."""
    from nsl.synth import synthesize

    if not (folder / "Plain Background").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        synthesize(folder, **{**TINY_DATA, **options})
    return folder


def _code_stamp(recipe: dict | None = None) -> str:
    """Changes whenever the code that makes a run (or the recipe) changes."""
    digest = hashlib.sha256(json.dumps([TINY_DATA, TINY_RECIPE, recipe or {}], sort_keys=True).encode())
    for pattern in ("train/*.py", "nsl/*.py", "nsl/defaults.yaml", "edge_app/preprocess.py"):
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def make_cached_run(cache: Path, prefix: str, **recipe) -> Path:
    """A finished RUN_DIR of the tiny recipe with ``recipe`` keys replaced, trained through ``nsl train`` under
    ``cache`` as PREFIX_STAMP when missing or stale (older PREFIX_* runs are removed)."""
    run_dir = cache / f"{prefix}_{_code_stamp(recipe)}"
    if (run_dir / "metrics.json").is_file():
        return run_dir
    for old in cache.glob(f"{prefix}_*"):
        shutil.rmtree(old, ignore_errors=True)
    data = make_synth(cache / "synth_tiny")
    run_nsl("train", *tiny_overrides(data=data, **recipe), f"--project={cache}", f"--name={run_dir.name}",
            python=env_python("train"))
    return run_dir


def make_tiny_run(cache: Path) -> Path:
    """A finished RUN_DIR of the tiny recipe under ``cache``, trained through ``nsl train`` when missing/stale."""
    return make_cached_run(cache, "tiny_run")


@pytest.fixture(scope="session")
def synth_data(test_cache) -> Path:
    return make_synth(test_cache / "synth_tiny")


@pytest.fixture(scope="session")
def tiny_run(test_cache) -> Path:
    """A finished tiny run directory (see the module docstring)."""
    return make_tiny_run(test_cache)
