#!/usr/bin/env bash
# A sharded `sfc discover` on Slurm: pass 1 (node sums) as a job array, its merge (nodes.json),
# pass 2 (edges between those nodes) as a second array, its merge (circuit.json), each waiting
# for the one before (--dependency=afterok). Prints the final merge's job id.
#
#   deploy/slurm/submit-discover.sh SHARDS WORKDIR [sfc discover options...]
#   e.g. deploy/slurm/submit-discover.sh 8 /shared/rc --data data/rc_train.jsonl --examples 300
#
# WORKDIR (on a file system every node sees) gets parts/, out/nodes.json, out/circuit.json and
# the jobs' logs. With --nodes-only the first merge writes circuit.json and the second pass is
# skipped. Extra sbatch options (partition, account) go in SBATCH_EXTRA. A failed shard can be
# rerun alone (sbatch --array=I ...); its part is replaced atomically.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SHARDS WORKDIR [sfc discover options...]" >&2
  exit 2
fi
shards=$1 work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/parts" "$work/out" "$work/logs"
work=$(cd "$work" && pwd)
nodes_only=0
for a in "$@"; do [ "$a" = --nodes-only ] && nodes_only=1; done
export SHARDS=$shards PARTS=$work/parts OUT=$work/out
# shellcheck disable=SC2206
extra=(${SBATCH_EXTRA:-})
# Jobs run in the submission folder (relative --data and --model paths keep their meaning).
sb() {
  local id
  id=$(sbatch --parsable "${extra[@]}" "$@")
  echo "${id%%;*}" # "id;cluster" on a federation
}
array=(--array="0-$((shards - 1))" --output="$work/logs/%x-%A_%a.out")
last=$(sb "${array[@]}" "$here/discover-shard.sbatch" "$@")
last=$(sb --dependency="afterok:$last" --export=ALL,STAGE=nodes \
  --output="$work/logs/%x-nodes-%j.out" "$here/merge.sbatch")
if [ $nodes_only = 0 ]; then
  last=$(sb --dependency="afterok:$last" "${array[@]}" \
    "$here/discover-shard.sbatch" "$@" --nodes "$OUT/nodes.json")
  last=$(sb --dependency="afterok:$last" --export=ALL,STAGE=edges \
    --output="$work/logs/%x-edges-%j.out" "$here/merge.sbatch")
fi
echo "$last"
