#!/usr/bin/env bash
# GPU check: clustering and MMT training speed on one NVIDIA GPU, one table (see benchmarks/gpu_check.py).
#
#   bash tools/gpu_check.sh WHEEL_DIR [OUT_DIR]
#
# Needs no network. On a GPU machine that has torch and torchvision but not our other
# dependencies, the wheels in WHEEL_DIR are installed into a private folder first (never
# committed). Fill it on a machine with a package registry, for the GPU machine's Python, e.g.:
#   pip download --no-deps -d WHEEL_DIR fastreid==1.4.0 yacs==0.1.8 termcolor==2.5.0
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d WHEEL_DIR faiss-cpu==1.15.1     # or a faiss GPU build
# fast-reid's evaluation imports faiss, so some faiss build is required; without faiss GPU
# support the clustering runs on the pure-torch GPU path (the script says so).
set -euo pipefail
WHEELS=${1:?usage: bash tools/gpu_check.sh WHEEL_DIR [OUT_DIR]}
OUT=${2:-output/gpu_check}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."

missing=$("$PY" -c 'import importlib.util as u; print(" ".join(m for m in ("fastreid", "yacs", "termcolor", "faiss", "tabulate", "sklearn", "cv2") if u.find_spec(m) is None))')
if [ -n "$missing" ]; then
  echo "gpu_check: not installed: $missing; installing the wheels of $WHEELS"
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "gpu_check: no .whl file in $WHEELS" >&2; exit 2; }
  SITE=${TMPDIR:-/tmp}/fastreid_mmt_gpu_check_site
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  still=$("$PY" -c 'import importlib.util as u; print(" ".join(m for m in ("fastreid", "yacs", "termcolor", "faiss") if u.find_spec(m) is None))')
  [ -z "$still" ] || { echo "gpu_check: still missing after installing $WHEELS: $still" >&2; exit 2; }
fi
# The repository's packages, for a machine where they are not installed (pip install -e .).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py --out "$OUT" "${@:3}"
