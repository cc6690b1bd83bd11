#!/usr/bin/env bash
# Study stream (b), a large domain shift: CIFAR-10 -> Fashion-MNIST -> digits (`pair`, three
# experiences, labels unique per dataset), at the CPU-tier budget chosen on validation splits
# (docs/results.md, "Finding the budget"): 1,500 training images per experience at 16 px,
# 30 epochs, batch 128, Adam 2e-3, small ResNet. Test splits, training seeds $SEEDS on one
# split (--split-seed 0). SimCLR with every strategy (lwf-ssl's contrastive mode as a bench
# of its own), Barlow Twins with naive, lwf-ssl, cassle, pnr and joint ($METHODS picks).
# Rerun it as it is to finish a cut run (examples/study/common.sh).
#   bash examples/study/pair.sh                       # seeds one after another
#   for s in 0 1 2; do SEEDS=$s OMP_NUM_THREADS=1 bash examples/study/pair.sh & done; wait
#   bash examples/study/pair.sh report               # the tables, once every seed is done
source "$(dirname "$0")/common.sh"
METHODS=${METHODS:-simclr barlow}
STREAM=(--stream pair "${PAIR_DATA[@]}" --epochs 30 "${OPTIMISER[@]}")
BARLOW=(--method barlow-twins)

if [ "${1:-run}" = report ]; then  # what has run so far; stopped runs are listed apart
  shopt -s nullglob
  report pair-report-simclr "$OUT"/pair-simclr-s*/ "$OUT"/pair-simclr-lwfc-s*/
  barlow=("$OUT"/pair-barlow-s*/)
  if [ ${#barlow[@]} -gt 0 ]; then report pair-report-barlow "${barlow[@]}"; fi
  exit 0
fi
for seed in $SEEDS; do
  if [[ " $METHODS " == *" simclr "* ]]; then
    bench "pair-simclr-s$seed" "${STREAM[@]}" "${SIMCLR[@]}" --seeds "$seed" \
      --strategy "$SIMCLR_STRATEGIES" "${SIMCLR_OPTS[@]}"
    strategy_args lwfc
    bench "pair-simclr-lwfc-s$seed" "${STREAM[@]}" "${SIMCLR[@]}" --seeds "$seed" "${args[@]}"
  fi
  if [[ " $METHODS " == *" barlow "* ]]; then
    bench "pair-barlow-s$seed" "${STREAM[@]}" "${BARLOW[@]}" --seeds "$seed" \
      --strategy "$BARLOW_STRATEGIES"
  fi
done
