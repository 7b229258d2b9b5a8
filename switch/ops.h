/*
 * ops: what an operator can ask of the running switch — the participant
 * registry, caps, positions, transfers, settlement windows, reconcile,
 * four-eyes proposals — for the admin API (admin.c) and the settlement
 * scheduler. Every change is made in the database first (through audited
 * SQL functions, schema/003 and 006), then in memory, so the database and
 * the switch never disagree (a lowered cap alone goes into memory first:
 * see ops_proposal_approve).
 *
 * Four-eyes (schema/006): a cap change, a settlement, a new participant and
 * resuming a suspended one are proposed (ops_propose: 202 with the
 * proposal) and take effect only when a second operator approves them
 * (ops_proposal_approve: the approval and the change are one database
 * transaction). Suspending and closing a window are immediate. Each call
 * that changes something takes the operator (struct ops_actor) for the
 * audit trail; the role checks are admin.c's for the routes and ops's for
 * a proposal's action, and the database checks both again.
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
 *   audit         {"audit": [{"id","at","operator","role","certificate":
 *                  {"serial","fingerprint"} or null,"action","target",
 *                  "before","after","proposal": id or null}]}
 *   proposal P    {"id","action","target","params","proposed_by",
 *                  "proposed_role","proposed_certificate","proposed_at",
 *                  "expires_at","state","needs","decided_by","decided_role",
 *                  "decided_certificate","decided_at","reason"}
 *                 (schema/006 proposal_json); propose: 202 {"proposal": P};
 *                 proposals {"proposals": [P...]}; proposal {"proposal": P};
 *                 approve 200 {"proposal": P, "result": the action's own
 *                 answer: {"participant": ...} or, for settle, {"settled",
 *                 "positions"}}; reject and withdraw 200 {"proposal": P}
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

/* The console's roles, lowest first: each may do what those below it may.
 * viewer reads; operator suspends, proposes resumes and closes windows;
 * supervisor also proposes caps, settlements and participants. */
enum ops_role {
    OPS_ROLE_NONE = 0, /* no certificate role: the switch itself (its schedule) */
    OPS_ROLE_VIEWER,
    OPS_ROLE_OPERATOR,
    OPS_ROLE_SUPERVISOR,
};
const char *ops_role_name(enum ops_role role); /* "viewer", ...; "" for NONE */
/* "viewer", "operator" or "supervisor"; -1 for anything else. */
int ops_role_parse(const char *text, enum ops_role *role) __attribute__((warn_unused_result));

/* What needs four eyes; the names are the API's and the database's. */
enum ops_action {
    OPS_ACTION_NDC = 0,
    OPS_ACTION_SETTLE,
    OPS_ACTION_PARTICIPANT_ADD,
    OPS_ACTION_RESUME,
};
const char *ops_action_name(enum ops_action action);
int ops_action_parse(const char *text, enum ops_action *action) __attribute__((warn_unused_result));
/* The role that may propose the action, and approve or reject its proposals. */
enum ops_role ops_action_role(enum ops_action action);

#define OPS_NAME_MAX        64
#define OPS_SERIAL_MAX      84
#define OPS_FINGERPRINT_MAX 65

/* Who asks: an operator's certificate (CN, title, serial, SHA-256
 * fingerprint; admin.c), or the switch itself (the settlement schedule:
 * role NONE and no certificate). Copied by ops where it keeps it. */
struct ops_actor {
    char name[OPS_NAME_MAX];
    enum ops_role role;
    char serial[OPS_SERIAL_MAX];           /* "" without a certificate */
    char fingerprint[OPS_FINGERPRINT_MAX]; /* "" without a certificate */
};

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

/* The operators' view of requests to pay (GET /api/v1/requests): collection
 * attempts per loan. Strings "" when not asked for. */
struct ops_request_query {
    char participant[8]; /* creditor or debtor agent */
    char loan_id[36];
    char state[16]; /* pending, delivered, accepted, declined, ... */
    int limit;      /* 1..OPS_SEARCH_LIMIT_MAX */
    int64_t before; /* ids below this one; 0 for the newest */
};

/* `db` is the switch's query connection (not the posting one). */
int ops_init(struct event_base *base, struct pgconn *db) __attribute__((warn_unused_result));
/* "HH:MM,HH:MM" UTC times at which the window closes by itself; "" = manual.
 * proposal_ttl_s: how long a new proposal waits for its approval. */
void ops_configure(const char *settlement_schedule, int64_t proposal_ttl_s);
void ops_free(void);

void ops_participants(ops_done done, void *arg);
void ops_participant(const char *code, ops_done done, void *arg);
/* Immediate, for one operator: its sessions finish what they have in
 * flight, then close. */
void ops_participant_suspend(const struct ops_actor *who, const char *code, ops_done done,
                             void *arg);
void ops_positions(ops_done done, void *arg);
void ops_transfer_show(uint64_t id, ops_done done, void *arg);
/* {"transfers": [summary...newest first], "next": id or null, "partial":
 * bool}. A search by msg_id, ref or status RJCT reads an index; any other
 * examines at most OPS_SEARCH_SCAN_ROWS transfers below `before` per call:
 * when those ran out before `limit` matched, "partial" is true and "next"
 * continues below the last one examined. Finished transfers only (the
 * database's); a transfer still in flight is found by its id. */
void ops_requests(const struct ops_request_query *q, ops_done done, void *arg);
void ops_transfer_search(const struct ops_transfer_query *q, ops_done done, void *arg);
void ops_windows(ops_done done, void *arg);
void ops_window_close(const struct ops_actor *who, ops_done done, void *arg);
void ops_window_report(int64_t window_id, ops_done done, void *arg);

/* Four-eyes. ops_propose: `target` a participant code (ndc, resume,
 * participant_add) or a closed window's id (settle); params (borrowed) the
 * action's: {"ndc": paisa} for ndc, {"name", "kind", "ndc"} for
 * participant_add, {} otherwise. Answers 202 {"proposal": P}. */
void ops_propose(const struct ops_actor *who, enum ops_action action, const char *target,
                 const json_t *params, ops_done done, void *arg);
/* state: NULL for every proposal, else "pending", "approved", "rejected",
 * "expired" or "withdrawn". */
void ops_proposals(const char *state, ops_done done, void *arg);
void ops_proposal(int64_t id, ops_done done, void *arg);
/* 403 when `who` proposed it (same name or same certificate) or lacks the
 * action's role; 409 when it is not pending (decided, or expired). */
void ops_proposal_approve(const struct ops_actor *who, int64_t id, ops_done done, void *arg);
/* The proposer takes a pending proposal back (403 for anyone else, who may
 * reject it instead; 409 when it is not pending). reason may be NULL. */
void ops_proposal_withdraw(const struct ops_actor *who, int64_t id, const char *reason,
                           ops_done done, void *arg);
/* reason may be NULL. */
void ops_proposal_reject(const struct ops_actor *who, int64_t id, const char *reason, ops_done done,
                         void *arg);
void ops_reconcile(ops_done done, void *arg);
void ops_fees(ops_done done, void *arg);
void ops_audit(int limit, ops_done done, void *arg);
void ops_status(ops_done done, void *arg);
/* {"status": "ok"|"degraded"|"down", "role", "fence", "fence_epoch",
 * "ledger_accepting", ...}: 200 when ok, else 503 (a load balancer's or a
 * supervisor's probe). */
void ops_health(ops_done done, void *arg);

#endif
