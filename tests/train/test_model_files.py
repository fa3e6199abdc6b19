"""No code runs from a model file (issue 15, item 1). tf_keras loads an HDF5 file whatever its name, through the
legacy path where safe mode does not apply, so a Lambda layer's Python runs on load: every .keras that nsl
loads (nsl val RUN, nsl export, nsl train --resume, the best model restored at the end of a resumed run) must
be the native zip format, loaded in safe mode, unless the user passes --trust-model.

The hostile files are made here: a classifier with a Lambda layer whose code writes a marker file, saved as HDF5
and named .keras, and the same model saved in the native format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tf_keras as keras

from nsl.errors import NslError
from nsl.rundir import RunDir
from tests.conftest import env_python, run_nsl
from tests.edge.conftest import error_line


def lambda_classifier(marker: Path, size: int = 48, classes: int = 6):
    """A working classifier whose Lambda layer writes ``marker`` whenever the model is built (so on load)."""
    side_effect = eval(f"lambda x: (open({str(marker)!r}, 'w').write('code ran'), x)[1]")  # the path as a constant
    image = keras.Input((size, size, 3), name="image")
    x = keras.layers.Lambda(side_effect, name="payload")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(classes, activation="softmax", name="predictions")(x))


def save_hdf5_as(model, path: Path) -> Path:
    """The model saved as HDF5 under a .keras name (what tf_keras's legacy loader accepts regardless)."""
    model.save(path.with_suffix(".h5"), save_format="h5")
    path.with_suffix(".h5").rename(path)
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    return path


@pytest.fixture()
def hostile_run(tiny_run, tmp_path):
    """A copy of the tiny run whose best.keras is an HDF5 file with a Lambda layer; the marker it would write."""
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    marker = tmp_path / "marker"
    save_hdf5_as(lambda_classifier(marker), run / "best.keras")
    marker.unlink()  # saving built the model once
    return run, marker


def _refused(proc, file_name: str, marker: Path) -> str:
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert file_name in line and "--trust-model" in line
    assert not marker.exists(), "the model file's code ran"
    return line


def test_nsl_val_refuses_an_hdf5_model_and_runs_it_only_when_trusted(hostile_run):
    run, marker = hostile_run
    line = _refused(run_nsl("val", run, python=env_python("train"), check=False), "best.keras", marker)
    assert "an HDF5 (legacy Keras) file, not the native .keras format" in line
    run_nsl("val", run, "--trust-model", python=env_python("train"))  # the user's explicit choice
    assert marker.read_text() == "code ran"  # the marker works: the refusal above is what kept it from running


def test_nsl_export_refuses_an_hdf5_keras_file(hostile_run, synth_data, tmp_path):
    run, marker = hostile_run
    model = shutil.copy(run / "best.keras", tmp_path / "model.keras")
    proc = run_nsl("export", model, "--data", synth_data, "--out", tmp_path / "bundle", python=env_python("train"),
                   check=False)
    _refused(proc, "model.keras", marker)
    assert not (tmp_path / "bundle").exists()


def test_resume_refuses_an_hdf5_checkpoint_before_training(hostile_run):
    run, marker = hostile_run
    shutil.copy(run / "best.keras", run / "checkpoints" / "last.keras")
    (run / "best.keras").unlink()
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    state.update(phase=1, phase_epoch=0, epoch=1, finished=False)
    (run / "checkpoints" / "state.json").write_text(json.dumps(state))
    (run / "metrics.json").unlink()
    proc = run_nsl("train", "--resume", run, python=env_python("train"), check=False)
    _refused(proc, "last.keras", marker)
    assert "epoch 2" not in proc.stderr  # refused before any training


def test_a_lambda_in_the_native_format_is_blocked_by_safe_mode(hostile_run, tmp_path):
    run, marker = hostile_run
    lambda_classifier(marker).save(run / "best.keras")
    marker.unlink()
    proc = run_nsl("val", run, python=env_python("train"), check=False)
    assert proc.returncode == 2 and "best.keras: cannot load the model" in error_line(proc)
    assert "Lambda" in error_line(proc) and not marker.exists()


def test_the_best_model_restored_after_a_resume_is_checked_too(hostile_run):
    """_restore_best reads best.keras when this session never improved on it."""
    from nsl.train.trainer import _restore_best

    run, marker = hostile_run
    model = lambda_classifier(marker.with_name("unused"))
    with pytest.raises(NslError, match=r"best\.keras: an HDF5 \(legacy Keras\) file"):
        _restore_best(model, [], RunDir(run))
    assert not marker.exists()
    _restore_best(model, [], RunDir(run), trust=True)
    assert marker.exists()
