# shellcheck shell=bash
# deploy/common.sh — helpers sourced by the scripts in deploy/ and tests/run.sh.
# Not a program: `source "$(dirname "$0")/common.sh"` (or the equivalent path).
#
# Defines:
#   SIKKA_ROOT        absolute path of the repository root
#   die MSG...        print "<script>: MSG" to stderr and exit 1
#   note MSG...       print "<script>: MSG" to stderr
#   as_root CMD...    run CMD as root: directly when we are root, else through sudo
#   close_extra_fds   close every descriptor above 2 in this (sub)shell, so that a
#                     daemon started from it holds no lock or pipe of its caller
#   pid_of PIDFILE NAME
#                     print the pid in PIDFILE when that process runs and is NAME
#   stop_pid PIDFILE NAME TIMEOUT
#                     SIGTERM to that process, SIGKILL after TIMEOUT seconds
#   secret_get KEY FILE
#                     KEY's value in the KEY=VALUE file FILE, or nothing
#   secrets_ensure FILE KEY...
#                     give every KEY missing from FILE a random, URI-safe value
#                     (appended; other lines are kept), FILE mode 600
#   write_switch_config DEST NAME=VALUE...
#                     DEST (mode 600) from deploy/sikka.conf.example with each
#                     NAME set to VALUE
#   caps_four_eyes ADMIN AMOUNT CODE...
#                     every CODE's net debit cap to AMOUNT rupees through the
#                     console at ADMIN (HOST:PORT), four-eyes: var/pki's
#                     supervisor proposes, supervisor2 approves
#   browser_deps      tests/browser's node_modules (playwright-core) as its
#                     package-lock.json pins them; nothing when they are
#                     already there

SIKKA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export SIKKA_ROOT

sikka_prog=$(basename "$0")

die() {
    printf '%s: %s\n' "$sikka_prog" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "$sikka_prog" "$*" >&2
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (run as root or install sudo)"
    fi
}

close_extra_fds() {
    local path fd
    for path in "/proc/$BASHPID/fd"/*; do
        fd=${path##*/}
        if ((fd > 2 && fd != 255)); then
            exec {fd}>&-
        fi
    done
}

pid_of() {
    local pid comm
    [[ -s $1 ]] || return 1
    pid=$(head -n 1 -- "$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "${2:0:15}" ]] || return 1
    echo "$pid"
}

stop_pid() {
    local pid i
    if pid=$(pid_of "$1" "$2"); then
        echo "stopping $2 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < $3 * 5; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$2 (pid $pid) still running after $3 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
    fi
    rm -f -- "$1"
}

secret_get() {
    [[ -f $2 ]] || return 0
    sed -n "s/^$1=//p" "$2" | tail -n 1 | tr -d "\"'"
}

secrets_ensure() {
    local file=$1 key
    shift
    mkdir -p -- "$(dirname -- "$file")"
    (
        umask 077
        if [[ ! -s $file ]]; then
            printf '# Passwords of the database roles (deploy/pg.sh setup-db, deploy/ha.sh).\n' >"$file"
        fi
    )
    chmod 600 -- "$file"
    for key in "$@"; do
        [[ -n $(secret_get "$key" "$file") ]] && continue
        printf '%s=%s\n' "$key" "$(openssl rand -hex 24)" >>"$file"
        note "wrote $key to $file"
    done
    for key in "$@"; do
        [[ $(secret_get "$key" "$file") =~ ^[A-Za-z0-9_.~-]+$ ]] ||
            die "$file: $key must be URI-safe (letters, digits, _ . ~ -)"
    done
}

# The values go through the environment, not argv: ps would show a password.
write_switch_config() {
    local dest=$1
    shift
    (
        umask 077
        for kv in "$@"; do
            export "SIKKA_CONF_${kv%%=*}=${kv#*=}"
        done
        awk '
        BEGIN { for (k in ENVIRON) if (k ~ /^SIKKA_CONF_/) want[substr(k, 12)] = ENVIRON[k] }
        match($0, /^[a-z_]+[ \t]*=/) {
            name = $0; sub(/[ \t]*=.*/, "", name)
            if (name in want) { printf "%s = \"%s\"\n", name, want[name]; done[name] = 1; next }
        }
        { print }
        END { for (k in want) if (!(k in done)) printf "%s = \"%s\"\n", k, want[k] }
        ' "$SIKKA_ROOT/deploy/sikka.conf.example" >"$dest.tmp"
    )
    mv -- "$dest.tmp" "$dest"
}

caps_four_eyes() {
    local admin=$1 amount=$2 code proposed
    local ctl=$SIKKA_ROOT/build/bin/sikka-ctl
    shift 2
    for code in "$@"; do
        proposed=$("$ctl" --admin "$admin" --as supervisor ndc set "$code" "$amount" | tail -n 1) ||
            die "sikka-ctl ndc set $code failed"
        [[ $proposed == "PROPOSED "* ]] || die "sikka-ctl ndc set $code: no proposal (\"$proposed\")"
        "$ctl" --admin "$admin" --as supervisor2 approve "${proposed#PROPOSED }" >/dev/null ||
            die "sikka-ctl approve ${proposed#PROPOSED } ($code's cap) failed"
    done
}

browser_deps() {
    local dir=$SIKKA_ROOT/tests/browser lock_sum stamp node_major
    lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    stamp=$dir/node_modules/.sikka-lock-sha256
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    ((node_major >= 20)) ||
        die "Node.js 20 or newer is needed for tests/browser (node: $(node --version 2>&1 || true))"
    if [[ -f $stamp && $(<"$stamp") == "$lock_sum" && -f $dir/node_modules/playwright-core/package.json ]]; then
        echo "npm ci: tests/browser/node_modules is up to date"
    else
        # offline from npm's cache when it can be
        (cd "$dir" && npm ci --no-audit --no-fund --prefer-offline)
        echo "$lock_sum" >"$stamp"
    fi
}

# realtime_prefix NAME: sets the array NAME to the command prefix that runs
# a program at a real-time round-robin priority (chrt -r 10), or to nothing
# when this user may not (no root, no CAP_SYS_NICE). The open-loop load
# generators use it: a generator that waits a scheduler slice behind the
# switch and PostgreSQL sends late and reads late, and the switch would be
# blamed for that latency (loadtest/bench.sh says more).
realtime_prefix() {
    local -n prefix_ref=$1
    prefix_ref=()
    if chrt -r 10 true 2>/dev/null; then
        prefix_ref=(chrt -r 10)
    fi
}
