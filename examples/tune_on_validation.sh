#!/usr/bin/env bash
# Choose strategy defaults on VALIDATION data of a stream the README does not report:
# Fashion-MNIST in 5 class-incremental tasks, 20% of each task's training images held out
# (--val-fraction 0.2); the test splits are never read. Prints one summary line per setting.
#   bash examples/tune_on_validation.sh [ewc|lwf|all]   (apt-get install dataset-fashion-mnist)
# SEEDS=1 OUT=runs/tune-s1 ... repeats it for another training seed (same data: --split-seed);
# `clssl report runs/tune/X runs/tune-s1/X` then gives mean ± std per setting.
set -euo pipefail
WHAT=${1:-all}
OUT=${OUT:-runs/tune}
CLSSL=${CLSSL:-.venv/bin/clssl}
COMMON=(--stream split --dataset fashion-mnist --tasks 5 --max-images 1000 --epochs 5
        --val-fraction 0.2 --eval-protocols all --no-progress --out "$OUT"
        --seeds "${SEEDS:-0}")

run() {  # run NAME STRATEGY [--opt ...]
  local name=$1; shift
  if [ ! -f "$OUT/$name/summary.csv" ]; then
    "$CLSSL" bench "${COMMON[@]}" --run "$name" --strategy "$@" > "$OUT/$name.log" 2>&1
  fi
  echo "== $name ($*)"; sed -n '3,$p' "$OUT/$name/summary.md"
}

mkdir -p "$OUT"
run naive naive
if [ "$WHAT" = lwf ] || [ "$WHAT" = all ]; then
  for bn in ${LWF_BN:-eval batch}; do
    for lam in ${LWF_LAMBDAS:-1}; do
      run "lwf-$bn-$lam" lwf-ssl --opt "lwf-ssl.teacher-bn=$bn" --opt "lwf-ssl.lambda=$lam"
    done
  done
fi
if [ "$WHAT" = ewc ] || [ "$WHAT" = all ]; then
  for lam in ${EWC_LAMBDAS:-1e4 1e5 1e6}; do run "ewc-$lam" ewc --opt "ewc.lambda=$lam"; done
fi
