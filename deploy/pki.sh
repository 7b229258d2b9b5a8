#!/usr/bin/env bash
# deploy/pki.sh — the development PKI: a scheme CA and the certificates the
# switch, its participants and its operators present. EC P-256 keys, PEM,
# keys mode 600. For development and tests only: the CA key sits beside the
# certificates.
#
# Usage:
#   deploy/pki.sh DIR [--participant CODE]... [--no-demo]
#       ca.crt/.key (the scheme CA, 10 years), switch.crt/.key (serverAuth,
#       DNS:localhost + IP:127.0.0.1, 2 years), operator.crt/.key (clientAuth,
#       CN=operator) and CODE.crt/.key (clientAuth, 2 years) for the demo
#       participants JAZZ EASY SADA NAYA KOKO MEZN plus every --participant
#       CODE; --no-demo leaves the demo participants out.
#   deploy/pki.sh DIR participant CODE...   CODE.crt/.key only (and the CA)
#   deploy/pki.sh DIR expired CODE...       expired-CODE.crt/.key: CN=CODE,
#                                           signed by the CA, expired 30 days ago
#   deploy/pki.sh DIR foreign CODE...       foreign-CODE.crt/.key: CN=CODE,
#                                           signed by a throwaway foreign-ca.crt
#   deploy/pki.sh DIR operator NAME...      operator-NAME.crt/.key, CN=NAME
#   deploy/pki.sh DIR revoke NAME...        revokes NAME.crt (keyCompromise) and
#                                           rewrites DIR/crl.pem
#   deploy/pki.sh revoke NAME...            the same for var/pki, the local stack's
#                                           (then deploy/local.sh reload applies it)
#
# Every run also keeps DIR/crl.pem, the CA's revocation list (valid for 10
# years; empty until something is revoked), which sikka-switch loads as
# tls_crl. The CA's database of revocations is DIR/ca-db/. To put a revoked
# name back in service, delete its .crt and run this again: it gets a new
# certificate (a new serial, not in the list).
#
# Subjects: CA "/O=Sikka Dev/CN=Sikka Dev Scheme CA", switch
# "/O=Sikka Dev/OU=switch/CN=sikka-switch", participants
# "/O=Sikka Dev/OU=participant/CN=CODE", operators "/O=Sikka Dev/OU=operator/CN=NAME".
#
# Idempotent: a key that exists is never regenerated; a certificate that exists
# is kept while it matches its key, verifies against its CA and is more than
# 30 days from expiry (an expired-* one: while it is expired); otherwise it is
# issued again for the same key. Concurrent runs on one DIR are serialised.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    sed -n '/^# Usage:/,/^# Subjects:/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

demo_codes=(JAZZ EASY SADA NAYA KOKO MEZN)
renew_seconds=$((30 * 86400))

[[ $# -ge 1 && $1 != -h && $1 != --help ]] || usage
if [[ $1 == revoke ]]; then
    dir=$SIKKA_ROOT/var/pki # `deploy/pki.sh revoke NAME`: the local stack's
else
    dir=$1
    shift
fi
command -v openssl >/dev/null || die "openssl not found (run deploy/install-deps.sh)"

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
issued=0
kept=0

# One private OpenSSL config for every command, so the host's openssl.cnf
# cannot add or change extensions. The [scratch_ca] section serves
# `openssl ca`, the only 3.0 command that can backdate a certificate.
cnf=$tmp/openssl.cnf
mkdir "$tmp/newcerts"
touch "$tmp/index.txt"
cat >"$cnf" <<EOF
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused
[ca]
default_ca = scratch_ca
[scratch_ca]
database = $tmp/index.txt
new_certs_dir = $tmp/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
rand_serial = yes
[dir_ca]
database = $dir/ca-db/index.txt
crlnumber = $dir/ca-db/crlnumber
new_certs_dir = $tmp/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 3650
policy = policy_any
unique_subject = no
[policy_any]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ext_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ext_server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
[ext_client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

check_name() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] ||
        die "\"$1\" is not a usable name (letters, digits, _ . -; at most 64)"
}

random_serial() {
    printf '0x%s' "$(openssl rand -hex 16)"
}

# new_key BASE: BASE.key, unless it exists.
new_key() {
    local key=$dir/$1.key
    if [[ -s $key ]]; then
        chmod 600 "$key"
        return 0
    fi
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$tmp/new.key" 2>/dev/null)
    mv "$tmp/new.key" "$key"
}

# cert_usable BASE CA_BASE [expired]: BASE.crt exists, carries BASE.key's
# public key and verifies against CA_BASE.crt; unless "expired" is given it
# must be valid for another 30 days, with it it must be expired.
cert_usable() {
    local crt=$dir/$1.crt key=$dir/$1.key ca=$dir/$2.crt mode=${3:-}
    [[ -s $crt && -s $ca ]] || return 1
    [[ $(openssl x509 -in "$crt" -noout -pubkey 2>/dev/null) == \
        "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]] || return 1
    if [[ $mode == expired ]]; then
        openssl verify -no_check_time -CAfile "$ca" "$crt" >/dev/null 2>&1 || return 1
        if openssl x509 -in "$crt" -noout -checkend 0 >/dev/null 2>&1; then
            return 1
        fi
    else
        openssl verify -CAfile "$ca" "$crt" >/dev/null 2>&1 || return 1
        openssl x509 -in "$crt" -noout -checkend "$renew_seconds" >/dev/null 2>&1
    fi
}

install_cert() {
    chmod 644 "$tmp/new.crt"
    mv "$tmp/new.crt" "$dir/$1.crt"
    issued=$((issued + 1))
    echo "pki: issued $dir/$1.crt ($2)"
}

# ensure_ca BASE SUBJECT: a self-signed CA, 10 years.
ensure_ca() {
    local base=$1 subject=$2
    new_key "$base"
    if cert_usable "$base" "$base"; then
        kept=$((kept + 1))
        return 0
    fi
    openssl req -new -x509 -config "$cnf" -key "$dir/$base.key" -subj "$subject" \
        -extensions ext_ca -days 3650 -sha256 -set_serial "$(random_serial)" \
        -out "$tmp/new.crt"
    install_cert "$base" "$subject"
    # a new CA: the old one's revocations and list mean nothing any more
    if [[ $base == ca ]]; then
        rm -rf -- "$dir/ca-db" "$dir/crl.pem"
    fi
}

# write_crl: DIR/crl.pem from the CA's database, signed by the CA.
write_crl() {
    mkdir -p "$dir/ca-db"
    [[ -f $dir/ca-db/index.txt ]] || : >"$dir/ca-db/index.txt"
    [[ -f $dir/ca-db/crlnumber ]] || echo 1000 >"$dir/ca-db/crlnumber"
    openssl ca -batch -config "$cnf" -name dir_ca -gencrl -out "$tmp/crl.pem" \
        >/dev/null 2>"$tmp/ca.err" || die "openssl ca -gencrl failed: $(cat "$tmp/ca.err")"
    chmod 644 "$tmp/crl.pem"
    mv "$tmp/crl.pem" "$dir/crl.pem"
}

# ensure_crl: a current DIR/crl.pem signed by this CA (written when missing,
# not the CA's, or less than a year from its next update).
ensure_crl() {
    if [[ -s $dir/crl.pem ]] &&
        openssl crl -in "$dir/crl.pem" -noout -CAfile "$dir/ca.crt" >/dev/null 2>&1 &&
        [[ $(openssl crl -in "$dir/crl.pem" -noout -nextupdate | cut -d= -f2- |
            xargs -I{} date -u -d {} +%s) -gt $(($(date +%s) + 365 * 86400)) ]]; then
        return 0
    fi
    write_crl
    echo "pki: wrote $dir/crl.pem"
}

# revoke NAME: NAME.crt into the CA's database as revoked, then a new list.
revoke() {
    local crt=$dir/$1.crt
    [[ -s $crt ]] || die "$crt: no such certificate"
    mkdir -p "$dir/ca-db"
    [[ -f $dir/ca-db/index.txt ]] || : >"$dir/ca-db/index.txt"
    [[ -f $dir/ca-db/crlnumber ]] || echo 1000 >"$dir/ca-db/crlnumber"
    local serial
    serial=$(openssl x509 -in "$crt" -noout -serial | cut -d= -f2)
    if grep -q "^R.*	$serial	" "$dir/ca-db/index.txt" 2>/dev/null; then
        echo "pki: $crt (serial $serial) was revoked already"
        return 0
    fi
    openssl ca -batch -config "$cnf" -name dir_ca -revoke "$crt" -crl_reason keyCompromise \
        >/dev/null 2>"$tmp/ca.err" || die "openssl ca -revoke $crt failed: $(cat "$tmp/ca.err")"
    echo "pki: revoked $crt (serial $serial)"
}

# issue BASE SUBJECT EXTENSIONS DAYS [CA_BASE]: a leaf signed by CA_BASE (ca).
issue() {
    local base=$1 subject=$2 ext=$3 days=$4 ca=${5:-ca}
    new_key "$base"
    if cert_usable "$base" "$ca"; then
        kept=$((kept + 1))
        return 0
    fi
    openssl req -new -config "$cnf" -key "$dir/$base.key" -subj "$subject" -out "$tmp/new.csr"
    openssl x509 -req -in "$tmp/new.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
        -set_serial "$(random_serial)" -days "$days" -sha256 \
        -extfile "$cnf" -extensions "$ext" -out "$tmp/new.crt" 2>/dev/null
    install_cert "$base" "$subject"
}

# issue_expired CODE: CN=CODE, signed by the real CA, valid from 400 to 30
# days ago. `openssl x509 -req` cannot backdate in 3.0; `openssl ca` can.
issue_expired() {
    local base=expired-$1 subject="/O=Sikka Dev/OU=participant/CN=$1"
    new_key "$base"
    if cert_usable "$base" ca expired; then
        kept=$((kept + 1))
        return 0
    fi
    openssl req -new -config "$cnf" -key "$dir/$base.key" -subj "$subject" -out "$tmp/new.csr"
    openssl ca -batch -config "$cnf" -name scratch_ca -in "$tmp/new.csr" -out "$tmp/new.crt" \
        -startdate "$(date -u -d '400 days ago' +%Y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d '30 days ago' +%Y%m%d%H%M%SZ)" \
        -extensions ext_client -notext -preserveDN >/dev/null 2>"$tmp/ca.err" ||
        die "openssl ca failed: $(cat "$tmp/ca.err")"
    install_cert "$base" "$subject, expired"
}

participant() {
    issue "$1" "/O=Sikka Dev/OU=participant/CN=$1" ext_client 730
}

ca() {
    ensure_ca ca "/O=Sikka Dev/CN=Sikka Dev Scheme CA"
}

mode=${1:-}
case $mode in
'' | --*)
    codes=("${demo_codes[@]}")
    extra=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --participant)
            [[ $# -ge 2 ]] || usage
            extra+=("$2")
            shift 2
            ;;
        --no-demo)
            codes=()
            shift
            ;;
        *) usage ;;
        esac
    done
    codes+=(${extra[@]+"${extra[@]}"})
    for code in ${codes[@]+"${codes[@]}"}; do check_name "$code"; done
    ca
    issue switch "/O=Sikka Dev/OU=switch/CN=sikka-switch" ext_server 730
    issue operator "/O=Sikka Dev/OU=operator/CN=operator" ext_client 730
    for code in ${codes[@]+"${codes[@]}"}; do participant "$code"; done
    ensure_crl
    ;;
revoke)
    shift
    [[ $# -ge 1 ]] || usage
    for name in "$@"; do check_name "$name"; done
    [[ -s $dir/ca.crt && -s $dir/ca.key ]] || die "$dir: no CA here (deploy/pki.sh $dir first)"
    for name in "$@"; do revoke "$name"; done
    write_crl
    echo "pki: wrote $dir/crl.pem; sikka-switch applies it on SIGHUP (deploy/local.sh reload)"
    ;;
participant | expired | foreign | operator)
    shift
    [[ $# -ge 1 ]] || usage
    for name in "$@"; do check_name "$name"; done
    ca
    for name in "$@"; do
        case $mode in
        participant) participant "$name" ;;
        expired) issue_expired "$name" ;;
        foreign)
            ensure_ca foreign-ca "/O=Sikka Dev/CN=Foreign Throwaway CA"
            issue "foreign-$name" "/O=Sikka Dev/OU=participant/CN=$name" ext_client 730 foreign-ca
            ;;
        operator) issue "operator-$name" "/O=Sikka Dev/OU=operator/CN=$name" ext_client 730 ;;
        esac
    done
    ensure_crl
    ;;
*) usage ;;
esac

[[ $mode == revoke ]] || echo "pki: $dir: $issued issued, $kept kept"
