"""Resume points: the model after every epoch (checkpoints/last.keras) and where training stood (state.json).

Both are written atomically (temporary file, then rename), so an interrupted run (Ctrl-C, a crash, a power cut)
always leaves the last complete epoch to resume from: ``nsl train --resume RUN_DIR``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from nsl.errors import NslError
from nsl.fileio import read_json, write_json

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST_MODEL = "last.keras"
STATE_FILE = "state.json"


@dataclass
class TrainState:
    """Where training stands; ``phase_epoch`` epochs of phase ``phase`` are done, ``epoch`` in all."""

    phase: int = 0
    phase_epoch: int = 0
    epoch: int = 0
    lr: float | None = None
    best_val_loss: float | None = None
    best_epoch: int = 0
    wait: int = 0
    stopped_early: bool = False
    finished: bool = False
    wall_s: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "TrainState":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def save_model(model, path: str | Path) -> Path:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_checkpoint(run_dir: str | Path, model, state: TrainState) -> None:
    """The model first, then the state that points at it: a state never describes a model not on disk."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if model is not None:
        save_model(model, folder / LAST_MODEL)
    write_json(folder / STATE_FILE, asdict(state))


def load_state(run_dir: str | Path) -> TrainState:
    path = Path(run_dir) / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        raise NslError(f"{path}: no resume point (is {run_dir} a run made by 'nsl train'?)")
    try:
        return TrainState.from_dict(read_json(path))
    except (ValueError, TypeError) as err:
        raise NslError(f"{path}: unreadable resume state ({err})") from None


def load_last_model(run_dir: str | Path):
    """The model of the last complete epoch, compiled with its optimizer state, or None before the first epoch."""
    import tf_keras as keras

    path = Path(run_dir) / CHECKPOINT_DIR / LAST_MODEL
    if not path.is_file():
        return None
    try:
        return keras.models.load_model(path)
    except Exception as err:
        raise NslError(f"{path}: cannot load the checkpoint ({type(err).__name__}); "
                       f"start a new run or delete it to restart from scratch") from None
