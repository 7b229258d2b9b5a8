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
 * Fairness and backpressure: output is handed to TLS by a deferred-work
 * event of the same priority as the sockets, so no session's traffic can
 * starve another's. A session stops being read at once when its queued
 * output exceeds session_max_output_bytes or it has session_max_inflight
 * transfers unanswered, and resumes when both are below again; it is also
 * read no faster than session_max_frames_per_second, nor all of a
 * participant's sessions together faster than participant_max_frames_per_
 * second (a throttled session waits for a batch, at least 10 ms); one that
 * sends more than session_max_malformed_per_second malformed frames is
 * closed. All sessions' output
 * together is bounded by max_output_bytes_total: past it, a session that
 * already has output queued gets no more (session_send fails).
 *
 * Limits per participant and per address: max_sessions_per_participant
 * sessions, participant_rate transfers and returns a second with bursts of
 * participant_burst (beyond: MessageReject NARR "rate limit: ..."; nothing is
 * recorded, the same msg_id may be sent again), session_max_queries status
 * queries waiting on the database per session, max_handshakes_per_address
 * connections of one IP address in the TLS handshake, and an absolute
 * handshake deadline (handshake_timeout_ms from accept, however slowly the
 * peer trickles bytes).
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

#include "bucket.h"
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
    int64_t max_handshakes_per_address;
    int64_t max_sessions_per_participant;
    int64_t participant_rate;
    int64_t participant_burst;
    int64_t max_frames_per_second;
    int64_t participant_max_frames; /* per second, all its sessions together */
    int64_t max_malformed_per_second;
    int64_t max_queries;
    int64_t max_output_bytes_total;
    int64_t max_bulk_frame_bytes; /* a BulkCreditTransfer's frame (bulk.h) */
};

struct addr_count;

struct session {
    uint64_t id;
    char label[24];                 /* "JAZZ#12", or "#12" before the handshake */
    char peer[64];                  /* remote address */
    struct addr_count *handshaking; /* counted against its address while set */
    struct event *timer;            /* handshake deadline, then read throttle or retirement */
    struct bucket frames;           /* frames it may send (session_max_frames_per_second) */
    int64_t malformed_us;           /* start of the second malformed frames are counted in */
    int64_t malformed;              /* malformed frames in that second */
    int64_t queries;                /* status queries waiting on the database */
    bool retiring;                  /* its participant was suspended: close when idle */
    bool throttled;                 /* reading paused until frame_tokens refill */
    bool throttle_logged;           /* its first throttle was said at info */
    bool paused_quietly;            /* this pause is a repeated throttle, said at debug */
    int64_t reject_log_us;          /* start of the second the reject log budget counts */
    int64_t rejects_logged;         /* rejects logged in that second */
    int64_t rejects_unlogged;       /* and not logged */
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
    int64_t frame_us;                /* when the frame being handled was taken (monotonic) */
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
/* A MessageReject NARR with retry set: nothing was recorded for the message;
 * the participant sends it again (same msg_id) after a pause. */
void session_refuse(struct session *s, const char *text, const char *ref_msg_id,
                    uint64_t ref_transfer_id);

/* Closes now (flush=false) or once queued output is written (flush=true). */
void session_close(struct session *s, bool flush, const char *why);

/* A session of p to forward a transfer to (round robin, skipping ones whose
 * queued output is over the cap), or NULL when p has none that reads. */
struct session *session_pick(struct participant *p);

/* session_max_inflight (bulk.c paces its items by it). */
int64_t session_max_inflight(void);
/* Takes one of its participant's transfer tokens (participant_rate) for a
 * transfer that comes in without a frame of its own (a bulk's item): 0 when
 * taken, else the microseconds until one is there. */
int64_t session_transfer_token(struct session *s);

/* Counts transfers the session has in flight (delta +1/-1); resumes reading
 * when it falls below the cap. */
void session_inflight_add(struct session *s, int delta);

/* A status query of s goes to the database: false (nothing counted) when
 * it already has session_max_queries waiting. */
bool session_query_begin(struct session *s);
/* Its answer came back (the session may be gone). */
void session_query_end(uint64_t session_id);

/* p was suspended: its sessions take no new work from it (the router sees
 * the status) and close, flushing, once their transfers in flight are
 * answered and `grace_ms` has passed (decisions for transfers they were
 * sent may still arrive until the payee timeout). */
void session_retire_participant(struct participant *p, int64_t grace_ms, const char *why);

/* Closes the sessions whose certificate ctx's revocation lists name (after
 * a CRL reload). Returns how many. */
size_t session_close_revoked(SSL_CTX *ctx);

size_t session_count(void);
/* Closes every session (flushing); used at the end of a drain. */
void session_close_all(const char *why);
/* No session has unwritten output. */
bool session_all_flushed(void);

#endif
