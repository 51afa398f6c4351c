#!/bin/bash
# A real single-node Slurm cluster on localhost, for tests (recipe: shared/notes/slurm.md).
#
#   scripts/slurm-local.sh install     install slurmctld/slurmd/slurm-client/munge if missing
#   scripts/slurm-local.sh start DIR   start munged, slurmctld, slurmd with everything under DIR;
#                                      the last line printed is `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop DIR    stop them again (idempotent)
#
# No systemd, cgroups or /etc/slurm needed; runs as root. The ports are fixed, so only one
# cluster can run per machine at a time. Progress goes to stderr so that
# `eval "$(scripts/slurm-local.sh start DIR)"` works.
set -euo pipefail

CTLD_PORT=16817
SLURMD_PORT=16818
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "slurm-local: $*" >&2; }
die() { say "error: $*"; exit 1; }

cmd_install() {
    local missing=() c
    for c in slurmctld slurmd sbatch munged; do
        command -v "$c" >/dev/null || missing+=("$c")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        die "missing ${missing[*]}; install them as root (Debian/Ubuntu: apt-get install --no-install-recommends ${PACKAGES[*]})"
    fi
    # Refresh the package lists only when they don't know a package yet, or are stale enough
    # that the install fails.
    local p need_update=0
    for p in "${PACKAGES[@]}"; do
        apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]' || need_update=1
    done
    [ $need_update = 1 ] && apt-get update -qq
    say "installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null ||
        { [ $need_update = 0 ] && apt-get update -qq &&
          apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; }
}

# The PID in a pid file, or nothing; the daemons delete their pid file as they exit.
read_pid() { tr -dc 0-9 2>/dev/null <"$1" || true; }

# Whether PID is alive and is the daemon we expect (a stale pid file may name a reused PID).
# A zombie counts as exited: daemons re-parented to PID 1 linger as zombies for a second or two.
is_live() {
    local pid=$1 name=$2 state
    [ -n "$pid" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

live_pid() { is_live "$(read_pid "$1")" "$2"; }

stop_daemon() {
    local file=$1 name=$2 pid i
    pid=$(read_pid "$file")
    if is_live "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            is_live "$pid" "$name" || break
            sleep 0.1
        done
        if is_live "$pid" "$name"; then
            say "$name ($pid) ignored TERM for 20 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                is_live "$pid" "$name" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$file"
}

cmd_stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    # Cancel leftover jobs first: their slurmstepd processes would outlive slurmd.
    if live_pid "$dir/slurmctld.pid" slurmctld && [ -f "$dir/slurm.conf" ]; then
        local i
        SLURM_CONF=$dir/slurm.conf timeout 5 scancel --partition=debug 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [ -z "$(SLURM_CONF=$dir/slurm.conf timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
            sleep 0.1
        done
    fi
    stop_daemon "$dir/slurmd.pid" slurmd
    stop_daemon "$dir/slurmctld.pid" slurmctld
    stop_daemon "$dir/munged.pid" munged
}

port_in_use() {
    if command -v ss >/dev/null; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
    fi
}

show_logs() {
    local f
    for f in "$DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "---- tail $f" >&2
        tail -n 20 "$f" >&2
    done
}

on_start_exit() {
    local rc=$?
    [ $rc = 0 ] && return
    say "start failed; logs:"
    show_logs
    cmd_stop "$DIR" || true
    exit $rc
}

cmd_start() {
    cmd_install
    mkdir -p "$1"
    DIR=$(cd "$1" && pwd)  # Slurm wants absolute paths
    local host
    host=$(hostname -s)

    local d
    for d in slurmd slurmctld munged; do
        live_pid "$DIR/$d.pid" "$d" && die "$d is already running from $DIR; run: $0 stop $DIR"
    done
    local p
    for p in $CTLD_PORT $SLURMD_PORT; do
        port_in_use "$p" && die "port $p is already in use (another local Slurm cluster? only one per machine)"
    done

    trap on_start_exit EXIT
    mkdir -p "$DIR"/{munge,state,spool,log}
    chmod 0755 "$DIR/munge"  # munged refuses a socket dir writable by others
    rm -f "$DIR/munge/munge.key"
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$DIR/munge/munge.key"

    local sock=$DIR/munge/munge.socket.2
    munged --socket="$sock" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munged.pid" \
        --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log"
    # A broken munge makes clients hang and slurmd ignore TERM for minutes: check it first.
    timeout 10 bash -c 'munge -S "$1" -n | unmunge -S "$1" >/dev/null' _ "$sock" ||
        die "munge -n | unmunge failed"

    local mem
    mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    [ "$mem" -gt 4000 ] && mem=4000  # more than the node has would make it invalid
    cat >"$DIR/slurm.conf" <<EOF
ClusterName=rfpga-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# sacct needs accounting storage; this at least leaves one final-state line per job.
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Schedule right away instead of batching submissions.
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

    slurmctld -f "$DIR/slurm.conf"
    slurmd -f "$DIR/slurm.conf"

    local i state=
    for ((i = 0; i < 150; i++)); do
        state=$(SLURM_CONF=$DIR/slurm.conf timeout 5 sinfo -h -n "$host" -o %T 2>/dev/null || true)
        [ "$state" = idle ] && break
        sleep 0.2
    done
    [ "$state" = idle ] || die "node $host not idle after 30 s (state: '${state:-none}')"

    trap - EXIT
    say "cluster up in $DIR (node $host, ports $CTLD_PORT/$SLURMD_PORT)"
    echo "export SLURM_CONF=$DIR/slurm.conf"
}

case "${1:-}" in
install) cmd_install ;;
start) [ $# = 2 ] || die "usage: $0 start DIR"; cmd_start "$2" ;;
stop) [ $# = 2 ] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
*) die "usage: $0 install | start DIR | stop DIR" ;;
esac
