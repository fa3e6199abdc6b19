"""Typed errors whose message is the one line a user sees (the CLI prints it without a traceback)."""

import errno

DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


class NslError(Exception):
    """A user-facing error: what was received, what was expected, how to fix it."""


class ConfigError(NslError):
    """An unknown key, a value of the wrong type, or an unreadable config file."""


class DataError(NslError):
    """A missing/empty dataset folder, a class without images, too many unreadable files."""


class EnvironmentMissing(NslError):
    """A command that needs an extra (train or edge) the current environment lacks."""


def is_disk_full(err: BaseException) -> bool:
    """A full disk (or quota), whether Python raised it (OSError ENOSPC/EDQUOT) or a library wrapped it in its own
    error type (TensorFlow raises ResourceExhaustedError "...; No space left on device")."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return not isinstance(err, NslError) and any(text in str(err) for text in DISK_FULL_TEXTS)


def disk_full_message(err: BaseException, then: str = "run the command again") -> str:
    """The one line for a full disk: where, when known, that nothing was replaced, and what to do ``then``."""
    where = f" writing {err.filename}" if isinstance(err, OSError) and err.filename else ""
    return (f"no space left on device{where} ({type(err).__name__}); files are written whole or not at all, so "
            f"nothing was replaced: free some space (the output folder, the system temp folder), then {then}")
