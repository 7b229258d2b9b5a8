#include "clock.h"
#include "flood.h"

#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "codec.h"
#include "log.h"
#include "msg.h"

#define FLOOD_MAX_SESSIONS  1000
#define FLOOD_BLOCK_BYTES   16384    /* frames appended at once */
#define FLOOD_OUTPUT_TARGET 262144   /* unsent bytes kept queued per session */
#define FLOOD_TICK_US       1000     /* how often the queues are topped up */
#define FLOOD_PING_NONCE    0x5a5a5a /* fixed: every ping has the same length */

/* One connection. Owns its client. */
struct flood_session {
    struct client *c;
    bool reading;
    bool closed;       /* by the switch (or the network) */
    uint64_t queued;   /* bytes of frames appended to the client's output */
    uint64_t written;  /* of those, handed to the kernel as of the last tick */
    char refusal[200]; /* a MessageReject other than FF01, which may say why it closed */
};

static struct {
    const struct flood_opts *o;
    struct flood_result *r;
    struct event_base *base;
    SSL_CTX *ctx;
    struct flood_session *sessions;
    unsigned nready, nclosed;
    bool started, stopped;
    char abort_why[512];
    int64_t t0_us;
    struct event *tick, *deadline, *sigint, *sigterm;
    uint8_t *block; /* FLOOD_BLOCK_BYTES / frame_len frames, ready to append */
    size_t block_len;
    size_t frame_len;
} F;

void flood_opts_defaults(struct flood_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 7443;
    o->sessions = 1;
    o->mode = FLOOD_MIXED;
    o->seconds = 10;
    o->connect_timeout_s = 15;
}

static const char *const mode_names[] = {"pings", "malformed", "mixed"};

int flood_parse_mode(const char *text, enum flood_mode *out)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(text, mode_names[i]) == 0) {
            *out = (enum flood_mode)i;
            return 0;
        }
    }
    return -1;
}

const char *flood_mode_name(enum flood_mode m)
{
    return (size_t)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

/* Packs the block of frames once: pings, malformed frames of the ping's
 * length (tag 0x0f: field 1 with wire type 7, which protobuf does not have),
 * or the two alternating. */
static int make_block(enum flood_mode mode, char *err, size_t errlen)
{
    struct msg_heartbeat hb;
    msg_heartbeat_init(&hb, FLOOD_PING_NONCE, false);
    size_t len = 0;
    uint8_t *ping = codec_pack_alloc(&hb.env, &len);
    if (ping == NULL) {
        snprintf(err, errlen, "cannot pack a heartbeat");
        return -1;
    }
    uint8_t bad[64];
    if (len > sizeof(bad) || len <= CODEC_HEADER_BYTES) {
        snprintf(err, errlen, "a heartbeat packs into %zu bytes, not what was expected", len);
        free(ping);
        return -1;
    }
    memcpy(bad, ping, CODEC_HEADER_BYTES); /* the same length prefix */
    memset(bad + CODEC_HEADER_BYTES, 0x0f, len - CODEC_HEADER_BYTES);
    size_t n = FLOOD_BLOCK_BYTES / len;
    F.block = malloc(n * len);
    if (F.block == NULL) {
        snprintf(err, errlen, "out of memory");
        free(ping);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bool malformed = mode == FLOOD_MALFORMED || (mode == FLOOD_MIXED && i % 2 == 1);
        memcpy(F.block + i * len, malformed ? bad : ping, len);
    }
    F.frame_len = len;
    F.block_len = n * len;
    free(ping);
    return 0;
}

static void stop(void)
{
    if (F.stopped)
        return;
    F.stopped = true;
    event_base_loopbreak(F.base);
}

/* Brings a session's count of bytes written up to date, then tops its
 * output up to FLOOD_OUTPUT_TARGET. */
static void top_up(struct flood_session *s)
{
    if (s->closed)
        return;
    size_t pending = client_output_pending(s->c);
    s->written = s->queued > pending ? s->queued - pending : 0;
    if (F.stopped)
        return;
    while (pending < FLOOD_OUTPUT_TARGET) {
        if (client_send_raw(s->c, F.block, F.block_len) != 0)
            return; /* closing: the event callback says why */
        s->queued += F.block_len;
        pending += F.block_len;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    for (unsigned i = 0; i < F.o->sessions; i++)
        top_up(&F.sessions[i]);
    struct timeval tv = {0, FLOOD_TICK_US};
    if (!F.stopped && evtimer_add(F.tick, &tv) != 0) {
        log_error("event=flood_failed why=\"cannot arm the timer\"");
        stop();
    }
}

static void start(void)
{
    F.started = true;
    F.t0_us = mono_us();
    fprintf(stderr, "sikka-replay flood: %u sessions of %s connected, flooding (%s) for %.1f s\n",
            F.o->sessions, F.o->participant, flood_mode_name(F.o->mode), F.o->seconds);
    struct timeval tv = {(time_t)F.o->seconds,
                         (suseconds_t)((F.o->seconds - (double)(time_t)F.o->seconds) * 1e6)};
    if (evtimer_add(F.deadline, &tv) != 0) {
        snprintf(F.abort_why, sizeof(F.abort_why), "cannot arm the flood's end");
        stop();
        return;
    }
    on_tick(-1, 0, NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!F.started)
        snprintf(F.abort_why, sizeof(F.abort_why),
                 "%u of %u sessions connected within %.0f s (--connect-timeout)", F.nready,
                 F.o->sessions, F.o->connect_timeout_s);
    stop();
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!F.started)
        snprintf(F.abort_why, sizeof(F.abort_why), "interrupted");
    F.r->interrupted = true;
    stop();
}

static void on_frame(struct client *c, const Envelope *env, void *arg)
{
    (void)c;
    struct flood_session *s = arg;
    if (env->body_case != SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT)
        return;
    F.r->rejects++;
    const Sikka__V1__MessageReject *mr = env->message_reject;
    if (strcmp(mr->reason, "FF01") != 0) {
        char q[160];
        snprintf(s->refusal, sizeof(s->refusal), "MessageReject %.8s %s", mr->reason,
                 cli_one_line(mr->text, q, sizeof(q)));
    }
}

static void on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    struct flood_session *s = arg;
    if (ev == CLIENT_READY) {
        if (!s->reading && client_set_reading(c, false) != 0)
            log_warn("event=flood_no_read_failed");
        if (++F.nready == F.o->sessions && !F.stopped) {
            evtimer_del(F.deadline);
            start();
        }
    } else if (ev == CLIENT_CLOSED) {
        if (s->closed)
            return;
        /* the bytes still queued when it closed were never written */
        s->closed = true;
        F.nclosed++;
        char text[320];
        snprintf(text, sizeof(text), "%s%s%s%s", why, s->refusal[0] ? " (" : "", s->refusal,
                 s->refusal[0] ? ")" : "");
        if (!F.started) {
            snprintf(F.abort_why, sizeof(F.abort_why),
                     "a session of %s closed while connecting: %s", F.o->participant, text);
            stop();
            return;
        }
        if (F.r->closed++ == 0)
            snprintf(F.r->first_close, sizeof(F.r->first_close), "%s", text);
        if (F.nclosed == F.o->sessions)
            stop();
    }
}

static int open_sessions(char *err, size_t errlen)
{
    const struct flood_opts *o = F.o;
    char cert[4096], key[4096], ca[4096], why[512];
    snprintf(cert, sizeof(cert), "%s/%s.crt", o->pki, o->participant);
    snprintf(key, sizeof(key), "%s/%s.key", o->pki, o->participant);
    snprintf(ca, sizeof(ca), "%s/ca.crt", o->pki);
    struct client_opts co = {
        .host = o->host, .port = o->port, .cert = cert, .key = key, .ca = ca, .await_ready = true};
    F.ctx = client_ssl_ctx(&co, why, sizeof(why));
    if (F.ctx == NULL) {
        snprintf(err, errlen, "participant %s: %s (see --pki)", o->participant, why);
        return -1;
    }
    F.sessions = calloc(o->sessions, sizeof(*F.sessions));
    if (F.sessions == NULL) {
        snprintf(err, errlen, "out of memory for %u sessions", o->sessions);
        return -1;
    }
    for (unsigned i = 0; i < o->sessions; i++) {
        struct flood_session *s = &F.sessions[i];
        s->reading = i >= o->no_read;
        s->c = client_open(F.base, F.ctx, &co, why, sizeof(why));
        if (s->c == NULL) {
            snprintf(err, errlen, "participant %s: %s", o->participant, why);
            return -1;
        }
        client_set_callbacks(s->c, on_frame, on_event, s);
    }
    return 0;
}

static void teardown(void)
{
    for (unsigned i = 0; F.sessions != NULL && i < F.o->sessions; i++)
        client_free(F.sessions[i].c);
    struct event **evs[] = {&F.tick, &F.deadline, &F.sigint, &F.sigterm};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (*evs[i] != NULL)
            event_free(*evs[i]);
    if (F.ctx != NULL)
        SSL_CTX_free(F.ctx);
    if (F.base != NULL)
        event_base_free(F.base);
    free(F.sessions);
    free(F.block);
}

int flood_run(const struct flood_opts *o, struct flood_result *r, char *err, size_t errlen)
{
    memset(&F, 0, sizeof(F));
    memset(r, 0, sizeof(*r));
    F.o = o;
    F.r = r;
    err[0] = '\0';
    int rc = -1;
    if (o->sessions == 0 || o->sessions > FLOOD_MAX_SESSIONS || o->no_read > o->sessions) {
        snprintf(err, errlen, "1 to %d sessions, of which at most all do not read",
                 FLOOD_MAX_SESSIONS);
        goto done;
    }
    if (make_block(o->mode, err, errlen) != 0)
        goto done;
    F.base = event_base_new();
    if (F.base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        goto done;
    }
    F.tick = evtimer_new(F.base, on_tick, NULL);
    F.deadline = evtimer_new(F.base, on_deadline, NULL);
    F.sigint = evsignal_new(F.base, SIGINT, on_signal, NULL);
    F.sigterm = evsignal_new(F.base, SIGTERM, on_signal, NULL);
    if (F.tick == NULL || F.deadline == NULL || F.sigint == NULL || F.sigterm == NULL ||
        evsignal_add(F.sigint, NULL) != 0 || evsignal_add(F.sigterm, NULL) != 0) {
        snprintf(err, errlen, "cannot create the loop's events");
        goto done;
    }
    if (open_sessions(err, errlen) != 0)
        goto done;
    struct timeval tv = {
        (time_t)o->connect_timeout_s,
        (suseconds_t)((o->connect_timeout_s - (double)(time_t)o->connect_timeout_s) * 1e6)};
    if (evtimer_add(F.deadline, &tv) != 0) {
        snprintf(err, errlen, "cannot arm the connect timeout");
        goto done;
    }
    if (event_base_dispatch(F.base) < 0) {
        snprintf(err, errlen, "the event loop failed");
        goto done;
    }
    if (!F.started) {
        snprintf(err, errlen, "%s", F.abort_why[0] ? F.abort_why : "the flood never started");
        goto done;
    }
    r->elapsed_s = (double)(mono_us() - F.t0_us) / 1e6;
    r->frame_bytes = F.frame_len;
    uint64_t written = 0;
    for (unsigned i = 0; i < o->sessions; i++) {
        top_up(&F.sessions[i]); /* counts only: F.stopped */
        written += F.sessions[i].written;
    }
    r->frames_written = written / F.frame_len;
    rc = 0;
done:
    teardown();
    memset(&F, 0, sizeof(F));
    return rc;
}

void flood_report(FILE *out, const struct flood_opts *o, const struct flood_result *r)
{
    fprintf(out, "sikka-replay flood: %s, %u sessions (%u not reading), %s, %s:%d\n",
            o->participant, o->sessions, o->no_read, flood_mode_name(o->mode), o->host, o->port);
    fprintf(out, "  flooded for        %.1f s%s\n", r->elapsed_s,
            r->interrupted ? " (interrupted)" : "");
    fprintf(out, "  frames written     %" PRIu64 " (%.0f/s, %zu bytes each)\n", r->frames_written,
            r->elapsed_s > 0 ? (double)r->frames_written / r->elapsed_s : 0.0, r->frame_bytes);
    fprintf(out, "  rejects received   %" PRIu64 "\n", r->rejects);
    fprintf(out, "  sessions closed    %u%s%s\n", r->closed, r->closed > 0 ? "; first: " : "",
            r->first_close);
}
