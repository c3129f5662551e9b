#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: create it as a queued resource, install the project on every
# worker, run the same command on all workers (jax.distributed finds its peers by itself).
#
#   launch/tpu_pod.sh NAME ZONE ACCELERATOR CONFIG WORKDIR [--config.key=value ...] [--dry-run]
#   launch/tpu_pod.sh asl-v5e-16 us-west4-a v5litepod-16 configs/tokenizer.py gs://bucket/runs/tok \
#       --config.data.prepared=gs://bucket/prepared
#
# Environment: RUNTIME_VERSION (default v2-alpha-tpuv5-lite), REPO_URL (default: this checkout's origin),
# SPOT=1 for spot capacity. --dry-run prints the commands without running them.
set -euo pipefail
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 5 ] || usage
NAME=$1 ZONE=$2 ACCELERATOR=$3 CONFIG=$4 WORKDIR=$5; shift 5
DRY=0; OVERRIDES=()
for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; --config.*) OVERRIDES+=("$a") ;; *) echo "unknown argument: $a" >&2; usage ;; esac; done
[ -f "${CONFIG%%:*}" ] || { echo "config file ${CONFIG%%:*} not found (CONFIG is FILE or FILE:PRESET)" >&2; exit 2; }
[[ "$ACCELERATOR" =~ ^v[0-9]+[a-z]*(litepod)?-[0-9]+$ ]] || { echo "accelerator '$ACCELERATOR' does not look like v5litepod-16 / v4-32" >&2; exit 2; }
RUNTIME_VERSION=${RUNTIME_VERSION:-v2-alpha-tpuv5-lite}
REPO_URL=${REPO_URL:-$(git config --get remote.origin.url || true)}
[ -n "$REPO_URL" ] || { echo "set REPO_URL: where the workers clone the project from" >&2; exit 2; }
run() { echo "+ $*"; [ "$DRY" = 1 ] || "$@"; }
[ "$DRY" = 1 ] || command -v gcloud >/dev/null || { echo "gcloud is not installed" >&2; exit 2; }

echo "TPU pod: $NAME ($ACCELERATOR, $ZONE, runtime $RUNTIME_VERSION); config $CONFIG -> $WORKDIR"
run gcloud compute tpus queued-resources create "$NAME" --node-id "$NAME" --zone "$ZONE" \
    --accelerator-type "$ACCELERATOR" --runtime-version "$RUNTIME_VERSION" ${SPOT:+--spot}
echo "waiting for $NAME to become ACTIVE"
while [ "$DRY" = 0 ] && [ "$(gcloud compute tpus queued-resources describe "$NAME" --zone "$ZONE" --format='value(state.state)')" != ACTIVE ]; do sleep 30; done
REMOTE="set -e; [ -d asl-motiongpt ] || git clone $REPO_URL asl-motiongpt; cd asl-motiongpt && git pull -q && \
python3 -m venv .venv && .venv/bin/pip install -q -e . 'jax[tpu]' && \
.venv/bin/asl-motiongpt train --config $CONFIG --workdir $WORKDIR ${OVERRIDES[*]:-}"
run gcloud compute tpus tpu-vm ssh "$NAME" --zone "$ZONE" --worker=all --command "$REMOTE"
