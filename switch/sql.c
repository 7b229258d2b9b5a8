#include "sql.h"

#define FEES_SQL "SELECT purpose, bps, min_fee, max_fee, charged_to FROM fee_schedule"

/* One call per posting batch: see schema/004_least_privilege.sql (and 013). Parameters
 * are text arrays built by ledger.c (transfers only: the database derives the
 * legs); the result has a 'batch' row, and a row per transfer whose key
 * already existed ('duplicate') or whose fee the database decided otherwise
 * ('fee'). */
static const char post_batch_sql[] =
    "SELECT kind, id, stored_id, status, reason, reason_text, same_request, fee, fee_payer, "
    "at_ms FROM post_batch($1::bigint, $2::boolean[], $3::bigint[], $4::text[], $5::text[], "
    "$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], "
    "$13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::integer[], "
    "$19::text[], $20::text[], $21::bigint[], $22::text[], $23::text[], $24::text[], "
    "$25::text[], $26::bigint[], $27::bigint[], $28::bigint[])";

/* the position balances (of every participant) */
#define BALANCES_SQL "SELECT a.participant, a.balance FROM accounts a WHERE a.kind = 'position'"

const struct pgconn_stmt sql_ledger_stmts[] = {
    {SQL_POST_BATCH, post_batch_sql},
    /* $1-$4 the operator: name, role, certificate serial and fingerprint
     * ("" for none: the switch's own schedule) */
    {SQL_CLOSE_WINDOW, "SELECT closed_id, opened_id, postings, gross FROM close_window($1, "
                       "NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, ''))"},
    /* $1 proposal id, $2-$5 the approving operator (schema/006): the
     * settlement's rows, each with the proposal; a row with a NULL account
     * when the window had nothing to settle */
    {SQL_APPROVE_SETTLE, "SELECT coalesce(participant, ''), account_id, delta, proposal::text "
                         "FROM proposal_approve_settle($1::bigint, $2, $3, $4, $5)"},
    {SQL_RESYNC, "SELECT (SELECT id FROM settlement_windows WHERE state = 'open'), "
                 "a.participant, a.balance FROM accounts a WHERE a.kind = 'position'"},
    /* at a cut, for reconcile */
    {SQL_BALANCES, BALANCES_SQL},
};
const size_t sql_ledger_nstmts = sizeof(sql_ledger_stmts) / sizeof(sql_ledger_stmts[0]);

/* the newest migration this switch needs is applied */
const char sql_check_schema[] =
    "SELECT to_regprocedure('public.fence_acquire(bigint,text)') IS NOT NULL AND "
    "to_regclass('public.payee_outbox') IS NOT NULL AND "
    "to_regprocedure('public.proposal_create(text,text,text,text,text,text,jsonb,integer)') "
    "IS NOT NULL AND to_regclass('public.aliases') IS NOT NULL AND "
    "to_regclass('public.requests') IS NOT NULL AND "
    "to_regprocedure('public.bulk_register(text,text,bytea,integer)') IS NOT NULL AND "
    "to_regprocedure('public.proposal_withdraw(bigint,text,text,text,text,text)') IS NOT NULL "
    "AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.transfers'::regclass "
    "AND attname = 'decided_at' AND NOT attisdropped) AND "
    "to_regprocedure('public.payee_outbox_ack_all(text[],bigint[])') IS NOT NULL";

/* $1 host, $2 pid -> the boot id, the high half of this process's ids */
const char sql_boot[] = "SELECT switch_boot_register($1, $2::integer)";

/* Participants as the registry needs them (start-up and every sync). */
#define PARTICIPANTS_SQL                                                                           \
    "SELECT p.code, p.name, p.kind, p.status, p.ndc, pa.id, pa.balance, sa.id, "                   \
    "coalesce(p.ndc_grace, -1) "                                                                   \
    "FROM participants p "                                                                         \
    "JOIN accounts pa ON pa.participant = p.code AND pa.kind = 'position' "                        \
    "JOIN accounts sa ON sa.participant = p.code AND sa.kind = 'settlement' "                      \
    "ORDER BY p.code"
const char sql_load_participants[] = PARTICIPANTS_SQL;

const char sql_load_scheme_accounts[] = "SELECT kind, id FROM accounts WHERE participant IS NULL";

#define OPEN_WINDOW_SQL "SELECT id FROM settlement_windows WHERE state = 'open'"
const char sql_open_window[] = OPEN_WINDOW_SQL;

/* $1 seconds back, $2 most rows */
const char sql_preload_keys[] =
    "SELECT payer, msg_id, encode(fingerprint, 'hex'), id, kind, status, coalesce(reason, ''), "
    "payee, end_to_end_id, amount, fee, coalesce(original_id, 0), "
    "(extract(epoch FROM finished_at) * 1000)::bigint, coalesce(reason_text, ''), "
    "coalesce(fee_payer, '') "
    "FROM transfers "
    /* ids start at boot id << 32: skip every boot that ended before the cutoff */
    "WHERE id >= (SELECT coalesce(max(id), 0) FROM switch_boots "
    "             WHERE started_at <= now() - make_interval(secs => $1::double precision)) "
    "            << 32 "
    "AND finished_at > now() - make_interval(secs => $1::double precision) "
    "ORDER BY id DESC LIMIT $2::bigint";

/* A payee's settlement notice, from the outbox (router_send_notice). */
#define OUTBOX_COLUMNS                                                                             \
    "t.id, t.kind, t.status, coalesce(t.reason, ''), t.payer, t.payee, t.msg_id, "                 \
    "t.end_to_end_id, t.amount, t.fee, coalesce(t.original_id, 0), "                               \
    "(extract(epoch FROM t.finished_at) * 1000)::bigint, coalesce(t.fee_payer, ''), "              \
    "coalesce(t.reason_text, '')"

/* What a status query or a returned transfer needs of a stored transfer. */
#define TRANSFER_OUTCOME_COLUMNS                                                                   \
    "t.id, t.kind, t.status, coalesce(t.reason, ''), t.payer, t.payee, t.msg_id, "                 \
    "t.end_to_end_id, t.amount, t.fee, coalesce(t.original_id, 0), "                               \
    "(extract(epoch FROM t.finished_at) * 1000)::bigint, t.currency, "                             \
    "coalesce((SELECT sum(r.amount) FROM transfers r WHERE r.original_id = t.id "                  \
    "AND r.kind = 'return' AND r.status = 'ACSC'), 0), coalesce(t.fee_payer, ''), "                \
    "coalesce(t.reason_text, ''), "                                                                \
    "coalesce((SELECT sum(r.fee) FROM transfers r WHERE r.original_id = t.id "                     \
    "AND r.kind = 'return' AND r.status = 'ACSC'), 0)"

/* ---- the transfer search (ops_transfer_search) ----
 * Every search statement takes the same parameters, NULL when not asked for:
 * $1 before (ids below it), $2 limit + 1, $3 msg_id, $4 end_to_end_id,
 * $5 participant (payer or payee), $6 status, $7 purpose, $8 ref (loan_id or
 * invoice_number), $9 from, $10 to (received_at in [from, to)). They differ
 * in what drives the read (SEARCH_SOURCE below), so that each has one plan
 * whatever the values: the filters are the same for all. */
#define SEARCH_FILTER                                                                              \
    "t.id < $1::bigint AND ($3::text IS NULL OR t.msg_id = $3::text) "                             \
    "AND ($4::text IS NULL OR t.end_to_end_id = $4::text) "                                        \
    "AND ($5::text IS NULL OR t.payer = $5::text OR t.payee = $5::text) "                          \
    "AND ($6::text IS NULL OR t.status = $6::text) AND ($7::text IS NULL OR t.purpose = "          \
    "$7::text) "                                                                                   \
    "AND ($8::text IS NULL OR coalesce(t.loan_id, t.invoice_number) = $8::text) "                  \
    "AND ($9::timestamptz IS NULL OR t.received_at >= $9::timestamptz) "                           \
    "AND ($10::timestamptz IS NULL OR t.received_at < $10::timestamptz)"

#define SEARCH_ROW                                                                                 \
    "json_build_object('id', t.id, 'kind', t.kind, 'payer', t.payer, 'payee', t.payee, "           \
    "'msg_id', t.msg_id, 'end_to_end_id', t.end_to_end_id, 'amount', t.amount, 'fee', t.fee, "     \
    "'currency', t.currency, 'purpose', t.purpose, 'loan_id', t.loan_id, "                         \
    "'instalment', t.instalment, 'invoice_number', t.invoice_number, 'status', t.status, "         \
    "'reason', t.reason, 'original_id', t.original_id, 'window_id', t.window_id, "                 \
    "'received_at', t.received_at, 'finished_at', t.finished_at)"

/* The answer from `hit` (at most $2 rows, newest first): the first $2 - 1,
 * and "next" below the last of them when there was one more; else `edge`
 * (SQL giving the id to continue below, or NULL). */
#define SEARCH_ANSWER(edge, partial)                                                               \
    "SELECT json_build_object('transfers', coalesce((SELECT json_agg(" SEARCH_ROW                  \
    " ORDER BY t.id DESC) FROM (SELECT * FROM hit ORDER BY id DESC "                               \
    "LIMIT $2::integer - 1) t), '[]'), "                                                           \
    "'next', CASE WHEN (SELECT count(*) FROM hit) = $2::integer THEN (SELECT min(l.id) FROM "      \
    "(SELECT id FROM hit ORDER BY id DESC LIMIT $2::integer - 1) l) ELSE " edge " END, "           \
    "'partial', (SELECT count(*) FROM hit) < $2::integer AND " partial ")::text"

#define SEARCH_INDEXED(source)                                                                     \
    "WITH hit AS (SELECT t.* FROM transfers t WHERE " source " AND " SEARCH_FILTER                 \
    " ORDER BY t.id DESC LIMIT $2::integer) " SEARCH_ANSWER("NULL", "false")

#define SEARCH_SCAN_ROWS_TEXT SQL_STR(OPS_SEARCH_SCAN_ROWS)
#define SQL_STR(x)            SQL_STR2(x)
#define SQL_STR2(x)           #x
/* The newest transfers below $1, OPS_SEARCH_SCAN_ROWS at most, by the
 * primary key (ids grow with time). */
#define SEARCH_SCANNED                                                                             \
    "(SELECT * FROM transfers WHERE id < $1::bigint ORDER BY id DESC LIMIT " SEARCH_SCAN_ROWS_TEXT \
    ")"
/* All of them examined and the oldest still after `from`: continue below it. */
#define SEARCH_EDGE                                                                                \
    "edge AS (SELECT CASE WHEN count(*) = " SEARCH_SCAN_ROWS_TEXT " AND ($9::timestamptz IS NULL " \
    "OR min(s.received_at) >= $9::timestamptz) THEN min(s.id) END AS id FROM (SELECT id, "         \
    "received_at FROM transfers WHERE id < $1::bigint ORDER BY id DESC "                           \
    "LIMIT " SEARCH_SCAN_ROWS_TEXT ") s)"

/* A transfer's timeline from what the database keeps: received, forwarded
 * to its payee and decided (schema/013: the payee's answer, its timeout or
 * the switch's refusal; older rows have neither, and a rejection of theirs
 * shows as decided when it was recorded), posted (ACSC) or recorded (RJCT),
 * the payee's notice (written with the posting, sent at once, gone when
 * acknowledged: the time of that is not kept), and its returns. */
#define TRANSFER_TIMELINE                                                                          \
    "(SELECT json_agg(x.ev ORDER BY x.ord, x.at) FROM ("                                           \
    "SELECT 1 AS ord, t.received_at AS at, json_build_object('event', 'received', 'at', "          \
    "t.received_at) AS ev "                                                                        \
    "UNION ALL SELECT 2, t.forwarded_at, json_build_object('event', 'forwarded', 'at', "           \
    "t.forwarded_at, 'payee', t.payee) WHERE t.forwarded_at IS NOT NULL "                          \
    "UNION ALL SELECT 3, coalesce(t.decided_at, t.finished_at), json_build_object('event', "       \
    "'decided', 'at', coalesce(t.decided_at, t.finished_at), 'status', t.status, 'reason', "       \
    "t.reason) WHERE t.decided_at IS NOT NULL OR t.status = 'RJCT' "                               \
    "UNION ALL SELECT 4, t.finished_at, json_build_object('event', CASE WHEN t.status = 'ACSC' "   \
    "THEN 'posted' ELSE 'recorded' END, 'at', t.finished_at, 'window_id', t.window_id) "           \
    "WHERE t.status = 'ACSC' OR t.decided_at IS NOT NULL "                                         \
    "UNION ALL SELECT 5, o.created_at, json_build_object('event', 'reported', 'at', "              \
    "o.created_at) "                                                                               \
    "FROM payee_outbox o WHERE o.payee = t.payee AND o.transfer_id = t.id "                        \
    "UNION ALL SELECT 5, t.finished_at, json_build_object('event', 'reported', 'at', "             \
    "t.finished_at) WHERE t.status = 'ACSC' AND NOT EXISTS (SELECT 1 FROM payee_outbox o "         \
    "WHERE o.payee = t.payee AND o.transfer_id = t.id) "                                           \
    "UNION ALL SELECT 6, t.finished_at, json_build_object('event', 'acknowledged', 'at', NULL) "   \
    "WHERE t.status = 'ACSC' AND NOT EXISTS (SELECT 1 FROM payee_outbox o "                        \
    "WHERE o.payee = t.payee AND o.transfer_id = t.id) "                                           \
    "UNION ALL SELECT 7, r.finished_at, json_build_object('event', 'returned', 'at', "             \
    "r.finished_at, 'id', r.id, 'amount', r.amount, 'status', r.status) FROM transfers r "         \
    "WHERE r.original_id = t.id) x)"

/* Every alias directory change answers one row (schema/008): outcome,
 * participant, account, holder_name, port_to, port_expires_ms, previous. */
#define ALIAS_ANSWER                                                                               \
    "outcome, participant, account, holder_name, port_to, port_expires_ms, previous"

const struct pgconn_stmt sql_query_stmts[] = {
    /* $1 alias (canonical), $2 type, $3 participant, $4 account, $5 name */
    {SQL_ALIAS_REGISTER, "SELECT " ALIAS_ANSWER " FROM alias_register($1, $2, $3, $4, $5)"},
    /* $1 alias, $2 participant, $3 account, $4 name */
    {SQL_ALIAS_UPDATE, "SELECT " ALIAS_ANSWER " FROM alias_update($1, $2, $3, $4)"},
    /* $1 alias, $2 participant */
    {SQL_ALIAS_DEREGISTER, "SELECT " ALIAS_ANSWER " FROM alias_deregister($1, $2)"},
    /* $1 alias, $2 participant asking, $3 account, $4 name, $5 seconds to expiry */
    {SQL_ALIAS_PORT, "SELECT " ALIAS_ANSWER " FROM alias_port($1, $2, $3, $4, $5::integer)"},
    /* $1 alias, $2 participant (the holder) */
    {SQL_ALIAS_RELEASE, "SELECT " ALIAS_ANSWER " FROM alias_release($1, $2)"},
    /* $1 alias: its state as a change answers it (outcome 'ok'), for an
     * index entry whose change's outcome was lost with the connection */
    {SQL_ALIAS_GET, "SELECT 'ok', a.participant, a.account, a.holder_name, a.port_to, "
                    "(extract(epoch FROM a.port_expires_at) * 1000)::bigint, NULL "
                    "FROM (SELECT 1) one LEFT JOIN aliases a ON a.alias = $1"},
    /* $1 most rows: the alias first */
    {SQL_ALIAS_EXPIRE, "SELECT alias, " ALIAS_ANSWER " FROM alias_expire_ports($1::integer)"},
    /* $1 participant ("" every one), $2 after this alias ("" from the start),
     * $3 most rows */
    {SQL_ALIAS_LIST,
     "SELECT a.alias, a.alias_type, a.participant, a.holder_name, a.account, "
     "a.registered_at::text, a.updated_at::text, a.port_to, a.port_expires_at::text "
     "FROM aliases a WHERE ($1 = '' OR a.participant = $1) AND a.alias > $2 "
     "ORDER BY a.alias LIMIT $3::integer"},
    /* msg_id: one probe of the (payer, msg_id) key per participant */
    {SQL_SEARCH_MSG_ID,
     SEARCH_INDEXED(
         "t.payer = ANY (ARRAY(SELECT code FROM participants)) AND t.msg_id = $3::text")},
    /* ref: transfers_ref (schema/007) */
    {SQL_SEARCH_REF, SEARCH_INDEXED("coalesce(t.loan_id, t.invoice_number) = $8::text")},
    /* rejections: transfers_rejected (schema/007), newest first */
    {SQL_SEARCH_REJECTED, SEARCH_INDEXED("t.status = 'RJCT'")},
    /* anything else: the newest OPS_SEARCH_SCAN_ROWS below $1 */
    {SQL_SEARCH_SCAN, "WITH hit AS (SELECT t.* FROM " SEARCH_SCANNED " t WHERE " SEARCH_FILTER
                      " ORDER BY t.id DESC LIMIT $2::integer), " SEARCH_EDGE " " SEARCH_ANSWER(
                          "(SELECT id FROM edge)", "(SELECT id FROM edge) IS NOT NULL")},
    /* $1 payer, $2 msg_id */
    {SQL_STATUS_BY_MSG_ID,
     "SELECT " TRANSFER_OUTCOME_COLUMNS " FROM transfers t WHERE t.payer = $1 AND t.msg_id = $2"},
    /* $1 id */
    {SQL_STATUS_BY_ID, "SELECT " TRANSFER_OUTCOME_COLUMNS " FROM transfers t WHERE t.id = $1"},
    /* $1 payer, $2 batch_id, $3 fingerprint (hex), $4 items -> new|same|other (schema/010) */
    {SQL_BULK_REGISTER, "SELECT bulk_register($1, $2, decode($3, 'hex'), $4::integer)"},
    {SQL_RETURN_ORIGINAL, "SELECT " TRANSFER_OUTCOME_COLUMNS " FROM transfers t WHERE t.id = $1"},
    /* Operator actions (schema/006). $1-$4 are always the operator: name,
     * role, certificate serial and SHA-256 fingerprint. */
    /* $5 code */
    {SQL_PARTICIPANT_SUSPEND, "SELECT status FROM participant_suspend($1, $2, $3, $4, $5)"},
    /* $5 action, $6 target, $7 params (JSON), $8 seconds to live -> the proposal */
    {SQL_PROPOSAL_CREATE, "SELECT proposal_json(p)::text FROM proposal_create($1, $2, $3, $4, $5, "
                          "$6, $7::jsonb, $8::integer) p"},
    /* approvals: $1 proposal id, $2-$5 the approving operator; each gives
     * the change's result and the proposal as it now is, last */
    {SQL_APPROVE_NDC, "SELECT ndc, coalesce(ndc_grace, -1), proposal::text "
                      "FROM proposal_approve_ndc($1::bigint, $2, $3, $4, $5)"},
    {SQL_APPROVE_RESUME,
     "SELECT status, proposal::text FROM proposal_approve_resume($1::bigint, $2, $3, $4, $5)"},
    {SQL_APPROVE_ADD, "SELECT code, name, kind, status, ndc, position_account, "
                      "settlement_account, proposal::text "
                      "FROM proposal_approve_participant_add($1::bigint, $2, $3, $4, $5)"},
    /* $1 proposal id, $2-$5 the operator, $6 reason ("" for none) */
    {SQL_PROPOSAL_REJECT,
     "SELECT proposal_reject($1::bigint, $2, $3, $4, $5, NULLIF($6, ''))::text"},
    {SQL_PROPOSAL_WITHDRAW,
     "SELECT proposal_withdraw($1::bigint, $2, $3, $4, $5, NULLIF($6, ''))::text"},
    /* -> how many pending proposals were past their time (schema/012) */
    {SQL_PROPOSAL_EXPIRE, "SELECT proposal_expire_due()"},
    /* $1 id: what deciding a proposal needs to know first */
    {SQL_PROPOSAL_READ,
     "SELECT p.action, p.target, p.params::text, p.proposed_by, p.proposed_fingerprint, "
     "proposal_json(p) ->> 'state', proposal_json(p)::text FROM proposals p "
     "WHERE p.id = $1::bigint"},
    /* $1 id -> one JSON document */
    {SQL_PROPOSAL_SHOW, "SELECT json_build_object('proposal', proposal_json(p))::text "
                        "FROM proposals p WHERE p.id = $1::bigint"},
    /* $1 state ("" for every one): the newest 200 */
    {SQL_PROPOSALS,
     "SELECT json_build_object('proposals', coalesce(json_agg(y.j ORDER BY y.id DESC), "
     "'[]'))::text FROM (SELECT x.id, x.j FROM (SELECT p.id, proposal_json(p) AS j "
     "FROM proposals p WHERE $1 = '' OR p.state = $1 "
     "OR (p.state = 'pending' AND $1 = 'expired')) x "
     "WHERE $1 = '' OR x.j ->> 'state' = $1 ORDER BY x.id DESC LIMIT 200) y"},
    /* $1 payees, $2 ids (element i: $1[i] acknowledged $2[i]) -> how many
     * rows went */
    {SQL_OUTBOX_ACK, "SELECT payee_outbox_ack_all($1::text[], $2::bigint[])"},
    /* $1 payee, $2 most rows: its notices still unacknowledged */
    {SQL_OUTBOX_PAYEE, "SELECT " OUTBOX_COLUMNS " FROM payee_outbox o JOIN transfers t ON "
                       "t.id = o.transfer_id WHERE o.payee = $1 ORDER BY o.transfer_id "
                       "LIMIT $2::integer"},
    /* $1 seconds, $2 most rows: every payee's notices older than that */
    {SQL_OUTBOX_STALE, "SELECT " OUTBOX_COLUMNS " FROM payee_outbox o JOIN transfers t ON "
                       "t.id = o.transfer_id WHERE o.created_at < now() - make_interval(secs => "
                       "$1::double precision) ORDER BY o.transfer_id LIMIT $2::integer"},
    /* $1 code, $2 the cap the switch reserves under -> the grace left, -1 for none */
    {SQL_END_GRACE, "SELECT coalesce(participant_end_ndc_grace($1, $2::bigint), -1)"},
    /* the scheme's state the switch follows: participants, then one row
     * with the open window, then the fee schedule (sync.c) */
    {SQL_STATE_PARTICIPANTS, PARTICIPANTS_SQL},
    {SQL_STATE_WINDOW, OPEN_WINDOW_SQL},
    {SQL_STATE_FEES, FEES_SQL},
    /* $1 window, $2 this boot's first transfer id -> the postings of earlier
     * boots in the window and their gross, as close_window() sums them */
    {SQL_METRICS_WINDOW,
     "SELECT count(DISTINCT e.transfer_id), "
     "coalesce(sum(-e.amount) FILTER (WHERE e.amount < 0), 0) "
     "FROM ledger_entries e WHERE e.window_id = $1::bigint AND e.leg <> 'settlement' "
     "AND e.transfer_id < $2::bigint"},
    /* settlement notices not yet acknowledged */
    {SQL_METRICS_OUTBOX, "SELECT count(*) FROM payee_outbox"},
    /* $1 id -> one JSON document */
    {SQL_TRANSFER_SHOW,
     "SELECT json_build_object("
     "'transfer', (to_jsonb(t) - 'fingerprint') || "
     "jsonb_build_object('fingerprint', encode(t.fingerprint, 'hex')), "
     "'entries', coalesce((SELECT json_agg(json_build_object('account_id', e.account_id, "
     "'participant', a.participant, 'account_kind', a.kind, 'amount', e.amount, 'leg', e.leg, "
     "'window_id', e.window_id) ORDER BY e.leg DESC, e.amount) "
     "FROM ledger_entries e JOIN accounts a ON a.id = e.account_id WHERE e.transfer_id = t.id), "
     "'[]'), "
     "'returns', coalesce((SELECT json_agg(r.id ORDER BY r.id) FROM transfers r "
     "WHERE r.original_id = t.id), '[]'), 'state', 'done', "
     "'timeline', " TRANSFER_TIMELINE ", "
     "'payee_notice', CASE WHEN EXISTS (SELECT 1 FROM payee_outbox o WHERE o.payee = t.payee "
     "AND o.transfer_id = t.id) THEN 'pending' WHEN t.status = 'ACSC' THEN 'acknowledged' ELSE "
     "'not recorded' END)::text "
     "FROM transfers t WHERE t.id = $1::bigint"},
    {SQL_WINDOWS,
     "SELECT json_build_object('windows', coalesce(json_agg(json_build_object("
     "'id', w.id, 'state', w.state, 'opened_at', w.opened_at, 'closed_at', w.closed_at, "
     "'settled_at', w.settled_at, 'postings', w.postings, 'gross', w.gross, "
     "'closed_by', w.closed_by, 'settled_by', w.settled_by) ORDER BY w.id DESC), '[]'))::text "
     "FROM (SELECT * FROM settlement_windows ORDER BY id DESC LIMIT 200) w"},
    /* $1 window id */
    {SQL_WINDOW_REPORT,
     "SELECT w.state, json_build_object('window', to_jsonb(w), "
     "'positions', coalesce((SELECT json_agg(json_build_object("
     "'participant', coalesce(p.participant, 'SCHEME-FEES'), 'account_id', p.account_id, "
     "'net', p.net, 'postings', p.postings) ORDER BY p.participant NULLS LAST) "
     "FROM window_positions p WHERE p.window_id = w.id), '[]'), "
     "'total', (SELECT coalesce(sum(p.net), 0) FROM window_positions p "
     "WHERE p.window_id = w.id))::text "
     "FROM settlement_windows w WHERE w.id = $1::bigint"},
    {SQL_RECONCILE, "SELECT check_name, status, detail FROM reconcile()"},
    {SQL_FEES, "SELECT json_build_object('fees', coalesce(json_agg(json_build_object("
               "'purpose', purpose, 'bps', bps, 'min_fee', min_fee, 'max_fee', max_fee, "
               "'charged_to', charged_to) ORDER BY purpose), '[]'))::text FROM fee_schedule"},
    /* $1 limit */
    {SQL_AUDIT, "SELECT json_build_object('audit', coalesce(json_agg(json_build_object("
                "'id', a.id, 'at', a.at, 'operator', a.operator, 'role', a.operator_role, "
                "'certificate', CASE WHEN a.cert_fingerprint IS NOT NULL THEN "
                "json_build_object('serial', a.cert_serial, 'fingerprint', a.cert_fingerprint) "
                "END, 'action', a.action, 'target', a.target, 'before', a.before, "
                "'after', a.after, 'proposal', a.proposal_id) ORDER BY a.id DESC), "
                "'[]'))::text FROM (SELECT * FROM audit_log ORDER BY id DESC "
                "LIMIT $1::integer) a"},
    /* requests to pay (switch/rtp.c, schema/009) */
    {SQL_REQUEST_CREATE,
     "SELECT id, state, coalesce(reason, ''), coalesce(reason_text, ''), existed, same_request, "
     "deliver_ms, expires_ms FROM request_create($1, $2, $3, $4, $5, $6, $7::bigint, $8, $9, "
     "$10::integer, $11, $12::date, $13::bigint, $14::bigint, $15, $16, $17)"},
    /* $1 id, $2 to, $3 by, $4 reason, $5 text -> state, moved (no row: not by's) */
    {SQL_REQUEST_MOVE, "SELECT state, moved FROM request_move($1::bigint, $2, $3, $4, $5)"},
    {SQL_REQUEST_BIND, "SELECT reason, reason_text FROM request_bind_payment($1::bigint, "
                       "$2::bigint, $3, $4, $5, $6, $7::bigint, $8, $9, $10::integer, $11)"},
    {SQL_REQUEST_BLOCK, "SELECT request_block($1, $2, $3, $4::boolean)"},
    {SQL_REQUEST_RULES, "SELECT purpose, max_open_per_pair, max_per_reference, quiet_start_s, "
                        "quiet_end_s, default_expiry_s, max_expiry_s FROM request_rules"},
    {SQL_REQUESTS_OPEN,
     "SELECT id, state, creditor_agent, msg_id, creditor_account, creditor_name, debtor_agent, "
     "debtor_account, amount, purpose, coalesce(loan_id, ''), coalesce(instalment, 0), "
     "coalesce(invoice_number, ''), coalesce(to_char(due_date, 'YYYY-MM-DD'), ''), "
     "(extract(epoch FROM deliver_at) * 1000)::bigint, "
     "(extract(epoch FROM expires_at) * 1000)::bigint FROM requests "
     "WHERE state IN ('pending', 'delivered', 'accepted') ORDER BY id"},
    /* operators: $1 participant ('' any), $2 loan_id ('' any), $3 state ('' any), $4 limit,
     * $5 before (0: newest) -> one JSON document, newest first */
    {SQL_REQUESTS_ADMIN,
     "SELECT json_build_object('requests', coalesce(json_agg(json_build_object("
     "'id', r.id, 'state', r.state, 'creditor_agent', r.creditor_agent, 'msg_id', r.msg_id, "
     "'debtor_agent', r.debtor_agent, 'debtor_account', "
     "CASE WHEN length(r.debtor_account) > 4 THEN repeat('*', length(r.debtor_account) - 4) "
     "|| right(r.debtor_account, 4) ELSE r.debtor_account END, "
     "'amount', r.amount, 'purpose', r.purpose, 'loan_id', r.loan_id, "
     "'instalment', r.instalment, 'invoice_number', r.invoice_number, 'due_date', r.due_date, "
     "'deliver_at', r.deliver_at, 'expires_at', r.expires_at, 'reason', r.reason, "
     "'reason_text', r.reason_text, 'paid_transfer_id', r.paid_transfer_id, "
     "'created_at', r.created_at, 'updated_at', r.updated_at) ORDER BY r.id DESC), '[]'), "
     "'next_before', CASE WHEN count(*) = $4::integer THEN min(r.id) END)::text "
     "FROM (SELECT * FROM requests q WHERE ($1 = '' OR q.creditor_agent = $1 OR "
     "q.debtor_agent = $1) AND ($2 = '' OR q.loan_id = $2) AND ($3 = '' OR q.state = $3) "
     "AND ($5::bigint = 0 OR q.id < $5::bigint) ORDER BY q.id DESC LIMIT $4::integer) r"},
};
const size_t sql_query_nstmts = sizeof(sql_query_stmts) / sizeof(sql_query_stmts[0]);

const char sql_load_fees[] = FEES_SQL;

/* the alias directory at start (alias_load): one line per alias */
const char sql_load_aliases[] =
    "COPY (SELECT alias, participant, account, holder_name, coalesce(port_to, ''), "
    "coalesce((extract(epoch FROM port_expires_at) * 1000)::bigint, 0) FROM aliases) TO STDOUT";
