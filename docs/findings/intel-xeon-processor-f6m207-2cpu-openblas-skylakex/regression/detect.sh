#!/usr/bin/env bash
# Five runs with numpy-gemm as it is (A1-A5) and five with numpy-gemm doing about
# 2% more instructions (B1-B5: tests/fake_backends.py's GemmWithExtraExp, under
# numpy-gemm's own name), alternated A1 B1 A2 B2 ...; in each, `twin` (numpy-gemm
# under another name, unchanged) runs beside it.
#   docs/findings/<key>/regression/detect.sh OUT   (from the checkout's root)
set -euo pipefail
out=${1:?usage: detect.sh OUT}
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD:$PWD/tests
ARGS=(--backend twin,numpy-gemm --dataset mnist-sample --epochs 3 --warmup-epochs 1 --threads 1
      --no-flamegraphs --peak-seconds 0 --count-instructions)
for i in 1 2 3 4 5; do
  NNDL_BENCH_PLUGINS=twin=backends.numpy_gemm:NumpyGemm \
    "$PY" -m harness run "${ARGS[@]}" --results-dir "$out/A$i"
  NNDL_BENCH_PLUGINS=twin=backends.numpy_gemm:NumpyGemm,numpy-gemm=fake_backends:GemmWithExtraExp \
    "$PY" -m harness run "${ARGS[@]}" --results-dir "$out/B$i"
done
