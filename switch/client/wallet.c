/*
 * sikka-wallet: a participant's command-line client and payee simulator.
 *
 *   sikka-wallet [common options] pay --from ACCOUNT --to ACCOUNT@CODE ...
 *   sikka-wallet [common options] listen [--accept-all | --reject CODE] ...
 *   sikka-wallet [common options] bulk FILE.csv [--from ACCOUNT] [--batch-id ID]
 *   sikka-wallet [common options] alias register|update|lookup|deregister|port|release ALIAS
 *
 * `pay` sends one CreditTransfer and prints the outcome as one line on
 * stdout (`ACSC <transfer-id>`, exit 0, or `RJCT <reason> <text>`, exit 1);
 * anything that keeps it from getting an answer (usage, connection,
 * timeout) is reported on stderr with exit 2, never as a made-up RJCT.
 * `listen` answers forwarded transfers as the payee and prints one line per
 * event, flushed, for scripts to read.
 *
 * --connect takes the switch pair's addresses (several HOST:PORT separated
 * by commas); each connection goes to the first that answers, starting
 * from the one that answered last (client_connect_any_sync). `pay` sends
 * the same transfer (same msg_id, same content) again after a lost
 * connection or a MessageReject marked retry, with backoff, until its
 * timeout: the switch answers a retry with the first answer, so what it
 * prints is what it would have printed without the interruption. `listen`
 * reconnects for ever, sharing one memory of settlement notices across its
 * connections so that a notice the switch sends again is printed once.
 *
 * Defaults come from the local stack: the switch on 127.0.0.1:7443
 * (SIKKA_CONNECT), participant JAZZ (SIKKA_PARTICIPANT), certificates from
 * the development PKI (SIKKA_PKI, else var/pki beside the build, else
 * ./var/pki).
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulkfile.h"
#include "clock.h"
#include "cli.h"
#include "client.h"
#include "log.h"
#include "msg.h"
#include "request.h"

#define WALLET_EXIT_OK       0
#define WALLET_EXIT_REJECTED 1 /* pay: RJCT */
#define WALLET_EXIT_FAILED   2 /* usage, connection or timeout: no answer */

#define WALLET_DEFAULT_CONNECT     "127.0.0.1:7443"
#define WALLET_DEFAULT_PARTICIPANT "JAZZ"
#define WALLET_DEFAULT_TIMEOUT_MS  30000
#define WALLET_ADDRESS_TIMEOUT_MS  5000 /* one address's connect and welcome */
#define WALLET_BACKOFF_MIN_MS      100  /* between attempts: doubling ... */
#define WALLET_BACKOFF_MAX_MS      2000 /* ... up to this */

/* What every sub-command shares: where the switch is and who we are. */
struct wallet {
    const char *connect;     /* HOST:PORT[,HOST:PORT...] */
    const char *participant; /* our 4-letter code */
    const char *cert;        /* NULL: <pki>/<CODE>.crt */
    const char *key;         /* NULL: <pki>/<CODE>.key */
    const char *ca;          /* NULL: <pki>/ca.crt */
    int timeout_ms;
    bool verbose;
    struct client_addrs addrs; /* parsed from connect; which answered last */
    char cert_path[PATH_MAX];
    char key_path[PATH_MAX];
    char ca_path[PATH_MAX];
};

enum wallet_opt {
    OPT_CONNECT = 256,
    OPT_PARTICIPANT,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_TIMEOUT,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_FROM,
    OPT_TO,
    OPT_AMOUNT,
    OPT_PURPOSE,
    OPT_REF,
    OPT_MSG_ID,
    OPT_E2E,
    OPT_CURRENCY,
    OPT_ACCEPT_ALL,
    OPT_REJECT,
    OPT_COUNT,
    OPT_QUIET,
    OPT_BATCH_ID,
    OPT_ACCEPT_REQUESTS,
    OPT_DECLINE_REQUESTS,
};

#define WALLET_COMMON_OPTIONS                                                                      \
    {"connect", required_argument, NULL, OPT_CONNECT},                                             \
        {"participant", required_argument, NULL, OPT_PARTICIPANT},                                 \
        {"cert", required_argument, NULL, OPT_CERT}, {"key", required_argument, NULL, OPT_KEY},    \
        {"ca", required_argument, NULL, OPT_CA},                                                   \
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},                                      \
        {"verbose", no_argument, NULL, OPT_VERBOSE},                                               \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }

static const char common_usage[] =
    "Common options (before or after the sub-command):\n"
    "  --connect HOST:PORT[,HOST:PORT...]\n"
    "                        the switch, or the switch pair's addresses separated by\n"
    "                        commas (IPv6 in brackets); each connection goes to the\n"
    "                        first that answers, from the one that answered last\n"
    "                        (default $SIKKA_CONNECT, else " WALLET_DEFAULT_CONNECT ")\n"
    "  --participant CODE    our participant code (default $SIKKA_PARTICIPANT, else "
    "JAZZ)\n"
    "  --cert F --key F      our certificate and key (default <pki>/<CODE>.crt/.key)\n"
    "  --ca F                the scheme CA (default <pki>/ca.crt)\n"
    "  --timeout-ms N        pay: give up waiting for an answer after N ms; listen:\n"
    "                        for the first connection (default 30000)\n"
    "  --verbose             log the client library's events to stderr\n"
    "  <pki> is $SIKKA_PKI, else var/pki beside the build tree, else ./var/pki.\n";

static void usage_main(FILE *out)
{
    fprintf(out,
            "usage: sikka-wallet [options] COMMAND [command options]\n"
            "\n"
            "A participant's client for the Sikka switch.\n"
            "\n"
            "Commands:\n"
            "  pay      send one credit transfer and print its outcome\n"
            "  bulk     send a CSV file of payments as one batch, one line per payment\n"
            "  listen   answer incoming credit transfers as the payee\n"
            "  request  requests to pay: send, list, accept, decline, cancel, block\n"
            "  alias    the alias directory: register, update, lookup, deregister, port,\n"
            "           release a mobile number (Raast ID)\n"
            "Run `sikka-wallet COMMAND --help` for a command's options.\n"
            "\n%s",
            common_usage);
}

static void usage_pay(FILE *out)
{
    fprintf(out,
            "usage: sikka-wallet pay --from ACCOUNT --to ACCOUNT@CODE|ALIAS --amount 1500.00\n"
            "                        --purpose BNPL_REPAYMENT|SUPPLIER_PAYMENT|P2P\n"
            "                        [--ref TEXT] [--msg-id ID] [--e2e ID] [--currency PKR]\n"
            "\n"
            "Sends one credit transfer from our participant and waits for its status report.\n"
            "Prints one line: `ACSC <transfer-id>` (exit 0) or `RJCT <reason-code> <text>`\n"
            "(exit 1). Usage errors, connection failures and timeouts go to stderr (exit 2).\n"
            "When the connection is lost, or the switch answers that it cannot take the\n"
            "transfer now (a MessageReject marked retry: nothing was recorded), the same\n"
            "transfer with the same msg_id is sent again (to any --connect address) after\n"
            "100 ms, doubling to 2 s, until --timeout-ms; each attempt is said on stderr.\n"
            "A retry gets the switch's first answer, so the line printed is the same.\n"
            "\n"
            "  --from ACCOUNT        the payer's account at our participant\n"
            "  --to ACCOUNT@CODE     the payee's account and participant (e.g. 0300123@KOKO)\n"
            "  --to ALIAS            or the payee's alias, a mobile number (03001234567):\n"
            "                        the switch finds the account; a line `PAYEE <CODE>\n"
            "                        <masked name>` comes before the result line\n"
            "  --amount RUPEES       e.g. 1500, 1500.5, 1500.00 (at most two decimals)\n"
            "  --purpose P           BNPL_REPAYMENT, SUPPLIER_PAYMENT or P2P\n"
            "  --ref TEXT            remittance: LOANID/N (instalment N) for BNPL_REPAYMENT,\n"
            "                        the invoice number for SUPPLIER_PAYMENT, else free text\n"
            "  --msg-id ID           message id, the idempotency key (default: a new ULID);\n"
            "                        send again with the same id to retry safely\n"
            "  --e2e ID              end-to-end id (default: the message id)\n"
            "  --currency CODE       default PKR\n"
            "\n%s",
            common_usage);
}

static void usage_listen(FILE *out)
{
    fprintf(out,
            "usage: sikka-wallet listen [--accept-all | --reject CODE] [--count N] [--quiet]\n"
            "\n"
            "Answers every credit transfer the switch forwards to our participant and prints\n"
            "one line per event on stdout:\n"
            "  CREDIT_TRANSFER <transfer-id> <amount> <currency> from <debtor-agent> to\n"
            "      <masked account> purpose <P>\n"
            "  ACSC <transfer-id>            (the switch settled it: credit the customer now)\n"
            "  RJCT <transfer-id> <reason>\n"
            "Runs until SIGINT/SIGTERM (exit 0) or until N status reports with --count N\n"
            "(exit 0). A closed connection is opened again (to any --connect address)\n"
            "after 100 ms, doubling to 2 s, for ever; each reconnection is said on stderr.\n"
            "Settlement reports are acknowledged to the switch, which sends unacknowledged\n"
            "ones again after a reconnect: each is printed once.\n"
            "\n"
            "  --accept-all          accept every transfer (the default)\n"
            "  --reject CODE         reject every transfer with an ISO 20022 code (e.g. AC01)\n"
            "  --count N             stop after N status reports\n"
            "  --accept-requests     accept every request to pay delivered to us and pay it\n"
            "                        with a credit transfer naming it (REQUEST_... lines)\n"
            "  --decline-requests CODE  decline every request to pay with CODE (e.g. MS02)\n"
            "  --quiet               print nothing on stdout\n"
            "\n%s",
            common_usage);
}

/* One line on stdout, flushed at once: scripts read these as they come. */
static void out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Handles an option every sub-command takes. Returns 1 when opt was one,
 * 0 when not, -1 on a bad value. */
static int common_option(struct wallet *w, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case OPT_CONNECT:
        w->connect = arg;
        return 1;
    case OPT_PARTICIPANT:
        w->participant = arg;
        return 1;
    case OPT_CERT:
        w->cert = arg;
        return 1;
    case OPT_KEY:
        w->key = arg;
        return 1;
    case OPT_CA:
        w->ca = arg;
        return 1;
    case OPT_TIMEOUT:
        if (cli_parse_long(arg, 1, INT_MAX, &v) != 0) {
            fprintf(stderr, "sikka-wallet: --timeout-ms \"%s\" must be a positive number\n", arg);
            return -1;
        }
        w->timeout_ms = (int)v;
        return 1;
    case OPT_VERBOSE:
        w->verbose = true;
        return 1;
    default:
        return 0;
    }
}

/* Fills in what the user left out and checks what they gave. */
static int wallet_resolve(struct wallet *w)
{
    if (w->connect == NULL)
        w->connect = getenv("SIKKA_CONNECT");
    if (w->connect == NULL || w->connect[0] == '\0')
        w->connect = WALLET_DEFAULT_CONNECT;
    if (w->participant == NULL)
        w->participant = getenv("SIKKA_PARTICIPANT");
    if (w->participant == NULL || w->participant[0] == '\0')
        w->participant = WALLET_DEFAULT_PARTICIPANT;
    if (!msg_valid_agent(w->participant)) {
        fprintf(stderr, "sikka-wallet: participant \"%s\" must be 4 uppercase letters\n",
                w->participant);
        return -1;
    }

    /* HOST:PORT, or [IPv6]:PORT, or several of them */
    char err[400];
    if (client_addrs_parse(w->connect, &w->addrs, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet: --connect %s: %s\n", w->connect, err);
        return -1;
    }

    char pki[PATH_MAX];
    cli_pki_dir(pki, sizeof(pki));
    snprintf(w->cert_path, sizeof(w->cert_path), "%.*s/%s.crt", PATH_MAX - 16, pki, w->participant);
    snprintf(w->key_path, sizeof(w->key_path), "%.*s/%s.key", PATH_MAX - 16, pki, w->participant);
    snprintf(w->ca_path, sizeof(w->ca_path), "%.*s/ca.crt", PATH_MAX - 16, pki);
    if (w->cert == NULL)
        w->cert = w->cert_path;
    if (w->key == NULL)
        w->key = w->key_path;
    if (w->ca == NULL)
        w->ca = w->ca_path;
    log_set_level(w->verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    return 0;
}

/* What a command's connections share: the loop, the TLS context, the
 * options, the memory of settlement notices, and the connection (NULL
 * between connections). */
struct wallet_conn {
    struct event_base *base;
    SSL_CTX *ctx;
    struct client_opts opts;
    struct client_notices *notices;
    struct client *c;
    char address[300]; /* where c is connected */
};

static void wallet_teardown(struct wallet_conn *wc)
{
    client_free(wc->c);
    wc->c = NULL;
    if (wc->ctx != NULL)
        SSL_CTX_free(wc->ctx);
    wc->ctx = NULL;
    if (wc->base != NULL)
        event_base_free(wc->base);
    wc->base = NULL;
    client_notices_free(wc->notices);
    wc->notices = NULL;
}

/* Checks the files and makes the loop and the TLS context. */
static int wallet_setup(const struct wallet *w, struct wallet_conn *wc)
{
    char err[512];
    memset(wc, 0, sizeof(*wc));
    wc->opts = (struct client_opts){
        .cert = w->cert,
        .key = w->key,
        .ca = w->ca,
        .max_frame = 0,
        .await_ready = true,
    };
    /* OpenSSL's "system lib" says less than this about a missing file */
    const char *files[] = {w->cert, w->key, w->ca};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (access(files[i], R_OK) != 0) {
            fprintf(stderr,
                    "sikka-wallet: cannot read %s: %s (see --cert, --key, --ca or SIKKA_PKI)\n",
                    files[i], strerror(errno));
            return -1;
        }
    }
    wc->base = event_base_new();
    wc->notices = client_notices_new(0);
    if (wc->base == NULL || wc->notices == NULL) {
        fprintf(stderr, "sikka-wallet: cannot create an event loop\n");
        goto fail;
    }
    wc->opts.notices = wc->notices;
    wc->ctx = client_ssl_ctx(&wc->opts, err, sizeof(err));
    if (wc->ctx == NULL) {
        fprintf(stderr, "sikka-wallet: TLS setup for %s failed: %s\n", w->participant, err);
        goto fail;
    }
    return 0;
fail:
    wallet_teardown(wc);
    return -1;
}

/* Connects to the first --connect address that answers within timeout_ms.
 * 0 connected; -1 not (why in err; *tls_failed when trying again cannot
 * help). */
static int wallet_connect(struct wallet *w, struct wallet_conn *wc, int64_t timeout_ms,
                          bool *tls_failed, char *err, size_t errlen)
{
    int per = timeout_ms < WALLET_ADDRESS_TIMEOUT_MS ? (int)timeout_ms : WALLET_ADDRESS_TIMEOUT_MS;
    int total = timeout_ms < INT_MAX ? (int)timeout_ms : INT_MAX;
    wc->c = client_connect_any_sync(wc->base, wc->ctx, &wc->opts, &w->addrs, per, total, tls_failed,
                                    err, errlen);
    if (wc->c == NULL)
        return -1;
    client_addr_name(&w->addrs.addr[w->addrs.current], wc->address, sizeof(wc->address));
    return 0;
}

static void wallet_disconnect(struct wallet_conn *wc)
{
    client_free(wc->c);
    wc->c = NULL;
}

/* Waits ms with the loop running (a connection answers heartbeats
 * meanwhile); a signal handler that breaks the loop ends it early. */
static void wallet_pause(struct wallet_conn *wc, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (event_base_loopexit(wc->base, &tv) != 0 || event_base_dispatch(wc->base) < 0)
        log_error("event=pause_failed why=\"the event loop failed\"");
}

/* ---- pay ---- */

struct pay_args {
    const char *from;
    const char *to;
    const char *amount;
    const char *purpose;
    const char *ref;
    const char *msg_id;
    const char *e2e;
    const char *currency;
};

#define PAY_NOT_OURS -1 /* pay_outcome: the frame is about something else */
#define PAY_RETRY    -2 /* the switch recorded nothing: send again later */

/* Prints the outcome if env answers our transfer. Returns the exit code,
 * PAY_NOT_OURS, or PAY_RETRY for a MessageReject marked retry (its reason
 * and text then in retry_why, nothing printed on stdout). */
static int pay_outcome(const Envelope *env, const char *msg_id, char *retry_why, size_t len)
{
    char text[MSG_TEXT_MAX * 2 + 1];
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT) {
        const Sikka__V1__StatusReport *sr = env->status_report;
        if (sr->kind != SIKKA__V1__REPORT_KIND__REPORT_KIND_RESULT || sr->to_payee ||
            strcmp(sr->original_msg_id, msg_id) != 0)
            return PAY_NOT_OURS;
        if (sr->creditor_masked_name[0] != '\0' && sr->status != SIKKA__V1__TX_STATUS__PDNG) {
            /* confirmation of payee: whom the alias paid, masked */
            cli_one_line(sr->creditor_masked_name, text, sizeof(text));
            out_line("PAYEE %s %s", sr->creditor_agent, text);
        }
        if (sr->status == SIKKA__V1__TX_STATUS__ACSC) {
            out_line("ACSC %" PRIu64, sr->transfer_id);
            return WALLET_EXIT_OK;
        }
        if (sr->status != SIKKA__V1__TX_STATUS__RJCT)
            return PAY_NOT_OURS; /* PDNG: not final yet */
        const char *reason = sr->reason[0] != '\0' ? sr->reason : "MS03";
        const char *why = sr->text[0] != '\0' ? sr->text : msg_reason_text(reason);
        cli_one_line(why, text, sizeof(text));
        out_line("RJCT %s%s%s", reason, text[0] != '\0' ? " " : "", text);
        return WALLET_EXIT_REJECTED;
    }
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        const Sikka__V1__MessageReject *mr = env->message_reject;
        /* an empty ref_msg_id: the switch could not even read our msg_id,
         * and we sent nothing else */
        if (mr->ref_msg_id[0] != '\0' && strcmp(mr->ref_msg_id, msg_id) != 0)
            return PAY_NOT_OURS;
        const char *reason = mr->reason[0] != '\0' ? mr->reason : "MS03";
        const char *why = mr->text[0] != '\0' ? mr->text : msg_reason_text(reason);
        cli_one_line(why, text, sizeof(text));
        if (mr->retry) {
            snprintf(retry_why, len, "%s%s%s", reason, text[0] != '\0' ? " " : "", text);
            return PAY_RETRY;
        }
        out_line("RJCT %s%s%s", reason, text[0] != '\0' ? " " : "", text);
        return WALLET_EXIT_REJECTED;
    }
    return PAY_NOT_OURS;
}

/* Sends the transfer in env (msg_id its key) and prints its outcome: on a
 * lost connection or a refusal marked retry, sends it again (the same
 * frame) after a backoff, reconnecting to any --connect address, until
 * timeout_ms have passed. Each attempt is said on stderr. Returns the exit
 * code. */
static int pay_until_answered(struct wallet *w, struct wallet_conn *wc, const Envelope *env,
                              const char *msg_id, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct client_backoff backoff;
    client_backoff_init(&backoff, WALLET_BACKOFF_MIN_MS, WALLET_BACKOFF_MAX_MS);
    char last[1200] = "", err[1024], retry_why[MSG_TEXT_MAX * 2 + 16];
    int sends = 0;
    for (int64_t left; (left = deadline - mono_ms()) > 0;) {
        if (wc->c == NULL) {
            bool tls_failed = false;
            if (wallet_connect(w, wc, left, &tls_failed, err, sizeof(err)) != 0) {
                if (tls_failed) {
                    /* a certificate refused now will not be accepted later */
                    fprintf(stderr, "sikka-wallet pay: cannot connect as %s: %s\n", w->participant,
                            err);
                    return WALLET_EXIT_FAILED;
                }
                snprintf(last, sizeof(last), "cannot connect: %s", err);
                left = deadline - mono_ms();
                if (left <= 0)
                    break;
                int wait = client_backoff_next(&backoff);
                /* err names every address tried */
                fprintf(stderr, "sikka-wallet pay: cannot connect: %s; trying again in %d ms\n",
                        err, wait);
                wallet_pause(wc, wait < left ? wait : left);
                continue;
            }
            if (sends > 0)
                fprintf(stderr, "sikka-wallet pay: reconnected to %s\n", wc->address);
        }
        if (client_send(wc->c, env) != 0) {
            snprintf(last, sizeof(last), "connection to %s lost: %s", wc->address,
                     client_is_closed(wc->c) ? client_close_reason(wc->c) : "cannot send");
            fprintf(stderr, "sikka-wallet pay: %s\n", last);
            wallet_disconnect(wc);
            continue;
        }
        if (sends++ > 0)
            fprintf(stderr, "sikka-wallet pay: msg_id %s sent again (attempt %d) to %s\n", msg_id,
                    sends, wc->address);
        log_info("event=transfer_sent msg_id=%s attempt=%d address=%s", msg_id, sends, wc->address);
        /* its answer, a refusal to try again, or the end of the connection */
        int outcome = PAY_NOT_OURS;
        while (outcome == PAY_NOT_OURS) {
            left = deadline - mono_ms();
            Envelope *e = left > 0 ? client_recv(wc->c, (int)left) : NULL;
            if (e == NULL)
                break;
            outcome = pay_outcome(e, msg_id, retry_why, sizeof(retry_why));
            if (outcome == PAY_NOT_OURS)
                log_debug("event=frame_ignored body=%s", codec_body_name(e));
            client_envelope_free(e);
        }
        if (outcome >= 0)
            return outcome;
        if (outcome == PAY_RETRY) {
            snprintf(last, sizeof(last), "the switch could not take it: %s", retry_why);
        } else if (client_is_closed(wc->c)) {
            snprintf(last, sizeof(last), "connection to %s lost: %s", wc->address,
                     client_close_reason(wc->c));
            wallet_disconnect(wc);
        } else {
            break; /* no answer before the deadline */
        }
        left = deadline - mono_ms();
        if (left <= 0)
            break;
        int wait = client_backoff_next(&backoff);
        fprintf(stderr, "sikka-wallet pay: %s; sending msg_id %s again in %d ms\n", last, msg_id,
                wait);
        wallet_pause(wc, wait < left ? wait : left);
    }
    fprintf(stderr, "sikka-wallet pay: no answer for msg_id %s within %d ms%s%s\n", msg_id,
            timeout_ms, last[0] != '\0' ? "; last: " : "", last);
    return WALLET_EXIT_FAILED;
}

static int wallet_pay(struct wallet *w, int argc, char **argv)
{
    static const struct option options[] = {
        WALLET_COMMON_OPTIONS,
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"amount", required_argument, NULL, OPT_AMOUNT},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"ref", required_argument, NULL, OPT_REF},
        {"msg-id", required_argument, NULL, OPT_MSG_ID},
        {"e2e", required_argument, NULL, OPT_E2E},
        {"currency", required_argument, NULL, OPT_CURRENCY},
        {NULL, 0, NULL, 0},
    };
    struct pay_args a = {0};
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int r = common_option(w, opt, optarg);
        if (r < 0)
            return WALLET_EXIT_FAILED;
        if (r > 0)
            continue;
        switch (opt) {
        case OPT_FROM:
            a.from = optarg;
            break;
        case OPT_TO:
            a.to = optarg;
            break;
        case OPT_AMOUNT:
            a.amount = optarg;
            break;
        case OPT_PURPOSE:
            a.purpose = optarg;
            break;
        case OPT_REF:
            a.ref = optarg;
            break;
        case OPT_MSG_ID:
            a.msg_id = optarg;
            break;
        case OPT_E2E:
            a.e2e = optarg;
            break;
        case OPT_CURRENCY:
            a.currency = optarg;
            break;
        case 'h':
        case OPT_HELP:
            usage_pay(stdout);
            return WALLET_EXIT_OK;
        default:
            usage_pay(stderr);
            return WALLET_EXIT_FAILED;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sikka-wallet pay: unexpected argument \"%s\"\n", argv[optind]);
        return WALLET_EXIT_FAILED;
    }
    if (a.from == NULL || a.to == NULL || a.amount == NULL || a.purpose == NULL) {
        fprintf(stderr, "sikka-wallet pay: --from, --to, --amount and --purpose are required "
                        "(see --help)\n");
        return WALLET_EXIT_FAILED;
    }
    if (wallet_resolve(w) != 0)
        return WALLET_EXIT_FAILED;

    char err[512];
    int64_t amount;
    if (money_parse(a.amount, &amount, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet pay: --amount: %s\n", err);
        return WALLET_EXIT_FAILED;
    }
    Sikka__V1__Purpose purpose;
    if (msg_parse_purpose(a.purpose, &purpose) != 0) {
        fprintf(stderr,
                "sikka-wallet pay: --purpose \"%s\" must be BNPL_REPAYMENT, SUPPLIER_PAYMENT or "
                "P2P\n",
                a.purpose);
        return WALLET_EXIT_FAILED;
    }
    char creditor_account[MSG_ACCOUNT_MAX + 1] = "", creditor_agent[MSG_AGENT_LEN + 1] = "";
    /* without '@' it is an alias: the switch checks and resolves it */
    bool by_alias = strchr(a.to, '@') == NULL;
    if (!by_alias &&
        msg_parse_party(a.to, creditor_account, sizeof(creditor_account), creditor_agent,
                        sizeof(creditor_agent), err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet pay: --to: %s\n", err);
        return WALLET_EXIT_FAILED;
    }
    char new_id[MSG_ID_LEN + 1];
    const char *msg_id = a.msg_id;
    if (msg_id == NULL) {
        if (msg_new_msg_id(new_id, sizeof(new_id)) != 0) {
            fprintf(stderr, "sikka-wallet pay: cannot make a message id\n");
            return WALLET_EXIT_FAILED;
        }
        msg_id = new_id;
    }
    struct msg_transfer t;
    struct msg_transfer_fields f = {
        .msg_id = msg_id,
        .end_to_end_id = a.e2e,
        .debtor_agent = w->participant,
        .debtor_account = a.from,
        .creditor_agent = creditor_agent,
        .creditor_account = creditor_account,
        .creditor_alias = by_alias ? a.to : NULL,
        .amount = amount,
        .currency = a.currency,
        .purpose = purpose,
        .ref = a.ref,
        .created_at_ms = 0,
    };
    if (msg_transfer_init(&t, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet pay: %s\n", err);
        return WALLET_EXIT_FAILED;
    }

    int timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : WALLET_DEFAULT_TIMEOUT_MS;
    struct wallet_conn wc;
    if (wallet_setup(w, &wc) != 0)
        return WALLET_EXIT_FAILED;
    int rc = pay_until_answered(w, &wc, &t.env, msg_id, timeout_ms);
    wallet_teardown(&wc);
    return rc;
}

/* ---- bulk ---- */

static void usage_bulk(FILE *out)
{
    fprintf(out,
            "usage: sikka-wallet bulk FILE.csv [--from ACCOUNT] [--batch-id ID]\n"
            "\n"
            "Sends up to 1000 payments of FILE.csv as one batch and prints one line per\n"
            "payment in file order, then a summary:\n"
            "  <line> ACSC <transfer-id>\n"
            "  <line> RJCT <reason-code> <text>\n"
            "  SUMMARY items=N acsc=A rjct=R not_processed=P settled=PKR fees=PKR batch=ID\n"
            "FILE.csv: the header to,amount,purpose,ref,msg_id, then one payment per line\n"
            "(RFC 4180 quoting): to ACCOUNT@CODE, amount in PKR (\"1500.00\"), purpose\n"
            "BNPL_REPAYMENT|SUPPLIER_PAYMENT|P2P, ref as pay --ref takes it (may be empty),\n"
            "msg_id the payment's idempotency key (empty: made from the batch id).\n"
            "The batch id comes from the file's content, so running the same file again\n"
            "gets the same answers and pays nothing twice. Payments the switch could not\n"
            "take (not processed) are sent again, with the batch, until --timeout-ms.\n"
            "\n"
            "  --from ACCOUNT   the payer's account (default $SIKKA_FROM, else the\n"
            "                   participant code)\n"
            "  --batch-id ID    the batch's id instead of the one made from the content\n"
            "Exit: 0 every payment settled; 1 any rejected or not processed; 2 the file\n"
            "is refused (its line is named) or no answer came.\n"
            "\n"
            "%s",
            common_usage);
}

/* Sends the batch and collects its answers into run, sending it again after
 * a lost connection or while items are answered "not processed", until
 * timeout_ms. Returns 0 with run complete, or -1 (said on stderr). */
static int bulk_until_answered(struct wallet *w, struct wallet_conn *wc,
                               const struct bulkfile_batch *b, struct bulkfile_run *run,
                               int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct client_backoff backoff;
    client_backoff_init(&backoff, WALLET_BACKOFF_MIN_MS, WALLET_BACKOFF_MAX_MS);
    char err[1024];
    bool answered = false;
    for (int64_t left; (left = deadline - mono_ms()) > 0;) {
        if (wc->c == NULL) {
            bool tls_failed = false;
            if (wallet_connect(w, wc, left, &tls_failed, err, sizeof(err)) != 0) {
                fprintf(stderr, "sikka-wallet bulk: cannot connect: %s\n", err);
                if (tls_failed)
                    return -1;
                wallet_pause(wc, client_backoff_next(&backoff));
                continue;
            }
        }
        if (client_send(wc->c, &b->env) != 0) {
            fprintf(stderr, "sikka-wallet bulk: connection to %s lost\n", wc->address);
            wallet_disconnect(wc);
            continue;
        }
        struct bulkfile_run attempt;
        if (bulkfile_run_init(&attempt, b->batch_id, b->n) != 0) {
            fprintf(stderr, "sikka-wallet bulk: out of memory\n");
            return -1;
        }
        enum bulkfile_take t = BULKFILE_MORE;
        while (t != BULKFILE_DONE && (left = deadline - mono_ms()) > 0) {
            Envelope *e = client_recv(wc->c, (int)left);
            if (e == NULL)
                break;
            t = bulkfile_take(&attempt, e);
            client_envelope_free(e);
        }
        if (t == BULKFILE_DONE) {
            /* the latest complete answers are the ones printed */
            bulkfile_run_free(run);
            *run = attempt;
            answered = true;
            size_t again = bulkfile_retryable(run);
            if (again == 0)
                return 0;
            fprintf(stderr,
                    "sikka-wallet bulk: %zu payments not processed; sending batch %s again\n",
                    again, b->batch_id);
        } else {
            bulkfile_run_free(&attempt);
            if (!client_is_closed(wc->c))
                break; /* no answer before the deadline */
            fprintf(stderr, "sikka-wallet bulk: connection to %s lost: %s\n", wc->address,
                    client_close_reason(wc->c));
            wallet_disconnect(wc);
        }
        left = deadline - mono_ms();
        if (left <= 0)
            break;
        int wait = client_backoff_next(&backoff);
        wallet_pause(wc, wait < left ? wait : left);
    }
    if (answered)
        return 0; /* the last answers, "not processed" ones included */
    fprintf(stderr, "sikka-wallet bulk: no answer for batch %s within %d ms\n", b->batch_id,
            timeout_ms);
    return -1;
}

static int wallet_bulk(struct wallet *w, int argc, char **argv)
{
    static const struct option options[] = {
        WALLET_COMMON_OPTIONS,
        {"from", required_argument, NULL, OPT_FROM},
        {"batch-id", required_argument, NULL, OPT_BATCH_ID},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *batch_id = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int r = common_option(w, opt, optarg);
        if (r < 0)
            return WALLET_EXIT_FAILED;
        if (r > 0)
            continue;
        if (opt == OPT_FROM) {
            from = optarg;
        } else if (opt == OPT_BATCH_ID) {
            batch_id = optarg;
        } else if (opt == 'h' || opt == OPT_HELP) {
            usage_bulk(stdout);
            return WALLET_EXIT_OK;
        } else {
            usage_bulk(stderr);
            return WALLET_EXIT_FAILED;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "sikka-wallet bulk: give exactly one FILE.csv (see --help)\n");
        return WALLET_EXIT_FAILED;
    }
    if (wallet_resolve(w) != 0)
        return WALLET_EXIT_FAILED;
    if (from == NULL)
        from = getenv("SIKKA_FROM");
    if (from == NULL || from[0] == '\0')
        from = w->participant;
    if (!msg_valid_account(from)) {
        fprintf(stderr, "sikka-wallet bulk: --from \"%s\" is not an account\n", from);
        return WALLET_EXIT_FAILED;
    }
    char err[1024];
    struct bulkfile f;
    if (bulkfile_read(argv[optind], &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet bulk: %s: %s\n", argv[optind], err);
        return WALLET_EXIT_FAILED;
    }
    int rc = WALLET_EXIT_FAILED;
    struct bulkfile_batch b;
    struct bulkfile_run run = {0};
    struct wallet_conn wc;
    if (bulkfile_batch(&b, &f, w->participant, from, batch_id, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet bulk: %s: %s\n", argv[optind], err);
        bulkfile_free(&f);
        return WALLET_EXIT_FAILED;
    }
    if (wallet_setup(w, &wc) == 0) {
        /* big batches wait for their slowest payee and the pacing */
        int timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : WALLET_DEFAULT_TIMEOUT_MS * 2;
        if (bulk_until_answered(w, &wc, &b, &run, timeout_ms) == 0)
            rc = bulkfile_print(stdout, &f, &run);
        wallet_teardown(&wc);
    }
    bulkfile_run_free(&run);
    bulkfile_batch_free(&b);
    bulkfile_free(&f);
    return rc;
}

/* ---- listen ---- */

struct listener {
    struct event_base *base;
    struct client *c;
    const char *reject; /* NULL: accept everything */
    long count;         /* 0: no limit */
    long reports;
    bool quiet;
    bool done;   /* stop: a signal, or --count reached */
    bool closed; /* the connection closed: reconnect */
    int exit_code;
    struct request_listen requests; /* requests to pay delivered to us */
};

static void listen_transfer(struct listener *l, const Sikka__V1__CreditTransfer *ct)
{
    char err[256];
    if (!l->quiet) {
        char amount[MSG_AMOUNT_MAX], masked[MSG_ACCOUNT_MAX + 1];
        out_line("CREDIT_TRANSFER %" PRIu64 " %s %s from %s to %s purpose %s", ct->transfer_id,
                 money_format(ct->amount, amount, sizeof(amount)),
                 ct->currency[0] != '\0' ? ct->currency : "PKR", ct->debtor_agent,
                 log_mask(ct->creditor_account, masked, sizeof(masked)),
                 msg_purpose_name(ct->purpose));
    }
    struct msg_decision d;
    if (msg_decision_init(&d, ct->transfer_id, l->reject == NULL, l->reject, NULL, err,
                          sizeof(err)) != 0) {
        log_error("event=decision_failed transfer=%" PRIu64 " why=\"%s\"", ct->transfer_id, err);
        return;
    }
    if (client_send(l->c, &d.env) != 0)
        log_error("event=decision_not_sent transfer=%" PRIu64, ct->transfer_id);
}

static void listen_on_frame(struct client *c, const Envelope *env, void *arg)
{
    struct listener *l = arg;
    char text[MSG_TEXT_MAX * 2 + 1];
    switch (env->body_case) {
    case SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER:
        listen_transfer(l, env->credit_transfer);
        break;
    case SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT: {
        const Sikka__V1__StatusReport *sr = env->status_report;
        if (sr->status == SIKKA__V1__TX_STATUS__ACSC) {
            if (!l->quiet)
                out_line("ACSC %" PRIu64, sr->transfer_id);
        } else if (sr->status == SIKKA__V1__TX_STATUS__RJCT) {
            if (!l->quiet)
                out_line("RJCT %" PRIu64 " %s", sr->transfer_id,
                         sr->reason[0] != '\0' ? sr->reason : "MS03");
        } else {
            break; /* PDNG answers a query; not an outcome */
        }
        l->reports++;
        if (l->count > 0 && l->reports >= l->count)
            l->done = true;
        break;
    }
    case SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT:
        fprintf(stderr, "sikka-wallet listen: the switch rejected a message: %s %s\n",
                env->message_reject->reason,
                cli_one_line(env->message_reject->text, text, sizeof(text)));
        break;
    default:
        if (!request_listen_frame(&l->requests, c, env))
            log_debug("event=frame_ignored body=%s", codec_body_name(env));
        break;
    }
}

static void listen_on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    struct listener *l = arg;
    if (ev == CLIENT_CLOSED)
        l->closed = true; /* the loop in wallet_listen reconnects */
}

static void listen_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct listener *l = arg;
    log_info("event=signal signal=%d", (int)sig);
    l->done = true;
    /* out of a pause or a wait at once */
    event_base_loopbreak(l->base);
}

static int wallet_listen(struct wallet *w, int argc, char **argv)
{
    static const struct option options[] = {
        WALLET_COMMON_OPTIONS,
        {"accept-all", no_argument, NULL, OPT_ACCEPT_ALL},
        {"reject", required_argument, NULL, OPT_REJECT},
        {"count", required_argument, NULL, OPT_COUNT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"accept-requests", no_argument, NULL, OPT_ACCEPT_REQUESTS},
        {"decline-requests", required_argument, NULL, OPT_DECLINE_REQUESTS},
        {NULL, 0, NULL, 0},
    };
    struct listener l = {0};
    bool accept_all = false;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int r = common_option(w, opt, optarg);
        if (r < 0)
            return WALLET_EXIT_FAILED;
        if (r > 0)
            continue;
        switch (opt) {
        case OPT_ACCEPT_ALL:
            accept_all = true;
            break;
        case OPT_REJECT:
            l.reject = optarg;
            break;
        case OPT_COUNT:
            if (cli_parse_long(optarg, 1, LONG_MAX, &l.count) != 0) {
                fprintf(stderr, "sikka-wallet listen: --count \"%s\" must be a positive number\n",
                        optarg);
                return WALLET_EXIT_FAILED;
            }
            break;
        case OPT_QUIET:
            l.quiet = true;
            l.requests.quiet = true;
            break;
        case OPT_ACCEPT_REQUESTS:
            l.requests.mode = REQUEST_LISTEN_ACCEPT;
            break;
        case OPT_DECLINE_REQUESTS:
            l.requests.mode = REQUEST_LISTEN_DECLINE;
            l.requests.reason = optarg;
            break;
        case 'h':
        case OPT_HELP:
            usage_listen(stdout);
            return WALLET_EXIT_OK;
        default:
            usage_listen(stderr);
            return WALLET_EXIT_FAILED;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sikka-wallet listen: unexpected argument \"%s\"\n", argv[optind]);
        return WALLET_EXIT_FAILED;
    }
    if (accept_all && l.reject != NULL) {
        fprintf(stderr, "sikka-wallet listen: --accept-all and --reject exclude each other\n");
        return WALLET_EXIT_FAILED;
    }
    if (l.reject != NULL && !msg_valid_reason(l.reject)) {
        fprintf(stderr,
                "sikka-wallet listen: --reject \"%s\" must be an ISO 20022 reason code like "
                "AC01\n",
                l.reject);
        return WALLET_EXIT_FAILED;
    }
    if (l.requests.mode == REQUEST_LISTEN_DECLINE && !msg_valid_reason(l.requests.reason)) {
        fprintf(stderr,
                "sikka-wallet listen: --decline-requests \"%s\" must be a reason code "
                "like MS02\n",
                l.requests.reason);
        return WALLET_EXIT_FAILED;
    }
    if (wallet_resolve(w) != 0)
        return WALLET_EXIT_FAILED;

    struct wallet_conn wc;
    int timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : WALLET_DEFAULT_TIMEOUT_MS;
    if (wallet_setup(w, &wc) != 0)
        return WALLET_EXIT_FAILED;
    l.base = wc.base;
    l.exit_code = WALLET_EXIT_OK;
    struct event *sigint = evsignal_new(wc.base, SIGINT, listen_on_signal, &l);
    struct event *sigterm = evsignal_new(wc.base, SIGTERM, listen_on_signal, &l);
    if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sigterm, NULL) != 0) {
        fprintf(stderr, "sikka-wallet listen: cannot install signal handlers\n");
        l.exit_code = WALLET_EXIT_FAILED;
        goto done;
    }
    /* the first connection within --timeout-ms; then reconnect for ever */
    int64_t first_deadline = mono_ms() + timeout_ms;
    bool connected_once = false;
    struct client_backoff backoff;
    client_backoff_init(&backoff, WALLET_BACKOFF_MIN_MS, WALLET_BACKOFF_MAX_MS);
    char err[1024] = "";
    while (!l.done) {
        int64_t budget = connected_once ? WALLET_ADDRESS_TIMEOUT_MS * (int64_t)w->addrs.n
                                        : first_deadline - mono_ms();
        bool tls_failed = false;
        if (budget <= 0 || wallet_connect(w, &wc, budget, &tls_failed, err, sizeof(err)) != 0) {
            if (l.done)
                break;
            if (!connected_once && (tls_failed || mono_ms() >= first_deadline)) {
                if (tls_failed)
                    fprintf(stderr, "sikka-wallet listen: cannot connect as %s: %s\n",
                            w->participant, err);
                else
                    fprintf(stderr, "sikka-wallet listen: cannot connect as %s within %d ms: %s\n",
                            w->participant, timeout_ms, err[0] != '\0' ? err : "timed out");
                l.exit_code = WALLET_EXIT_FAILED;
                break;
            }
            int64_t wait = client_backoff_next(&backoff);
            if (!connected_once && first_deadline - mono_ms() < wait)
                wait = first_deadline - mono_ms();
            fprintf(stderr, "sikka-wallet listen: cannot connect: %s; trying again in %lld ms\n",
                    err, (long long)wait);
            wallet_pause(&wc, wait > 0 ? wait : 0);
            continue;
        }
        if (connected_once)
            fprintf(stderr, "sikka-wallet listen: reconnected to %s as %s\n", wc.address,
                    w->participant);
        log_info("event=listening participant=%s address=%s mode=%s", w->participant, wc.address,
                 l.reject != NULL ? l.reject : "accept");
        connected_once = true;
        client_backoff_reset(&backoff);
        l.c = wc.c;
        l.closed = false;
        /* frames that came with the handshake were queued before the
         * callback existed: hand them over in order first */
        Envelope *early;
        while (!l.done && (early = client_recv(wc.c, 0)) != NULL) {
            listen_on_frame(wc.c, early, &l);
            client_envelope_free(early);
        }
        client_set_callbacks(wc.c, listen_on_frame, listen_on_event, &l);
        l.closed = l.closed || client_is_closed(wc.c);
        while (!l.done && !l.closed) {
            if (event_base_loop(wc.base, EVLOOP_ONCE) != 0) {
                fprintf(stderr, "sikka-wallet listen: the event loop stopped unexpectedly\n");
                l.exit_code = WALLET_EXIT_FAILED;
                l.done = true;
            }
        }
        if (l.done)
            break;
        int wait = client_backoff_next(&backoff);
        fprintf(stderr, "sikka-wallet listen: connection to %s closed: %s; reconnecting in %d ms\n",
                wc.address, client_close_reason(wc.c), wait);
        l.c = NULL;
        wallet_disconnect(&wc);
        wallet_pause(&wc, wait);
    }
    /* the decision for the last transfer may still be in the buffer */
    if (wc.c != NULL && !client_is_closed(wc.c) && client_flush(wc.c, 1000) != 0)
        log_warn("event=flush_failed what=\"last decisions\"");
done:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    wallet_teardown(&wc);
    return l.exit_code;
}

/* ---- alias ---- */

static void usage_alias(FILE *out)
{
    fprintf(out,
            "usage: sikka-wallet alias register ALIAS --account ACCOUNT --name \"FULL NAME\"\n"
            "       sikka-wallet alias update ALIAS --account ACCOUNT --name \"FULL NAME\"\n"
            "       sikka-wallet alias lookup ALIAS\n"
            "       sikka-wallet alias deregister ALIAS\n"
            "       sikka-wallet alias port ALIAS --account ACCOUNT --name \"FULL NAME\"\n"
            "       sikka-wallet alias release ALIAS\n"
            "\n"
            "The alias directory (Raast ID). ALIAS is a mobile number (03001234567,\n"
            "+923001234567 or 923001234567) or a 13-digit CNIC (12345-1234567-1).\n"
            "  register    our customer's alias for one of our accounts, in the holder's name\n"
            "  update      our alias: another of our accounts and/or name\n"
            "  lookup      who holds it: prints `<CODE> <masked name>`\n"
            "  deregister  our alias goes (with a port waiting, it moves to the asker)\n"
            "  port        ask for another participant's alias, for our account: it moves\n"
            "              when its holder releases it or the scheme's expiry passes\n"
            "  release     consent to the port waiting on our alias: it moves now\n"
            "Prints one line: `<CODE> <masked name>` (lookup), `OK <alias> <CODE> <masked\n"
            "name>`, `PENDING <alias> <holder> <expires-at-ms>` (port), `MOVED <alias>\n"
            "<CODE>`, or `RJCT <reason> <text>` (exit 1). A refusal marked retry (a rate\n"
            "limit) is sent again after a backoff until --timeout-ms.\n"
            "\n"
            "  --account ACCOUNT     our customer's account\n"
            "  --name NAME           the account holder's full name (at most 140 characters)\n"
            "  --request-id ID       the request's id (default: a new ULID)\n"
            "\n%s",
            common_usage);
}

/* Prints the answer to our request; the exit code, PAY_NOT_OURS or PAY_RETRY. */
static int alias_outcome(const Envelope *env, const char *request_id, char *retry_why, size_t len)
{
    char text[MSG_TEXT_MAX * 4 + 1];
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE) {
        const Sikka__V1__AliasResponse *r = env->alias_response;
        if (r->op == SIKKA__V1__ALIAS_OP__ALIAS_NOTICE) {
            cli_one_line(r->text, text, sizeof(text));
            fprintf(stderr, "sikka-wallet alias: notice: %s\n", text);
            return PAY_NOT_OURS;
        }
        if (strcmp(r->request_id, request_id) != 0)
            return PAY_NOT_OURS;
        if (!r->ok) {
            const char *reason = r->reason[0] != '\0' ? r->reason : "MS03";
            cli_one_line(r->text[0] != '\0' ? r->text : msg_reason_text(reason), text,
                         sizeof(text));
            out_line("RJCT %s%s%s", reason, text[0] != '\0' ? " " : "", text);
            return WALLET_EXIT_REJECTED;
        }
        cli_one_line(r->masked_name, text, sizeof(text));
        if (r->op == SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP)
            out_line("%s %s", r->participant, text);
        else if (r->participant[0] == '\0')
            out_line("OK %s", r->alias);
        else if (r->op == SIKKA__V1__ALIAS_OP__ALIAS_PORT && r->port_pending)
            out_line("PENDING %s %s %" PRId64, r->alias, r->participant, r->port_expires_at_ms);
        else if (r->op == SIKKA__V1__ALIAS_OP__ALIAS_RELEASE ||
                 r->op == SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER)
            out_line("MOVED %s %s", r->alias, r->participant);
        else
            out_line("OK %s %s %s", r->alias, r->participant, text);
        return WALLET_EXIT_OK;
    }
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        const Sikka__V1__MessageReject *mr = env->message_reject;
        if (mr->ref_msg_id[0] != '\0' && strcmp(mr->ref_msg_id, request_id) != 0)
            return PAY_NOT_OURS;
        const char *reason = mr->reason[0] != '\0' ? mr->reason : "MS03";
        cli_one_line(mr->text[0] != '\0' ? mr->text : msg_reason_text(reason), text, sizeof(text));
        if (mr->retry) {
            snprintf(retry_why, len, "%s %s", reason, text);
            return PAY_RETRY;
        }
        out_line("RJCT %s%s%s", reason, text[0] != '\0' ? " " : "", text);
        return WALLET_EXIT_REJECTED;
    }
    return PAY_NOT_OURS;
}

static int wallet_alias(struct wallet *w, int argc, char **argv)
{
    enum { OPT_ACCOUNT = 1000, OPT_NAME, OPT_REQUEST_ID };
    static const struct option options[] = {
        WALLET_COMMON_OPTIONS,
        {"account", required_argument, NULL, OPT_ACCOUNT},
        {"name", required_argument, NULL, OPT_NAME},
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        const char *name;
        Sikka__V1__AliasOp op;
        bool needs_account;
    } ops[] = {
        {"register", SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, true},
        {"update", SIKKA__V1__ALIAS_OP__ALIAS_UPDATE, true},
        {"lookup", SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, false},
        {"deregister", SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER, false},
        {"port", SIKKA__V1__ALIAS_OP__ALIAS_PORT, true},
        {"release", SIKKA__V1__ALIAS_OP__ALIAS_RELEASE, false},
    };
    const char *account = NULL, *name = NULL, *request_id = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int r = common_option(w, opt, optarg);
        if (r < 0)
            return WALLET_EXIT_FAILED;
        if (r > 0)
            continue;
        switch (opt) {
        case OPT_ACCOUNT:
            account = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_REQUEST_ID:
            request_id = optarg;
            break;
        case 'h':
        case OPT_HELP:
            usage_alias(stdout);
            return WALLET_EXIT_OK;
        default:
            usage_alias(stderr);
            return WALLET_EXIT_FAILED;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "sikka-wallet alias: give an action and an alias (see --help)\n");
        return WALLET_EXIT_FAILED;
    }
    const char *action = argv[optind], *alias = argv[optind + 1];
    size_t k = 0;
    while (k < sizeof(ops) / sizeof(ops[0]) && strcmp(ops[k].name, action) != 0)
        k++;
    if (k == sizeof(ops) / sizeof(ops[0])) {
        fprintf(stderr, "sikka-wallet alias: unknown action \"%s\" (see --help)\n", action);
        return WALLET_EXIT_FAILED;
    }
    if (ops[k].needs_account != (account != NULL && name != NULL) ||
        (!ops[k].needs_account && (account != NULL || name != NULL))) {
        fprintf(stderr, "sikka-wallet alias %s: %s\n", action,
                ops[k].needs_account ? "--account and --name are required"
                                     : "takes no --account or --name");
        return WALLET_EXIT_FAILED;
    }
    if (wallet_resolve(w) != 0)
        return WALLET_EXIT_FAILED;
    char new_id[MSG_ID_LEN + 1], err[512];
    if (request_id == NULL) {
        if (msg_new_msg_id(new_id, sizeof(new_id)) != 0) {
            fprintf(stderr, "sikka-wallet alias: cannot make a request id\n");
            return WALLET_EXIT_FAILED;
        }
        request_id = new_id;
    }
    struct msg_alias req;
    if (msg_alias_init(&req, request_id, ops[k].op, alias, account, name, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet alias %s: %s\n", action, err);
        return WALLET_EXIT_FAILED;
    }
    int timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : WALLET_DEFAULT_TIMEOUT_MS;
    struct wallet_conn wc;
    if (wallet_setup(w, &wc) != 0)
        return WALLET_EXIT_FAILED;
    int64_t deadline = mono_ms() + timeout_ms;
    struct client_backoff backoff;
    client_backoff_init(&backoff, WALLET_BACKOFF_MIN_MS, WALLET_BACKOFF_MAX_MS);
    char last[1200] = "no answer", retry_why[MSG_TEXT_MAX * 4 + 16];
    int rc = WALLET_EXIT_FAILED;
    for (int64_t left; (left = deadline - mono_ms()) > 0;) {
        bool tls_failed = false;
        if (wc.c == NULL && wallet_connect(w, &wc, left, &tls_failed, err, sizeof(err)) != 0) {
            snprintf(last, sizeof(last), "cannot connect: %s", err);
            if (tls_failed)
                break;
            wallet_pause(&wc, client_backoff_next(&backoff));
            continue;
        }
        if (client_send(wc.c, &req.env) != 0) {
            snprintf(last, sizeof(last), "connection to %s lost", wc.address);
            wallet_disconnect(&wc);
            continue;
        }
        int outcome = PAY_NOT_OURS;
        while (outcome == PAY_NOT_OURS) {
            left = deadline - mono_ms();
            Envelope *e = left > 0 ? client_recv(wc.c, (int)left) : NULL;
            if (e == NULL)
                break;
            outcome = alias_outcome(e, request_id, retry_why, sizeof(retry_why));
            client_envelope_free(e);
        }
        if (outcome >= 0) {
            rc = outcome;
            break;
        }
        if (outcome == PAY_RETRY) {
            snprintf(last, sizeof(last), "the switch could not take it: %s", retry_why);
        } else if (client_is_closed(wc.c)) {
            snprintf(last, sizeof(last), "connection to %s lost: %s", wc.address,
                     client_close_reason(wc.c));
            wallet_disconnect(&wc);
        } else {
            break;
        }
        int wait = client_backoff_next(&backoff);
        fprintf(stderr, "sikka-wallet alias: %s; sending it again in %d ms\n", last, wait);
        wallet_pause(&wc, wait);
    }
    if (rc == WALLET_EXIT_FAILED)
        fprintf(stderr, "sikka-wallet alias %s: no answer within %d ms; last: %s\n", action,
                timeout_ms, last);
    wallet_teardown(&wc);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        WALLET_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct wallet w = {0};
    int opt;

    /* a write to a connection the switch closed must fail with EPIPE, not
     * kill the process */
    signal(SIGPIPE, SIG_IGN);
    log_setup("sikka-wallet", LOG_LEVEL_ERROR);

    /* "+": stop at the sub-command; its own parser takes the rest */
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        int r = common_option(&w, opt, optarg);
        if (r < 0)
            return WALLET_EXIT_FAILED;
        if (r > 0)
            continue;
        if (opt == 'h' || opt == OPT_HELP) {
            usage_main(stdout);
            return WALLET_EXIT_OK;
        }
        usage_main(stderr);
        return WALLET_EXIT_FAILED;
    }
    if (optind >= argc) {
        usage_main(stderr);
        return WALLET_EXIT_FAILED;
    }
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (strcmp(cmd, "pay") == 0)
        return wallet_pay(&w, sub_argc, sub_argv);
    if (strcmp(cmd, "listen") == 0)
        return wallet_listen(&w, sub_argc, sub_argv);
    if (strcmp(cmd, "bulk") == 0)
        return wallet_bulk(&w, sub_argc, sub_argv);
    if (strcmp(cmd, "request") == 0)
        return request_main(&(struct request_defaults){w.connect, w.participant, w.cert, w.key,
                                                       w.ca, w.timeout_ms, w.verbose},
                            sub_argc, sub_argv);
    if (strcmp(cmd, "alias") == 0)
        return wallet_alias(&w, sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        usage_main(stdout);
        return WALLET_EXIT_OK;
    }
    fprintf(stderr, "sikka-wallet: unknown command \"%s\" (try --help)\n", cmd);
    return WALLET_EXIT_FAILED;
}
