/*
 * sql: every SQL statement the switch sends, in one place. Statements run on
 * the event loop are prepared by pgconn under the names below; the start-up
 * statements run once, before the loop, on a plain blocking connection.
 */
#ifndef SIKKA_SQL_H
#define SIKKA_SQL_H

#include <stddef.h>

#include "pgconn.h"

/* prepared on the ledger's (posting) connection */
#define SQL_POST_BATCH     "post_batch"
#define SQL_CLOSE_WINDOW   "close_window"
#define SQL_APPROVE_SETTLE "approve_settle"
#define SQL_RESYNC         "resync"
#define SQL_BALANCES       "balances"

/* prepared on the query connection (status queries, returns, operators) */
#define SQL_STATUS_BY_MSG_ID    "status_by_msg_id"
#define SQL_STATUS_BY_ID        "status_by_id"
#define SQL_RETURN_ORIGINAL     "return_original"
#define SQL_PARTICIPANT_SUSPEND "participant_suspend"
#define SQL_PROPOSAL_CREATE     "proposal_create"
#define SQL_PROPOSAL_READ       "proposal_read"
#define SQL_PROPOSAL_SHOW       "proposal_show"
#define SQL_PROPOSALS           "proposals"
#define SQL_PROPOSAL_REJECT     "proposal_reject"
#define SQL_PROPOSAL_WITHDRAW   "proposal_withdraw"
#define SQL_PROPOSAL_EXPIRE     "proposal_expire"
#define SQL_APPROVE_NDC         "approve_ndc"
#define SQL_APPROVE_RESUME      "approve_resume"
#define SQL_APPROVE_ADD         "approve_participant_add"
#define SQL_TRANSFER_SHOW       "transfer_show"
#define SQL_SEARCH_MSG_ID       "search_msg_id"
#define SQL_SEARCH_REF          "search_ref"
#define SQL_SEARCH_REJECTED     "search_rejected"
#define SQL_SEARCH_SCAN         "search_scan"
/* what a search without an indexed filter examines per call (ops.h) */
#define OPS_SEARCH_SCAN_ROWS   20000
#define SQL_WINDOWS            "windows"
#define SQL_WINDOW_REPORT      "window_report"
#define SQL_RECONCILE          "reconcile"
#define SQL_FEES               "fees"
#define SQL_AUDIT              "audit"
#define SQL_END_GRACE          "end_grace"
#define SQL_OUTBOX_ACK         "outbox_ack"
#define SQL_OUTBOX_PAYEE       "outbox_payee"
#define SQL_OUTBOX_STALE       "outbox_stale"
#define SQL_STATE_PARTICIPANTS "state_participants"
#define SQL_STATE_WINDOW       "state_window"
#define SQL_STATE_FEES         "state_fees"
#define SQL_METRICS_WINDOW     "metrics_window"
#define SQL_METRICS_OUTBOX     "metrics_outbox"
#define SQL_BULK_REGISTER      "bulk_register"
/* requests to pay (rtp.c), on the peer-query connection; operators' list on
 * the query connection */
#define SQL_REQUEST_CREATE "request_create"
#define SQL_REQUEST_MOVE   "request_move"
#define SQL_REQUEST_BIND   "request_bind"
#define SQL_REQUEST_BLOCK  "request_block"
#define SQL_REQUEST_RULES  "request_rules"
#define SQL_REQUESTS_OPEN  "requests_open"
#define SQL_REQUESTS_ADMIN "requests_admin"
/* the alias directory (alias.c, schema/008) */
#define SQL_ALIAS_REGISTER   "alias_register"
#define SQL_ALIAS_UPDATE     "alias_update"
#define SQL_ALIAS_DEREGISTER "alias_deregister"
#define SQL_ALIAS_PORT       "alias_port"
#define SQL_ALIAS_RELEASE    "alias_release"
#define SQL_ALIAS_EXPIRE     "alias_expire_ports"
#define SQL_ALIAS_LIST       "alias_list"
#define SQL_ALIAS_GET        "alias_get"

extern const struct pgconn_stmt sql_query_stmts[];
extern const size_t sql_query_nstmts;

extern const struct pgconn_stmt sql_ledger_stmts[];
extern const size_t sql_ledger_nstmts;

/* start-up (recovery.c) */
extern const char sql_boot[];
extern const char sql_load_participants[];
extern const char sql_load_scheme_accounts[];
extern const char sql_open_window[];
extern const char sql_preload_keys[];
extern const char sql_check_schema[];
extern const char sql_load_fees[];
extern const char sql_load_aliases[]; /* a COPY TO STDOUT (alias.c) */

#endif
