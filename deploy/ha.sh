#!/usr/bin/env bash
# deploy/ha.sh — the high-availability Sikka stack on one machine, under var/ha/:
# etcd, two PostgreSQL 15 nodes run by Patroni with synchronous replication, and
# a pair of sikka-switch processes. deploy/HA.md says how the same layout maps
# onto three machines.
#
# Usage:
#   deploy/ha.sh up       install missing Debian packages (deploy/install-deps.sh
#                         --ha), build (Release), make the development PKI
#                         (var/pki, shared with deploy/local.sh), start etcd, the
#                         Patroni nodes pg1 and pg2 and wait for a leader and a
#                         synchronous standby, create the roles and the database
#                         on the leader (deploy/pg.sh setup-db-on), apply schema/,
#                         seed the demo participants, write var/ha/switch1.conf
#                         and switch2.conf, start switch 1 (the active: waits
#                         until it serves) and switch 2 (the standby), and print
#                         how to use the stack. Starts only what does not run; a
#                         switch is restarted when its binary was rebuilt or its
#                         configuration changed.
#   deploy/ha.sh down     stop the switches (standby first), the Patroni nodes
#                         (replica first; each stops its PostgreSQL) and etcd
#   deploy/ha.sh status   every piece with pids and ports: etcd's health, each
#                         node's Patroni role (leader, sync_standby, replica),
#                         state, timeline and lag, which switch listens (exit 3
#                         when a piece is down or the cluster has no leader or no
#                         synchronous standby)
#   deploy/ha.sh reload   SIGHUP to both switches: configuration, TLS material and
#                         the CRL (after deploy/pki.sh revoke CODE)
#   deploy/ha.sh leader   print one line, "NODE PG_PORT PATRONI_PID POSTMASTER_PID",
#                         of the current Patroni leader (for failover tests)
#   deploy/ha.sh pguri    print, as the last line, a read-only multi-host libpq URI
#                         over both nodes for sikka_reader (prefers the standby)
#   deploy/ha.sh watchdog NODE
#                         (started by `up`, one per node) the stand-in for
#                         Patroni's hardware watchdog: when NODE's Patroni dies
#                         while its PostgreSQL is the primary, kill that PostgreSQL
#
# Environment (read by `up`, which keeps the ports in var/ha/ports.env for the
# other sub-commands and later runs; change them after `down` only):
#   SIKKA_HA_ETCD_PORT (12379) and SIKKA_HA_ETCD_PEER_PORT (12380): etcd's
#     client and peer ports (Debian's own etcd service takes 2379 and 2380);
#   SIKKA_HA_PG1_PORT (55441), SIKKA_HA_PG2_PORT (55442): PostgreSQL;
#   SIKKA_HA_PATRONI1_PORT (8008), SIKKA_HA_PATRONI2_PORT (8009): Patroni REST;
#   SIKKA_HA_SWITCH1_PORT (7443), SIKKA_HA_SWITCH2_PORT (7444): participants;
#   SIKKA_HA_ADMIN1_PORT (8443), SIKKA_HA_ADMIN2_PORT (8444): admin consoles;
#   SIKKA_PGBIN (/usr/lib/postgresql/15/bin).
# Everything listens on 127.0.0.1 only. etcd, Patroni and PostgreSQL run as the
# unprivileged user deploy/pg.sh picks (postgres, or sikka-pg); the switches as
# the caller. deploy/local.sh's stack lives in var/pg, var/run and var/log and
# shares only var/pki and the switch ports: `up` refuses while its switch runs.
#
# Layout: var/ha/secrets.env (role passwords: sikka_switch, sikka_reader, and
# Patroni's superuser, replication and REST API users), var/ha/etcd/ (etcd's
# data), var/ha/pg1/ and pg2/ (patroni.yml, data/ = PGDATA, run/ = the unix
# socket directory, mode 700: postgres over the socket by trust, everything else
# scram-sha-256), var/ha/switch1.conf, switch2.conf, var/ha/log/ (etcd.log,
# pg1.log and pg2.log: Patroni and its PostgreSQL, switch1.log, switch2.log),
# var/ha/run/ (pid files).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$SIKKA_ROOT"

ha=var/ha
pki=var/pki
db=sikka
scope=sikka
secrets=$ha/secrets.env
ports_file=$ha/ports.env
log_dir=$ha/log
run_dir=$ha/run
pgbin=${SIKKA_PGBIN:-/usr/lib/postgresql/15/bin}
switch_bin=build/bin/sikka-switch
wallet_bin=build/bin/sikka-wallet
fallback_root=/var/lib/sikka-pg
nodes=(pg1 pg2)
switches=(1 2)

# Patroni's failover timings (deploy/HA.md): the leader key lives ttl seconds,
# every loop_wait seconds the leader renews it; a DCS or PostgreSQL call is
# retried for retry_timeout. Patroni needs loop_wait + 2 * retry_timeout <= ttl.
patroni_ttl=10
patroni_loop_wait=2
patroni_retry_timeout=4

usage() {
    sed -n '/^# Usage:/,/^# Environment/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

step() {
    printf '\n==> %s\n' "$*"
}

# ---------------------------------------------------------------- ports

port_names=(ETCD ETCD_PEER PG1 PG2 PATRONI1 PATRONI2 SWITCH1 SWITCH2 ADMIN1 ADMIN2)
port_defaults=(12379 12380 55441 55442 8008 8009 7443 7444 8443 8444)
declare -A port=()

# load_ports SUBCOMMAND: port[NAME] from SIKKA_HA_NAME_PORT, else
# var/ha/ports.env, else the default; for every sub-command but up, what
# var/ha/ports.env says comes first: it is what runs.
load_ports() {
    local i name var value
    declare -A seen=()
    for i in "${!port_names[@]}"; do
        name=${port_names[i]}
        var=SIKKA_HA_${name}_PORT
        if [[ $1 == up ]]; then
            value=${!var:-$(secret_get "$var" "$ports_file")}
        else
            value=$(secret_get "$var" "$ports_file")
            value=${value:-${!var:-}}
        fi
        value=${value:-${port_defaults[i]}}
        if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1024 || value > 65535)); then
            die "$var must be a number from 1024 to 65535, got \"$value\""
        fi
        [[ -z ${seen[$value]:-} ]] || die "$var and ${seen[$value]} are both $value"
        seen[$value]=$var
        port[$name]=$value
    done
}

# The ports as var/ha/ports.env would hold them.
ports_text() {
    local name
    echo "# Written by deploy/ha.sh up: the HA stack's ports (SIKKA_HA_*_PORT)."
    for name in "${port_names[@]}"; do
        echo "SIKKA_HA_${name}_PORT=${port[$name]}"
    done
}

node_pg_port() { echo "${port[PG${1#pg}]}"; }
node_api_port() { echo "${port[PATRONI${1#pg}]}"; }

# ---------------------------------------------------------------- the server user

# The user that runs etcd, Patroni and PostgreSQL: the owner of an existing
# node, else the one deploy/pg.sh would pick.
load_server_user() {
    local node
    server_user=""
    for node in "${nodes[@]}" etcd; do
        if [[ -d $ha/$node ]]; then
            server_user=$(stat -L -c %U -- "$ha/$node")
            break
        fi
    done
    [[ -n $server_user ]] || server_user=$(deploy/pg.sh server-user)
    server_group=$(id -gn "$server_user")
}

# as_server CMD...: run CMD as the server user, holding none of our descriptors.
as_server() {
    if [[ $EUID -eq 0 && $server_user != root ]]; then
        (close_extra_fds && cd / && exec runuser -u "$server_user" -- "$@")
    else
        (close_extra_fds && exec "$@")
    fi
}

# spawn LOG PIDFILE CMD...: start daemon CMD as the server user in its own
# session, output appended to LOG; its pid goes to PIDFILE. setpriv execs (no
# parent left behind), so the pid is the daemon's own.
spawn() {
    local log=$1 pidfile=$2
    shift 2
    if [[ $EUID -eq 0 && $server_user != root ]]; then
        (close_extra_fds && exec >>"$log" 2>&1 </dev/null && cd / &&
            exec setsid setpriv --reuid="$server_user" --regid="$server_group" --init-groups \
                --reset-env "$@") &
    else
        (close_extra_fds && exec >>"$log" 2>&1 </dev/null && cd / && exec setsid "$@") &
    fi
    echo "$!" >"$pidfile"
}

# server_dir DIR: make DIR (under var/ha) a directory of the server user, mode
# 700, and print where it really is. When that user cannot reach var/ha (a
# checkout under /root, say), it lives in /var/lib/sikka-pg/<sha1 of its path>
# and DIR links to it, as deploy/pg.sh does for its clusters.
server_dir() {
    local abs=$SIKKA_ROOT/$1 real
    real=$abs
    if [[ -L $abs ]]; then
        real=$(readlink -m -- "$abs")
    elif [[ ! -d $abs ]] && ! as_server test -x "$(dirname -- "$abs")"; then
        [[ $EUID -eq 0 ]] || die "$abs: its parent is not reachable by $server_user"
        real=$fallback_root/$(printf '%s' "$abs" | sha1sum | cut -c1-40)
        mkdir -p -- "$fallback_root"
        chmod 755 -- "$fallback_root"
        ln -sfn -- "$real" "$abs"
        note "$server_user cannot reach $(dirname -- "$abs"); $1 lives in $real"
    fi
    mkdir -p -- "$real"
    if [[ $EUID -eq 0 ]]; then
        chown -- "$server_user:$server_group" "$real"
    fi
    chmod 700 -- "$real"
    printf '%s\n' "$real"
}

# Where a node's files really are (no side effects; the node may not exist).
node_real() {
    readlink -m -- "$SIKKA_ROOT/$ha/$1"
}

# The unix socket directory of a node: beside its data, or in /tmp when that
# path is too long for a socket.
node_sock() {
    local sock
    sock=$(node_real "$1")/run
    if ((${#sock} + 18 > 107)); then
        sock=/tmp/sikka-ha-$(printf '%s' "$sock" | sha1sum | cut -c1-16)
    fi
    printf '%s\n' "$sock"
}

# The postmaster's pid of a node, when it runs.
postmaster_pid() {
    local f pid
    f=$(node_real "$1")/data/postmaster.pid
    [[ -s $f ]] || return 1
    pid=$(head -n 1 -- "$f")
    [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || return 1
    echo "$pid"
}

# ---------------------------------------------------------------- etcd

etcd_pid() { pid_of "$run_dir/etcd.pid" etcd; }

etcd_healthy() {
    curl -fsS --max-time 2 "http://127.0.0.1:${port[ETCD]}/health" 2>/dev/null |
        jq -e '.health == "true"' >/dev/null 2>&1
}

start_etcd() {
    local real pid i
    if pid=$(etcd_pid); then
        echo "etcd already running (pid $pid, 127.0.0.1:${port[ETCD]})"
    else
        port_free "${port[ETCD]}" etcd
        port_free "${port[ETCD_PEER]}" "etcd (peer)"
        real=$(server_dir "$ha/etcd")
        echo "--- $(date -u +%FT%TZ) deploy/ha.sh up: starting etcd" >>"$log_dir/etcd.log"
        spawn "$log_dir/etcd.log" "$run_dir/etcd.pid" /usr/bin/etcd \
            --name sikka-ha --data-dir "$real" \
            --listen-client-urls "http://127.0.0.1:${port[ETCD]}" \
            --advertise-client-urls "http://127.0.0.1:${port[ETCD]}" \
            --listen-peer-urls "http://127.0.0.1:${port[ETCD_PEER]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${port[ETCD_PEER]}" \
            --initial-cluster "sikka-ha=http://127.0.0.1:${port[ETCD_PEER]}" \
            --initial-cluster-state new --initial-cluster-token sikka-ha \
            --auto-compaction-mode periodic --auto-compaction-retention 1h
        pid=$(head -n 1 "$run_dir/etcd.pid")
        echo "etcd started (pid $pid, 127.0.0.1:${port[ETCD]}, data $ha/etcd)"
    fi
    for ((i = 0; i < 150; i++)); do
        etcd_healthy && return 0
        etcd_pid >/dev/null || break
        sleep 0.2
    done
    tail -n 20 -- "$log_dir/etcd.log" >&2
    die "etcd does not answer on 127.0.0.1:${port[ETCD]} (log above: $log_dir/etcd.log)"
}

# ---------------------------------------------------------------- Patroni

patroni_pid() { pid_of "$run_dir/patroni-$1.pid" patroni; }

# yaml_str S: S as a single-quoted YAML scalar.
yaml_str() {
    printf "'%s'" "${1//\'/\'\'}"
}

# dcs_config: the cluster-wide Patroni settings (YAML), kept in etcd.
dcs_config() {
    cat <<EOF
ttl: $patroni_ttl
loop_wait: $patroni_loop_wait
retry_timeout: $patroni_retry_timeout
maximum_lag_on_failover: 1048576
# a commit returns only when the synchronous standby has flushed it, and with
# no standby there are no commits: RPO 0 for acknowledged payments
synchronous_mode: true
synchronous_mode_strict: true
postgresql:
  use_pg_rewind: true
  use_slots: true
  parameters:
    password_encryption: scram-sha-256
    max_connections: 200
    shared_buffers: 512MB
    wal_buffers: 16MB
    max_wal_size: 4GB
    min_wal_size: 1GB
    checkpoint_timeout: 15min
    wal_init_zero: 'off'
    wal_log_hints: 'on'
    fsync: 'on'
    synchronous_commit: 'on'
    full_page_writes: 'on'
    max_wal_senders: 10
    max_replication_slots: 10
    hot_standby: 'on'
    # a client whose machine vanished (no FIN, no RST) is dropped within
    # about 11 s, and with its session the switch's advisory-lock fence
    tcp_keepalives_idle: 5
    tcp_keepalives_interval: 2
    tcp_keepalives_count: 3
    logging_collector: 'off'
    log_destination: stderr
    log_min_messages: warning
    log_line_prefix: '%m [%p] %q%u@%d '
EOF
}

# write_patroni_config NODE REAL SOCK: REAL/patroni.yml; prints "changed" when
# it differs from the file in place.
write_patroni_config() {
    local node=$1 real=$2 sock=$3 tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by deploy/ha.sh up; running it again rewrites this file.
scope: $scope
name: $node
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$(node_api_port "$node")
  connect_address: 127.0.0.1:$(node_api_port "$node")
  authentication:
    username: patroni
    password: $(yaml_str "$(secret_get SIKKA_HA_RESTAPI_PASSWORD "$secrets")")
etcd3:
  hosts: 127.0.0.1:${port[ETCD]}
# The cluster-wide settings (dcs_config in deploy/ha.sh), written to etcd when
# the cluster is first bootstrapped; deploy/ha.sh up sets them again through
# the REST API (PATCH /config) on every run.
bootstrap:
  dcs:
$(dcs_config | sed 's/^/    /')
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
postgresql:
  listen: 127.0.0.1:$(node_pg_port "$node")
  connect_address: 127.0.0.1:$(node_pg_port "$node")
  use_unix_socket: true
  data_dir: $(yaml_str "$real/data")
  bin_dir: $(yaml_str "$pgbin")
  pgpass: $(yaml_str "$real/pgpass")
  authentication:
    superuser:
      username: postgres
      password: $(yaml_str "$(secret_get SIKKA_HA_SUPERUSER_PASSWORD "$secrets")")
    replication:
      username: replicator
      password: $(yaml_str "$(secret_get SIKKA_HA_REPLICATION_PASSWORD "$secrets")")
  parameters:
    unix_socket_directories: $(yaml_str "$sock")
    unix_socket_permissions: '0700'
  # postgres over the socket by trust (only the server user may enter its
  # directory); replication, pg_rewind and every role over TCP by scram
  pg_hba:
    - local all postgres trust
    - local all all scram-sha-256
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
  basebackup:
    - checkpoint: fast
# One machine has no hardware watchdog; deploy/HA.md says why production wants one.
watchdog:
  mode: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
EOF
    if ! cmp -s -- "$tmp" "$real/patroni.yml"; then
        if [[ $EUID -eq 0 ]]; then
            install -m 600 -o "$server_user" -g "$server_group" -- "$tmp" "$real/patroni.yml"
        else
            install -m 600 -- "$tmp" "$real/patroni.yml"
        fi
        echo changed
    fi
    rm -f -- "$tmp"
}

start_patroni() {
    local node=$1 real sock pid changed
    real=$(server_dir "$ha/$node")
    sock=$(node_sock "$node")
    mkdir -p -- "$sock"
    if [[ $EUID -eq 0 ]]; then
        chown -- "$server_user:$server_group" "$sock"
    fi
    chmod 700 -- "$sock"
    changed=$(write_patroni_config "$node" "$real" "$sock")
    if pid=$(patroni_pid "$node"); then
        if [[ -n $changed ]]; then
            kill -HUP "$pid"
            echo "patroni $node (pid $pid): configuration changed, reloaded"
        else
            echo "patroni $node already running (pid $pid)"
        fi
        start_watchdog "$node"
        return 0
    fi
    port_free "$(node_api_port "$node")" "Patroni $node (REST API)"
    # a PostgreSQL that outlived its Patroni is adopted by the new one
    postmaster_pid "$node" >/dev/null || port_free "$(node_pg_port "$node")" "PostgreSQL $node"
    echo "--- $(date -u +%FT%TZ) deploy/ha.sh up: starting patroni $node" >>"$log_dir/$node.log"
    spawn "$log_dir/$node.log" "$run_dir/patroni-$node.pid" /usr/bin/patroni "$real/patroni.yml"
    echo "patroni $node started (pid $(head -n 1 "$run_dir/patroni-$node.pid"), REST 127.0.0.1:$(node_api_port "$node"), PostgreSQL 127.0.0.1:$(node_pg_port "$node"))"
    start_watchdog "$node"
}

# The cluster as Patroni's REST API shows it (GET /cluster), from any node that answers.
cluster_json() {
    local node out
    for node in "${nodes[@]}"; do
        if out=$(curl -fsS --max-time 2 "http://127.0.0.1:$(node_api_port "$node")/cluster" 2>/dev/null) &&
            jq -e '.members' >/dev/null 2>&1 <<<"$out"; then
            printf '%s\n' "$out"
            return 0
        fi
    done
    return 1
}

jq_leader='[.members[] | select(.role == "leader" and .state == "running")] | length == 1'
jq_sync='[.members[] | select(.role == "sync_standby" and (.state == "running" or .state == "streaming"))] | length >= 1'

# wait_cluster WHAT TIMEOUT: until the cluster has a running leader ("leader")
# or also a streaming synchronous standby ("healthy").
wait_cluster() {
    local what=$1 timeout=$2 filter=$jq_leader json="" i node
    [[ $what == healthy ]] && filter="($jq_leader) and ($jq_sync)"
    for ((i = 0; i < timeout * 2; i++)); do
        if json=$(cluster_json) && jq -e "$filter" >/dev/null <<<"$json"; then
            return 0
        fi
        for node in "${nodes[@]}"; do
            # a node not started yet has no pid file
            if [[ -e $run_dir/patroni-$node.pid ]] && ! patroni_pid "$node" >/dev/null; then
                tail -n 30 -- "$log_dir/$node.log" >&2
                die "patroni $node exited (log above: $log_dir/$node.log)"
            fi
        done
        sleep 0.5
    done
    for node in "${nodes[@]}"; do
        echo "--- $log_dir/$node.log" >&2
        tail -n 15 -- "$log_dir/$node.log" >&2
    done
    [[ -n $json ]] && jq -c '.members[] | {name, role, state, lag}' <<<"$json" >&2
    die "the Patroni cluster has no $([[ $what == healthy ]] && echo "leader with a synchronous standby" || echo leader) after $timeout s (logs above)"
}

# The leader's name, from GET /cluster.
leader_name() {
    local json
    json=$(cluster_json) || return 1
    jq -r -e '[.members[] | select(.role == "leader")][0].name // empty' <<<"$json"
}

# set_dcs_config NODE: the cluster-wide settings in etcd, whatever the cluster
# was bootstrapped with (PATCH /config through NODE's REST API; the password
# goes through curl's stdin, not its command line).
set_dcs_config() {
    local body
    body=$(dcs_config | /usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))')
    printf 'user = "patroni:%s"\n' "$(secret_get SIKKA_HA_RESTAPI_PASSWORD "$secrets")" |
        curl -fsS --max-time 10 -K - -X PATCH -H 'Content-Type: application/json' \
            --data "$body" "http://127.0.0.1:$(node_api_port "$1")/config" >/dev/null ||
        die "Patroni $1 refused the cluster configuration (PATCH /config)"
    echo "cluster configuration: ttl $patroni_ttl s, loop_wait $patroni_loop_wait s, retry_timeout $patroni_retry_timeout s, synchronous_mode_strict"
}

stop_node() {
    local node=$1 pid i
    stop_watchdog "$node"
    stop_pid "$run_dir/patroni-$node.pid" patroni 90
    # Patroni stops its PostgreSQL; one that outlived a killed Patroni is stopped here
    if pid=$(postmaster_pid "$node"); then
        echo "stopping PostgreSQL $node (pid $pid), left without its Patroni"
        as_server "$pgbin/pg_ctl" -D "$(node_real "$node")/data" stop -m fast -w -t 60 -s ||
            kill -QUIT "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
}

# ---------------------------------------------------------------- watchdog

# Patroni's watchdog (a hardware or softdog timer) resets a leader's machine
# when its Patroni dies or hangs, before the leader key expires, so no primary
# outlives its Patroni. One machine cannot lend its watchdog to one node, so
# each node gets this stand-in: a loop (deploy/ha.sh watchdog NODE, as the
# caller) that, when the node's Patroni process is gone while its PostgreSQL
# runs as a primary, kills that PostgreSQL as a reset would. Without it, a
# killed Patroni leaves a primary that libpq's target_session_attrs=read-write
# still picks and whose commits hang once the standby is promoted.

# The watchdog's pid; it is a bash process, so its command line tells it apart.
watchdog_pid() {
    local pid
    [[ -s $run_dir/watchdog-$1.pid ]] || return 1
    pid=$(head -n 1 -- "$run_dir/watchdog-$1.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"/ha.sh watchdog $1 " ]] || return 1
    echo "$pid"
}

stop_watchdog() {
    local pid
    if pid=$(watchdog_pid "$1"); then
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f -- "$run_dir/watchdog-$1.pid"
}

start_watchdog() {
    local node=$1 pid
    if pid=$(watchdog_pid "$node"); then
        return 0
    fi
    (close_extra_fds && exec >>"$log_dir/$node.log" 2>&1 </dev/null &&
        exec setsid "$SIKKA_ROOT/deploy/ha.sh" watchdog "$node") &
    echo "$!" >"$run_dir/watchdog-$node.pid"
    echo "watchdog $node started (pid $!)"
}

cmd_watchdog() {
    local node=$1 patroni pm state
    patroni=$(patroni_pid "$node") || die "watchdog $node: patroni $node does not run"
    echo "$(date -u +%FT%TZ) watchdog $node: watching patroni (pid $patroni)"
    while kill -0 "$patroni" 2>/dev/null; do
        sleep 0.5
    done
    pm=$(postmaster_pid "$node") || exit 0
    state=$("$pgbin/pg_controldata" -D "$(node_real "$node")/data" 2>/dev/null |
        sed -n 's/^Database cluster state: *//p') || state=""
    [[ $state == "in production" ]] || exit 0
    # the postmaster's children are in their own process groups: stop the
    # postmaster so it forks no more, kill its children, then it
    kill -STOP "$pm" 2>/dev/null || true
    pkill -KILL -P "$pm" || true
    kill -KILL "$pm" 2>/dev/null || true
    echo "$(date -u +%FT%TZ) watchdog $node: patroni (pid $patroni) died while PostgreSQL (pid $pm) was the primary: killed it, as a watchdog reset would"
}

# ---------------------------------------------------------------- switches

switch_conf() { echo "$ha/switch$1.conf"; }
switch_log() { echo "$log_dir/switch$1.log"; }
switch_pid_file() { echo "$run_dir/switch$1.pid"; }       # written by the switch (pid_file)
switch_launch_file() { echo "$run_dir/ha-switch$1.pid"; } # written by this script
switch_listen() { echo "127.0.0.1:${port[SWITCH$1]}"; }
switch_admin() { echo "127.0.0.1:${port[ADMIN$1]}"; }

switch_pid() {
    pid_of "$(switch_launch_file "$1")" sikka-switch || pid_of "$(switch_pid_file "$1")" sikka-switch
}

listening() {
    [[ -n $(ss -Hltn "src $1" 2>/dev/null) ]]
}

# The pid listening on ADDR, when there is one.
listener_pid() {
    ss -Hltnp "src $1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

# port_free PORT WHAT: die when something listens on 127.0.0.1:PORT (or on all addresses).
port_free() {
    local line
    line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)
    [[ -z $line ]] || die "port $1, for $2, is taken: $line"
}

# The switch of deploy/local.sh, when it runs.
local_switch_pid() {
    pid_of var/run/local-switch.pid sikka-switch || pid_of var/run/sikka-switch.pid sikka-switch
}

switch_database_url() {
    local pw
    pw=$(secret_get SIKKA_SWITCH_PASSWORD "$secrets")
    [[ -n $pw ]] || die "$secrets: no SIKKA_SWITCH_PASSWORD"
    # libpq tries the hosts in order and keeps the one that takes writes: the
    # leader. Keepalives find a primary whose machine vanished (on one machine
    # a dead server's sockets are reset at once; across machines they are not).
    echo "postgresql://sikka_switch:$pw@127.0.0.1:${port[PG1]},127.0.0.1:${port[PG2]}/$db?target_session_attrs=read-write&keepalives_idle=5&keepalives_interval=2&keepalives_count=3"
}

# write_switch N: var/ha/switchN.conf; prints "changed" when it differs from the file in place.
write_switch() {
    local n=$1 conf
    conf=$(switch_conf "$n")
    write_switch_config "$conf.new" \
        "listen=$(switch_listen "$n")" \
        "admin_listen=$(switch_admin "$n")" \
        "database_url=$(switch_database_url)" \
        "log_file=$(switch_log "$n")" \
        "tls_cert=$pki/switch.crt" \
        "tls_key=$pki/switch.key" \
        "tls_ca=$pki/ca.crt" \
        "tls_crl=$pki/crl.pem" \
        "pid_file=$(switch_pid_file "$n")"
    "$switch_bin" --check-config -c "$conf.new" >/dev/null || {
        "$switch_bin" --check-config -c "$conf.new" || true
        die "$conf.new: the switch refuses this configuration"
    }
    if cmp -s -- "$conf.new" "$conf"; then
        rm -f -- "$conf.new"
    else
        mv -- "$conf.new" "$conf"
        echo "wrote $conf" >&2
        echo changed
    fi
}

stop_switch() {
    local pid
    if pid=$(switch_pid "$1"); then
        echo "$pid" >"$(switch_launch_file "$1")"
        stop_pid "$(switch_launch_file "$1")" sikka-switch 20
    fi
    rm -f -- "$(switch_launch_file "$1")"
}

# start_switch N: start switch N; it either serves (the active) or waits for
# the fence (the standby), so only an early exit is an error here.
start_switch() {
    local n=$1 pid i log addr
    log=$(switch_log "$n")
    for addr in "$(switch_listen "$n")" "$(switch_admin "$n")"; do
        if listening "$addr"; then
            die "$addr, for switch $n, is taken: $(ss -Hltnp "src $addr" | head -n 1)"
        fi
    done
    echo "--- $(date -u +%FT%TZ) deploy/ha.sh up: starting sikka-switch $n" >>"$log"
    (close_extra_fds && exec setsid nohup "$switch_bin" -c "$(switch_conf "$n")" >>"$log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$(switch_launch_file "$n")"
    for ((i = 0; i < 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 -- "$log" >&2
            die "sikka-switch $n exited at start (log above: $log)"
        fi
        listening "$(switch_listen "$n")" && break
        sleep 0.2
    done
    echo "sikka-switch $n started (pid $pid, config $(switch_conf "$n"), log $log)"
}

# wait_serving N: until switch N accepts participants.
wait_serving() {
    local n=$1 i pid log
    log=$(switch_log "$n")
    for ((i = 0; i < 150; i++)); do
        listening "$(switch_listen "$n")" && return 0
        pid=$(switch_pid "$n") || {
            tail -n 30 -- "$log" >&2
            die "sikka-switch $n exited (log above: $log)"
        }
        sleep 0.2
    done
    tail -n 30 -- "$log" >&2
    die "sikka-switch $n (pid $pid) does not accept connections on $(switch_listen "$n") after 30 s (log above: $log)"
}

# A switch whose binary was replaced (rebuilt) since it started.
switch_stale() {
    local pid
    pid=$(switch_pid "$1") || return 1
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *" (deleted)" ]]
}

# The role of switch N as its listeners show it.
switch_state() {
    local n=$1 pid lp
    if ! pid=$(switch_pid "$n"); then
        echo "not running"
        return 1
    fi
    lp=$(listener_pid "$(switch_listen "$n")")
    if [[ $lp == "$pid" ]]; then
        echo "active: pid $pid serves participants on $(switch_listen "$n"), admin on $(switch_admin "$n")"
    elif [[ -n $lp ]]; then
        echo "pid $pid, but pid $lp listens on $(switch_listen "$n")"
    else
        echo "standby: pid $pid runs, not listening (waits for the active's fence)"
    fi
}

# ---------------------------------------------------------------- sub-commands

superuser_psql() {
    local leader=$1
    shift
    "$pgbin/psql" -X -q -w -v ON_ERROR_STOP=1 -h "$(node_sock "$leader")" \
        -p "$(node_pg_port "$leader")" -U postgres "$@"
}

reader_uri() {
    local pw
    pw=$(secret_get SIKKA_READER_PASSWORD "$secrets")
    [[ -n $pw ]] || die "no SIKKA_READER_PASSWORD in $secrets yet: run deploy/ha.sh up"
    echo "postgresql://sikka_reader:$pw@127.0.0.1:${port[PG1]},127.0.0.1:${port[PG2]}/$db?target_session_attrs=prefer-standby"
}

# Anything of this stack running, by name.
running_pieces() {
    local node n
    etcd_pid >/dev/null && echo etcd
    for node in "${nodes[@]}"; do
        patroni_pid "$node" >/dev/null && echo "patroni-$node"
        postmaster_pid "$node" >/dev/null && echo "postgres-$node"
    done
    for n in "${switches[@]}"; do
        switch_pid "$n" >/dev/null && echo "switch$n"
    done
    return 0
}

cmd_up() {
    local t0=$SECONDS pid node n leader fresh=1 changed restart=()
    if pid=$(local_switch_pid); then
        die "deploy/local.sh's sikka-switch runs (pid $pid) and the HA switches need its ports: stop it first (deploy/local.sh down)"
    fi
    if [[ -f $ports_file && $(ports_text) != "$(cat -- "$ports_file")" && -n $(running_pieces) ]]; then
        die "the ports differ from $ports_file while the stack runs ($(running_pieces | xargs)): deploy/ha.sh down first"
    fi
    step "Debian packages"
    deploy/install-deps.sh --ha
    step "build (Release)"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j2
    [[ -x $switch_bin && -x $wallet_bin ]] || die "the build made no $switch_bin or $wallet_bin"
    step "development PKI ($pki)"
    deploy/pki.sh "$pki"

    step "etcd (127.0.0.1:${port[ETCD]}, data $ha/etcd)"
    ports_text >"$ports_file"
    load_server_user
    secrets_ensure "$secrets" SIKKA_HA_SUPERUSER_PASSWORD SIKKA_HA_REPLICATION_PASSWORD \
        SIKKA_HA_RESTAPI_PASSWORD SIKKA_SWITCH_PASSWORD SIKKA_READER_PASSWORD
    start_etcd

    step "Patroni: ${nodes[*]} (PostgreSQL 127.0.0.1:${port[PG1]} and :${port[PG2]}, REST :${port[PATRONI1]} and :${port[PATRONI2]}), server user $server_user"
    for node in "${nodes[@]}"; do
        [[ -f $(node_real "$node")/data/PG_VERSION ]] && fresh=0
    done
    for node in "${nodes[@]}"; do
        start_patroni "$node"
        # a new cluster: the first node bootstraps it, the second clones the leader
        if ((fresh)); then
            echo "waiting for $node to bootstrap the cluster"
            wait_cluster leader 180
            fresh=0
        fi
    done
    echo "waiting for a leader and a synchronous standby"
    wait_cluster healthy 300
    leader=$(leader_name) || die "the Patroni cluster has no leader"
    set_dcs_config "$leader"
    echo "leader: $leader (127.0.0.1:$(node_pg_port "$leader"))"

    step "database $db on the leader ($leader)"
    deploy/pg.sh setup-db-on "$db" "$secrets" -h "$(node_sock "$leader")" \
        -p "$(node_pg_port "$leader")" -U postgres
    superuser_psql "$leader" -d "$db" -f deploy/seed.sql
    echo "seeded the demo participants"

    step "sikka-switch pair (participants :${port[SWITCH1]} and :${port[SWITCH2]}, admin :${port[ADMIN1]} and :${port[ADMIN2]})"
    for n in "${switches[@]}"; do
        changed=$(write_switch "$n")
        if switch_pid "$n" >/dev/null && { [[ -n $changed ]] || switch_stale "$n"; }; then
            restart+=("$n")
        fi
    done
    # the standby goes down first, so it does not take over from an active
    # that is about to restart anyway
    if [[ ${#restart[@]} -eq ${#switches[@]} ]]; then
        echo "restarting both switches (new binary or configuration)"
        for ((n = ${#switches[@]}; n >= 1; n--)); do stop_switch "$n"; done
    elif [[ ${#restart[@]} -gt 0 ]]; then
        echo "restarting switch ${restart[*]} (new binary or configuration)"
        stop_switch "${restart[0]}"
    fi
    local started=()
    if ! switch_pid 1 >/dev/null && ! switch_pid 2 >/dev/null; then
        start_switch 1
        wait_serving 1
        started+=(1)
    fi
    for n in "${switches[@]}"; do
        if [[ " ${started[*]} " == *" $n "* ]]; then
            continue
        elif pid=$(switch_pid "$n"); then
            echo "sikka-switch $n already running (pid $pid)"
        else
            start_switch "$n"
        fi
    done
    # one of the pair serves; the other waits for the fence (or, until the
    # switch has one, serves too)
    for ((n = 0; n < 150; n++)); do
        if listening "$(switch_listen 1)" || listening "$(switch_listen 2)"; then
            break
        fi
        sleep 0.2
    done
    if ! listening "$(switch_listen 1)" && ! listening "$(switch_listen 2)"; then
        die "neither switch accepts participants (logs: $(switch_log 1), $(switch_log 2))"
    fi
    summary $((SECONDS - t0))
}

summary() {
    local n
    cat <<EOF

The Sikka HA stack is up ($1 s).
  etcd                 127.0.0.1:${port[ETCD]} (peer :${port[ETCD_PEER]}), data $ha/etcd, log $log_dir/etcd.log
  Patroni cluster      "$scope": $(cluster_json | jq -r '[.members[] | "\(.name) \(.role) :\(.port)"] | join(", ")')
      REST API         http://127.0.0.1:${port[PATRONI1]}/cluster, http://127.0.0.1:${port[PATRONI2]}/cluster
      patronictl       patronictl -c $ha/pg1/patroni.yml list
      logs             $log_dir/pg1.log, $log_dir/pg2.log (Patroni and PostgreSQL)
EOF
    for n in "${switches[@]}"; do
        printf '  switch %s             %s\n' "$n" "$(switch_state "$n")"
    done
    cat <<EOF
      configs          $(switch_conf 1), $(switch_conf 2); logs $(switch_log 1), $(switch_log 2)
  database (read-only) $(reader_uri)
      (deploy/ha.sh pguri; the switch's URI, target_session_attrs=read-write, is in its config)
  certificates         $pki/ (shared with deploy/local.sh)

  receive as a payee:  $wallet_bin --connect $(switch_listen 1),$(switch_listen 2) --participant KOKO listen --accept-all
  pay:                 $wallet_bin --connect $(switch_listen 1),$(switch_listen 2) --participant JAZZ pay \\
                           --from 03001234567 --to 03211234567@KOKO --amount 1500.00 --purpose BNPL_REPAYMENT
  the leader:          deploy/ha.sh leader   (NODE PG_PORT PATRONI_PID POSTMASTER_PID)
  status / stop:       deploy/ha.sh status; deploy/ha.sh down
EOF
}

cmd_down() {
    local json node order=() n
    for ((n = ${#switches[@]}; n >= 1; n--)); do stop_switch "$n"; done
    load_server_user
    # replicas first: the leader stops last, so nobody is promoted on the way down
    if json=$(cluster_json); then
        mapfile -t order < <(jq -r '.members | sort_by(.role == "leader") | .[].name' <<<"$json")
    fi
    for node in "${order[@]}" "${nodes[@]}"; do
        [[ " ${nodes[*]} " == *" $node "* ]] || continue
        stop_node "$node"
    done
    stop_pid "$run_dir/etcd.pid" etcd 20
    echo "the HA stack is down"
}

cmd_status() {
    local rc=0 pid json node n line state
    if pid=$(etcd_pid); then
        if etcd_healthy; then
            echo "etcd: running, pid $pid, 127.0.0.1:${port[ETCD]}, healthy"
        else
            echo "etcd: running, pid $pid, 127.0.0.1:${port[ETCD]}, NOT healthy"
            rc=3
        fi
    else
        echo "etcd: not running"
        rc=3
    fi
    json=$(cluster_json) || json=""
    echo "Patroni cluster \"$scope\":"
    for node in "${nodes[@]}"; do
        line="  $node"
        if pid=$(patroni_pid "$node"); then
            line+=": patroni pid $pid"
        else
            line+=": patroni not running"
            rc=3
        fi
        if pid=$(postmaster_pid "$node"); then
            line+=", postgres pid $pid"
        else
            line+=", postgres not running"
        fi
        if pid=$(watchdog_pid "$node"); then
            line+=", watchdog pid $pid"
        else
            line+=", no watchdog"
        fi
        line+=", 127.0.0.1:$(node_pg_port "$node") (REST :$(node_api_port "$node"))"
        if [[ -n $json ]]; then
            line+=$(jq -r --arg n "$node" '
                (.members[] | select(.name == $n)
                 | ", \(.role), \(.state), timeline \(.timeline // "?")"
                   + (if .role == "leader" then "" else ", lag \(.lag // "?")" + (if (.lag | type) == "number" then " bytes" else "" end) end))
                // ", not a member"' <<<"$json")
        fi
        echo "$line"
    done
    if [[ -z $json ]]; then
        echo "  no Patroni REST API answers"
        rc=3
    elif ! jq -e "$jq_leader" >/dev/null <<<"$json"; then
        echo "  NO LEADER: writes stop"
        rc=3
    elif ! jq -e "$jq_sync" >/dev/null <<<"$json"; then
        echo "  no synchronous standby: with synchronous_mode_strict, commits wait for one"
        rc=3
    fi
    for n in "${switches[@]}"; do
        state=$(switch_state "$n") || rc=3
        echo "sikka-switch $n: $state (config $(switch_conf "$n"), log $(switch_log "$n"))"
    done
    return "$rc"
}

cmd_reload() {
    local n pid sent=0
    for n in "${switches[@]}"; do
        if pid=$(switch_pid "$n"); then
            kill -HUP "$pid"
            echo "sent SIGHUP to sikka-switch $n (pid $pid): it reloads $(switch_conf "$n"), its TLS material and the CRL"
            sent=1
        fi
    done
    ((sent)) || die "no sikka-switch of the HA stack runs (deploy/ha.sh up)"
}

cmd_leader() {
    local json leader patroni postmaster
    json=$(cluster_json) || die "no Patroni REST API answers (deploy/ha.sh up)"
    leader=$(jq -r -e '[.members[] | select(.role == "leader")][0].name // empty' <<<"$json") ||
        die "the cluster has no leader now"
    patroni=$(patroni_pid "$leader") || patroni=-
    postmaster=$(postmaster_pid "$leader") || postmaster=-
    echo "$leader $(node_pg_port "$leader") $patroni $postmaster"
}

if [[ $# -eq 2 && $1 == watchdog && " ${nodes[*]} " == *" $2 "* ]]; then
    cmd_watchdog "$2"
    exit
fi
[[ $# -eq 1 ]] || usage
case $1 in
up | down | status | reload | leader | pguri) ;;
*) usage ;;
esac

load_ports "$1"
case $1 in
pguri)
    reader_uri
    exit 0
    ;;
leader | status)
    "cmd_$1"
    exit
    ;;
esac

mkdir -p "$ha" "$log_dir" "$run_dir"
exec 9>"$ha/.lock"
flock -n 9 || die "another deploy/ha.sh is running here"
"cmd_$1"
