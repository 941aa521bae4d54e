#!/usr/bin/env bash
# One algorithm in two languages: numba-tiles against rust-fused held to its tiles
# (rust-tiles) and rust-fused as it chooses, on one thread, 50,000 synthetic
# samples, float64 and float32, batch 10 and 100; one run each, into OUT.
#   docs/findings/<key>/language/measure.sh OUT   (from the checkout's root)
set -euo pipefail
out=${1:?usage: measure.sh OUT}
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD:$(dirname "$0") NNDL_BENCH_PLUGINS=rust-tiles=rust_tiles:RustTiles
for dtype in float64 float32; do
  for batch in 10 100; do
    "$PY" -m harness run --backend numba-tiles,rust-tiles,rust-fused --dataset synthetic \
      --n-train 50000 --epochs 5 --threads 1 --batch-size "$batch" --dtype "$dtype" \
      --no-flamegraphs --results-dir "$out"
  done
done
