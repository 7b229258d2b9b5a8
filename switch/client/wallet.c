/*
 * sikka-wallet: a participant's command-line client and payee simulator.
 *
 *   sikka-wallet [common options] pay --from ACCOUNT --to ACCOUNT@CODE ...
 *   sikka-wallet [common options] listen [--accept-all | --reject CODE] ...
 *
 * `pay` sends one CreditTransfer and prints the outcome as one line on
 * stdout (`ACSC <transfer-id>`, exit 0, or `RJCT <reason> <text>`, exit 1);
 * anything that keeps it from getting an answer (usage, connection,
 * timeout) is reported on stderr with exit 2, never as a made-up RJCT.
 * `listen` answers forwarded transfers as the payee and prints one line per
 * event, flushed, for scripts to read.
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

#include "clock.h"
#include "cli.h"
#include "client.h"
#include "log.h"
#include "msg.h"

#define WALLET_EXIT_OK       0
#define WALLET_EXIT_REJECTED 1 /* pay: RJCT; listen: the connection closed */
#define WALLET_EXIT_FAILED   2 /* usage, connection or timeout: no answer */

#define WALLET_DEFAULT_CONNECT     "127.0.0.1:7443"
#define WALLET_DEFAULT_PARTICIPANT "JAZZ"
#define WALLET_DEFAULT_TIMEOUT_MS  30000

/* What every sub-command shares: where the switch is and who we are. */
struct wallet {
    const char *connect;     /* HOST:PORT */
    const char *participant; /* our 4-letter code */
    const char *cert;        /* NULL: <pki>/<CODE>.crt */
    const char *key;         /* NULL: <pki>/<CODE>.key */
    const char *ca;          /* NULL: <pki>/ca.crt */
    int timeout_ms;
    bool verbose;
    char host[256];
    int port;
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
    "  --connect HOST:PORT   the switch (default $SIKKA_CONNECT, else " WALLET_DEFAULT_CONNECT ")\n"
    "  --participant CODE    our participant code (default $SIKKA_PARTICIPANT, else "
    "JAZZ)\n"
    "  --cert F --key F      our certificate and key (default <pki>/<CODE>.crt/.key)\n"
    "  --ca F                the scheme CA (default <pki>/ca.crt)\n"
    "  --timeout-ms N        give up after N ms (default 30000)\n"
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
            "  listen   answer incoming credit transfers as the payee\n"
            "Run `sikka-wallet COMMAND --help` for a command's options.\n"
            "\n%s",
            common_usage);
}

static void usage_pay(FILE *out)
{
    fprintf(out,
            "usage: sikka-wallet pay --from ACCOUNT --to ACCOUNT@CODE --amount 1500.00\n"
            "                        --purpose BNPL_REPAYMENT|SUPPLIER_PAYMENT|P2P\n"
            "                        [--ref TEXT] [--msg-id ID] [--e2e ID] [--currency PKR]\n"
            "\n"
            "Sends one credit transfer from our participant and waits for its status report.\n"
            "Prints one line: `ACSC <transfer-id>` (exit 0) or `RJCT <reason-code> <text>`\n"
            "(exit 1). Usage errors, connection failures and timeouts go to stderr (exit 2).\n"
            "\n"
            "  --from ACCOUNT        the payer's account at our participant\n"
            "  --to ACCOUNT@CODE     the payee's account and participant (e.g. 0300123@KOKO)\n"
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
            "Runs until SIGINT/SIGTERM (exit 0), until N status reports with --count N\n"
            "(exit 0), or until the connection closes (exit 1).\n"
            "\n"
            "  --accept-all          accept every transfer (the default)\n"
            "  --reject CODE         reject every transfer with an ISO 20022 code (e.g. AC01)\n"
            "  --count N             stop after N status reports\n"
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

    /* HOST:PORT, or [IPv6]:PORT */
    char err[300];
    if (cli_parse_addr(w->connect, w->host, sizeof(w->host), &w->port, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet: --connect %s\n", err);
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

/* A connected session: the loop, the TLS context and the client. */
struct wallet_conn {
    struct event_base *base;
    SSL_CTX *ctx;
    struct client *c;
};

static void wallet_disconnect(struct wallet_conn *wc)
{
    client_free(wc->c);
    wc->c = NULL;
    if (wc->ctx != NULL)
        SSL_CTX_free(wc->ctx);
    wc->ctx = NULL;
    if (wc->base != NULL)
        event_base_free(wc->base);
    wc->base = NULL;
}

static int wallet_connect(const struct wallet *w, struct wallet_conn *wc, int timeout_ms)
{
    char err[512];
    struct client_opts opts = {
        .host = w->host,
        .port = w->port,
        .cert = w->cert,
        .key = w->key,
        .ca = w->ca,
        .max_frame = 0,
        .await_ready = true,
    };
    memset(wc, 0, sizeof(*wc));
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
    if (wc->base == NULL) {
        fprintf(stderr, "sikka-wallet: cannot create an event loop\n");
        goto fail;
    }
    wc->ctx = client_ssl_ctx(&opts, err, sizeof(err));
    if (wc->ctx == NULL) {
        fprintf(stderr, "sikka-wallet: TLS setup for %s failed: %s\n", w->participant, err);
        goto fail;
    }
    wc->c = client_connect_sync(wc->base, wc->ctx, &opts, timeout_ms, err, sizeof(err));
    if (wc->c == NULL) {
        fprintf(stderr, "sikka-wallet: cannot connect to %s as %s: %s\n", w->connect,
                w->participant, err);
        goto fail;
    }
    return 0;
fail:
    wallet_disconnect(wc);
    return -1;
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

/* Prints the outcome if env answers our transfer. Returns the exit code, or
 * -1 when env is about something else. */
static int pay_outcome(const Envelope *env, const char *msg_id)
{
    char text[MSG_TEXT_MAX * 2 + 1];
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT) {
        const Sikka__V1__StatusReport *sr = env->status_report;
        if (sr->kind != SIKKA__V1__REPORT_KIND__REPORT_KIND_RESULT ||
            strcmp(sr->original_msg_id, msg_id) != 0)
            return -1;
        if (sr->status == SIKKA__V1__TX_STATUS__ACSC) {
            out_line("ACSC %" PRIu64, sr->transfer_id);
            return WALLET_EXIT_OK;
        }
        if (sr->status != SIKKA__V1__TX_STATUS__RJCT)
            return -1; /* PDNG: not final yet */
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
            return -1;
        const char *reason = mr->reason[0] != '\0' ? mr->reason : "MS03";
        const char *why = mr->text[0] != '\0' ? mr->text : msg_reason_text(reason);
        cli_one_line(why, text, sizeof(text));
        out_line("RJCT %s%s%s", reason, text[0] != '\0' ? " " : "", text);
        return WALLET_EXIT_REJECTED;
    }
    return -1;
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
    char creditor_account[MSG_ACCOUNT_MAX + 1], creditor_agent[MSG_AGENT_LEN + 1];
    if (msg_parse_party(a.to, creditor_account, sizeof(creditor_account), creditor_agent,
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
    int64_t deadline = mono_ms() + timeout_ms;
    struct wallet_conn wc;
    if (wallet_connect(w, &wc, timeout_ms) != 0)
        return WALLET_EXIT_FAILED;
    int rc = WALLET_EXIT_FAILED;
    if (client_send(wc.c, &t.env) != 0) {
        fprintf(stderr, "sikka-wallet pay: cannot send the transfer: %s\n",
                client_is_closed(wc.c) ? client_close_reason(wc.c) : "send failed");
        goto done;
    }
    log_info("event=transfer_sent msg_id=%s", msg_id);
    for (;;) {
        int64_t left = deadline - mono_ms();
        Envelope *env = left > 0 ? client_recv(wc.c, (int)left) : NULL;
        if (env == NULL) {
            if (client_is_closed(wc.c))
                fprintf(stderr,
                        "sikka-wallet pay: connection closed before an answer for msg_id %s: "
                        "%s\n",
                        msg_id, client_close_reason(wc.c));
            else
                fprintf(stderr, "sikka-wallet pay: no answer for msg_id %s within %d ms\n", msg_id,
                        timeout_ms);
            goto done;
        }
        int outcome = pay_outcome(env, msg_id);
        if (outcome < 0)
            log_debug("event=frame_ignored body=%s", codec_body_name(env));
        client_envelope_free(env);
        if (outcome >= 0) {
            rc = outcome;
            break;
        }
    }
done:
    wallet_disconnect(&wc);
    return rc;
}

/* ---- listen ---- */

struct listener {
    struct client *c;
    const char *reject; /* NULL: accept everything */
    long count;         /* 0: no limit */
    long reports;
    bool quiet;
    bool done;
    int exit_code;
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
        log_debug("event=frame_ignored body=%s", codec_body_name(env));
        break;
    }
}

static void listen_on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    struct listener *l = arg;
    if (ev != CLIENT_CLOSED)
        return;
    fprintf(stderr, "sikka-wallet listen: connection closed: %s\n", why);
    l->exit_code = WALLET_EXIT_REJECTED;
    l->done = true;
}

static void listen_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct listener *l = arg;
    log_info("event=signal signal=%d", (int)sig);
    l->done = true;
}

static int wallet_listen(struct wallet *w, int argc, char **argv)
{
    static const struct option options[] = {
        WALLET_COMMON_OPTIONS,
        {"accept-all", no_argument, NULL, OPT_ACCEPT_ALL},
        {"reject", required_argument, NULL, OPT_REJECT},
        {"count", required_argument, NULL, OPT_COUNT},
        {"quiet", no_argument, NULL, OPT_QUIET},
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
    if (wallet_resolve(w) != 0)
        return WALLET_EXIT_FAILED;

    struct wallet_conn wc;
    int timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : WALLET_DEFAULT_TIMEOUT_MS;
    if (wallet_connect(w, &wc, timeout_ms) != 0)
        return WALLET_EXIT_FAILED;
    l.c = wc.c;
    l.exit_code = WALLET_EXIT_OK;
    struct event *sigint = evsignal_new(wc.base, SIGINT, listen_on_signal, &l);
    struct event *sigterm = evsignal_new(wc.base, SIGTERM, listen_on_signal, &l);
    if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sigterm, NULL) != 0) {
        fprintf(stderr, "sikka-wallet listen: cannot install signal handlers\n");
        l.exit_code = WALLET_EXIT_FAILED;
        goto done;
    }
    log_info("event=listening participant=%s mode=%s", w->participant,
             l.reject != NULL ? l.reject : "accept");
    /* frames that came with the handshake were queued before the callback
     * existed: hand them over in order first */
    Envelope *early;
    while (!l.done && (early = client_recv(wc.c, 0)) != NULL) {
        listen_on_frame(wc.c, early, &l);
        client_envelope_free(early);
    }
    client_set_callbacks(wc.c, listen_on_frame, listen_on_event, &l);
    while (!l.done) {
        if (event_base_loop(wc.base, EVLOOP_ONCE) != 0) {
            fprintf(stderr, "sikka-wallet listen: the event loop stopped unexpectedly\n");
            l.exit_code = WALLET_EXIT_FAILED;
            break;
        }
    }
    /* the decision for the last transfer may still be in the buffer */
    if (!client_is_closed(wc.c) && client_flush(wc.c, 1000) != 0)
        log_warn("event=flush_failed what=\"last decisions\"");
done:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    wallet_disconnect(&wc);
    return l.exit_code;
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
    if (strcmp(cmd, "help") == 0) {
        usage_main(stdout);
        return WALLET_EXIT_OK;
    }
    fprintf(stderr, "sikka-wallet: unknown command \"%s\" (try --help)\n", cmd);
    return WALLET_EXIT_FAILED;
}
