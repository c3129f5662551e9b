#!/usr/bin/env bash
# Several JAX processes on this machine, joined by jax.distributed on localhost: the multi-host
# code path without a cluster. Each process gets DEVICES fake CPU devices.
#
#   launch/local_multiprocess.sh PROCESSES DEVICES CONFIG WORKDIR [--config.key=value ...] [--dry-run]
#   launch/local_multiprocess.sh 2 4 configs/demo_tokenizer.py /tmp/run --config.data.prepared=/tmp/demo/prepared
set -euo pipefail
usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 4 ] || usage
N=$1 DEVICES=$2 CONFIG=$3 WORKDIR=$4; shift 4
DRY=0; OVERRIDES=()
for a in "$@"; do case "$a" in --dry-run) DRY=1 ;; --config.*) OVERRIDES+=("$a") ;; *) echo "unknown argument: $a" >&2; usage ;; esac; done
[[ "$N" =~ ^[1-9][0-9]*$ && "$DEVICES" =~ ^[1-9][0-9]*$ ]] || { echo "PROCESSES and DEVICES must be positive integers" >&2; exit 2; }
[ -f "${CONFIG%%:*}" ] || { echo "config file ${CONFIG%%:*} not found (CONFIG is FILE or FILE:PRESET)" >&2; exit 2; }
PORT=${PORT:-$((20000 + RANDOM % 20000))}
BIN=${ASL_MOTIONGPT:-asl-motiongpt}
echo "$N processes x $DEVICES CPU devices, coordinator localhost:$PORT: $BIN train --config $CONFIG --workdir $WORKDIR ${OVERRIDES[*]:-}"
[ "$DRY" = 1 ] && exit 0
pids=()
for ((i = 0; i < N; i++)); do
  XLA_FLAGS=--xla_force_host_platform_device_count=$DEVICES JAX_PLATFORMS=cpu ASL_COORDINATOR=localhost:$PORT \
  ASL_NUM_PROCESSES=$N ASL_PROCESS_ID=$i "$BIN" train --config "$CONFIG" --workdir "$WORKDIR" "${OVERRIDES[@]}" \
      > "$WORKDIR.process$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
echo "done (exit $status); logs: $WORKDIR.process*.log"
exit $status
