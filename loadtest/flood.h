/*
 * flood: `sikka-replay flood`, a hostile participant. It connects as one
 * participant (`sessions` connections over mutual TLS, through the shared
 * client library's event-driven API) and writes heartbeat pings, malformed
 * frames (a correct length prefix around bytes that are not an Envelope) or
 * both, as fast as the connections take them, for `seconds`. The first
 * `no_read` sessions never read their socket after the switch's welcome, so
 * its answers (pongs, MessageRejects FF01) pile up at the switch.
 *
 * It exists to show what the switch's protections (session.h: frame rate,
 * output caps, fair flushing) leave of a flood for the other participants;
 * loadtest/bench.sh runs it beside a victim load.
 *
 * Everything runs on one libevent loop. Every frame has the same length, so
 * frames written are the bytes handed to the kernel divided by it. Results
 * are plain numbers owned by the caller.
 */
#ifndef SIKKA_FLOOD_H
#define SIKKA_FLOOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum flood_mode {
    FLOOD_PINGS = 0, /* heartbeat pings: each is answered with a pong */
    FLOOD_MALFORMED, /* each is answered with MessageReject FF01 */
    FLOOD_MIXED,     /* the two alternating */
};

struct flood_opts {
    char host[256];
    int port;
    const char *pki;         /* <pki>/<CODE>.crt/.key and <pki>/ca.crt */
    const char *participant; /* the flooder's code (its certificate's CN) */
    unsigned sessions;
    unsigned no_read; /* the first no_read sessions never read (<= sessions) */
    enum flood_mode mode;
    double seconds; /* of flooding, once every session is connected */
    double connect_timeout_s;
};

struct flood_result {
    double elapsed_s;        /* from every session connected to the end */
    size_t frame_bytes;      /* the length of every frame, prefix included */
    uint64_t frames_written; /* handed to the kernel (not necessarily read by the switch) */
    uint64_t rejects;        /* MessageRejects the reading sessions received */
    unsigned closed;         /* sessions the switch closed before the end */
    char first_close[320];   /* why the first of them closed */
    bool interrupted;        /* SIGINT or SIGTERM ended the flood early */
};

void flood_opts_defaults(struct flood_opts *o);

/* "pings", "malformed", "mixed" to the mode; -1 for anything else. */
int flood_parse_mode(const char *text, enum flood_mode *out) __attribute__((warn_unused_result));
const char *flood_mode_name(enum flood_mode m);

/* Connects, floods, disconnects. -1 (err says why) when the flood could not
 * start: a certificate missing, or the sessions not all connected within
 * connect_timeout_s. Sessions the switch closes afterwards are results. */
int flood_run(const struct flood_opts *o, struct flood_result *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The few lines `sikka-replay flood` prints. */
void flood_report(FILE *out, const struct flood_opts *o, const struct flood_result *r);

#endif
