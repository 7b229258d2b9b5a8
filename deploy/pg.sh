#!/usr/bin/env bash
# deploy/pg.sh — a private, throwaway PostgreSQL 15 cluster for the local stack
# and the tests; never Debian's "main" cluster.
#
# Usage:
#   deploy/pg.sh init DATADIR PORT     create the cluster (or update its settings)
#   deploy/pg.sh start DATADIR         start it and wait until it accepts connections
#   deploy/pg.sh stop DATADIR [MODE]   shut down, MODE fast (the default) or immediate
#                                      (no checkpoint: crash recovery at the next start);
#                                      a no-op when stopped
#   deploy/pg.sh status DATADIR        running or not, pid, port, socket dir (exit 3: not running)
#   deploy/pg.sh psql DATADIR [ARG...] psql as the superuser postgres over the unix socket
#   deploy/pg.sh setup-db DATADIR DBNAME SECRETS_FILE
#                                      LOGIN roles sikka_switch and sikka_reader (passwords
#                                      kept in SECRETS_FILE), database DBNAME, migrations
#   deploy/pg.sh setup-db-on DBNAME SECRETS_FILE PSQL_OPTION...
#                                      the same on any running server that psql reaches as
#                                      a superuser with PSQL_OPTIONs (-h -p -U, no -d), e.g.
#                                      the Patroni leader of deploy/ha.sh
#   deploy/pg.sh destroy DATADIR       stop and delete the cluster, data and socket dir
#   deploy/pg.sh sockdir DATADIR       print the unix socket directory
#   deploy/pg.sh port DATADIR          print the port
#   deploy/pg.sh server-user           print the user that runs (or would run) the server
#
# The server listens on 127.0.0.1:PORT and on a unix socket in a private
# directory (mode 700) beside the data: DATADIR-run, or, when that path is too
# long for a socket, /tmp/sikka-pg-<hash>. Authentication (pg_hba.conf):
# postgres over the socket by trust (the directory's mode is the guard), every
# other role and every TCP client by scram-sha-256; nothing else.
#
# initdb refuses root: as root the server runs as "postgres" (or a system user
# "sikka-pg", created when postgres does not exist) through runuser; otherwise
# as the current user. When that user cannot reach DATADIR (say, a checkout
# under /root), the data lives in /var/lib/sikka-pg/<sha1 of DATADIR> and
# DATADIR becomes a symlink to it.
#
# Every sub-command is idempotent: init on an existing cluster rewrites only
# Sikka's settings file and pg_hba.conf; start restarts a cluster whose running
# port differs from its configured one.
#
# Environment: SIKKA_PGBIN (default /usr/lib/postgresql/15/bin).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pgbin=${SIKKA_PGBIN:-/usr/lib/postgresql/15/bin}
fallback_root=/var/lib/sikka-pg
settings_file=sikka-cluster.conf

usage() {
    sed -n '/^# Usage:/,/^# The server listens/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

[[ -x $pgbin/initdb ]] || die "$pgbin/initdb not found (run deploy/install-deps.sh)"

# The user that runs a new server.
new_server_user() {
    if [[ $EUID -ne 0 ]]; then
        id -un
    elif getent passwd postgres >/dev/null; then
        echo postgres
    else
        getent passwd sikka-pg >/dev/null ||
            useradd --system --home-dir "$fallback_root" --no-create-home \
                --shell /usr/sbin/nologin sikka-pg
        echo sikka-pg
    fi
}

# as_user USER CMD...: run CMD as USER (runuser from root; otherwise we are
# USER), holding none of our caller's descriptors beyond 0-2: the postmaster
# must not keep a lock or pipe of the script that started it.
as_user() {
    local user=$1
    shift
    if [[ $EUID -eq 0 && $user != root ]]; then
        (close_extra_fds && cd / && exec runuser -u "$user" -- "$@")
    else
        (close_extra_fds && exec "$@")
    fi
}

# install_file USER SRC DEST: copy SRC to DEST, mode 600, owned by USER.
install_file() {
    if [[ $EUID -eq 0 ]]; then
        install -m 600 -o "$1" -g "$(id -gn "$1")" "$2" "$3"
    else
        install -m 600 "$2" "$3"
    fi
}

# The absolute DATADIR, its parent's symlinks resolved, its own kept.
abs_datadir() {
    local parent
    parent=$(realpath -m -- "$(dirname -- "$1")")
    printf '%s/%s\n' "$parent" "$(basename -- "$1")"
}

# Sets abs, real (where the data is), user, port and sock for an existing cluster.
load_cluster() {
    abs=$(abs_datadir "$1")
    real=$abs
    [[ -L $abs ]] && real=$(readlink -m -- "$abs")
    [[ -f $real/PG_VERSION && -f $real/$settings_file ]] ||
        die "$1: no cluster here (deploy/pg.sh init $1 PORT)"
    user=$(stat -c %U -- "$real")
    port=$(sed -n "s/^port = \([0-9]*\)$/\1/p" "$real/$settings_file")
    sock=$(sed -n "s/^unix_socket_directories = '\(.*\)'$/\1/p" "$real/$settings_file")
    sock=${sock//\'\'/\'}
    [[ -n $port && -n $sock ]] || die "$real/$settings_file: no port or socket directory"
}

pg_ctl() {
    as_user "$user" "$pgbin/pg_ctl" -D "$real" "$@"
}

# The pid of the running postmaster, or nothing.
running_pid() {
    if pg_ctl status >/dev/null 2>&1; then
        head -n 1 "$real/postmaster.pid"
    fi
}

port_in_use() {
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

cmd_init() {
    [[ $# -eq 2 ]] || usage
    local datadir=$1
    port=$2
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65535)); then
        die "port must be a number from 1024 to 65535, got \"$port\""
    fi
    abs=$(abs_datadir "$datadir")
    real=$abs
    [[ -L $abs ]] && real=$(readlink -m -- "$abs")
    if [[ -f $real/PG_VERSION ]]; then
        user=$(stat -c %U -- "$real") # an existing cluster keeps its owner
    else
        user=$(new_server_user)
        # an empty, uninitialised directory may become a symlink below
        if [[ -d $abs && ! -L $abs ]]; then
            rmdir -- "$abs" 2>/dev/null || true
        fi
        if [[ ! -e $abs && ! -L $abs ]]; then
            mkdir -p -- "$(dirname -- "$abs")"
            if ! as_user "$user" test -x "$(dirname -- "$abs")"; then
                [[ $EUID -eq 0 ]] || die "$abs: its parent is not reachable by $user"
                real=$fallback_root/$(printf '%s' "$abs" | sha1sum | cut -c1-40)
                mkdir -p "$fallback_root"
                chmod 755 "$fallback_root"
                ln -sfn -- "$real" "$abs"
                note "$user cannot reach $(dirname -- "$abs"); the data lives in $real ($abs links to it)"
            fi
        fi
    fi

    sock=$real-run
    if ((${#sock} + ${#port} + 10 > 107)); then
        sock=/tmp/sikka-pg-$(printf '%s' "$real" | sha1sum | cut -c1-16)
    fi

    mkdir -p -- "$real" "$sock"
    if [[ $EUID -eq 0 ]]; then
        chown -- "$user:$(id -gn "$user")" "$real" "$sock"
    fi
    chmod 700 -- "$real" "$sock"
    as_user "$user" test -w "$real" || die "$real: not writable by $user"

    if [[ ! -f $real/PG_VERSION ]]; then
        local out
        if ! out=$(as_user "$user" "$pgbin/initdb" -D "$real" -U postgres --encoding=UTF8 \
            --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --no-instructions 2>&1); then
            printf '%s\n' "$out" >&2
            die "initdb failed in $real"
        fi
        echo "pg: initialised $real (server user $user)"
    fi

    local tmp
    tmp=$(mktemp -d)
    cat >"$tmp/settings" <<EOF
# Written by deploy/pg.sh init; running it again rewrites this file.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '${sock//\'/\'\'}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
max_connections = 200
shared_buffers = 512MB
wal_buffers = 16MB
max_wal_size = 4GB
min_wal_size = 1GB
checkpoint_timeout = 15min
# a new WAL segment is not zero-filled first (16 MB written and synced in
# the committing backend: a latency spike every segment under load);
# recycled segments (min_wal_size) avoid creating files at all
wal_init_zero = off
# durability stays on: benchmarks must measure real commits
fsync = on
synchronous_commit = on
full_page_writes = on
# server log: server.log in the data directory (pg_ctl -l)
logging_collector = off
log_destination = 'stderr'
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    cat >"$tmp/hba" <<'EOF'
# Written by deploy/pg.sh init; running it again rewrites this file.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
EOF
    install_file "$user" "$tmp/settings" "$real/$settings_file"
    install_file "$user" "$tmp/hba" "$real/pg_hba.conf"
    rm -rf -- "$tmp"
    if ! grep -qx "include = '$settings_file'" "$real/postgresql.conf"; then
        printf "\ninclude = '%s'\n" "$settings_file" >>"$real/postgresql.conf"
    fi
    echo "pg: cluster $abs ready: 127.0.0.1:$port, socket dir $sock"
}

cmd_start() {
    [[ $# -eq 1 ]] || usage
    load_cluster "$1"
    local pid
    pid=$(running_pid)
    if [[ -n $pid ]]; then
        if [[ $(sed -n 4p "$real/postmaster.pid") == "$port" ]]; then
            echo "pg: already running (pid $pid, 127.0.0.1:$port)"
            return 0
        fi
        note "running on another port than the configured $port; restarting"
        pg_ctl stop -m fast -w -t 60 -s
    fi
    if port_in_use "$port"; then
        die "port $port is taken by another program: $(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1)"
    fi
    if ! pg_ctl start -l "$real/server.log" -w -t 60 -s; then
        tail -n 20 "$real/server.log" >&2 || true
        die "PostgreSQL in $real did not start (log: $real/server.log)"
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        "$pgbin/pg_isready" -q -h "$sock" -p "$port" -U postgres && break
        sleep 0.5
    done
    "$pgbin/pg_isready" -q -h "$sock" -p "$port" -U postgres ||
        die "PostgreSQL in $real started but does not accept connections"
    echo "pg: started (pid $(running_pid), 127.0.0.1:$port, socket dir $sock)"
}

cmd_stop() {
    [[ $# -eq 1 || $# -eq 2 ]] || usage
    local mode=${2:-fast}
    [[ $mode == fast || $mode == immediate ]] || die "stop: mode is fast or immediate, got \"$mode\""
    local abs_dir
    abs_dir=$(abs_datadir "$1")
    if [[ ! -e $abs_dir/PG_VERSION ]]; then
        echo "pg: no cluster in $1"
        return 0
    fi
    load_cluster "$1"
    if [[ -z $(running_pid) ]]; then
        echo "pg: not running"
        return 0
    fi
    pg_ctl stop -m "$mode" -w -t 60 -s
    echo "pg: stopped ($mode)"
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    if [[ ! -e $(abs_datadir "$1")/PG_VERSION ]]; then
        echo "state:      no cluster in $1"
        return 3
    fi
    load_cluster "$1"
    local pid
    pid=$(running_pid)
    local where=$abs
    [[ $real == "$abs" ]] || where="$abs -> $real"
    echo "data dir:   $where"
    echo "user:       $user"
    echo "port:       $port (127.0.0.1)"
    echo "socket dir: $sock"
    echo "log:        $real/server.log"
    if [[ -n $pid ]]; then
        echo "state:      running, pid $pid"
    else
        echo "state:      stopped"
        return 3
    fi
}

cmd_psql() {
    [[ $# -ge 1 ]] || usage
    load_cluster "$1"
    shift
    exec "$pgbin/psql" -X -h "$sock" -p "$port" -U postgres "$@"
}

cmd_setup_db() {
    [[ $# -eq 3 ]] || usage
    local datadir=$1 db=$2 secrets=$3
    cmd_start "$datadir" >/dev/null
    setup_db_on "$db" "$secrets" -h "$sock" -p "$port" -U postgres
}

# setup_db_on DBNAME SECRETS_FILE PSQL_OPTION...: the roles, the database and
# the migrations on the server that the psql options reach as a superuser.
setup_db_on() {
    local db=$1 secrets=$2
    shift 2
    [[ $db =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "database name must be lower-case sql identifier, got \"$db\""
    secrets_ensure "$secrets" SIKKA_SWITCH_PASSWORD SIKKA_READER_PASSWORD
    local switch_pw reader_pw
    switch_pw=$(secret_get SIKKA_SWITCH_PASSWORD "$secrets")
    reader_pw=$(secret_get SIKKA_READER_PASSWORD "$secrets")

    local psql=("$pgbin/psql" -X -q -w -v ON_ERROR_STOP=1 "$@")
    # passwords go through stdin, not the command line (ps would show them)
    "${psql[@]}" -d postgres <<EOF
\\set switch_pw '$switch_pw'
\\set reader_pw '$reader_pw'
\\set db '$db'
SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = r)
                   THEN 'ALTER ROLE %I LOGIN PASSWORD %L'
                   ELSE 'CREATE ROLE %I LOGIN PASSWORD %L' END, r, pw)
  FROM (VALUES ('sikka_switch', :'switch_pw'), ('sikka_reader', :'reader_pw')) AS v(r, pw)
\\gexec
SELECT format('CREATE DATABASE %I OWNER postgres', :'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')
\\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO sikka_switch, sikka_reader', :'db')
\\gexec
EOF
    # the migrations grant each role what it may do (schema/004)
    "$SIKKA_ROOT/deploy/migrate.sh" "$@" -d "$db"
    echo "pg: database $db ready (roles sikka_switch, sikka_reader; passwords in $secrets)"
}

cmd_destroy() {
    [[ $# -eq 1 ]] || usage
    local abs_dir
    abs_dir=$(abs_datadir "$1")
    if [[ -e $abs_dir/PG_VERSION ]]; then
        load_cluster "$1"
        [[ -z $(running_pid) ]] || pg_ctl stop -m immediate -w -t 60 -s
        rm -rf -- "$real" "$sock"
    fi
    if [[ -L $abs_dir ]]; then
        rm -f -- "$abs_dir"
    elif [[ -d $abs_dir ]]; then
        rm -rf -- "$abs_dir"
    fi
    echo "pg: destroyed $abs_dir"
}

[[ $# -ge 1 ]] || usage
sub=$1
shift
case $sub in
init) cmd_init "$@" ;;
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
psql) cmd_psql "$@" ;;
setup-db) cmd_setup_db "$@" ;;
setup-db-on)
    [[ $# -ge 2 ]] || usage
    setup_db_on "$@"
    ;;
destroy) cmd_destroy "$@" ;;
sockdir)
    [[ $# -eq 1 ]] || usage
    load_cluster "$1"
    echo "$sock"
    ;;
port)
    [[ $# -eq 1 ]] || usage
    load_cluster "$1"
    echo "$port"
    ;;
server-user)
    [[ $# -eq 0 ]] || usage
    new_server_user
    ;;
-h | --help | help) usage ;;
*) usage ;;
esac
