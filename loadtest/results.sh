#!/usr/bin/env bash
# loadtest/results.sh — the benchmark's history, kept in the repository.
#
# Usage: loadtest/results.sh append RESULT.json   one line for a bench run
#        loadtest/results.sh readme                README's table from the last line
#        loadtest/results.sh show                  the history as a table
#
# loadtest/bench.sh calls the first two after every run, so that a change
# that makes Sikka slower shows in review as a line of loadtest/results.tsv
# (tab-separated, one header line, one line per run, oldest first). README.md
# holds the latest line as a table between two marker comments; the text
# around it is written by people.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/common.sh"
cd "$SIKKA_ROOT"

log=loadtest/results.tsv
readme=README.md
begin='<!-- loadtest/results.sh readme: begin -->'
end='<!-- loadtest/results.sh readme: end -->'
columns=(date commit machine baseline_schema_tps baseline_plain_tps switch_tps ratio half_rate
    p50_ms p99_ms p999_ms p99_worst_ms late_send_pct switch_cpu_us pg_cpu_us generator_cpu_us
    verify p99_20ms_rate)

usage() {
    sed -n '/^# Usage:/,/^#$/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

append() {
    local json=$1
    [[ -s $json ]] || die "no result file $json"
    command -v jq >/dev/null || die "jq is needed (deploy/install-deps.sh jq)"
    if [[ ! -s $log ]]; then
        (
            IFS=$'\t'
            echo "${columns[*]}"
        ) >"$log"
    fi
    jq -r '[
        .started_at,
        .build.commit + (if .build.dirty then "+" else "" end),
        "\(.machine.cores)x \(.machine.cpu) / PostgreSQL \(.machine.postgresql)",
        (.baselines.schema.tps, .baselines.plain.tps, .switch_tps | . * 10 | round / 10),
        .ratio, .half_rate,
        .p50_ms, .p99_ms, .p999_ms, .p99_ms_worst, (.late_send_fraction * 100000 | round / 1000),
        .cpu_us_per_transfer.switch, .cpu_us_per_transfer.postgresql,
        .cpu_us_per_transfer.generator, .verify, (.p99_20ms_rate // "")
      ] | map(tostring | gsub("[\t\n]"; " ")) | join("\t")' "$json" >>"$log"
    echo "results.sh: appended to $log"
}

# field NAME: the last line's value of column NAME
field() {
    awk -F '\t' -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
                              END { if (c) print $c }' "$log"
}

readme() {
    [[ -s $log ]] || die "no history yet ($log)"
    grep -qF "$begin" "$readme" && grep -qF "$end" "$readme" || die "$readme has no results markers"
    local tps
    tps() { awk -v v="$1" 'BEGIN { printf "%\047.0f", v }'; }
    # slo_rate_text: the last run's highest rate within 20 ms, in words
    slo_rate_text() {
        local slo
        slo=$(field p99_20ms_rate)
        if [[ -z $slo ]]; then
            echo "not measured (before step 3b)"
        elif [[ $slo == 0 ]]; then
            echo "none of the rates tried"
        else
            echo "$(tps "$slo")/s"
        fi
    }
    local table
    table=$(
        cat <<TABLE
On $(field date | cut -c1-10), commit $(field commit), $(field machine):

| | |
|---|---|
| baseline: the switch's schema, one transaction per transfer | $(tps "$(field baseline_schema_tps)") tps |
| baseline: a plain ledger, one function call per transfer | $(tps "$(field baseline_plain_tps)") tps |
| sikka-switch at its maximum | $(tps "$(field switch_tps)") settled transfers/s |
| ratio to the stronger baseline | $(field ratio) x (target >= 5) |
| latency at half the peak ($(tps "$(field half_rate)")/s), median of three runs | p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, p99.9 $(field p999_ms) ms (targets 20 and 40 ms) |
| worst p99 of the three; late sends | $(field p99_worst_ms) ms; $(field late_send_pct) % (target < 0.1 %) |
| highest rate with p99 within 20 ms (one run per rate) | $(slo_rate_text) |
| CPU per transfer at the peak | switch $(field switch_cpu_us) us, PostgreSQL $(field pg_cpu_us) us, generator $(field generator_cpu_us) us |
| ledger verified after the peak | $(field verify) |
TABLE
    )
    local tmp
    tmp=$(mktemp "$readme.XXXXXX")
    awk -v begin="$begin" -v end="$end" -v table="$table" '
        $0 == begin { print; print table; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }' "$readme" >"$tmp"
    cat "$tmp" >"$readme"
    rm -f "$tmp"
    echo "results.sh: $readme's table is the run of $(field date)"
}

show() {
    [[ -s $log ]] || die "no history yet ($log)"
    column -t -s $'\t' "$log"
}

case ${1:-} in
append)
    [[ $# -eq 2 ]] || usage
    append "$2"
    ;;
readme)
    [[ $# -eq 1 ]] || usage
    readme
    ;;
show)
    [[ $# -eq 1 ]] || usage
    show
    ;;
*) usage ;;
esac
