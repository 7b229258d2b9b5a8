#include "bulkflow.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bulkfile.h"
#include "client.h"
#include "clock.h"
#include "codec.h"
#include "log.h"
#include "msg.h"

enum plan {
    PLAN_ACSC = 0, /* the payee accepts: settled */
    PLAN_AC01,     /* the payee rejects it */
    PLAN_AB08,     /* to the participant without a session */
};

/* What an item got the first time, to compare its second answer with. */
struct first_answer {
    uint64_t transfer_id;
    bool acsc;
    char reason[MSG_REASON_MAX + 1];
};

struct side {
    const char *code;
    SSL_CTX *ctx;
    struct client *c;
};

static struct {
    const struct bulkflow_opts *o;
    struct bulkflow_result *r;
    struct event_base *base;
    struct side payer;
    struct side payees[BULKFLOW_MAX_PAYEES];
    unsigned nready;
    struct event *timer;
    unsigned batch; /* the one in flight, from 0 */
    bool again;     /* being sent the second time */
    struct bulkfile file;
    struct bulkfile_batch b;
    bool built;
    struct bulkfile_run run;
    bool running;
    struct first_answer *first;
    int64_t sent_us;
    bool failed;
    char why[400];
} B;

void bulkflow_opts_defaults(struct bulkflow_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 7443;
    o->payer = "MEZN";
    o->payees[0] = "JAZZ";
    o->payees[1] = "EASY";
    o->payees[2] = "SADA";
    o->npayees = 3;
    o->offline = NULL;
    o->run_id = "1";
    o->batches = 5;
    o->items = 200;
    o->reject_permille = 50;
    o->timeout_ms = 30000;
}

static void stop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void stop(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(B.why, sizeof(B.why), fmt, ap);
    va_end(ap);
    B.failed = true;
    event_base_loopbreak(B.base);
}

/* The payee slot of item i: the payees in turn, then the offline one. */
static unsigned slot_of(unsigned i)
{
    return i % (B.o->npayees + (B.o->offline != NULL));
}

static enum plan plan_of(unsigned batch, unsigned i)
{
    if (slot_of(i) == B.o->npayees)
        return PLAN_AB08;
    uint64_t h = ((uint64_t)batch * 1000003u + i + 1) * UINT64_C(0x9e3779b97f4a7c15);
    return (h >> 40) % 1000 < B.o->reject_permille ? PLAN_AC01 : PLAN_ACSC;
}

static void item_msg_id(unsigned batch, unsigned i, char *out, size_t len)
{
    snprintf(out, len, "BK-%s-%u-%u", B.o->run_id, batch, i);
}

/* The batch and item numbers back from a forwarded payment's msg_id; false
 * when it is not one of ours. */
static bool item_of(const char *msg_id, unsigned *batch, unsigned *i)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "BK-%s-", B.o->run_id);
    size_t n = strlen(prefix);
    if (strncmp(msg_id, prefix, n) != 0)
        return false;
    char *end;
    unsigned long b = strtoul(msg_id + n, &end, 10);
    if (*end != '-')
        return false;
    unsigned long k = strtoul(end + 1, &end, 10);
    if (*end != '\0' || b >= B.o->batches || k >= B.o->items)
        return false;
    *batch = (unsigned)b;
    *i = (unsigned)k;
    return true;
}

static int build_batch(char *err, size_t errlen)
{
    if (B.built) {
        bulkfile_batch_free(&B.b);
        B.built = false;
    }
    free(B.file.rows);
    B.file.rows = calloc(B.o->items, sizeof(*B.file.rows));
    B.file.n = B.o->items;
    if (B.file.rows == NULL) {
        snprintf(err, errlen, "out of memory for %u payments", B.o->items);
        return -1;
    }
    for (unsigned i = 0; i < B.o->items; i++) {
        struct bulkfile_row *row = &B.file.rows[i];
        unsigned slot = slot_of(i);
        row->line = i + 2;
        snprintf(row->creditor_agent, sizeof(row->creditor_agent), "%s",
                 slot < B.o->npayees ? B.o->payees[slot] : B.o->offline);
        snprintf(row->creditor_account, sizeof(row->creditor_account), "SUP-%u", i);
        /* PKR 1,000 to 20,000, spread by the item's number */
        row->amount = 100000 + (int64_t)((i * 7919u) % 1900000u);
        row->purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT;
        snprintf(row->ref, sizeof(row->ref), "INV-%s-%u-%u", B.o->run_id, B.batch, i);
        item_msg_id(B.batch, i, row->msg_id, sizeof(row->msg_id));
    }
    char batch_id[MSG_ID_MAX + 1];
    snprintf(batch_id, sizeof(batch_id), "BKF-%s-%u", B.o->run_id, B.batch);
    if (bulkfile_batch(&B.b, &B.file, B.o->payer, "SME-ACC-1", batch_id, err, errlen) != 0)
        return -1;
    B.built = true;
    return 0;
}

static void send_batch(void)
{
    if (B.running)
        bulkfile_run_free(&B.run);
    B.running = false;
    if (bulkfile_run_init(&B.run, B.b.batch_id, B.b.n) != 0) {
        stop("out of memory for the answers of batch %u", B.batch);
        return;
    }
    B.running = true;
    if (client_send(B.payer.c, &B.b.env) != 0) {
        stop("cannot send batch %u: %s", B.batch,
             client_is_closed(B.payer.c) ? client_close_reason(B.payer.c) : "send failed");
        return;
    }
    B.sent_us = mono_us();
    struct timeval tv = {B.o->timeout_ms / 1000, (B.o->timeout_ms % 1000) * 1000};
    evtimer_add(B.timer, &tv);
}

static void unexpected(unsigned i, const struct bulkfile_result *res, const char *wanted)
{
    char id[MSG_ID_MAX + 1];
    if (B.r->unexpected++ == 0) {
        item_msg_id(B.batch, i, id, sizeof(id));
        snprintf(B.r->first_failure, sizeof(B.r->first_failure), "%s%s: %s %s %s, expected %s", id,
                 B.again ? " (sent again)" : "",
                 !res->have  ? "no answer"
                 : res->acsc ? "ACSC"
                             : "RJCT",
                 res->reason, res->retry ? "(retry)" : "", wanted);
    }
}

/* Every item of the batch in flight is answered: check them, then send it
 * again, or go on to the next batch. */
static void batch_done(void)
{
    evtimer_del(B.timer);
    struct bulkflow_result *r = B.r;
    if (B.run.refused) {
        stop("batch %u was refused whole: %s %s", B.batch, B.run.reason, B.run.text);
        return;
    }
    double ms = (double)(mono_us() - B.sent_us) / 1000.0;
    if (!B.again) {
        r->first_s += ms / 1000.0;
        if (ms > r->batch_ms_max)
            r->batch_ms_max = ms;
    }
    for (unsigned i = 0; i < B.run.n; i++) {
        const struct bulkfile_result *res = &B.run.results[i];
        enum plan p = plan_of(B.batch, i);
        const char *wanted = p == PLAN_ACSC ? "ACSC" : p == PLAN_AC01 ? "RJCT AC01" : "RJCT AB08";
        bool ok = res->have && !res->retry &&
                  (p == PLAN_ACSC
                       ? res->acsc
                       : !res->acsc && strcmp(res->reason, p == PLAN_AC01 ? "AC01" : "AB08") == 0);
        if (!B.again) {
            r->items++;
            if (!ok) {
                unexpected(i, res, wanted);
            } else {
                r->settled += p == PLAN_ACSC;
                r->rejected += p == PLAN_AC01;
                r->offline += p == PLAN_AB08;
            }
            B.first[i].transfer_id = res->transfer_id;
            B.first[i].acsc = res->acsc;
            snprintf(B.first[i].reason, sizeof(B.first[i].reason), "%s", res->reason);
            continue;
        }
        r->retried++;
        const struct first_answer *f = &B.first[i];
        if (ok && res->transfer_id == f->transfer_id && res->acsc == f->acsc &&
            strcmp(res->reason, f->reason) == 0)
            r->retried_same++;
        else
            unexpected(i, res, "the first answer again");
    }
    if (!B.again) {
        B.again = true;
        send_batch();
        return;
    }
    B.again = false;
    if (++B.batch == B.o->batches) {
        event_base_loopbreak(B.base);
        return;
    }
    char err[400];
    if (build_batch(err, sizeof(err)) != 0) {
        stop("batch %u: %s", B.batch, err);
        return;
    }
    send_batch();
}

static void on_payer_frame(struct client *c, const Envelope *env, void *arg)
{
    (void)c, (void)arg;
    if (B.running && bulkfile_take(&B.run, env) == BULKFILE_DONE)
        batch_done();
}

/* A payee: accepts or rejects what it is forwarded, as planned. */
static void on_payee_frame(struct client *c, const Envelope *env, void *arg)
{
    (void)arg;
    if (env->body_case != SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER)
        return; /* its settlement notices: the library acknowledges them */
    const Sikka__V1__CreditTransfer *ct = env->credit_transfer;
    unsigned batch, i;
    if (!item_of(ct->msg_id, &batch, &i)) {
        stop("a payee was forwarded a payment that is not the scenario's: \"%.40s\"", ct->msg_id);
        return;
    }
    B.r->forwards++;
    if (B.again)
        B.r->forwards_again++;
    bool accept = plan_of(batch, i) == PLAN_ACSC;
    struct msg_decision d;
    char err[200];
    if (msg_decision_init(&d, ct->transfer_id, accept, "AC01", NULL, err, sizeof(err)) != 0 ||
        client_send(c, &d.env) != 0)
        stop("a payee could not answer transfer %" PRIu64 ": %s", ct->transfer_id,
             client_is_closed(c) ? client_close_reason(c) : err);
}

static void on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    (void)c;
    const char *code = arg;
    if (ev == CLIENT_READY) {
        if (++B.nready < 1 + B.o->npayees)
            return;
        char err[400];
        if (build_batch(err, sizeof(err)) != 0) {
            stop("batch 0: %s", err);
            return;
        }
        send_batch();
    } else if (ev == CLIENT_CLOSED && !B.failed) {
        stop("the session of %s closed: %s", code, why);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    stop("batch %u%s: no complete answer within %d ms", B.batch, B.again ? " (sent again)" : "",
         B.o->timeout_ms);
}

static int open_side(struct side *s, const char *code, client_frame_cb on_frame, char *err,
                     size_t errlen)
{
    const struct bulkflow_opts *o = B.o;
    char cert[600], key[600], ca[600], why[400];
    snprintf(cert, sizeof(cert), "%s/%s.crt", o->pki, code);
    snprintf(key, sizeof(key), "%s/%s.key", o->pki, code);
    snprintf(ca, sizeof(ca), "%s/ca.crt", o->pki);
    struct client_opts co = {
        .host = o->host, .port = o->port, .cert = cert, .key = key, .ca = ca, .await_ready = true};
    s->code = code;
    s->ctx = client_ssl_ctx(&co, why, sizeof(why));
    if (s->ctx == NULL) {
        snprintf(err, errlen, "participant %s: %s (see --pki)", code, why);
        return -1;
    }
    s->c = client_open(B.base, s->ctx, &co, why, sizeof(why));
    if (s->c == NULL) {
        snprintf(err, errlen, "participant %s: %s", code, why);
        return -1;
    }
    client_set_callbacks(s->c, on_frame, on_event, (void *)code);
    return 0;
}

static void close_side(struct side *s)
{
    client_free(s->c);
    if (s->ctx != NULL)
        SSL_CTX_free(s->ctx);
    s->c = NULL;
    s->ctx = NULL;
}

int bulkflow_run(const struct bulkflow_opts *o, struct bulkflow_result *r, char *err, size_t errlen)
{
    memset(&B, 0, sizeof(B));
    memset(r, 0, sizeof(*r));
    B.o = o;
    B.r = r;
    int rc = -1;
    if (o->items == 0 || o->items > BULKFILE_MAX_ITEMS || o->batches == 0 || o->npayees == 0 ||
        o->npayees > BULKFLOW_MAX_PAYEES || o->reject_permille > 1000) {
        snprintf(err, errlen, "1..%d items, at least one batch, 1..%d payees", BULKFILE_MAX_ITEMS,
                 BULKFLOW_MAX_PAYEES);
        return -1;
    }
    B.first = calloc(o->items, sizeof(*B.first));
    B.base = event_base_new();
    B.timer = B.base != NULL ? evtimer_new(B.base, on_timeout, NULL) : NULL;
    if (B.first == NULL || B.timer == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (open_side(&B.payer, o->payer, on_payer_frame, err, errlen) != 0)
        goto done;
    for (unsigned i = 0; i < o->npayees; i++)
        if (open_side(&B.payees[i], o->payees[i], on_payee_frame, err, errlen) != 0)
            goto done;
    if (event_base_dispatch(B.base) < 0) {
        snprintf(err, errlen, "the event loop failed");
        goto done;
    }
    if (B.failed) {
        snprintf(err, errlen, "%s", B.why);
        goto done;
    }
    rc = 0;
done:
    close_side(&B.payer);
    for (unsigned i = 0; i < BULKFLOW_MAX_PAYEES; i++)
        close_side(&B.payees[i]);
    if (B.built)
        bulkfile_batch_free(&B.b);
    if (B.running)
        bulkfile_run_free(&B.run);
    free(B.file.rows);
    free(B.first);
    if (B.timer != NULL)
        event_free(B.timer);
    if (B.base != NULL)
        event_base_free(B.base);
    memset(&B, 0, sizeof(B));
    return rc;
}

bool bulkflow_ok(const struct bulkflow_result *r)
{
    return r->unexpected == 0 && r->forwards_again == 0 && r->retried_same == r->retried &&
           r->items > 0;
}

void bulkflow_print(FILE *out, const struct bulkflow_opts *o, const struct bulkflow_result *r)
{
    fprintf(out, "sikka-replay bulk: %u batches of %u payments from %s\n", o->batches, o->items,
            o->payer);
    fprintf(out, "  items              %" PRIu64 "\n", r->items);
    fprintf(out, "  settled            %" PRIu64 "\n", r->settled);
    fprintf(out, "  rejected (AC01)    %" PRIu64 "  by the payees, as planned\n", r->rejected);
    fprintf(out, "  payee offline      %" PRIu64 "  (AB08, %s)\n", r->offline,
            o->offline != NULL ? o->offline : "none");
    fprintf(out, "  not as planned     %" PRIu64 "%s%s\n", r->unexpected, r->unexpected ? ": " : "",
            r->first_failure);
    fprintf(out,
            "  sent again         %" PRIu64 " items, %" PRIu64
            " answered as the first time, %" PRIu64 " forwarded again\n",
            r->retried, r->retried_same, r->forwards_again);
    fprintf(out, "  items per second   %.0f  (first sendings: sent to last report)\n",
            r->first_s > 0 ? (double)r->items / r->first_s : 0.0);
    fprintf(out, "  slowest batch      %.1f ms\n", r->batch_ms_max);
    fprintf(out, "  result             %s\n", bulkflow_ok(r) ? "OK" : "FAILED");
}
