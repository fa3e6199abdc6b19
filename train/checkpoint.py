"""Resume points: the model after every epoch (checkpoints/last.keras) and where training stood (state.json).

Both are written atomically (temporary file, then rename), so an interrupted run (Ctrl-C, a crash, a power cut)
always leaves the last complete epoch to resume from: ``nsl train --resume RUN_DIR``. The file names and the
``TrainState`` record belong to ``nsl.rundir.RunDir``; this module adds what needs Keras.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nsl.errors import NslError
from nsl.fileio import fsync_path, owner_tag, remove_stale_temps
from nsl.rundir import RunDir, TrainState

log = logging.getLogger(__name__)


def save_model(model, path: str | Path) -> Path:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, f".{path.stem}.")  # what a killed save left
    tmp = path.with_name(f".{path.stem}.{owner_tag()}.tmp{path.suffix}")
    try:
        model.save(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_checkpoint(run: RunDir, model, state: TrainState) -> None:
    """The model first, then the state that points at it: a state never describes a model not on disk."""
    if model is not None:
        save_model(model, run.last_model)
    run.write_state(state)


def load_state(run: RunDir) -> TrainState:
    """The resume point; a run stopped after its data was prepared but before its first checkpoint (killed
    while building the model or in its first epoch) starts again from the first epoch, in the same folder."""
    state = run.state()
    if state is None and run.split_file.is_file():
        log.warning("%s: no checkpoint yet (stopped before its first epoch ended): starting from the first epoch",
                    run.path)
        return TrainState()
    if state is None:
        raise NslError(f"{run.state_file}: no resume point (is {run.path} a run made by 'nsl train'?)")
    return state


def load_last_model(run: RunDir, trust: bool = False):
    """The model of the last complete epoch, compiled with its optimizer state, or None before the first epoch;
    only the native format, in safe mode, unless ``trust`` (nsl.train.model.check_keras_file)."""
    from nsl.train.model import load_keras

    if not run.last_model.is_file():
        return None
    try:
        return load_keras(run.last_model, compile=True, trust=trust)
    except NslError:
        raise
    except Exception as err:
        raise NslError(f"{run.last_model}: cannot load the checkpoint ({type(err).__name__}); "
                       f"start a new run or delete it to restart from scratch") from None
