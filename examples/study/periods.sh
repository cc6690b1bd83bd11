#!/usr/bin/env bash
# Study stream (c), small shifts over time: `twitch-periods` on stream (c)'s `clssl drift`
# manifest of CIFAR-10 (4 periods of 4 categories, 3 carried over to the next), at probe pH's
# budget (docs/results.md, "Finding the budget"): 16 px, 30 epochs, batch 128, Adam 2e-3,
# SimCLR T = 0.2, small ResNet. pH learns but naive does not forget there (backward
# transfer), so, like stream (a)'s study, this one asks what each strategy costs where
# nothing is forgotten and how much of the naive -> joint gap it closes. Test splits: 28% of
# each period's VODs, so that training keeps pH's 1,075 images per period (pH: 10% test,
# then 20% of the rest for validation) and the test splits hold 1,700 images in all. One
# bench per strategy and seed ($STRATEGIES, `lwfc` = LwF-SSL's contrastive mode). Rerun it
# as it is to finish a cut run (examples/study/common.sh).
#   bash examples/study/periods.sh                     # every strategy, seeds one by one
#   STRATEGIES="naive cassle" OMP_NUM_THREADS=1 bash examples/study/periods.sh &  # a lane
#   bash examples/study/periods.sh report             # the table, once the benches are done
source "$(dirname "$0")/common.sh"
STREAM=(--stream twitch-periods --manifest "$MANIFEST" --periods "$PERIODS" --test-fraction 0.28
        --image-size 16 --epochs 30 "${OPTIMISER[@]}" "${SIMCLR[@]}")

if [ "${1:-run}" = report ]; then  # what has run so far; stopped runs are listed apart
  shopt -s nullglob
  report periods-report "$OUT"/periods-*-s*/
  exit 0
fi
drift_manifest
strategy_benches periods "${STREAM[@]}"
