#!/usr/bin/env bash
# A sharded `sfc discover` on Kubernetes: pass 1 as an Indexed Job, its merge Job (nodes.json),
# pass 2 as a second Indexed Job, its merge Job (circuit.json), each started when the one before
# completed. Needs kubectl, envsubst (gettext-base) and the sfc-work volume (volume.yaml) holding
# the inputs.
#
#   IMAGE=registry/sfc:latest deploy/k8s/run-discover.sh SHARDS [sfc discover options...]
#   e.g. IMAGE=... deploy/k8s/run-discover.sh 8 --data /work/rc_train.jsonl --model /work/model
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: IMAGE=... $0 SHARDS [sfc discover options...]" >&2
  exit 2
fi
: "${IMAGE:?IMAGE: an image with sfc on its PATH}"
here=$(cd "$(dirname "$0")" && pwd)
export SHARDS=$1 IMAGE
shift
export SFC_ARGS="$*"
nodes_only=0
for a in "$@"; do [ "$a" = --nodes-only ] && nodes_only=1; done
# shellcheck source=run-job.sh
. "$here/run-job.sh"
NODES='' PREFIX=discover-nodes MERGE_MEMORY=1Gi
export NODES PREFIX MERGE_MEMORY
run_job discover-shards.yaml sfc-discover-nodes
run_job merge.yaml sfc-merge-nodes
if [ $nodes_only = 0 ]; then
  NODES='--nodes /work/out/nodes.json' PREFIX=discover-edges
  run_job discover-shards.yaml sfc-discover-edges
  run_job merge.yaml sfc-merge-edges
fi
echo "done: /work/out on the sfc-work volume"
