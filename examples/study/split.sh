#!/usr/bin/env bash
# Study stream (a), class-incremental CIFAR-10 (`cifar10-split`: five tasks of two classes in
# the sorted order, airplane+automobile first), at probe pF's budget (docs/results.md,
# "Finding the budget"): 980 training images per task at 16 px (pF's training share), 40
# epochs, batch 128, Adam 2e-3 (Barlow Twins: 1e-3), SimCLR T = 0.2, small ResNet. pF
# learns (+0.119 linear over the untrained model) but naive does not forget there (backward
# transfer), so this study asks what each strategy costs where nothing is forgotten, and
# how much of the naive -> joint gap it closes. Test splits: all 2,000 test images of each
# task. One bench per strategy and seed, so that lanes can share the strategies out
# ($STRATEGIES, `lwfc` = LwF-SSL's contrastive mode; $METHOD simclr or barlow-twins). Rerun
# it as it is to finish a cut run (examples/study/common.sh).
#   bash examples/study/split.sh                       # every strategy, seeds one by one
#   STRATEGIES="naive cassle" OMP_NUM_THREADS=1 bash examples/study/split.sh &   # a lane
#   bash examples/study/split.sh report               # the table, once the benches are done
source "$(dirname "$0")/common.sh"
METHOD=${METHOD:-simclr}
case $METHOD in
  simclr) METHOD_ARGS=("${SIMCLR[@]}") ;;
  # Adam at half SimCLR's rate: at 2e-3 Barlow Twins learns less than the study's 10 points
  # on this stream (probes pB0-pBb on validation splits, docs/results.md).
  barlow-twins) METHOD_ARGS=(--method barlow-twins); OPTIMISER=("${BATCH[@]}" --lr 1e-3) ;;
  *) echo "METHOD must be simclr or barlow-twins, got '$METHOD'" >&2; exit 2 ;;
esac
STREAM=(--stream cifar10-split --data-root "$DATA/cifar10" --image-size 16 --max-images 980
        --max-test-images 2000 --epochs 40 "${OPTIMISER[@]}" "${METHOD_ARGS[@]}")

if [ "${1:-run}" = report ]; then  # what has run so far; stopped runs are listed apart
  shopt -s nullglob
  report "split-$METHOD-report" "$OUT"/split-"$METHOD"-*-s*/
  exit 0
fi
strategy_benches "split-$METHOD" "${STREAM[@]}"
