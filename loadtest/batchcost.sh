#!/usr/bin/env bash
# loadtest/batchcost.sh — the database's CPU per transfer of one posting
# batch, measured alone: no switch, no TLS, no generator.
#
# Usage: loadtest/batchcost.sh [--instructions] [SIZE...]   (default: 30 600)
#
# Run it after loadtest/bench.sh, on the database that run left under
# build/bench/ (its tables as large as a benchmark makes them): it starts
# that PostgreSQL when it is not running (and stops it again), loads
# loadtest/batchcost.sql, and for each SIZE calls post_batch with SIZE
# transfers from one psql session, in autocommit as the switch does: 6
# calls to warm up, then enough calls for about 6,000 transfers. It reads
# the backend's CPU time (user and system, /proc/PID/stat) before and after
# and prints microseconds per transfer and the wall time per call. Run it
# before and after a change to post_batch (or alternate two versions of the
# function) to compare them on one server at one moment; this machine is
# shared and noisy, so repeat, and compare within one sitting.
#
# --instructions counts instead of timing: the cluster is stopped, and a
# single-user backend (postgres --single, as the cluster's owner) runs the
# calls under valgrind's callgrind, twice (a few calls, then more); the
# difference divided by the extra calls is the instructions of one call,
# startup and first plans left out. That count is the same on a busy
# machine as on an idle one, so a change of a few per cent shows in one
# run. The commit's fsync is one system call either way: it counts as
# nothing here. The cluster is started again if it was running.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
cd "$SIKKA_ROOT"

[[ ${1:-} != -h && ${1:-} != --help ]] || {
    sed -n '/^# Usage:/,/^# nothing here/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
instructions=0
if [[ ${1:-} == --instructions ]]; then
    instructions=1
    shift
fi
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(30 600)
for n in "${sizes[@]}"; do
    [[ $n =~ ^[1-9][0-9]{0,4}$ ]] || die "batch size '$n': a number from 1 to 99999"
done

pg_data=build/bench/pg
pgbin=${SIKKA_PGBIN:-/usr/lib/postgresql/15/bin}
[[ -f $pg_data/PG_VERSION ]] || die "no benchmark database under $pg_data: run loadtest/bench.sh first"
started=0
if ! deploy/pg.sh status "$pg_data" >/dev/null 2>&1; then
    deploy/pg.sh start "$pg_data" >/dev/null
    started=1
fi
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    if [[ $started -eq 1 ]]; then
        deploy/pg.sh stop "$pg_data" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
port=$(sed -n 's/^port = //p' "$pg_data/sikka-cluster.conf")
psql_args=(-X -q -w -v ON_ERROR_STOP=1 -h "$(deploy/pg.sh sockdir "$pg_data")" -p "$port"
    -U postgres -d sikka)
"$pgbin/psql" "${psql_args[@]}" -f loadtest/batchcost.sql >/dev/null

# ticks PID: user and system CPU ticks of a process
ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

if [[ $instructions == 1 ]]; then
    command -v valgrind >/dev/null || die "--instructions needs valgrind (apt-get install valgrind)"
    owner=$(stat -c %U -- "$(realpath "$pg_data")")
    data=$(realpath "$pg_data")
    was_running=1
    [[ $started == 1 ]] && was_running=0
    deploy/pg.sh stop "$pg_data" >/dev/null
    started=0
    cg=$(mktemp -d)
    chown "$owner" "$cg" 2>/dev/null || true
    # shellcheck disable=SC2317 # run by the EXIT trap
    cleanup() {
        rm -rf "$cg"
        if [[ $was_running == 1 ]]; then
            deploy/pg.sh start "$pg_data" >/dev/null 2>&1 || true
        fi
    }
    # counted CALLS SIZE: callgrind's instruction total of a single-user
    # backend that makes CALLS calls of batchcost(SIZE)
    counted() {
        local i
        for ((i = 0; i < $1; i++)); do echo "SELECT batchcost($2);"; done >"$cg/in.sql"
        chmod 644 "$cg/in.sql"
        local run=(valgrind --tool=callgrind "--callgrind-out-file=$cg/cg.out" "$pgbin/postgres"
            --single -D "$data" sikka)
        if [[ $EUID -eq 0 && $owner != root ]]; then
            runuser -u "$owner" -- "${run[@]}" <"$cg/in.sql" >"$cg/log" 2>&1
        else
            "${run[@]}" <"$cg/in.sql" >"$cg/log" 2>&1
        fi || die "the single-user backend failed: $(tail -n 5 "$cg/log")"
        ! grep -q 'ERROR:' "$cg/log" || die "batchcost($2) failed: $(grep -m1 'ERROR:' "$cg/log")"
        sed -n 's/^totals: //p' "$cg/cg.out"
    }
    for n in "${sizes[@]}"; do
        few=3
        more=$((few + (n < 100 ? 100 : 20)))
        a=$(counted "$few" "$n")
        b=$(counted "$more" "$n")
        awk -v a="$a" -v b="$b" -v c=$((more - few)) -v n="$n" \
            'BEGIN { printf "post_batch of %5d transfers: %9.0f instructions per transfer, %11.0f per call (callgrind, %d calls)\n",
                     n, (b - a) / c / n, (b - a) / c, c }'
    done
    exit 0
fi

hz=$(getconf CLK_TCK)
for n in "${sizes[@]}"; do
    calls=$((6000 / n + 1))
    coproc PSQL { "$pgbin/psql" "${psql_args[@]}" -At 2>&1; }
    echo "SELECT pg_backend_pid();" >&"${PSQL[1]}"
    read -r pid <&"${PSQL[0]}"
    [[ $pid =~ ^[0-9]+$ ]] || die "psql did not start: $pid"
    call() {
        local i out
        for ((i = 0; i < $1; i++)); do
            echo "SELECT batchcost($n);" >&"${PSQL[1]}"
            read -r out <&"${PSQL[0]}"
            [[ $out =~ ^[0-9]+$ ]] || die "batchcost($n) failed: $out"
        done
    }
    call 6
    t0=$(ticks "$pid")
    w0=$(date +%s%N)
    call "$calls"
    t1=$(ticks "$pid")
    w1=$(date +%s%N)
    echo '\q' >&"${PSQL[1]}"
    wait "$PSQL_PID" || true
    awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$n" -v c="$calls" -v w=$(((w1 - w0) / 1000)) \
        'BEGIN { printf "post_batch of %5d transfers: %6.1f us of backend CPU per transfer, %8.2f ms per call (wall), %d calls\n",
                 n, t / hz * 1e6 / (n * c), w / 1000 / c, c }'
done
