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
run() { # manifest, job name
  export NAME=$2
  kubectl delete job "$NAME" --ignore-not-found
  envsubst '${NAME} ${SHARDS} ${IMAGE} ${SFC_ARGS} ${NODES} ${STAGE}' < "$here/$1" | kubectl apply -f -
  # Until the job completes or fails (kubectl wait takes one condition).
  local state=''
  while [ -z "$state" ]; do
    sleep 10
    state=$(kubectl get job "$NAME" \
      -o jsonpath='{.status.conditions[?(@.status=="True")].type}' | grep -oE 'Complete|Failed' || true)
  done
  if [ "$state" = Failed ]; then
    echo "job $NAME failed: kubectl logs job/$NAME; a failed index can be rerun alone" >&2
    exit 1
  fi
}
NODES='' STAGE=nodes
export NODES STAGE
run discover-shards.yaml sfc-discover-nodes
run merge.yaml sfc-merge-nodes
if [ $nodes_only = 0 ]; then
  NODES='--nodes /work/out/nodes.json' STAGE=edges
  run discover-shards.yaml sfc-discover-edges
  run merge.yaml sfc-merge-edges
fi
echo "done: /work/out on the sfc-work volume"
