#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests and for trying
# `hydra/launcher=slurm` without a cluster (Debian's slurm-wlm and munge).
#
#   scripts/slurm-local.sh start DIR   # install when missing, write DIR/slurm.conf, start
#                                      # munged, slurmctld, slurmd; wait for the node to be idle
#   export SLURM_CONF=DIR/slurm.conf   # sinfo, sbatch, squeue, scancel, scontrol, submitit
#   scripts/slurm-local.sh stop DIR    # stop the three daemons by their PIDs (DIR/pids)
#
# Everything (config, munge key and socket, state, logs) lives in DIR, on its own ports, so it
# does not touch a system SLURM or munge. Needs root (slurmd runs jobs as their user).
# Settings (environment): SLURM_LOCAL_CPUS (CPUs the node offers; default: this machine's;
# more than there are is allowed: the tests oversubscribe a small machine so that their jobs
# start together), SLURM_LOCAL_PORT (slurmctld's port; slurmd uses the next one).
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # slurmctld, slurmd, munged, runuser (not on every user's PATH)

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

install_missing() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q slurm-wlm munge
}

write_config() {
    local cpus=${SLURM_LOCAL_CPUS:-$(nproc)} port=${SLURM_LOCAL_PORT:-16817}
    local node mem
    node=$(hostname -s)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    # munged refuses keys, sockets and logs that others can reach: its own directory, its user
    install -d -o munge -g munge -m 0700 "$dir/munge"
    [[ -f $dir/munge/munge.key ]] || {
        head -c 1024 /dev/urandom >"$dir/munge/munge.key"
        chown munge:munge "$dir/munge/munge.key"
        chmod 0400 "$dir/munge/munge.key"
    }
    # slurm.conf(5). proctrack/linuxproc and task/none: no cgroups needed (containers);
    # cons_tres with CR_Core: CPUs are what jobs share; KillWait=5: a cancelled or requeued
    # job's processes get 5 s between SIGTERM and SIGKILL (30 by default).
    cat >"$dir/slurm.conf" <<EOF
ClusterName=ganlab-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install_missing
    write_config
    export SLURM_CONF=$dir/slurm.conf
    local m="$dir/munge"
    : >"$dir/pids"
    runuser -u munge -- munged --foreground --force --key-file="$m/munge.key" \
        --socket="$m/munge.sock" --pid-file="$m/munged.pid" --log-file="$m/munged.log" \
        --seed-file="$m/munged.seed" >"$dir/log/munged.out" 2>&1 &
    echo $! >>"$dir/pids"
    wait_for "munged" test -S "$m/munge.sock"
    slurmctld -D -i >"$dir/log/slurmctld.out" 2>&1 &
    echo $! >>"$dir/pids"
    slurmd -D -N "$(hostname -s)" >"$dir/log/slurmd.out" 2>&1 &
    echo $! >>"$dir/pids"
    wait_for "the node to be idle" node_idle
    echo "SLURM is up: export SLURM_CONF=$SLURM_CONF"
}

node_idle() {
    [[ $(sinfo -h -o %T 2>/dev/null) == idle ]]
}

wait_for() {  # wait_for WHAT COMMAND...: up to 60 s
    local what=$1
    shift
    for _ in $(seq 120); do
        "$@" && return 0
        sleep 0.5
    done
    echo "slurm-local: timed out waiting for $what; logs in $dir/log" >&2
    stop
    exit 1
}

drain() {  # cancel what is left and wait (up to 20 s) for its processes to end: a job's
    # slurmstepd outlives a stopped slurmd, retrying to report to it
    export SLURM_CONF=$dir/slurm.conf
    scancel --full --quiet --partition=debug 2>/dev/null || true
    for _ in $(seq 40); do
        [[ -z $(squeue -h -o %A 2>/dev/null) ]] && return 0
        sleep 0.5
    done
}

stop() {
    [[ -f $dir/pids ]] || return 0
    local pid
    drain
    # slurmd, slurmctld, then munged: each by the PID this script started it with
    for pid in $(tac "$dir/pids"); do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $(tac "$dir/pids"); do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$dir/pids"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
