#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: create it as a queued resource with the software version of its TPU
# generation, put the commit you launched from on every worker with a Python >= 3.11 and the tested
# jax/libtpu pair, and run the same command on all workers (jax.distributed finds its peers by itself).
#
#   launch/tpu_pod.sh NAME ZONE TPU_TYPE CONFIG WORKDIR [--config.key=value ...] [--dry-run]
#   launch/tpu_pod.sh asl-v5p-64 us-east5-a v5p-64 configs/strategies/staged.py gs://bucket/runs/x \
#       --config.data.prepared=gs://bucket/prepared
#   launch/tpu_pod.sh NAME ZONE TPU_TYPE eval|generate|translate|ablate ARG... [--dry-run]
#   launch/tpu_pod.sh asl-v5p-64 us-east5-a v5p-64 eval --workdir gs://bucket/runs/x --split dev --report
#
# The first form trains; the second runs another command as one job on all workers (each decodes its
# rows, process 0 writes). An existing queued resource NAME is used as it is, else one is created.
# TPU_TYPE: v4-8, v5e-16 (= v5litepod-16), v5p-64, v6e-8, ... (python3 asl_motiongpt/parallel/tpu_types.py table).
# Environment: RUNTIME_VERSION (default: the TPU generation's own), REPO_URL (default: this checkout's
# origin), SPOT=1 for spot capacity, ALLOW_DIRTY=1 to launch with uncommitted changes (they do not
# reach the workers). --dry-run prints the commands without running them.
set -euo pipefail
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 5 ] || usage
NAME=$1 ZONE=$2 TPU_TYPE=$3; shift 3
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
DRY=0
case "$1" in
  eval|generate|translate|ablate)
    COMMAND=()
    for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; *) COMMAND+=("$a") ;; esac; done
    WHAT="${COMMAND[*]}" ;;
  *)
    CONFIG=$1 WORKDIR=$2; shift 2; OVERRIDES=()
    for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; --config.*) OVERRIDES+=("$a") ;; *) echo "unknown argument: $a" >&2; usage ;; esac; done
    [ -f "${CONFIG%%:*}" ] || { echo "config file ${CONFIG%%:*} not found (CONFIG is FILE or FILE:PRESET)" >&2; exit 2; }
    COMMAND=(train --config "$CONFIG" --workdir "$WORKDIR" ${OVERRIDES[@]+"${OVERRIDES[@]}"})
    WHAT="config $CONFIG -> $WORKDIR" ;;
esac

# The one table of TPU types (also behind `train --dry-run --topology tpu:...`); standard library only.
tpu_types() { "${LOCAL_PYTHON:-python3}" "$HERE/asl_motiongpt/parallel/tpu_types.py" "$@"; }
ACCELERATOR=$(tpu_types accelerator-type "$TPU_TYPE") || exit 2
[ "$(tpu_types slices "$TPU_TYPE")" = 1 ] || { echo "$TPU_TYPE is several slices: launch/xpk.sh runs multi-slice jobs" >&2; exit 2; }
RUNTIME_VERSION=${RUNTIME_VERSION:-$(tpu_types runtime-version "$TPU_TYPE")}

# The code the workers run is the commit this was launched from, never whatever a worker has checked out.
COMMIT=$(git rev-parse --verify HEAD 2>/dev/null) || { echo "$HERE is not a git checkout: the workers need a commit to check out" >&2; exit 2; }
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  if [ "${ALLOW_DIRTY:-0}" = 1 ]; then
    echo "WARNING: uncommitted changes in $HERE do not reach the workers; they run commit $COMMIT" >&2
  else
    echo "uncommitted changes in $HERE: commit and push them (the workers check out $COMMIT), or set ALLOW_DIRTY=1" >&2
    exit 2
  fi
fi
REPO_URL=${REPO_URL:-$(git config --get remote.origin.url || true)}
[ -n "$REPO_URL" ] || { echo "set REPO_URL: where the workers clone the project from" >&2; exit 2; }
if ! git branch -r --contains "$COMMIT" 2>/dev/null | grep -q .; then
  echo "note: commit $COMMIT is on no remote branch this checkout knows of; the workers fetch it from $REPO_URL (push it first)" >&2
fi

run() { echo "+ $*"; [ "$DRY" = 1 ] || "$@"; }
[ "$DRY" = 1 ] || command -v gcloud >/dev/null || { echo "gcloud is not installed" >&2; exit 2; }

# What every worker runs. A Python older than 3.11 (the Ubuntu 22.04 images ship 3.10) is replaced by
# one that uv installs; the venv gets the project's [tpu] extra (the jax/libtpu pair it was tested with).
printf -v JOB '%q ' .venv/bin/asl-motiongpt "${COMMAND[@]}"
REMOTE="set -e
[ -d asl-motiongpt ] || git clone -q $(printf %q "$REPO_URL") asl-motiongpt
cd asl-motiongpt
git fetch -q origin
git -c advice.detachedHead=false checkout -q --detach $COMMIT || { echo \"worker \$(hostname): commit $COMMIT is not in $(printf %q "$REPO_URL"): push it\" >&2; exit 1; }
echo \"worker \$(hostname): commit \$(git rev-parse HEAD)\"
PYTHON=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo \"worker \$(hostname): \$(python3 --version 2>&1) is older than 3.11; installing Python 3.11 with uv\"
  export PATH=\$HOME/.local/bin:\$PATH
  command -v uv >/dev/null || python3 -m pip install -q --user uv || curl -LsSf https://astral.sh/uv/install.sh | sh
  uv python install 3.11
  PYTHON=\$(uv python find 3.11)
fi
echo \"worker \$(hostname): \$(\$PYTHON --version 2>&1) (\$PYTHON)\"
[ -x .venv/bin/python ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { rm -rf .venv; \$PYTHON -m venv .venv; }
.venv/bin/pip install -q -e '.[tpu]'
$JOB"

echo "TPU pod: $NAME ($TPU_TYPE = $ACCELERATOR, $ZONE, software $RUNTIME_VERSION); commit $COMMIT; $WHAT"
if [ "$DRY" = 0 ] && gcloud compute tpus queued-resources describe "$NAME" --zone "$ZONE" >/dev/null 2>&1; then
  echo "using the existing queued resource $NAME"  # a rerun after a stop, or eval after training
else
  run gcloud compute tpus queued-resources create "$NAME" --node-id "$NAME" --zone "$ZONE" \
      --accelerator-type "$ACCELERATOR" --runtime-version "$RUNTIME_VERSION" ${SPOT:+--spot}
fi
echo "waiting for $NAME to become ACTIVE"
while [ "$DRY" = 0 ] && [ "$(gcloud compute tpus queued-resources describe "$NAME" --zone "$ZONE" --format='value(state.state)')" != ACTIVE ]; do sleep "${POLL_SECONDS:-30}"; done
run gcloud compute tpus tpu-vm ssh "$NAME" --zone "$ZONE" --worker=all --command "$REMOTE"
