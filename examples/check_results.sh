#!/usr/bin/env bash
# Results that stay true (`make check-results [TIER=ci|full]`): rerun a fixed subset of the
# comparisons and check every summary figure against docs/results/targets.csv
# (cl_ssl/reporting/targets.py: |measured - target| <= tolerance, exit 1 naming each miss).
#   ci   (~3 min here; CI runs it): the demo, naive vs LwF-SSL on digits-periods, seed 0.
#   full (~10 min here): naive, LwF-SSL, CaSSLe and replay at the same settings, seeds 0-2.
# A tier's targets are the mean over seeds 0-2 of its settings and max(floor, 3 std), so one
# seed (ci) and a mean (full) are checked alike; measure them with `--seeds 0,1,2` and
# `--write` after `--`:  bash examples/check_results.sh ci --seeds 0,1,2 -- --write
# The thread count changes the numerics (float sums split differently), so it is fixed.
# Other extra arguments go to `clssl bench` too, e.g. `--opt lwf-ssl.lambda=0` disables
# LwF-SSL's term (the check must then fail).
set -euo pipefail
export OMP_NUM_THREADS=2
CLSSL=${CLSSL:-.venv/bin/clssl}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs}
TIER=${1:-ci}; shift || true
BENCH=() CHECK=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; CHECK=("$@"); break; fi
  BENCH+=("$1"); shift
done
COMMON=(--stream digits-periods --epochs 20 --batch-size 128 --no-progress)
case "$TIER" in
  ci) RUN=(--strategy naive,lwf-ssl --seeds 0) ;;
  full) RUN=(--strategy naive,lwf-ssl,cassle,replay --seeds 0,1,2) ;;
  *) echo "error: unknown tier '$TIER': choose ci or full" >&2; exit 2 ;;
esac
# A tier without targets is refused before the bench trains (unless this run writes them).
if [[ " ${CHECK[*]-} " != *" --write "* ]]; then
  "$PYTHON" -c 'import sys
from cl_ssl.reporting.targets import TARGETS, load_targets
try:
    load_targets(TARGETS, sys.argv[1])
except (ValueError, FileNotFoundError) as error:
    sys.exit(f"error: {error}")' "$TIER" || exit 2
fi
# A check is rerun from scratch each time: its folder is replaced, never resumed.
mkdir -p "$OUT"
"$CLSSL" bench "${COMMON[@]}" "${RUN[@]}" "${BENCH[@]}" --out "$OUT" --run "check-$TIER" \
  --overwrite > "$OUT/check-$TIER.log" 2>&1 || { tail -3 "$OUT/check-$TIER.log"; exit 1; }
SOURCE="cl-ssl $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(getconf _NPROCESSORS_ONLN)-core $(uname -m), torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
"$PYTHON" -m cl_ssl.reporting.targets "$OUT/check-$TIER" --tier "$TIER" --source "$SOURCE" "${CHECK[@]}"
