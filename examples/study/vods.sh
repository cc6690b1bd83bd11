#!/usr/bin/env bash
# Study stream (d), correlated frames online: the training images of stream (c) (a `clssl
# drift` manifest of CIFAR-10, 4 periods, 75% of categories carried over) as ordered VODs
# of 8 near-duplicate frames (`--stream vods --stream-opt base=twitch-periods`), trained
# online: one pass in arrival order, 3 updates per incoming batch of 128 frames, at the
# budget of probe pI (docs/results.md, "Finding the budget"), on test splits. The question
# it answers: does an online buffer that decorrelates the batches help, and does MinRed
# beat reservoir and FIFO? naive and replay with each buffer (512 frames, half of every
# step: equal compute), one bench per buffer. Rerun it as it is to finish a cut run.
#   bash examples/study/vods.sh                        # seeds one after another
#   for s in 0 1 2; do SEEDS=$s OMP_NUM_THREADS=1 bash examples/study/vods.sh & done; wait
#   bash examples/study/vods.sh report                # the tables, once every seed is done
source "$(dirname "$0")/common.sh"
STREAM=(--stream vods --stream-opt base=twitch-periods --stream-opt frames=8
        --manifest "$MANIFEST" --periods "$PERIODS" --image-size 16
        --online --updates-per-batch 3 --epochs 1 "${OPTIMISER[@]}" "${SIMCLR[@]}")

if [ "${1:-run}" = report ]; then
  shopt -s nullglob
  report vods-report "$OUT"/vods-s*/ "$OUT"/vods-reservoir-s*/ "$OUT"/vods-fifo-s*/
  exit 0
fi
drift_manifest
for seed in $SEEDS; do
  bench "vods-s$seed" "${STREAM[@]}" --seeds "$seed" --strategy naive,replay \
    "${ONLINE_BUFFER[@]}" --opt replay.buffer=minred
  bench "vods-reservoir-s$seed" "${STREAM[@]}" --seeds "$seed" --strategy replay \
    "${ONLINE_BUFFER[@]}" --opt replay.buffer=reservoir
  bench "vods-fifo-s$seed" "${STREAM[@]}" --seeds "$seed" --strategy replay \
    "${ONLINE_BUFFER[@]}" --opt replay.buffer=fifo
done
