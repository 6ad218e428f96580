#!/usr/bin/env bash
# Starts a private Slurm on this machine for trying `hybrid sweep run --on slurm`: a munge daemon with its own key
# and socket, slurmctld and one or more emulated slurmd nodes on free ports, all as background processes (no
# systemd) whose state, logs and PIDs live in one folder.
#
#   scripts/slurm/start.sh <folder> [nodes]      nodes: 1 (default) or more emulated nodes n1…nK on 127.0.0.1
#   source <folder>/env.sh                       sets SLURM_CONF so sbatch, squeue, sinfo use this Slurm
#   scripts/slurm/stop.sh <folder>               stops exactly the daemons this script started (by PID)
#
# Installs slurm-wlm and munge with apt-get where they are missing (needs root; about 10–30 s). Every node gets
# all of this machine's CPUs (config_overrides: emulated nodes share them). Tested with Slurm 22.05 (Debian 12).
set -euo pipefail

folder=${1:?usage: start.sh <folder> [nodes]}
nodes=${2:-1}
mkdir -p "$folder"
folder=$(cd "$folder" && pwd)

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "start.sh: slurm-wlm and munge are missing; install them (apt-get install slurm-wlm munge) or run as root" >&2
        exit 1
    fi
    echo "start.sh: installing slurm-wlm and munge" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$folder/apt.log" 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$folder/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >>"$folder/apt.log" 2>&1
    }
fi

if [ -s "$folder/pids" ]; then
    echo "start.sh: $folder/pids exists: a Slurm started here may still run; stop it with scripts/slurm/stop.sh $folder" >&2
    exit 1
fi

# A port nothing listens on, from $1 upwards, with $2 more free after it (another Slurm may run on this machine).
free_ports() {
    local port=$1 count=$2
    while :; do
        local ok=1 p
        for ((p = port; p <= port + count; p++)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ok=0; break; fi
        done
        if [ $ok = 1 ]; then echo "$port"; return; fi
        port=$((port + count + 1))
    done
}

base=$((20000 + RANDOM % 20000))
ctld_port=$(free_ports "$base" "$nodes")
first_node_port=$((ctld_port + 1))
last_node_port=$((ctld_port + nodes))
cpus=$(nproc)
host=$(hostname -s)
mkdir -p "$folder/state" "$folder/spool" "$folder/log"

dd if=/dev/urandom of="$folder/munge.key" bs=1024 count=1 status=none
chmod 400 "$folder/munge.key"

if [ "$nodes" = 1 ]; then names=n1; else names="n[1-$nodes]"; fi

cat >"$folder/slurm.conf" <<CONF
ClusterName=hybrid
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$folder/munge.socket
StateSaveLocation=$folder/state
SlurmdSpoolDir=$folder/spool/%n
SlurmctldPidFile=$folder/slurmctld.pid
SlurmdPidFile=$folder/slurmd-%n.pid
SlurmctldLogFile=$folder/log/slurmctld.log
SlurmdLogFile=$folder/log/slurmd-%n.log
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$folder/jobcomp.txt
SchedulerType=sched/backfill
MinJobAge=30
NodeName=$names NodeAddr=127.0.0.1 Port=$first_node_port-$last_node_port CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

echo "export SLURM_CONF=$folder/slurm.conf" >"$folder/env.sh"
export SLURM_CONF=$folder/slurm.conf

munged -F --force --socket="$folder/munge.socket" --key-file="$folder/munge.key" \
    --pid-file="$folder/munged.pid" --log-file="$folder/log/munged.log" --seed-file="$folder/munge.seed" \
    >"$folder/log/munged.out" 2>&1 &
echo $! >>"$folder/pids"
for _ in $(seq 50); do [ -S "$folder/munge.socket" ] && break; sleep 0.1; done

slurmctld -D -c -f "$folder/slurm.conf" >"$folder/log/slurmctld.out" 2>&1 &
echo $! >>"$folder/pids"

for k in $(seq "$nodes"); do
    mkdir -p "$folder/spool/n$k"
    slurmd -D -f "$folder/slurm.conf" -N "n$k" >"$folder/log/slurmd-n$k.out" 2>&1 &
    echo $! >>"$folder/pids"
done

# Ready when every node is idle.
for _ in $(seq 150); do
    idle=$(sinfo -h -N -o %t 2>/dev/null | grep -c '^idle' || true)
    if [ "$idle" = "$nodes" ]; then
        echo "start.sh: Slurm up in $folder: controller on port $ctld_port, $nodes node(s) with $cpus CPUs each; source $folder/env.sh" >&2
        exit 0
    fi
    sleep 0.2
done

echo "start.sh: the nodes did not become idle within 30 s; see $folder/log/ (stopping what was started)" >&2
sinfo >&2 || true
"$(dirname "$0")/stop.sh" "$folder"
exit 1
