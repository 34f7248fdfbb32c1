#!/usr/bin/env bash
# fusellm-mini: the FuseLLM effect over 3 seeds (spec fusion.md §18, scaled down to the fusion-mini models).
#   examples/fusellm-mini/run.sh OUT            heterogeneous sources (different tokenizers and architectures)
#   examples/fusellm-mini/run.sh OUT same       the Table-7 analogue: same-tokenizer sources (the target continually
#                                               trained on one domain each) fused with MinCE, merged (weight averaging,
#                                               task arithmetic with normalized equal weights), and their ensemble
# 1. builds the target and the three specialist sources once (the fusion-mini recipe);
# 2. per seed (the data order of continual training): FuseLLM with MinCE plus the causal-LM-only baseline on the
#    same blocks, FuseLLM with AvgCE, and self-fusion (every "source" a copy of the target);
# 3. prints mean ± std over the seeds of held-out bits per byte per domain.
# Every run is resumable: rerun the script after an interruption.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: run.sh OUT [same]}"
mode="${2:-hetero}"
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
write() { # name seed rule clm sources [lines appended to the recipe's last section, evaluate]
  local f="$out/recipes/$1.yml"
  sed -e "s|@MODELS@|$models|g" -e "s|@DATA@|$here/../fusion-mini/data|g" -e "s|@SEED@|$2|" -e "s|@RULE@|$3|" -e "s|@CLM@|$4|" "$here/recipe.template.yml" \
    | awk -v s="$5" '{ if ($0 == "@SOURCES@") print s; else print }' > "$f"
  if [ -n "${6:-}" ]; then printf '%s\n' "$6" >> "$f"; fi
  echo "$f"
}
if [ "$mode" = same ]; then
  # Same tokenizer and architecture as the target: the target trained on each domain with the recipe's source
  # pretraining settings (240 steps, batch 8 x 128, lr 3e-3 cosine); alignment is then the identity (align: copy).
  data="$here/../fusion-mini/data"
  for d in code math prose; do
    if [ ! -f "$out/same/models/$d.done" ]; then
      rm -rf "$out/same/models/$d"
      fs train --model "$models/target/model" --data "$data/$d-train.jsonl" --out "$out/same/models/$d" --steps 240 --batch-size 8 \
        --block-size 128 --lr 0.003 --schedule cosine --warmup-ratio 0.05 --weight-decay 0.1 --adam-betas 0.9,0.95 --seed 1 --save-steps 0
      touch "$out/same/models/$d.done"
    fi
  done
  same="  - {name: code, model: $out/same/models/code}
  - {name: math, model: $out/same/models/math}
  - {name: prose, model: $out/same/models/prose}"
  extra="  ensemble: true
merge: {method: task_arithmetic, parameters: {weight: 1.0, normalize: true}}"
  for seed in 1 2 3; do
    fs fuse run "$(write "same-$seed" "$seed" minCE true "$same" "$extra")" "$out/same-$seed"
  done
  fs fuse run "$out/recipes/same-1.yml" "$out/same-1" --summarize "$out/same-2" "$out/same-3" | tee "$out/same-summary.md"
  exit 0
fi
for seed in 1 2 3; do
  fs fuse run "$(write "mince-$seed" "$seed" minCE true "$sources")" "$out/mince-$seed"
  fs fuse run "$(write "avgce-$seed" "$seed" avgCE false "$sources")" "$out/avgce-$seed"
  fs fuse run "$(write "self-$seed" "$seed" minCE false "$self")" "$out/self-$seed"
done
for kind in mince avgce self; do
  echo "## $kind"
  fs fuse run "$out/recipes/$kind-1.yml" "$out/$kind-1" --summarize "$out/$kind-2" "$out/$kind-3"
done | tee "$out/summary.md"
