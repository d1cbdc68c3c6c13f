#!/usr/bin/env bash
# A sharded `sfc evaluate` on Kubernetes. Mean ablation (the default): pass 1 (the sums behind
# the means) as an Indexed Job, its merge Job (means.json), pass 2 (the scores) as a second
# Indexed Job, its merge Job (evaluation.json and the plots), each started when the one before
# completed. Zero and patch ablation: pass 2 and its merge only. Needs kubectl, envsubst
# (gettext-base) and the sfc-work volume (volume.yaml) holding the inputs.
#
#   IMAGE=registry/sfc:latest deploy/k8s/run-evaluate.sh SHARDS [sfc evaluate options...]
#   e.g. IMAGE=... deploy/k8s/run-evaluate.sh 4 --circuit /work/out/circuit.json \
#          --neurons-circuit /work/neurons/circuit.json --model /work/model
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: IMAGE=... $0 SHARDS [sfc evaluate options...]" >&2
  exit 2
fi
: "${IMAGE:?IMAGE: an image with sfc on its PATH}"
here=$(cd "$(dirname "$0")" && pwd)
export SHARDS=$1 IMAGE COMMAND=evaluate MERGE_MEMORY=1Gi
shift
export SFC_ARGS="$*"
means=1
prev=''
for a in "$@"; do
  [ "$prev" = --ablation ] && [ "$a" != mean ] && means=0
  case $a in --ablation=*) [ "$a" != --ablation=mean ] && means=0 ;; esac
  prev=$a
done
# shellcheck source=run-job.sh
. "$here/run-job.sh"
export EXTRA='' PREFIX
if [ $means = 1 ]; then
  PREFIX=evaluate-means
  run_job shards.yaml sfc-evaluate-means
  run_job merge.yaml sfc-merge-means
  EXTRA='--means /work/out/means.json'
fi
PREFIX=evaluate-metrics
run_job shards.yaml sfc-evaluate-metrics
run_job merge.yaml sfc-merge-metrics
echo "done: /work/out/evaluation.json on the sfc-work volume"
