"""Subcommands of the train side (registered by nsl.cli); handlers import TensorFlow lazily."""

from __future__ import annotations

from train.data_commands import add_data_commands
from train.train_commands import add_train_commands


def add_commands(commands) -> None:
    add_data_commands(commands)
    add_train_commands(commands)
