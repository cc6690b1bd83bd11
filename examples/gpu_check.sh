#!/usr/bin/env bash
# One GPU check of cl-ssl: speed table, a short bench, the same bench under torchrun, and the
# evaluation's cost against training's, into one report (docs/performance.md#on-a-gpu).
#
#   bash examples/gpu_check.sh [--out DIR] [--device cuda|cpu] [--quick] [--wheels DIR] [--pack FILE]
#                              [--only STEP,STEP] [--budget SECONDS]
#
# Made for the lent GPU machine (no package registry, its own torch): the wheels that
# examples/gpu_wheels.sh downloaded (--wheels, default gpu-carry/wheels) are installed with
# pip --no-deps --no-index into a temporary folder put first on PYTHONPATH, never touching
# the machine's torch; cl-ssl itself runs from a temporary copy of this checkout (both in
# examples/gpu_env.sh, shared with examples/study/gpu_tier.sh). The data is CIFAR-10's
# JPEGs as examples/gpu_data.py --pack packed them (--pack, default
# gpu-carry/cifar10-jpeg.tar.gz), unpacked into the temporary folder.
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
source "$REPO/examples/gpu_env.sh"
gpu_args "$REPO/runs/gpu-check" "$@"
TMP=$(mktemp -d) && trap 'rm -rf "$TMP"' EXIT
DATA_DIR=$TMP/data
cd "$REPO" || exit 2
rm -rf "$OUT/bench" "$OUT"/speed-*.json "$OUT/compare.json" && : > "$OUT/steps.tsv"
gpu_setup
step environment "$PY" "$REPO/examples/gpu_check_report.py" env "$OUT"
step imports "$PY" -c "import cl_ssl.cli, cl_ssl.strategy_run, cl_ssl.speed.loops, \
cl_ssl.speed.strategy_rows, avalanche, lightly.loss, kornia; print('imports ok')"

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

# A short bench from the unpacked CIFAR-10, capped to the 6,000 + 2,000 images it always read
# (1,200 + 400 per task): plain, then through torchrun (one process).
if [ $QUICK = 1 ]; then
  BENCH=(--backbone small_resnet --image-size 8 --batch-size 16 --eval-batch-size 64
         --knn-k 5 --no-kmeans)
else
  BENCH=(--backbone resnet18 --batch-size 256 --eval-batch-size 1024)
fi
BENCH=(bench --stream cifar10-split --data-root "$DATA_DIR/cifar10" --max-images 1200
       --max-test-images 400 --strategy naive --epochs 1
       --eval-protocols all --no-checkpoints --no-progress --device "$DEVICE"
       --out "$OUT/bench" "${BENCH[@]}")
step bench with_data "$PY" -m cl_ssl "${BENCH[@]}" --run-name plain
step bench-torchrun with_data "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
  -m cl_ssl "${BENCH[@]}" --run-name torchrun
step bench-compare "$PY" "$REPO/examples/gpu_check_report.py" compare "$OUT/bench/plain" \
  "$OUT/bench/torchrun" "$OUT" "$DEVICE"

"$PY" "$REPO/examples/gpu_check_report.py" report "$OUT" > "$OUT/logs/report.log" 2>&1
status=$?
echo "report: $OUT/report.md ($( [ $status = 0 ] && echo 'all steps passed' || echo 'some steps FAILED'))" >&2
exit $status
