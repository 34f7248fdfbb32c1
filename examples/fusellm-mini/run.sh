#!/usr/bin/env bash
# fusellm-mini: the FuseLLM effect over 3 seeds (spec fusion.md §18, scaled down to the fusion-mini models).
#   examples/fusellm-mini/run.sh OUT
# 1. builds the target and the three specialist sources once (the fusion-mini recipe);
# 2. per seed (the data order of continual training): FuseLLM with MinCE plus the causal-LM-only baseline on the
#    same blocks, FuseLLM with AvgCE, and self-fusion (every "source" a copy of the target);
# 3. prints mean ± std over the seeds of held-out bits per byte per domain.
# Every run is resumable: rerun the script after an interruption.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: run.sh OUT}"
mkdir -p "$out/recipes"
out="$(cd "$out" && pwd)"
fs() { "$root/fusesharp" "$@"; }
fs fuse run "$here/../fusion-mini/recipe.yml" "$out/build" --until pretrain-prose
models="$out/build/models"
sources="  - {name: code, model: $models/code/model}
  - {name: math, model: $models/math/model}
  - {name: prose, model: $models/prose/model}"
self="  - {name: self1, model: $models/target/model}
  - {name: self2, model: $models/target/model}
  - {name: self3, model: $models/target/model}"
write() { # name seed rule clm sources
  local f="$out/recipes/$1.yml"
  sed -e "s|@MODELS@|$models|g" -e "s|@DATA@|$here/../fusion-mini/data|g" -e "s|@SEED@|$2|" -e "s|@RULE@|$3|" -e "s|@CLM@|$4|" "$here/recipe.template.yml" \
    | awk -v s="$5" '{ if ($0 == "@SOURCES@") print s; else print }' > "$f"
  echo "$f"
}
for seed in 1 2 3; do
  fs fuse run "$(write "mince-$seed" "$seed" minCE true "$sources")" "$out/mince-$seed"
  fs fuse run "$(write "avgce-$seed" "$seed" avgCE false "$sources")" "$out/avgce-$seed"
  fs fuse run "$(write "self-$seed" "$seed" minCE false "$self")" "$out/self-$seed"
done
for kind in mince avgce self; do
  echo "## $kind"
  fs fuse run "$out/recipes/$kind-1.yml" "$out/$kind-1" --summarize "$out/$kind-2" "$out/$kind-3"
done | tee "$out/summary.md"
