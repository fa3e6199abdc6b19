"""The stages import downward only, and no module imports itself round a circle.

    core (nsl.*: config, options, rundir, dataset, preprocess, labels, fileio, ...)  <- everything may use it
    nsl.edge (edge_app/)      the device: core only
    nsl.train (train/)        training: core only
    nsl.export (export/)      export: core, nsl.train, nsl.edge (it verifies every file through the device runtime)
    top (nsl.cli, nsl.grammar, nsl.api, nsl.commands, nsl.bench)   commands, the Python API and benchmarks: anything

One exception, named here: the package ``nsl`` itself is the API's front door (``from nsl import train``), so its
``__init__`` may import ``nsl.api`` and ``nsl.edge.image_recognizer``, inside the functions that run on first use;
those lazy edges cannot form an import-time circle and are left out of the circle check.

Every import counts, including those inside functions (a lazy import is still a dependency). The graph is read
from the source with ``ast``, so the test runs in either environment without importing TensorFlow or mediapipe.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

FOLDERS = {"nsl": "nsl", "train": "nsl.train", "export": "nsl.export", "edge_app": "nsl.edge"}
TOP = ("nsl.cli", "nsl.__main__", "nsl.grammar", "nsl.api", "nsl.commands", "nsl.bench")
FRONT_DOOR = {"nsl": {"nsl.api", "nsl.edge.image_recognizer"}}  # nsl/__init__.py: the API, imported on first use
STAGES = ("nsl.train", "nsl.export", "nsl.edge")
ALLOWED = {"core": {"core"}, "nsl.edge": {"core", "nsl.edge"}, "nsl.train": {"core", "nsl.train"},
           "nsl.export": {"core", "nsl.train", "nsl.edge", "nsl.export"}, "top": {"core", *STAGES, "top"}}


def module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if folder == "nsl" and parts[0] in ("train", "export", "edge"):
                continue
            name = ".".join((package, *parts)).removesuffix(".__init__")
            modules[name] = path
    return modules


MODULES = module_files()


def layer(module: str) -> str:
    if any(module == top or module.startswith(top + ".") for top in TOP):
        return "top"
    for stage in STAGES:
        if module == stage or module.startswith(stage + "."):
            return stage
    return "core"


def imports_of(module: str, path: Path) -> set[str]:
    """Project modules that ``module`` imports anywhere in its file (``from nsl.x import y`` counts nsl.x.y when
    that is a module, else nsl.x)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


GRAPH = {module: imports_of(module, path) - FRONT_DOOR.get(module, set()) for module, path in MODULES.items()}


def test_the_front_door_imports_only_the_api():
    assert imports_of("nsl", MODULES["nsl"]) == FRONT_DOOR["nsl"]


def test_the_stage_folders_are_found():
    assert {"nsl.config", "nsl.train.run", "nsl.export.exporter", "nsl.edge.app", "nsl.commands.train"} <= set(MODULES)


def test_no_module_imports_the_top_level_stage_names():
    """The installed names are nsl.train / nsl.export / nsl.edge; 'import train' would be shadowed by a user's
    train.py in the working directory."""
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{module}: {n}" for n in names if n.split(".")[0] in ("train", "export", "edge_app")]
    assert not offenders, offenders


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_downward(module):
    wrong = sorted(dep for dep in GRAPH[module] if layer(dep) not in ALLOWED[layer(module)])
    assert not wrong, f"{module} ({layer(module)}) must not import {wrong}"


def test_there_is_no_import_circle():
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_a_planted_violation_is_caught(tmp_path):
    """The checker itself: a train module importing export, and a circle, are both reported."""
    planted = tmp_path / "bad.py"
    planted.write_text("from nsl.export.verify import check_gate\nfrom nsl.train import run\n")
    deps = imports_of("nsl.train.bad", planted)
    assert "nsl.export.verify" in deps and "nsl.train.run" in deps
    assert layer("nsl.export.verify") not in ALLOWED[layer("nsl.train.bad")]
