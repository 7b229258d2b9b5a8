/*
 * ops: what an operator can ask of the running switch — the participant
 * registry, caps, positions, transfers, settlement windows, reconcile —
 * for the admin API (admin.c) and the settlement scheduler. Every change is
 * made in the database first (through audited SQL functions, schema/003),
 * then in memory, so the database and the switch never disagree.
 *
 * Every call answers exactly once through `done`, with an HTTP-style status
 * and a JSON body whose ownership passes to the callee:
 *   200 OK / 201 created          the result
 *   400 bad request               {"error": "..."}  (invalid input)
 *   404 not found                 {"error": "..."}
 *   409 conflict                  {"error": "..."}  (e.g. window not closed)
 *   503 unavailable               {"error": "..."}  (database down)
 * `done` may run before the call returns (answers from memory) or later from
 * the loop (database round trips). The caller must keep `arg` valid until
 * then; to abandon a request, keep a flag in arg rather than freeing it.
 *
 * JSON shapes (amounts are integer paisa):
 *   participants  {"participants": [{"code","name","kind","status","ndc",
 *                  "sessions","posted","reserved","headroom","used_percent",
 *                  "warning"}]}
 *   participant   {"participant": {...as above}}
 *   positions     {"window": id, "warn_percent": n, "positions": [{"code",
 *                  "posted","reserved","ndc","headroom","used_percent",
 *                  "warning"}]}
 *   transfer      {"transfer": {...all columns...}, "entries": [...],
 *                  "returns": [ids], "state": "done", "timeline": [{"event",
 *                  "at"}...], "payee_notice": "pending"|"acknowledged"|
 *                  "not sent"} or, in flight, {"transfer": {...}, "state":
 *                  "awaiting_payee"|"posting", "timeline": [...]}
 *                  timeline events: received, decided (a rejection), posted
 *                  (ACSC, committed), reported (the payee's notice written
 *                  with the posting and sent), acknowledged ("at" null: the
 *                  acknowledgement removes the notice and keeps no time),
 *                  returned (one per return, with "id", "amount", "status")
 *   transfers     {"transfers": [{"id","kind","payer","payee","msg_id",
 *                  "end_to_end_id","amount","fee","currency","purpose",
 *                  "loan_id","instalment","invoice_number","status","reason",
 *                  "original_id","window_id","received_at","finished_at"}],
 *                  "next": id|null, "partial": bool}
 *   windows       {"windows": [{"id","state","opened_at","closed_at",
 *                  "settled_at","postings","gross","closed_by","settled_by"}]}
 *   window close  {"closed": id, "opened": id, "postings": n, "gross": n}
 *   window settle {"settled": id, "positions": [{"participant","delta"}]}
 *   report        {"window": {...}, "positions": [{"participant",
 *                  "account_id","net","postings"}], "total": 0}
 *   reconcile     {"ok": bool, "checks": [{"name","ok","status","detail"}]},
 *                 status "ok", "failed" or "not checked" (the check could not
 *                 run; never a pass); the last check compares the switch's
 *                 positions with the ledger at a cut of the postings
 *   fees          {"fees": [{"purpose","bps","min_fee","max_fee","charged_to"}]}
 *   audit         {"audit": [{"id","at","operator","action","target",
 *                  "before","after"}]}
 *   status        {"ready": bool, "draining": bool, "sessions": n,
 *                  "inflight": n, "window": id, "counters": {"received",
 *                  "settled","rejected","duplicates","batches",
 *                  "batched_transfers","max_batch","batch_attempts",
 *                  "batches_refused","batches_retried","state_syncs",
 *                  "idempotency_keys"}}
 */
#ifndef SIKKA_OPS_H
#define SIKKA_OPS_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgconn.h"

typedef void (*ops_done)(void *arg, int status, json_t *body);

#define OPS_SEARCH_LIMIT_DEFAULT 50
#define OPS_SEARCH_LIMIT_MAX     200

/* A transfer search (GET /api/v1/transfers), validated by admin.c: every
 * string "" when not asked for; times canonical UTC ISO 8601. */
struct ops_transfer_query {
    char msg_id[36];
    char end_to_end_id[36];
    char participant[8]; /* payer or payee */
    char status[8];      /* "ACSC" or "RJCT" */
    char purpose[24];
    char ref[36];   /* loan_id or invoice_number */
    char from[40];  /* received_at >= from */
    char to[40];    /* received_at < to */
    int limit;      /* 1..OPS_SEARCH_LIMIT_MAX */
    int64_t before; /* ids below this one; 0 for the newest */
};

/* `db` is the switch's query connection (not the posting one). */
int ops_init(struct event_base *base, struct pgconn *db) __attribute__((warn_unused_result));
/* "HH:MM,HH:MM" UTC times at which the window closes by itself; "" = manual. */
void ops_configure(const char *settlement_schedule);
void ops_free(void);

void ops_participants(ops_done done, void *arg);
void ops_participant(const char *code, ops_done done, void *arg);
void ops_participant_add(const char *operator_name, const char *code, const char *name,
                         const char *kind, int64_t ndc, ops_done done, void *arg);
void ops_participant_set_active(const char *operator_name, const char *code, bool active,
                                ops_done done, void *arg);
void ops_ndc_set(const char *operator_name, const char *code, int64_t ndc, ops_done done,
                 void *arg);
void ops_positions(ops_done done, void *arg);
void ops_transfer_show(uint64_t id, ops_done done, void *arg);
/* {"transfers": [summary...newest first], "next": id or null, "partial":
 * bool}. A search by msg_id, ref or status RJCT reads an index; any other
 * examines at most OPS_SEARCH_SCAN_ROWS transfers below `before` per call:
 * when those ran out before `limit` matched, "partial" is true and "next"
 * continues below the last one examined. Finished transfers only (the
 * database's); a transfer still in flight is found by its id. */
void ops_transfer_search(const struct ops_transfer_query *q, ops_done done, void *arg);
void ops_windows(ops_done done, void *arg);
void ops_window_close(const char *operator_name, ops_done done, void *arg);
void ops_window_settle(const char *operator_name, int64_t window_id, ops_done done, void *arg);
void ops_window_report(int64_t window_id, ops_done done, void *arg);
void ops_reconcile(ops_done done, void *arg);
void ops_fees(ops_done done, void *arg);
void ops_audit(int limit, ops_done done, void *arg);
void ops_status(ops_done done, void *arg);
/* {"status": "ok"|"degraded"|"down", "role", "fence", "fence_epoch",
 * "ledger_accepting", ...}: 200 when ok, else 503 (a load balancer's or a
 * supervisor's probe). */
void ops_health(ops_done done, void *arg);

#endif
