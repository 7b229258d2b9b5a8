/*
 * pgconn: one asynchronous PostgreSQL connection on the event loop, in libpq
 * pipeline mode. Nothing here ever blocks: connecting, preparing, sending and
 * reading are driven by socket events.
 *
 * A request is one prepared statement followed by a pipeline sync, so it runs
 * as one implicit transaction that commits at the sync. Its callback fires
 * exactly once, when the sync comes back: with the statement's result when
 * the statement succeeded and the transaction committed, otherwise with NULL
 * and a message. Requests are answered in the order they were sent; several
 * may be in flight at once.
 *
 * On a lost connection every in-flight request is failed with
 * `PGCONN_LOST` set in the callback's flags (its COMMIT may or may not have
 * happened: callers must be able to retry idempotently), then the connection
 * is re-established with exponential backoff and the statements re-prepared.
 * pgconn_exec() refuses work while the connection is not ready; callers keep
 * their own queue and retry from the on_ready callback.
 *
 * Owner: whoever calls pgconn_new (main); single-threaded.
 */
#ifndef SIKKA_PGCONN_H
#define SIKKA_PGCONN_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct pgconn;

struct pgconn_stmt {
    const char *name;
    const char *sql;
};

enum pgconn_flags {
    PGCONN_OK = 0,
    PGCONN_FAILED = 1, /* the statement failed for what it asked (data exception,
                        * constraint, a RAISE of ours): nothing was committed */
    PGCONN_LOST = 2,   /* the connection died; the outcome is unknown */
    PGCONN_RETRY = 3,  /* failed for a reason that says nothing about the request
                        * (deadlock, serialization, timeout, shutdown, read-only
                        * server, missing privilege, ...): nothing was committed;
                        * the same request may succeed later */
};

/* res is owned by pgconn and valid only during the call. `error` is the
 * server's primary message with its SQLSTATE, "message (SQLSTATE 23514)",
 * or libpq's own. */
typedef void (*pgconn_cb)(void *arg, PGresult *res, enum pgconn_flags flags, const char *error);
typedef void (*pgconn_ready_cb)(void *arg);
/* A notification on a channel the connection listens on. */
typedef void (*pgconn_notify_cb)(void *arg, const char *channel, const char *payload);

/* `stmts` (and its strings) must outlive the connection. */
struct pgconn *pgconn_new(struct event_base *base, const char *name, const char *conninfo,
                          const struct pgconn_stmt *stmts, size_t nstmts);
void pgconn_set_ready_cb(struct pgconn *c, pgconn_ready_cb cb, void *arg);

/* LISTENs on `channel` (an SQL identifier, copied) from every (re)connect
 * on, before the ready callback runs; notifications go to cb. Notifications
 * sent while the connection was down are lost: the ready callback is where
 * to re-read whatever they are about. Call before pgconn_start. */
int pgconn_listen(struct pgconn *c, const char *channel, pgconn_notify_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* A statement (no parameters, copied) run on every (re)connect with the
 * prepares, before the ready callback: e.g. taking a session lock every
 * connection of this kind must hold. It may wait (a lock): the connection
 * is ready once it has run. Call before pgconn_start. */
int pgconn_set_init(struct pgconn *c, const char *sql) __attribute__((warn_unused_result));

/* How a failed statement's SQLSTATE is to be treated: PGCONN_FAILED for the
 * request's own fault (classes 22 data exception, 23 integrity constraint,
 * P0 PL/pgSQL raise), PGCONN_RETRY for everything else. */
enum pgconn_flags pgconn_classify(const char *sqlstate);

/* Starts connecting (and reconnecting after failures). */
int pgconn_start(struct pgconn *c) __attribute__((warn_unused_result));

/* Sends a prepared statement with text parameters; the values need only
 * live during this call. Returns -1 when not ready or the send failed (the
 * callback is then not called). */
int pgconn_exec(struct pgconn *c, const char *stmt, int nparams, const char *const *values,
                pgconn_cb cb, void *arg) __attribute__((warn_unused_result));

bool pgconn_is_ready(const struct pgconn *c);
const char *pgconn_name(const struct pgconn *c);

/* Closes the connection; in-flight requests are failed with PGCONN_LOST. */
void pgconn_free(struct pgconn *c);

#endif
