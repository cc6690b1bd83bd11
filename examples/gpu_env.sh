# Sourced by examples/gpu_check.sh and examples/study/gpu_tier.sh: the steps both run on the
# lent GPU machine (no package registry, its own torch, no ../shared) before their own.
#
# Needs REPO (the checkout) when sourced; gpu_args sets OUT (the report folder, with logs/),
# BUDGET (seconds), PY (python), WHEELS (a folder of wheels), PACK (examples/gpu_data.py
# --pack's file) and ONLY (optional: STEP,STEP to run); the caller then sets TMP (an empty
# temporary folder), DATA_DIR (where the pack unpacks) and empties OUT/steps.tsv.
# gpu_setup copies cl-ssl to $TMP/src, installs the wheels with pip --no-deps --no-index
# into $TMP/site (the machine's torch is never touched), puts both first on PYTHONPATH,
# unpacks the data to $DATA_DIR ($DATA_DIR/cifar10 is then CIFAR-10's folder tree) and
# leaves the caller in the empty $TMP/work.
# Environment: GPU_CHECK_BASE_PATH (a folder put after the wheels on PYTHONPATH;
# examples/gpu_wheels.sh --verify emulates the machine with it).

# gpu_args DEFAULT_OUT ARGS...: the flags both scripts take, into OUT DEVICE QUICK WHEELS
# PACK ONLY BUDGET PY. Paths given are relative to the caller's folder; the defaults to the
# checkout's. A bad flag exits 2 with one line naming it, before anything runs.
gpu_args() {
  OUT=$1 DEVICE=cuda QUICK=0 WHEELS=$REPO/gpu-carry/wheels ONLY= BUDGET=
  PACK=$REPO/gpu-carry/cifar10-jpeg.tar.gz
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --out|--device|--wheels|--pack|--only|--budget) [ $# -ge 2 ] || gpu_bad "$1 needs a value" ;;&
      --out) OUT=$2; shift 2 ;;
      --device) DEVICE=$2; shift 2 ;;
      --quick) QUICK=1; shift ;;
      --wheels) WHEELS=$2; shift 2 ;;
      --pack) PACK=$2; shift 2 ;;
      --only) ONLY=$2; shift 2 ;;
      --budget) BUDGET=$2; shift 2 ;;
      *) gpu_bad "unknown argument '$1'" ;;
    esac
  done
  case $DEVICE in cuda|cpu) ;; *) gpu_bad "--device must be cuda or cpu, got '$DEVICE'" ;; esac
  BUDGET=${BUDGET:-$([ $QUICK = 1 ] && echo 1200 || echo 480)}  # a busy CPU is slow
  [[ $BUDGET =~ ^[0-9]+$ ]] || gpu_bad "--budget takes seconds, got '$BUDGET'"
  PY=${GPU_CHECK_PYTHON:-python3}
  mkdir -p "$OUT/logs" && OUT=$(cd "$OUT" && pwd) || exit 2
  PACK=$(realpath -m "$PACK") WHEELS=$(realpath -m "$WHEELS")
}
gpu_bad() { echo "error: $1 (see the comment at the top of $0)" >&2; exit 2; }

# step NAME COMMAND...: run it, log to logs/NAME.log, record status and seconds in
# steps.tsv. The caller keeps within --budget seconds (so a 10-minute call still copies
# the report): a step gets what is left and is stopped there (its whole process group);
# none starts once it is spent. Steps named in neither ONLY nor source,wheels,data are skipped.
step() {
  local name=$1 start status note left code; shift
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY,source,wheels,data," != *",$name,"* ]]; then
    skip "$name" "not in --only"; return
  fi
  left=$((BUDGET - SECONDS))
  if [ $left -lt 10 ]; then
    printf '%s\tfailed\t0\tnot started: the --budget of %s s was spent\n' "$name" "$BUDGET" \
      >> "$OUT/steps.tsv"; return
  fi
  start=$(date +%s.%N)
  echo "== $name" >&2
  timeout -k 10 "$left" bash -c '"$@"' _ "$@" > "$OUT/logs/$name.log" 2>&1
  code=$?
  if [ $code = 0 ]; then status=passed; else status=failed; fi
  note=""  # a failure's last line of output: usually the error
  [ $status = failed ] && note=$(tail -n 1 "$OUT/logs/$name.log" | cut -c1-300 | tr '\t' ' ')
  if [ $code = 124 ] || [ $code = 137 ]; then note="stopped when the --budget ran out ($left s left)"; fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(awk "BEGIN { print $(date +%s.%N) - $start }")" \
    "$note" >> "$OUT/steps.tsv"
  echo "   $status" >&2
}
skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$OUT/steps.tsv"; echo "== $1: skipped ($2)" >&2; }

# cl-ssl from a copy: strategies/ and benchmarks/ install as cl_ssl.strategies and
# cl_ssl.benchmarks (pyproject.toml), links a clean checkout lacks.
copy_source() {
  mkdir -p "$TMP/src" && cp -r "$REPO"/{cl_ssl,strategies,benchmarks} "$TMP/src/" || return 1
  for part in strategies benchmarks; do
    [ -e "$TMP/src/cl_ssl/$part" ] || ln -s "../$part" "$TMP/src/cl_ssl/$part" || return 1
  done
  ls "$TMP/src/cl_ssl/strategies/" "$TMP/src/cl_ssl/benchmarks/" | head -n 3
}
export -f copy_source
export REPO TMP PACK DATA_DIR

gpu_setup() {
  step source copy_source
  # Steps run in an empty folder: Python puts the working folder first on sys.path, and the
  # checkout's cl_ssl (without those links) would shadow the copy.
  mkdir -p "$TMP/work" && cd "$TMP/work" || exit 2
  export PYTHONPATH="${GPU_CHECK_BASE_PATH:-}${PYTHONPATH:+:$PYTHONPATH}"
  if compgen -G "$WHEELS/*.whl" > /dev/null; then
    step wheels "$PY" -m pip install --no-deps --no-index --no-compile --no-cache-dir \
      --target "$TMP/site" "$WHEELS"/*.whl
  else
    skip wheels "no wheels in $WHEELS: the machine's own packages are used"
  fi
  export PYTHONPATH="$TMP/site:$TMP/src${PYTHONPATH:+:$PYTHONPATH}"
  if ! "$PY" -c "import wandb" > /dev/null 2>&1; then  # Avalanche imports it; cl-ssl never uses it
    export PYTHONPATH="$PYTHONPATH:$REPO/examples/gpu_stubs"
    skip wandb "not installed: examples/gpu_stubs/wandb stands in for Avalanche's import"
  fi
  export PYTHONUNBUFFERED=1
  step data "$PY" "$REPO/examples/gpu_data.py" --unpack "$PACK" --to "$DATA_DIR"
}

# with_data COMMAND...: COMMAND, or a failure naming the fix when the data did not unpack
# (a missing pack fails the steps that read it, not the script).
with_data() {
  [ -d "$DATA_DIR/cifar10/train" ] || {
    echo "no data in $DATA_DIR: the pack $PACK did not unpack (python examples/gpu_data.py --pack writes it)"
    return 1
  }
  "$@"
}
export -f with_data
