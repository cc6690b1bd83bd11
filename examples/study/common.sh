# Sourced by the study scripts (examples/study/<stream>.sh): run or finish one bench, report.
# Every bench is one (stream, method, seed) comparison under $OUT; a script cut short is
# rerun as it is: finished benches are read back, an interrupted one resumes from its last
# checkpoint (`clssl bench --resume`), so nothing finished is trained twice.
set -euo pipefail
CLSSL=${CLSSL:-.venv/bin/clssl}
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/study}
SEEDS=${SEEDS:-0 1 2}
# Evaluation shared by every study bench: all-classes protocol, kNN-20, linear probe, k-means.
EVAL=(--eval-protocols all --knn-k 20 --eval-max-train 2000 --no-progress)
# SimCLR's strategy set and Barlow Twins' (the production choice of a reference team). The
# two references run first, so a study cut short still has its naive -> joint gap.
SIMCLR_STRATEGIES=naive,joint,lwf-ssl,cassle,pnr,replay,ewc,pfr
# Options of SIMCLR_STRATEGIES' bench chosen on validation splits (docs/results.md); replay's
# buffer holds a tenth of a 5,000-image stream.
SIMCLR_OPTS=(--opt replay.mem-size=500)
BARLOW_STRATEGIES=naive,joint,lwf-ssl,cassle,pnr
# Settings every CPU-tier stream shares (chosen on validation splits, docs/results.md): the
# optimiser, SimCLR's temperature, and stream (b)'s data, which pair.sh trains on for epochs
# and vods_shift.sh online as VODs.
BATCH=(--batch-size 128)
OPTIMISER=("${BATCH[@]}" --lr 2e-3)
SIMCLR=(--method simclr --method-opt simclr.temperature=0.2)
PAIR_DATA=(--datasets "cifar10=$DATA/cifar10,fashion-mnist,digits" --image-size 16
           --max-images 1500)
# Stream (c)'s data, which periods.sh trains on for epochs and vods.sh online as VODs: a
# `clssl drift` manifest of CIFAR-10's training images, 4 periods of 4 categories, 3 of them
# carried over to the next (75%), written once under $OUT.
MANIFEST=${MANIFEST:-$OUT/drift-frames.csv}
PERIODS=2020-01-01/2020-07-01,2020-07-01/2021-01-01,2021-01-01/2021-07-01,2021-07-01/2022-01-01
# The online streams' replay buffer (vods.sh, vods_shift.sh): 512 frames, half of every step.
ONLINE_BUFFER=(--opt replay.mem-size=512)

strategy_args() {  # strategy_args NAME: sets args to the bench flags that run strategy NAME
  case $1 in  # `lwfc`: LwF-SSL's contrastive mode, a bench of its own beside the relational
    lwfc) args=(--strategy lwf-ssl --opt lwf-ssl.mode=contrastive) ;;
    *) args=(--strategy "$1") ;;
  esac
}

drift_manifest() {  # write stream (c)'s manifest to $MANIFEST unless it is there
  [ -f "$MANIFEST" ] && return
  mkdir -p "$(dirname "$MANIFEST")"
  "$CLSSL" drift "$DATA/cifar10/train" --out "$MANIFEST" --periods 4 --categories-per-period 4 \
    --carry-over 0.75 --frames-per-category 375 --seed 0
}

strategy_benches() {  # strategy_benches PREFIX ARGS...: bench PREFIX-<strategy>-s<seed> for
  local prefix=$1 strategy seed; shift  # each of $STRATEGIES (SimCLR's and `lwfc`) and $SEEDS
  for strategy in ${STRATEGIES-${SIMCLR_STRATEGIES//,/ } lwfc}; do
    strategy_args "$strategy"
    if [ "$strategy" = replay ]; then args+=("${SIMCLR_OPTS[@]}"); fi
    for seed in $SEEDS; do
      bench "$prefix-$strategy-s$seed" "$@" --seeds "$seed" "${args[@]}"
    done
  done
}

bench() {  # bench NAME ARGS...: start the bench NAME, or finish it if a call was cut short
  local name=$1; shift
  local flags=("$@" "${EVAL[@]}" --out "$OUT" --run "$name")
  mkdir -p "$OUT"
  # A started bench resumes with the flags it would start with: clssl refuses one that
  # disagrees with the run's bench.json (a setting changed since), never mixes the two.
  if [ -f "$OUT/$name/bench.json" ]; then flags=(--resume "$OUT/$name" "${flags[@]}"); fi
  if ! "$CLSSL" bench "${flags[@]}" > "$OUT/$name.log" 2>&1; then
    echo "$name failed ($OUT/$name.log):" >&2
    tail -n 3 "$OUT/$name.log" >&2
    return 1
  fi
  echo "finished $name"
}

report() {  # report NAME DIR...: one table over seeds (mean ± std, 95% intervals, gap closed)
  local name=$1; shift
  "$CLSSL" report "$@" --out "$OUT/$name"
}
