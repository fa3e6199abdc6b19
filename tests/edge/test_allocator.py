"""The app keeps glibc's malloc arenas few (resident memory stayed flatter over 40,000 frames, benchmarks/soak)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = ("import json, ctypes; from nsl.edge.allocator import limit_arenas; "
         "print(json.dumps(limit_arenas()))")


def _probe(env_extra: dict) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env_extra
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_limit_applies_on_glibc_and_the_environment_wins():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc: the limit is glibc's mallopt")
    assert _probe({}) == "true"
    assert _probe({"MALLOC_ARENA_MAX": "4"}) == "false"  # the user's setting stands

