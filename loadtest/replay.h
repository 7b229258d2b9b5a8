/*
 * replay: the run engine of `sikka-replay run`. It loads a capture,
 * connects every participant of the capture's header over mutual TLS
 * (`sessions` connections each, through the shared client library's
 * event-driven API), sends the capture's transfers as their payers and
 * answers the forwarded ones as their payees (each record's payee_action:
 * accept, reject with its reason, or ignore), and measures.
 *
 * Everything runs on one libevent loop, non-blocking. Before the clock
 * starts every frame is packed (a transfer whose msg_id must change for a
 * loop or a --run-id is re-framed from its pre-packed remainder, no
 * protobuf packing per send); per-message state lives in a table
 * preallocated for the most messages that may be outstanding, with a hash
 * index on (payer, msg_id) to match StatusReports and forwarded transfers.
 * Received frames are unpacked in the client's arena. Nothing on the hot
 * path calls malloc but the table of notified transfer ids, which doubles
 * now and then.
 *
 * Modes:
 *   REPLAY_RATE    open loop at a fixed rate (wrk2's model): message k is
 *                  due at start + k / rate; a periodic timer sends whatever
 *                  is due. Corrected latency counts from the due time, so a
 *                  stall of the switch (or of this tool) is not hidden;
 *                  uncorrected latency counts from the actual send.
 *   REPLAY_SPEED   open loop on the capture's own offsets divided by a
 *                  speed factor.
 *   REPLAY_CLOSED  closed loop: keep `closed` messages outstanding in total
 *                  (across all sessions), sending the next one whenever an
 *                  answer arrives; corrected = uncorrected.
 *
 * A switch pair: --connect names one or several switch addresses. Every
 * session that closes is opened again, to the next address (or to the one
 * another session found working), after a backoff (100 ms doubling to 2 s,
 * jittered); the run only gives up on a session at its end. Messages that
 * were in flight on a closed session, and transfers the switch refused with
 * a MessageReject marked retry (nothing recorded), are sent again with the
 * same msg_id and the same bytes after a pause (100 ms doubling to 2 s per
 * message) until the end of the run; the switch answers such a retry with
 * its first answer. The payee side shares one client_notices per
 * participant across its sessions and reconnections (repeats are dropped)
 * and counts the settlement notices (StatusReport to_payee) by transfer
 * id, so the report can say which transfers a payer saw settle and whose
 * payee never heard it, and the longest stretch without any ACSC.
 *
 * The capture is looped when --count or --duration asks for more than it
 * holds; loop k > 0 appends "~<k in base 36>" to every msg_id (and --run-id
 * adds "-<id>"), so keys stay unique. A struct replay_result is owned by
 * the caller (replay_result_free).
 */
#ifndef SIKKA_REPLAY_H
#define SIKKA_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "hdr.h"

#define REPLAY_RUN_ID_MAX   12
#define REPLAY_MAX_OUTCOMES 64
#define REPLAY_LATE_US      1000 /* a send this far behind schedule is late */

enum replay_mode {
    REPLAY_SPEED = 0, /* recorded timing times a factor (default: 1) */
    REPLAY_RATE,
    REPLAY_CLOSED,
};

struct replay_opts {
    const char *capture;
    struct client_addrs addrs; /* the switch, or a switch pair */
    const char *pki;           /* <pki>/<CODE>.crt/.key and <pki>/ca.crt */
    unsigned sessions;         /* per participant */
    enum replay_mode mode;
    double rate;       /* REPLAY_RATE: messages per second */
    double speed;      /* REPLAY_SPEED: factor */
    unsigned closed;   /* REPLAY_CLOSED: outstanding messages in total */
    uint64_t count;    /* messages to send; 0: see duration */
    double duration_s; /* measured seconds to send for; 0: no limit */
    double warmup_s;   /* first seconds sent but not measured */
    double drain_s;    /* wait for answers after the last send */
    double hold_s;     /* keep the sessions connected this long at the end */
    double connect_timeout_s;
    unsigned max_outstanding; /* 0: derived from the mode */
    const char *run_id;       /* "" or up to REPLAY_RUN_ID_MAX of [A-Za-z0-9] */
    const char *results;      /* --results FILE or NULL */
    bool live;                /* the live line every second on stderr */
    /* pay by alias: each transfer names its creditor by the alias
     * replay_alias_of() gives its account, agent and account left empty
     * (the switch's directory must hold those aliases: loadtest/bench.sh
     * seeds them) */
    bool by_alias;
};

/* The alias a generated creditor account is paid by: a wallet's account
 * (03 and 9 digits) is a mobile number already; any other ("PK36MEZN..."
 * at the bank) gets 0399 and its last 7 digits. Writes "" when neither
 * applies. */
void replay_alias_of(const char *account, char *out, size_t len);

/* One second of the run, for the live line and the chart. */
struct replay_second {
    double t;                    /* seconds since the start, end of this second */
    uint64_t sent;               /* in this second */
    uint64_t answered;           /* in this second */
    uint64_t errors;             /* in this second */
    uint64_t p50, p90, p99, max; /* corrected latency of answers in this second, us */
    bool warmup;
};

/* One kind of ending: status ACSC / RJCT / MSGREJ (a MessageReject) /
 * NONE (no answer) with its reason code. */
struct replay_outcome {
    char status[8];
    char reason[8];
    uint64_t count;
    bool expected; /* what the capture asked for (payee action, malformed) */
};

struct replay_result {
    /* what was asked */
    enum replay_mode mode;
    double requested_rate; /* RATE: rate; SPEED: capture rate x speed; CLOSED: 0 */
    double speed;
    unsigned closed;
    unsigned sessions; /* connected at the start, all participants */
    unsigned participants;
    uint64_t capture_records;
    uint64_t skipped_records; /* neither a transfer nor malformed: not replayed */
    char started_at[32];      /* ISO 8601 UTC */
    /* what happened, measured messages only (after the warmup) */
    double elapsed_s;        /* measured sending period */
    /* the generator's own CPU time over the whole run (getrusage), warmup
     * and connecting included: what it took from the machine's cores */
    double cpu_user_s;
    double cpu_system_s;
    double achieved_rate;    /* sends per second over the measured period */
    double throughput;       /* answers per second over the measured period */
    double settled_rate;     /* ACSC answers per second over the measured period */
    uint64_t settled;        /* ACSC answers, measured */
    uint64_t total_answered; /* everything answered, warmup included */
    uint64_t sent;
    uint64_t answered;
    uint64_t errors; /* unexpected outcome or no answer */
    uint64_t no_answer;
    uint64_t late; /* sends more than REPLAY_LATE_US behind schedule */
    uint64_t max_late_us;
    uint64_t retries;
    uint64_t malformed;
    uint64_t warmup_sent; /* sent during the warmup (not measured) */
    uint64_t total_sent;  /* everything, warmup included */
    uint64_t stalls;      /* sends deferred: no slot or a session backed up */
    /* the payee side */
    uint64_t forwards; /* transfers forwarded to us as payee */
    uint64_t accepts, rejects, ignores;
    uint64_t unknown_forwards;    /* forwarded transfers we did not send */
    uint64_t unmatched;           /* reports or rejects matching nothing outstanding */
    uint64_t connection_failures; /* sessions that closed during the run */
    char first_failure[256];
    /* reconnection (a switch pair) */
    uint64_t reconnects;        /* sessions opened again after they had been ready */
    uint64_t refused_retryably; /* MessageRejects marked retry: sent again later */
    uint64_t resent;            /* sends of a message already sent (same msg_id, same bytes) */
    unsigned sessions_down;     /* sessions not connected when the run ended */
    /* the payees' settlement notices (the whole run, warmup included) */
    uint64_t payee_notices;        /* distinct transfer ids notified ACSC to their payee */
    uint64_t payee_notice_repeats; /* notices dropped as repeats of ones seen */
    uint64_t acsc_without_notice;  /* a payer saw ACSC, its payee was never notified */
    /* availability: the longest time between two consecutive ACSCs seen by
     * payers, and the wall clock (Unix ms) of the ACSC before and after it */
    uint64_t max_acsc_gap_us;
    int64_t gap_from_ms, gap_to_ms;
    struct replay_outcome outcomes[REPLAY_MAX_OUTCOMES];
    size_t noutcomes;
    struct hdr *corrected;   /* us, measured messages */
    struct hdr *uncorrected; /* us */
    struct replay_second *seconds;
    size_t nseconds;
};

/* Defaults: 127.0.0.1:7443, 1 session, speed 1, drain 10 s, connect
 * timeout 15 s, live line. */
void replay_opts_defaults(struct replay_opts *o);

/* Runs the whole thing. Returns 0 when the run took place (its result may
 * still hold failures: see errors, sessions_down, acsc_without_notice), -1
 * when it
 * could not (capture, certificates, connections, memory), with why in err. */
int replay_run(const struct replay_opts *o, struct replay_result *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void replay_result_free(struct replay_result *r);

const char *replay_mode_name(enum replay_mode m);

#endif
