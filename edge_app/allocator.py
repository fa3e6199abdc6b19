"""The C allocator's arenas, kept few, so that hours of frames do not creep resident memory up (glibc only).

glibc's malloc gives each thread that meets contention an arena of its own, up to eight per core. The app's
threads (capture, hand tracker, classifier worker, the runtimes' own) each free frame-sized blocks into their
arena; the holes those leave are reused unevenly across arenas, so the memory the process holds creeps up while
the memory in use stays flat (measured: ``nsl bench --sections soak``, benchmarks/soak). One arena keeps every
thread's frees in one pool: a reopened stream's new decoder threads then reuse the space the old ones freed
instead of growing a second arena by a frame (benchmarks/soak/pool: the reconnect step 116 against 1,020 KB, the
same frame rate). ``MALLOC_ARENA_MAX`` in the environment wins, as glibc documents it.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h
DEFAULT_ARENAS = 1


def limit_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """At most ``arenas`` malloc arenas from now on (call before the app's threads start); False where the C
    library is not glibc, or where ``MALLOC_ARENA_MAX`` already says how many."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas limited to %d: %s", arenas, done)
    return done
