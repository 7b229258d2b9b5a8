#!/usr/bin/env bash
# deploy/pki.sh — the development PKI: a scheme CA and the certificates the
# switch, its participants and its operators present. EC P-256 keys, PEM,
# keys mode 600. For development and tests only: the CA key sits beside the
# certificates.
#
# Usage:
#   deploy/pki.sh DIR [--participant CODE]... [--no-demo]
#       ca.crt/.key (the scheme CA, 10 years), switch.crt/.key (serverAuth,
#       DNS:localhost + IP:127.0.0.1, 2 years), the operators' certificates
#       (clientAuth, 2 years) NAME.crt/.key and NAME.p12 for a browser:
#         viewer       role viewer      (reads only)
#         operator     role operator    (suspend, resume, close windows;
#                                        sikka-ctl's default)
#         supervisor   role supervisor  (caps, settlement, participants)
#         supervisor2  role supervisor  (a second person, for four-eyes)
#       and CODE.crt/.key (clientAuth, 2 years) for the demo participants
#       JAZZ EASY SADA NAYA KOKO MEZN plus every --participant CODE;
#       --no-demo leaves the demo participants out.
#   deploy/pki.sh DIR participant CODE...   CODE.crt/.key only (and the CA)
#   deploy/pki.sh DIR expired CODE...       expired-CODE.crt/.key: CN=CODE,
#                                           signed by the CA, expired 30 days ago
#   deploy/pki.sh DIR foreign CODE...       foreign-CODE.crt/.key: CN=CODE,
#                                           signed by a throwaway foreign-ca.crt
#   deploy/pki.sh DIR operator NAME... [--role ROLE | --no-role]
#                                           operator-NAME.crt/.key/.p12, CN=NAME,
#                                           title=ROLE (default operator; any
#                                           name, so tests can make an unknown
#                                           one; --no-role: no title at all)
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
# "/O=Sikka Dev/OU=participant/CN=CODE", operators
# "/O=Sikka Dev/OU=operator/CN=NAME/title=ROLE": the admin console takes the
# operator's role from the subject's title attribute (X.520 title) and
# refuses a certificate without one.
#
# Browsers: NAME.p12 (PKCS#12: the certificate, its key and the CA; AES-256
# and a SHA-256 MAC, which Chromium and Firefox import) is protected by the
# development password "sikka" (SIKKA_P12_PASSWORD changes it).
#
# Idempotent: a key that exists is never regenerated; a certificate that exists
# is kept while it matches its key and its expected subject, verifies against
# its CA and is more than 30 days from expiry (an expired-* one: while it is
# expired); otherwise it is issued again for the same key (an operator.crt
# from before roles, without a title, is issued again). A .p12 is rewritten
# whenever it does not hold its .crt. Concurrent runs on one DIR are
# serialised.
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
p12_password=${SIKKA_P12_PASSWORD:-sikka}

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

# cert_usable BASE CA_BASE SUBJECT [expired]: BASE.crt exists, carries
# BASE.key's public key and SUBJECT (as -subj spells it) and verifies against
# CA_BASE.crt; unless "expired" is given it must be valid for another 30
# days, with it it must be expired.
cert_usable() {
    local crt=$dir/$1.crt key=$dir/$1.key ca=$dir/$2.crt subject=$3 mode=${4:-}
    [[ -s $crt && -s $ca ]] || return 1
    [[ $(openssl x509 -in "$crt" -noout -pubkey 2>/dev/null) == \
        "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]] || return 1
    [[ $(openssl x509 -in "$crt" -noout -subject -nameopt compat 2>/dev/null) == \
        "subject=$subject" ]] || return 1
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
    if cert_usable "$base" "$base" "$subject"; then
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
    if cert_usable "$base" "$ca" "$subject"; then
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
    if cert_usable "$base" ca "$subject" expired; then
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

# ensure_p12 BASE: BASE.p12 (certificate, key and the CA) for a browser,
# written again unless it holds BASE.crt already.
ensure_p12() {
    local base=$1 p12=$dir/$1.p12 held
    if [[ -s $p12 ]]; then
        held=$(openssl pkcs12 -in "$p12" -passin "pass:$p12_password" -nokeys -clcerts 2>/dev/null |
            openssl x509 -noout -fingerprint -sha256 2>/dev/null) || held=""
        if [[ -n $held && $held == "$(openssl x509 -in "$dir/$base.crt" -noout -fingerprint -sha256)" ]]; then
            return 0
        fi
    fi
    (umask 077 && openssl pkcs12 -export -in "$dir/$base.crt" -inkey "$dir/$base.key" \
        -certfile "$dir/ca.crt" -name "Sikka Dev $base" -passout "pass:$p12_password" \
        -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -iter 100000 \
        -out "$tmp/new.p12") || die "openssl pkcs12 -export $base failed"
    mv "$tmp/new.p12" "$p12"
    echo "pki: wrote $p12 (password \"$p12_password\")"
}

# operator BASE NAME ROLE: an operator's certificate (ROLE "": no title) and
# its .p12.
operator() {
    local subject="/O=Sikka Dev/OU=operator/CN=$2"
    [[ -z $3 ]] || subject+="/title=$3"
    issue "$1" "$subject" ext_client 730
    ensure_p12 "$1"
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
    operator viewer viewer viewer
    operator operator operator operator
    operator supervisor supervisor supervisor
    operator supervisor2 supervisor2 supervisor
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
    names=()
    role=operator
    while [[ $# -gt 0 ]]; do
        case $1 in
        --role)
            [[ $mode == operator && $# -ge 2 ]] || usage
            check_name "$2"
            role=$2
            shift 2
            ;;
        --no-role)
            [[ $mode == operator ]] || usage
            role=""
            shift
            ;;
        -*) usage ;;
        *)
            names+=("$1")
            shift
            ;;
        esac
    done
    [[ ${#names[@]} -ge 1 ]] || usage
    set -- "${names[@]}"
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
        operator) operator "operator-$name" "$name" "$role" ;;
        esac
    done
    ensure_crl
    ;;
*) usage ;;
esac

[[ $mode == revoke ]] || echo "pki: $dir: $issued issued, $kept kept"
