#!/usr/bin/env bash
# Create (or reuse) the two virtual environments: .venvs/train (TensorFlow side) and .venvs/edge (device side).
# Their pins conflict (absl-py, protobuf), so they cannot be one environment. Re-running is cheap: an
# environment is rebuilt only when pyproject.toml or the Python version changed.
# Usage: bash scripts/setup.sh [train|edge|all]   (PYTHON=python3.11 to pick an interpreter)
# The train environment gets the train-gpu extra (TensorFlow with its CUDA/cuDNN wheels) when nvidia-smi answers,
# else the train extra; NSL_GPU=1 or NSL_GPU=0 forces either. bash scripts/setup.sh --print-train-extra says which.
set -euo pipefail
cd "$(dirname "$0")/.."
which_envs="${1:-all}"

train_extra() {
  case "${NSL_GPU:-auto}" in
    1|yes|on|true) echo train-gpu ;;
    0|no|off|false) echo train ;;
    auto) if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo train-gpu; else echo train; fi ;;
    *) echo "setup: NSL_GPU=${NSL_GPU} is not one of 1, 0, auto" >&2; exit 2 ;;
  esac
}
if [ "$which_envs" = "--print-train-extra" ]; then train_extra; exit 0; fi
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found; install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: $("$PYTHON" --version 2>&1) is too old; nsl-edge needs Python 3.10 or newer (set PYTHON=...)" >&2
  exit 1
fi

ensure_venv_module() {
  if "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing python3-venv (Debian/Ubuntu ship venv separately)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "setup: Python's venv module is missing; run: sudo apt-get install python3-venv" >&2
    exit 1
  fi
}

make_env() {  # make_env NAME EXTRAS
  local name="$1" extras="$2" dir=".venvs/$1"
  local stamp
  stamp="$("$PYTHON" --version 2>&1) $(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.nsl-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "setup: reusing $dir"
    return
  fi
  if [ ! -x "$dir/bin/python" ]; then
    ensure_venv_module
    echo "setup: creating $dir with extras [$extras] (first time: a few minutes)"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
  else
    echo "setup: updating $dir (pyproject.toml or Python changed)"
  fi
  "$dir/bin/python" -m pip install --quiet -e ".[$extras]"
  echo "$stamp" > "$dir/.nsl-stamp"
}

ensure_edge_libraries() {  # OpenCV's and MediaPipe's wheels load libGL/libEGL/libGLES from the system
  local python=.venvs/edge/bin/python libs="libgl1 libglib2.0-0 libegl1 libgles2"
  if "$python" -c 'import cv2, mediapipe' >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing the system libraries OpenCV and MediaPipe load ($libs)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $libs >/dev/null
  fi
  if ! "$python" -c 'import cv2, mediapipe' >/dev/null 2>&1; then
    echo "setup: the edge environment cannot import OpenCV/MediaPipe: $("$python" -c 'import cv2, mediapipe' 2>&1 | tail -n 1)" >&2
    echo "setup: on Debian/Ubuntu run: sudo apt-get install $libs" >&2
    exit 1
  fi
}

TRAIN_EXTRA="$(train_extra)"
[ "$which_envs" = edge ] || echo "setup: train environment with the [$TRAIN_EXTRA] extra (NSL_GPU=${NSL_GPU:-auto})"
case "$which_envs" in
  train) make_env train "$TRAIN_EXTRA,dev" ;;
  edge) make_env edge edge,dev; ensure_edge_libraries ;;
  all) make_env train "$TRAIN_EXTRA,dev"; make_env edge edge,dev; ensure_edge_libraries ;;
  *) echo "setup: unknown environment '$which_envs' (train, edge or all)" >&2; exit 1 ;;
esac
