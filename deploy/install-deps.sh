#!/usr/bin/env bash
# deploy/install-deps.sh — installs the Debian 12 packages Sikka needs to build,
# run its local stack and test, when they are missing.
#
# Usage: deploy/install-deps.sh [--ha] [EXTRA_PACKAGE...]
#
#   --ha   also the high-availability stack's packages (deploy/ha.sh): Patroni
#          with its etcd client library, the etcd server and etcdctl, curl and
#          jq for the health checks. Nothing else pulls them: tests/run.sh and
#          deploy/local.sh do not need them.
#
# Checks every package with dpkg-query first and calls apt-get (as root, or
# through sudo) only when something is missing; `apt-get update` runs only then.
# Extra package names on the command line are installed the same way (e.g.
# clang libclang-rt-14-dev for the libFuzzer build in README.md, which
# nothing else needs).
# Running it twice is safe.
#
# chromium, node and npm are for the web console's browser tests
# (tests/browser/, run by tests/run.sh through ctest); playwright-core there
# needs Node.js 20 or newer.
#
# Installing postgresql-15 makes Debian create and start a "main" cluster on
# port 5432. Sikka never uses it: deploy/pg.sh runs private clusters.
# prometheus (about 19 MB to download, 96 MB installed) is here for promtool:
# tests/run.sh checks the switch's /metrics text and deploy/prometheus/ with
# it. Its package would start a Prometheus server on :9090; when this script
# installs it, it is installed with a policy-rc.d that forbids starting
# services (unless the host has a policy-rc.d of its own) and its service is
# disabled, so nothing is left listening. A prometheus already installed is
# left as it is.
# Likewise etcd-server (--ha) starts Debian's etcd service where systemd runs,
# on 127.0.0.1:2379 and 2380; deploy/ha.sh runs its own etcd on other ports.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ha_packages=()
if [[ ${1:-} == --ha ]]; then
    shift
    ha_packages=(patroni python3-etcd python3-psycopg2 etcd-server etcd-client curl jq)
fi

packages=(
    build-essential cmake pkg-config
    libevent-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler
    libssl-dev openssl libjansson-dev
    postgresql-15 postgresql-client-15
    ca-certificates procps iproute2
    chromium
    "${ha_packages[@]}"
    "$@"
)

# installed on their own, their services kept from starting (see above)
quiet_packages=(prometheus)

installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

missing=()
for pkg in "${packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
missing_quiet=()
for pkg in "${quiet_packages[@]}"; do
    installed "$pkg" || missing_quiet+=("$pkg")
done
# node and npm for the console's browser tests (tests/browser): Debian's
# packages only when the commands are missing, so that a newer Node.js
# installed otherwise (with its own npm) is left alone
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [[ ${#missing[@]} -eq 0 && ${#missing_quiet[@]} -eq 0 ]]; then
    echo "install-deps: all $((${#packages[@]} + ${#quiet_packages[@]})) packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]} ${missing_quiet[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
if [[ ${#missing[@]} -gt 0 ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
fi

if [[ ${#missing_quiet[@]} -gt 0 ]]; then
    # invoke-rc.d and deb-systemd-invoke ask policy-rc.d; 101 = "do not start"
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
        own_policy=1
        trap 'as_root rm -f "$policy"' EXIT
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing_quiet[@]}"
    if [[ $own_policy -eq 1 ]]; then
        as_root rm -f "$policy"
        trap - EXIT
    fi
    for pkg in "${missing_quiet[@]}"; do
        # and not at the next boot either
        if [[ -d /run/systemd/system ]]; then
            as_root systemctl disable --now "$pkg.service" >/dev/null 2>&1 || true
        elif [[ -x /etc/init.d/$pkg ]]; then
            as_root update-rc.d "$pkg" disable >/dev/null 2>&1 || true
        fi
    done
fi
