#!/usr/bin/env bash
# deploy/local.sh — the one-command local Sikka stack, everything under var/.
#
# Usage:
#   deploy/local.sh up       install missing Debian packages, build (Release), make
#                            the development PKI (var/pki), start a private
#                            PostgreSQL (var/pg, 127.0.0.1:$SIKKA_PGPORT), apply
#                            schema/, seed the demo participants, write
#                            var/sikka.conf, (re)start sikka-switch, send one demo
#                            payment end to end and print how to use the stack
#   deploy/local.sh down     stop the switch, wallet listeners and PostgreSQL
#   deploy/local.sh status   what runs, with pids and ports
#   deploy/local.sh reload   SIGHUP to the switch: config, TLS material and the CRL
#                            (after deploy/pki.sh revoke CODE)
#   deploy/local.sh pguri    print, as the last line, a libpq URI of the local
#                            database for the read-only role sikka_reader
#
# Environment: SIKKA_PGPORT (default 55432); SIKKA_SWITCH_PORT (7443) and
# SIKKA_ADMIN_PORT (8443) move the switch's listeners. Everything listens on
# 127.0.0.1 only. Running any sub-command again is safe; `up` restarts a running
# switch so that a rebuilt binary is used. Pids of what this script starts are
# kept in var/run/; `down` stops only those.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$SIKKA_ROOT"

pg_port=${SIKKA_PGPORT:-55432}
listen_addr=127.0.0.1:${SIKKA_SWITCH_PORT:-7443}
admin_addr=127.0.0.1:${SIKKA_ADMIN_PORT:-8443}
pki=var/pki
pg_data=var/pg
db=sikka
secrets=var/secrets.env
conf=var/sikka.conf
log_dir=var/log
run_dir=var/run
switch_log=$log_dir/switch.log
switch_pid_file=$run_dir/sikka-switch.pid # written by the switch (pid_file)
launch_pid_file=$run_dir/local-switch.pid # written by this script
switch_bin=build/bin/sikka-switch
wallet_bin=build/bin/sikka-wallet
stop_timeout=20

usage() {
    sed -n '/^# Usage:/,/^# Environment:/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

step() {
    printf '\n==> %s\n' "$*"
}

# The running switch's pid: ours, or the one its pid_file names.
switch_pid() {
    pid_of "$launch_pid_file" sikka-switch || pid_of "$switch_pid_file" sikka-switch
}

stop_switch() {
    local pid
    if pid=$(switch_pid); then
        echo "$pid" >"$launch_pid_file"
        stop_pid "$launch_pid_file" sikka-switch "$stop_timeout"
    fi
    rm -f -- "$launch_pid_file"
}

stop_wallets() {
    local f
    for f in "$run_dir"/wallet-*.pid; do
        [[ -e $f ]] && stop_pid "$f" sikka-wallet 5
    done
    return 0
}

listening() {
    [[ -n $(ss -Hltn "src $1" 2>/dev/null) ]]
}

# write_config: var/sikka.conf from the example, with this stack's values.
write_config() {
    local pw
    pw=$(secret_get SIKKA_SWITCH_PASSWORD "$secrets")
    [[ -n $pw ]] || die "$secrets: no SIKKA_SWITCH_PASSWORD"
    write_switch_config "$conf" \
        "listen=$listen_addr" \
        "admin_listen=$admin_addr" \
        "database_url=postgresql://sikka_switch:$pw@127.0.0.1:$pg_port/$db" \
        "log_file=$switch_log" \
        "tls_crl=$pki/crl.pem" \
        "pid_file=$switch_pid_file"
    echo "wrote $conf"
}

start_switch() {
    local pid i
    stop_switch
    if listening "$listen_addr"; then
        die "$listen_addr is taken by another program: $(ss -Hltnp "src $listen_addr" | head -n 1)"
    fi
    echo "--- $(date -u +%FT%TZ) deploy/local.sh up: starting sikka-switch" >>"$switch_log"
    (close_extra_fds && exec setsid nohup "$switch_bin" -c "$conf" >>"$switch_log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$launch_pid_file"
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 -- "$switch_log" >&2
            die "sikka-switch exited at start (log above: $switch_log)"
        fi
        listening "$listen_addr" && break
        sleep 0.2
    done
    if ! listening "$listen_addr"; then
        tail -n 30 -- "$switch_log" >&2
        die "sikka-switch (pid $pid) does not accept connections on $listen_addr after 20 s (log above: $switch_log)"
    fi
    echo "sikka-switch running (pid $pid) on $listen_addr"
}

# wallet_cmd CODE: sets wallet to the sikka-wallet command line of participant CODE.
wallet_cmd() {
    wallet=("$wallet_bin" --connect "$listen_addr" --ca "$pki/ca.crt" --cert "$pki/$1.crt"
        --key "$pki/$1.key" --participant "$1")
}

# demo_payment: KOKO listens and accepts, JAZZ pays a BNPL instalment.
demo_payment() {
    local out="" i lpid wallet=()
    listener_pid_file=$run_dir/wallet-KOKO.pid
    stop_pid "$listener_pid_file" sikka-wallet 5
    trap 'stop_pid "$listener_pid_file" sikka-wallet 5' EXIT
    wallet_cmd KOKO
    (close_extra_fds && exec "${wallet[@]}" listen --accept-all >>"$log_dir/wallet-KOKO.log" 2>&1 </dev/null) &
    lpid=$!
    echo "$lpid" >"$listener_pid_file"
    echo "KOKO listening (pid $lpid, log $log_dir/wallet-KOKO.log)"
    # the listener needs a moment to connect: AB08 (payee not connected) is retried
    for ((i = 0; i < 20; i++)); do
        kill -0 "$lpid" 2>/dev/null || {
            tail -n 20 -- "$log_dir/wallet-KOKO.log" >&2
            die "the KOKO listener exited (log above)"
        }
        wallet_cmd JAZZ
        out=$("${wallet[@]}" pay --from 03001234567 --to 03211234567@KOKO --amount 1500.00 \
            --purpose BNPL_REPAYMENT --ref LOAN-1001/3 2>>"$log_dir/wallet-JAZZ.log") || true
        [[ $out == "RJCT AB08"* ]] || break
        sleep 0.5
    done
    stop_pid "$listener_pid_file" sikka-wallet 5
    trap - EXIT
    echo "JAZZ -> KOKO PKR 1500.00 (BNPL_REPAYMENT LOAN-1001/3): ${out:-no answer}"
    [[ $out == ACSC* ]] || die "the demo payment did not settle (logs: $switch_log, $log_dir/wallet-JAZZ.log)"
}

reader_uri() {
    local pw port
    [[ -f $secrets ]] || die "no $secrets yet: run deploy/local.sh up"
    pw=$(sed -n 's/^SIKKA_READER_PASSWORD=//p' "$secrets" | tail -n 1)
    [[ -n $pw ]] || die "$secrets: no SIKKA_READER_PASSWORD"
    port=$(deploy/pg.sh port "$pg_data" 2>/dev/null) || port=$pg_port
    echo "postgresql://sikka_reader:$pw@127.0.0.1:$port/$db"
}

summary() {
    local connect=""
    [[ $listen_addr == 127.0.0.1:7443 ]] || connect=" --connect $listen_addr"
    cat <<EOF

Sikka is up.
  switch (participants, mutual TLS)  $listen_addr  (pid $(switch_pid), config $conf)
  admin console                      https://$admin_addr
      needs an operator client certificate; the role is in the certificate:
        $pki/viewer.crt       viewer      reads everything
        $pki/operator.crt     operator    suspend, close windows, propose resumes
        $pki/supervisor.crt   supervisor  caps, settlement, participants
        $pki/supervisor2.crt  supervisor  a second person, to approve
      (each with its .key), and trusts $pki/ca.crt, e.g.
      curl --cacert $pki/ca.crt --cert $pki/operator.crt --key $pki/operator.key https://$admin_addr/api/v1/me
      or: $(dirname "$switch_bin")/sikka-ctl participants       (as operator; --as NAME for another)
  four-eyes                          caps, settlements, new participants and resumes are proposed
      by one operator (the command prints PROPOSED <id> last) and take effect when another approves:
      $(dirname "$switch_bin")/sikka-ctl --as supervisor ndc set JAZZ 250000.00
      $(dirname "$switch_bin")/sikka-ctl --as supervisor2 approve <id>     (sikka-ctl proposals: what waits)
  in a browser                       import $pki/<NAME>.p12 (password "sikka") as your certificate
      and $pki/ca.crt as an authority: Chromium: Settings > Privacy and security > Security >
      Manage certificates (Your certificates / Authorities > Import); Firefox: Settings > Privacy &
      Security > View Certificates (Your Certificates / Authorities > Import); then open
      https://$admin_addr/api/v1/me
  database (read-only, every table)  $(reader_uri)
      (deploy/local.sh pguri; superuser: deploy/pg.sh psql $pg_data -d $db)
  logs                               $switch_log, $log_dir/wallet-*.log, $pg_data/server.log
  certificates                       $pki/<CODE>.crt/.key for JAZZ EASY SADA NAYA KOKO MEZN

  receive as a payee:  $wallet_bin$connect --participant KOKO listen --accept-all
  pay:                 $wallet_bin$connect --participant JAZZ pay --from 03001234567 \\
                           --to 03211234567@KOKO --amount 1500.00 --purpose BNPL_REPAYMENT --ref LOAN-1001/3
  stop everything:     deploy/local.sh down
EOF
}

cmd_up() {
    step "Debian packages"
    deploy/install-deps.sh
    step "build (Release)"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j2
    [[ -x $switch_bin && -x $wallet_bin ]] || die "the build made no $switch_bin or $wallet_bin"
    step "development PKI ($pki)"
    deploy/pki.sh "$pki"
    step "PostgreSQL ($pg_data, 127.0.0.1:$pg_port)"
    deploy/pg.sh init "$pg_data" "$pg_port"
    deploy/pg.sh start "$pg_data"
    deploy/pg.sh setup-db "$pg_data" "$db" "$secrets"
    deploy/pg.sh psql "$pg_data" -d "$db" -q -v ON_ERROR_STOP=1 -f deploy/seed.sql
    echo "seeded the demo participants"
    step "sikka-switch"
    write_config
    "$switch_bin" --check-config -c "$conf"
    start_switch
    step "demo payment"
    demo_payment
    summary
}

cmd_down() {
    stop_wallets
    stop_switch
    deploy/pg.sh stop "$pg_data"
}

cmd_status() {
    local pid rc=0 f
    echo "PostgreSQL ($pg_data):"
    if ! deploy/pg.sh status "$pg_data" | sed 's/^/  /'; then
        rc=3
    fi
    if pid=$(switch_pid); then
        echo "sikka-switch: running, pid $pid, config $conf, log $switch_log"
    else
        echo "sikka-switch: not running"
        rc=3
    fi
    ss -Hltnp "( src $listen_addr or src $admin_addr )" 2>/dev/null |
        awk '{ print "  listening on " $4 "  " $6 }'
    for f in "$run_dir"/wallet-*.pid; do
        [[ -e $f ]] || continue
        pid=$(pid_of "$f" sikka-wallet) && echo "wallet listener $(basename "$f" .pid): pid $pid"
    done
    return "$rc"
}

cmd_reload() {
    local pid
    pid=$(switch_pid) || die "sikka-switch is not running (deploy/local.sh up)"
    kill -HUP "$pid"
    echo "sent SIGHUP to sikka-switch (pid $pid): it reloads $conf, its TLS material and the CRL"
}

[[ $# -eq 1 ]] || usage
case $1 in
up | down | status | reload) ;;
pguri)
    reader_uri
    exit 0
    ;;
*) usage ;;
esac

mkdir -p var "$log_dir" "$run_dir"
exec 9>var/.local.lock
flock -n 9 || die "another deploy/local.sh is running here"
"cmd_$1"
