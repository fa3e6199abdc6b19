#!/usr/bin/env bash
# The int8 fidelity study of docs/QUANTIZATION.md: 8 fine-tuned runs (asl_36, MobileNetV2 from the ImageNet
# no-top file, the default progressive recipe, 96/128/160/224 px, seeds 42 and 7), then every remedy measured
# against each run's Keras model (scripts/quant_study.py). Reruns reuse finished runs (nsl train --ensure) and
# the figures already in the results file. About 2.5 hours of 2 shared cores here (nice'd).
#
#   bash scripts/quant_study.sh [OUT_DIR]        # default .cache/quant; results in benchmarks/quantization/
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.cache/quant}
PY=${NSL_TRAIN_PYTHON:-.venvs/train/bin/python}
DATA=$(realpath "${NSL_REAL_DATA:-../shared/data}/asl_36")
WEIGHTS=$(realpath "${NSL_WEIGHTS:-../shared/weights}/mobilenet_v2_1.0_224_no_top.h5")
RESULTS=benchmarks/quantization/results.json
export TQDM_DISABLE=1
runs=()
for seed in 42 7; do
  for size in 96 128 160 224; do
    nice -n 10 "$PY" -m nsl train data="$DATA" labels=auto imgsz=$size seed=$seed weights="$WEIGHTS" strategy=progressive \
      tensorboard=false --project "$OUT/runs" --name "prog_s${seed}_${size}px" --ensure
    runs+=("$OUT/runs/prog_s${seed}_${size}px")
  done
done
# before / after on every run
nice -n 10 "$PY" scripts/quant_study.py "${runs[@]}" --out "$RESULTS" \
  --variants tflite/none,tflite/round,onnx/none,onnx/round/w7
# what else was tried, on the seed-42 runs (cross-layer equalisation, tflite/cle and tflite/cle+round, was measured
# too and then removed from the code: its rows in results.json are from the commit before that)
nice -n 10 "$PY" scripts/quant_study.py "${runs[@]:0:4}" --out "$RESULTS" \
  --variants tflite/bias,tflite/none/per-tensor,tflite/round/calib=1,tflite/round/calib=all,tflite/round/calib=aug,onnx/none/w7,onnx/round,onnx/round/w7/percentile,onnx/none/percentile,onnx/none/entropy,qat/none/epochs=2
# the default that came out of it (all training images calibrate), on every run
nice -n 10 "$PY" scripts/quant_study.py "${runs[@]}" --out "$RESULTS" \
  --variants tflite/round/calib=all,onnx/round/w7/calib=all,tflite/bias/calib=all
nice -n 10 "$PY" scripts/quant_study.py --render "$RESULTS" > benchmarks/quantization/results.md
