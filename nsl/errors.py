"""Typed errors whose message is the one line a user sees (the CLI prints it without a traceback)."""


class NslError(Exception):
    """A user-facing error: what was received, what was expected, how to fix it."""


class ConfigError(NslError):
    """An unknown key, a value of the wrong type, or an unreadable config file."""


class DataError(NslError):
    """A missing/empty dataset folder, a class without images, too many unreadable files."""


class EnvironmentMissing(NslError):
    """A command that needs an extra (train or edge) the current environment lacks."""
