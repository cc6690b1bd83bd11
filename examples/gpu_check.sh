#!/usr/bin/env bash
# One GPU check of cl-ssl: speed table, a short bench, the same bench under torchrun, and the
# evaluation's cost against training's, into one report (docs/performance.md#on-a-gpu).
#
#   bash examples/gpu_check.sh [--out DIR] [--device cuda|cpu] [--quick] [--wheels DIR] [--data NPZ]
#                              [--only STEP,STEP] [--budget SECONDS]
#
# Made for the lent GPU machine (no package registry, its own torch): the wheels that
# examples/gpu_wheels.sh downloaded (--wheels, default gpu-carry/wheels) are installed with
# pip --no-deps --no-index into a temporary folder put first on PYTHONPATH, never touching
# the machine's torch; cl-ssl itself runs from a temporary copy of this checkout. The data is
# the file examples/gpu_data.py packed (--data, default gpu-carry/cifar10-small.npz).
# Every step runs even when one before it failed; each step's status, seconds and log are in
# DIR/report.md and DIR/report.json, and the exit status is 1 when any step failed.
# --budget SECONDS: the whole check's time (default 480, 1200 with --quick); a step it leaves
# out has failed.
# --only: run these steps (names as in the report), the others are reported skipped.
# --quick: tiny model, batch and steps, compile skipped (the CPU test, tests/test_gpu_check.py).
# Environment: GPU_CHECK_PYTHON (default python3), GPU_CHECK_BASE_PATH (a folder put after
# the wheels on PYTHONPATH; examples/gpu_wheels.sh --verify emulates the machine with it).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# Paths given are relative to the caller's folder; the defaults to the checkout's root.
OUT=$REPO/runs/gpu-check DEVICE=cuda QUICK=0 WHEELS=$REPO/gpu-carry/wheels ONLY= BUDGET=
DATA=$REPO/gpu-carry/cifar10-small.npz
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    *) echo "error: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
case $DEVICE in cuda|cpu) ;; *) echo "error: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;; esac
PY=${GPU_CHECK_PYTHON:-python3}
BUDGET=${BUDGET:-$([ $QUICK = 1 ] && echo 1200 || echo 480)}  # a busy CPU is slow
[[ $BUDGET =~ ^[0-9]+$ ]] || { echo "error: --budget takes seconds, got '$BUDGET'" >&2; exit 2; }
mkdir -p "$OUT/logs" && OUT=$(cd "$OUT" && pwd) || exit 2
DATA=$(realpath -m "$DATA") WHEELS=$(realpath -m "$WHEELS")
TMP=$(mktemp -d) && trap 'rm -rf "$TMP"' EXIT
cd "$REPO" || exit 2
export REPO TMP DATA
rm -rf "$OUT/bench" "$OUT"/speed-*.json "$OUT/compare.json" && : > "$OUT/steps.tsv"

# step NAME COMMAND...: run it, log to logs/NAME.log, record status and seconds. The whole
# check keeps within --budget seconds (default 480, so a 10-minute call still copies the
# report): a step gets what is left and is stopped there; none starts once it is spent.
step() {
  local name=$1 start status note left code; shift
  if [ -n "$ONLY" ] && [[ ",$ONLY,source,wheels," != *",$name,"* ]]; then
    skip "$name" "not in --only"; return
  fi
  left=$((BUDGET - SECONDS))
  if [ $left -lt 10 ]; then
    printf '%s\tfailed\t0\tnot started: the --budget of %s s was spent\n' "$name" "$BUDGET" \
      >> "$OUT/steps.tsv"; return
  fi
  start=$(date +%s.%N)
  echo "== $name" >&2
  timeout -k 10 "$left" bash -c '"$@"' _ "$@" > "$OUT/logs/$name.log" 2>&1
  code=$?
  if [ $code = 0 ]; then status=passed; else status=failed; fi
  note=""  # a failure's last line of output: usually the error
  [ $status = failed ] && note=$(tail -n 1 "$OUT/logs/$name.log" | cut -c1-300 | tr '\t' ' ')
  if [ $code = 124 ] || [ $code = 137 ]; then note="stopped when the --budget ran out ($left s left)"; fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(awk "BEGIN { print $(date +%s.%N) - $start }")" \
    "$note" >> "$OUT/steps.tsv"
  echo "   $status" >&2
}
skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$OUT/steps.tsv"; echo "== $1: skipped ($2)" >&2; }

# cl-ssl from a copy: strategies/ and benchmarks/ install as cl_ssl.strategies and
# cl_ssl.benchmarks (pyproject.toml), links a clean checkout lacks.
copy_source() {
  mkdir -p "$TMP/src" && cp -r "$REPO"/{cl_ssl,strategies,benchmarks} "$TMP/src/" || return 1
  for part in strategies benchmarks; do
    [ -e "$TMP/src/cl_ssl/$part" ] || ln -s "../$part" "$TMP/src/cl_ssl/$part" || return 1
  done
  ls "$TMP/src/cl_ssl/strategies/" "$TMP/src/cl_ssl/benchmarks/" | head -n 3
}
export -f copy_source
step source copy_source
# Steps run in an empty folder: Python puts the working folder first on sys.path, and the
# checkout's cl_ssl (without those links) would shadow the copy.
mkdir -p "$TMP/work" && cd "$TMP/work" || exit 2
export PYTHONPATH="${GPU_CHECK_BASE_PATH:-}${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  step wheels "$PY" -m pip install --no-deps --no-index --no-compile --no-cache-dir \
    --target "$TMP/site" "$WHEELS"/*.whl
else
  skip wheels "no wheels in $WHEELS: the machine's own packages are used"
fi
export PYTHONPATH="$TMP/site:$TMP/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import wandb" > /dev/null 2>&1; then  # Avalanche imports it; cl-ssl never uses it
  export PYTHONPATH="$PYTHONPATH:$REPO/examples/gpu_stubs"
  skip wandb "not installed: examples/gpu_stubs/wandb stands in for Avalanche's import"
fi
export PYTHONUNBUFFERED=1
step environment "$PY" "$REPO/examples/gpu_check_report.py" env "$OUT"
step imports "$PY" -c "import cl_ssl.cli, cl_ssl.strategy_run, cl_ssl.speed.loops, \
cl_ssl.speed.strategy_rows, cl_ssl.data.npz, avalanche, lightly.loss, kornia; print('imports ok')"

# Speed: the full row set once, then channels-last off and --compile on the step and naive rows.
if [ $QUICK = 1 ]; then
  SPEED=(--backbone small_resnet --image-size 16 --batch-size 16 --precision fp32 --data synthetic
         --pool-size 64 --windows 1 --steps 1 --warmup 1 --first-experience-steps 1 --workers 0)
  MAIN_ROWS=step,naive SIDE_ROWS=step
else
  SPEED=(--backbone resnet18 --image-size 32 --batch-size 512 --precision bf16 --data synthetic
         --pool-size 4096 --windows 5 --steps 5 --warmup 3)
  MAIN_ROWS=loop-lightly,loop-batched,data,step,naive,lwf-ssl,cassle SIDE_ROWS=step,naive
fi
SPEED+=(--device "$DEVICE")
step speed-channels-last "$PY" -m cl_ssl speed "${SPEED[@]}" --rows "$MAIN_ROWS" \
  --channels-last on --no-compile --out "$OUT/speed-channels-last.json"
step speed-contiguous "$PY" -m cl_ssl speed "${SPEED[@]}" --rows "$SIDE_ROWS" \
  --channels-last off --no-compile --out "$OUT/speed-contiguous.json"
if [ $QUICK = 1 ]; then
  skip speed-compile "--quick: torch.compile takes minutes on a CPU"
else
  step speed-compile "$PY" -m cl_ssl speed "${SPEED[@]}" --rows "$SIDE_ROWS" \
    --channels-last on --compile --out "$OUT/speed-compile.json"
fi

# A short bench from the packed CIFAR-10 sample: plain, then through torchrun (one process).
if [ $QUICK = 1 ]; then
  BENCH=(--backbone small_resnet --image-size 8 --batch-size 16 --eval-batch-size 64
         --knn-k 5 --no-kmeans)
else
  BENCH=(--backbone resnet18 --batch-size 256 --eval-batch-size 1024)
fi
BENCH=(bench --stream cifar10-split --data-root "$DATA" --strategy naive --epochs 1
       --eval-protocols all --no-checkpoints --no-progress --device "$DEVICE"
       --out "$OUT/bench" "${BENCH[@]}")
# A missing data file fails the bench steps (and so the comparison), not the script.
with_data() {
  [ -f "$DATA" ] || { echo "no data file $DATA: run python examples/gpu_data.py first"; return 1; }
  "$@"
}
export -f with_data
step bench with_data "$PY" -m cl_ssl "${BENCH[@]}" --run-name plain
step bench-torchrun with_data "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
  -m cl_ssl "${BENCH[@]}" --run-name torchrun
step bench-compare "$PY" "$REPO/examples/gpu_check_report.py" compare "$OUT/bench/plain" \
  "$OUT/bench/torchrun" "$OUT" "$DEVICE"

"$PY" "$REPO/examples/gpu_check_report.py" report "$OUT" > "$OUT/logs/report.log" 2>&1
status=$?
echo "report: $OUT/report.md ($( [ $status = 0 ] && echo 'all steps passed' || echo 'some steps FAILED'))" >&2
exit $status
