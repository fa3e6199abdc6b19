#!/usr/bin/env bash
# The GPU check of issue 13: one command, no interaction, everything it measures under one folder.
#   1. a synthetic dataset the size of the NSL set (36 classes x 1,500 images at 256 px; scripts/gpu_check_data.py)
#   2. the training section of nsl bench (python -m nsl.bench.training, as nsl bench runs it) at 224 px in mixed
#      precision: the input pipeline alone (first epoch, cached) and training steps frozen and unfrozen
#   3. a full progressive run (nsl train strategy=progressive: 3 + 3 + 4 epochs, the recipe issue 13 times; batch 32, early stopping as configured)
#   4. GPU utilisation sampled with nvidia-smi every 0.5 s throughout, matched to each step and epoch
#   5. OUT/gpu_check.json and OUT/gpu_check.md (scripts/gpu_check_summary.py): figures, goals, which side bounds
# Meant to finish within 8 minutes on one current data-centre GPU (no figure here says it did until it has run
# on one). On a machine without a GPU it runs the same steps on the CPU and labels every output CPU.
#   GPU_CHECK_OUT=DIR        output folder (default runs/gpu_check); the dataset goes to DIR/data unless
#   GPU_CHECK_DATA=DIR       names another folder (reused when complete)
#   GPU_CHECK_PER_CLASS=N    images per class (default 1500); GPU_CHECK_CLASSES=N (default 36)
#   GPU_CHECK_IMGSZ=N        model input (default 224); GPU_CHECK_EPOCHS=N epochs of every phase (default: the recipe)
#   GPU_CHECK_BATCH=N        batch per replica (default 32, the recipe's)
#   GPU_CHECK_STEPS=N        timed bench steps per mode (default 30)
#   NSL_WEIGHTS=DIR          folder of mobilenet_v2_1.0_224_no_top.h5 (default ../shared/weights; else weights=none)
#   NSL_TRAIN=PATH           the train environment's nsl (default .venvs/train/bin/nsl)
# CPU proof of the script (small): GPU_CHECK_PER_CLASS=8 GPU_CHECK_IMGSZ=48 GPU_CHECK_EPOCHS=1 bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NSL="${NSL_TRAIN:-.venvs/train/bin/nsl}"
PY="$(dirname "$NSL")/python"
OUT="${GPU_CHECK_OUT:-runs/gpu_check}"
DATA="${GPU_CHECK_DATA:-$OUT/data}"
PER_CLASS="${GPU_CHECK_PER_CLASS:-1500}" CLASSES="${GPU_CHECK_CLASSES:-36}"
IMGSZ="${GPU_CHECK_IMGSZ:-224}" BATCH="${GPU_CHECK_BATCH:-32}" STEPS="${GPU_CHECK_STEPS:-30}"
WEIGHTS_FILE="${NSL_WEIGHTS:-../shared/weights}/mobilenet_v2_1.0_224_no_top.h5"
WEIGHTS=none
[ -f "$WEIGHTS_FILE" ] && WEIGHTS="$WEIGHTS_FILE"
[ -x "$NSL" ] || { echo "gpu_check: $NSL not found (bash scripts/setup.sh train, or set NSL_TRAIN)" >&2; exit 2; }
mkdir -p "$OUT"
STAGES="$OUT/stages.jsonl"
: > "$STAGES"
stage() { printf '{"stage": "%s", "event": "%s", "time": %s}\n' "$1" "$2" "$(date +%s.%N)" >> "$STAGES"; }

SAMPLER=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi -L > "$OUT/nvidia_smi_gpus.txt"
  nvidia-smi --query-gpu=timestamp,index,utilization.gpu,utilization.memory,memory.used,power.draw \
    --format=csv,noheader,nounits -lms 500 > "$OUT/gpu_samples.csv" &
  SAMPLER=$!
  trap '[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true' EXIT
else
  echo "gpu_check: no GPU answers nvidia-smi: running on the CPU, every figure is a CPU figure" >&2
  rm -f "$OUT/gpu_samples.csv"
fi

stage data start
"$PY" scripts/gpu_check_data.py "$DATA" --classes "$CLASSES" --per-class "$PER_CLASS" --size 256
stage data end

EPOCHS_ARG=()
[ -n "${GPU_CHECK_EPOCHS:-}" ] && EPOCHS_ARG=("epochs=$GPU_CHECK_EPOCHS")

stage bench start
# mixed precision on, as nsl train's auto does on a GPU (on the CPU too, so the proof runs the same code)
"$PY" -m nsl.bench.training --out "$OUT/bench_training.json" --data "$DATA" --labels nsl36 --weights "$WEIGHTS" \
  --imgsz "$IMGSZ" --batch "$BATCH" --mixed-precision on --decoders tensorflow --repeats 1 --warmup 1 \
  --steps "$STEPS" 2> >(tee "$OUT/bench_training.log" >&2)
stage bench end

rm -rf "$OUT/run"
stage run start
"$NSL" train "data=$DATA" "weights=$WEIGHTS" "imgsz=$IMGSZ" "batch=$BATCH" strategy=progressive tensorboard=false "${EPOCHS_ARG[@]}" \
  --project "$OUT" --name run 2> >(tee "$OUT/run.log" >&2)
stage run end

if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; SAMPLER=""; fi
"$PY" scripts/gpu_check_summary.py "$OUT"
