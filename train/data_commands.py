"""`nsl data synth` and `nsl data check`."""

from __future__ import annotations


def add_data_commands(commands) -> None:
    """Register `nsl data ...`."""
