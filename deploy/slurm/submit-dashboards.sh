#!/usr/bin/env bash
# Sharded `sfc dashboards` on Slurm: the corpus's windows split over a job array, then the merge
# (dashboards.json, --dependency=afterok). Prints the merge's job id.
#
#   deploy/slurm/submit-dashboards.sh SHARDS WORKDIR [sfc dashboards options...]
#   e.g. deploy/slurm/submit-dashboards.sh 8 /shared/dash --corpus corpus.txt \
#          --features /shared/rc/out/circuit.json   (or --features all)
#
# WORKDIR (on a file system every node sees) gets parts/, out/dashboards.json and the jobs' logs.
# The shards write to parts/, so name the features: --features CIRCUIT.json or --features all.
# The merge parses every part whole (about ten times their total size in memory): set
# MERGE_MEM (default 4G) from the parts' size. SBATCH_EXTRA adds sbatch options; a failed shard
# can be rerun alone (sbatch --array=I ...).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SHARDS WORKDIR [sfc dashboards options...]" >&2
  exit 2
fi
shards=$1 work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/parts" "$work/out" "$work/logs"
work=$(cd "$work" && pwd)
export SHARDS=$shards PARTS=$work/parts OUT=$work/out SFC_COMMAND=dashboards
# shellcheck disable=SC2206
extra=(${SBATCH_EXTRA:-})
sb() {
  local id
  id=$(sbatch --parsable "${extra[@]}" "$@")
  echo "${id%%;*}" # "id;cluster" on a federation
}
last=$(sb --array="0-$((shards - 1))" --job-name=sfc-dashboards \
  --output="$work/logs/%x-%A_%a.out" "$here/shard.sbatch" "$@")
last=$(sb --dependency="afterok:$last" --export=ALL,PREFIX=dashboards --mem="${MERGE_MEM:-4G}" \
  --output="$work/logs/%x-merge-%j.out" "$here/merge.sbatch")
echo "$last"
