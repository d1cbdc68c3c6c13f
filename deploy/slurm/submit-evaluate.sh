#!/usr/bin/env bash
# A sharded `sfc evaluate` on Slurm. Mean ablation (the default): pass 1 (the sums behind the
# means) as a job array, its merge (means.json), pass 2 (the scores, with those means) as a second
# array, its merge (evaluation.json and the plots), each waiting for the one before
# (--dependency=afterok). Zero and patch ablation: pass 2 and its merge only. Prints the final
# merge's job id.
#
#   deploy/slurm/submit-evaluate.sh SHARDS WORKDIR [sfc evaluate options...]
#   e.g. deploy/slurm/submit-evaluate.sh 4 /shared/rc --circuit out/circuit.json \
#          --neurons-circuit neurons/circuit.json --examples 400
#
# WORKDIR (on a file system every node sees) gets parts/, out/means.json, out/evaluation.json,
# the plots and the jobs' logs. The neurons series needs --neurons-circuit (or leave it out of
# --series). AFTER=JOBID makes the first array wait for that job (afterok), e.g. the merge that
# submit-discover.sh printed, so discovery and evaluation are submitted at once. SBATCH_EXTRA adds
# sbatch options; a failed shard can be rerun alone (sbatch --array=I ...).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SHARDS WORKDIR [sfc evaluate options...]" >&2
  exit 2
fi
shards=$1 work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/parts" "$work/out" "$work/logs"
work=$(cd "$work" && pwd)
means=1
prev=''
for a in "$@"; do
  [ "$prev" = --ablation ] && [ "$a" != mean ] && means=0
  case $a in --ablation=*) [ "$a" != --ablation=mean ] && means=0 ;; esac
  prev=$a
done
export SHARDS=$shards PARTS=$work/parts OUT=$work/out SFC_COMMAND=evaluate
# shellcheck disable=SC2206
extra=(${SBATCH_EXTRA:-})
sb() {
  local id
  id=$(sbatch --parsable "${extra[@]}" "$@")
  echo "${id%%;*}" # "id;cluster" on a federation
}
array=(--array="0-$((shards - 1))" --job-name=sfc-evaluate --output="$work/logs/%x-%A_%a.out")
after=()
[ -n "${AFTER:-}" ] && after=(--dependency="afterok:$AFTER")
if [ $means = 1 ]; then
  last=$(sb "${after[@]}" "${array[@]}" "$here/shard.sbatch" "$@")
  last=$(sb --dependency="afterok:$last" --export=ALL,PREFIX=evaluate-means \
    --output="$work/logs/%x-means-%j.out" "$here/merge.sbatch")
  after=(--dependency="afterok:$last")
  set -- "$@" --means "$OUT/means.json"
fi
last=$(sb "${after[@]}" "${array[@]}" "$here/shard.sbatch" "$@")
last=$(sb --dependency="afterok:$last" --export=ALL,PREFIX=evaluate-metrics \
  --output="$work/logs/%x-metrics-%j.out" "$here/merge.sbatch")
echo "$last"
