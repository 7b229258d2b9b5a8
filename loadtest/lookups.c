#include "lookups.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "client.h"
#include "codec.h"
#include "log.h"
#include "msg.h"

#define LOOKUPS_MAX_SESSIONS 256

static struct {
    const struct lookups_opts *o;
    struct lookups_result *r;
    struct event_base *base;
    struct client *c[LOOKUPS_MAX_SESSIONS];
    unsigned nready;
    bool measuring, stopped, failed;
    char why[400];
    int64_t t0_us, t1_us;
    uint64_t rng;
    uint64_t seq;
} L;

void lookups_opts_defaults(struct lookups_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 7443;
    o->sessions = 4;
    o->outstanding = 64;
    o->seconds = 5;
    o->base = UINT64_C(923100000001);
    o->count = 1000000;
    o->connect_timeout_s = 15;
}

static uint64_t next_random(void)
{
    /* xorshift64*: the aliases asked need only be spread, not secret */
    L.rng ^= L.rng >> 12;
    L.rng ^= L.rng << 25;
    L.rng ^= L.rng >> 27;
    return L.rng * UINT64_C(2685821657736338717);
}

static void send_one(struct client *c)
{
    char id[32], alias[24], err[128];
    snprintf(id, sizeof(id), "L%" PRIu64, ++L.seq);
    snprintf(alias, sizeof(alias), "%" PRIu64, L.o->base + next_random() % L.o->count);
    struct msg_alias a;
    if (msg_alias_init(&a, id, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, alias, NULL, NULL, err,
                       sizeof(err)) != 0 ||
        client_send(c, &a.env) != 0) {
        snprintf(L.why, sizeof(L.why), "cannot send a lookup: %s",
                 client_is_closed(c) ? client_close_reason(c) : err);
        L.failed = true;
        event_base_loopbreak(L.base);
    }
}

static void on_frame(struct client *c, const Envelope *env, void *arg)
{
    (void)arg;
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE) {
        const Sikka__V1__AliasResponse *r = env->alias_response;
        if (r->ok)
            L.r->found++;
        else if (strcmp(r->reason, "BE23") == 0)
            L.r->not_found++;
        else
            L.r->other++;
    } else if (env->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        L.r->refused++;
    } else {
        return; /* not an answer to a lookup */
    }
    if (!L.stopped)
        send_one(c);
}

static void on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    (void)arg;
    if (ev == CLIENT_READY) {
        for (unsigned i = 0; i < L.o->outstanding; i++)
            send_one(c);
        if (++L.nready == L.o->sessions) {
            L.t0_us = mono_us();
            L.measuring = true;
        }
    } else if (ev == CLIENT_CLOSED && !L.stopped) {
        snprintf(L.why, sizeof(L.why), "a session closed: %s", why);
        L.failed = true;
        event_base_loopbreak(L.base);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    if (!L.measuring) {
        snprintf(L.why, sizeof(L.why), "the sessions did not all connect within %.0f s",
                 L.o->connect_timeout_s);
        L.failed = true;
        event_base_loopbreak(L.base);
        return;
    }
    L.stopped = true;
    L.t1_us = mono_us();
    event_base_loopbreak(L.base);
}

int lookups_run(const struct lookups_opts *o, struct lookups_result *r, char *err, size_t errlen)
{
    memset(&L, 0, sizeof(L));
    memset(r, 0, sizeof(*r));
    L.o = o;
    L.r = r;
    L.rng = (uint64_t)mono_us() | 1;
    int rc = -1;
    SSL_CTX *ctx = NULL;
    struct event *deadline = NULL;
    if (o->sessions == 0 || o->sessions > LOOKUPS_MAX_SESSIONS || o->outstanding == 0 ||
        o->count == 0) {
        snprintf(err, errlen, "sessions 1..%d, outstanding and count at least 1",
                 LOOKUPS_MAX_SESSIONS);
        return -1;
    }
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof(cert), "%s/%s.crt", o->pki, o->participant);
    snprintf(key, sizeof(key), "%s/%s.key", o->pki, o->participant);
    snprintf(ca, sizeof(ca), "%s/ca.crt", o->pki);
    struct client_opts co = {
        .host = o->host, .port = o->port, .cert = cert, .key = key, .ca = ca, .await_ready = true};
    L.base = event_base_new();
    if (L.base == NULL) {
        snprintf(err, errlen, "cannot create an event loop");
        goto done;
    }
    ctx = client_ssl_ctx(&co, err, errlen);
    if (ctx == NULL)
        goto done;
    for (unsigned i = 0; i < o->sessions; i++) {
        L.c[i] = client_open(L.base, ctx, &co, err, errlen);
        if (L.c[i] == NULL)
            goto done;
        client_set_callbacks(L.c[i], on_frame, on_event, NULL);
    }
    deadline = evtimer_new(L.base, on_deadline, NULL);
    if (deadline == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    struct timeval ct = {(time_t)o->connect_timeout_s, 0};
    event_add(deadline, &ct);
    /* the measurement starts with all sessions ready: the counts before do
     * not count */
    while (!L.measuring && !L.failed && event_base_loop(L.base, EVLOOP_ONCE) == 0)
        ;
    if (!L.failed) {
        memset(r, 0, sizeof(*r));
        struct timeval tv = {(time_t)o->seconds,
                             (suseconds_t)((o->seconds - (double)(time_t)o->seconds) * 1e6)};
        event_del(deadline);
        event_add(deadline, &tv);
        event_base_dispatch(L.base);
    }
    if (L.failed) {
        snprintf(err, errlen, "%s", L.why);
        goto done;
    }
    r->elapsed_s = (double)(L.t1_us - L.t0_us) / 1e6;
    uint64_t answered = r->found + r->not_found + r->refused + r->other;
    r->per_second = r->elapsed_s > 0 ? (double)answered / r->elapsed_s : 0;
    rc = 0;
done:
    for (unsigned i = 0; i < o->sessions; i++)
        client_free(L.c[i]);
    if (deadline != NULL)
        event_free(deadline);
    if (ctx != NULL)
        SSL_CTX_free(ctx);
    if (L.base != NULL)
        event_base_free(L.base);
    return rc;
}

void lookups_report(FILE *out, const struct lookups_opts *o, const struct lookups_result *r)
{
    fprintf(out, "  lookups          %s, %u sessions x %u outstanding, %.1f s\n", o->participant,
            o->sessions, o->outstanding, r->elapsed_s);
    fprintf(out, "  answered/s       %.1f\n", r->per_second);
    fprintf(out,
            "  found            %" PRIu64 "\n  not found        %" PRIu64
            "\n  refused          %" PRIu64 "\n  other            %" PRIu64 "\n",
            r->found, r->not_found, r->refused, r->other);
}
