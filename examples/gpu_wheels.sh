#!/usr/bin/env bash
# The wheels the GPU check needs beyond the lent GPU machine's own packages, downloaded here
# (that machine reaches no package registry; docs/performance.md#on-a-gpu).
#
#   bash examples/gpu_wheels.sh           # Python 3.12 manylinux wheels -> gpu-carry/wheels/
#   bash examples/gpu_wheels.sh --verify  # prove the set complete on a machine emulated here
#
# Versions are this venv's exactly (pip freeze of $PYTHON, default .venv/bin/python). The
# set is what `clssl speed` and `clssl bench` import (cl-ssl's dependencies and theirs),
# minus what the machine's image holds and the check never needs:
# - torch, torchvision, nvidia-*, triton: the machine's own, never replaced;
# - numpy, pandas, scikit-learn, scipy, matplotlib, pillow, tensorboard, tqdm, tabulate,
#   requests, psutil, packaging, pyyaml, torchmetrics, pytorch-lightning: on the machine
#   (examples/gpu_machine_packages.txt, from the device notes) and large;
# - av (PyAV, tens of MB): only video ingestion imports it; wandb (20 MB with its telemetry
#   stack): Avalanche imports it for its W&B logger alone, so the check puts the stand-in
#   examples/gpu_stubs/wandb on the path when the machine has none.
# Small pure-Python packages the machine also has (typer, rich, ...) travel anyway, so
# cl-ssl's command line runs on the versions it is tested with.
#
# --verify downloads the Python 3.11 twins of the same versions (this machine has no Python
# 3.12), builds a bare venv that sees only the machine's listed packages (this venv's copies
# of them) plus the twins, and runs examples/gpu_check.sh --device cpu --quick in it: every
# import and code path of the check, with nothing else installed. What it cannot prove: that
# the 3.12 wheels' compiled parts (kornia-rs, pydantic-core) load on 3.12, and that the
# machine's versions of its own packages suit cl-ssl; the check's imports step reports both.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DEST=gpu-carry/wheels
CARRIED=(avalanche-lib lightly kornia kornia-rs typer pydantic pydantic-core annotated-types
         typing-inspection shellingham annotated-doc rich markdown-it-py mdurl pygments dill
         gdown beautifulsoup4 soupsieve pytorchcv gputil qpsolvers)
SDIST_ONLY=(gputil)  # no wheel on PyPI: built here (pure Python, any version of Python)

# NAME==VERSION of every carried package, from the venv.
pins() {
  "$PYTHON" -m pip freeze --all | "$PYTHON" -c '
import re, sys
wanted = sys.argv[1:]
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have = {norm(l.split("==")[0]): l.strip() for l in sys.stdin if "==" in l}
missing = [n for n in wanted if norm(n) not in have]
if missing:
    sys.exit(f"not installed in the venv: {missing}")
print("\n".join(have[norm(n)] for n in wanted))' "${CARRIED[@]}"
}

# download PYTHON_VERSION FOLDER: the carried set for that Python into FOLDER.
download() {
  local version=$1 folder=$2 binary=() built=()
  rm -rf "$folder" && mkdir -p "$folder"
  while read -r pin; do
    name=$(echo "${pin%%==*}" | tr 'A-Z_' 'a-z-')
    if [[ " ${SDIST_ONLY[*]} " == *" $name "* ]]; then built+=("$pin"); else binary+=("$pin"); fi
  done < <(pins)
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$folder" "${binary[@]}"
  [ ${#built[@]} = 0 ] || "$PYTHON" -m pip wheel --quiet --no-deps -w "$folder" "${built[@]}"
  echo "$folder: $(ls "$folder" | wc -l) wheels, $(du -sm "$folder" | cut -f1) MiB" >&2
}

if [ "${1:-}" != --verify ]; then
  download 3.12.3 "$DEST"  # the machine's python3 (device notes); 3.12 alone means 3.12.0
  ls -1 "$DEST"
  du -ch "$DEST" gpu-carry/*.tar.gz 2>/dev/null | tail -n 1 | sed 's/total$/carried in all (gpu-carry)/'
  exit 0
fi

TWINS=gpu-verify/wheels-py311  # beside gpu-carry/, so it never travels
download "$("$PYTHON" -c 'import platform; print(platform.python_version())')" "$TWINS"
TMP=$(mktemp -d) && trap 'rm -rf "$TMP"' EXIT
# A venv with nothing in it, from the same interpreter as $PYTHON.
"$("$PYTHON" -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$TMP/bare"
# The machine's packages: links to this venv's copies of those the device notes list.
"$PYTHON" - examples/gpu_machine_packages.txt "$TMP/machine" <<'EOF'
import re, sys
from importlib.metadata import distributions
from pathlib import Path

norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
listed = {norm(ln) for ln in open(sys.argv[1]).read().split("\n") if ln and ln[0] != "#"}
view = Path(sys.argv[2])
view.mkdir()
for dist in distributions():
    if norm(dist.metadata["Name"]) not in listed:
        continue
    for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
        source = Path(dist.locate_file(top))
        if source.exists() and top not in ("__pycache__", "bin") and not (view / top).exists():
            (view / top).symlink_to(source)
print(f"emulated machine: {len(list(view.iterdir()))} entries of {len(listed)} listed packages")
EOF
"$PYTHON" examples/gpu_data.py --pack --train-per-class 8 --test-per-class 4 --out "$TMP/tiny.tar.gz"
GPU_CHECK_PYTHON="$TMP/bare/bin/python" GPU_CHECK_BASE_PATH="$TMP/machine" PYTHONPATH= \
  OMP_NUM_THREADS=1 bash examples/gpu_check.sh --device cpu --quick --wheels "$TWINS" \
  --pack "$TMP/tiny.tar.gz" --out gpu-verify/report
echo "verified: the carried set (Python 3.11 twins) ran the quick check; gpu-verify/report/report.md"
