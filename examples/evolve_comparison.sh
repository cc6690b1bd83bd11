#!/usr/bin/env bash
# Issue 16's closing comparison: search LwF-SSL's distillation weight with `clssl evolve` on
# digits-periods' validation splits (the demo recipe: 20 epochs, batch 128), then run the
# winner and the default (lambda = 1) on the test splits with 3 training seeds.
#   bash examples/evolve_comparison.sh        # ~25 min search + ~10 min benches, idle 2 cores
set -euo pipefail
OUT=${OUT:-runs}
CLSSL=${CLSSL:-.venv/bin/clssl}
PY=${PY:-.venv/bin/python}
RECIPE=(--stream digits-periods --strategy lwf-ssl --epochs 20 --batch-size 128 --no-progress --out "$OUT")
SEARCH="$OUT/evolve-digits-lwf-e20"
if [ -f "$SEARCH/state.json" ]; then
  "$CLSSL" evolve --resume "$SEARCH"
else
  "$CLSSL" evolve --rounds 8 "${RECIPE[@]}" --run "$(basename "$SEARCH")"
fi
LAM=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['best']['weights']['lwf-ssl.lambda'])" "$SEARCH/best.json")
"$CLSSL" bench "${RECIPE[@]}" --seeds 0,1,2 --run evolve-cmp-default
"$CLSSL" bench "${RECIPE[@]}" --seeds 0,1,2 --run evolve-cmp-evolved --opt "lwf-ssl.lambda=$LAM"
