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
