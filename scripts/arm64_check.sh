#!/usr/bin/env bash
# Prove the edge side on arm64 without a board: an arm64 Debian Bookworm root under qemu-user, the edge packages
# installed from aarch64 wheels by scripts/install_edge.sh (as on a device), then real photos through it
# once as a Raspberry Pi 4 (QEMU_CPU=cortex-a72, mediapipe 0.10.18) and once as a Pi 5 (cortex-a76, mediapipe 1.x).
# A negative check runs the Pi 5 set on the A72 and expects mediapipe 1.x's LSE abort, so this check would have
# caught it.
#
#   sudo bash scripts/arm64_check.sh [--bundle DIR] [--hand-model FILE] [--boards "pi4 pi5"] [--no-negative]
#
# With --bundle (a folder made by 'nsl export') and --hand-model (a .task from 'nsl hand-model build') it runs
# 'nsl predict' and 'nsl app --headless --json' through both backends (TFLite, ONNX). Without them it runs the
# runtime smoke (scripts/arm64/smoke.py): MediaPipe hand detection on real photos, an ai-edge-litert and an
# onnxruntime inference. Needs root (debootstrap, chroot, mounts) and installs qemu-user-static, binfmt-support
# and debootstrap when missing. Everything heavy is cached under NSL_ARM64_CACHE (default .cache/arm64): the
# root, the wheels and one virtual environment per board, so a second run only runs the checks.
# Photos: NSL_REAL_DATA (default ../shared/data), folder nsl_consonants.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$(mkdir -p "${NSL_ARM64_CACHE:-$REPO/.cache/arm64}" && cd "${NSL_ARM64_CACHE:-$REPO/.cache/arm64}" && pwd)"
ROOT="$CACHE/root"
REAL_DATA="${NSL_REAL_DATA:-$REPO/../shared/data}"
HOST_PYTHON="${NSL_EDGE_PYTHON:-$REPO/.venvs/edge/bin/python}"   # pip download and the result checks
PREP_PYTHON="${NSL_TRAIN_PYTHON:-$REPO/.venvs/train/bin/python}"  # has the onnx package, for the smoke's tiny.onnx
[ -x "$HOST_PYTHON" ] || HOST_PYTHON=python3
[ -x "$PREP_PYTHON" ] || PREP_PYTHON="$HOST_PYTHON"
BUNDLE=""; HAND_MODEL=""; BOARDS="pi4 pi5"; NEGATIVE=1; PHOTOS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE="$(cd "$2" && pwd)"; shift 2 ;;
    --hand-model) HAND_MODEL="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --boards) BOARDS="$2"; shift 2 ;;
    --no-negative) NEGATIVE=0; shift ;;
    --photos) PHOTOS="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "arm64_check: error: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "arm64_check: error: $*" >&2; exit 1; }
# exit 3: the emulated device could not be prepared (package mirrors or registries out of reach), so nothing was
# proven either way; .ci/run reports it as not proven instead of as a failure of the project
unavailable() { echo "arm64_check: unavailable: $*" >&2; exit 3; }
say() { echo "arm64_check: $*"; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and bind mounts): run it with sudo"
[ -d "$REAL_DATA/nsl_consonants" ] || die "real photos not found at $REAL_DATA/nsl_consonants (set NSL_REAL_DATA)"
if [ -n "$BUNDLE" ] && [ -z "$HAND_MODEL" ]; then die "--bundle needs --hand-model FILE.task too"; fi

declare -A CPU_OF=([pi4]=cortex-a72 [pi5]=cortex-a76)
declare -A MODEL_OF=([pi4]="Raspberry Pi 4 Model B Rev 1.4" [pi5]="Raspberry Pi 5 Model B Rev 1.0")
SECONDS=0
timed() { local t0=$SECONDS; "$@"; say "  ($1: $((SECONDS - t0)) s)"; }

# ---- host tools and binfmt ----
ensure_host_tools() {
  local missing=() tool
  for tool in qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
      || unavailable "could not install ${missing[*]} with apt-get"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then update-binfmts --enable qemu-aarch64; fi
  grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || die "qemu-aarch64 is registered without the F flag, so it cannot run inside a chroot; reinstall qemu-user-static"
}

# ---- the arm64 root (debootstrap once, then reused) ----
ensure_root() {
  if [ -e "$ROOT/.nsl-root-ok" ]; then say "root: cached ($ROOT)"; return; fi
  say "root: debootstrap arm64 bookworm (minbase + python3, venv, EGL/GLES, libGL; a few minutes)"
  rm -rf "$ROOT.tmp"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,libegl1,libgles2,libgl1,libglib2.0-0 bookworm "$ROOT.tmp" > "$CACHE/debootstrap.log" 2>&1 \
    || unavailable "debootstrap failed, see $CACHE/debootstrap.log"
  rm -rf "$ROOT"; mv "$ROOT.tmp" "$ROOT"; touch "$ROOT/.nsl-root-ok"
}

project_dependencies() {  # the [project] dependencies of pyproject.toml (what 'pip install .' adds to a set)
  "$HOST_PYTHON" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$REPO/pyproject.toml" || die "reading pyproject.toml needs Python 3.11+ (set NSL_EDGE_PYTHON)"
}

# ---- aarch64 wheels, downloaded on the host (cached per requirements file) ----
ensure_wheels() {  # ensure_wheels SET
  local set="$1" dir="$CACHE/wheels/$1" stamp platforms=() v dependencies
  mapfile -t dependencies < <(project_dependencies)
  stamp="$( (cat "$REPO/docker/requirements-$set.txt"; project_dependencies) | sha256sum | cut -c1-16)"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then say "wheels $set: cached"; return; fi
  for v in $(seq 17 36); do platforms+=(--platform "manylinux_2_${v}_aarch64"); done  # glibc 2.36 = Bookworm
  say "wheels $set: downloading aarch64 wheels for Python 3.11"
  "$HOST_PYTHON" -m pip download --quiet --only-binary=:all: "${platforms[@]}" --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp -d "$dir" -r "$REPO/docker/requirements-$set.txt" \
    "${dependencies[@]}" "setuptools>=77" wheel 2> >(grep -v 'is ignored' >&2) \
    || unavailable "pip download of the $set wheels failed"
  echo "$stamp" > "$dir/.stamp"
}

# ---- mounts: /proc, /sys, /dev, the wheels, and an aarch64 cpuinfo (qemu-user shows the host's x86 one) ----
MOUNTS=()
mount_at() {  # mount_at TARGET MOUNT-ARGS...: mount and remember it, for cleanup in reverse order
  local target="$1"; shift
  mount "$@" "$target"; mount --make-private "$target"; MOUNTS+=("$target")
}
unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || say "could not unmount ${MOUNTS[$i]}"
  done
  MOUNTS=()
}
trap unmount_all EXIT INT TERM

mount_root() {
  mount_at "$ROOT/proc" -t proc proc
  mount_at "$ROOT/sys" --rbind /sys
  mount_at "$ROOT/dev" --rbind /dev
  mkdir -p "$ROOT/opt/nsl/wheels" "$ROOT/opt/nsl/cpuinfo"
  mount_at "$ROOT/opt/nsl/wheels" --bind -o ro "$CACHE/wheels"
  touch "$ROOT/opt/nsl/cpuinfo/now"
  mount_at "$ROOT/proc/cpuinfo" --bind "$ROOT/opt/nsl/cpuinfo/now"
}
use_cpu() {  # use_cpu CPU: what /proc/cpuinfo shows inside (the bind follows the file's content)
  cp "$REPO/scripts/arm64/cpuinfo-$1" "$ROOT/opt/nsl/cpuinfo/now"
}
inside() {  # inside CPU COMMAND...: run a command in the root as that CPU
  use_cpu "$1"
  chroot "$ROOT" /usr/bin/env -i QEMU_CPU="$1" HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 "${@:2}"
}

# ---- the project and its inputs, copied into the root ----
copy_inputs() {
  rm -rf "$ROOT/opt/nsl/src" "$ROOT/opt/nsl/work"; mkdir -p "$ROOT/opt/nsl/src" "$ROOT/opt/nsl/work/photos"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$ROOT/opt/nsl/src"
  local photo count=0
  while IFS= read -r photo; do
    cp "$photo" "$ROOT/opt/nsl/work/photos/$(basename "$(dirname "$photo")")_$(basename "$photo")"; count=$((count + 1))
  done < <(find "$REAL_DATA/nsl_consonants" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort | head -n "$PHOTOS")
  [ "$count" -gt 0 ] || die "no photos in $REAL_DATA/nsl_consonants"
  if [ -n "$BUNDLE" ]; then cp -r "$BUNDLE" "$ROOT/opt/nsl/work/bundle"; cp "$HAND_MODEL" "$ROOT/opt/nsl/work/hand_landmarker.task"; fi
  say "copied the project, $count photos${BUNDLE:+, the bundle and the hand model} into the root"
}

# ---- one virtual environment per board, made by the device install script ----
check_choice() {  # check_choice BOARD: the install script, run as that board's CPU, picks that board's set
  local board="$1" log="$CACHE/plan-$1.log"
  inside "${CPU_OF[$board]}" /usr/bin/env NSL_DEVICE_MODEL="${MODEL_OF[$board]}" bash /opt/nsl/src/scripts/install_edge.sh \
    --dry-run --venv "/opt/nsl/venv-$board" --wheels "/opt/nsl/wheels/$board" --no-apt --no-fonts > "$log" 2>&1 \
    || die "install_edge.sh --dry-run failed in the root as ${CPU_OF[$board]}, see $log"
  grep -q "package set  : docker/requirements-$board.txt" "$log" \
    || die "install_edge.sh as ${CPU_OF[$board]} did not choose docker/requirements-$board.txt, see $log"
  say "install_edge.sh as ${CPU_OF[$board]}: $(grep -m1 'mediapipe    :' "$log" | sed 's/^ *mediapipe *: //' | cut -c1-60)"
}

ensure_venv() {  # ensure_venv BOARD
  local board="$1" venv="/opt/nsl/venv-$1" stamp log="$CACHE/install-$1.log"
  stamp="$(cat "$CACHE/wheels/$board/.stamp" | sha256sum | cut -c1-16)"  # the set and the project's dependencies
  check_choice "$board"
  if [ "$(cat "$ROOT$venv/.nsl-stamp" 2>/dev/null)" = "$stamp" ]; then say "venv $board: cached"; return; fi
  rm -rf "$ROOT$venv"
  say "venv $board: scripts/install_edge.sh as a ${CPU_OF[$board]} (emulated: several minutes)"
  inside "${CPU_OF[$board]}" /usr/bin/env NSL_DEVICE_MODEL="${MODEL_OF[$board]}" bash /opt/nsl/src/scripts/install_edge.sh \
    --venv "$venv" --wheels "/opt/nsl/wheels/$board" --no-apt --no-fonts > "$log" 2>&1 \
    || die "install_edge.sh failed in the root as ${CPU_OF[$board]}, see $log"
  grep -q "package set  : docker/requirements-$board.txt" "$log" \
    || die "install_edge.sh as ${CPU_OF[$board]} did not choose docker/requirements-$board.txt, see $log"
  grep '^installed:' "$log" | sed 's/^/arm64_check:   /'
  echo "$stamp" > "$ROOT$venv/.nsl-stamp"
}

# ---- the checks ----
smoke_board() {  # smoke_board BOARD: hand found in every photo, LiteRT and onnxruntime run
  local board="$1" out="$CACHE/smoke-$1.json" onnx=()
  [ -e "$ROOT/opt/nsl/smoke/tiny.onnx" ] && onnx=(/opt/nsl/smoke/tiny.onnx)
  inside "${CPU_OF[$board]}" "/opt/nsl/venv-$board/bin/python" /opt/nsl/src/scripts/arm64/smoke.py run \
    /opt/nsl/smoke/hand_landmarker.task /opt/nsl/work/photos "${onnx[@]}" > "$out" 2> "$CACHE/smoke-$board.err" \
    || die "smoke as ${CPU_OF[$board]} failed, see $CACHE/smoke-$board.err"
  "$HOST_PYTHON" - "$out" "$board" <<'PY' || die "smoke as $board: wrong result, see $out"
import json, sys
report = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
missed = [name for name, count in report["hands"].items() if count < 1]
assert report["hands"] and not missed, f"no hand found in {missed}"
assert report["litert_output"], "ai-edge-litert gave no output"
if report["onnx_output"] is not None:
    assert abs(sum(report["onnx_output"]) - 1) < 1e-3, report["onnx_output"]
print(f"arm64_check: smoke {sys.argv[2]} ok: mediapipe {report['mediapipe']}, hands {report['hands']}, "
      f"litert outputs {report['litert_output']}, onnx {report['onnx_output']}")
PY
}

app_board() {  # app_board BOARD: nsl predict and nsl app through both backends; a hand and a label every time
  local board="$1" backend nsl="/opt/nsl/venv-$1/bin/nsl" common out
  common=(--model /opt/nsl/work/bundle --hand-model /opt/nsl/work/hand_landmarker.task)
  for backend in tflite onnx; do
    out="$CACHE/predict-$board-$backend.jsonl"
    inside "${CPU_OF[$board]}" "$nsl" predict /opt/nsl/work/photos "${common[@]}" --backend "$backend" --json - \
      > "$out" 2> "$out.err" || die "nsl predict ($backend) as ${CPU_OF[$board]} failed, see $out.err"
    out="$CACHE/app-$board-$backend.jsonl"
    inside "${CPU_OF[$board]}" "$nsl" app --source /opt/nsl/work/photos "${common[@]}" --backend "$backend" \
      --headless --json - > "$out" 2> "$out.err" || die "nsl app ($backend) as ${CPU_OF[$board]} failed, see $out.err"
  done
  "$HOST_PYTHON" - "$CACHE" "$board" <<'PY' || die "nsl predict/app as $board: no hand or no label, see $CACHE/*-$board-*.jsonl"
import json, sys
from pathlib import Path
cache, board = Path(sys.argv[1]), sys.argv[2]
for backend in ("tflite", "onnx"):
    rows = [json.loads(line) for line in (cache / f"predict-{board}-{backend}.jsonl").read_text().splitlines() if line]
    missed = [row["path"] for row in rows if row["hand"] is None or row["label"] is None]
    assert rows and not missed, f"predict {backend}: no hand or label in {missed}"
    lines = [json.loads(line) for line in (cache / f"app-{board}-{backend}.jsonl").read_text().splitlines() if line]
    frames = [line for line in lines if "frame" in line]
    labelled = [frame for frame in frames if frame["hands"] and frame["hands"][0]["text"]]
    assert frames and len(labelled) == len(frames), f"app {backend}: {len(labelled)}/{len(frames)} frames labelled"
    summary = next(line["summary"] for line in lines if "summary" in line)
    print(f"arm64_check: {board} {backend}: predict {[row['text'] for row in rows]}, app {len(labelled)}/{len(frames)} "
          f"frames labelled, model {summary['model_file']}, tracker {summary['hand_tracker']}")
PY
}

negative_check() {  # the Pi 5 set on a Pi 4 CPU must hit mediapipe 1.x's LSE abort
  local err="$CACHE/negative.err"
  if inside cortex-a72 /opt/nsl/venv-pi5/bin/python /opt/nsl/src/scripts/arm64/smoke.py run \
      /opt/nsl/smoke/hand_landmarker.task /opt/nsl/work/photos > /dev/null 2> "$err"; then
    die "negative check: mediapipe 1.x ran on cortex-a72; the emulation no longer shows the LSE abort, so this check proves nothing"
  fi
  grep -aq "compiled with lse enabled" "$err" || die "negative check: the pi5 set failed on cortex-a72 but not with the LSE abort, see $err"
  say "negative check ok: the Pi 5 set aborts on a Cortex-A72: $(grep -a -m1 -o "This binary was compiled with lse enabled[^(]*" "$err")"
}

main() {
  exec 9> "$CACHE/.lock"; flock -n 9 || die "another arm64_check is running on $CACHE"
  timed ensure_host_tools
  timed ensure_root
  local board
  for board in pi4 pi5; do timed ensure_wheels "$board"; done   # pi4's mediapipe 0.10.x wheel carries the hand models
  "$PREP_PYTHON" "$REPO/scripts/arm64/smoke.py" prepare "$CACHE/smoke" "$(ls "$CACHE"/wheels/pi4/mediapipe-0.10.*.whl | head -1)"
  mount_root
  copy_inputs
  mkdir -p "$ROOT/opt/nsl/smoke"; cp "$CACHE"/smoke/* "$ROOT/opt/nsl/smoke/"
  for board in $BOARDS; do
    timed ensure_venv "$board"
    timed smoke_board "$board"
    if [ -n "$BUNDLE" ]; then timed app_board "$board"; fi
  done
  if [ "$NEGATIVE" = 1 ]; then ensure_venv pi5; timed negative_check; fi
  unmount_all
  say "all checks passed in $SECONDS s (cache: $(du -sh "$CACHE" | cut -f1) at $CACHE)"
}
main
