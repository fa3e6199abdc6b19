"""What every benchmark section shares: its command line, the machine it ran on, its tables, its JSON file.

A section is ``PYTHON -m nsl.bench.<name> --out SECTION.json [options]`` (docs/ARCHITECTURE.md, "Benchmarks");
``nsl bench`` runs it in its own environment and merges the files. Standard library only, so the edge and the
train side both use it (timing statistics: ``nsl.stats``)::

    def parse_args(argv):
        parser = section_parser("classifier", "latency of every bundle file ...")
        parser.add_argument("--model")                      # the section's own options
        return parser.parse_args(argv)

    def classifier_section(args) -> dict:
        ...
        return section("classifier", "Title", tables=[table(...)], notes=[...], raw={...},
                       packages=("onnxruntime", "ai-edge-litert"))

    def main(argv=None) -> int:
        return run_section("classifier", parse_args, classifier_section, argv)

    if __name__ == "__main__":
        sys.exit(main())

``run_section`` writes the section's JSON to ``--out`` and turns an ``NslError`` into one stderr line and exit 2,
as ``nsl`` does (run by ``nsl bench``, the message goes to the file ``$NSL_BENCH_ERROR_FILE`` instead, and nsl
bench prints the line).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from typing import Callable, Sequence

from nsl.errors import NslError
from nsl.fileio import write_json, write_text

log = logging.getLogger(__name__)
ERROR_FILE_ENV = "NSL_BENCH_ERROR_FILE"  # set by nsl bench: a user mistake's message goes there, not to stderr


def section_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every section takes (``--runs``/``--warmup``/``--repeats`` default to the section's own)."""
    parser = argparse.ArgumentParser(prog=f"python -m nsl.bench.{name}",
                                     description=f"The {name} section of nsl bench: {description}.")
    parser.add_argument("--out", required=True, metavar="SECTION.json", help="where to write the section's results")
    parser.add_argument("--runs", type=int, default=None, metavar="N", help="timed repetitions per figure")
    parser.add_argument("--warmup", type=int, default=None, metavar="N", help="untimed repetitions first")
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="whole measurements repeated; each figure is the median over them")
    parser.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def positive(value: int | None, default: int, quick_default: int, quick: bool, name: str, minimum: int = 1) -> int:
    """A repetition count: the user's (checked), else the section's default (smaller with --quick)."""
    if value is None:
        return quick_default if quick else default
    if value < minimum:
        raise NslError(f"--{name} {value}: expected a whole number >= {minimum}")
    return value


def sample(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[int(i * len(items) / count)] for i in range(count)]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(packages: Sequence[str] = ()) -> dict:
    """CPU, cores, memory, Python, OS, load at the start (a shared machine is noisy) and package versions."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "platform": platform.platform(terse=True)}
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
        info["load_1min_at_start"] = round(os.getloadavg()[0], 2)
    except (OSError, ValueError, AttributeError):
        pass
    from importlib import metadata

    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info["versions"] = versions
    return info


def table(caption: str, columns: Sequence[str], rows: Sequence[Sequence]) -> dict:
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"table {caption!r}: row {row!r} has {len(row)} cells, expected {len(columns)}")
    return {"caption": caption, "columns": list(columns), "rows": [list(row) for row in rows]}


def section(name: str, title: str, tables: list[dict], notes: list[str], raw: dict,
            packages: Sequence[str] = ()) -> dict:
    return {"section": name, "title": title, "machine": machine_info(packages), "tables": tables,
            "notes": notes, "raw": raw}


def write_section(path: str, data: dict) -> None:
    write_json(path, data)


def run_section(name: str, parse_args: Callable[[list[str]], argparse.Namespace],
                compute: Callable[[argparse.Namespace], dict], argv: list[str] | None = None) -> int:
    """Section ``name``: ``compute(parse_args(argv))`` written to ``--out``, exit 0; a user mistake is one stderr line
    and exit 2 (a traceback with -v)."""
    argv = sys.argv[1:] if argv is None else argv
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    try:
        args = parse_args(argv)
        write_section(args.out, compute(args))
        log.info("wrote %s", args.out)
        return 0
    except NslError as err:
        if verbose:
            log.exception("error")
        if os.environ.get(ERROR_FILE_ENV):  # run by nsl bench, which prints the one line itself
            write_text(os.environ[ERROR_FILE_ENV], str(err))
        else:
            print(f"nsl bench {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nsl bench {name}: interrupted", file=sys.stderr)
        return 130
