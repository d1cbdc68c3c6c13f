# Sourced by run-discover.sh, run-evaluate.sh and run-dashboards.sh: run_job MANIFEST NAME renders
# the manifest with envsubst (only the variables the manifests use), applies it as Job NAME and
# waits until it completes (returns) or fails (exits 1). Kubernetes Jobs have no dependencies.
run_job() {
  export NAME=$2
  kubectl delete job "$NAME" --ignore-not-found
  envsubst '${NAME} ${SHARDS} ${IMAGE} ${SFC_ARGS} ${NODES} ${COMMAND} ${EXTRA} ${PREFIX} ${MERGE_MEMORY}' \
    < "$here/$1" | kubectl apply -f -
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
