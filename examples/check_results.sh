#!/usr/bin/env bash
# Results that stay true (`make check-results [TIER=ci|full]`): rerun a fixed subset of the
# comparisons and check every summary figure against docs/results/targets.csv
# (cl_ssl/reporting/targets.py: |measured - target| <= tolerance, exit 1 naming each miss).
#   ci   (~2 min here; CI runs it): the demo, naive vs LwF-SSL on digits-periods, seed 0.
#   full (~15 min here): naive, LwF-SSL, CaSSLe, PNR, replay and EWC, seeds 0-2.
# Extra arguments go to `clssl bench`, e.g. `--opt lwf-ssl.lambda=0` disables LwF-SSL's term
# (the check must then fail). `--write` after `--` records the measured figures as the
# tier's targets instead of checking them: bash examples/check_results.sh ci -- --write
set -euo pipefail
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
  full) RUN=(--strategy naive,lwf-ssl,cassle,pnr,replay,ewc --seeds 0,1,2) ;;
  *) echo "error: unknown tier '$TIER': choose ci or full" >&2; exit 2 ;;
esac
# A check is rerun from scratch each time: its folder is replaced, never resumed.
"$CLSSL" bench "${COMMON[@]}" "${RUN[@]}" "${BENCH[@]}" --out "$OUT" --run "check-$TIER" \
  --overwrite > "$OUT/check-$TIER.log" 2>&1 || { tail -3 "$OUT/check-$TIER.log"; exit 1; }
SOURCE="cl-ssl $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(getconf _NPROCESSORS_ONLN)-core $(uname -m), torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
"$PYTHON" -m cl_ssl.reporting.targets "$OUT/check-$TIER" --tier "$TIER" --source "$SOURCE" "${CHECK[@]}"
