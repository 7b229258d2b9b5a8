/*
 * request: sikka-wallet's request-to-pay commands (RTP Now / RTP Later,
 * ISO 20022 pain.013 / pain.014), and what `listen` does with requests.
 *
 *   sikka-wallet request send --to ACCOUNT@CODE --amount A --purpose P
 *                [--from ACCOUNT] [--ref T] [--due YYYY-MM-DD] [--expires-in SECONDS]
 *                [--msg-id ID]
 *       prints <request-id> (exit 0) or RJCT <code> <text> (exit 1)
 *   sikka-wallet request list                  one line per open request
 *   sikka-wallet request accept ID             ACCEPTED <id>
 *   sikka-wallet request decline ID --reason CODE   DECLINED <id>
 *   sikka-wallet request cancel ID             CANCELLED <id>
 *   sikka-wallet request block CODE --account A     BLOCKED <code> (opt-out)
 *   sikka-wallet request unblock CODE --account A   UNBLOCKED <code>
 *
 * A refusal prints RJCT <code> <text> with exit 1; no answer (connection,
 * timeout) is said on stderr with exit 2. `request accept` only accepts: the
 * payment that follows is a CreditTransfer naming the request
 * (`listen --accept-requests` does both).
 *
 * The common options (--connect, --participant, --cert, --key, --ca,
 * --timeout-ms, --verbose) are those of every sikka-wallet command; the ones
 * given before `request` come in `defaults`.
 */
#ifndef SIKKA_CLIENT_REQUEST_H
#define SIKKA_CLIENT_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "codec.h"

struct request_defaults {
    const char *connect;
    const char *participant;
    const char *cert;
    const char *key;
    const char *ca;
    int timeout_ms;
    bool verbose;
};

/* argv[0] is "request". Returns the exit code. */
int request_main(const struct request_defaults *d, int argc, char **argv);

/* `listen`'s handling of requests delivered to us (as the debtor's
 * participant) and of their reports. Plain data; zero it, then set mode. */
#define REQUEST_LISTEN_SLOTS 256
enum request_listen_mode {
    REQUEST_LISTEN_IGNORE = 0, /* print them, answer nothing */
    REQUEST_LISTEN_ACCEPT,     /* accept, then pay with a linked credit transfer */
    REQUEST_LISTEN_DECLINE,    /* decline with `reason` */
};
struct request_listen {
    enum request_listen_mode mode;
    const char *reason;
    bool quiet;
    struct {
        uint64_t id;
        char debtor_agent[5];
        char debtor_account[35];
        char creditor_agent[5];
        char creditor_account[35];
        int64_t amount;
        Sikka__V1__Purpose purpose;
        char ref[48];
    } slot[REQUEST_LISTEN_SLOTS]; /* delivered requests, by id % slots */
};

/* Handles a RequestToPay or RequestStatus frame (true), else false. */
bool request_listen_frame(struct request_listen *l, struct client *c, const Envelope *env);

#endif
