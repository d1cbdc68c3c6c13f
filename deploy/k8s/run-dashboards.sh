#!/usr/bin/env bash
# Sharded `sfc dashboards` on Kubernetes: the corpus's windows split over an Indexed Job, then the
# merge Job (dashboards.json). Needs kubectl, envsubst (gettext-base) and the sfc-work volume
# (volume.yaml) holding the inputs. The merge parses every part whole (about ten times their total
# size in memory): MERGE_MEMORY (default 4Gi) sets its limit.
#
#   IMAGE=registry/sfc:latest deploy/k8s/run-dashboards.sh SHARDS [sfc dashboards options...]
#   e.g. IMAGE=... deploy/k8s/run-dashboards.sh 8 --corpus /work/corpus.txt --model /work/model \
#          --features /work/out/circuit.json   (the shards write to /work/parts: name the features)
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: IMAGE=... $0 SHARDS [sfc dashboards options...]" >&2
  exit 2
fi
: "${IMAGE:?IMAGE: an image with sfc on its PATH}"
here=$(cd "$(dirname "$0")" && pwd)
export SHARDS=$1 IMAGE COMMAND=dashboards EXTRA='' PREFIX=dashboards
export MERGE_MEMORY=${MERGE_MEMORY:-4Gi}
shift
export SFC_ARGS="$*"
# shellcheck source=run-job.sh
. "$here/run-job.sh"
run_job shards.yaml sfc-dashboards
run_job merge.yaml sfc-merge-dashboards
echo "done: /work/out/dashboards.json on the sfc-work volume"
