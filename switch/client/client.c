#include "client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "cli.h"
#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "msg.h"
#include "tls.h"

/* Inline arena for the callback path: a typical frame unpacks in well under
 * this, so steady-state receiving never mallocs. */
#define CLIENT_ARENA_BYTES 8192

enum client_state {
    CLIENT_STATE_CONNECTING = 0, /* TCP connect and TLS handshake under way */
    CLIENT_STATE_OPEN,           /* handshake done; frames flow */
    CLIENT_STATE_CLOSED,         /* bufferevent gone; close_reason says why */
};

static const char *const client_state_names[] = {"connecting", "open", "closed"};

#define CLIENT_ACK_MAX      1000  /* ids in one ReportAck (the switch's limit) */
#define CLIENT_SEEN_DEFAULT 65536 /* client_notices_new(0) */
#define CLIENT_SEEN_OWN     4096  /* a client's own memory, when not given one */

/* The settlement notices handed to the application, the most recent
 * `capacity` of them: a ring of nodes in a hash map. */
struct seen_notice {
    struct hnode node;
    uint64_t id;
};
struct client_notices {
    struct hmap map;
    struct seen_notice *ring;
    size_t capacity, next, count;
    uint64_t repeats;
};

struct client_notices *client_notices_new(size_t capacity)
{
    if (capacity == 0)
        capacity = CLIENT_SEEN_DEFAULT;
    struct client_notices *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->ring = calloc(capacity, sizeof(*n->ring));
    if (n->ring == NULL || hmap_init(&n->map, capacity) != 0) {
        free(n->ring);
        free(n);
        return NULL;
    }
    n->capacity = capacity;
    return n;
}

void client_notices_free(struct client_notices *n)
{
    if (n == NULL)
        return;
    hmap_destroy(&n->map);
    free(n->ring);
    free(n);
}

uint64_t client_notices_repeats(const struct client_notices *n)
{
    return n == NULL ? 0 : n->repeats;
}

static bool seen_eq(const struct hnode *n, const void *key)
{
    return hmap_entry(n, struct seen_notice, node)->id == *(const uint64_t *)key;
}

/* Records id; false when it was recorded already (a repeat). */
static bool seen_first(struct client_notices *n, uint64_t id)
{
    uint64_t h = hmap_hash_u64(id);
    if (hmap_find(&n->map, h, seen_eq, &id) != NULL) {
        n->repeats++;
        return false;
    }
    struct seen_notice *slot = &n->ring[n->next];
    if (n->count == n->capacity)
        hmap_remove(&n->map, &slot->node);
    else
        n->count++;
    slot->id = id;
    if (hmap_insert(&n->map, &slot->node, h) != 0)
        n->count--;
    n->next = (n->next + 1) % n->capacity;
    return true;
}

/* One received frame waiting for client_recv. Owns env, which was unpacked
 * with protobuf-c's default allocator because it outlives the read callback. */
struct client_frame {
    struct client_frame *next;
    Envelope *env;
};

/* Owned by whoever called client_open; freed only by client_free (deferred
 * while one of the client's own callbacks or blocking waits is running). */
struct client {
    struct event_base *base; /* not owned */
    struct bufferevent *bev; /* owned; owns the SSL and the socket; NULL once closed */
    struct event *timer;     /* owned; the blocking helpers' timeout */
    enum client_state state; /* changed only by client_set_state */
    char name[96];           /* "host:port#seq" for log lines */
    size_t max_frame;
    client_frame_cb on_frame;
    client_event_cb on_event;
    void *arg;
    struct client_frame *head; /* owned FIFO of frames for client_recv */
    struct client_frame *tail;
    int depth;           /* > 0 while our callbacks or a blocking wait run */
    bool free_scheduled; /* client_free came while depth > 0 */
    bool timed_out;      /* the blocking wait's timer fired */
    bool ready;          /* the peer's first frame arrived */
    bool tls_failed;     /* closed by a TLS error before that (client_tls_failed) */
    bool manual_acks;
    struct client_notices *notices; /* not owned unless own_notices */
    bool own_notices;
    uint64_t acks[CLIENT_ACK_MAX]; /* notices to acknowledge after this read */
    size_t nacks;
    char close_reason[256];
    struct arena arena; /* per-frame memory on the callback path, reset after each */
    max_align_t arena_mem[CLIENT_ARENA_BYTES / sizeof(max_align_t)];
};

static unsigned long client_seq;

/* Frames refused by any client of this process (client_refused_frames). */
static uint64_t refused_frames;
static char refused_last[320];

static void client_set_state(struct client *c, enum client_state next)
{
    log_debug("client=%s event=state from=%s to=%s", c->name, client_state_names[c->state],
              client_state_names[next]);
    c->state = next;
}

static void client_destroy(struct client *c)
{
    if (c->bev != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        /* A close_notify when nothing is half-written (so no TLS record can
         * be interleaved with it): the peer then sees a clean EOF. */
        if (c->state == CLIENT_STATE_OPEN && ssl != NULL &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            (void)SSL_shutdown(ssl);
            ERR_clear_error();
        }
        bufferevent_free(c->bev);
    }
    while (c->head != NULL) {
        struct client_frame *f = c->head;
        c->head = f->next;
        sikka__v1__envelope__free_unpacked(f->env, NULL);
        free(f);
    }
    arena_reset(&c->arena);
    if (c->own_notices)
        client_notices_free(c->notices);
    if (c->timer != NULL)
        event_free(c->timer);
    log_debug("client=%s event=freed", c->name);
    free(c);
}

/* Marks the start of a stretch in which c must not be freed. */
static void client_hold(struct client *c)
{
    c->depth++;
}

/* Ends it; frees c when client_free was called meanwhile. Returns true when
 * c is gone. */
static bool client_release(struct client *c)
{
    if (--c->depth > 0 || !c->free_scheduled)
        return false;
    client_destroy(c);
    return true;
}

/* Closes the connection once: records why, drops the bufferevent (libevent
 * defers the real free while its own callback runs) and tells the user.
 * Only called with c held, so the user's callback cannot free c under us. */
static void client_close(struct client *c, enum log_level level, const char *why)
{
    if (c->state == CLIENT_STATE_CLOSED)
        return;
    char q[300];
    log_write(level, "client=%s event=closed state=%s reason=%s", c->name,
              client_state_names[c->state], log_quote(why, q, sizeof(q)));
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", why);
    client_set_state(c, CLIENT_STATE_CLOSED);
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->on_event != NULL && !c->free_scheduled)
        c->on_event(c, CLIENT_CLOSED, c->close_reason, c->arg);
}

static int client_answer_heartbeat(struct client *c, const Sikka__V1__Heartbeat *hb)
{
    if (hb->reply)
        return 0; /* an answer to a ping of ours: liveness is all it says */
    struct msg_heartbeat pong;
    msg_heartbeat_init(&pong, hb->nonce, true);
    if (codec_write(bufferevent_get_output(c->bev), &pong.env) < 0) {
        client_close(c, LOG_LEVEL_ERROR, "cannot queue a heartbeat reply");
        return -1;
    }
    return 0;
}

static int client_enqueue(struct client *c, Envelope *env)
{
    struct client_frame *f = malloc(sizeof(*f));
    if (f == NULL) {
        sikka__v1__envelope__free_unpacked(env, NULL);
        client_close(c, LOG_LEVEL_ERROR, "out of memory queueing a received frame");
        return -1;
    }
    f->next = NULL;
    f->env = env;
    if (c->tail != NULL)
        c->tail->next = f;
    else
        c->head = f;
    c->tail = f;
    return 0;
}

/* Sends the acknowledgements collected (ReportAck). */
static void client_send_acks(struct client *c)
{
    if (c->nacks == 0 || c->bev == NULL)
        return;
    Sikka__V1__ReportAck ack = SIKKA__V1__REPORT_ACK__INIT;
    ack.transfer_ids = c->acks;
    ack.n_transfer_ids = c->nacks;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REPORT_ACK;
    env.report_ack = &ack;
    if (codec_write(bufferevent_get_output(c->bev), &env) < 0)
        log_warn("client=%s event=ack_not_sent notices=%zu why=\"cannot queue\"", c->name,
                 c->nacks);
    c->nacks = 0;
}

int client_ack(struct client *c, const uint64_t *transfer_ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->nacks == CLIENT_ACK_MAX)
            client_send_acks(c);
        c->acks[c->nacks++] = transfer_ids[i];
    }
    if (c->bev == NULL)
        return -1;
    client_send_acks(c);
    return 0;
}

/* Takes the frame of body length len off in and acts on it. Returns -1 when
 * reading must stop (the connection was closed). */
static int client_handle_frame(struct client *c, struct evbuffer *in, size_t len)
{
    char err[256], why[320];
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)(CODEC_HEADER_BYTES + len));
    if (p == NULL) {
        snprintf(why, sizeof(why), "out of memory reading a frame of %zu bytes", len);
        client_close(c, LOG_LEVEL_ERROR, why);
        return -1;
    }
    const uint8_t *body = p + CODEC_HEADER_BYTES;
    /* Validation (schema, unknown fields, body) always happens in the arena,
     * which bounds what a hostile frame can make us allocate. Frames for
     * client_recv are then unpacked again with malloc, as they outlive this
     * call; that path serves the blocking tools, not the load generator. */
    Envelope *env = codec_unpack(&c->arena, body, len, err, sizeof(err));
    Envelope *owned = NULL;
    if (env != NULL && !c->ready) {
        c->ready = true;
        log_debug("client=%s event=ready", c->name);
        if (c->on_event != NULL && !c->free_scheduled)
            c->on_event(c, CLIENT_READY, "", c->arg);
    }
    /* a settlement notice: acknowledged after this read, a repeat dropped */
    bool repeat = false;
    if (env != NULL && env->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT &&
        env->status_report->to_payee && env->status_report->transfer_id != 0) {
        uint64_t id = env->status_report->transfer_id;
        if (c->notices == NULL) {
            c->notices = client_notices_new(CLIENT_SEEN_OWN);
            c->own_notices = c->notices != NULL;
            if (c->notices == NULL)
                log_error("client=%s event=oom what=notice_memory (repeats not dropped)", c->name);
        }
        repeat = c->notices != NULL && !seen_first(c->notices, id);
        if (!c->manual_acks || repeat) {
            if (c->nacks == CLIENT_ACK_MAX)
                client_send_acks(c);
            c->acks[c->nacks++] = id;
        }
        if (repeat)
            log_debug("client=%s event=notice_repeated transfer=%" PRIu64, c->name, id);
    }
    bool queue = env != NULL && !repeat && env->body_case != SIKKA__V1__ENVELOPE__BODY_HEARTBEAT &&
                 c->on_frame == NULL;
    if (queue)
        owned = sikka__v1__envelope__unpack(NULL, len, body);
    evbuffer_drain(in, CODEC_HEADER_BYTES + len);

    int rc = 0;
    if (env == NULL) {
        /* including a frame a strict proto3 decoder would refuse (a string
         * that is not UTF-8): the switch must never send one, so it is not
         * passed on as if it were fine */
        snprintf(why, sizeof(why), "malformed frame from peer: %s", err);
        refused_frames++;
        snprintf(refused_last, sizeof(refused_last), "%s", why);
        client_close(c, LOG_LEVEL_WARN, why);
        rc = -1;
    } else if (env->body_case == SIKKA__V1__ENVELOPE__BODY_HEARTBEAT) {
        rc = client_answer_heartbeat(c, env->heartbeat);
    } else if (repeat) {
        rc = 0; /* handed over before; acknowledged again */
    } else if (!queue) {
        c->on_frame(c, env, c->arg);
    } else if (owned == NULL) {
        snprintf(why, sizeof(why), "out of memory unpacking a frame of %zu bytes", len);
        client_close(c, LOG_LEVEL_ERROR, why);
        rc = -1;
    } else {
        rc = client_enqueue(c, owned);
    }
    arena_reset(&c->arena);
    return rc;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    client_hold(c);
    while (c->state != CLIENT_STATE_CLOSED && !c->free_scheduled) {
        size_t len = 0;
        enum codec_status st = codec_peek(in, c->max_frame, &len);
        if (st == CODEC_AGAIN)
            break;
        if (st == CODEC_TOO_LARGE) {
            /* the stream cannot be resynchronised past a frame we refuse to buffer */
            char why[128];
            snprintf(why, sizeof(why), "frame of %zu bytes exceeds maximum %zu", len, c->max_frame);
            client_close(c, LOG_LEVEL_WARN, why);
            break;
        }
        if (client_handle_frame(c, in, len) != 0)
            break;
    }
    if (c->state != CLIENT_STATE_CLOSED)
        client_send_acks(c);
    client_release(c);
}

/* Says in a few words why the bufferevent reported `what`. Returns true
 * when it was an orderly end of an open connection (clean or dirty EOF). */
static bool client_describe_failure(struct client *c, short what, char *why, size_t len)
{
    int sock_err = EVUTIL_SOCKET_ERROR();
    unsigned long ssl_err = 0, e;
    while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
        /* libevent 2.1 also records SSL_get_error()'s own code (1 for
         * SSL_ERROR_SSL, 5 for SSL_ERROR_SYSCALL) among the error-queue
         * entries; those say nothing an errno or a real entry does not */
        if (ERR_GET_LIB(e) == 0 && (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL))
            continue;
        if (ssl_err == 0)
            ssl_err = e;
    }
    if (ssl_err == 0)
        ssl_err = ERR_peek_error();
    ERR_clear_error();
    if (ssl_err != 0 && ERR_GET_LIB(ssl_err) == ERR_LIB_SYS) {
        /* OpenSSL 3 reports a failed socket call as an error of library SYS */
        sock_err = ERR_GET_REASON(ssl_err);
        ssl_err = 0;
    }
    bool connecting = c->state == CLIENT_STATE_CONNECTING;
    bool mid_frame = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
    bool eof = (what & BEV_EVENT_EOF) != 0 ||
               (ssl_err != 0 && ERR_GET_LIB(ssl_err) == ERR_LIB_SSL &&
                ERR_GET_REASON(ssl_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING);

    if (what & BEV_EVENT_TIMEOUT) {
        snprintf(why, len, "timed out");
    } else if (eof && !connecting) {
        /* OpenSSL 3 reports a close without close_notify as an error
         * ("unexpected eof while reading"), which libevent 2.1's
         * allow_dirty_shutdown does not recognise; it is an EOF to us, as
         * our frames carry their own length and truncation shows anyway */
        snprintf(why, len, "%s",
                 mid_frame ? "peer closed in the middle of a frame" : "peer closed");
        return !mid_frame;
    } else if (ssl_err != 0) {
        char text[256];
        ERR_error_string_n(ssl_err, text, sizeof(text));
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
        /* before the switch's first frame, a TLS error is one side
         * refusing the other's certificate (with TLS 1.3 the switch's
         * alert comes after our side of the handshake ended) */
        c->tls_failed = !c->ready;
        if (connecting && vr != X509_V_OK)
            snprintf(why, len, "TLS handshake failed: %s (server certificate: %s)", text,
                     X509_verify_cert_error_string(vr));
        else if (connecting)
            snprintf(why, len, "TLS handshake failed: %s", text);
        else
            snprintf(why, len, "TLS error: %s", text);
    } else if (sock_err == ECONNREFUSED) {
        snprintf(why, len, "connection refused");
    } else if (eof) {
        snprintf(why, len, "connection closed during the TLS handshake");
    } else if (sock_err != 0) {
        snprintf(why, len, "%s%s", connecting ? "cannot connect: " : "connection error: ",
                 evutil_socket_error_to_string(sock_err));
    } else {
        snprintf(why, len, "%s", connecting ? "connection failed" : "connection lost");
    }
    return false;
}

static void client_bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    client_hold(c);
    if (what & BEV_EVENT_CONNECTED) {
        /* from here on a close without close_notify is an ordinary EOF;
         * during the handshake it stays an error */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        /* frames are small and answered at once: do not let Nagle hold
         * one back behind an unacknowledged one */
        int one = 1;
        if (setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
            log_warn("client=%s event=nodelay_failed why=\"%s\"", c->name, strerror(errno));
        client_set_state(c, CLIENT_STATE_OPEN);
        log_debug("client=%s event=connected", c->name);
        if (c->on_event != NULL && !c->free_scheduled)
            c->on_event(c, CLIENT_CONNECTED, "", c->arg);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        char why[512];
        bool orderly = client_describe_failure(c, what, why, sizeof(why));
        client_close(c, orderly ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, why);
    }
    client_release(c);
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    c->timed_out = true;
}

SSL_CTX *client_ssl_ctx(const struct client_opts *opts, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_client_ctx_new(opts->cert, opts->key, opts->ca, err, errlen);
    if (ctx == NULL) {
        /* warn: the caller gets err and says it in its own words */
        char q[300];
        log_warn("event=client_ctx_failed why=%s", log_quote(err, q, sizeof(q)));
    }
    return ctx;
}

struct client *client_open(struct event_base *base, SSL_CTX *ctx, const struct client_opts *opts,
                           char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = (int)sizeof(ss);
    char addr[128], q[300];
    SSL *ssl = NULL;
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        log_error("event=oom what=client");
        return NULL;
    }
    c->base = base;
    c->state = CLIENT_STATE_CONNECTING;
    c->max_frame = opts->max_frame != 0 ? opts->max_frame : CODEC_DEFAULT_MAX_FRAME;
    c->manual_acks = opts->manual_acks;
    c->notices = opts->notices;
    const char *host = opts->host != NULL ? opts->host : "";
    snprintf(c->name, sizeof(c->name), "%s:%d#%lu", host, opts->port, ++client_seq);
    /* a frame unpacks into little more than its own size (the schema has
     * no repeated or recursive fields); twice the maximum plus slack */
    arena_init(&c->arena, c->arena_mem, sizeof(c->arena_mem), 2 * c->max_frame + 65536);

    snprintf(addr, sizeof(addr), strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, opts->port);
    if (opts->port <= 0 || opts->port > 65535 ||
        evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
        snprintf(err, errlen, "\"%s\" is not a numeric IP address and port", addr);
        goto fail;
    }
    c->timer = evtimer_new(base, client_timer_cb, c);
    if (c->timer == NULL) {
        snprintf(err, errlen, "cannot create a timer");
        goto fail;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL) {
        char e[256];
        snprintf(err, errlen, "SSL_new: %s", tls_last_error(e, sizeof(e)));
        goto fail;
    }
    if (tls_client_prepare(ssl, host) != 0) {
        snprintf(err, errlen, "cannot set up server name checks for %s", host);
        goto fail;
    }
    /* libevent may retry a blocked SSL_write from a moved buffer */
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        snprintf(err, errlen, "cannot create a TLS bufferevent");
        goto fail;
    }
    ssl = NULL; /* the bufferevent owns it now */
    bufferevent_setcb(c->bev, client_read_cb, NULL, client_bev_event_cb, c);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
        snprintf(err, errlen, "cannot enable the bufferevent");
        goto fail;
    }
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", addr,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto fail;
    }
    log_debug("client=%s event=connecting", c->name);
    return c;
fail:
    log_error("client=%s event=open_failed why=%s", c->name, log_quote(err, q, sizeof(q)));
    SSL_free(ssl);
    client_destroy(c);
    return NULL;
}

void client_set_callbacks(struct client *c, client_frame_cb on_frame, client_event_cb on_event,
                          void *arg)
{
    c->on_frame = on_frame;
    c->on_event = on_event;
    c->arg = arg;
}

int client_send(struct client *c, const Envelope *env)
{
    if (c->bev == NULL || c->free_scheduled) {
        log_warn("client=%s event=send_refused body=%s why=\"connection closed\"", c->name,
                 codec_body_name(env));
        return -1;
    }
    if (codec_write(bufferevent_get_output(c->bev), env) < 0) {
        log_error("client=%s event=send_failed body=%s", c->name, codec_body_name(env));
        return -1;
    }
    return 0;
}

int client_send_raw(struct client *c, const void *data, size_t len)
{
    if (c->bev == NULL || c->free_scheduled) {
        log_warn("client=%s event=send_refused bytes=%zu why=\"connection closed\"", c->name, len);
        return -1;
    }
    if (evbuffer_add(bufferevent_get_output(c->bev), data, len) != 0) {
        log_error("client=%s event=send_failed bytes=%zu", c->name, len);
        return -1;
    }
    return 0;
}

int client_set_reading(struct client *c, bool on)
{
    if (c->bev == NULL || c->free_scheduled)
        return -1;
    log_debug("client=%s event=reading on=%d", c->name, on);
    return on ? bufferevent_enable(c->bev, EV_READ) : bufferevent_disable(c->bev, EV_READ);
}

size_t client_output_pending(const struct client *c)
{
    return c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

bool client_is_connected(const struct client *c)
{
    return c->state == CLIENT_STATE_OPEN;
}

bool client_is_closed(const struct client *c)
{
    return c->state == CLIENT_STATE_CLOSED;
}

const char *client_close_reason(const struct client *c)
{
    return c->close_reason;
}

bool client_tls_failed(const struct client *c)
{
    return c->tls_failed;
}

void client_free(struct client *c)
{
    if (c == NULL)
        return;
    if (c->depth > 0) {
        /* inside one of c's own callbacks (or a blocking wait on it): the
         * stack above us still uses c, so the free happens on the way out */
        c->free_scheduled = true;
        return;
    }
    client_destroy(c);
}

enum client_wait_result {
    CLIENT_WAIT_DONE = 0,
    CLIENT_WAIT_NOT_DONE, /* timeout, or the loop cannot make progress */
    CLIENT_WAIT_FREED,    /* a callback freed c during the wait: c is gone */
};

/* Runs the loop, one iteration at a time, until done(c) or timeout_ms pass
 * (< 0: no limit). Other events on the base run too. Must not be called
 * from inside a callback on the same base: libevent refuses to nest loops. */
static enum client_wait_result client_wait(struct client *c, int timeout_ms,
                                           bool (*done)(const struct client *))
{
    if (done(c))
        return CLIENT_WAIT_DONE;
    client_hold(c);
    c->timed_out = false;
    if (timeout_ms >= 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        if (evtimer_add(c->timer, &tv) != 0) {
            log_error("client=%s event=wait_failed why=\"cannot arm the timer\"", c->name);
            c->timed_out = true;
        }
    }
    while (!done(c) && !c->timed_out && !c->free_scheduled) {
        int rc = event_base_loop(c->base, EVLOOP_ONCE);
        if (rc < 0) {
            log_error("client=%s event=wait_failed why=\"event_base_loop failed (called from "
                      "inside a callback?)\"",
                      c->name);
            break;
        }
        if (rc == 1) {
            log_warn("client=%s event=wait_failed why=\"no events left to wait for\"", c->name);
            break;
        }
    }
    evtimer_del(c->timer);
    if (client_release(c))
        return CLIENT_WAIT_FREED;
    return done(c) ? CLIENT_WAIT_DONE : CLIENT_WAIT_NOT_DONE;
}

/* The switch's first frame arrived, or the connection is over. */
static bool client_ready(const struct client *c)
{
    return c->state == CLIENT_STATE_CLOSED || c->ready;
}

static bool client_settled(const struct client *c)
{
    return c->state != CLIENT_STATE_CONNECTING;
}

static bool client_has_frame(const struct client *c)
{
    return c->head != NULL || c->state == CLIENT_STATE_CLOSED;
}

static bool client_flushed(const struct client *c)
{
    return c->state == CLIENT_STATE_CLOSED || client_output_pending(c) == 0;
}

/* client_connect_sync, saying a timeout without the address (the callers
 * add it) and whether the failure was a TLS one. */
static struct client *client_connect_one(struct event_base *base, SSL_CTX *ctx,
                                         const struct client_opts *opts, int timeout_ms,
                                         bool *tls_failed, char *err, size_t errlen)
{
    *tls_failed = false;
    struct client *c = client_open(base, ctx, opts, err, errlen);
    if (c == NULL)
        return NULL;
    /* c has not been handed out yet, so nothing can free it during the wait */
    if (client_wait(c, timeout_ms, opts->await_ready ? client_ready : client_settled) !=
        CLIENT_WAIT_DONE) {
        snprintf(err, errlen, "timed out after %d ms", timeout_ms);
        log_warn("client=%s event=connect_failed why=\"timed out after %d ms\"", c->name,
                 timeout_ms);
    } else if (c->state != CLIENT_STATE_OPEN) {
        /* client_close has logged why */
        snprintf(err, errlen, "%s", c->close_reason);
        *tls_failed = c->tls_failed;
    } else {
        return c;
    }
    client_free(c);
    return NULL;
}

struct client *client_connect_sync(struct event_base *base, SSL_CTX *ctx,
                                   const struct client_opts *opts, int timeout_ms, char *err,
                                   size_t errlen)
{
    bool tls_failed;
    struct client *c = client_connect_one(base, ctx, opts, timeout_ms, &tls_failed, err, errlen);
    if (c == NULL && strncmp(err, "timed out after ", 16) == 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " connecting to %s:%d", opts->host, opts->port);
    }
    return c;
}

/* ---- several switch addresses ---- */

/* One item of a list, blanks around it already trimmed: text[0..len). */
static int client_addr_parse(const char *text, size_t len, struct client_addr *a, char *err,
                             size_t errlen)
{
    char item[300], why[400];
    if (len == 0) {
        snprintf(err, errlen, "an empty address in the list");
        return -1;
    }
    if (len >= sizeof(item)) {
        snprintf(err, errlen, "\"%.40s...\" is too long for an address", text);
        return -1;
    }
    memcpy(item, text, len);
    item[len] = '\0';
    if (cli_parse_addr(item, a->host, sizeof(a->host), &a->port, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (strpbrk(a->host, "[] \t") != NULL) {
        snprintf(err, errlen, "\"%s\" has no usable host", item);
        return -1;
    }
    /* "::1:7443" reads both ways; "[::1]:7443" only one */
    if (item[0] != '[' && strchr(a->host, ':') != NULL) {
        snprintf(err, errlen, "\"%s\": an IPv6 address goes in brackets, [%s]:%d", item, a->host,
                 a->port);
        return -1;
    }
    return 0;
}

static bool client_is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

int client_addrs_parse(const char *text, struct client_addrs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        while (p < end && client_is_blank(*p))
            p++;
        const char *last = end;
        while (last > p && client_is_blank(last[-1]))
            last--;
        if (out->n == CLIENT_ADDRS_MAX) {
            snprintf(err, errlen, "more than %d switch addresses", CLIENT_ADDRS_MAX);
            goto fail;
        }
        struct client_addr *a = &out->addr[out->n];
        if (client_addr_parse(p, (size_t)(last - p), a, err, errlen) != 0)
            goto fail;
        for (size_t i = 0; i < out->n; i++) {
            if (out->addr[i].port == a->port && strcmp(out->addr[i].host, a->host) == 0) {
                char name[300];
                snprintf(err, errlen, "%s is listed twice",
                         client_addr_name(a, name, sizeof(name)));
                goto fail;
            }
        }
        out->n++;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

const char *client_addr_name(const struct client_addr *a, char *buf, size_t len)
{
    snprintf(buf, len, strchr(a->host, ':') != NULL ? "[%s]:%d" : "%s:%d", a->host, a->port);
    return buf;
}

struct client *client_connect_any_sync(struct event_base *base, SSL_CTX *ctx,
                                       const struct client_opts *opts, struct client_addrs *addrs,
                                       int per_address_ms, int timeout_ms, bool *tls_failed,
                                       char *err, size_t errlen)
{
    char why[512], name[300], q[600];
    size_t used = 0;
    int tried = 0;
    bool all_tls = true;
    if (tls_failed != NULL)
        *tls_failed = false;
    err[0] = '\0';
    int64_t deadline = timeout_ms >= 0 ? mono_ms() + timeout_ms : INT64_MAX;
    for (size_t k = 0; k < addrs->n; k++) {
        size_t i = (addrs->current + k) % addrs->n;
        int64_t wait = per_address_ms;
        if (deadline != INT64_MAX) {
            int64_t left = deadline - mono_ms();
            if (left <= 0)
                break;
            if (wait < 0 || wait > left)
                wait = left;
        }
        struct client_opts o = *opts;
        o.host = addrs->addr[i].host;
        o.port = addrs->addr[i].port;
        client_addr_name(&addrs->addr[i], name, sizeof(name));
        bool tls = false;
        struct client *c = client_connect_one(base, ctx, &o, (int)wait, &tls, why, sizeof(why));
        tried++;
        if (c != NULL) {
            if (i != addrs->current)
                log_info("client=%s event=switch_address address=%s was=%s", c->name, name,
                         client_addr_name(&addrs->addr[addrs->current], why, sizeof(why)));
            addrs->current = i;
            return c;
        }
        all_tls = all_tls && tls;
        if (used < errlen) {
            int m =
                snprintf(err + used, errlen - used, "%s%s: %s", used > 0 ? "; " : "", name, why);
            used += m > 0 ? (size_t)m : 0;
        }
    }
    if (tried == 0)
        snprintf(err, errlen, "no time left to try any of %zu switch addresses", addrs->n);
    if (tls_failed != NULL)
        *tls_failed = tried > 0 && all_tls;
    log_warn("event=connect_failed addresses=%zu tried=%d why=%s", addrs->n, tried,
             log_quote(err, q, sizeof(q)));
    return NULL;
}

void client_backoff_init(struct client_backoff *b, int min_ms, int max_ms)
{
    b->min_ms = min_ms > 0 ? min_ms : 1;
    b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
    b->next_ms = b->min_ms;
}

int client_backoff_next(struct client_backoff *b)
{
    int now = b->next_ms;
    b->next_ms = now > b->max_ms / 2 ? b->max_ms : now * 2;
    return now;
}

void client_backoff_reset(struct client_backoff *b)
{
    b->next_ms = b->min_ms;
}

Envelope *client_recv(struct client *c, int timeout_ms)
{
    if (client_wait(c, timeout_ms, client_has_frame) == CLIENT_WAIT_FREED)
        return NULL;
    struct client_frame *f = c->head;
    if (f == NULL)
        return NULL;
    c->head = f->next;
    if (c->head == NULL)
        c->tail = NULL;
    Envelope *env = f->env;
    free(f);
    return env;
}

void client_envelope_free(Envelope *env)
{
    if (env != NULL)
        sikka__v1__envelope__free_unpacked(env, NULL);
}

int client_flush(struct client *c, int timeout_ms)
{
    enum client_wait_result r = client_wait(c, timeout_ms, client_flushed);
    if (r == CLIENT_WAIT_FREED) {
        log_warn("event=flush_failed why=\"client freed during the wait\"");
        return -1;
    }
    if (r != CLIENT_WAIT_DONE || c->state == CLIENT_STATE_CLOSED) {
        log_warn("client=%s event=flush_failed pending=%zu why=\"%s\"", c->name,
                 client_output_pending(c),
                 c->state == CLIENT_STATE_CLOSED ? c->close_reason : "timed out");
        return -1;
    }
    return 0;
}

uint64_t client_refused_frames(const char **last_why)
{
    if (last_why != NULL)
        *last_why = refused_last;
    return refused_frames;
}
