#!/usr/bin/env bash
# Every A run against every B run and every other A run, on counts and on times,
# each backend flagged (FLAG) when the lower end of its ratio's interval passes
# 1.01: what tally.txt holds.
#   docs/findings/<key>/regression/tally.sh [DIR]   (from the checkout's root;
#   DIR holds A1..A5 and B1..B5, each a run folder or a folder of one)
set -u  # compare exits 1 on what it flags: that is the point here, no error
dir=${1:-$(dirname "$0")}
PY=${PYTHON:-.venv/bin/python}
flags() {  # compare's CSV on stdin -> "backend:ratio:FLAG|ok ..."
  "$PY" -c "
import sys, pandas as pd
f = pd.read_csv(sys.stdin).set_index('backend')
print(' '.join(f'{b}:{f.loc[b, \"ratio\"]:.$1f}:{\"FLAG\" if f.loc[b, \"ci_low\"] > 1.01 else \"ok\"}'
               for b in f.index))"
}
for i in 1 2 3 4 5; do
  for j in 1 2 3 4 5; do
    for side in B A; do
      [[ $side == A && $i == "$j" ]] && continue
      base=$dir/A$i current=$dir/$side$j
      counts=$("$PY" -m harness compare --metric instructions --format csv "$base" "$current" | flags 4)
      times=$("$PY" -m harness compare --format csv "$base" "$current" | flags 3)
      echo "A$i vs $side$j  counts $counts  | time(>1%) $times"
    done
  done
done
