#!/usr/bin/env bash
# A real single-node SLURM cluster with accounting, on this machine, for the cluster test
# (tests/test_slurm.py). No systemd: every daemon is started by hand and stopped by its pid.
#
#   .ci/slurm-cluster.sh install        apt packages (root; CI runs it before `make test`)
#   .ci/slurm-cluster.sh start DIR      start munged, mariadbd, slurmdbd, slurmctld, slurmd with
#                                       all state, logs and configs under DIR; prints
#                                       SLURM_CONF=DIR/slurm.conf when the node is idle
#   .ci/slurm-cluster.sh stop DIR       stop them (by the pids recorded in DIR)
#
# The node has two partitions, "cpu" and "gpu", an account "replicate" (the names
# profiles/slurm and profiles/slurm-cpu ship with) and one count-only GPU GRES, so the GPU
# profile's `--gpus=1` is granted although no GPU exists (the job then runs on the CPU).
set -euo pipefail

PACKAGES="slurm-wlm munge slurmdbd mariadb-server"

install() {
    if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null \
        && command -v munged >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq $PACKAGES >/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "slurm-cluster: $what did not come up (logs in $DIR)" >&2
            return 1
        fi
        sleep 0.5
    done
}

start() {
    DIR=$(realpath -m "$1")
    mkdir -p "$DIR"/{state,spool,log,run,mysql}
    local host cpus mem port_db=$((20000 + RANDOM % 20000))
    host=$(hostname -s)
    local node
    node=$(slurmd -C | head -1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")

    # munge: the package's key and default socket (Slurm's clients only look there); one
    # already running is used as it is, and left running
    mkdir -p /run/munge
    if ! (munge -n | unmunge) >/dev/null 2>&1; then
        munged --force --num-threads=10 --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
            --seed-file="$DIR/run/munge.seed"
        wait_for 20 munged bash -c "munge -n | unmunge"
    fi

    # mariadb: a fresh data directory on a private port
    mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=normal \
        >"$DIR/log/mariadb-install.log" 2>&1
    (mariadbd --user=root --datadir="$DIR/mysql" --socket="$DIR/run/mysql.sock" --port="$port_db" \
        --bind-address=127.0.0.1 --pid-file="$DIR/run/mariadbd.pid" >"$DIR/log/mariadbd.log" 2>&1 &)
    wait_for 60 mariadb mariadb --socket="$DIR/run/mysql.sock" -uroot -e "select 1"
    mariadb --socket="$DIR/run/mysql.sock" -uroot -e \
        "create user 'slurm'@'localhost' identified by 'ci'; create user 'slurm'@'127.0.0.1' identified by 'ci';
         grant all on slurm_acct_db.* to 'slurm'@'localhost'; grant all on slurm_acct_db.* to 'slurm'@'127.0.0.1';"

    local dbd_port=$((port_db + 1)) ctld_port=$((port_db + 2)) slurmd_port=$((port_db + 3))
    cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$dbd_port
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$port_db
StorageUser=slurm
StoragePass=ci
StorageLoc=slurm_acct_db
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
EOF
    chmod 600 "$DIR/slurmdbd.conf"
    cat >"$DIR/slurm.conf" <<EOF
ClusterName=replicate-ci
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
    echo "NodeName=$host Name=gpu File=/dev/null Count=1" >"$DIR/gres.conf"
    export SLURM_CONF="$DIR/slurm.conf"
    # Inside a job, srun reads the default location (SLURM_CONF does not reach job steps)
    if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
        echo "slurm-cluster: /etc/slurm/slurm.conf exists and is not ours; not touching it" >&2
        return 1
    fi
    mkdir -p /etc/slurm
    ln -sfn "$DIR/slurm.conf" /etc/slurm/slurm.conf

    slurmdbd
    wait_for 60 slurmdbd sacctmgr -i list cluster
    sacctmgr -i add cluster replicate-ci >/dev/null
    sacctmgr -i add account replicate Cluster=replicate-ci Description=ci Organization=ci >/dev/null
    sacctmgr -i add user root Account=replicate Cluster=replicate-ci >/dev/null
    slurmctld
    wait_for 60 slurmctld scontrol ping
    slurmd
    wait_for 60 "an idle node" bash -c "sinfo -h -p cpu -o %t | grep -qx idle"
    echo "SLURM_CONF=$SLURM_CONF"
}

stop() {
    DIR=$(realpath -m "$1")
    local pid
    for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
        [[ -f "$DIR/run/$daemon.pid" ]] || continue
        pid=$(cat "$DIR/run/$daemon.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ $(readlink /etc/slurm/slurm.conf 2>/dev/null) == "$DIR/slurm.conf" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?give a directory}" ;;
    stop) stop "${2:?give a directory}" ;;
    *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
