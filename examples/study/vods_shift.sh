#!/usr/bin/env bash
# Study stream (d) over stream (b)'s domain shift: the training images of CIFAR-10 ->
# Fashion-MNIST -> digits (`pair`, stream (b)'s sources) as ordered VODs of 8 near-duplicate
# frames (`--stream vods --stream-opt base=pair`), trained online: one pass in arrival order,
# 8 updates per incoming batch of 128 frames, at the budget of probe pM (docs/results.md,
# "Finding the budget": the first budget where online training on correlated frames both
# learns and forgets). Test splits: 2,000 of CIFAR-10's and of Fashion-MNIST's test images
# each (stream (b) keeps 166, for narrower intervals here) and digits' held-out tenth (150).
# $MAIN (naive, joint, replay with a MinRed buffer of 512 frames, half of every step: equal
# compute, and CaSSLe) in one bench per seed; $ALSO adds a bench per seed for each further
# strategy (LwF-SSL relational, `lwfc` its contrastive mode, EWC, PFR, PNR) and $BUFFERS a
# replay-only bench per other buffer (reservoir, fifo); an empty variable runs none. Rerun it
# as it is to finish a cut run (examples/study/common.sh).
#   bash examples/study/vods_shift.sh                  # seeds one after another
#   for s in 0 1 2; do SEEDS=$s OMP_NUM_THREADS=1 bash examples/study/vods_shift.sh & done; wait
#   bash examples/study/vods_shift.sh report          # the tables, once every seed is done
source "$(dirname "$0")/common.sh"
MAIN=${MAIN-naive,joint,replay,cassle}
ALSO=${ALSO-lwf-ssl lwfc ewc pfr pnr}  # strategies run as benches of their own per seed
BUFFERS=${BUFFERS-reservoir fifo}
STREAM=(--stream vods --stream-opt base=pair --stream-opt frames=8 "${PAIR_DATA[@]}"
        --max-test-images 2000 --online --updates-per-batch 8 --epochs 1 "${OPTIMISER[@]}"
        "${SIMCLR[@]}")

if [ "${1:-run}" = report ]; then  # what has run so far; stopped runs are listed apart
  shopt -s nullglob
  report vshift-report "$OUT"/vshift-s*/ "$OUT"/vshift-*-s*/
  exit 0
fi
if [ -n "$MAIN" ]; then
  for seed in $SEEDS; do
    bench "vshift-s$seed" "${STREAM[@]}" --seeds "$seed" --strategy "$MAIN" \
      "${ONLINE_BUFFER[@]}" --opt replay.buffer=minred
  done
fi
STRATEGIES=$ALSO strategy_benches vshift "${STREAM[@]}"
for buffer in $BUFFERS; do
  for seed in $SEEDS; do
    bench "vshift-$buffer-s$seed" "${STREAM[@]}" --seeds "$seed" --strategy replay \
      "${ONLINE_BUFFER[@]}" --opt replay.buffer="$buffer"
  done
done
