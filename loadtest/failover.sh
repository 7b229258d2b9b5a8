#!/usr/bin/env bash
# loadtest/failover.sh — the availability test on the HA stack: how long
# payments stop when the PostgreSQL primary's machine dies and when the
# active switch dies, and that nothing is lost or doubled meanwhile.
#
# Usage: loadtest/failover.sh
#
# It brings up deploy/ha.sh's stack (etcd, two Patroni-managed PostgreSQL
# nodes with strict synchronous replication, the switch pair on 7443/7444),
# writes a capture of the demo participants' traffic (every payee accepts),
# and runs two scenarios, each under open-loop load from sikka-replay over
# both switch addresses (sessions reconnect to whichever serves; a transfer
# refused retryably or in flight on a lost connection is sent again with the
# same msg_id):
#   1. database: kill -9 the Patroni leader's Patroni and PostgreSQL (its
#      machine dies); the synchronous standby is promoted; the dead node is
#      restarted 2 s later (deploy/ha.sh up, as its machine's supervisor
#      would) and rejoins as the new synchronous standby, which strict
#      synchronous mode needs before commits return;
#   2. switch: kill -9 the active sikka-switch; the standby takes the fence
#      and serves; the killed one is restarted as the new standby.
# For each: the time without service (sikka-replay's longest gap between
# consecutive ACSCs, from the last one before to the first one after),
# transfers refused retryably and resent meanwhile, and the books:
# sikka-replay verify (every ACSC in the ledger once, as answered; nothing
# posted twice; every posting balanced), every payee notified of each of its
# settled transfers, no transfer left without an answer, and sikka-ctl
# reconcile against the active switch (positions in memory = the ledger).
#
# It writes build/bench/failover.json with db_outage_s, switch_outage_s,
# acsc_lost, double_postings and payee_reports_missing (those three must be
# 0) and the details, prints a table, and leaves the HA stack running
# (deploy/ha.sh down stops it). Exit 0 when the books hold (the outage
# targets, 15 s and 5 s, are reported; SIKKA_FAILOVER_STRICT=1 makes a missed
# target fail too), 1 when they do not or something failed.
#
# Environment: SIKKA_FAILOVER_RATE (200 transfers a second),
# SIKKA_FAILOVER_BEFORE_S (10 s of load before the fault),
# SIKKA_FAILOVER_AFTER_S (30 s after it), SIKKA_FAILOVER_STRICT (0).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
cd "$SIKKA_ROOT"

usage() {
    sed -n '/^# Usage:/,/^# It brings/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
[[ $# -eq 0 ]] || usage

rate=${SIKKA_FAILOVER_RATE:-200}
before=${SIKKA_FAILOVER_BEFORE_S:-10}
after=${SIKKA_FAILOVER_AFTER_S:-30}
strict=${SIKKA_FAILOVER_STRICT:-0}
db_target=15
switch_target=5

out=build/bench/failover
mkdir -p "$out"
replay=build/bin/sikka-replay
ctl=build/bin/sikka-ctl

say() {
    printf '==> %s\n' "$*"
}

say "the HA stack (deploy/ha.sh up; log $out/ha-up.log)"
deploy/ha.sh up >"$out/ha-up.log" 2>&1 || {
    tail -n 30 "$out/ha-up.log" >&2
    die "deploy/ha.sh up failed"
}
# shellcheck disable=SC1091
source var/ha/ports.env
connect="127.0.0.1:$SIKKA_HA_SWITCH1_PORT,127.0.0.1:$SIKKA_HA_SWITCH2_PORT"
db_uri=$(deploy/ha.sh pguri | tail -n 1)

# caps out of the way: the test is of availability, not of net debit caps
participants=JAZZ,EASY,SADA,KOKO,MEZN
admin_port=$(deploy/ha.sh active | awk '{print $4}')
# shellcheck disable=SC2086 # the codes, one word each
caps_four_eyes "127.0.0.1:$admin_port" 100000000000.00 ${participants//,/ }

say "the capture ($out/capture.bin)"
"$replay" gen -o "$out/capture.bin" --count 50000 --rate "$rate" --reject-rate 0 \
    --participants "$participants" \
    --ignore-rate 0 --malformed-rate 0 --retry-rate 0 --seed 9 >/dev/null

# wait_stack: until a switch serves and the cluster has a synchronous standby
wait_stack() {
    local i
    for ((i = 0; i < 120; i++)); do
        if deploy/ha.sh status >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    deploy/ha.sh status >&2 || true
    die "the HA stack is not whole again after 120 s"
}

fault_database() {
    local node pg_port patroni postmaster
    read -r node pg_port patroni postmaster < <(deploy/ha.sh leader)
    [[ $patroni =~ ^[0-9]+$ && $postmaster =~ ^[0-9]+$ ]] || die "no leader to kill: $node $patroni $postmaster"
    kill -9 "$patroni" "$postmaster"
    echo "killed the database primary $node (Patroni $patroni, PostgreSQL $postmaster, :$pg_port)"
    sleep 2
    # its machine's supervisor restarts it: it rejoins as a replica
    deploy/ha.sh up >>"$out/ha-up.log" 2>&1 &
    restart_pid=$!
}

fault_switch() {
    local n pid sport
    read -r n pid sport _ < <(deploy/ha.sh active)
    kill -9 "$pid"
    echo "killed the active switch $n (pid $pid, :$sport)"
    restart_pid=
}

# scenario NAME FAULT: load, the fault, load; then the books
scenario() {
    local name=$1 fault=$2 rc=0
    say "scenario $name: $rate transfers/s, the fault after $before s, load for $after s more"
    "$replay" run "$out/capture.bin" --connect "$connect" --pki var/pki --rate "$rate" \
        --duration $((before + after)) --drain 60 --run-id "${name:0:2}$(date +%s)" \
        --json "$out/$name.json" --results "$out/$name.tsv" --quiet >"$out/$name.txt" 2>&1 &
    local run_pid=$!
    sleep "$before"
    "$fault"
    wait "$run_pid" || rc=$?
    [[ -z ${restart_pid:-} ]] || wait "$restart_pid" || true
    [[ $rc -eq 0 ]] || echo "sikka-replay run exited $rc (see $out/$name.txt)"
    # the killed switch comes back as the standby; the cluster whole again
    deploy/ha.sh up >>"$out/ha-up.log" 2>&1 || die "deploy/ha.sh up after $name failed"
    wait_stack
    "$replay" verify --results "$out/$name.tsv" --db "$db_uri" --json "$out/$name.verify.json" \
        >"$out/$name.verify.txt" 2>&1 || true
    local admin
    admin=$(deploy/ha.sh active | awk '{print $4}')
    if "$ctl" --admin "127.0.0.1:$admin" reconcile >"$out/$name.reconcile.txt" 2>&1; then
        echo true >"$out/$name.reconcile"
    else
        echo false >"$out/$name.reconcile"
    fi
}

scenario database fault_database
scenario switch fault_switch

# the figures, from the tools' JSON
jq -n \
    --slurpfile dbr "$out/database.json" --slurpfile swr "$out/switch.json" \
    --slurpfile dbv "$out/database.verify.json" --slurpfile swv "$out/switch.verify.json" \
    --argjson dbrec "$(cat "$out/database.reconcile")" --argjson swrec "$(cat "$out/switch.reconcile")" \
    --argjson rate "$rate" --argjson dbt "$db_target" --argjson swt "$switch_target" '
    def lost(v): v.missing + v.mismatched + v.not_posted + v.inconsistent;
    def part(r; v; rec): {
        outage_s: (r.max_acsc_gap_ms / 1000),
        last_acsc_before_ms: r.gap_from_ms, first_acsc_after_ms: r.gap_to_ms,
        sent: r.sent, acsc: r.settled, unanswered: r.no_answer,
        refused_retryably: r.refused_retryably, resent: r.resent, reconnects: r.reconnects,
        acsc_lost: lost(v), double_postings: v.posted_twice,
        payee_reports_missing: r.acsc_without_notice,
        payee_notice_repeats: r.payee_notice_repeats,
        verify_ok: v.ok, reconcile_ok: rec };
    (part($dbr[0]; $dbv[0]; $dbrec)) as $d | (part($swr[0]; $swv[0]; $swrec)) as $s |
    {
        db_outage_s: $d.outage_s, switch_outage_s: $s.outage_s,
        acsc_lost: ($d.acsc_lost + $s.acsc_lost),
        double_postings: ($d.double_postings + $s.double_postings),
        payee_reports_missing: ($d.payee_reports_missing + $s.payee_reports_missing),
        transfers_unanswered: ($d.unanswered + $s.unanswered),
        targets: {db_outage_s: $dbt, switch_outage_s: $swt},
        targets_met: ($d.outage_s < $dbt and $s.outage_s < $swt),
        rate_per_s: $rate, database: $d, switch: $s
    }' >build/bench/failover.json

jq -r '
    def c: tostring | (. + "              ")[0:14];
    def s2: (. * 100 | round) / 100 | c;
    def row($name; f): "  \($name | (. + "                                          ")[0:42])\(.database | f | c)\(.switch | f | c)";
    "",
    "failover (build/bench/failover.json)        database      switch",
    "  \("time without service, s" | (. + "                                          ")[0:42])\(.database.outage_s | s2)\(.switch.outage_s | s2)(targets < \(.targets.db_outage_s), < \(.targets.switch_outage_s))",
    row("transfers sent"; .sent),
    row("ACSC"; .acsc),
    row("refused retryably, then resent"; .refused_retryably),
    row("resent in all"; .resent),
    row("sessions reopened"; .reconnects),
    row("ACSC lost (not in the ledger as answered)"; .acsc_lost),
    row("posted twice"; .double_postings),
    row("settled, payee never notified"; .payee_reports_missing),
    row("left without an answer"; .unanswered),
    row("verify, reconcile"; "\(.verify_ok), \(.reconcile_ok)")
' build/bench/failover.json

ok=$(jq -r '.acsc_lost == 0 and .double_postings == 0 and .payee_reports_missing == 0
    and .transfers_unanswered == 0 and .database.verify_ok and .switch.verify_ok
    and .database.reconcile_ok and .switch.reconcile_ok' build/bench/failover.json)
met=$(jq -r .targets_met build/bench/failover.json)
if [[ $ok != true ]]; then
    echo "failover: the books do NOT hold (see $out/)"
    exit 1
fi
if [[ $met != true ]]; then
    echo "failover: books hold; an outage target was missed"
    [[ $strict -eq 0 ]] || exit 1
    exit 0
fi
echo "failover: books hold, targets met"
