"""Load a model file once in a child process before this process does: a runtime that crashes on a damaged or
crafted file (LiteRT, MediaPipe's TFLite) takes the child down, not the app. Callers word the one-line error."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class ProbeOutcome:
    """How the child ended: ``ok``, ``timeout``, ``crash`` (``detail``: the signal's name) or ``error`` (``detail``:
    the last line the script printed to stderr)."""

    kind: str
    detail: str = ""


def probe_in_child(script: str, path: Path, timeout: float = PROBE_TIMEOUT_S) -> ProbeOutcome:
    """Run ``python -c script PATH``; the script exits non-zero with a reason on stderr when it cannot load."""
    try:
        proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ProbeOutcome("timeout")
    if proc.returncode < 0:
        number = -proc.returncode
        return ProbeOutcome("crash", signal.Signals(number).name if number in signal.valid_signals() else "a signal")
    if proc.returncode != 0:
        return ProbeOutcome("error", (proc.stderr.strip().splitlines() or ["no message"])[-1])
    return ProbeOutcome("ok")
