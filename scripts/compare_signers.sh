#!/usr/bin/env bash
# Progressive vs single-phase training (`nsl compare`) on UNSEEN SIGNERS of ../shared/data/asl_36 (issue 11,
# section 5): grouped by the signer in the file name, hand4 + hand5 held out as the test set, at equal epoch
# budgets (10 and 40: the progressive phases get the budget in the recipe's 3:3:4 proportion, the single phase all
# of it), the CNN on the device's hand crops (crop=hands), ImageNet MobileNetV2 128 px. Writes
# benchmarks/compare_signers/{README.md,results.json,val_curves.png}; finished compares are reused.
#   NSL_REAL_DATA=DIR  NSL_WEIGHTS=DIR  COMPARE_DIR=DIR (default .cache/compare_signers)
#   HANDS=FILE   the dataset's hands file (nsl data hands DATA --out FILE, edge environment); required
#   SEEDS="1 2"  BUDGETS="10 40"  IMGSZ=128
# Heavy (about 20 min a seed on 2 cores): run it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venvs/train/bin/python
DATA="${NSL_REAL_DATA:-../shared/data}/asl_36"
WEIGHTS_FILE="${NSL_WEIGHTS:-../shared/weights}/mobilenet_v2_1.0_224_no_top.h5"
RUNS="${COMPARE_DIR:-.cache/compare_signers}"
SEEDS="${SEEDS-1 2}"
BUDGETS="${BUDGETS-10 40}"
IMGSZ="${IMGSZ-128}"
OUT=benchmarks/compare_signers
[ -n "${HANDS:-}" ] && [ -f "$HANDS" ] || { echo "compare_signers: set HANDS to the hands file of $DATA" >&2; exit 2; }
[ -f "$WEIGHTS_FILE" ] || { echo "compare_signers: no weights file at $WEIGHTS_FILE (set NSL_WEIGHTS)" >&2; exit 2; }
mkdir -p "$RUNS"
FOLDERS=()
for budget in $BUDGETS; do
  for seed in $SEEDS; do
    folder="$RUNS/signers_${IMGSZ}px_${budget}ep_seed${seed}"
    FOLDERS+=("$folder")
    if [ -f "$folder/comparison.json" ]; then echo "reusing $folder"; continue; fi
    rm -rf "$folder"
    "$PY" -m nsl compare --data "$DATA" --out "$folder" --weights "$WEIGHTS_FILE" labels=auto tensorboard=false \
      split=grouped "group_pattern=^(hand\d+)_" "split_test_groups=[hand4,hand5]" hands="$HANDS" crop=hands \
      models=cnn imgsz="$IMGSZ" epochs="$budget" seed="$seed"
  done
done
"$PY" scripts/compare_summary.py "${FOLDERS[@]}" --out "$OUT" \
  --command "HANDS=$HANDS SEEDS=\"$SEEDS\" BUDGETS=\"$BUDGETS\" IMGSZ=$IMGSZ bash scripts/compare_signers.sh"
