"""Benchmarks (``nsl bench``), above the stages: may import nsl.train, nsl.export, nsl.edge and the core; no stage
imports it.

``nsl.bench.orchestrator`` (standard library only, so this package is light to import: ``nsl`` imports it for
every command) runs each section in its own environment as ``PYTHON -m nsl.bench.<section> --out SECTION.json
[options]`` and merges the results; ``nsl.bench.section`` has what the sections share; the sections are
``classifier`` and ``app`` (edge environment) and ``training`` and ``sweep`` (train environment).
See docs/ARCHITECTURE.md, "Benchmarks".
"""

from nsl.bench.orchestrator import add_commands

__all__ = ["add_commands"]
