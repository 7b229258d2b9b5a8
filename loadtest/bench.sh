#!/usr/bin/env bash
# loadtest/bench.sh — the benchmark, one command: two plain PostgreSQL
# ledgers (one transaction per transfer) against sikka-switch, measured in
# the same run on the same PostgreSQL server, on this machine (load
# generator, switch and PostgreSQL sharing its cores).
#
# Usage: loadtest/bench.sh
#
# It builds Release (build/), then starts a stack of its own under
# build/bench/: PostgreSQL (deploy/pg.sh, its default settings: fsync and
# synchronous_commit on) on 127.0.0.1:$SIKKA_BENCH_PGPORT, a PKI
# (deploy/pki.sh), two databases migrated from schema/ (sikka for the switch,
# sikka_base for the baseline) seeded with the demo participants and net debit
# caps large enough for the run, and sikka-switch on 127.0.0.1:$SIKKA_BENCH_PORT.
# Then:
#   1. baselines, pgbench with the replay scenario's payer/payee mix, each
#      client count of $SIKKA_BENCH_CLIENTS briefly, then the best one for
#      longer: "schema" (loadtest/baseline_transfer.sql: the switch's own
#      tables and triggers, one transfer per transaction) and "plain"
#      (loadtest/plain_transfer.sql: a plain ledger's one function call per
#      transfer, loadtest/plain_ledger.sql); the stronger is the baseline;
#   2. the switch at its maximum: sikka-replay run --closed N (each N of
#      $SIKKA_BENCH_CLOSED briefly, then the best one for longer) over mutual
#      TLS with the payee round trip and durable posting; its CPU time per
#      transfer from /proc/PID/stat; the results checked by sikka-replay verify;
#   3. the switch at half that rate (open loop) for latency,
#      $SIKKA_BENCH_HALF_REPEATS times: median and worst, late sends; then
#      (3b) the highest rate at which p99 is within 20 ms: half the peak if
#      it was, else a bisection below it, one short run per rate;
#   4. the switch's resident memory with $SIKKA_BENCH_MANY_SESSIONS sessions
#      connected (measured first, on the fresh switch, so that the idempotency
#      cache filled by steps 2 and 3 does not count as session memory);
#   5. a victim's latency with and without a flooding participant: the
#      capture's participants at a quarter of the peak (open loop), alone,
#      then again while FLOD (a participant of its own, in the PKI and the
#      database, never in the capture) runs `sikka-replay flood` with
#      $SIKKA_BENCH_FLOOD_SESSIONS sessions writing pings and malformed
#      frames, half of them never reading;
#   6. the alias directory: the switch restarted with $SIKKA_BENCH_ALIASES
#      aliases (its load time and memory), alias lookups a second, and the
#      p99 of paying by alias beside paying by account at the same rate
#      (two runs each, plain, alias, alias, plain).
# CPU per transfer of the switch, PostgreSQL and the generator is read from
# /proc (and the generator's getrusage) around the peak run. It writes
# build/bench/result.json, appends a line to loadtest/results.tsv and
# rewrites README's table from it (loadtest/results.sh; not with
# SIKKA_BENCH_HISTORY=0), prints a table and stops everything it started.
# Exit 0 when the measurements were made (targets met or not; with
# SIKKA_BENCH_STRICT=1 a missed target exits 1), 1 when something failed.
#
# Environment (durations in seconds):
#   SIKKA_BENCH_PGPORT (55460)  SIKKA_BENCH_PORT (7460)
#   SIKKA_BENCH_PROBE_S (4)     each probe of a client count or an N
#   SIKKA_BENCH_BASELINE_S (20) SIKKA_BENCH_PEAK_S (20) SIKKA_BENCH_HALF_S (20)
#   SIKKA_BENCH_WARMUP_S (3)    unmeasured start of the peak and half runs
#   SIKKA_BENCH_CLIENTS ("1 2 4 8 16 32 64")  SIKKA_BENCH_CLOSED ("256 1024 4096")
#   SIKKA_BENCH_SESSIONS (4)    sessions per participant in steps 2, 3 and 5
#   SIKKA_BENCH_FLOOD_S (15)    each victim run of step 5 (after a 2 s warmup)
#   SIKKA_BENCH_FLOOD_SESSIONS (4)  the flooder's sessions in step 5
#   SIKKA_BENCH_MANY_SESSIONS (1000)  SIKKA_BENCH_RECORDS (200000, the capture)
#   SIKKA_BENCH_HALF_REPEATS (3)  SIKKA_BENCH_HISTORY (1)  SIKKA_BENCH_STRICT (0)
#   SIKKA_BENCH_SLO_S (10)      SIKKA_BENCH_SLO_STEPS (3)  step 3b
#   SIKKA_BENCH_GEN_RT (1)      open-loop runs: the generator at real-time priority
#   SIKKA_BENCH_ALIASES (1000000)  SIKKA_BENCH_ALIAS_S (10)  step 6
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
cd "$SIKKA_ROOT"

usage() {
    sed -n '/^# Usage:/,/^# It builds/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
[[ $# -eq 0 ]] || usage

pg_port=${SIKKA_BENCH_PGPORT:-55460}
switch_port=${SIKKA_BENCH_PORT:-7460}
probe_s=${SIKKA_BENCH_PROBE_S:-4}
baseline_s=${SIKKA_BENCH_BASELINE_S:-20}
peak_s=${SIKKA_BENCH_PEAK_S:-20}
half_s=${SIKKA_BENCH_HALF_S:-20}
half_repeats=${SIKKA_BENCH_HALF_REPEATS:-3}
slo_s=${SIKKA_BENCH_SLO_S:-10}
slo_steps=${SIKKA_BENCH_SLO_STEPS:-3}
warmup_s=${SIKKA_BENCH_WARMUP_S:-3}
flood_s=${SIKKA_BENCH_FLOOD_S:-15}
flood_warmup_s=2
flood_sessions=${SIKKA_BENCH_FLOOD_SESSIONS:-4}
read -r -a client_counts <<<"${SIKKA_BENCH_CLIENTS:-1 2 4 8 16 32 64}"
read -r -a closed_counts <<<"${SIKKA_BENCH_CLOSED:-256 1024 4096}"
sessions=${SIKKA_BENCH_SESSIONS:-4}
many_sessions=${SIKKA_BENCH_MANY_SESSIONS:-1000}
records=${SIKKA_BENCH_RECORDS:-200000}
strict=${SIKKA_BENCH_STRICT:-0}
history=${SIKKA_BENCH_HISTORY:-1}
gen_rt=${SIKKA_BENCH_GEN_RT:-1}

dir=build/bench
pg_data=$dir/pg
pki=$dir/pki
secrets=$dir/secrets.env
conf=$dir/sikka.conf
switch_log=$dir/switch.log
capture=$dir/bench.cap
replay=build/bin/sikka-replay
switch_bin=build/bin/sikka-switch
pgbin=${SIKKA_PGBIN:-/usr/lib/postgresql/15/bin}
participants=(JAZZ EASY SADA NAYA KOKO MEZN)
flooder=FLOD # step 5's hostile participant: registered, never in the capture

switch_pid=""
bg_pid=""
pg_started=0

step() {
    printf '\n==> %s\n' "$*"
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n $bg_pid ]] && kill -0 "$bg_pid" 2>/dev/null; then
        kill -TERM "$bg_pid" 2>/dev/null || true
        wait "$bg_pid" 2>/dev/null || true
    fi
    stop_switch
    if [[ $pg_started -eq 1 ]]; then
        deploy/pg.sh stop "$pg_data" >/dev/null 2>&1 || true
    fi
    if [[ $rc -ne 0 ]]; then
        echo "bench: FAILED (logs: $dir/*.log, $pg_data/server.log)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_switch() {
    local i
    [[ -n $switch_pid ]] || return 0
    if kill -0 "$switch_pid" 2>/dev/null; then
        kill -TERM "$switch_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$switch_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$switch_pid" 2>/dev/null && kill -KILL "$switch_pid" 2>/dev/null
    fi
    wait "$switch_pid" 2>/dev/null || true
    switch_pid=""
}

listening() {
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

psql_super() {
    local db=$1
    shift
    "$pgbin/psql" -X -q -w -v ON_ERROR_STOP=1 -h "$(deploy/pg.sh sockdir "$pg_data")" \
        -p "$pg_port" -U postgres -d "$db" "$@"
}

rss_mb() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Ticks of CPU (user + system) the process has used so far.
cpu_ticks() {
    # the command name may hold spaces: fields count from the last ')';
    # a process that is gone has used nothing more
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 } END { if (NR == 0) print 0 }'
}

secs() {
    date +%s.%N
}

# settle DB: VACUUM (ANALYZE) and a CHECKPOINT, so that a measurement starts
# from a settled database (as pgbench does before each run unless told not
# to) rather than measure autovacuum catching up on the hundreds of thousands
# of rows the run before wrote, or a checkpoint it left due. The baselines
# and the switch get it alike, before each of their runs.
settle() {
    psql_super "$1" -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null
}

# Ticks of CPU the PostgreSQL server has used so far: the postmaster, the
# children it has reaped (backends of closed connections) and those alive.
pg_ticks() {
    local pm t c
    pm=$(head -n 1 "$pg_data/postmaster.pid")
    t=$(sed 's/^.*) //' "/proc/$pm/stat" | awk '{ print $12 + $13 + $14 + $15 }')
    for c in $(pgrep -P "$pm"); do
        t=$((t + $(cpu_ticks "$c")))
    done
    echo "$t"
}

# per_transfer_us TICKS COUNT: microseconds of CPU per transfer
per_transfer_us() {
    awk -v d="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? d / hz * 1e6 / n : 0) }'
}

# ---------------------------------------------------------------- prepare

step "packages and the Release build"
deploy/install-deps.sh jq
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target sikka-switch sikka-replay
[[ -x $switch_bin && -x $replay ]] || die "the build made no $switch_bin or $replay"
command -v pgbench >/dev/null || [[ -x $pgbin/pgbench ]] || die "pgbench not found"
pgbench=$(command -v pgbench || echo "$pgbin/pgbench")

started_at=$(date -u +%FT%TZ)
t_start=$(secs)

step "a fresh stack under $dir"
if listening "$switch_port"; then
    die "port $switch_port is taken (SIKKA_BENCH_PORT)"
fi
mkdir -p "$dir"
if [[ -e $pg_data || -L $pg_data ]]; then
    deploy/pg.sh destroy "$pg_data" >/dev/null
fi
rm -rf -- "$pki" "$dir"/*.log "$dir"/*.json "$dir"/*.html "$dir"/*.tsv "$capture" "$secrets"
deploy/pki.sh "$pki" --participant "$flooder" >/dev/null
echo "PKI in $pki"
deploy/pg.sh init "$pg_data" "$pg_port" >/dev/null
deploy/pg.sh start "$pg_data"
pg_started=1
for db in sikka sikka_base; do
    deploy/pg.sh setup-db "$pg_data" "$db" "$secrets" >/dev/null
    psql_super "$db" -f deploy/seed.sql
    # caps far beyond any run: the benchmark measures throughput, not AM23
    psql_super "$db" -c "UPDATE participants SET ndc = 1000000000000000"
done
# the flooder sends no transfers: a zero cap is all it needs
psql_super sikka -c "SELECT participant_add('bench', NULL, NULL, NULL, '$flooder', 'Flooder', 'wallet', 0, NULL)" >/dev/null
switch_pw=$(sed -n 's/^SIKKA_SWITCH_PASSWORD=//p' "$secrets")
reader_pw=$(sed -n 's/^SIKKA_READER_PASSWORD=//p' "$secrets")
pg_version=$(psql_super sikka -Atc "SHOW server_version")
pg_fsync=$(psql_super sikka -Atc "SHOW fsync")
pg_sync_commit=$(psql_super sikka -Atc "SHOW synchronous_commit")
echo "PostgreSQL $pg_version on 127.0.0.1:$pg_port: fsync=$pg_fsync synchronous_commit=$pg_sync_commit"

# ---------------------------------------------------------------- baseline

step "1. baselines, one PostgreSQL transaction per transfer (pgbench)"
# Two plain ledgers on the same server, same mix and hot payee as the
# switch's traffic: "schema", the switch's own tables and triggers written
# one transfer per transaction (loadtest/baseline_transfer.sql, four round
# trips); "plain", a ledger as a competent team would write it without a
# switch (loadtest/plain_ledger.sql: one function call, ordered balance
# updates, a unique idempotency key, no batch triggers). The switch is
# compared with the stronger of the two.
psql_super sikka_base -f loadtest/baseline_setup.sql >/dev/null
psql_super sikka_base -f loadtest/plain_ledger.sql >/dev/null
window=$(psql_super sikka_base -Atc "SELECT id FROM settlement_windows WHERE state = 'open'")
declare -A baseline_script=([schema]=loadtest/baseline_transfer.sql [plain]=loadtest/plain_transfer.sql)

# pgbench_run NAME CLIENTS SECONDS LOG: prints the tps (without connection
# time) of baseline NAME
pgbench_run() {
    local c=$2 t=$3 log=$4 j=$(($2 < 2 ? $2 : 2))
    PGPASSWORD=$switch_pw "$pgbench" -h 127.0.0.1 -p "$pg_port" -U sikka_switch -n -M prepared \
        -f "${baseline_script[$1]}" -D "window=$window" -T "$t" -c "$c" -j "$j" \
        sikka_base >"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "pgbench failed (log: $log)"
    }
    grep -q '^number of failed transactions: 0 ' "$log" || die "pgbench had failed transactions ($log)"
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log"
}

declare -A best_clients best_probe probe_json base_tps base_latency base_pg_us
for b in schema plain; do
    best_clients[$b]=0
    best_probe[$b]=0
    probe_json[$b]="{}"
done
for c in "${client_counts[@]}"; do
    for b in schema plain; do
        settle sikka_base
        tps=$(pgbench_run "$b" "$c" "$probe_s" "$dir/pgbench-$b-probe-$c.log")
        printf '  %-6s %3d clients: %10.1f tps\n' "$b" "$c" "$tps"
        probe_json[$b]=$(jq -c --arg c "$c" --argjson t "$tps" '. + {($c): $t}' <<<"${probe_json[$b]}")
        if awk -v a="$tps" -v b="${best_probe[$b]}" 'BEGIN { exit !(a > b) }'; then
            best_probe[$b]=$tps
            best_clients[$b]=$c
        fi
    done
done
for b in schema plain; do
    settle sikka_base
    pg0=$(pg_ticks)
    base_tps[$b]=$(pgbench_run "$b" "${best_clients[$b]}" "$baseline_s" "$dir/pgbench-$b.log")
    pg1=$(pg_ticks)
    base_latency[$b]=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$dir/pgbench-$b.log")
    base_pg_us[$b]=$(per_transfer_us $((pg1 - pg0)) \
        "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/pgbench-$b.log")")
    printf '  %-6s best: %d clients, %s s: %.1f tps (average latency %s ms, PostgreSQL CPU %s us per transfer)\n' \
        "$b" "${best_clients[$b]}" "$baseline_s" "${base_tps[$b]}" "${base_latency[$b]}" "${base_pg_us[$b]}"
done
if awk -v a="${base_tps[plain]}" -v b="${base_tps[schema]}" 'BEGIN { exit !(a >= b) }'; then
    baseline_name=plain
else
    baseline_name=schema
fi
baseline_tps=${base_tps[$baseline_name]}
echo "  stronger baseline: $baseline_name, $baseline_tps tps"
# start the switch's part from a clean checkpoint, not the baseline's dirty pages
psql_super sikka_base -c "CHECKPOINT"

# ---------------------------------------------------------------- the switch

step "sikka-switch on 127.0.0.1:$switch_port"
cat >"$conf" <<EOF
# Written by loadtest/bench.sh: the benchmark's switch.
listen = "127.0.0.1:$switch_port"
admin_listen = ""
tls_cert = "$pki/switch.crt"
tls_key = "$pki/switch.key"
tls_ca = "$pki/ca.crt"
database_url = "postgresql://sikka_switch:$switch_pw@127.0.0.1:$pg_port/sikka"
# supplier invoices of the scenario reach PKR 2,000,000
max_amount = 1000000000
max_sessions = 20000
# the protections that are per address and per participant stay out of the
# way, like the caps in the database: every session of the benchmark comes
# from this one address, step 4 opens ~170 sessions per participant, and at
# the peak the bank pays about a third of all transfers (over 10,000/s). The
# per-session limits (frame rate, output, in flight) stay at their defaults:
# step 5 measures what they leave of a flood.
max_handshakes_per_address = 1000000
max_sessions_per_participant = 100000
participant_rate = 10000000
participant_burst = 100000000
log_level = "warn"
log_file = "$switch_log"
EOF
chmod 600 "$conf"
"$switch_bin" --check-config -c "$conf" >/dev/null
(close_extra_fds && exec "$switch_bin" -c "$conf" >>"$dir/switch-stdio.log" 2>&1 </dev/null) &
switch_pid=$!
for ((i = 0; i < 100; i++)); do
    kill -0 "$switch_pid" 2>/dev/null || die "sikka-switch exited at start (log: $switch_log)"
    listening "$switch_port" && break
    sleep 0.2
done
listening "$switch_port" || die "sikka-switch does not listen on $switch_port (log: $switch_log)"
echo "sikka-switch running, pid $switch_pid"

"$replay" gen -o "$capture" --count "$records" --seed 1
run_common=("$capture" --connect "127.0.0.1:$switch_port" --pki "$pki" --quiet)
run_no=0

# replay_run ARGS...: one sikka-replay run with a fresh run id (so keys never
# repeat across runs); stdout to $dir/run-N.log
replay_run() {
    run_no=$((run_no + 1))
    "$replay" run "${run_common[@]}" --run-id "b$run_no" "$@" >"$dir/run-$run_no.log" 2>&1
}

# The open-loop runs (steps 3 and 5) measure the switch against a schedule:
# a send the generator makes late, or a report it reads late, counts in the
# latency (corrected from the schedule) although the switch did nothing
# slower. On two cores shared with the switch and PostgreSQL, a waking
# generator at normal priority can wait a scheduler slice (milliseconds)
# behind them. So these runs give the generator a real-time round-robin
# priority (chrt -r): it runs as soon as it is due, as clients on machines
# of their own would, while its work (about 10 % of a core at half the
# peak) still comes out of the same two cores. SIKKA_BENCH_GEN_RT=0 runs it
# like everything else. The closed-loop peak never uses it.
open_loop_prefix=()
if [[ $gen_rt == 1 ]]; then
    realtime_prefix open_loop_prefix
    if [[ ${#open_loop_prefix[@]} -eq 0 ]]; then
        echo "  (no real-time priority for the generator here: open-loop runs at normal priority)"
        gen_rt=0
    fi
fi

# open_loop_run ARGS...: replay_run at the open-loop priority
open_loop_run() {
    run_no=$((run_no + 1))
    "${open_loop_prefix[@]}" "$replay" run "${run_common[@]}" --run-id "b$run_no" "$@" \
        >"$dir/run-$run_no.log" 2>&1
}

step "4. resident memory with $many_sessions sessions connected (fresh switch)"
per=$(((many_sessions + ${#participants[@]} - 1) / ${#participants[@]}))
rss_idle=$(rss_mb "$switch_pid")
"$replay" run "${run_common[@]}" --run-id many --sessions "$per" --rate 200 --count 400 \
    --hold 6 --connect-timeout 120 >"$dir/run-sessions.log" 2>&1 &
bg_pid=$!
for ((i = 0; i < 600; i++)); do
    grep -q 'holding' "$dir/run-sessions.log" && break
    kill -0 "$bg_pid" 2>/dev/null || break
    sleep 0.2
done
grep -q 'holding' "$dir/run-sessions.log" || {
    tail -n 20 "$dir/run-sessions.log" >&2
    die "the $many_sessions sessions did not all connect"
}
sleep 1
connected=$(ss -Htn state established "( sport = :$switch_port )" | wc -l)
rss_many=$(rss_mb "$switch_pid")
wait "$bg_pid" || {
    tail -n 20 "$dir/run-sessions.log" >&2
    die "the sessions run failed"
}
bg_pid=""
printf '  idle %s MB; with %d sessions connected: %s MB\n' "$rss_idle" "$connected" "$rss_many"

step "2. the switch at its maximum: closed loop"
best_n=0
best_rate=0
closed_json="{}"
for n in "${closed_counts[@]}"; do
    settle sikka
    replay_run --closed "$n" --sessions "$sessions" --duration "$probe_s" --warmup 1 \
        --json "$dir/probe-$n.json" || die "probe --closed $n failed ($dir/run-$run_no.log)"
    rate=$(jq -r .settled_rate "$dir/probe-$n.json")
    printf '  --closed %5d: %10.1f settled/s, p99 %s ms\n' "$n" "$rate" \
        "$(jq -r .latency_ms.corrected.p99 "$dir/probe-$n.json")"
    closed_json=$(jq -c --arg n "$n" --argjson r "$rate" '. + {($n): $r}' <<<"$closed_json")
    if awk -v a="$rate" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then
        best_rate=$rate
        best_n=$n
    fi
done
settle sikka
cpu0=$(cpu_ticks "$switch_pid")
pg0=$(pg_ticks)
replay_run --closed "$best_n" --sessions "$sessions" --duration "$peak_s" --warmup "$warmup_s" \
    --json "$dir/peak.json" --html "$dir/peak.html" --results "$dir/peak.tsv" ||
    die "the peak run failed ($dir/run-$run_no.log)"
cpu1=$(cpu_ticks "$switch_pid")
pg1=$(pg_ticks)
hz=$(getconf CLK_TCK)
switch_tps=$(jq -r .settled_rate "$dir/peak.json")
peak_answered_rate=$(jq -r .throughput "$dir/peak.json")
# where the time goes: CPU of the switch, PostgreSQL and the generator over
# the whole run (warmup included), per transfer answered in it
handled=$(jq -r .total_answered "$dir/peak.json")
cpu_us=$(per_transfer_us $((cpu1 - cpu0)) "$handled")
pg_cpu_us=$(per_transfer_us $((pg1 - pg0)) "$handled")
gen_cpu_us=$(awk -v s="$(jq -r '.cpu_s.user + .cpu_s.system' "$dir/peak.json")" -v n="$handled" \
    'BEGIN { printf "%.1f", (n > 0 ? s * 1e6 / n : 0) }')
printf '  --closed %d for %s s: %.1f settled/s (%.1f answered/s)\n' \
    "$best_n" "$peak_s" "$switch_tps" "$peak_answered_rate"
printf '  CPU per transfer: switch %s us, PostgreSQL %s us, generator %s us\n' \
    "$cpu_us" "$pg_cpu_us" "$gen_cpu_us"

echo "  verify: the ledger against the peak run's $(wc -l <"$dir/peak.tsv") results"
if SIKKA_DB_URI="postgresql://sikka_reader:$reader_pw@127.0.0.1:$pg_port/sikka" \
    "$replay" verify --results "$dir/peak.tsv" >"$dir/verify.log" 2>&1; then
    verify=OK
else
    verify=FAILED
    tail -n 20 "$dir/verify.log" >&2
fi
echo "  verify: $verify"

step "3. the switch at half its peak rate: latency, $half_repeats runs"
half_rate=$(awk -v r="$peak_answered_rate" 'BEGIN { printf "%.0f", r / 2 }')
half_p50=()
half_p99=()
half_p999=()
half_late_fraction=()
half_json="[]"
for ((h = 1; h <= half_repeats; h++)); do
    settle sikka
    open_loop_run --rate "$half_rate" --sessions "$sessions" --duration "$half_s" --warmup "$warmup_s" \
        --json "$dir/half-$h.json" --html "$dir/half-$h.html" --threshold 'p99<=20ms' || true
    [[ -s $dir/half-$h.json ]] || die "half-rate run $h failed ($dir/run-$run_no.log)"
    one=$(jq -c '{p50: .latency_ms.corrected.p50, p99: .latency_ms.corrected.p99,
                  p999: .latency_ms.corrected["p99.9"], achieved: .achieved_rate, late: .late,
                  sent: .sent, errors: .errors,
                  late_fraction: (if .sent > 0 then .late / .sent else 0 end)}' "$dir/half-$h.json")
    half_json=$(jq -c --argjson o "$one" '. + [$o]' <<<"$half_json")
    half_p50+=("$(jq -r .p50 <<<"$one")")
    half_p99+=("$(jq -r .p99 <<<"$one")")
    half_p999+=("$(jq -r .p999 <<<"$one")")
    half_late_fraction+=("$(jq -r .late_fraction <<<"$one")")
    printf '  run %d, --rate %s for %s s: achieved %.1f/s, p50 %s ms, p99 %s ms, p99.9 %s ms, late sends %s of %s\n' \
        "$h" "$half_rate" "$half_s" "$(jq -r .achieved <<<"$one")" "${half_p50[-1]}" "${half_p99[-1]}" \
        "${half_p999[-1]}" "$(jq -r .late <<<"$one")" "$(jq -r .sent <<<"$one")"
done
# median and worst of the repeats
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
worst() { printf '%s\n' "$@" | sort -g | tail -n 1; }
p50=$(median "${half_p50[@]}")
p99=$(median "${half_p99[@]}")
p999=$(median "${half_p999[@]}")
p99_worst=$(worst "${half_p99[@]}")
p999_worst=$(worst "${half_p999[@]}")
late_fraction=$(worst "${half_late_fraction[@]}")
half_errors=$(jq '[.[].errors] | add' <<<"$half_json")
rss_after=$(rss_mb "$switch_pid")
printf '  median of %d: p50 %s ms, p99 %s ms, p99.9 %s ms; worst p99 %s ms, p99.9 %s ms; late sends at most %s\n' \
    "$half_repeats" "$p50" "$p99" "$p999" "$p99_worst" "$p999_worst" \
    "$(awk -v f="$late_fraction" 'BEGIN { printf "%.3f %%", f * 100 }')"

step "3b. the highest open-loop rate with p99 <= 20 ms (a search, one run per rate)"
# Half the peak is where the targets are set; what an operator can plan
# with is the rate that meets 20 ms. When the half-rate runs met it (their
# median), that is half the peak; otherwise a bisection below it, one run of
# $slo_s s per rate from a settled database, $slo_steps steps (the first at
# a quarter of the peak). One run per rate on a noisy machine: a rate that
# met the bound once, not a guarantee; every run is in the JSON.
# within_20ms P99: P99 is a measured latency of at most 20 ms (a run that
# measured none, nothing answered, meets nothing)
within_20ms() {
    [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v p="$1" 'BEGIN { exit !(p <= 20) }'
}
slo_json="[]"
if within_20ms "$p99"; then
    slo_rate=$half_rate
    slo_p99=$p99
    echo "  half the peak met it: $slo_rate/s"
else
    slo_lo=0
    slo_hi=$half_rate
    slo_rate=0
    slo_p99=null
    for ((k = 1; k <= slo_steps; k++)); do
        rate=$(((slo_lo + slo_hi) / 2))
        settle sikka
        open_loop_run --rate "$rate" --sessions "$sessions" --duration "$slo_s" --warmup 2 \
            --json "$dir/slo-$k.json" || true
        [[ -s $dir/slo-$k.json ]] || die "the run at $rate/s of step 3b failed ($dir/run-$run_no.log)"
        one=$(jq -c --argjson rate "$rate" '{rate: $rate, achieved: .achieved_rate,
                      p50: .latency_ms.corrected.p50, p99: .latency_ms.corrected.p99,
                      late: .late, sent: .sent, errors: .errors}' "$dir/slo-$k.json")
        slo_json=$(jq -c --argjson o "$one" '. + [$o]' <<<"$slo_json")
        p=$(jq -r .p99 <<<"$one")
        if within_20ms "$p"; then
            slo_lo=$rate
            slo_rate=$rate
            slo_p99=$p
            verdict=met
        else
            slo_hi=$rate
            verdict=missed
        fi
        printf '  --rate %s for %s s: p50 %s ms, p99 %s ms (%s)\n' "$rate" "$slo_s" \
            "$(jq -r .p50 <<<"$one")" "$p" "$verdict"
    done
    if [[ $slo_rate == 0 ]]; then
        echo "  no rate tried met it (the lowest was $rate/s)"
    else
        echo "  highest rate tried that met it: $slo_rate/s (p99 $slo_p99 ms)"
    fi
fi

step "5. victim latency with and without a flooding participant"
flood_rate=$(awk -v r="$peak_answered_rate" 'BEGIN { printf "%.0f", r / 4 }')

# flood_victim NAME: the victim load at $flood_rate from a settled database,
# its report in $dir/flood-NAME.json; sets victim_cpu (the switch's CPU
# during the run, % of one core)
flood_victim() {
    settle sikka
    local c0 c1 t0 t1
    c0=$(cpu_ticks "$switch_pid")
    t0=$(secs)
    open_loop_run --rate "$flood_rate" --sessions "$sessions" --duration "$flood_s" \
        --warmup "$flood_warmup_s" --json "$dir/flood-$1.json" || true
    c1=$(cpu_ticks "$switch_pid")
    t1=$(secs)
    [[ -s $dir/flood-$1.json ]] || die "the victim run ($1) failed ($dir/run-$run_no.log)"
    victim_cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.0f", d / hz / (b - a) * 100 }')
    printf '  %-8s --rate %s: achieved %.1f/s, p50 %s ms, p99 %s ms, errors %s; switch CPU %s %%\n' \
        "$1" "$flood_rate" "$(jq -r .achieved_rate "$dir/flood-$1.json")" \
        "$(jq -r .latency_ms.corrected.p50 "$dir/flood-$1.json")" \
        "$(jq -r .latency_ms.corrected.p99 "$dir/flood-$1.json")" \
        "$(jq -r .errors "$dir/flood-$1.json")" "$victim_cpu"
}

flood_victim alone
cpu_alone=$victim_cpu
# pings (each a pong to write), half of the sessions never reading: the
# harshest flood the switch lets last. (Malformed frames get a session
# closed after session_max_malformed_per_second of them: such a flood is
# over within a second.) It floods until the victim's run is over, then is
# told to stop (SIGTERM) and reports.
flood_args=(--sessions "$flood_sessions" --mode pings)
((flood_sessions < 2)) || flood_args+=("--no-read=$((flood_sessions / 2))")
"$replay" flood --participant "$flooder" --connect "127.0.0.1:$switch_port" --pki "$pki" \
    "${flood_args[@]}" --seconds $((flood_s + flood_warmup_s + 120)) >"$dir/flood.log" 2>&1 &
bg_pid=$!
for ((i = 0; i < 100; i++)); do
    grep -q 'flooding' "$dir/flood.log" && break
    kill -0 "$bg_pid" 2>/dev/null || break
    sleep 0.2
done
grep -q 'flooding' "$dir/flood.log" || {
    tail -n 20 "$dir/flood.log" >&2
    die "the flooder did not connect ($dir/flood.log)"
}
flooder_c0=$(cpu_ticks "$bg_pid")
flooder_t0=$(secs)
flood_victim flooded
cpu_flooded=$victim_cpu
flooder_cpu=$(awk -v d=$(($(cpu_ticks "$bg_pid") - flooder_c0)) -v hz="$hz" -v a="$flooder_t0" \
    -v b="$(secs)" 'BEGIN { printf "%.0f", d / hz / (b - a) * 100 }')
kill -TERM "$bg_pid" 2>/dev/null || true
wait "$bg_pid" || true # 1: the switch closed every flooding session, a result too
bg_pid=""
flood_frames=$(sed -n 's/^  frames written *\([0-9]*\) .*/\1/p' "$dir/flood.log")
[[ -n $flood_frames ]] || {
    tail -n 20 "$dir/flood.log" >&2
    die "the flooder reported nothing ($dir/flood.log)"
}
flood_p50_alone=$(jq -r .latency_ms.corrected.p50 "$dir/flood-alone.json")
flood_p99_alone=$(jq -r .latency_ms.corrected.p99 "$dir/flood-alone.json")
flood_p50_flooded=$(jq -r .latency_ms.corrected.p50 "$dir/flood-flooded.json")
flood_p99_flooded=$(jq -r .latency_ms.corrected.p99 "$dir/flood-flooded.json")
flood_errors_flooded=$(jq -r .errors "$dir/flood-flooded.json")
flood_p99_ratio=$(awk -v f="$flood_p99_flooded" -v a="$flood_p99_alone" \
    'BEGIN { printf "%.2f", (a > 0 ? f / a : 0) }')
sed -n 's/^  /  flooder: /p' "$dir/flood.log"
printf '  flooded p99 / alone p99: %s (switch CPU %s %% alone, %s %% flooded; flooder %s %%)\n' \
    "$flood_p99_ratio" "$cpu_alone" "$cpu_flooded" "$flooder_cpu"

# ---------------------------------------------------------------- 6. alias directory (issue 11)
# Self-contained: the switch is restarted with a directory of
# $SIKKA_BENCH_ALIASES aliases (generate_series) plus the capture's creditors
# by alias (sikka-replay run --by-alias: a wallet account is a mobile number
# already; the bank's account is paid by 0399 and its last 7 digits), and
# measured: its start (the COPY of the directory, in the switch's log) and
# resident memory; alias lookups a second (sikka-replay lookups); and a
# plain runs and pay-by-alias runs at the same rate (plain, alias, alias,
# plain).
step "6. the alias directory: load at start, lookups a second, pay by alias beside plain"
alias_count=${SIKKA_BENCH_ALIASES:-1000000}
alias_s=${SIKKA_BENCH_ALIAS_S:-10}
stop_switch
psql_super sikka >/dev/null <<SQL
INSERT INTO aliases (alias, alias_type, participant, account, holder_name)
SELECT '923' || lpad((c.i - 1)::text, 2, '0') || lpad(a::text, 7, '0'), 'mobile', c.code,
       '03' || lpad((c.i - 1)::text, 2, '0') || lpad(a::text, 7, '0'), 'Wallet Customer ' || a
  FROM unnest(ARRAY['JAZZ', 'EASY', 'SADA', 'NAYA', 'KOKO']) WITH ORDINALITY c(code, i),
       generate_series(0, 9999) a
UNION ALL
SELECT '92399' || lpad(a::text, 7, '0'), 'mobile', 'MEZN', 'PK36MEZN' || lpad(a::text, 16, '0'),
       'Supplier Account ' || a
  FROM generate_series(0, 9999) a
ON CONFLICT DO NOTHING;
INSERT INTO aliases (alias, alias_type, participant, account, holder_name)
SELECT (923100000000 + i)::text, 'mobile', (ARRAY['JAZZ', 'EASY', 'SADA', 'NAYA', 'KOKO', 'MEZN'])[1 + i % 6],
       'ACC' || lpad(i::text, 12, '0'), 'Customer Name ' || i
  FROM generate_series(1, $alias_count) i
ON CONFLICT DO NOTHING;
VACUUM (ANALYZE) aliases;
CHECKPOINT;
SQL
alias_rows=$(psql_super sikka -At -c "SELECT count(*) FROM aliases")
alias_conf=$dir/sikka-alias.conf
# the same switch; the log at info for the directory's load line (and every
# lookup, as deployed); no idempotency preload, so that the memory measured
# is the directory's; lookups unlimited for the measurement
{
    grep -v -E '^(log_level|idempotency_cache_seconds|alias_lookup_rate|alias_lookup_burst) ' "$conf"
    echo 'log_level = "info"'
    echo 'idempotency_cache_seconds = 0'
    echo 'alias_lookup_rate = 10000000'
    echo 'alias_lookup_burst = 100000000'
} >"$alias_conf"
chmod 600 "$alias_conf"
alias_t0=$(secs)
(close_extra_fds && exec "$switch_bin" -c "$alias_conf" >>"$dir/switch-stdio.log" 2>&1 </dev/null) &
switch_pid=$!
for ((i = 0; i < 600; i++)); do
    kill -0 "$switch_pid" 2>/dev/null || die "sikka-switch exited at start (log: $switch_log)"
    listening "$switch_port" && break
    sleep 0.05
done
listening "$switch_port" || die "sikka-switch does not listen on $switch_port (log: $switch_log)"
alias_start_s=$(awk -v a="$alias_t0" -v b="$(secs)" 'BEGIN { printf "%.2f", b - a }')
alias_rss_mb=$(rss_mb "$switch_pid")
alias_load_ms=$(sed -n 's/.*event=aliases_loaded count=\([0-9]*\) ms=\([0-9]*\).*/\2/p' "$switch_log" | tail -n 1)
alias_loaded=$(sed -n 's/.*event=aliases_loaded count=\([0-9]*\) ms=.*/\1/p' "$switch_log" | tail -n 1)
[[ -n $alias_load_ms && $alias_loaded == "$alias_rows" ]] ||
    die "the switch did not say it loaded the $alias_rows aliases ($switch_log)"
printf '  %s aliases: loaded in %s ms, the switch listening %s s after exec, resident %s MB (idle without them: %s MB)\n' \
    "$alias_loaded" "$alias_load_ms" "$alias_start_s" "$alias_rss_mb" "$rss_idle"
"$replay" lookups --participant JAZZ --connect "127.0.0.1:$switch_port" --pki "$pki" \
    --sessions "$sessions" --outstanding 64 --seconds "$alias_s" --base 923100000001 \
    --count "$alias_count" >"$dir/lookups.log" 2>&1 || {
    tail -n 20 "$dir/lookups.log" >&2
    die "the lookups run failed ($dir/lookups.log)"
}
alias_lookups_per_s=$(sed -n 's/^  answered\/s *//p' "$dir/lookups.log")
alias_lookups_found=$(sed -n 's/^  found *//p' "$dir/lookups.log")
printf '  lookups: %s a second (%s found)\n' "$alias_lookups_per_s" "$alias_lookups_found"
alias_rate=$(awk -v r="$peak_answered_rate" 'BEGIN { printf "%.0f", r / 4 }')
# In the order plain, alias, alias, plain (ABBA): each run writes to a
# database the runs before it have grown, and the mean of a kind's two runs
# cancels that drift, which one run of each (alias always second) did not.
declare -A pay_p99_sum=([plain]=0 [alias]=0)
alias_runs_json="[]"
i=0
for kind in plain alias alias plain; do
    i=$((i + 1))
    settle sikka
    by=()
    [[ $kind == alias ]] && by=(--by-alias)
    out=$dir/alias-$i-$kind.json
    open_loop_run "${by[@]}" --rate "$alias_rate" --sessions "$sessions" --duration "$alias_s" \
        --warmup "$warmup_s" --json "$out" || true
    [[ -s $out ]] || die "the $kind run of step 6 failed ($dir/run-$run_no.log)"
    p99_run=$(jq -r .latency_ms.corrected.p99 "$out")
    printf '  %-5s --rate %s: achieved %.1f/s, p50 %s ms, p99 %s ms, errors %s\n' "$kind" \
        "$alias_rate" "$(jq -r .achieved_rate "$out")" "$(jq -r .latency_ms.corrected.p50 "$out")" \
        "$p99_run" "$(jq -r .errors "$out")"
    pay_p99_sum[$kind]=$(awk -v a="${pay_p99_sum[$kind]}" -v b="$p99_run" 'BEGIN { print a + b }')
    alias_runs_json=$(jq -c --arg k "$kind" --argjson p "$p99_run" \
        --argjson s "$(jq -r .settled_rate "$out")" '. + [{kind: $k, p99_ms: $p, settled_rate: $s}]' \
        <<<"$alias_runs_json")
    [[ $kind == alias ]] && alias_pay_settled=$(jq -r .settled_rate "$out")
done
plain_pay_p99=$(awk -v a="${pay_p99_sum[plain]}" 'BEGIN { printf "%.3f", a / 2 }')
alias_pay_p99=$(awk -v a="${pay_p99_sum[alias]}" 'BEGIN { printf "%.3f", a / 2 }')
printf '  mean of two runs each: plain p99 %s ms, alias p99 %s ms\n' "$plain_pay_p99" "$alias_pay_p99"
# ---------------------------------------------------------------- end of 6.

stop_switch
t_end=$(secs)
finished_at=$(date -u +%FT%TZ)

# ---------------------------------------------------------------- result

ratio=$(awk -v s="$switch_tps" -v b="$baseline_tps" 'BEGIN { printf "%.2f", s / b }')
meets() { awk "BEGIN { exit !($1) }" && echo true || echo false; }
t_ratio=$(meets "$ratio >= 5")
t_p99=$(meets "$p99 <= 20")
t_p999=$(meets "$p999 <= 40")
t_late=$(meets "$late_fraction < 0.001")
t_rss=$(meets "$rss_many <= 200")
t_flood=$(meets "$flood_p99_flooded <= 2 * $flood_p99_alone")
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
baselines_json=$(jq -n \
    --argjson st "${base_tps[schema]}" --argjson sc "${best_clients[schema]}" \
    --argjson sl "${base_latency[schema]}" --argjson sp "${probe_json[schema]}" \
    --argjson su "${base_pg_us[schema]}" \
    --argjson pt "${base_tps[plain]}" --argjson pc "${best_clients[plain]}" \
    --argjson pl "${base_latency[plain]}" --argjson pp "${probe_json[plain]}" \
    --argjson pu "${base_pg_us[plain]}" \
    '{schema: {what: "the switch'"'"'s schema, one transaction per transfer",
               tps: $st, clients: $sc, latency_ms: $sl, probe_tps: $sp, pg_cpu_us_per_transfer: $su},
      plain: {what: "a plain ledger: one function call per transfer",
              tps: $pt, clients: $pc, latency_ms: $pl, probe_tps: $pp, pg_cpu_us_per_transfer: $pu}}')

jq -n \
    --arg started_at "$started_at" --arg finished_at "$finished_at" \
    --argjson duration_s "$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')" \
    --argjson baseline_tps "$baseline_tps" --arg baseline_name "$baseline_name" \
    --argjson baselines "$baselines_json" \
    --argjson switch_tps "$switch_tps" --argjson switch_answered_rate "$peak_answered_rate" \
    --argjson switch_closed "$best_n" --argjson switch_probe "$closed_json" \
    --argjson switch_sessions "$((sessions * ${#participants[@]}))" \
    --argjson ratio "$ratio" \
    --argjson p50_ms "$p50" --argjson p99_ms "$p99" --argjson p999_ms "$p999" \
    --argjson p99_worst "$p99_worst" --argjson p999_worst "$p999_worst" \
    --argjson late_fraction "$late_fraction" --argjson half_runs "$half_json" \
    --argjson half_rate "$half_rate" --argjson half_errors "$half_errors" \
    --argjson slo_rate "$slo_rate" --argjson slo_p99 "$slo_p99" --argjson slo_runs "$slo_json" \
    --argjson cpu_us "$cpu_us" --argjson pg_cpu_us "$pg_cpu_us" --argjson gen_cpu_us "$gen_cpu_us" \
    --argjson rss_after "$rss_after" --argjson rss_idle "$rss_idle" \
    --argjson rss_many "$rss_many" --argjson connected "$connected" \
    --arg verify "$verify" \
    --argjson flood_rate "$flood_rate" --argjson flood_frames "$flood_frames" \
    --argjson flood_p50_alone "$flood_p50_alone" --argjson flood_p99_alone "$flood_p99_alone" \
    --argjson flood_p50_flooded "$flood_p50_flooded" \
    --argjson flood_p99_flooded "$flood_p99_flooded" --argjson flood_ratio "$flood_p99_ratio" \
    --argjson flood_errors "$flood_errors_flooded" --argjson cpu_alone "$cpu_alone" \
    --argjson cpu_flooded "$cpu_flooded" --argjson flooder_cpu "$flooder_cpu" \
    --argjson t_ratio "$t_ratio" --argjson t_p99 "$t_p99" --argjson t_p999 "$t_p999" \
    --argjson t_late "$t_late" --argjson t_rss "$t_rss" --argjson t_flood "$t_flood" \
    --arg cpu_model "$cpu_model" --argjson cores "$(nproc)" --argjson mem_mb "$mem_mb" \
    --arg kernel "$(uname -r)" --arg pg "$pg_version" --arg fsync "$pg_fsync" \
    --arg sync_commit "$pg_sync_commit" --arg commit "$commit" --argjson dirty "$dirty" \
    --argjson probe_s "$probe_s" --argjson baseline_s "$baseline_s" --argjson peak_s "$peak_s" \
    --argjson half_s "$half_s" --argjson half_repeats "$half_repeats" \
    --argjson slo_s "$slo_s" --argjson slo_steps "$slo_steps" \
    --argjson warmup_s "$warmup_s" --argjson records "$records" \
    --argjson flood_s "$flood_s" --argjson flood_sessions "$flood_sessions" \
    --argjson gen_rt "$([[ $gen_rt == 1 ]] && echo true || echo false)" \
    '{
      baseline_tps: $baseline_tps, baseline: $baseline_name, baselines: $baselines,
      switch_tps: $switch_tps, ratio: $ratio,
      p50_ms: $p50_ms, p99_ms: $p99_ms, p999_ms: $p999_ms,
      p99_ms_worst: $p99_worst, p999_ms_worst: $p999_worst,
      late_send_fraction: $late_fraction,
      half_rate: $half_rate, half_runs: $half_runs, half_errors: $half_errors,
      p99_20ms_rate: $slo_rate, p99_20ms_rate_p99_ms: $slo_p99, p99_20ms_runs: $slo_runs,
      switch_closed: $switch_closed, switch_sessions: $switch_sessions,
      switch_answered_rate: $switch_answered_rate, switch_probe_tps: $switch_probe,
      cpu_us_per_transfer: {switch: $cpu_us, postgresql: $pg_cpu_us, generator: $gen_cpu_us},
      switch_cpu_us_per_transfer: $cpu_us, switch_rss_mb: $rss_after,
      rss_idle_mb: $rss_idle, rss_1000_sessions_mb: $rss_many, sessions_connected: $connected,
      verify: $verify,
      flood_victim_rate: $flood_rate, flood_victim_p99_ms_alone: $flood_p99_alone,
      flood_victim_p99_ms_flooded: $flood_p99_flooded, flood_p99_ratio: $flood_ratio,
      flood_frames_sent: $flood_frames,
      flood_victim_p50_ms_alone: $flood_p50_alone, flood_victim_p50_ms_flooded: $flood_p50_flooded,
      flood_victim_errors_flooded: $flood_errors,
      flood_switch_cpu_pct_alone: $cpu_alone, flood_switch_cpu_pct_flooded: $cpu_flooded,
      flood_flooder_cpu_pct: $flooder_cpu,
      targets: {switch_5x_stronger_baseline: $t_ratio, p99_at_half_rate_20ms: $t_p99,
                p999_at_half_rate_40ms: $t_p999, late_sends_under_0_1_percent: $t_late,
                rss_1000_sessions_200mb: $t_rss, flooded_p99_within_2x: $t_flood},
      started_at: $started_at, finished_at: $finished_at, duration_s: $duration_s,
      machine: {cpu: $cpu_model, cores: $cores, memory_mb: $mem_mb, kernel: $kernel,
                postgresql: $pg, fsync: $fsync, synchronous_commit: $sync_commit},
      build: {commit: $commit, dirty: $dirty, type: "Release"},
      settings: {probe_s: $probe_s, baseline_s: $baseline_s, peak_s: $peak_s, half_s: $half_s,
                 half_repeats: $half_repeats, warmup_s: $warmup_s, flood_s: $flood_s,
                 p99_20ms_run_s: $slo_s, p99_20ms_steps: $slo_steps,
                 generator_realtime_open_loop: $gen_rt,
                 flood_sessions: $flood_sessions, capture_records: $records}
    }' >"$dir/result.json"

# step 6's figures (the alias directory), beside the rest
jq --argjson alias_lookups_per_s "$alias_lookups_per_s" \
    --argjson alias_pay_p99_ms "$alias_pay_p99" --argjson plain_pay_p99_ms "$plain_pay_p99" \
    --argjson alias_rate "$alias_rate" --argjson alias_pay_settled "$alias_pay_settled" \
    --argjson aliases "$alias_loaded" --argjson alias_load_ms "$alias_load_ms" \
    --argjson alias_start_s "$alias_start_s" --argjson alias_rss_mb "$alias_rss_mb" \
    --argjson alias_pay_runs "$alias_runs_json" \
    '. + {alias_lookups_per_s: $alias_lookups_per_s, alias_pay_p99_ms: $alias_pay_p99_ms,
          plain_pay_p99_ms_same_run: $plain_pay_p99_ms, alias_pay_rate: $alias_rate,
          alias_pay_settled_rate: $alias_pay_settled, alias_pay_runs: $alias_pay_runs,
          alias_directory: {aliases: $aliases, load_ms: $alias_load_ms,
                            start_s: $alias_start_s, rss_mb: $alias_rss_mb,
                            load_under_10s: ($alias_start_s < 10),
                            rss_under_200mb: ($alias_rss_mb < 200)}}' \
    "$dir/result.json" >"$dir/result.json.tmp" && mv "$dir/result.json.tmp" "$dir/result.json"

# the history: one line per run in loadtest/results.tsv, and README's table
# rewritten from it (SIKKA_BENCH_HISTORY=0 leaves both alone, e.g. for a
# smoke run with short settings)
if [[ $history == 1 ]]; then
    loadtest/results.sh append "$dir/result.json"
    loadtest/results.sh readme
fi

mark() { [[ $1 == true ]] && echo "met" || echo "MISSED"; }
row() { printf '  %-42s %s\n' "$1" "$2"; }
echo
echo "Sikka benchmark, $started_at: $(nproc) cores ($cpu_model), PostgreSQL $pg_version"
echo "fsync=$pg_fsync synchronous_commit=$pg_sync_commit; commit $commit$([[ $dirty == true ]] && echo " (modified)")"
echo
row "baseline: switch's schema, 1 tx per transfer" \
    "$(printf '%8.1f tps  (%d pgbench clients)' "${base_tps[schema]}" "${best_clients[schema]}")"
row "baseline: plain ledger, 1 call per transfer" \
    "$(printf '%8.1f tps  (%d pgbench clients)' "${base_tps[plain]}" "${best_clients[plain]}")"
row "sikka-switch at its maximum" \
    "$(printf '%8.1f tps  (settled transfers/s, --closed %d)' "$switch_tps" "$best_n")"
row "ratio to the stronger baseline ($baseline_name)" \
    "$(printf '%8.2f x    target >= 5: %s' "$ratio" "$(mark "$t_ratio")")"
row "latency at half the peak ($half_rate/s)" \
    "median of $half_repeats: p50 $p50 ms, p99 $p99 ms, p99.9 $p999 ms"
row "" "target p99 <= 20 ms: $(mark "$t_p99"); p99.9 <= 40 ms: $(mark "$t_p999")"
row "  worst of the $half_repeats" "p99 $p99_worst ms, p99.9 $p999_worst ms"
row "  late sends (worst run)" \
    "$(awk -v f="$late_fraction" 'BEGIN { printf "%8.3f %%", f * 100 }')  target < 0.1 %: $(mark "$t_late")"
row "highest rate with p99 <= 20 ms (step 3b)" \
    "$(if [[ $slo_rate == 0 ]]; then echo "none of the rates tried"; else echo "$slo_rate/s (p99 $slo_p99 ms)"; fi)"
row "CPU per transfer at the peak" \
    "switch $cpu_us us, PostgreSQL $pg_cpu_us us, generator $gen_cpu_us us"
row "PostgreSQL CPU per transfer, baselines" \
    "schema ${base_pg_us[schema]} us, plain ${base_pg_us[plain]} us"
row "switch resident memory after the runs" "$(printf '%8s MB' "$rss_after")"
row "with $connected sessions connected" \
    "$(printf '%8s MB  (idle %s MB)  target <= 200 MB: %s' "$rss_many" "$rss_idle" "$(mark "$t_rss")")"
row "ledger verified after the peak run" "$(printf '%8s' "$verify")"
row "victim at $flood_rate/s, alone" "p50 $flood_p50_alone ms, p99 $flood_p99_alone ms"
row "  beside a flooder ($flood_sessions sessions)" \
    "p50 $flood_p50_flooded ms, p99 $flood_p99_flooded ms  ($flood_frames frames flooded)"
row "  flooded p99 / alone p99" \
    "$(printf '%8s x    target flooded p99 <= 2x alone: %s' "$flood_p99_ratio" "$(mark "$t_flood")")"
row "alias directory of $alias_loaded at start" \
    "loaded in $alias_load_ms ms, listening after $alias_start_s s, $alias_rss_mb MB resident"
row "alias lookups" "$(printf '%8s /s' "$alias_lookups_per_s")"
row "pay by alias beside plain ($alias_rate/s)" "p99 $alias_pay_p99 ms (plain $plain_pay_p99 ms), mean of 2 each"
echo
echo "  written: $dir/result.json (reports: $dir/peak.html, $dir/half-*.html)"
[[ $history == 1 ]] && echo "  appended to loadtest/results.tsv; README's table rewritten from it"
echo "  reproduce: loadtest/bench.sh"

[[ $verify == OK ]] || exit 1
if [[ $strict == 1 && ($t_ratio != true || $t_p99 != true || $t_p999 != true || $t_late != true ||
    $t_rss != true || $t_flood != true) ]]; then
    echo "bench: a target was missed (SIKKA_BENCH_STRICT=1)" >&2
    exit 1
fi
exit 0
