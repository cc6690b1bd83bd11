#!/usr/bin/env bash
# The GPU tier of the strategy study (issue 23; results beside the CPU tier's in
# docs/results.md): streams (a), (c) and (d) at a budget where the small ResNet and
# ResNet-18 learn for real, over the full CIFAR-10 training split at 32 px, in one call of
# the lent GPU machine (the command: docs/performance.md#on-a-gpu).
#
#   bash examples/study/gpu_tier.sh [--device cuda|cpu] [--quick] [--budget SECONDS]
#                                   [--out DIR] [--pack FILE] [--wheels DIR] [--only STEP,STEP]
#
# Set up as examples/gpu_check.sh is (examples/gpu_env.sh: the carried wheels, a copy of
# cl-ssl, examples/gpu_data.py's JPEG pack unpacked into DIR/data). Benches in priority
# order, so a cut run answers the first question first: (1) stream (a) cifar10-split, naive
# and joint, small ResNet: does naive forget at this budget? (2) lwf-ssl, cassle, replay,
# ewc, pnr, pfr on (a); (3) stream (c) twitch-periods on a `clssl drift` manifest, naive and
# joint, and beside it (d) its frames as VODs online: naive and replay with MinRed,
# reservoir and FIFO buffers (examples/study/vods.sh's flags); (4) ResNet-18 naive and
# joint on (a). Stream (b) needs Fashion-MNIST, which does not travel beside CIFAR-10.
# A bench's runs train at once on the one GPU (--launcher local, a process each), with the
# data on the GPU, bf16 and channels-last (CUDA's defaults) and a checkpoint every 2 epochs.
# --budget (default 480 s, so a 600 s call still returns the report): no bench starts after
# it and running ones are stopped. Rerun on the same DIR (carried back) and every bench
# resumes (examples/study/common.sh's bench): nothing finished trains twice. Finished runs'
# checkpoints are deleted so DIR travels back (their metrics are what the study reads).
# DIR/report.md (examples/study/gpu_tier_report.py): the steps; learned = trained -
# untrained and the drop per run (examples/study/learning_and_forgetting.py: naive's drop
# is the first question); each run's images/s; `clssl report` per stream (DIR/reports/).
# Exit 1 when a step failed or was cut, 2 on a bad argument.
# --only STEP,STEP (as gpu_check.sh): run these steps, named as in the report (a-small-s0,
# drift, ...), and report the others skipped; the setup steps always run.
# --quick (for --device cpu, tests/test_gpu_tier.py): every bench and report, tiny (8 px,
# 16 images per experience, 1 epoch, no k-means, each bench in one process).
# Environment: SEEDS (comma list, default 0), EPOCHS (small ResNet, default 12),
# R18_EPOCHS (default 6), STRATEGIES (bench (2)'s), GPU_CHECK_PYTHON and
# GPU_CHECK_BASE_PATH (as gpu_check.sh).
#
# Epochs are sized from assumptions, not measurements (no GPU was lent when this was
# written): ~40,000 images/s over all runs at once for the small ResNet (batch 512, bf16;
# one run is launch-bound, several overlap) and ~10,000 for ResNet-18 (two views of 0.56
# GFLOPs each, forward and backward). (a) naive + joint at 12 epochs: 12 x (50k + 150k)
# images, 60 s; its 6 strategies ~110 s; (c) + (d) ~70 s; ResNet-18 at 6 epochs ~120 s;
# with ~20 s per bench to start, evaluate and save: ~480 s. The report's images/s set them.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/examples/gpu_env.sh"
SEEDS=${SEEDS:-0} EPOCHS=${EPOCHS:-12} R18_EPOCHS=${R18_EPOCHS:-6}
STRATEGIES=${STRATEGIES:-lwf-ssl,cassle,replay,ewc,pnr,pfr}
[[ $SEEDS =~ ^[0-9]+(,[0-9]+)*$ ]] || gpu_bad "SEEDS takes a comma list of seeds, got '$SEEDS'"
[[ $EPOCHS$R18_EPOCHS =~ ^[0-9]+$ ]] || gpu_bad "EPOCHS and R18_EPOCHS take whole numbers"
gpu_args "$REPO/runs/gpu-tier" "$@"
TMP=$(mktemp -d) && trap 'rm -rf "$TMP"' EXIT
DATA_DIR=$OUT/data  # beside the runs: their bench.json names data/... from $OUT
cd "$REPO" || exit 2
rm -rf "$OUT/reports" && : > "$OUT/steps.tsv"
gpu_setup
# Benches run from $OUT with relative paths, so a later call resumes them wherever the
# folder lies (no cl_ssl folder there to shadow the copy).
cd "$OUT" || exit 2
printf '#!/bin/sh\nexec "%s" -m cl_ssl "$@"\n' "$PY" > "$TMP/clssl" && chmod +x "$TMP/clssl"
export CLSSL=$TMP/clssl STUDY=runs

# tier NAME STRATEGIES ARGS...: examples/study/common.sh's bench NAME (started, or resumed
# when an earlier call was cut), a step of the report; its runs at once on the GPU. A bench
# whose every run finished in an earlier call is not even read back (a process saved).
tier() {
  local name=$1 strategies=$2 launch=(--launcher inline) run seed finished=1; shift 2
  for run in ${strategies//,/ }; do
    for seed in ${SEEDS//,/ }; do
      [ -f "$STUDY/$name/$run/seed$seed/results.json" ] || finished=0
    done
  done
  if [ $finished = 1 ]; then skip "$name" "finished in an earlier call"; return; fi
  if [ $QUICK = 0 ]; then
    launch=(--launcher local --jobs $(( $(tr , '\n' <<< "$strategies" | wc -l)
                                         * $(tr , '\n' <<< "$SEEDS" | wc -l) )))
  fi
  step "$name" bash -c 'source "$REPO/examples/study/common.sh"; OUT=$STUDY bench "$@"' \
    _ "$name" --strategy "$strategies" "${launch[@]}" "$@"
}
S=s${SEEDS//,/-}
PERIODS=2020-01-01/2020-07-01,2020-07-01/2021-01-01,2021-01-01/2021-07-01,2021-07-01/2022-01-01
if [ $QUICK = 1 ]; then
  SIZE=(--image-size 8 --eval-batch-size 64 --max-images 16 --no-kmeans)
  FIT=(--epochs 1 --batch-size 16 --checkpoint-every 1) R18_FIT=("${FIT[@]}")
  ONLINE=(--batch-size 8 --max-images 4 --checkpoint-every 2steps) VOD=2
else
  SIZE=(--image-size 32 --eval-batch-size 1024)
  FIT=(--epochs "$EPOCHS" --batch-size 512 --checkpoint-every 2)
  R18_FIT=(--epochs "$R18_EPOCHS" --batch-size 512 --checkpoint-every 2)
  ONLINE=(--batch-size 128 --checkpoint-every 200steps) VOD=25
fi
COMMON=(--method simclr --method-opt simclr.temperature=0.2 --lr 2e-3 --seeds "$SEEDS"
        --device "$DEVICE" --data-on-device auto "${SIZE[@]}")
A=(--stream cifar10-split --data-root data/cifar10 "${COMMON[@]}")
C=(--stream twitch-periods --manifest data/frames.csv --periods "$PERIODS" "${COMMON[@]}")
D=(--stream vods --stream-opt base=twitch-periods --stream-opt frames=8
   --manifest data/frames.csv --periods "$PERIODS" "${COMMON[@]}"
   --online --updates-per-batch 3 --epochs 1 "${ONLINE[@]}" --opt replay.mem-size=512)

# (1), (2): stream (a); replay's buffer holds a tenth of the stream, as in the CPU tier.
tier "a-small-$S" naive,joint "${A[@]}" "${FIT[@]}"
REPLAY=() && [[ $STRATEGIES == *replay* ]] && REPLAY=(--opt replay.mem-size=5000)
tier "a-small-strategies-$S" "$STRATEGIES" "${A[@]}" "${FIT[@]}" "${REPLAY[@]}"
# (3): the drift manifest of stream (c) (the CPU tier's, with as many frames per category
# as the data allows: a category can show in all 4 periods, each taking new images), then
# (c) and (d)'s three benches at once.
frames=$(for d in data/cifar10/train/*/; do ls "$d" | wc -l; done | sort -n | head -n 1)
step drift with_data "$CLSSL" drift data/cifar10/train --out data/frames.csv --periods 4 \
  --categories-per-period 4 --carry-over 0.75 --frames-per-category $(( ${frames:-0} / 4 )) \
  --frames-per-vod $VOD --seed 0
tier "c-small-$S" naive,joint "${C[@]}" "${FIT[@]}" &
tier "d-minred-$S" naive,replay "${D[@]}" --opt replay.buffer=minred &
tier "d-reservoir-$S" replay "${D[@]}" --opt replay.buffer=reservoir &
tier "d-fifo-$S" replay "${D[@]}" --opt replay.buffer=fifo &
wait
# (4): ResNet-18 on stream (a).
tier "a-r18-$S" naive,joint "${A[@]}" "${R18_FIT[@]}" --backbone resnet18

# A finished run (results.json) needs no checkpoint to be read back; an unfinished one
# resumes from its newest. Then the report, whatever the budget left.
prune() {
  for seed in runs/*/*/seed*/; do
    if [ -f "$seed/results.json" ]; then rm -rf "$seed/checkpoints"; continue; fi
    ls -v "$seed"/checkpoints/exp*.pt 2> /dev/null | head -n -1 | xargs -r rm -f
  done
  du -sh runs
}
export -f prune
BUDGET=$((BUDGET + 60)) step prune prune
"$PY" "$REPO/examples/study/gpu_tier_report.py" "$OUT" \
  "GPU tier ($DEVICE$([ $QUICK = 1 ] && echo ', --quick'), seeds $SEEDS)" \
  "a-small=a-small-$S,a-small-strategies-$S" "c-small=c-small-$S" \
  "d=d-minred-$S,d-reservoir-$S,d-fifo-$S" "a-r18=a-r18-$S" 2> "$OUT/logs/report.log"
status=$?
tail -n 1 "$OUT/logs/report.log" >&2
exit $status
