"""``nsl bench``: run each benchmark section in its own environment and merge the results.

A section is a subprocess, ``PYTHON -m nsl.bench.<section> --out SECTION.json [options]`` (docs/ARCHITECTURE.md,
"Benchmarks"), so the edge sections run where mediapipe is and TensorFlow is not, and the training sections
where TensorFlow is. This module only finds the interpreters, passes the options, and writes OUT/bench.json
and OUT/bench.md (every section rendered the same way: title, machine, tables, notes). Standard library only:
``nsl`` imports it for every command.

The interpreter of an environment is ``$NSL_EDGE_PYTHON`` / ``$NSL_TRAIN_PYTHON``, else the python of a sibling
virtual environment of the running one (``.venvs/edge`` beside ``.venvs/train``), else the running one, whichever
imports the environment's modules and the section's; nothing assumes a source checkout.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nsl.bench.section import ERROR_FILE_ENV
from nsl.env import EXTRA_MODULES, git_commit
from nsl.errors import NslError
from nsl.fileio import write_json, write_text

WEIGHT_KEYWORDS = ("imagenet", "none")  # --weights: a file, or one of these (passed on as they are)


@dataclass(frozen=True)
class SectionInfo:
    extra: str          # environment: edge | train
    options: tuple      # orchestrator options passed on (when given)
    needs: tuple        # options without which the section cannot run
    env_defaults: tuple = ()  # (option, environment variable): the section's default for a needed option
    opt_in: bool = False      # runs only when named in --sections (it takes long: the soak)


DATA_DEFAULT = (("data", "NSL_REAL_DATA"),)  # the training sections default to $NSL_REAL_DATA/asl_36
SECTIONS = {  # each runs as python -m nsl.bench.<name>
    "classifier": SectionInfo("edge", ("model", "images", "data", "clip", "hands"), ("model",)),
    "app": SectionInfo("edge", ("model", "clip", "hand_model"), ("model", "clip")),
    "training": SectionInfo("train", ("data", "weights"), ("data",), DATA_DEFAULT),
    "sweep": SectionInfo("train", ("data", "weights"), ("data",), DATA_DEFAULT),
    "signers": SectionInfo("train", ("data", "weights", "hands"), ("data", "hands")),
    "soak": SectionInfo("edge", ("model", "clip", "hand_model", "frames"), ("model", "clip"), opt_in=True),
}


PROBE = """import importlib.util, sys
def found(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is missing
        return False
missing = [name for name in sys.argv[1:] if not found(name)]
print(" ".join(missing))
sys.exit(1 if missing else 0)
"""


def section_module(name: str) -> str:
    return f"nsl.bench.{name}"


def candidate_pythons(extra: str) -> list[str]:
    """``$NSL_<EXTRA>_PYTHON`` alone when set; else a sibling virtual environment named ``extra``, then this one."""
    named = os.environ.get(f"NSL_{extra.upper()}_PYTHON")
    if named:
        return [named]
    sibling = Path(sys.prefix).parent / extra / "bin" / "python"
    return list(dict.fromkeys([str(sibling), sys.executable] if sibling.is_file() else [sys.executable]))


def find_python(extra: str, module: str) -> tuple[str | None, str]:
    """(interpreter, '') for an environment that imports ``module``, else (None, why)."""
    wanted = (*EXTRA_MODULES[extra], module)
    why = ""
    for python in candidate_pythons(extra):
        try:
            proc = subprocess.run([python, "-c", PROBE, *wanted], capture_output=True, text=True, timeout=120)
        except OSError as err:
            why = f"{python}: {err.strerror or err}"
            continue
        if proc.returncode == 0:
            return python, ""
        why = f"{python} lacks {proc.stdout.strip() or 'a module'}"
    return None, why


def _section_command(python: str, name: str, out: Path, args) -> list[str]:
    info = SECTIONS[name]
    cmd = [python, "-m", section_module(name), "--out", str(out)]
    for option in ("runs", "warmup", "repeats"):
        if getattr(args, option) is not None:
            cmd += [f"--{option}", str(getattr(args, option))]
    if args.quick:
        cmd.append("--quick")
    for option in info.options:
        value = getattr(args, option, None)
        if value is not None:
            keyword = (option == "weights" and value in WEIGHT_KEYWORDS) or isinstance(value, int)
            cmd += [f"--{option.replace('_', '-')}", str(value) if keyword else str(Path(value).resolve())]
    return cmd


def _run(cmd: list[str], error_file: Path) -> tuple[int, str]:
    """Run a section: stdout and stderr pass through (progress bars), the tail of stderr is kept; a user
    mistake's message arrives in ``error_file``."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env={**os.environ, ERROR_FILE_ENV: str(error_file)})
    tail = b""
    while True:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        tail = (tail + chunk)[-4096:]
    proc.stderr.close()
    return proc.wait(), tail.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _check_inputs(args) -> None:
    if args.model is not None and not (Path(args.model) / "metadata.json").is_file():
        what = "no such folder" if not Path(args.model).exists() else "no metadata.json in it"
        raise NslError(f"--model {args.model}: not a model bundle ({what}; make one with 'nsl export RUN_DIR')")
    for option in ("clip", "images", "data", "weights", "hand_model", "hands"):
        value = getattr(args, option, None)
        keyword = option == "weights" and value in WEIGHT_KEYWORDS
        if value is not None and not keyword and not Path(value).exists():
            raise NslError(f"--{option.replace('_', '-')} {value}: no such file or folder")


def _plan(args) -> tuple[list[str], bool]:
    if args.sections is None:
        return [name for name, info in SECTIONS.items() if not info.opt_in], False
    names = [n.strip() for n in args.sections.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise NslError(f"--sections {args.sections!r}: unknown section {', '.join(unknown) or '(none given)'} "
                       f"(expected a comma-separated list of {', '.join(SECTIONS)})")
    return list(dict.fromkeys(names)), True


def _missing_inputs(name: str, args) -> list[str]:
    info, defaults = SECTIONS[name], dict(SECTIONS[name].env_defaults)
    missing = [f"--{n.replace('_', '-')}" + (f" (or ${defaults[n]})" if n in defaults else "")
               for n in info.needs if getattr(args, n, None) is None and not os.environ.get(defaults.get(n, ""))]
    if name == "classifier" and not (args.images or args.data or args.clip):
        missing.append("--images, --data or --clip (real images to classify)")
    return missing


def _section(name: str, args, explicit: bool, pythons: dict, parts: Path) -> tuple[str, object]:
    """Run one section -> ("ok", its JSON) | ("skipped", why) | ("failed", why); user mistakes raise.

    A named section's missing environment is reported before its missing inputs; a skipped one names both."""
    info = SECTIONS[name]
    key = (info.extra, section_module(name))
    if key not in pythons:
        pythons[key] = find_python(*key)
    python, why = pythons[key]
    problems = [f"needs {' and '.join(missing)}"] if (missing := _missing_inputs(name, args)) else []
    if python is None:
        problems.insert(0, f"needs the {info.extra} environment with {key[1]} ({why}): "
                           f"pip install 'nsl-edge[{info.extra}]', or set NSL_{info.extra.upper()}_PYTHON")
    if problems:
        if explicit:
            raise NslError(f"section {name} {problems[0]}")
        return "skipped", "not run: " + "; ".join(problems)
    section_json, error_file = parts / f"{name}.json", parts / f"{name}.error"
    print(f"== nsl bench: {name} ({info.extra} environment)", file=sys.stderr, flush=True)
    code, tail = _run(_section_command(python, name, section_json, args), error_file)
    if code == 2:
        raise NslError((error_file.read_text(encoding="utf-8") if error_file.is_file() else _last_line(tail)).strip())
    if code != 0 or not section_json.is_file():
        return "failed", f"exit {code}: {_last_line(tail)}"
    return "ok", json.loads(section_json.read_text(encoding="utf-8"))


def run_bench(args) -> int:
    names, explicit = _plan(args)
    _check_inputs(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, dict] = {"ok": {}, "skipped": {}, "failed": {}}
    pythons: dict = {}
    with tempfile.TemporaryDirectory(prefix=".sections-", dir=out) as parts:  # merged into bench.json, then gone
        for name in names:
            status, value = _section(name, args, explicit, pythons, Path(parts))
            found[status][name] = value
    merged = {"created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "command": "nsl bench " + " ".join(shlex.quote(a) for a in args.argv),
              "git_commit": git_commit(), "sections": found["ok"], "skipped": found["skipped"],
              "failed": found["failed"]}
    write_json(out / "bench.json", merged)
    write_text(out / "bench.md", render_markdown(merged))
    skipped, failed = found["skipped"], found["failed"]
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}"
          + (f" (skipped: {', '.join(skipped)})" if skipped else ""), file=sys.stderr)
    if failed:
        raise NslError("; ".join(f"section {k} failed ({v})" for k, v in failed.items()))
    return 0


def format_cell(value) -> str:
    """Numbers with 3 significant digits (one decimal from 100 up), None as '-', the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0 or abs(value) >= 100:
            return f"{value:.1f}" if value else "0"
        decimals = max(0, 2 - math.floor(math.log10(abs(value))))
        return f"{value:.{decimals}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _machine_line(machine: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in (machine.get("versions") or {}).items() if v)
    parts = [machine.get("cpu"), f"{machine.get('cores')} cores", f"{machine.get('memory_gb')} GB",
             f"Python {machine.get('python')}", machine.get("platform"),
             f"load {machine.get('load_1min_at_start')} at start", versions]
    return "; ".join(str(p) for p in parts if p and "None" not in str(p))


def render_table(data: dict) -> list[str]:
    lines = [f"*{data['caption']}*", "", "| " + " | ".join(map(format_cell, data["columns"])) + " |",
             "|" + "---|" * len(data["columns"])]
    lines += ["| " + " | ".join(map(format_cell, row)) + " |" for row in data["rows"]]
    return lines + [""]


def render_markdown(merged: dict) -> str:
    lines = ["# nsl bench", "", f"`{merged['command']}` (commit {merged.get('git_commit') or 'unknown'}, "
             f"{merged['created']})", ""]
    for name, data in merged["sections"].items():
        lines += [f"## {data.get('title', name)}", "", f"Machine: {_machine_line(data.get('machine', {}))}", ""]
        for item in data.get("tables", []):
            lines += render_table(item)
        lines += [f"- {note}" for note in data.get("notes", [])]
        lines += [""] if data.get("notes") else []
    for title, entries in (("Skipped", merged.get("skipped")), ("Failed", merged.get("failed"))):
        if entries:
            lines += [f"## {title}", ""] + [f"- {k}: {v}" for k, v in entries.items()] + [""]
    return "\n".join(lines).rstrip() + "\n"


def add_commands(commands) -> None:
    parser = commands.add_parser(
        "bench", help="benchmarks: classifier latency, the app loop, training throughput, input-size sweep",
        description="Each section runs in its own environment (edge: classifier, app; train: training, sweep) "
                    "and writes OUT/bench.json and OUT/bench.md. Every figure is a median of repeated runs "
                    "after warm-up. Without --sections, sections whose inputs or environment are missing are "
                    "skipped with a note.",
        epilog="e.g. nsl bench --model runs/exp/bundle --clip PHOTO_DIR --sections classifier,app --quick; "
               "this machine's results: bash scripts/bench.sh (benchmarks/README.md)")
    parser.add_argument("--model", default=None, metavar="BUNDLE", help="model bundle (classifier, app)")
    parser.add_argument("--clip", default=None, metavar="VIDEO|DIR",
                        help="recorded clip for the app (a video, or a folder of photos made into a 640x480 clip)")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="real images for the classifier (default: --data, else the clip's frames)")
    parser.add_argument("--data", default=None, metavar="DIR", help="labelled images (training, sweep; classifier)")
    parser.add_argument("--weights", default=None, metavar="H5|imagenet|none",
                        help="backbone weights: a Keras no-top file, imagenet or none (training, sweep)")
    parser.add_argument("--hand-model", default=None, metavar="PATH", help="hand_landmarker.task (app)")
    parser.add_argument("--hands", default=None, metavar="HANDS.npz",
                        help="the --data folder's hands file, from nsl data hands (signers; classifier: times "
                             "the bundle's landmark model on its hands)")
    parser.add_argument("--sections", default=None, metavar="LIST",
                        help=f"comma-separated, of {','.join(SECTIONS)} (default all that can run, except "
                             f"{','.join(n for n, i in SECTIONS.items() if i.opt_in)}: only when named)")
    parser.add_argument("--frames", type=int, default=None, metavar="N",
                        help="frames through the app loop for the soak section (default 100000)")
    parser.add_argument("--out", default="runs/bench", metavar="DIR", help="results folder (default runs/bench)")
    parser.add_argument("--runs", type=int, default=None, metavar="N",
                        help="timed repetitions per figure (classifier: calls, default 100; sweep: latency calls; "
                             "app: ignored, its frames are the repetitions)")
    parser.add_argument("--warmup", type=int, default=None, metavar="N",
                        help="untimed repetitions first (classifier: calls; app: first frames of each run)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="times each whole measurement is repeated, figures are medians over them (default 3)")
    parser.add_argument("--quick", action="store_true", help="few repetitions: checks the plumbing, not a measurement")
    parser.set_defaults(func=_run_bench_command)


def _run_bench_command(args) -> int:
    args.argv = sys.argv[sys.argv.index("bench") + 1:] if "bench" in sys.argv else []
    for option in ("runs", "warmup", "repeats", "frames"):
        value = getattr(args, option)
        if value is not None and value < (0 if option == "warmup" else 1):
            raise NslError(f"--{option} {value}: expected a whole number >= {0 if option == 'warmup' else 1}")
    return run_bench(args)
