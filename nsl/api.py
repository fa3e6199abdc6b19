"""The Python API (``from nsl import train, export, Recognizer``): the functions the CLI calls.

    from nsl import train, export
    run = train(data="data/synth", imgsz=160, epochs=10)     # any key of nsl/defaults.yaml; -> nsl.rundir.RunDir
    bundle = export(run, int8=True)                           # any key of `nsl cfg export`; -> the bundle's folder

Keys are checked as on the command line (the same kinds, "did you mean", one-line ``NslError``s); nested train
keys take a mapping (``augment={"rotation": 3}``). ``Recognizer`` (``nsl.edge.image_recognizer.ImageRecognizer``)
is the device side: it needs the edge environment, ``train`` and ``export`` the train environment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nsl.env import require
from nsl.rundir import RunDir


def _show_progress(verbose: bool) -> None:
    """The plan, the epochs and the metrics on stderr as ``nsl train`` shows them, unless the caller set up logging
    (a notebook usually has not; Ultralytics' ``verbose`` does the same)."""
    if verbose and not logging.getLogger().handlers and not logging.getLogger("nsl").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("nsl")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def train(config: str | Path | None = None, *, ensure: bool = False, trust_model: bool = False,
          verbose: bool = True, **keys: Any) -> RunDir:
    """Train a run: defaults < ``config`` (a YAML file) < ``keys``; ``ensure``: reuse project/name when it is a
    finished run of these options, resume it when interrupted (``nsl train --ensure``)."""
    from nsl.config import resolve

    options = resolve(config, keys)
    _show_progress(verbose)
    return train_options(options, ensure=ensure, trust_model=trust_model)


def train_options(options, *, ensure: bool = False, trust_model: bool = False) -> RunDir:
    """Train resolved ``nsl.options.Options`` (what ``nsl train`` does once the command line is resolved)."""
    from nsl.errors import NslError

    if not options.data.data:
        raise NslError("no dataset given: pass data=FOLDER or --data FOLDER (e.g. one made by 'nsl data synth')")
    require("train", "train")
    from nsl.train.run import ensure_run, train_run

    if ensure:
        return RunDir(ensure_run(options, Path(options.output.project) / options.output.name,
                                 trust_model=trust_model))
    return RunDir(train_run(options))


def resume(run: str | Path | RunDir, *, trust_model: bool = False, verbose: bool = True) -> RunDir:
    """Continue an interrupted run where it stopped (``nsl train --resume``)."""
    _show_progress(verbose)
    require("train", "train --resume")
    from nsl.train.run import resume_run

    return RunDir(resume_run(_path(run), trust_model=trust_model))


def export(run: str | Path | RunDir, config: str | Path | None = None, *, verbose: bool = True,
           **keys: Any) -> Path:
    """A run (or a .keras file with ``data=``) -> its model bundle folder; ``keys`` as ``nsl cfg export`` lists."""
    from nsl.commands.export import export_bundle
    from nsl.grammar import settings_namespace, verb_parser

    args = settings_namespace(verb_parser("nsl.commands.export", "export"), keys, config, path=str(_path(run)))
    _show_progress(verbose)
    out, _ = export_bundle(args)
    return Path(out)


def _path(run) -> Path:
    return Path(run.path if isinstance(run, RunDir) else run)
