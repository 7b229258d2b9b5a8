#!/usr/bin/env bash
# tests/run.sh — the one test command (README and .ci/run use it): installs
# what the tests need, builds, starts a throwaway PostgreSQL and runs the
# whole suite through ctest. Exits non-zero when anything failed.
#
# Usage: tests/run.sh [--quick] [--ha] [-R REGEX]
#   --quick    skip the sanitizer tree (build-asan/)
#   --ha       also the long, optional part of the fault suite: the Patroni
#              stack's failovers under load (loadtest/failover.sh with
#              SIKKA_FAILOVER_STRICT=1, then deploy/ha.sh down); a few minutes,
#              and Patroni and etcd from Debian
#   -R REGEX   run only the tests whose names match (passed to ctest); a
#              REGEX that matches no test fails the run
#
# Phases, each timed:
#   1. Debian packages (deploy/install-deps.sh; prometheus among them, for
#      the promtool checks of it_metrics)
#   2. build/      -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   3. build-asan/ -DCMAKE_BUILD_TYPE=Debug -DSIKKA_SANITIZE=ON
#   4. npm ci in tests/browser (playwright-core for the console's browser
#      test), skipped when node_modules matches package-lock.json
#   5. test PKI in build/test-pki: deploy/pki.sh's set, plus expired-JAZZ,
#      foreign-JAZZ (another CA), ZZZZ (no such participant), SUSP and the
#      operators operator-norole (no role), operator-auditor (an unknown
#      role) and operator-supervisor (CN supervisor on another key)
#   6. PostgreSQL in a fresh /tmp/sikka-test.XXXXXX on 127.0.0.1, port
#      $SIKKA_TEST_PGPORT or a free one in 55433-55532; the database
#      sikka_template holds the migrated schema (no participants): every
#      integration test clones it with CREATE DATABASE x TEMPLATE sikka_template
#   7. ctest in build/, then in build-asan/ (run even when the first failed);
#      a tree whose ctest runs no test fails
#   8. with --ha: loadtest/failover.sh (it rebuilds build/ as Release)
#
# The tests see: SIKKA_TEST_PGHOST (the server's unix socket directory),
# SIKKA_TEST_PGPORT, SIKKA_TEST_PGUSER=postgres (superuser over the socket),
# SIKKA_TEST_TEMPLATE=sikka_template, SIKKA_TEST_SWITCH_PASSWORD and
# SIKKA_TEST_READER_PASSWORD (roles sikka_switch and sikka_reader, TCP with
# scram), SIKKA_TEST_PKI (absolute path of build/test-pki) and SIKKA_SOURCE_DIR;
# the sanitizer tree also ASAN_OPTIONS, UBSAN_OPTIONS and, when
# tests/lsan.supp exists, LSAN_OPTIONS. PostgreSQL is stopped and its
# directory removed on any exit.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
cd "$SIKKA_ROOT"

usage() {
    sed -n '/^# Usage:/,/^# Phases/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

quick=0
ha=0
ctest_filter=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick)
        quick=1
        shift
        ;;
    --ha)
        ha=1
        shift
        ;;
    -R)
        [[ $# -ge 2 ]] || usage
        ctest_filter=(-R "$2")
        shift 2
        ;;
    *) usage ;;
    esac
done

now_us() {
    local t=$EPOCHREALTIME
    echo "${t/[.,]/}"
}

seconds() {
    local us=$1
    printf '%d.%d s' $((us / 1000000)) $((us % 1000000 / 100000))
}

started=$(now_us)
phase=""
phase_started=0
timings=()
failures=()
pg_tmp=""

begin_phase() {
    phase=$1
    phase_started=$(now_us)
    printf '\n==> %s\n' "$phase"
}

# end_phase RESULT: records the running phase's time and result.
end_phase() {
    local took=$(($(now_us) - phase_started))
    timings+=("$(printf '  %-34s %10s  %s' "$phase" "$(seconds "$took")" "$1")")
    printf -- '--- %s: %s (%s)\n' "$phase" "$1" "$(seconds "$took")"
    [[ $1 == ok ]] || failures+=("$phase")
    phase=""
}

finish() {
    local rc=$?
    [[ -z $phase ]] || end_phase FAILED
    if [[ -n $pg_tmp ]]; then
        deploy/pg.sh destroy "$pg_tmp/pg" >/dev/null 2>&1 || true
        rm -rf -- "$pg_tmp"
    fi
    printf '\nPhase times:\n'
    printf '%s\n' ${timings[@]+"${timings[@]}"}
    printf '  %-34s %10s\n' total "$(seconds $(($(now_us) - started)))"
    if [[ $rc -eq 0 && ${#failures[@]} -gt 0 ]]; then
        rc=1
    fi
    if [[ $rc -eq 0 ]]; then
        echo "tests/run.sh: all phases passed"
    else
        echo "tests/run.sh: FAILED (${failures[*]:-exit status $rc})"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() {
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

begin_phase "Debian packages"
deploy/install-deps.sh
end_phase ok

begin_phase "build/ (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
end_phase ok

if [[ $quick -eq 0 ]]; then
    begin_phase "build-asan/ (Debug, sanitizers)"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSIKKA_SANITIZE=ON
    cmake --build build-asan -j2
    end_phase ok
fi

begin_phase "npm ci (tests/browser)"
# playwright-core as tests/browser/package-lock.json pins it
browser_deps
end_phase ok

begin_phase "test PKI (build/test-pki)"
pki_dir=$SIKKA_ROOT/build/test-pki
deploy/pki.sh "$pki_dir"
deploy/pki.sh "$pki_dir" expired JAZZ
deploy/pki.sh "$pki_dir" foreign JAZZ
deploy/pki.sh "$pki_dir" participant ZZZZ SUSP
# it_foureyes: an operator certificate without a role, one with an unknown
# role, and the supervisor's name on another key
deploy/pki.sh "$pki_dir" operator norole --no-role
deploy/pki.sh "$pki_dir" operator auditor --role auditor
deploy/pki.sh "$pki_dir" operator supervisor --role supervisor
end_phase ok

begin_phase "PostgreSQL"
if [[ -n ${SIKKA_TEST_PGPORT:-} ]]; then
    pg_port=$SIKKA_TEST_PGPORT
    if port_in_use "$pg_port"; then
        die "SIKKA_TEST_PGPORT=$pg_port is taken"
    fi
else
    # from a random place in the range: two runs side by side (worktrees)
    # rarely look at the same port in the moment between this and the bind
    offset=$((RANDOM % 100))
    for ((i = 0; i < 100; i++)); do
        pg_port=$((55433 + (offset + i) % 100))
        port_in_use "$pg_port" || break
    done
    ! port_in_use "$pg_port" || die "no free port in 55433-55532"
fi
pg_tmp=$(mktemp -d /tmp/sikka-test.XXXXXX)
if [[ $EUID -eq 0 ]]; then
    chown "$(deploy/pg.sh server-user)" "$pg_tmp"
fi
deploy/pg.sh init "$pg_tmp/pg" "$pg_port"
deploy/pg.sh start "$pg_tmp/pg"
deploy/pg.sh setup-db "$pg_tmp/pg" sikka_template "$pg_tmp/secrets.env"
end_phase ok

SIKKA_TEST_PGHOST=$(deploy/pg.sh sockdir "$pg_tmp/pg")
SIKKA_TEST_PGPORT=$pg_port
SIKKA_TEST_PGUSER=postgres
SIKKA_TEST_TEMPLATE=sikka_template
SIKKA_TEST_SWITCH_PASSWORD=$(sed -n 's/^SIKKA_SWITCH_PASSWORD=//p' "$pg_tmp/secrets.env")
SIKKA_TEST_READER_PASSWORD=$(sed -n 's/^SIKKA_READER_PASSWORD=//p' "$pg_tmp/secrets.env")
SIKKA_TEST_PKI=$pki_dir
SIKKA_SOURCE_DIR=$SIKKA_ROOT
export SIKKA_TEST_PGHOST SIKKA_TEST_PGPORT SIKKA_TEST_PGUSER SIKKA_TEST_TEMPLATE \
    SIKKA_TEST_SWITCH_PASSWORD SIKKA_TEST_READER_PASSWORD SIKKA_TEST_PKI SIKKA_SOURCE_DIR

# --no-tests=error: a filter or a build that leaves no test to run is a
# failure, not a pass
ctest_args=(--output-on-failure --no-tests=error -j2 --timeout 600
    ${ctest_filter[@]+"${ctest_filter[@]}"})

begin_phase "ctest build/"
if ctest --test-dir build "${ctest_args[@]}"; then
    end_phase ok
else
    end_phase FAILED
fi

if [[ $quick -eq 0 ]]; then
    begin_phase "ctest build-asan/"
    sanitizer_env=(
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    )
    if [[ -f tests/lsan.supp ]]; then
        sanitizer_env+=("LSAN_OPTIONS=suppressions=$SIKKA_ROOT/tests/lsan.supp")
    fi
    if env "${sanitizer_env[@]}" ctest --test-dir build-asan "${ctest_args[@]}"; then
        end_phase ok
    else
        end_phase FAILED
    fi
fi

if [[ $ha -eq 1 ]]; then
    begin_phase "HA failover (loadtest/failover.sh)"
    if SIKKA_FAILOVER_STRICT=1 loadtest/failover.sh; then
        end_phase ok
    else
        end_phase FAILED
    fi
    deploy/ha.sh down >/dev/null 2>&1 || echo "deploy/ha.sh down failed (deploy/ha.sh status)" >&2
fi
