#!/usr/bin/env bash
# The arm64 proof after the test suite, inside CI's time budget (.ci/run calls it).
#
#   bash scripts/ci_arm64.sh ELAPSED_S
#
# Runs scripts/arm64_check.sh on the fused bundle (CNN + landmark model) and the hand model that the suite just
# built in the test cache: first the Raspberry Pi 4 (Cortex-A72, mediapipe 0.10.18: the path that breaks), then,
# when the time left allows, the Pi 5 (Cortex-A76, mediapipe 1.x) and the negative check (mediapipe 1.x must abort
# on the A72). Each part runs under a timeout that keeps the whole CI run inside NSL_CI_BUDGET_S (default 5400 s)
# minus NSL_CI_MARGIN_S (600 s).
#
# A wrong result on the emulated device is a failure (exit 1). Two outcomes prove nothing either way and are
# reported as NOT PROVEN with the reason, exit 0: the device could not be prepared (arm64_check exit 3: mirrors or
# registries out of reach) and the time ran out. NSL_CI_ARM64=0 skips it (said so in the log).
set -uo pipefail
cd "$(dirname "$0")/.."
ELAPSED=${1:-0}
BUDGET=${NSL_CI_BUDGET_S:-5400}
MARGIN=${NSL_CI_MARGIN_S:-600}
PI4_NEEDS=${NSL_CI_PI4_S:-900}     # what the A72 part needs at least (cold: root, wheels, venv, checks)
PI5_NEEDS=${NSL_CI_PI5_S:-900}
CACHE="${NSL_TEST_CACHE:-$PWD/.cache/tests}"
SECONDS=$ELAPSED
say() { echo "ci_arm64: $*"; }
not_proven() { say "NOT PROVEN on arm64 this run: $*"; exit 0; }

[ "${NSL_CI_ARM64:-1}" = 0 ] && not_proven "skipped (NSL_CI_ARM64=0)"
bundle=$(ls -td "$CACHE"/fused_bundle_* 2>/dev/null | head -n 1)
hand_model="$CACHE/hand_model/hand_landmarker.task"
[ -n "$bundle" ] && [ -f "$bundle/metadata.json" ] || { say "error: no fused bundle in $CACHE (the suite makes it)"; exit 1; }
[ -f "$hand_model" ] || { say "error: no hand model at $hand_model (the suite builds it)"; exit 1; }
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO=(sudo -n -E); else not_proven "needs root (debootstrap, chroot)"; fi
else
  SUDO=()
fi

run_part() {  # run_part NAME NEEDS_S ARGS...: arm64_check with a timeout of the time left
  local name="$1" needs="$2" left code t0=$SECONDS
  shift 2
  left=$((BUDGET - MARGIN - SECONDS))
  if [ "$left" -lt "$needs" ]; then not_proven "$name: ${left} s left of the CI budget, it needs about ${needs} s"; fi
  say "$name: up to ${left} s ($((SECONDS / 60)) min of the ${BUDGET} s budget used)"
  timeout --kill-after=30 "$left" "${SUDO[@]}" bash scripts/arm64_check.sh --bundle "$bundle" \
    --hand-model "$hand_model" "$@"
  code=$?
  case "$code" in
    0) say "$name: proven in $((SECONDS - t0)) s" ;;
    3) not_proven "$name: the emulated device could not be prepared (see above)" ;;
    124|137) not_proven "$name: out of CI time after $((SECONDS - t0)) s" ;;
    *) say "$name: FAILED (exit $code)"; exit 1 ;;
  esac
}

run_part "Raspberry Pi 4 (Cortex-A72, mediapipe 0.10.18)" "$PI4_NEEDS" --boards pi4 --no-negative
run_part "Raspberry Pi 5 (Cortex-A76, mediapipe 1.x) and the A72 negative check" "$PI5_NEEDS" --boards pi5
say "PROVEN on arm64: both boards, both backends, the fused bundle $(basename "$bundle"), in $((SECONDS - ELAPSED)) s"
