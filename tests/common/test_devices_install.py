"""scripts/install_edge.sh decides by CPU, board and Python: its --dry-run plan with faked inputs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "install_edge.sh"
CPUINFO = {"a72": ROOT / "scripts" / "arm64" / "cpuinfo-cortex-a72", "a76": ROOT / "scripts" / "arm64" / "cpuinfo-cortex-a76"}
PI4, PI5 = "Raspberry Pi 4 Model B Rev 1.4", "Raspberry Pi 5 Model B Rev 1.0"


def plan(tmp_path, *args, arch="aarch64", cpu="a72", model="", python="3.11", tegra=False):
    """Run the script with --dry-run on faked machine facts; returns the completed process."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NSL_ARCH": arch, "NSL_CPUINFO": str(CPUINFO[cpu]),
           "NSL_DEVICE_MODEL": model, "NSL_PYTHON": sys.executable, "NSL_PYTHON_VERSION": python,
           "NSL_TEGRA_RELEASE": str(tmp_path / "nv_tegra_release")}
    if tegra:
        (tmp_path / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 0, BOARD: generic\n")
    return subprocess.run(["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def pip_command(out: str) -> str:
    return next(line for line in out.splitlines() if "pip install" in line and " -r " in line)


def test_pi4_gets_mediapipe_0_10_18_and_says_why(tmp_path):
    proc = plan(tmp_path, model=PI4, cpu="a72")
    assert proc.returncode == 0, proc.stderr
    assert "board        : Raspberry Pi 4 Model B Rev 1.4 -> pi4" in proc.stdout
    assert "atomics: no" in proc.stdout and "Cortex-A72" in proc.stdout
    assert "mediapipe 0.10.18" in proc.stdout and "aborts on this CPU" in proc.stdout
    assert "docker/requirements-pi4.txt" in pip_command(proc.stdout)
    assert f"{tmp_path}/.venvs/nsl-edge/bin/python" in pip_command(proc.stdout)
    assert not (tmp_path / ".venvs").exists(), "a dry run must install nothing"


def test_pi5_gets_mediapipe_1x(tmp_path):
    proc = plan(tmp_path, model=PI5, cpu="a76")
    assert proc.returncode == 0, proc.stderr
    assert "-> pi5" in proc.stdout and "atomics: yes" in proc.stdout and "Cortex-A76" in proc.stdout
    assert "mediapipe >= 1.2" in proc.stdout
    assert "docker/requirements-pi5.txt" in pip_command(proc.stdout)


def test_the_cpu_decides_not_the_board_name(tmp_path):
    """A Pi 4 model string with an atomics-capable cpuinfo still gets 1.x: the check is the CPU feature."""
    proc = plan(tmp_path, model=PI4, cpu="a76")
    assert proc.returncode == 0 and "docker/requirements-pi5.txt" in pip_command(proc.stdout)


def test_x86_64_counts_as_having_atomics(tmp_path):
    proc = plan(tmp_path, arch="x86_64", cpu="a72", python="3.13")
    assert proc.returncode == 0, proc.stderr
    assert "x86-64 always has atomic instructions" in proc.stdout
    assert "docker/requirements-pi5.txt" in pip_command(proc.stdout)


def test_python_3_13_on_a_pi4_is_refused_with_a_clear_message(tmp_path):
    proc = plan(tmp_path, model=PI4, cpu="a72", python="3.13")
    assert proc.returncode == 2
    error = proc.stderr.strip()
    assert error.count("\n") == 0, error
    assert error.startswith("install_edge: error: Python 3.13")
    assert "mediapipe 0.10.18" in error and "3.12" in error and "PYTHON=python3.11" in error


def test_python_3_12_on_a_pi4_is_fine(tmp_path):
    assert plan(tmp_path, model=PI4, cpu="a72", python="3.12").returncode == 0


@pytest.mark.parametrize("arch, python, words", [("armv7l", "3.11", "64-bit Raspberry Pi OS"),
                                                 ("aarch64", "3.9", "too old"),
                                                 ("riscv64", "3.11", "aarch64 and x86-64 only")])
def test_unsupported_machines_are_refused(tmp_path, arch, python, words):
    proc = plan(tmp_path, arch=arch, python=python)
    assert proc.returncode == 2 and words in proc.stderr and proc.stdout == ""


def test_jetson_without_a_gpu_wheel_gets_the_cpu_build_and_a_note(tmp_path):
    proc = plan(tmp_path, model="NVIDIA Jetson Orin Nano Developer Kit", cpu="a76", python="3.10", tegra=True)
    assert proc.returncode == 0, proc.stderr
    assert "-> jetson" in proc.stdout and "docker/requirements-jetson.txt" in pip_command(proc.stdout)
    assert "onnxruntime CPU build: no GPU build found" in proc.stdout and "--ort-wheel" in proc.stdout


def test_jetson_with_a_gpu_wheel_installs_it_instead_of_the_cpu_build(tmp_path):
    wheel = tmp_path / "onnxruntime_gpu-1.23.0-cp310-cp310-linux_aarch64.whl"
    wheel.write_bytes(b"not read by a dry run")
    proc = plan(tmp_path, "--ort-wheel", str(wheel), model="NVIDIA Jetson AGX Orin", cpu="a76", python="3.10",
                tegra=True)
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime-gpu from" in proc.stdout and "CUDA/TensorRT" in proc.stdout
    assert "requirements-jetson.txt (the same file docker/Dockerfile.* installs), less its CPU onnxruntime" in proc.stdout
    command = pip_command(proc.stdout)
    assert str(wheel) in command and "requirements-jetson.txt" not in command  # a copy without the CPU line


def test_system_packages_and_font_are_planned_and_can_be_skipped(tmp_path):
    full = plan(tmp_path, model=PI5, cpu="a76").stdout
    apt_line = next(line for line in full.splitlines() if "apt-get install" in line)
    for package in ("libegl1", "libgles2", "fonts-noto-core"):
        assert package in apt_line
    bare = plan(tmp_path, "--no-apt", "--no-fonts", model=PI5, cpu="a76").stdout
    assert "apt-get install" not in bare and "romanised" in bare


def test_offline_wheels_and_a_chosen_venv(tmp_path):
    out = plan(tmp_path, "--wheels", "/srv/wheels", "--venv", str(tmp_path / "env"), model=PI5, cpu="a76").stdout
    command = pip_command(out)
    assert "--no-index --find-links /srv/wheels" in command and f"{tmp_path}/env/bin/python" in command


def test_requirement_sets_match_the_mediapipe_choice():
    pi4 = (ROOT / "docker" / "requirements-pi4.txt").read_text()
    assert "mediapipe==0.10.18" in pi4 and "numpy>=1.26,<2" in pi4 and "protobuf>=4.25,<5" in pi4
    for name in ("pi5", "jetson"):
        assert "mediapipe>=1.2" in (ROOT / "docker" / f"requirements-{name}.txt").read_text()


@pytest.mark.parametrize("script", ["install_edge.sh", "arm64_check.sh"])
def test_scripts_parse_and_explain_themselves(script):
    path = ROOT / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    proc = subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert ("--dry-run" if script == "install_edge.sh" else "--bundle") in proc.stdout
    bad = subprocess.run(["bash", str(path), "--no-such-option"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown option '--no-such-option'" in bad.stderr


def test_system_opencv_brings_gstreamer_and_pins_numpy_1(tmp_path):
    out = plan(tmp_path, "--system-opencv", model=PI5, cpu="a76").stdout
    apt_line = next(line for line in out.splitlines() if "apt-get install" in line)
    assert "python3-opencv" in apt_line and "gstreamer1.0-libcamera" in apt_line
    assert "docker/requirements-pi5.txt (the same file docker/Dockerfile.* installs), plus numpy<2" in out
    lines = out.splitlines()
    pip_at = lines.index(pip_command(out))
    assert "uninstall --quiet --yes opencv-contrib-python" in lines[pip_at + 1]
    assert lines[pip_at + 2].strip().startswith("$ ln -sfn") and "/lib/python3.11/site-packages/" in lines[pip_at + 2]
    assert "GStreamer" in lines[pip_at + 3]
    jetson = plan(tmp_path, "--system-opencv", model="NVIDIA Jetson AGX Orin", cpu="a76", python="3.10", tegra=True)
    assert "python3-opencv" not in jetson.stdout, "JetPack brings its own OpenCV"
