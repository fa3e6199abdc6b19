"""`nsl train`, `nsl val` and `nsl compare`."""

from __future__ import annotations


def add_train_commands(commands) -> None:
    """Register `nsl train`, `nsl val`, `nsl compare`."""
