#!/usr/bin/env bash
# Stops the daemons scripts/slurm/start.sh started in <folder>, by the PIDs it recorded (nodes first, munge last),
# and waits until they are gone. Other Slurm or munge daemons on the machine are left alone.
set -uo pipefail

folder=${1:?usage: stop.sh <folder>}
pids_file="$folder/pids"
[ -s "$pids_file" ] || { echo "stop.sh: no $pids_file: nothing to stop" >&2; exit 0; }

mapfile -t pids < <(tac "$pids_file")
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for _ in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
done
for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
rm -f "$pids_file"
echo "stop.sh: stopped ${#pids[@]} daemon(s) of $folder" >&2
