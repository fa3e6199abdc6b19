#!/usr/bin/env bash
# Install the edge side (nsl app, nsl predict, nsl hand-model) on a Raspberry Pi, a Jetson or any Linux machine.
# It looks at the CPU, the board and Python, picks the matching package set from docker/requirements-*.txt (the
# same files the Docker images use), installs the system libraries mediapipe needs, and says what it chose and why.
#
#   bash scripts/install_edge.sh [--venv DIR] [--dry-run] [--wheels DIR] [--ort-wheel FILE] [--system-opencv]
#                                [--no-apt] [--no-fonts]
#
#   --venv DIR        virtual environment to create or update (default: ~/.venvs/nsl-edge)
#   --dry-run         print the plan and the commands, install nothing
#   --wheels DIR      install offline from wheels in DIR (pip --no-index --find-links DIR)
#   --ort-wheel FILE  Jetson: NVIDIA's onnxruntime-gpu wheel, installed in place of the CPU onnxruntime
#   --system-opencv   use the system's OpenCV (Debian's python3-opencv, JetPack's) instead of the pip wheel: it
#                     has GStreamer, which the picam/csi camera presets need; pins numpy<2 (what it is built for)
#   --no-apt          skip the system packages (print what would be needed)
#   --no-fonts        skip the Devanagari font (labels are then drawn romanised)
#
# Why a script: mediapipe 1.x aarch64 wheels abort on ARMv8.0 cores without LSE atomics (Pi 4, Pi 3, Jetson Nano:
# "compiled with lse enabled"); those boards need mediapipe 0.10.18, which exists for Python 3.9-3.12 only.
# Package markers cannot express a CPU feature, so the choice is made here.
# Inputs can be faked to test the decisions on any machine (with --dry-run): NSL_ARCH, NSL_CPUINFO (a file),
# NSL_DEVICE_MODEL (text), NSL_TEGRA_RELEASE (a file), NSL_PYTHON (interpreter), NSL_PYTHON_VERSION (e.g. 3.13).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"

VENV="${HOME}/.venvs/nsl-edge"; DRY_RUN=0; WHEELS=""; ORT_WHEEL="${NSL_ORT_WHEEL:-}"; APT=1; FONTS=1
SYSTEM_OPENCV=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --ort-wheel) ORT_WHEEL="$2"; shift 2 ;;
    --no-apt) APT=0; shift ;;
    --no-fonts) FONTS=0; shift ;;
    --system-opencv) SYSTEM_OPENCV=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install_edge: error: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "install_edge: error: $*" >&2; exit 2; }
say() { echo "install_edge: $*"; }
run() {  # print a command; run it unless --dry-run
  echo "  \$ $*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# ---- what is this machine? ----
ARCH="${NSL_ARCH:-$(uname -m)}"
CPUINFO="${NSL_CPUINFO:-/proc/cpuinfo}"
if [ -n "${NSL_DEVICE_MODEL+x}" ]; then MODEL="$NSL_DEVICE_MODEL"
elif [ -r /proc/device-tree/model ]; then MODEL="$(tr -d '\0' < /proc/device-tree/model)"
else MODEL=""; fi
TEGRA_RELEASE="${NSL_TEGRA_RELEASE:-/etc/nv_tegra_release}"
PYTHON="${NSL_PYTHON:-${PYTHON:-python3}}"

cpu_core_name() {  # the first core type listed in cpuinfo ("CPU part" of ARM's own designs)
  case "$(grep -m1 -i '^CPU part' "$CPUINFO" 2>/dev/null | awk '{print $NF}')" in
    0xd03) echo "Cortex-A53" ;; 0xd07) echo "Cortex-A57" ;; 0xd08) echo "Cortex-A72" ;;
    0xd0b) echo "Cortex-A76" ;; 0xd42) echo "Cortex-A78AE" ;; 0xd05) echo "Cortex-A55" ;;
    "") echo "unknown core" ;; *) echo "ARM core $(grep -m1 -i '^CPU part' "$CPUINFO" | awk '{print $NF}')" ;;
  esac
}

case "$ARCH" in
  x86_64|amd64) HAS_ATOMICS=1; CPU="x86-64"; ATOMICS_WHY="x86-64 always has atomic instructions" ;;
  aarch64|arm64)
    CPU="$(cpu_core_name)"
    [ -r "$CPUINFO" ] || die "cannot read $CPUINFO to check the CPU's atomics"
    if grep -qw atomics "$CPUINFO"; then HAS_ATOMICS=1; ATOMICS_WHY="$CPUINFO lists 'atomics' (ARMv8.1 LSE)"
    else HAS_ATOMICS=0; ATOMICS_WHY="$CPUINFO does not list 'atomics': an ARMv8.0 core without LSE"; fi ;;
  armv7l|armv6l|armhf)
    die "32-bit ARM ($ARCH): mediapipe, ai-edge-litert and onnxruntime publish no 32-bit wheels; install the 64-bit Raspberry Pi OS (Bookworm) and run this again" ;;
  *) die "unsupported CPU architecture '$ARCH': the edge side has wheels for aarch64 and x86-64 only" ;;
esac

if [ -e "$TEGRA_RELEASE" ] || [[ "$MODEL" == *Jetson* ]]; then BOARD="jetson"
elif [[ "$MODEL" == *"Raspberry Pi 5"* ]]; then BOARD="pi5"
elif [[ "$MODEL" == *"Raspberry Pi"* ]]; then BOARD="pi4"   # Pi 4, Pi 400, Pi 3, CM4: ARMv8.0 cores
else BOARD="generic"; fi

if [ -n "${NSL_PYTHON_VERSION:-}" ]; then PY_VERSION="$NSL_PYTHON_VERSION"
else
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3.10-3.12 (Debian: sudo apt-get install python3 python3-venv) or set PYTHON=..."
  PY_VERSION="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
fi
PY_MINOR="${PY_VERSION#3.}"; PY_MINOR="${PY_MINOR%%.*}"
[[ "$PY_VERSION" == 3.* && "$PY_MINOR" =~ ^[0-9]+$ ]] || die "cannot read the Python version '$PY_VERSION' of $PYTHON"
[ "$PY_MINOR" -ge 10 ] || die "Python $PY_VERSION is too old: nsl-edge needs Python 3.10 or newer (a Jetson needs JetPack 6; a Pi, Raspberry Pi OS Bookworm); set PYTHON=python3.11 if you have one"

# ---- what to install, and why ----
if [ "$HAS_ATOMICS" = 1 ]; then
  if [ "$BOARD" = jetson ]; then SET="jetson"; else SET="pi5"; fi
  MEDIAPIPE="mediapipe >= 1.2"; MEDIAPIPE_WHY="the CPU has atomics ($ATOMICS_WHY)"
else
  SET="pi4"; MEDIAPIPE="mediapipe 0.10.18 (with numpy < 2, protobuf < 5)"
  MEDIAPIPE_WHY="every mediapipe 1.x aarch64 wheel aborts on this CPU ($ATOMICS_WHY); 0.10.18 runs and has the same Tasks API"
  if [ "$PY_MINOR" -gt 12 ]; then
    die "Python $PY_VERSION cannot be used on this $CPU: it has no LSE atomics, so it needs mediapipe 0.10.18, whose wheels stop at Python 3.12; install Python 3.11 (Raspberry Pi OS Bookworm's own) and re-run with PYTHON=python3.11, or use docker/Dockerfile.pi with BOARD=pi4"
  fi
fi
REQUIREMENTS="$REPO/docker/requirements-$SET.txt"
[ -r "$REQUIREMENTS" ] || die "missing $REQUIREMENTS (run this script from a full checkout of the repository)"

VENV_FLAGS=()
if [ "$BOARD" != jetson ]; then
  ORT="onnxruntime (CPU; the CPUExecutionProvider is what this board has)"
elif [ -n "$ORT_WHEEL" ]; then
  [ -r "$ORT_WHEEL" ] || die "--ort-wheel $ORT_WHEEL: no such file; pass NVIDIA's onnxruntime_gpu-*-cp${PY_VERSION/./}-*aarch64.whl for this JetPack"
  ORT="onnxruntime-gpu from $ORT_WHEEL (CUDA/TensorRT providers), in place of the CPU build"
elif "$PYTHON" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' >/dev/null 2>&1; then
  ORT="the system's onnxruntime with CUDA providers (venv made with --system-site-packages; CPU build not installed)"
  VENV_FLAGS=(--system-site-packages)
else
  ORT="onnxruntime CPU build: no GPU build found. For CUDA/TensorRT, get NVIDIA's onnxruntime-gpu wheel for your JetPack and re-run with --ort-wheel FILE (or use docker/Dockerfile.jetson)"
fi

APT_PACKAGES=(python3-venv libegl1 libgles2 libgl1 libglib2.0-0)   # mediapipe needs EGL/GLES; OpenCV's wheel libGL/glib
if [ "$FONTS" = 1 ]; then APT_PACKAGES+=(fonts-noto-core); fi
if [ "$FONTS" = 1 ]; then FONT_NOTE="fonts-noto-core (Noto Sans Devanagari) so labels show as क ख ग ..."
else FONT_NOTE="none (--no-fonts): labels are drawn romanised (ka, kha, ...) because OpenCV cannot draw Devanagari"; fi

OPENCV="opencv-contrib-python (what mediapipe depends on; no GStreamer: USB cameras, files and streams)"
if [ "$SYSTEM_OPENCV" = 1 ]; then
  OPENCV="the system's OpenCV for $PYTHON, linked into the venv in place of the pip wheel (GStreamer: picam/csi presets), with numpy<2"
  if [ "$BOARD" != jetson ]; then  # JetPack brings its own OpenCV; elsewhere Debian's, plus the camera plugins
    APT_PACKAGES+=(python3-opencv gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
    if [[ "$BOARD" == pi* ]]; then APT_PACKAGES+=(gstreamer1.0-libcamera); fi
  fi
fi

PIP_SOURCE=()
if [ -n "$WHEELS" ]; then PIP_SOURCE=(--no-index --find-links "$WHEELS"); fi

echo "install_edge: plan"
echo "  board        : ${MODEL:-unknown} -> $BOARD"
echo "  cpu          : $ARCH, $CPU, atomics: $([ "$HAS_ATOMICS" = 1 ] && echo yes || echo no)"
echo "  python       : $PYTHON ($PY_VERSION)"
echo "  mediapipe    : $MEDIAPIPE, because $MEDIAPIPE_WHY"
echo "  onnxruntime  : $ORT"
echo "  tflite       : ai-edge-litert (the TFLite runtime; tflite-runtime stopped at 2.14)"
echo "  opencv       : $OPENCV"
SET_EDITS=""
if [ -n "$ORT_WHEEL" ] || [ ${#VENV_FLAGS[@]} -gt 0 ]; then SET_EDITS+=", less its CPU onnxruntime"; fi
if [ "$SYSTEM_OPENCV" = 1 ]; then SET_EDITS+=", plus numpy<2"; fi
echo "  package set  : docker/requirements-$SET.txt (the same file docker/Dockerfile.* installs)$SET_EDITS"
echo "  system libs  : ${APT_PACKAGES[*]}"
echo "  font         : $FONT_NOTE"
echo "  venv         : $VENV${VENV_FLAGS:+ (${VENV_FLAGS[*]})}"
[ "$DRY_RUN" = 1 ] && echo "install_edge: dry run: the commands below are printed, not run"

# ---- system libraries ----
as_root() {  # run as root: directly, through sudo, or not at all (then say what to run)
  if [ "$(id -u)" = 0 ]; then run "$@"
  elif command -v sudo >/dev/null 2>&1; then run sudo "$@"
  else say "not root and no sudo: run as root: $*"; return 1; fi
}
install_system_packages() {
  if [ "$APT" = 0 ]; then say "--no-apt: make sure these are installed: ${APT_PACKAGES[*]}"; return; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here: install the equivalents of ${APT_PACKAGES[*]} with your package manager (EGL/GLES for mediapipe)"
    return
  fi
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if [ "$DRY_RUN" = 1 ] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} = 0 ]; then say "system libraries already installed"; return; fi
  as_root apt-get update -qq || true
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; then
    say "could not install ${missing[*]}; without libegl1/libgles2 mediapipe fails with 'OSError: libEGL.so.1'"
    if [[ " ${missing[*]} " == *" fonts-noto-core "* ]]; then
      say "without fonts-noto-core labels are drawn romanised (ka, kha, ...) instead of Devanagari"
    fi
  fi
}

# ---- the virtual environment ----
install_python_packages() {
  local requirements="$REQUIREMENTS" extra=()
  if [ -n "$ORT_WHEEL" ] || [ ${#VENV_FLAGS[@]} -gt 0 ] || [ "$SYSTEM_OPENCV" = 1 ]; then  # an edited copy of the set
    TMP_REQUIREMENTS="$(mktemp)"; trap 'rm -f "$TMP_REQUIREMENTS"' EXIT
    requirements="$TMP_REQUIREMENTS"
    if [ -n "$ORT_WHEEL" ] || [ ${#VENV_FLAGS[@]} -gt 0 ]; then  # a GPU onnxruntime replaces the CPU build
      grep -v '^onnxruntime' "$REQUIREMENTS" > "$requirements"
    else
      cp "$REQUIREMENTS" "$requirements"
    fi
    if [ "$SYSTEM_OPENCV" = 1 ]; then echo "numpy<2" >> "$requirements"; fi  # system OpenCV is built on numpy 1.x
    if [ -n "$ORT_WHEEL" ]; then extra=("$ORT_WHEEL"); fi
  fi
  if [ ! -x "$VENV/bin/python" ]; then run "$PYTHON" -m venv "${VENV_FLAGS[@]}" "$VENV"; fi
  if [ -z "$WHEELS" ]; then run "$VENV/bin/python" -m pip install --quiet --upgrade pip; fi
  run "$VENV/bin/python" -m pip install --quiet "${PIP_SOURCE[@]}" -r "$requirements" "${extra[@]}" -e "$REPO"
  if [ "$SYSTEM_OPENCV" = 1 ]; then link_system_opencv; fi
  run "$VENV/bin/python" -c "import mediapipe, ai_edge_litert, onnxruntime, cv2; print('installed: mediapipe', mediapipe.__version__, '| onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers(), '| opencv', cv2.__version__)"
}

link_system_opencv() {  # replace the pip OpenCV by the system's one (a symlink to its cv2 module)
  local cv2_path="<the system cv2 module>" site="$VENV/lib/python$PY_VERSION/site-packages"
  if [ "$DRY_RUN" = 0 ]; then
    cv2_path="$("$PYTHON" -c 'import cv2, os; f = cv2.__file__; print(os.path.dirname(f) if f.endswith("__init__.py") else f)')" \
      || die "--system-opencv: $PYTHON cannot import the system's cv2 (Debian: sudo apt-get install python3-opencv; Jetson: JetPack's OpenCV)"
  fi
  run "$VENV/bin/python" -m pip uninstall --quiet --yes opencv-contrib-python
  run ln -sfn "$cv2_path" "$site/"
  run "$VENV/bin/python" -c "import cv2, sys; info = cv2.getBuildInformation(); gst = [l for l in info.splitlines() if 'GStreamer:' in l]; print('opencv', cv2.__version__, 'from', cv2.__file__, '|', gst[0].strip() if gst else 'GStreamer: unknown'); sys.exit(not gst or 'YES' not in gst[0])"
  say "note: mediapipe lists opencv-contrib-python as a dependency; a later 'pip install' may bring the wheel back: re-run with --system-opencv"
}

install_system_packages
install_python_packages
if [ "$FONTS" = 1 ] && [ "$DRY_RUN" = 0 ] && ! ls /usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf >/dev/null 2>&1; then
  say "note: no Devanagari font found; labels will be drawn romanised (ka, kha, ...). Fix: sudo apt-get install fonts-noto-core"
fi
if [ "$DRY_RUN" = 1 ]; then echo "install_edge: dry run finished; then:"; else echo "install_edge: done. Next:"; fi
echo "  $VENV/bin/nsl hand-model build          # the MediaPipe hand model (once, needs the network)"
echo "  copy a model bundle made by 'nsl export' (a folder with metadata.json) to this machine, then:"
echo "  $VENV/bin/nsl app --help                # e.g. --source picam (Pi camera), csi (Jetson), 0 (USB)"
