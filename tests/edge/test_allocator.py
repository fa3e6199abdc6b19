"""The app keeps glibc's malloc arenas few (resident memory stayed flatter over 40,000 frames, benchmarks/soak)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = "import json; from nsl.edge.allocator import limit_arenas; print(json.dumps(limit_arenas()))"


def _probe(env_extra: dict) -> str:
    """limit_arenas() in a fresh interpreter (the setting is process-wide), with MALLOC_ARENA_MAX as given."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env_extra
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: the limit is glibc's mallopt")
def test_the_limit_applies_on_glibc_and_the_environment_wins():
    assert _probe({}) == "true"
    assert _probe({"MALLOC_ARENA_MAX": "4"}) == "false"  # the user's setting stands


CHURN = """
import ctypes, re, sys, tempfile, threading
libc = ctypes.CDLL(None)
if sys.argv[1] == "limited":
    from nsl.edge.allocator import limit_arenas
    limit_arenas()
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def churn():  # ctypes lets go of the GIL: eight threads really malloc at once, and glibc gives them arenas
    for _ in range(20000):
        libc.free(libc.malloc(4096))
threads = [threading.Thread(target=churn) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes, libc.malloc_info.argtypes = [ctypes.c_void_p], [ctypes.c_int, ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(len(re.findall(r'<heap nr="[0-9]+"', open(report.name).read())))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: malloc_info and the limit are glibc's")
def test_threads_that_malloc_at_once_share_the_limited_arenas():
    from nsl.edge.allocator import DEFAULT_ARENAS

    def arenas(mode: str) -> int:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
        return int(subprocess.run([sys.executable, "-c", CHURN, mode], env=env, capture_output=True, text=True,
                                  check=True).stdout)

    unlimited = arenas("default")
    if unlimited <= DEFAULT_ARENAS:
        pytest.skip(f"eight threads met no contention here ({unlimited} arena(s) without the limit)")
    assert arenas("limited") <= DEFAULT_ARENAS < unlimited
