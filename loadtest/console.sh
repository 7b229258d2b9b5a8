#!/usr/bin/env bash
# loadtest/console.sh — what watching the web console costs the payments:
# sikka-replay at a steady open-loop rate through the local stack, in rounds
# that alternate "quiet" (nobody on the console) and "watched" (a browser
# on the console), and the payments' latency compared between the two.
#
# Usage: loadtest/console.sh
#
# It starts (or reuses) the local stack (deploy/local.sh up), raises the
# demo participants' caps out of the way (four-eyes: supervisor proposes,
# supervisor2 approves) and writes a capture. Then $SIKKA_CONSOLE_ROUNDS
# pairs of runs, quiet then watched, each sikka-replay run at
# $SIKKA_CONSOLE_RATE transfers/s for $SIKKA_CONSOLE_S seconds after a
# $SIKKA_CONSOLE_WARMUP_S warmup. "Watched": tests/browser/watch.mjs, headless
# chromium with the viewer's certificate, keeps the dashboard open (it polls
# /api/v1/stats and /api/v1/status twice a second and redraws its charts)
# and in a second tab searches the latest transfers and reloads the
# positions every 5 s. The browser runs on the same two cores as the
# switch, PostgreSQL and the load generator, so its CPU counts against the
# payments too.
#
# Figures (build/bench/console.json, and a table):
#   p99_quiet_ms, p99_watched_ms   median over the rounds of each run's p99
#                                  end-to-end latency (sikka-replay's
#                                  corrected latency, from each transfer's
#                                  due time to its ACSC)
#   p99_ratio                      p99_watched_ms / p99_quiet_ms (target <= 1.10)
#   updates_per_s_min              the fewest dashboard redraws per second in
#                                  a watched run (target >= 1)
#   max_gap_ms                     the longest time between two redraws in
#                                  any watched run (target <= 1000)
# Exit 0 when the measurements were made and every run settled what it sent
# (targets met or not; SIKKA_CONSOLE_STRICT=1 makes a missed target exit 1).
#
# Environment: SIKKA_CONSOLE_RATE (200), SIKKA_CONSOLE_S (20),
# SIKKA_CONSOLE_WARMUP_S (3), SIKKA_CONSOLE_ROUNDS (3), SIKKA_CONSOLE_STRICT (0).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
cd "$SIKKA_ROOT"

[[ $# -eq 0 ]] || {
    sed -n '/^# Usage:/,/^# It starts/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

rate=${SIKKA_CONSOLE_RATE:-200}
run_s=${SIKKA_CONSOLE_S:-20}
warmup_s=${SIKKA_CONSOLE_WARMUP_S:-3}
rounds=${SIKKA_CONSOLE_ROUNDS:-3}
strict=${SIKKA_CONSOLE_STRICT:-0}
out=build/bench/console
replay=build/bin/sikka-replay
pki=var/pki

say() {
    printf '==> %s\n' "$*"
}

watch_pid=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    if [[ -n $watch_pid ]] && kill -0 "$watch_pid" 2>/dev/null; then
        kill -TERM "$watch_pid" 2>/dev/null || true
        wait "$watch_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

say "the local stack (deploy/local.sh up; log $out/up.log)"
mkdir -p "$out"
rm -f -- "$out"/*.json "$out"/*.txt
deploy/install-deps.sh jq >"$out/deps.log" 2>&1 || die "deploy/install-deps.sh failed (see $out/deps.log)"
deploy/local.sh up >"$out/up.log" 2>&1 || {
    tail -n 30 "$out/up.log" >&2
    die "deploy/local.sh up failed"
}
browser_deps >"$out/npm.log" 2>&1 || die "npm ci in tests/browser failed (see $out/npm.log)"
connect=127.0.0.1:7443
admin=127.0.0.1:8443

say "caps out of the way (four-eyes), the capture"
caps_four_eyes "$admin" 100000000000.00 JAZZ EASY SADA NAYA KOKO MEZN
"$replay" gen -o "$out/capture.bin" --count 100000 --rate "$rate" --reject-rate 0 \
    --malformed-rate 0 --retry-rate 0 --seed 11 >/dev/null

# each run's msg_ids carry this script run's tag: a run again on the same
# database sends new keys (sikka-replay allows 12 characters: tag + name)
run_tag=$(printf '%x' $(($(date +%s) % 65536)))

# the generator at a real-time priority, as in loadtest/bench.sh's open-loop
# runs: its own scheduling delays are not the console's cost
realtime_prefix gen_prefix

# one_run NAME: sikka-replay at $rate for warmup + run_s seconds
one_run() {
    local name=$1
    "${gen_prefix[@]}" "$replay" run "$out/capture.bin" --connect "$connect" --pki "$pki" --sessions 2 \
        --rate "$rate" --warmup "$warmup_s" --duration "$run_s" --drain 10 \
        --run-id "$run_tag${name//[^a-z0-9]/}" --json "$out/$name.json" --quiet \
        >"$out/$name.txt" 2>&1 || die "sikka-replay run $name failed (see $out/$name.txt)"
    local sent settled
    sent=$(jq '.sent' "$out/$name.json")
    settled=$(jq '.settled' "$out/$name.json")
    [[ $sent -gt 0 && $sent == "$settled" ]] || die "run $name: $settled of $sent settled (see $out/$name.txt)"
    printf '   %-10s p99 %8.2f ms  (%s transfers, all settled)\n' "$name" \
        "$(jq '.latency_ms.corrected.p99' "$out/$name.json")" "$sent"
}

# watched_run NAME MODE: one_run with the console watched, MODE "browser"
# (chromium drawing the pages) or "requests" (the pages' requests only)
watched_run() {
    local name=$1 mode=$2 flag=""
    [[ $mode == requests ]] && flag=--requests
    # the watcher is up and polling before the measured run starts
    SIKKA_CONSOLE_URL=https://$admin SIKKA_VIEWER_CERT=$pki/viewer.crt SIKKA_VIEWER_KEY=$pki/viewer.key \
        NODE_EXTRA_CA_CERTS=$pki/ca.crt \
        node tests/browser/watch.mjs $((warmup_s + run_s + 4)) $flag >"$out/watch-$name.json" \
        2>"$out/watch-$name.log" &
    watch_pid=$!
    sleep 4
    kill -0 "$watch_pid" 2>/dev/null || die "the watcher stopped early (see $out/watch-$name.log)"
    one_run "$name"
    wait "$watch_pid" || die "the watcher failed (see $out/watch-$name.log)"
    watch_pid=""
    printf '   %-10s %s updates in %s s (%s/s), longest gap %s ms, %s searches\n' "" \
        "$(jq '.updates' "$out/watch-$name.json")" "$(jq '.seconds' "$out/watch-$name.json")" \
        "$(jq '.updates_per_s' "$out/watch-$name.json")" "$(jq '.max_gap_ms' "$out/watch-$name.json")" \
        "$(jq '.searches' "$out/watch-$name.json")"
}

# the order turns each round, so that drift over the runs (the ledger
# growing, the machine's other load) falls on every kind alike
orders=("quiet requests browser" "requests browser quiet" "browser quiet requests")
for ((r = 1; r <= rounds; r++)); do
    say "round $r of $rounds ($rate transfers/s, ${warmup_s} s warmup + ${run_s} s each)"
    for kind in ${orders[$(((r - 1) % 3))]}; do
        case $kind in
        quiet) one_run "quiet-$r" ;;
        requests) watched_run "reqs-$r" requests ;;
        browser) watched_run "browser-$r" browser ;;
        esac
    done
done

# the figures: medians of the p99s, the worst of the dashboard's cadence
jq -n --argjson rate "$rate" --argjson run_s "$run_s" --argjson rounds "$rounds" \
    --slurpfile quiet <(cat "$out"/quiet-*.json) --slurpfile requests <(cat "$out"/reqs-*.json) \
    --slurpfile browser <(cat "$out"/browser-*.json) \
    --slurpfile watch <(cat "$out"/watch-browser-*.json) '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                       else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def p99s: map(.latency_ms.corrected.p99);
    ($quiet | p99s | median) as $q
    | ($requests | p99s | median) as $w
    | ($browser | p99s | median) as $b
    | {
        rate: $rate, run_s: $run_s, rounds: $rounds,
        p99_quiet_ms: $q, p99_requests_ms: $w, p99_browser_ms: $b,
        p99_ratio: ($w / $q), p99_browser_ratio: ($b / $q),
        p99_quiet_runs_ms: ($quiet | p99s), p99_requests_runs_ms: ($requests | p99s),
        p99_browser_runs_ms: ($browser | p99s),
        updates_per_s_min: ($watch | map(.updates_per_s) | min),
        max_gap_ms: ($watch | map(.max_gap_ms) | max),
        targets_met: (($w / $q) <= 1.10 and ($watch | map(.updates_per_s) | min) >= 1
                      and ($watch | map(.max_gap_ms) | max) <= 1000)
      }' >build/bench/console.json

jq -r '
    def r2: . * 100 | round / 100;
    "\nconsole load (build/bench/console.json), \(.rate) transfers/s, \(.rounds) rounds of \(.run_s) s",
    "  p99 quiet (median)                 \(.p99_quiet_ms | r2) ms   runs: \(.p99_quiet_runs_ms | map(r2))",
    "  p99 with the console requests     \(.p99_requests_ms | r2) ms   runs: \(.p99_requests_runs_ms | map(r2))",
    "  ratio                              \(.p99_ratio * 1000 | round / 1000)   (target <= 1.10)",
    "  p99 with chromium on these cores   \(.p99_browser_ms | r2) ms   runs: \(.p99_browser_runs_ms | map(r2))",
    "  ratio (browser on the switch box)  \(.p99_browser_ratio * 1000 | round / 1000)   (no target: operators browse from their own machines)",
    "  dashboard redraws/s, fewest        \(.updates_per_s_min)   (target >= 1)",
    "  longest gap between two redraws    \(.max_gap_ms) ms   (target <= 1000)"' build/bench/console.json
if [[ $(jq '.targets_met' build/bench/console.json) == true ]]; then
    echo "console: targets met"
else
    echo "console: a target was missed"
    [[ $strict == 1 ]] && exit 1
fi
exit 0
