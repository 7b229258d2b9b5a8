/*
 * session: one participant connection and its state machine
 *
 *   HANDSHAKE -> ACTIVE -> CLOSING   (state changes only via set_state, logged)
 *
 * Once registered, a session sends a heartbeat at once (the "welcome"):
 * clients treat the first frame as the sign that transfers may flow.
 *
 * A session owns its bufferevent (which owns the SSL and the socket). It
 * reads length-prefixed frames, answers heartbeats, hands every other message
 * to the router, and writes what the router sends. Output written during one
 * pass of the loop is coalesced and handed to TLS once per pass.
 *
 * Backpressure: a session stops being read while its queued output exceeds
 * session_max_output_bytes or it has session_max_inflight transfers
 * unanswered, and resumes when both are below again.
 *
 * Sessions are found by id (never kept as pointers by other modules) and are
 * never freed inside their own callbacks: session_close() marks the session
 * and a deferred event frees it after the callback returns.
 */
#ifndef SIKKA_SESSION_H
#define SIKKA_SESSION_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec.h"
#include "hmap.h"

struct participant;

enum session_state {
    SESSION_HANDSHAKE = 0,
    SESSION_ACTIVE,
    SESSION_CLOSING,
};

struct session_options {
    int64_t max_frame_bytes;
    int64_t handshake_timeout_ms;
    int64_t heartbeat_interval_ms;
    int64_t write_timeout_ms;
    int64_t max_inflight;
    int64_t max_output_bytes;
    int64_t max_sessions;
};

struct session {
    uint64_t id;
    char label[24]; /* "JAZZ#12", or "#12" before the handshake */
    char peer[64];  /* remote address */
    enum session_state state;
    struct participant *participant; /* set when ACTIVE */
    struct bufferevent *bev;
    struct evbuffer *pending; /* output of this loop pass, not yet given to TLS */
    bool dirty;               /* on the flush list */
    bool close_after_flush;
    bool freed_scheduled;
    bool read_paused;
    bool ping_outstanding;
    uint64_t ping_nonce;
    int64_t inflight; /* transfers it sent that are unanswered */
    uint64_t frames_in, frames_out;
    struct session *p_next, *p_prev; /* the participant's sessions */
    struct session *list_next;       /* flush list / free list */
    struct hnode node;               /* by id */
};

int session_module_init(struct event_base *base, SSL_CTX *ctx) __attribute__((warn_unused_result));
void session_configure(const struct session_options *opts);
void session_set_ssl_ctx(SSL_CTX *ctx);
void session_module_free(void);

/* Takes an accepted socket; the session owns it from here on. */
struct session *session_accept(evutil_socket_t fd, const struct sockaddr *addr, int addrlen);

struct session *session_find(uint64_t id);

/* Queues one frame. -1 when the session is closing or the frame could not
 * be encoded (logged). */
int session_send(struct session *s, const Envelope *env);

/* Sends a MessageReject (admi.002). */
void session_reject(struct session *s, const char *reason, const char *text, const char *ref_msg_id,
                    uint64_t ref_transfer_id);

/* Closes now (flush=false) or once queued output is written (flush=true). */
void session_close(struct session *s, bool flush, const char *why);

/* A session of p to forward a transfer to (round robin, skipping ones whose
 * queued output is over the cap), or NULL when p has none that reads. */
struct session *session_pick(struct participant *p);

/* Counts transfers the session has in flight (delta +1/-1); resumes reading
 * when it falls below the cap. */
void session_inflight_add(struct session *s, int delta);

size_t session_count(void);
/* Closes every session (flushing); used at the end of a drain. */
void session_close_all(const char *why);
/* No session has unwritten output. */
bool session_all_flushed(void);

#endif
