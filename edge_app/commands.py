"""Subcommands of this package (registered by nsl.cli); handlers import their heavy modules lazily."""

from __future__ import annotations


def add_commands(commands) -> None:
    """Register this package's subcommands on the ``nsl`` parser."""
