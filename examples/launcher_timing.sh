#!/usr/bin/env bash
# Wall time of one 4-run grid (digits-periods, naive,lwf-ssl x seeds 0,1, the demo recipe)
# by each launcher: inline (one run after another, torch's default threads), --launcher
# local --jobs 2 --threads-per-job 1, --launcher ray (a local Ray instance of this machine's
# cores, one CPU per run), and Ray's own start and stop with nothing to run.
#   bash examples/launcher_timing.sh                              # run it on an idle machine
#   bash examples/launcher_timing.sh --epochs 1 --max-images 40   # a smoke test: flags appended
set -euo pipefail
OUT=${OUT:-runs/launcher-timing}
CLSSL=${CLSSL:-.venv/bin/clssl}
PY=${PY:-.venv/bin/python}
GRID=(--stream digits-periods --strategy naive,lwf-ssl --seeds 0,1 --epochs 20 --batch-size 128
      --no-progress --out "$OUT" --overwrite "$@")
declare -A LAUNCHERS=(
  [inline]=""
  [local]="--launcher local --jobs 2 --threads-per-job 1"
  [ray]="--launcher ray --cpus-per-run 1"
)
declare -A SECONDS_OF
mkdir -p "$OUT"
for name in inline local ray; do
  start=$(date +%s.%N)
  # shellcheck disable=SC2086  # the launcher's flags split into words
  "$CLSSL" bench "${GRID[@]}" ${LAUNCHERS[$name]} --run "$name" > "$OUT/$name.log" 2>&1
  SECONDS_OF[$name]=$(echo "$(date +%s.%N) - $start" | bc)
done
start=$(date +%s.%N)
"$PY" -c "import ray; ray.init(address='local', include_dashboard=False); ray.shutdown()" \
  > "$OUT/ray-start.log" 2>&1
ray_start=$(echo "$(date +%s.%N) - $start" | bc)
for name in inline local ray; do
  same=$(cmp -s "$OUT/inline/naive/seed0/metrics.csv" "$OUT/$name/naive/seed0/metrics.csv" \
         && echo "same" || echo "differs (other thread count)")
  printf '%-7s %7.1f s   naive/seed0 metrics.csv vs inline: %s\n' "$name" "${SECONDS_OF[$name]}" "$same"
done
printf 'Ray start and stop alone: %.1f s (cores: %s)\n' "$ray_start" "$("$PY" -c 'import os; print(len(os.sched_getaffinity(0)))')"
