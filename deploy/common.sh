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
