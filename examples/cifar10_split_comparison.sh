#!/usr/bin/env bash
# The comparison the README reports: every baseline on cifar10-split (5 tasks of 2 classes,
# 1,000 training images per task, 5 epochs, small ResNet, batch 256), training seeds 0 1 2
# on the same data (--split-seed 0), the all-classes protocol. One bench per seed (so each
# finished seed is a complete comparison on disk); LwF-SSL's contrastive mode runs as its
# own bench (a bench holds each strategy once) with the same seed, data and budget.
#   bash examples/cifar10_split_comparison.sh          (~30 min per seed on a 2-core CPU)
#   .venv/bin/clssl report runs/cifar10-split-main-s*  # mean ± std, 95% interval
set -euo pipefail
DATA=${DATA:-../shared/data/cifar10}
OUT=${OUT:-runs}
CLSSL=${CLSSL:-.venv/bin/clssl}
COMMON=(--stream cifar10-split --data-root "$DATA" --max-images 1000 --epochs 5
        --eval-protocols all --no-progress --out "$OUT")
for seed in ${SEEDS:-0 1 2}; do
  "$CLSSL" bench "${COMMON[@]}" --seeds "$seed" --run "cifar10-split-main-s$seed" \
    --strategy naive,ewc,replay,lwf-ssl,cassle,joint
  "$CLSSL" bench "${COMMON[@]}" --seeds "$seed" --run "cifar10-split-lwf-contrastive-s$seed" \
    --strategy lwf-ssl --opt lwf-ssl.mode=contrastive
done
