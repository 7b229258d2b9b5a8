/*
 * client: one participant connection to the switch — mutual TLS, framing,
 * heartbeats — on a caller's libevent event_base. Shared by sikka-wallet,
 * sikka-replay and the tests; nothing here is copied into the tools.
 *
 * Two ways to use it:
 *   - event-driven: client_set_callbacks() and let the caller's loop run
 *     (sikka-replay drives thousands of these on one loop);
 *   - blocking: client_connect_sync() then client_recv(), which run the loop
 *     until a frame arrives or the timeout passes (sikka-wallet, tests).
 *     Frames received while no callback is set are queued in order.
 *
 * Frames are decoded strictly (codec_unpack): a frame that is not a valid
 * Envelope, carries unknown fields, or holds a string a strict proto3
 * decoder refuses (not valid UTF-8) or a NUL byte in a string is never
 * handed to the caller; the connection is closed with the reason
 * ("malformed frame from peer: status_report.text is not valid UTF-8") and
 * the refusal counted (client_refused_frames), so tests can assert that
 * everything the switch sent decoded.
 *
 * Heartbeat pings from the switch are answered automatically and never
 * surface; heartbeat replies are swallowed. A struct client is owned by its
 * creator and freed with client_free(); calling client_free() from inside the
 * client's own callbacks is allowed and takes effect once the callback
 * returns (no further callbacks are made for it).
 *
 * Memory: with an on_frame callback, each frame is unpacked into a
 * per-client arena that is reset after the callback returns (no malloc per
 * frame); without one, frames are unpacked with protobuf-c's default
 * allocator and queued (unbounded) until client_recv() takes them.
 *
 * The blocking helpers run event_base_loop(EVLOOP_ONCE) on the caller's base
 * (other events on it run too); they must not be called from inside any
 * callback running on that base. timeout_ms < 0 waits without limit.
 *
 * A switch pair (an active switch and its standby, CONTRACT.md's "--connect
 * takes several HOST:PORT"): struct client_addrs holds the addresses a
 * participant knows and which one answered last; client_connect_any_sync()
 * tries them in turn from that one, so after a takeover the new active is
 * found on the first try from then on. Only the active switch listens. A
 * tool that reconnects waits between rounds with a struct client_backoff.
 *
 * Writing to a socket the peer has closed raises SIGPIPE: programs using
 * this library must ignore it (signal(SIGPIPE, SIG_IGN)) before any I/O.
 */
#ifndef SIKKA_CLIENT_H
#define SIKKA_CLIENT_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct client_notices;

struct client_opts {
    const char *host; /* switch address, e.g. "127.0.0.1" */
    int port;
    const char *cert; /* participant certificate (PEM) */
    const char *key;
    const char *ca;   /* scheme CA */
    size_t max_frame; /* 0: CODEC_DEFAULT_MAX_FRAME */
    /* Wait for the switch's first frame before calling the connection
     * ready: the switch sends a heartbeat as soon as it has registered the
     * session, which with TLS 1.3 is after our side of the handshake ends.
     * client_connect_sync waits for it; CLIENT_READY reports it. */
    bool await_ready;
    /* Settlement notices (StatusReport with to_payee) are acknowledged by
     * the library (ReportAck) once handed to the application — to the frame
     * callback, or queued for client_recv — and a notice seen before (the
     * switch sends unacknowledged ones again on every reconnect) is dropped
     * by transfer id. Set manual_acks to acknowledge with client_ack
     * yourself, after crediting durably. */
    bool manual_acks;
    /* The memory of notices seen: pass one client_notices to every
     * connection of one participant to one scheme (reconnects, several
     * sessions, another switch address) so a notice resent on any of them
     * is recognised. NULL: the connection keeps its own (4096 notices). */
    struct client_notices *notices;
};

enum client_event {
    CLIENT_CONNECTED = 0, /* TLS handshake finished */
    CLIENT_CLOSED,        /* peer closed or the connection failed; `why` says */
    CLIENT_READY,         /* the peer's first frame arrived: the switch knows us */
};

struct client;

typedef void (*client_frame_cb)(struct client *c, const Envelope *env, void *arg);
typedef void (*client_event_cb)(struct client *c, enum client_event ev, const char *why, void *arg);

/* A client SSL_CTX for opts (TLS 1.3, our certificate, the scheme CA). */
SSL_CTX *client_ssl_ctx(const struct client_opts *opts, char *err, size_t errlen);

/* Starts connecting; callbacks report the outcome. ctx is shared (ref-counted). */
struct client *client_open(struct event_base *base, SSL_CTX *ctx, const struct client_opts *opts,
                           char *err, size_t errlen);

/* Callbacks; env passed to on_frame is valid only during the call. */
void client_set_callbacks(struct client *c, client_frame_cb on_frame, client_event_cb on_event,
                          void *arg);

/* Queues one frame (also while the handshake is still under way). Returns -1
 * when the connection is closed or client_free() has been called. */
int client_send(struct client *c, const Envelope *env) __attribute__((warn_unused_result));

/* Queues raw bytes as they are (tests: malformed frames). */
int client_send_raw(struct client *c, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Stops (false) or resumes (true) reading the socket: what the peer sends
 * then waits in the kernel and, once that is full, at the peer (load tests
 * of the switch's backpressure). Heartbeats are not answered meanwhile.
 * -1 when the connection is closed. */
int client_set_reading(struct client *c, bool on) __attribute__((warn_unused_result));

/* Acknowledges settlement notices (manual_acks). -1 when it cannot queue. */
int client_ack(struct client *c, const uint64_t *transfer_ids, size_t n)
    __attribute__((warn_unused_result));

/* Remembers the last `capacity` settlement notices (0: 65536) by transfer
 * id. Owned by the caller; outlives every client given it. */
struct client_notices *client_notices_new(size_t capacity);
void client_notices_free(struct client_notices *n);
/* Notices dropped as repeats of ones seen before. */
uint64_t client_notices_repeats(const struct client_notices *n);

/* Bytes queued for sending and not yet written to the socket. */
size_t client_output_pending(const struct client *c);

bool client_is_connected(const struct client *c);
bool client_is_closed(const struct client *c);
/* Why the connection closed ("" while open). */
const char *client_close_reason(const struct client *c);
/* The connection ended in a TLS error before the switch's first frame: a
 * certificate one side refuses (another CA, revoked, expired, wrong
 * address). Trying again with the same certificates fails the same way. */
bool client_tls_failed(const struct client *c);

/* Closes (flushing nothing more) and frees. NULL is fine. Acknowledgements
 * not yet written are lost with the connection: the switch sends those
 * notices again on the participant's next connection, where a shared
 * client_notices drops them as repeats. */
void client_free(struct client *c);

/* Blocking: connect and wait for the handshake (with opts->await_ready, for
 * the switch's first frame too) up to timeout_ms. */
struct client *client_connect_sync(struct event_base *base, SSL_CTX *ctx,
                                   const struct client_opts *opts, int timeout_ms, char *err,
                                   size_t errlen);

/* ---- several switch addresses ---- */

#define CLIENT_ADDRS_MAX 8

struct client_addr {
    char host[256]; /* as given, without brackets: "127.0.0.1", "::1" */
    int port;
};

/* The switch addresses a participant knows, in the order given, and the one
 * that answered last. Plain data, owned by the caller. */
struct client_addrs {
    struct client_addr addr[CLIENT_ADDRS_MAX];
    size_t n;       /* 1..CLIENT_ADDRS_MAX once parsed */
    size_t current; /* index of the address that answered last: tried first */
};

/* Parses "HOST:PORT" or several separated by commas ("127.0.0.1:7443,
 * 127.0.0.1:7444"; an IPv6 host in brackets, "[::1]:7443"; blanks around a
 * comma are ignored) into out, with current = 0. Refuses an empty item, a
 * port outside 1..65535, an IPv6 host without brackets, an address listed
 * twice and more than CLIENT_ADDRS_MAX; -1 with why in err. Pure. */
int client_addrs_parse(const char *text, struct client_addrs *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* a as "HOST:PORT" ("[::1]:7443" for IPv6), into buf. Returns buf. */
const char *client_addr_name(const struct client_addr *a, char *buf, size_t len);

/* Blocking: tries the addresses in turn from addrs->current on, each at most
 * once and for at most per_address_ms, all within timeout_ms (< 0: no
 * limit); the first connection that is ready (client_connect_sync with
 * opts, whose host and port are ignored) is returned and its address
 * becomes addrs->current. NULL when none was: err then says what each
 * address tried did ("127.0.0.1:7443: connection refused; ..."), and
 * *tls_failed (when not NULL) is true only when every address tried failed
 * in TLS (client_tls_failed): waiting will not help. */
struct client *client_connect_any_sync(struct event_base *base, SSL_CTX *ctx,
                                       const struct client_opts *opts, struct client_addrs *addrs,
                                       int per_address_ms, int timeout_ms, bool *tls_failed,
                                       char *err, size_t errlen);

/* Waits between reconnection attempts: min_ms first, doubling up to max_ms;
 * client_backoff_reset() once a connection works again. Plain data. */
struct client_backoff {
    int min_ms, max_ms;
    int next_ms;
};

void client_backoff_init(struct client_backoff *b, int min_ms, int max_ms);
/* The wait before the next attempt; the one after it is twice as long (at
 * most max_ms). */
int client_backoff_next(struct client_backoff *b);
void client_backoff_reset(struct client_backoff *b);

/* Blocking: the next queued frame, waiting up to timeout_ms (0: only what
 * has arrived already). NULL on timeout or when the connection closed with
 * nothing queued (then client_is_closed() and client_close_reason() say
 * why). Frames already queued are returned before the close is reported.
 * Only frames received while no on_frame callback was set are queued. Free
 * with client_envelope_free(). */
Envelope *client_recv(struct client *c, int timeout_ms);
void client_envelope_free(Envelope *env);

/* How many frames the clients of this process refused as malformed
 * (strict decoding included) since it started; *last_why (when not NULL)
 * gets the last reason, "" when none. */
uint64_t client_refused_frames(const char **last_why);

/* Blocking: wait until everything queued has been handed to the kernel.
 * -1 on timeout or when the connection closed first. */
int client_flush(struct client *c, int timeout_ms) __attribute__((warn_unused_result));

#endif
