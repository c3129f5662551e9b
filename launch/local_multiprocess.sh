#!/usr/bin/env bash
# Several JAX processes on this machine, joined by jax.distributed on localhost: the multi-host
# code path without a cluster. Each process gets DEVICES fake CPU devices.
#
#   launch/local_multiprocess.sh PROCESSES DEVICES CONFIG WORKDIR [--config.key=value ...] [--dry-run]
#   launch/local_multiprocess.sh 2 4 configs/demo_tokenizer.py /tmp/run --config.data.prepared=/tmp/demo/prepared
#   launch/local_multiprocess.sh PROCESSES DEVICES eval|generate|translate|ablate --workdir WORKDIR [ARG ...]
#   launch/local_multiprocess.sh 2 4 eval --workdir /tmp/run --split dev
#
# The first form trains; the second runs another command as one job (each process decodes its share
# of the rows; process 0 prints and writes). Logs: WORKDIR.process<i>.log (WORKDIR.<command>.process<i>.log).
set -euo pipefail
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 4 ] || usage
N=$1 DEVICES=$2; shift 2
[[ "$N" =~ ^[1-9][0-9]*$ && "$DEVICES" =~ ^[1-9][0-9]*$ ]] || { echo "PROCESSES and DEVICES must be positive integers" >&2; exit 2; }
DRY=0
case "$1" in
  eval|generate|translate|ablate)
    COMMAND=("$1"); shift; WORKDIR=""
    while [ $# -gt 0 ]; do
      case "$1" in --dry-run) DRY=1 ;; --workdir) WORKDIR=$2; COMMAND+=("$1" "$2"); shift ;; *) COMMAND+=("$1") ;; esac
      shift
    done
    [ -n "$WORKDIR" ] || { echo "${COMMAND[0]} needs --workdir (the logs go beside it)" >&2; exit 2; }
    LOG=$WORKDIR.${COMMAND[0]} ;;
  *)
    CONFIG=$1 WORKDIR=$2; shift 2; OVERRIDES=()
    for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; --config.*) OVERRIDES+=("$a") ;; *) echo "unknown argument: $a" >&2; usage ;; esac; done
    [ -f "${CONFIG%%:*}" ] || { echo "config file ${CONFIG%%:*} not found (CONFIG is FILE or FILE:PRESET)" >&2; exit 2; }
    COMMAND=(train --config "$CONFIG" --workdir "$WORKDIR" "${OVERRIDES[@]}")
    LOG=$WORKDIR ;;
esac
PORT=${PORT:-$((20000 + RANDOM % 20000))}
BIN=${ASL_MOTIONGPT:-asl-motiongpt}
echo "$N processes x $DEVICES CPU devices, coordinator localhost:$PORT: $BIN ${COMMAND[*]}"
[ "$DRY" = 1 ] && exit 0
pids=()
for ((i = 0; i < N; i++)); do
  XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=$DEVICES" JAX_PLATFORMS=cpu ASL_COORDINATOR=localhost:$PORT \
  ASL_NUM_PROCESSES=$N ASL_PROCESS_ID=$i "$BIN" "${COMMAND[@]}" > "$LOG.process$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
echo "done (exit $status); logs: $LOG.process*.log"
exit $status
