#!/usr/bin/env bash
# Train (or evaluate, generate...) as an xpk workload on a GKE cluster of TPU slices (multi-slice: --num-slices > 1 uses DCN;
# add --config.mesh.dcn.data=NUM_SLICES so that data parallelism spans the slices: the mesh is then
# data x fsdp x tensor within each slice times the DCN sizes across slices).
#
#   launch/xpk.sh CLUSTER WORKLOAD TPU_TYPE NUM_SLICES CONFIG WORKDIR [--config.key=value ...] [--dry-run]
#   launch/xpk.sh my-cluster tok-run v5litepod-256 2 configs/tokenizer.py gs://bucket/runs/tok
#   launch/xpk.sh CLUSTER WORKLOAD TPU_TYPE NUM_SLICES eval|generate|translate|ablate ARG... [--dry-run]
#   launch/xpk.sh my-cluster tok-eval v5litepod-256 1 eval --workdir gs://bucket/runs/x --split dev --report
#
# The first form trains; the second runs another command as one job on every host (each decodes its
# rows, process 0 writes).
# TPU_TYPE: any name of the TPU table (v5e-256 = v5litepod-256, v5p-128, v6e-256, v4-32).
# Environment: DOCKER_IMAGE (an image with the project installed; default: xpk builds one from this
# folder on python:3.11-slim, so the workload runs this folder's code as it is now, with the project's
# [tpu] extra: the jax/libtpu pair it was tested with).
set -euo pipefail
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 6 ] || usage
CLUSTER=$1 WORKLOAD=$2 TPU_TYPE=$3 SLICES=$4; shift 4
DRY=0
case "$1" in
  eval|generate|translate|ablate)
    COMMAND_ARGS=()
    for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; *) COMMAND_ARGS+=("$a") ;; esac; done
    WHAT="${COMMAND_ARGS[*]}" ;;
  *)
    CONFIG=$1 WORKDIR=$2; shift 2; OVERRIDES=()
    for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; --config.*) OVERRIDES+=("$a") ;; *) echo "unknown argument: $a" >&2; usage ;; esac; done
    [ -f "${CONFIG%%:*}" ] || { echo "config file ${CONFIG%%:*} not found (CONFIG is FILE or FILE:PRESET)" >&2; exit 2; }
    COMMAND_ARGS=(train --config "$CONFIG" --workdir "$WORKDIR" ${OVERRIDES[@]+"${OVERRIDES[@]}"})
    WHAT="$CONFIG -> $WORKDIR" ;;
esac
[[ "$SLICES" =~ ^[1-9][0-9]*$ ]] || { echo "NUM_SLICES must be a positive integer, got '$SLICES'" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
TPU_TYPE=$("${LOCAL_PYTHON:-python3}" "$HERE/asl_motiongpt/parallel/tpu_types.py" accelerator-type "$TPU_TYPE") || exit 2
[ "$DRY" = 1 ] || command -v xpk >/dev/null || { echo "xpk is not installed (pip install xpk)" >&2; exit 2; }
IMAGE_ARGS=(--base-docker-image python:3.11-slim --script-dir .)
[ -n "${DOCKER_IMAGE:-}" ] && IMAGE_ARGS=(--docker-image "$DOCKER_IMAGE")
printf -v JOB '%q ' asl-motiongpt "${COMMAND_ARGS[@]}"
COMMAND="pip install -q -e '.[tpu]' && ${JOB% }"
echo "xpk workload $WORKLOAD on $CLUSTER: $SLICES x $TPU_TYPE; $WHAT"
echo "+ xpk workload create --cluster $CLUSTER --workload $WORKLOAD --tpu-type $TPU_TYPE --num-slices $SLICES ${IMAGE_ARGS[*]} --command \"$COMMAND\""
[ "$DRY" = 1 ] || xpk workload create --cluster "$CLUSTER" --workload "$WORKLOAD" --tpu-type "$TPU_TYPE" \
    --num-slices "$SLICES" "${IMAGE_ARGS[@]}" --command "$COMMAND"
