#!/usr/bin/env bash
# The whole pipeline on a small default, on any machine with Python 3.10+ and the package registries:
# both environments -> synthetic NSL-layout data -> progressive training (3 phases) -> int8 export with the
# accuracy gate -> the hand model built offline -> the app, headless, on short clips -> one summary table.
# A second run reuses every stage that finished (delete demo/ to start over).
#   NSL_DEMO_DIR=DIR   working folder (default demo)
#   NSL_DEMO_QUICK=1   a few images and one epoch per phase: the same steps in a minute or two (the test suite's run)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${NSL_DEMO_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh all

TRAIN=.venvs/train/bin/nsl EDGE=.venvs/edge/bin/nsl EDGE_PY=.venvs/edge/bin/python
OUT="${NSL_DEMO_DIR:-demo}"
DATA="$OUT/data" RUN="$OUT/runs/nsl36" BUNDLE="$OUT/runs/nsl36/bundle"
REAL="${NSL_REAL_DATA:-../shared/data}/nsl_consonants"
PER_CLASS=40 TRAIN_EXTRA=() EXPORT_EXTRA=() REAL_FRAMES=3
if [ "${NSL_DEMO_QUICK:-0}" = 1 ]; then
  PER_CLASS=5 TRAIN_EXTRA=(imgsz=32 epochs=3) EXPORT_EXTRA=(--calib 36 --latency-runs 2 --max-drop 100 --min-agreement 0 --max-distance 1) REAL_FRAMES=1
fi
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "1/6 synthetic dataset (36 classes, published layout) -> $DATA"
[ -d "$DATA/Plain Background" ] || "$TRAIN" data synth "$DATA" --classes 36 --per-class "$PER_CLASS" --size 96 --seed 0

step "2/6 progressive training (configs/demo.yaml) -> $RUN"
# --ensure: reuse the run when it finished, resume it when it was interrupted, train it otherwise
"$TRAIN" train --ensure --config configs/demo.yaml --data "$DATA" --project "$OUT/runs" --name nsl36 "${TRAIN_EXTRA[@]}"

step "3/6 export: float and int8 TFLite + ONNX, each checked on the test split -> $BUNDLE"
[ -f "$BUNDLE/metadata.json" ] || "$TRAIN" export "$RUN" --int8 "${EXPORT_EXTRA[@]}"

step "4/6 MediaPipe hand model, built offline from the mediapipe 0.10.21 wheel (cached)"
"$EDGE" hand-model build

step "5/6 app, fixed region (--roi): synthetic hands do not wake the palm detector"
mapfile -t TEST_IMAGES < <(awk -F, '{sub(/\r$/, "")} $5 == "test" {print $1}' "$RUN/split.csv" | head -n 36)
ROI=$("$EDGE_PY" scripts/make_clip.py "$OUT/synthetic_clip.mp4" "${TEST_IMAGES[@]}" --roi-from-images)
"$EDGE" app --model "$BUNDLE" --source "$OUT/synthetic_clip.mp4" --roi "$ROI" --headless \
  --json "$OUT/app_synthetic.jsonl" --output "$OUT/app_synthetic.mp4"
LOGS=("$OUT/app_synthetic.jsonl")

step "6/6 app, MediaPipe hand tracking on real photos"
if [ -d "$REAL" ]; then
  "$EDGE_PY" scripts/make_clip.py "$OUT/real_clip.mp4" "$REAL"/*/* --frames-per-image "$REAL_FRAMES"
  "$EDGE" app --model "$BUNDLE" --source "$OUT/real_clip.mp4" --headless --json "$OUT/app_real_photos.jsonl"
  LOGS+=("$OUT/app_real_photos.jsonl")
  echo "(hand path ran on real NSL photos; the labels come from a model trained on synthetic data, so only"
  echo " the hand finding and the timing mean anything there)"
else
  echo "skipped: no real photos at $REAL (set NSL_REAL_DATA); only the fixed-region path ran"
fi

step "summary"
"$EDGE_PY" scripts/demo_summary.py "$RUN" "$BUNDLE" "${LOGS[@]}"
echo
echo "next: $TRAIN train data=YOUR_DATASET weights=imagenet   (see README)"
