#!/usr/bin/env bash
# deploy/migrate.sh — the schema migration runner: applies schema/NNN_*.sql in
# order to one database with psql, each at most once.
#
# Usage: deploy/migrate.sh [PSQL_CONNECTION_ARGS...]
#   deploy/migrate.sh -h /path/to/socket-dir -p 55432 -U postgres -d sikka
#   deploy/migrate.sh 'postgresql://postgres@127.0.0.1:55432/sikka'
# The arguments go to psql as they are (options, a conninfo string or a URI;
# PG* environment variables work too). Run it as a superuser or the owner of
# the schema: the migrations create tables, functions, triggers and grants.
#
# Environment: SIKKA_SCHEMA_DIR (default: schema/ of this checkout),
#              PSQL (default: PostgreSQL 15's psql).
#
# Bookkeeping is the table schema_migrations(version, checksum, applied_at):
# version is the file's NNN prefix, checksum the SHA-256 of the file. Each
# migration runs in ONE transaction together with its schema_migrations row,
# under pg_advisory_xact_lock, so concurrent runners apply it once. Applied
# migrations are skipped; an applied file whose checksum changed is an error
# (write a new migration instead). Prints one line per migration.
#
# Ownership: from 005 on, a migration runs as the role sikka_owner (created by
# 004), which owns every object of the schema; its new objects are therefore
# the owner's too, and by that role's default privileges nobody else may
# execute its functions. A step that needs a superuser says RESET ROLE.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

schema_dir=${SIKKA_SCHEMA_DIR:-$SIKKA_ROOT/schema}
psql=${PSQL:-/usr/lib/postgresql/15/bin/psql}
[[ -x $psql ]] || psql=$(command -v psql) || die "psql not found (run deploy/install-deps.sh)"
[[ -d $schema_dir ]] || die "$schema_dir: no such directory"

mapfile -t files < <(find "$schema_dir" -maxdepth 1 -type f -name '*.sql' -printf '%f\n' |
    LC_ALL=C sort)
[[ ${#files[@]} -gt 0 ]] || die "$schema_dir: no migrations"

# A quoted argument of a psql meta-command: ' and \ are special inside.
meta_quote() {
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\'\'}"
}

script=$(mktemp)
trap 'rm -f "$script"' EXIT
declare -A seen=()
{
    echo '\set ON_ERROR_STOP 1'
    echo '\o /dev/null'
    echo 'SET client_min_messages = warning;'
    for name in "${files[@]}"; do
        [[ $name =~ ^([0-9]{3})_[A-Za-z0-9_]+\.sql$ ]] ||
            die "$schema_dir/$name: not a migration (NNN_name.sql); schema/ holds migrations only"
        version=${BASH_REMATCH[1]}
        [[ -z ${seen[$version]:-} ]] || die "$name and ${seen[$version]} share version $version"
        seen[$version]=$name
        path=$schema_dir/$name
        if grep -qiE '^[[:space:]]*(BEGIN|COMMIT|ROLLBACK|START[[:space:]]+TRANSACTION)[[:space:]]*;' "$path"; then
            die "$path controls transactions itself; the runner wraps each migration in one"
        fi
        checksum=$(sha256sum "$path" | cut -d' ' -f1)
        cat <<EOF
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('sikka schema_migrations')) \\gset
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version     text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
SELECT EXISTS (SELECT FROM public.schema_migrations WHERE version = '$version') AS sikka_applied,
       EXISTS (SELECT FROM public.schema_migrations
                WHERE version = '$version' AND checksum <> '$checksum') AS sikka_changed \\gset
\\if :sikka_changed
\\warn 'migrate: $name was applied with a different checksum; it must not change once applied (write a new migration)'
DO \$\$ BEGIN RAISE EXCEPTION 'migration $version changed after it was applied'; END \$\$;
\\elif :sikka_applied
ROLLBACK;
\\echo 'migrate: $name skipped (already applied)'
\\else
$( ((10#$version >= 5)) && echo 'SET LOCAL ROLE sikka_owner;')
\\i $(meta_quote "$path")
RESET ROLE;
INSERT INTO public.schema_migrations (version, checksum) VALUES ('$version', '$checksum');
COMMIT;
\\echo 'migrate: $name applied'
\\endif
EOF
    done
} >"$script"

"$psql" -X -q -w -v ON_ERROR_STOP=1 "$@" -f "$script"
