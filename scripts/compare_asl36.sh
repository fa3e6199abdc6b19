#!/usr/bin/env bash
# Progressive vs single-phase training (`nsl compare`) on the real photos of ../shared/data/asl_36, with the
# ImageNet MobileNetV2 backbone and, for contrast, from random weights; several seeds (each seed draws its own
# split and initialisation; within a seed both strategies share the split). Writes
# benchmarks/compare_asl36/{README.md,results.json,val_curves.png}. Finished compares are reused, so a rerun
# only rebuilds the summary (delete the run folders to measure again).
#   NSL_REAL_DATA=DIR        the shared data folder (default ../shared/data)
#   NSL_WEIGHTS=DIR          the folder of mobilenet_v2_1.0_224_no_top.h5 (default ../shared/weights)
#   COMPARE_DIR=DIR          where the runs go (default .cache/compare)
#   SEEDS="1 2 3"  SIZES="160 128"  ImageNet weights, the default recipe (3+3+4 epochs): seeds, input sizes
#   NONE_SEEDS="1 2 3"              the same from random weights (--weights none) at 160 px, for contrast
#   LONG_SEEDS="1 2 3"              ImageNet weights at 128 px with a longer budget: 6+6+8 epochs (the single
#                                   phase 20), as in docs/TRAINING.md ("" skips a group)
# Heavy: run it alone (here: flock /tmp/nsl-heavy.lock bash scripts/compare_asl36.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venvs/train/bin/python
DATA="${NSL_REAL_DATA:-../shared/data}/asl_36"
WEIGHTS_FILE="${NSL_WEIGHTS:-../shared/weights}/mobilenet_v2_1.0_224_no_top.h5"
RUNS="${COMPARE_DIR:-.cache/compare}"
SEEDS="${SEEDS-1 2 3}"
NONE_SEEDS="${NONE_SEEDS-1 2 3}"
LONG_SEEDS="${LONG_SEEDS-1 2 3}"
SIZES="${SIZES-160 128}"
LONG_PHASES="phases=[{name: head, epochs: 6, lr: 1.0e-3, trainable: none}, {name: top, epochs: 6, lr: 1.0e-4, trainable: 140}, {name: full, epochs: 8, lr: 1.0e-5, trainable: all}]"
OUT=benchmarks/compare_asl36

[ -d "$DATA" ] || { echo "compare_asl36: no data at $DATA (set NSL_REAL_DATA)" >&2; exit 2; }
[ -f "$WEIGHTS_FILE" ] || { echo "compare_asl36: no weights file at $WEIGHTS_FILE (set NSL_WEIGHTS)" >&2; exit 2; }
mkdir -p "$RUNS"

FOLDERS=()
compare() {  # compare FOLDER WEIGHTS key=value...: one nsl compare, reused when finished
  local folder=$1 weights=$2; shift 2
  FOLDERS+=("$folder")
  if [ -f "$folder/comparison.json" ]; then echo "reusing $folder"; return; fi
  rm -rf "$folder"  # an interrupted compare: start it again (the two runs must share one split)
  "$PY" -m nsl compare --data "$DATA" --out "$folder" --weights "$weights" labels=auto tensorboard=false "$@"
}
for size in $SIZES; do
  for seed in $SEEDS; do compare "$RUNS/asl36_imagenet_${size}px_seed${seed}" "$WEIGHTS_FILE" imgsz="$size" seed="$seed"; done
done
for seed in $NONE_SEEDS; do compare "$RUNS/asl36_none_160px_seed${seed}" none imgsz=160 seed="$seed"; done
for seed in $LONG_SEEDS; do
  compare "$RUNS/asl36_imagenet_128px_20ep_seed${seed}" "$WEIGHTS_FILE" imgsz=128 seed="$seed" "$LONG_PHASES"
done

"$PY" scripts/compare_summary.py "${FOLDERS[@]}" --out "$OUT" \
  --command "SEEDS=\"$SEEDS\" SIZES=\"$SIZES\" NONE_SEEDS=\"$NONE_SEEDS\" LONG_SEEDS=\"$LONG_SEEDS\" bash scripts/compare_asl36.sh"
