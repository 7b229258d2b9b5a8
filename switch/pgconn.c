#include "pgconn.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

enum pgconn_state {
    PGCONN_DOWN = 0,   /* waiting for the backoff timer */
    PGCONN_CONNECTING, /* PQconnectPoll in progress */
    PGCONN_PREPARING,  /* statements sent, waiting for their sync */
    PGCONN_READY,
};

static const char *const state_names[] = {"down", "connecting", "preparing", "ready"};

struct pgconn_req {
    struct pgconn_req *next;
    pgconn_cb cb;
    void *arg;
    int queries_left; /* results still to read before the sync */
    PGresult *result; /* the statement's result, kept for the callback */
    char error[256];  /* first error seen, "" if none */
    enum pgconn_flags error_kind;
};

struct pgconn {
    struct event_base *base;
    char *name;
    char *conninfo;
    const struct pgconn_stmt *stmts;
    size_t nstmts;
    PGconn *conn;
    enum pgconn_state state;
    int sock;
    struct event *read_ev;
    struct event *write_ev;
    struct event *retry_ev;
    int backoff_ms;
    struct pgconn_req *head, *tail;
    struct pgconn_req *free_reqs;
    size_t in_flight;
    pgconn_ready_cb on_ready;
    void *ready_arg;
    char *listen_sql; /* "LISTEN channel", sent with the prepares */
    char *init_sql;   /* run on every connect, with the prepares */
    pgconn_notify_cb on_notify;
    void *notify_arg;
};

static void set_state(struct pgconn *c, enum pgconn_state s)
{
    if (c->state == s)
        return;
    log_debug("event=pg_state conn=%s from=%s to=%s", c->name, state_names[c->state],
              state_names[s]);
    c->state = s;
}

static void on_socket(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);

struct pgconn *pgconn_new(struct event_base *base, const char *name, const char *conninfo,
                          const struct pgconn_stmt *stmts, size_t nstmts)
{
    struct pgconn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("event=oom what=pgconn conn=%s", name);
        return NULL;
    }
    c->base = base;
    c->name = strdup(name);
    c->conninfo = strdup(conninfo);
    c->stmts = stmts;
    c->nstmts = nstmts;
    c->sock = -1;
    c->backoff_ms = 100;
    c->retry_ev = evtimer_new(base, on_retry, c);
    if (c->name == NULL || c->conninfo == NULL || c->retry_ev == NULL) {
        log_error("event=oom what=pgconn conn=%s", name);
        pgconn_free(c);
        return NULL;
    }
    return c;
}

void pgconn_set_ready_cb(struct pgconn *c, pgconn_ready_cb cb, void *arg)
{
    c->on_ready = cb;
    c->ready_arg = arg;
}

int pgconn_listen(struct pgconn *c, const char *channel, pgconn_notify_cb cb, void *arg)
{
    size_t n = strlen(channel);
    if (n == 0 || n > 63 || strspn(channel, "abcdefghijklmnopqrstuvwxyz_0123456789") != n) {
        log_error("event=pg_error conn=%s why=\"bad channel name\"", c->name);
        return -1;
    }
    free(c->listen_sql);
    c->listen_sql = malloc(n + 8);
    if (c->listen_sql == NULL) {
        log_error("event=oom what=pg_listen conn=%s", c->name);
        return -1;
    }
    snprintf(c->listen_sql, n + 8, "LISTEN %s", channel);
    c->on_notify = cb;
    c->notify_arg = arg;
    return 0;
}

int pgconn_set_init(struct pgconn *c, const char *sql)
{
    free(c->init_sql);
    c->init_sql = strdup(sql);
    if (c->init_sql == NULL) {
        log_error("event=oom what=pg_init conn=%s", c->name);
        return -1;
    }
    return 0;
}

enum pgconn_flags pgconn_classify(const char *sqlstate)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return PGCONN_RETRY;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
        strncmp(sqlstate, "P0", 2) == 0)
        return PGCONN_FAILED;
    return PGCONN_RETRY;
}

bool pgconn_is_ready(const struct pgconn *c)
{
    return c->state == PGCONN_READY;
}

const char *pgconn_name(const struct pgconn *c)
{
    return c->name;
}

static void drop_events(struct pgconn *c)
{
    if (c->read_ev != NULL) {
        event_free(c->read_ev);
        c->read_ev = NULL;
    }
    if (c->write_ev != NULL) {
        event_free(c->write_ev);
        c->write_ev = NULL;
    }
    c->sock = -1;
}

/* (Re)creates the socket events when libpq's socket changed. */
static int watch_socket(struct pgconn *c)
{
    int fd = PQsocket(c->conn);
    if (fd < 0) {
        log_error("event=pg_error conn=%s why=\"no socket\"", c->name);
        return -1;
    }
    if (fd == c->sock && c->read_ev != NULL)
        return 0;
    drop_events(c);
    c->read_ev = event_new(c->base, fd, EV_READ | EV_PERSIST, on_socket, c);
    c->write_ev = event_new(c->base, fd, EV_WRITE, on_socket, c);
    if (c->read_ev == NULL || c->write_ev == NULL) {
        log_error("event=oom what=pg_events conn=%s", c->name);
        drop_events(c);
        return -1;
    }
    c->sock = fd;
    return 0;
}

static struct pgconn_req *req_new(struct pgconn *c)
{
    struct pgconn_req *r = c->free_reqs;
    if (r != NULL)
        c->free_reqs = r->next;
    else
        r = malloc(sizeof(*r));
    if (r == NULL) {
        log_error("event=oom what=pg_request conn=%s", c->name);
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    return r;
}

static void req_push(struct pgconn *c, struct pgconn_req *r)
{
    r->next = NULL;
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->in_flight++;
}

static struct pgconn_req *req_pop(struct pgconn *c)
{
    struct pgconn_req *r = c->head;
    if (r == NULL)
        return NULL;
    c->head = r->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->in_flight--;
    return r;
}

static void req_release(struct pgconn *c, struct pgconn_req *r)
{
    if (r->result != NULL)
        PQclear(r->result);
    r->result = NULL;
    r->next = c->free_reqs;
    c->free_reqs = r;
}

static void schedule_retry(struct pgconn *c)
{
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry_ev, &tv);
    c->backoff_ms = c->backoff_ms * 2 > 5000 ? 5000 : c->backoff_ms * 2;
}

/* Fails everything in flight, closes the connection and schedules a retry. */
/* A server or libpq message made fit for a quoted log value and for the
 * callers' texts: one line, no double quotes (they would end the value). */
static void tidy_message(char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    for (char *p = msg; *p != '\0'; p++) {
        if (*p == '"')
            *p = '\'';
        else if ((unsigned char)*p < 0x20)
            *p = ' ';
    }
}

static void connection_lost(struct pgconn *c, const char *reason)
{
    /* a copy: the message may live in the connection freed below */
    char why[256];
    snprintf(why, sizeof(why), "%s", reason);
    tidy_message(why);
    log_error("event=pg_connection_lost conn=%s in_flight=%zu why=\"%s\" retry_ms=%d", c->name,
              c->in_flight, why, c->backoff_ms);
    drop_events(c);
    if (c->conn != NULL) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    enum pgconn_state was = c->state;
    set_state(c, PGCONN_DOWN);
    struct pgconn_req *r;
    while ((r = req_pop(c)) != NULL) {
        if (r->cb != NULL)
            r->cb(r->arg, NULL, was == PGCONN_READY ? PGCONN_LOST : PGCONN_FAILED, why);
        req_release(c, r);
    }
    schedule_retry(c);
}

static void flush_output(struct pgconn *c)
{
    int rc = PQflush(c->conn);
    if (rc < 0) {
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
    if (rc > 0)
        event_add(c->write_ev, NULL);
}

static int send_prepares(struct pgconn *c)
{
    if (PQsetnonblocking(c->conn, 1) != 0 || PQenterPipelineMode(c->conn) != 1) {
        log_error("event=pg_error conn=%s why=\"cannot enter pipeline mode: %s\"", c->name,
                  PQerrorMessage(c->conn));
        return -1;
    }
    struct pgconn_req *r = req_new(c);
    if (r == NULL)
        return -1;
    r->queries_left = (int)c->nstmts + (c->listen_sql != NULL) + (c->init_sql != NULL);
    for (size_t i = 0; i < c->nstmts; i++) {
        if (PQsendPrepare(c->conn, c->stmts[i].name, c->stmts[i].sql, 0, NULL) != 1) {
            log_error("event=pg_error conn=%s stmt=%s why=\"%s\"", c->name, c->stmts[i].name,
                      PQerrorMessage(c->conn));
            req_release(c, r);
            return -1;
        }
    }
    if (c->listen_sql != NULL &&
        PQsendQueryParams(c->conn, c->listen_sql, 0, NULL, NULL, NULL, NULL, 0) != 1) {
        log_error("event=pg_error conn=%s why=\"%s: %s\"", c->name, c->listen_sql,
                  PQerrorMessage(c->conn));
        req_release(c, r);
        return -1;
    }
    if (c->init_sql != NULL &&
        PQsendQueryParams(c->conn, c->init_sql, 0, NULL, NULL, NULL, NULL, 0) != 1) {
        log_error("event=pg_error conn=%s why=\"init: %s\"", c->name, PQerrorMessage(c->conn));
        req_release(c, r);
        return -1;
    }
    if (PQpipelineSync(c->conn) != 1) {
        log_error("event=pg_error conn=%s why=\"pipeline sync: %s\"", c->name,
                  PQerrorMessage(c->conn));
        req_release(c, r);
        return -1;
    }
    req_push(c, r);
    set_state(c, PGCONN_PREPARING);
    return 0;
}

static void poll_connect(struct pgconn *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->conn);
    switch (st) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        if (watch_socket(c) != 0) {
            connection_lost(c, "cannot watch socket");
            return;
        }
        if (st == PGRES_POLLING_WRITING)
            event_add(c->write_ev, NULL);
        event_add(c->read_ev, NULL);
        return;
    case PGRES_POLLING_OK:
        if (watch_socket(c) != 0) {
            connection_lost(c, "cannot watch socket");
            return;
        }
        event_add(c->read_ev, NULL);
        if (send_prepares(c) != 0) {
            connection_lost(c, "cannot prepare statements");
            return;
        }
        flush_output(c);
        return;
    default:
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
}

static void start_connect(struct pgconn *c)
{
    /* the conninfo (string or URI) expanded, and the connection's name for
     * pg_stat_activity: sikka-switch/ledger-0, .../query, .../peer-query */
    char app[96];
    snprintf(app, sizeof(app), "sikka-switch/%s", c->name);
    const char *const keys[] = {"dbname", "application_name", NULL};
    const char *const values[] = {c->conninfo, app, NULL};
    c->conn = PQconnectStartParams(keys, values, 1);
    if (c->conn == NULL) {
        log_error("event=oom what=PQconnectStart conn=%s", c->name);
        set_state(c, PGCONN_DOWN);
        schedule_retry(c);
        return;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
    set_state(c, PGCONN_CONNECTING);
    poll_connect(c);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

int pgconn_start(struct pgconn *c)
{
    if (c->state != PGCONN_DOWN || c->conn != NULL) {
        log_error("event=pg_error conn=%s why=\"already started\"", c->name);
        return -1;
    }
    start_connect(c);
    return 0;
}

static void finish_head(struct pgconn *c)
{
    struct pgconn_req *r = req_pop(c);
    if (c->state == PGCONN_PREPARING) {
        if (r->error[0] != '\0') {
            log_error("event=pg_prepare_failed conn=%s why=\"%s\"", c->name, r->error);
            req_release(c, r);
            connection_lost(c, "prepare failed");
            return;
        }
        req_release(c, r);
        set_state(c, PGCONN_READY);
        c->backoff_ms = 100;
        log_info("event=pg_ready conn=%s", c->name);
        if (c->on_ready != NULL)
            c->on_ready(c->ready_arg);
        return;
    }
    if (r->cb != NULL) {
        if (r->error[0] != '\0')
            r->cb(r->arg, NULL, r->error_kind, r->error);
        else
            r->cb(r->arg, r->result, PGCONN_OK, NULL);
    }
    req_release(c, r);
}

/* Keeps the first error of a request: from a result (with its SQLSTATE,
 * classified), or libpq's own message (res NULL: the statement was not run). */
static void note_error(struct pgconn_req *r, const PGresult *res, const char *msg)
{
    if (r->error[0] != '\0')
        return;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary != NULL && state != NULL)
        snprintf(r->error, sizeof(r->error), "%s (SQLSTATE %s)", primary, state);
    else
        snprintf(r->error, sizeof(r->error), "%s", msg);
    tidy_message(r->error);
    r->error_kind = pgconn_classify(state);
}

/* Hands every notification libpq has parsed to the listener. */
static void deliver_notifies(struct pgconn *c)
{
    PGnotify *n;
    while (c->conn != NULL && (n = PQnotifies(c->conn)) != NULL) {
        if (c->on_notify != NULL)
            c->on_notify(c->notify_arg, n->relname, n->extra);
        PQfreemem(n);
    }
}

static void read_results(struct pgconn *c)
{
    if (PQconsumeInput(c->conn) != 1) {
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
    while (c->head != NULL && c->conn != NULL && !PQisBusy(c->conn)) {
        struct pgconn_req *r = c->head;
        PGresult *res = PQgetResult(c->conn);
        if (r->queries_left > 0) {
            if (res == NULL) {
                r->queries_left--; /* end of one query's results */
                continue;
            }
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
                if (r->result == NULL) {
                    r->result = res;
                    res = NULL;
                }
            } else if (st == PGRES_PIPELINE_ABORTED) {
                note_error(r, NULL, "pipeline aborted by an earlier error");
            } else {
                note_error(r, res, PQresultErrorMessage(res));
            }
            if (res != NULL)
                PQclear(res);
            continue;
        }
        if (res == NULL)
            break; /* nothing more buffered yet */
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_PIPELINE_SYNC) {
            /* an error raised at commit time arrives before the sync */
            note_error(r, res, PQresultErrorMessage(res));
            PQclear(res);
            continue;
        }
        PQclear(res);
        finish_head(c);
    }
    /* parses what is buffered (notifications arrive between results too) */
    if (c->conn != NULL && c->on_notify != NULL) {
        (void)PQisBusy(c->conn);
        deliver_notifies(c);
    }
    if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_BAD)
        connection_lost(c, PQerrorMessage(c->conn));
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct pgconn *c = arg;
    if (c->state == PGCONN_CONNECTING) {
        poll_connect(c);
        return;
    }
    if (c->conn == NULL)
        return;
    if (what & EV_WRITE) {
        flush_output(c);
        if (c->conn == NULL)
            return;
    }
    if (what & EV_READ)
        read_results(c);
}

int pgconn_exec(struct pgconn *c, const char *stmt, int nparams, const char *const *values,
                pgconn_cb cb, void *arg)
{
    if (c->state != PGCONN_READY) {
        log_debug("event=pg_not_ready conn=%s stmt=%s state=%s", c->name, stmt,
                  state_names[c->state]);
        return -1;
    }
    struct pgconn_req *r = req_new(c);
    if (r == NULL)
        return -1;
    r->cb = cb;
    r->arg = arg;
    r->queries_left = 1;
    if (PQsendQueryPrepared(c->conn, stmt, nparams, values, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c->conn) != 1) {
        log_error("event=pg_send_failed conn=%s stmt=%s why=\"%s\"", c->name, stmt,
                  PQerrorMessage(c->conn));
        req_release(c, r);
        /* a failed send means the connection is unusable; in-flight requests
         * are failed from the loop, never from inside the caller's call */
        event_active(c->write_ev, EV_WRITE, 0);
        return -1;
    }
    req_push(c, r);
    int rc = PQflush(c->conn);
    if (rc != 0) /* more to write, or an error the write handler will report */
        event_active(c->write_ev, EV_WRITE, 0);
    return 0;
}

void pgconn_free(struct pgconn *c)
{
    if (c == NULL)
        return;
    drop_events(c);
    if (c->retry_ev != NULL)
        event_free(c->retry_ev);
    struct pgconn_req *r;
    while ((r = req_pop(c)) != NULL) {
        if (r->cb != NULL && c->state == PGCONN_READY)
            r->cb(r->arg, NULL, PGCONN_LOST, "connection closed");
        req_release(c, r);
    }
    while ((r = c->free_reqs) != NULL) {
        c->free_reqs = r->next;
        free(r);
    }
    if (c->conn != NULL)
        PQfinish(c->conn);
    free(c->name);
    free(c->conninfo);
    free(c->listen_sql);
    free(c->init_sql);
    free(c);
}
