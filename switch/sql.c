#include "sql.h"

/* One call per posting batch: see schema/002_post_batch.sql. Parameters are
 * text arrays built by ledger.c; the result lists the transfers whose key
 * already existed, with the stored outcome. */
static const char post_batch_sql[] =
    "SELECT id, stored_id, stored_status, stored_reason, stored_reason_text, same_request "
    "FROM post_batch($1::bigint, $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], "
    "$7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], "
    "$13::text[], $14::text[], $15::text[], $16::integer[], $17::text[], $18::text[], "
    "$19::bigint[], $20::text[], $21::text[], $22::text[], $23::bigint[], $24::bigint[], "
    "$25::bigint[], $26::bigint[], $27::text[])";

const struct pgconn_stmt sql_ledger_stmts[] = {
    {SQL_POST_BATCH, post_batch_sql},
};
const size_t sql_ledger_nstmts = sizeof(sql_ledger_stmts) / sizeof(sql_ledger_stmts[0]);

const char sql_check_schema[] =
    "SELECT to_regproc('public.post_batch') IS NOT NULL AND "
    "to_regclass('public.ledger_entries') IS NOT NULL";

/* $1 host, $2 pid -> the boot id, the high half of this process's ids */
const char sql_boot[] = "INSERT INTO switch_boots (host, pid) VALUES ($1, $2) RETURNING id";

const char sql_load_participants[] =
    "SELECT p.code, p.name, p.kind, p.status, p.ndc, pa.id, pa.balance, sa.id "
    "FROM participants p "
    "JOIN accounts pa ON pa.participant = p.code AND pa.kind = 'position' "
    "JOIN accounts sa ON sa.participant = p.code AND sa.kind = 'settlement' "
    "ORDER BY p.code";

const char sql_load_scheme_accounts[] =
    "SELECT kind, id FROM accounts WHERE participant IS NULL";

const char sql_open_window[] = "SELECT id FROM settlement_windows WHERE state = 'open'";

/* $1 seconds back, $2 most rows */
const char sql_preload_keys[] =
    "SELECT payer, msg_id, encode(fingerprint, 'hex'), id, kind, status, coalesce(reason, ''), "
    "payee, end_to_end_id, amount, fee, coalesce(original_id, 0), "
    "(extract(epoch FROM finished_at) * 1000)::bigint "
    "FROM transfers WHERE finished_at > now() - make_interval(secs => $1::double precision) "
    "ORDER BY finished_at DESC LIMIT $2::bigint";
