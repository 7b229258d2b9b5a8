#include "clock.h"
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "participant.h"
#include "recorder.h"
#include "router.h"
#include "rtp.h"
#include "text.h"
#include "tls.h"

#define ARENA_BUFFER           (64 * 1024)
#define ARENA_LIMIT            (4 * 1024 * 1024)
#define CLOSE_FLUSH_TIMEOUT_MS 2000
#define REJECT_LOG_PER_SECOND  20

/* Connections of one IP address still in the TLS handshake. */
struct addr_count {
    struct hnode node;
    char addr[48];
    int64_t n;
};

static struct {
    struct event_base *base;
    SSL_CTX *ctx;
    struct session_options opts;
    uint64_t next_id;
    struct hmap by_id;
    struct hmap by_addr; /* struct addr_count, by address */
    size_t output_total; /* bytes queued for every session together */
    bool budget_warned;
    struct session *work; /* sessions with deferred work (write, resume, free) */
    struct event *work_ev;
    struct arena arena; /* per-frame memory; reset after every frame */
    unsigned char arena_buf[ARENA_BUFFER];
} S;

static const char *const state_names[] = {"handshake", "active", "closing"};

static void set_state(struct session *s, enum session_state st)
{
    log_debug("event=session_state session=%s from=%s to=%s", s->label, state_names[s->state],
              state_names[st]);
    s->state = st;
}

static void on_work(evutil_socket_t fd, short what, void *arg);

int session_module_init(struct event_base *base, SSL_CTX *ctx)
{
    memset(&S, 0, sizeof(S));
    S.base = base;
    S.ctx = ctx;
    S.next_id = 1;
    S.opts.max_frame_bytes = CODEC_DEFAULT_MAX_FRAME;
    S.opts.handshake_timeout_ms = 5000;
    S.opts.heartbeat_interval_ms = 15000;
    S.opts.write_timeout_ms = 30000;
    S.opts.max_inflight = 4096;
    S.opts.max_output_bytes = 4 << 20;
    S.opts.max_sessions = 10000;
    S.opts.max_handshakes_per_address = 32;
    S.opts.max_sessions_per_participant = 32;
    S.opts.participant_rate = 10000;
    S.opts.participant_burst = 20000;
    S.opts.max_frames_per_second = 50000;
    S.opts.participant_max_frames = 50000;
    S.opts.max_malformed_per_second = 100;
    S.opts.max_queries = 64;
    S.opts.max_output_bytes_total = (int64_t)512 << 20;
    arena_init(&S.arena, S.arena_buf, sizeof(S.arena_buf), ARENA_LIMIT);
    if (hmap_init(&S.by_id, 1024) != 0 || hmap_init(&S.by_addr, 256) != 0)
        return -1;
    S.work_ev = event_new(base, -1, 0, on_work, NULL);
    if (S.work_ev == NULL) {
        log_error("event=oom what=session_work_event");
        return -1;
    }
    /* Deferred work (handing output to TLS) has the sockets' own priority:
     * it runs after the events already active in this pass, so frames
     * written in one pass reach TLS together, and no stream of always
     * readable sockets can starve it (a lower priority could be). */
    if (event_priority_set(S.work_ev, 1) != 0) {
        log_error("event=session_init_failed why=\"event base needs 3 priorities\"");
        return -1;
    }
    return 0;
}

static bool eq_addr(const struct hnode *n, const void *key)
{
    return strcmp(hmap_entry(n, struct addr_count, node)->addr, key) == 0;
}

/* Counts a connection of `addr` in the handshake; NULL when the address is
 * at its limit (or out of memory). */
static struct addr_count *handshake_begin(const char *addr)
{
    uint64_t h = hmap_hash(addr, strlen(addr));
    struct hnode *n = hmap_find(&S.by_addr, h, eq_addr, addr);
    struct addr_count *c = n != NULL ? hmap_entry(n, struct addr_count, node) : NULL;
    if (c != NULL && c->n >= S.opts.max_handshakes_per_address)
        return NULL;
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            log_error("event=oom what=handshake_count addr=%s", addr);
            return NULL;
        }
        snprintf(c->addr, sizeof(c->addr), "%s", addr);
        if (hmap_insert(&S.by_addr, &c->node, h) != 0) {
            free(c);
            return NULL;
        }
    }
    c->n++;
    return c;
}

static void handshake_release(struct addr_count *c)
{
    if (--c->n == 0) {
        hmap_remove(&S.by_addr, &c->node);
        free(c);
    }
}

/* The session left the handshake (verified, or gone). */
static void handshake_end(struct session *s)
{
    if (s->handshaking != NULL)
        handshake_release(s->handshaking);
    s->handshaking = NULL;
}

/* Every byte queued for a session, pending or in its TLS output buffer, is
 * counted in output_total as it comes and goes. */
static void count_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    (void)arg;
    S.output_total += info->n_added;
    S.output_total -= info->n_deleted < S.output_total ? info->n_deleted : S.output_total;
}

void session_configure(const struct session_options *opts)
{
    S.opts = *opts;
}

void session_set_ssl_ctx(SSL_CTX *ctx)
{
    S.ctx = ctx;
}

size_t session_count(void)
{
    return S.by_id.count;
}

static bool eq_id(const struct hnode *n, const void *key)
{
    return hmap_entry(n, struct session, node)->id == *(const uint64_t *)key;
}

struct session *session_find(uint64_t id)
{
    struct hnode *n = hmap_find(&S.by_id, hmap_hash_u64(id), eq_id, &id);
    if (n == NULL)
        return NULL;
    struct session *s = hmap_entry(n, struct session, node);
    return s->state == SESSION_CLOSING ? NULL : s;
}

/* Lists a session for the deferred-work pass: its `dirty` output is handed
 * to TLS, a paused reader is resumed, a closed session is freed. A listed
 * session has a non-NULL list_next (the tail points at itself). */
static void add_work(struct session *s)
{
    if (s->list_next != NULL || S.work == s)
        return;                                 /* already listed */
    s->list_next = S.work != NULL ? S.work : s; /* self-loop marks the tail */
    S.work = s;
    event_active(S.work_ev, 0, 0);
}

/* Stops counting a session's buffers (their bytes leave the total). */
static void uncount_output(struct session *s)
{
    struct evbuffer *bufs[2] = {s->pending, s->bev != NULL ? bufferevent_get_output(s->bev) : NULL};
    for (int i = 0; i < 2; i++) {
        if (bufs[i] == NULL)
            continue;
        size_t n = evbuffer_get_length(bufs[i]);
        evbuffer_remove_cb(bufs[i], count_output, NULL);
        S.output_total -= n < S.output_total ? n : S.output_total;
    }
}

static void free_session(struct session *s)
{
    hmap_remove(&S.by_id, &s->node);
    handshake_end(s);
    uncount_output(s);
    if (s->timer != NULL)
        event_free(s->timer);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    if (s->pending != NULL)
        evbuffer_free(s->pending);
    free(s);
}

static void unlink_participant(struct session *s)
{
    struct participant *p = s->participant;
    if (p == NULL)
        return;
    if (s->p_prev != NULL)
        s->p_prev->p_next = s->p_next;
    else
        p->sessions = s->p_next;
    if (s->p_next != NULL)
        s->p_next->p_prev = s->p_prev;
    s->p_next = s->p_prev = NULL;
    p->nsessions--;
}

static size_t output_bytes(const struct session *s)
{
    size_t n = evbuffer_get_length(s->pending);
    if (s->bev != NULL)
        n += evbuffer_get_length(bufferevent_get_output(s->bev));
    return n;
}

static bool over_caps(const struct session *s)
{
    return s->inflight >= S.opts.max_inflight || output_bytes(s) > (size_t)S.opts.max_output_bytes;
}

static void pause_reading(struct session *s, const char *why)
{
    if (s->read_paused)
        return;
    s->read_paused = true;
    bufferevent_disable(s->bev, EV_READ);
    /* a throttled flood pauses every few milliseconds: said once at info */
    bool throttle = strcmp(why, "frame_rate") == 0;
    s->paused_quietly = throttle && s->throttle_logged;
    if (!s->paused_quietly)
        log_info("event=session_paused session=%s why=%s inflight=%" PRId64 " output=%zu", s->label,
                 why, s->inflight, output_bytes(s));
    else
        log_debug("event=session_paused session=%s why=%s", s->label, why);
    s->throttle_logged |= throttle;
}

static void process_input(struct session *s);

static void maybe_resume(struct session *s)
{
    if (!s->read_paused || s->state != SESSION_ACTIVE || s->throttled || over_caps(s) ||
        (S.output_total > (size_t)S.opts.max_output_bytes_total && output_bytes(s) > 0))
        return;
    s->read_paused = false;
    bufferevent_enable(s->bev, EV_READ);
    /* like its pause: a throttled flood resumes every few milliseconds */
    if (s->paused_quietly)
        log_debug("event=session_resumed session=%s", s->label);
    else
        log_info("event=session_resumed session=%s", s->label);
    /* frames may already sit in the input buffer: handle them now, from the
     * deferred-work pass rather than from whoever lowered the count */
    process_input(s);
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    struct session *list = S.work;
    S.work = NULL;
    while (list != NULL) {
        struct session *s = list;
        list = s->list_next == s ? NULL : s->list_next;
        s->list_next = NULL;
        if (s->freed_scheduled) {
            free_session(s);
            continue;
        }
        if (s->dirty) {
            s->dirty = false;
            if (s->bev != NULL && evbuffer_get_length(s->pending) > 0)
                bufferevent_write_buffer(s->bev, s->pending);
            if (s->state == SESSION_ACTIVE && over_caps(s))
                pause_reading(s, "output");
        }
        maybe_resume(s);
    }
}

static void schedule_free(struct session *s)
{
    s->freed_scheduled = true;
    add_work(s);
}

void session_close(struct session *s, bool flush, const char *why)
{
    if (s->state == SESSION_CLOSING) {
        if (!flush && !s->freed_scheduled)
            schedule_free(s);
        return;
    }
    log_info("event=session_closed session=%s peer=%s why=\"%s\" frames_in=%" PRIu64
             " frames_out=%" PRIu64 " inflight=%" PRId64,
             s->label, s->peer, why, s->frames_in, s->frames_out, s->inflight);
    set_state(s, SESSION_CLOSING);
    handshake_end(s);
    if (s->timer != NULL)
        evtimer_del(s->timer);
    unlink_participant(s);
    if (s->bev != NULL)
        bufferevent_disable(s->bev, EV_READ);
    if (flush && s->bev != NULL) {
        if (evbuffer_get_length(s->pending) > 0)
            bufferevent_write_buffer(s->bev, s->pending);
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
            s->close_after_flush = true;
            struct timeval tv = {CLOSE_FLUSH_TIMEOUT_MS / 1000, 0};
            bufferevent_set_timeouts(s->bev, NULL, &tv);
            bufferevent_enable(s->bev, EV_WRITE);
            return;
        }
    }
    schedule_free(s);
}

void session_close_all(const char *why)
{
    hmap_settle(&S.by_id);
    for (size_t i = 0; i <= S.by_id.mask; i++) {
        for (struct hnode *n = S.by_id.buckets[i]; n != NULL; n = n->next) {
            struct session *s = hmap_entry(n, struct session, node);
            if (s->state != SESSION_CLOSING)
                session_close(s, true, why);
        }
    }
}

bool session_all_flushed(void)
{
    hmap_settle(&S.by_id);
    for (size_t i = 0; i <= S.by_id.mask; i++)
        for (struct hnode *n = S.by_id.buckets[i]; n != NULL; n = n->next)
            if (output_bytes(hmap_entry(n, struct session, node)) > 0)
                return false;
    return true;
}

int session_send(struct session *s, const Envelope *env)
{
    if (s->state == SESSION_CLOSING)
        return -1;
    /* the global budget: a session with output already waiting gets no more
     * (one that has none always may send: every session makes progress) */
    if (S.output_total > (size_t)S.opts.max_output_bytes_total && output_bytes(s) > 0) {
        if (!S.budget_warned)
            log_warn("event=output_budget_exhausted session=%s total=%zu max=%" PRId64
                     " body=%s action=dropped",
                     s->label, S.output_total, S.opts.max_output_bytes_total, codec_body_name(env));
        S.budget_warned = true;
        if (s->state == SESSION_ACTIVE)
            pause_reading(s, "output_budget");
        return -1;
    }
    S.budget_warned = false;
    if (codec_write(s->pending, env) < 0) {
        log_error("event=send_failed session=%s body=%s", s->label, codec_body_name(env));
        return -1;
    }
    s->frames_out++;
    if (!s->dirty) {
        s->dirty = true;
        add_work(s);
    }
    /* over its own budget: not one more frame is read from it */
    if (s->state == SESSION_ACTIVE && output_bytes(s) > (size_t)S.opts.max_output_bytes)
        pause_reading(s, "output");
    return 0;
}

static void send_reject(struct session *s, const char *reason, const char *text,
                        const char *ref_msg_id, uint64_t ref_transfer_id, bool retry)
{
    Sikka__V1__MessageReject mr = SIKKA__V1__MESSAGE_REJECT__INIT;
    mr.retry = retry;
    mr.reason = (char *)reason;
    mr.text = (char *)text;
    mr.ref_msg_id = (char *)(ref_msg_id != NULL ? ref_msg_id : "");
    mr.ref_transfer_id = ref_transfer_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT;
    env.message_reject = &mr;
    /* at most REJECT_LOG_PER_SECOND lines a second per session: a peer
     * flooding bad frames must not flood the log (the rest are counted) */
    int64_t now = mono_us();
    if (now - s->reject_log_us >= 1000000) {
        if (s->rejects_unlogged > 0)
            log_warn("event=message_rejects_not_logged session=%s count=%" PRId64
                     " why=\"more than %d a second\"",
                     s->label, s->rejects_unlogged, REJECT_LOG_PER_SECOND);
        s->reject_log_us = now;
        s->rejects_logged = 0;
        s->rejects_unlogged = 0;
    }
    if (s->rejects_logged < REJECT_LOG_PER_SECOND) {
        char q[200], m[80];
        s->rejects_logged++;
        log_warn("event=message_rejected session=%s msg_id=%s transfer=%" PRIu64
                 " reason=%s retry=%s text=%s",
                 s->label,
                 ref_msg_id != NULL && ref_msg_id[0] ? log_quote(ref_msg_id, m, sizeof(m)) : "-",
                 ref_transfer_id, reason, retry ? "yes" : "no", log_quote(text, q, sizeof(q)));
    } else {
        s->rejects_unlogged++;
    }
    metrics_message_rejected(reason, retry);
    (void)session_send(s, &env);
}

void session_reject(struct session *s, const char *reason, const char *text, const char *ref_msg_id,
                    uint64_t ref_transfer_id)
{
    send_reject(s, reason, text, ref_msg_id, ref_transfer_id, false);
}

void session_refuse(struct session *s, const char *text, const char *ref_msg_id,
                    uint64_t ref_transfer_id)
{
    send_reject(s, "NARR", text, ref_msg_id, ref_transfer_id, true);
}

struct session *session_pick(struct participant *p)
{
    if (p->nsessions == 0)
        return NULL;
    unsigned start = p->rr++ % p->nsessions;
    struct session *s = p->sessions;
    for (unsigned i = 0; i < start && s != NULL; i++)
        s = s->p_next;
    /* a session that does not read its output gets nothing more: a slow
     * payee costs its own transfers, never the switch's memory */
    for (unsigned i = 0; i < p->nsessions; i++) {
        if (s == NULL)
            s = p->sessions;
        if (output_bytes(s) <= (size_t)S.opts.max_output_bytes)
            return s;
        s = s->p_next;
    }
    return NULL;
}

int64_t session_max_inflight(void)
{
    return S.opts.max_inflight;
}

int64_t session_transfer_token(struct session *s)
{
    int64_t now = mono_us();
    struct bucket *b = &s->participant->messages;
    if (bucket_take(b, now, S.opts.participant_rate, S.opts.participant_burst))
        return 0;
    int64_t wait = bucket_wait_us(b, S.opts.participant_rate, S.opts.participant_burst, 1);
    return wait > 0 ? wait : 1;
}

void session_inflight_add(struct session *s, int delta)
{
    s->inflight += delta;
    if (s->inflight < 0)
        s->inflight = 0;
    if (s->retiring && s->inflight == 0 && !evtimer_pending(s->timer, NULL)) {
        session_close(s, true, "participant suspended");
        return;
    }
    if (delta > 0 && s->inflight >= S.opts.max_inflight)
        pause_reading(s, "inflight");
    else if (delta < 0 && s->read_paused)
        add_work(s);
}

static void send_ping(struct session *s)
{
    Sikka__V1__Heartbeat hb = SIKKA__V1__HEARTBEAT__INIT;
    s->ping_nonce++;
    hb.nonce = s->ping_nonce;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    (void)session_send(s, &env);
}

static void handle_heartbeat(struct session *s, const Sikka__V1__Heartbeat *hb)
{
    if (hb->reply)
        return; /* any frame already proved the peer alive */
    Sikka__V1__Heartbeat pong = SIKKA__V1__HEARTBEAT__INIT;
    pong.nonce = hb->nonce;
    pong.reply = 1;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &pong;
    (void)session_send(s, &env);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

/* A throttled session is read again once this long's worth of frames has
 * refilled: pausing for one frame at a time would cost the switch more
 * (two epoll changes and a timer per frame) than the frames themselves. */
#define THROTTLE_MIN_US 10000

/* Takes one frame from the session's budget (session_max_frames_per_second)
 * and from its participant's (participant_max_frames_per_second, all its
 * sessions together); when either is spent, reading pauses until a batch of
 * frames has refilled. */
static bool take_frame_token(struct session *s)
{
    int64_t now = mono_us();
    s->frame_us = now; /* the router's "received", without a clock read of its own */
    struct bucket *pb = &s->participant->frames;
    int64_t prate = S.opts.participant_max_frames, srate = S.opts.max_frames_per_second;
    if (bucket_take(&s->frames, now, srate, srate)) {
        if (bucket_take(pb, now, prate, prate))
            return true;
        s->frames.tokens += 1000000; /* not spent after all */
    }
    int64_t batch_s = srate * THROTTLE_MIN_US / 1000000,
            batch_p = prate * THROTTLE_MIN_US / 1000000;
    int64_t wait_us = bucket_wait_us(&s->frames, srate, srate, batch_s > 1 ? batch_s : 1);
    int64_t wait_p = bucket_wait_us(pb, prate, prate, batch_p > 1 ? batch_p : 1);
    if (wait_p > wait_us)
        wait_us = wait_p;
    if (wait_us < THROTTLE_MIN_US)
        wait_us = THROTTLE_MIN_US;
    struct timeval tv = {wait_us / 1000000, wait_us % 1000000};
    s->throttled = true;
    pause_reading(s, "frame_rate");
    evtimer_add(s->timer, &tv);
    return false;
}

/* Counts a malformed frame; true when the session has sent more than
 * session_max_malformed_per_second of them in this second and is closed:
 * a peer that cannot frame its messages has nothing to say. */
static bool too_many_malformed(struct session *s)
{
    int64_t now = mono_us();
    if (now - s->malformed_us >= 1000000) {
        s->malformed_us = now;
        s->malformed = 0;
    }
    if (++s->malformed <= S.opts.max_malformed_per_second)
        return false;
    char text[140];
    snprintf(text, sizeof(text), "more than %" PRId64 " malformed frames in a second",
             S.opts.max_malformed_per_second);
    session_reject(s, "FF01", text, NULL, 0);
    session_close(s, true, "too many malformed frames");
    return true;
}

/* A credit transfer or return within its participant's rate; else answered
 * with NARR "rate limit" and dropped (not recorded: the same msg_id may be
 * sent again). */
static bool within_rate(struct session *s, const Envelope *env)
{
    const char *msg_id;
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER)
        msg_id = env->credit_transfer->msg_id;
    else if (env->body_case == SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN)
        msg_id = env->payment_return->msg_id;
    else
        return true;
    if (bucket_take(&s->participant->messages, mono_us(), S.opts.participant_rate,
                    S.opts.participant_burst))
        return true;
    char text[140];
    snprintf(text, sizeof(text),
             "rate limit: %s may send %" PRId64 " transfers a second (bursts of %" PRId64
             "); send it again later",
             s->participant->code, S.opts.participant_rate, S.opts.participant_burst);
    session_refuse(s, text, msg_id, 0);
    return false;
}

static void process_input(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    char err[256];
    while (s->state == SESSION_ACTIVE && !s->read_paused) {
        size_t len = 0;
        /* only a bulk may be larger than max_frame_bytes (bulk.h), up to
         * bulk_max_frame_bytes: said by its first bytes, before it is read */
        enum codec_status st = codec_peek_bulk(in, (size_t)S.opts.max_frame_bytes,
                                               (size_t)S.opts.max_bulk_frame_bytes, &len);
        if (st == CODEC_AGAIN)
            return;
        if (st == CODEC_TOO_LARGE) {
            size_t max = codec_is_bulk(in) && S.opts.max_bulk_frame_bytes > S.opts.max_frame_bytes
                             ? (size_t)S.opts.max_bulk_frame_bytes
                             : (size_t)S.opts.max_frame_bytes;
            snprintf(err, sizeof(err), "frame of %zu bytes exceeds the maximum of %zu%s", len, max,
                     max > (size_t)S.opts.max_frame_bytes ? " for a bulk" : "");
            session_reject(s, "FF01", err, NULL, 0);
            session_close(s, true, "oversized frame");
            return;
        }
        if (!take_frame_token(s))
            return;
        s->frames_in++;
        s->ping_outstanding = false;
        unsigned char *frame = evbuffer_pullup(in, (ev_ssize_t)(CODEC_HEADER_BYTES + len));
        Envelope *env = NULL;
        if (frame == NULL)
            snprintf(err, sizeof(err), "out of memory reading a frame of %zu bytes", len);
        else
            env = codec_unpack(&S.arena, frame + CODEC_HEADER_BYTES, len, err, sizeof(err));
        if (env == NULL) {
            /* the length was sane, so the stream is still in sync */
            if (frame != NULL)
                recorder_malformed(s->participant->code, frame + CODEC_HEADER_BYTES, len);
            evbuffer_drain(in, CODEC_HEADER_BYTES + len);
            arena_reset(&S.arena);
            if (too_many_malformed(s))
                return;
            session_reject(s, "FF01", err, NULL, 0);
            continue;
        }
        /* the message is unpacked (copied) already; the bytes can go */
        evbuffer_drain(in, CODEC_HEADER_BYTES + len);
        if (len > (size_t)S.opts.max_frame_bytes &&
            env->body_case != SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER) {
            /* began like a bulk, but is something else */
            snprintf(err, sizeof(err), "frame of %zu bytes exceeds the maximum of %" PRId64, len,
                     S.opts.max_frame_bytes);
            session_reject(s, "FF01", err, NULL, 0);
            arena_reset(&S.arena);
            continue;
        }
        if (env->body_case == SIKKA__V1__ENVELOPE__BODY_HEARTBEAT)
            handle_heartbeat(s, env->heartbeat);
        else if (within_rate(s, env))
            router_on_frame(s, env);
        arena_reset(&S.arena);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (s->close_after_flush) {
        if (!s->freed_scheduled)
            schedule_free(s);
        return;
    }
    if (s->read_paused)
        add_work(s);
}

static void set_active_timeouts(struct session *s)
{
    struct timeval rd = {S.opts.heartbeat_interval_ms / 1000,
                         (S.opts.heartbeat_interval_ms % 1000) * 1000};
    struct timeval wr = {S.opts.write_timeout_ms / 1000, (S.opts.write_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(s->bev, &rd, &wr);
}

static void on_handshake(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    struct tls_identity id;
    evtimer_del(s->timer); /* the handshake deadline */
    handshake_end(s);
    if (tls_peer_identity(ssl, &id) != 0) {
        session_close(s, false, "no verified client certificate");
        return;
    }
    if (strcmp(id.role, "participant") != 0) {
        char text[160], role[41]; /* cut on a character boundary: the text goes on the wire */
        (void)text_copy_truncated(role, sizeof(role), id.role);
        snprintf(text, sizeof(text), "certificate role \"%s\" is not a participant", role);
        session_reject(s, "RC01", text, NULL, 0);
        session_close(s, true, "certificate is not a participant's");
        return;
    }
    struct participant *p = participant_find(id.name);
    if (p == NULL) {
        char text[160], name[9];
        (void)text_copy_truncated(name, sizeof(name), id.name);
        snprintf(text, sizeof(text), "participant %s is not registered with the scheme", name);
        session_reject(s, "RC01", text, NULL, 0);
        session_close(s, true, "unknown participant");
        return;
    }
    if (p->status != PARTICIPANT_ACTIVE) {
        session_reject(s, "AG10", "participant is suspended", NULL, 0);
        session_close(s, true, "participant suspended");
        return;
    }
    if ((int64_t)p->nsessions >= S.opts.max_sessions_per_participant) {
        char text[140];
        snprintf(text, sizeof(text), "%s has %u sessions open, the most allowed", p->code,
                 p->nsessions);
        session_reject(s, "NARR", text, NULL, 0);
        session_close(s, true, "too many sessions for the participant");
        return;
    }
    s->participant = p;
    snprintf(s->label, sizeof(s->label), "%s#%" PRIu64, p->code, s->id);
    s->p_prev = NULL;
    s->p_next = p->sessions;
    if (p->sessions != NULL)
        p->sessions->p_prev = s;
    p->sessions = s;
    p->nsessions++;
    metrics_session_opened(p->index);
    set_state(s, SESSION_ACTIVE);
    set_active_timeouts(s);
    log_info("event=session_open session=%s peer=%s tls=%s", s->label, s->peer,
             SSL_get_version(ssl));
    /* the welcome: with TLS 1.3 the participant's side of the handshake ends
     * before ours, so this first frame tells it the session is registered */
    send_ping(s);
    /* settlement notices its participant has not acknowledged yet */
    outbox_resend(s);
    /* requests to pay delivered to it and not answered yet */
    rtp_session_open(s);
    process_input(s);
}

static void describe_error(struct session *s, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(s->bev);
    if (e != 0) {
        char tmp[200];
        ERR_error_string_n(e, tmp, sizeof(tmp));
        snprintf(buf, len, "TLS: %s", tmp);
        while (bufferevent_get_openssl_error(s->bev) != 0)
            ;
    } else if (EVUTIL_SOCKET_ERROR() != 0) {
        snprintf(buf, len, "socket: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    } else {
        snprintf(buf, len, "connection error");
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct session *s = arg;
    char why[256];
    if (what & BEV_EVENT_CONNECTED) {
        if (s->state == SESSION_HANDSHAKE)
            on_handshake(s);
        return;
    }
    if (s->state == SESSION_CLOSING) {
        /* the peer went away while we flushed; nothing more to say */
        if (!s->freed_scheduled)
            schedule_free(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (what & BEV_EVENT_WRITING) {
            snprintf(why, sizeof(why), "peer read nothing for %" PRId64 " ms",
                     S.opts.write_timeout_ms);
            session_close(s, false, why);
        } else if (s->ping_outstanding) {
            session_close(s, false, "heartbeat not answered");
        } else {
            s->ping_outstanding = true;
            send_ping(s);
            bufferevent_enable(s->bev, EV_READ);
            if (s->read_paused)
                bufferevent_disable(s->bev, EV_READ);
        }
        return;
    }
    if (what & BEV_EVENT_EOF) {
        session_close(s, false,
                      s->state == SESSION_HANDSHAKE ? "peer closed during handshake"
                                                    : "peer closed");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        describe_error(s, why, sizeof(why));
        session_close(s, false, why);
    }
}

/* Fires for the session's one timer: the handshake deadline, the end of a
 * read throttle, or the end of a suspended participant's grace. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (s->state == SESSION_HANDSHAKE) {
        session_close(s, false, "TLS handshake deadline passed");
        return;
    }
    if (s->state != SESSION_ACTIVE)
        return;
    if (s->retiring) {
        if (s->inflight == 0)
            session_close(s, true, "participant suspended");
        /* else: closed when its last transfer is answered */
        return;
    }
    if (s->throttled) {
        s->throttled = false;
        add_work(s); /* resumes reading, handles what is buffered */
    }
}

struct session *session_accept(evutil_socket_t fd, const struct sockaddr *addr, int addrlen)
{
    (void)addrlen;
    char ip[INET6_ADDRSTRLEN] = "?";
    char peer[64] = "?";
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(peer, sizeof(peer), "%s:%u", ip, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(peer, sizeof(peer), "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    if ((int64_t)S.by_id.count >= S.opts.max_sessions) {
        log_warn("event=connection_refused peer=%s why=\"max_sessions %" PRId64 " reached\"", peer,
                 S.opts.max_sessions);
        evutil_closesocket(fd);
        return NULL;
    }
    struct addr_count *hs_count = handshake_begin(ip);
    if (hs_count == NULL) {
        log_warn("event=connection_refused peer=%s why=\"%" PRId64
                 " connections of this address are in the TLS handshake already\"",
                 peer, S.opts.max_handshakes_per_address);
        evutil_closesocket(fd);
        return NULL;
    }
    struct session *s = calloc(1, sizeof(*s));
    SSL *ssl = SSL_new(S.ctx);
    if (s == NULL || ssl == NULL) {
        log_error("event=oom what=session peer=%s", peer);
        free(s);
        SSL_free(ssl);
        evutil_closesocket(fd);
        handshake_release(hs_count);
        return NULL;
    }
    s->handshaking = hs_count;
    s->id = S.next_id++;
    snprintf(s->label, sizeof(s->label), "#%" PRIu64, s->id);
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->pending = evbuffer_new();
    s->timer = evtimer_new(S.base, on_timer, s);
    s->bev = bufferevent_openssl_socket_new(S.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (s->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
    }
    if (s->pending == NULL || s->bev == NULL || s->timer == NULL ||
        evbuffer_add_cb(s->pending, count_output, NULL) == NULL ||
        evbuffer_add_cb(bufferevent_get_output(s->bev), count_output, NULL) == NULL ||
        hmap_insert(&S.by_id, &s->node, hmap_hash_u64(s->id)) != 0) {
        log_error("event=oom what=session_buffers peer=%s", peer);
        handshake_end(s);
        if (s->pending != NULL)
            evbuffer_remove_cb(s->pending, count_output, NULL);
        if (s->bev != NULL) {
            evbuffer_remove_cb(bufferevent_get_output(s->bev), count_output, NULL);
            bufferevent_free(s->bev);
        }
        if (s->pending != NULL)
            evbuffer_free(s->pending);
        if (s->timer != NULL)
            event_free(s->timer);
        free(s);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
    bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
    /* an absolute deadline: a peer trickling a byte at a time gains nothing */
    struct timeval hs = {S.opts.handshake_timeout_ms / 1000,
                         (S.opts.handshake_timeout_ms % 1000) * 1000};
    evtimer_add(s->timer, &hs);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    log_debug("event=session_accepted session=%s peer=%s", s->label, s->peer);
    return s;
}

bool session_query_begin(struct session *s)
{
    if (s->queries >= S.opts.max_queries)
        return false;
    s->queries++;
    return true;
}

void session_query_end(uint64_t session_id)
{
    struct session *s = session_find(session_id);
    if (s != NULL && s->queries > 0)
        s->queries--;
}

void session_retire_participant(struct participant *p, int64_t grace_ms, const char *why)
{
    struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
    for (struct session *s = p->sessions; s != NULL; s = s->p_next) {
        if (s->retiring || s->state != SESSION_ACTIVE)
            continue;
        s->retiring = true;
        if (s->throttled) {
            s->throttled = false;
            add_work(s); /* decisions may still come: read it again */
        }
        evtimer_add(s->timer, &tv);
        log_info("event=session_retiring session=%s inflight=%" PRId64 " grace_ms=%" PRId64
                 " why=\"%s\"",
                 s->label, s->inflight, grace_ms, why);
    }
}

size_t session_close_revoked(SSL_CTX *ctx)
{
    size_t n = 0;
    hmap_settle(&S.by_id);
    for (size_t i = 0; i <= S.by_id.mask; i++) {
        for (struct hnode *h = S.by_id.buckets[i]; h != NULL; h = h->next) {
            struct session *s = hmap_entry(h, struct session, node);
            if (s->state != SESSION_ACTIVE || s->bev == NULL)
                continue;
            SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
            if (ssl == NULL || !tls_cert_revoked(ctx, SSL_get0_peer_certificate(ssl)))
                continue;
            session_reject(s, "NARR", "certificate revoked", NULL, 0);
            session_close(s, true, "certificate revoked");
            n++;
        }
    }
    return n;
}

void session_module_free(void)
{
    hmap_settle(&S.by_id);
    for (size_t i = 0; i <= S.by_id.mask; i++) {
        struct hnode *n = S.by_id.buckets != NULL ? S.by_id.buckets[i] : NULL;
        while (n != NULL) {
            struct hnode *next = n->next;
            struct session *s = hmap_entry(n, struct session, node);
            if (s->timer != NULL)
                event_free(s->timer);
            if (s->bev != NULL)
                bufferevent_free(s->bev);
            if (s->pending != NULL)
                evbuffer_free(s->pending);
            free(s);
            n = next;
        }
    }
    hmap_destroy(&S.by_id);
    hmap_settle(&S.by_addr);
    for (size_t i = 0; S.by_addr.buckets != NULL && i <= S.by_addr.mask; i++) {
        struct hnode *n = S.by_addr.buckets[i];
        while (n != NULL) {
            struct hnode *next = n->next;
            free(hmap_entry(n, struct addr_count, node));
            n = next;
        }
    }
    hmap_destroy(&S.by_addr);
    if (S.work_ev != NULL)
        event_free(S.work_ev);
    arena_reset(&S.arena);
    S.work = NULL;
}
