#include "request.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "log.h"
#include "msg.h"

#define EXIT_OK       0
#define EXIT_REJECTED 1
#define EXIT_FAILED   2

#define DEFAULT_CONNECT    "127.0.0.1:7443"
#define DEFAULT_TIMEOUT_MS 30000
#define ADDRESS_TIMEOUT_MS 5000

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

static const char *state_word(Sikka__V1__RequestState s)
{
    static const char *const words[] = {"UNSPECIFIED", "PENDING",  "DELIVERED",
                                        "ACCEPTED",    "DECLINED", "EXPIRED",
                                        "CANCELLED",   "PAID",     "REJECTED"};
    return (unsigned)s < sizeof(words) / sizeof(words[0]) ? words[s] : "UNKNOWN";
}

/* ---- the command line ---- */

enum {
    OPT_CONNECT = 256,
    OPT_PARTICIPANT,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_TIMEOUT,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_TO,
    OPT_FROM,
    OPT_AMOUNT,
    OPT_PURPOSE,
    OPT_REF,
    OPT_DUE,
    OPT_EXPIRES,
    OPT_REASON,
    OPT_MSG_ID,
    OPT_ACCOUNT,
};

struct args {
    struct request_defaults c;
    const char *to, *from, *amount, *purpose, *ref, *due, *expires, *reason, *msg_id, *account;
    const char *sub;
    const char *target; /* ID or CODE */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sikka-wallet [common options] request SUB-COMMAND ...\n"
                 "  send --to ALIAS|ACCOUNT@CODE --amount A --purpose P [--from ACCOUNT]\n"
                 "       [--ref T] [--due YYYY-MM-DD] [--expires-in SECONDS] [--msg-id ID]\n"
                 "                        ask the debtor (ACCOUNT at participant CODE, or the\n"
                 "                        holder of an alias such as 03001234567) to pay A\n"
                 "                        (PKR, e.g. 1500.00) into --from (our account, default\n"
                 "                        our participant's code); --ref LOAN/N for\n"
                 "                        BNPL_REPAYMENT, the invoice for SUPPLIER_PAYMENT;\n"
                 "                        --due: RTP Later, delivered on that day (Pakistan time)\n"
                 "                        outside quiet hours. Prints the request id, or\n"
                 "                        RJCT <code> <text> (exit 1)\n"
                 "  list                  our open requests, as creditor or debtor\n"
                 "  accept ID             accept a request delivered to us (then pay it)\n"
                 "  decline ID --reason CODE\n"
                 "  cancel ID             withdraw a request we sent\n"
                 "  block CODE --account A    no more requests from CODE for our account A\n"
                 "  unblock CODE --account A\n"
                 "Common options as for every command (see sikka-wallet --help).\n");
}

static int parse(struct args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"participant", required_argument, NULL, OPT_PARTICIPANT},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"ca", required_argument, NULL, OPT_CA},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"to", required_argument, NULL, OPT_TO},
        {"from", required_argument, NULL, OPT_FROM},
        {"amount", required_argument, NULL, OPT_AMOUNT},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"ref", required_argument, NULL, OPT_REF},
        {"due", required_argument, NULL, OPT_DUE},
        {"expires-in", required_argument, NULL, OPT_EXPIRES},
        {"reason", required_argument, NULL, OPT_REASON},
        {"msg-id", required_argument, NULL, OPT_MSG_ID},
        {"account", required_argument, NULL, OPT_ACCOUNT},
        {NULL, 0, NULL, 0},
    };
    const char **slot[] = {
        [OPT_CONNECT - OPT_CONNECT] = &a->c.connect,
        [OPT_PARTICIPANT - OPT_CONNECT] = &a->c.participant,
        [OPT_CERT - OPT_CONNECT] = &a->c.cert,
        [OPT_KEY - OPT_CONNECT] = &a->c.key,
        [OPT_CA - OPT_CONNECT] = &a->c.ca,
        [OPT_TO - OPT_CONNECT] = &a->to,
        [OPT_FROM - OPT_CONNECT] = &a->from,
        [OPT_AMOUNT - OPT_CONNECT] = &a->amount,
        [OPT_PURPOSE - OPT_CONNECT] = &a->purpose,
        [OPT_REF - OPT_CONNECT] = &a->ref,
        [OPT_DUE - OPT_CONNECT] = &a->due,
        [OPT_EXPIRES - OPT_CONNECT] = &a->expires,
        [OPT_REASON - OPT_CONNECT] = &a->reason,
        [OPT_MSG_ID - OPT_CONNECT] = &a->msg_id,
        [OPT_ACCOUNT - OPT_CONNECT] = &a->account,
    };
    int opt;
    long v;
    optind = 0; /* GNU: a full restart (wallet.c parsed with "+" before); argv[0] is "request" */
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == OPT_TIMEOUT) {
            if (cli_parse_long(optarg, 1, INT_MAX, &v) != 0) {
                fprintf(stderr,
                        "sikka-wallet request: --timeout-ms \"%s\" must be a positive "
                        "number\n",
                        optarg);
                return -1;
            }
            a->c.timeout_ms = (int)v;
        } else if (opt == OPT_VERBOSE) {
            a->c.verbose = true;
        } else if (opt == 'h' || opt == OPT_HELP) {
            usage(stdout);
            return 1;
        } else if (opt >= OPT_CONNECT && opt <= OPT_ACCOUNT &&
                   (size_t)(opt - OPT_CONNECT) < sizeof(slot) / sizeof(slot[0]) &&
                   slot[opt - OPT_CONNECT] != NULL) {
            *slot[opt - OPT_CONNECT] = optarg;
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return -1;
    }
    a->sub = argv[optind++];
    if (optind < argc)
        a->target = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "sikka-wallet request: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* ---- one connection, one question, one answer ---- */

struct conn {
    struct event_base *base;
    SSL_CTX *ctx;
    struct client *c;
    struct client_opts opts;
    struct client_addrs addrs;
    char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
};

static void conn_close(struct conn *k)
{
    client_free(k->c);
    if (k->ctx != NULL)
        SSL_CTX_free(k->ctx);
    if (k->base != NULL)
        event_base_free(k->base);
}

static int conn_open(struct conn *k, struct request_defaults *c)
{
    char err[1024], pki[PATH_MAX];
    memset(k, 0, sizeof(*k));
    if (c->connect == NULL || c->connect[0] == '\0')
        c->connect = getenv("SIKKA_CONNECT");
    if (c->connect == NULL || c->connect[0] == '\0')
        c->connect = DEFAULT_CONNECT;
    if (c->participant == NULL || c->participant[0] == '\0')
        c->participant = getenv("SIKKA_PARTICIPANT");
    if (c->participant == NULL || c->participant[0] == '\0')
        c->participant = "JAZZ";
    if (!msg_valid_agent(c->participant)) {
        fprintf(stderr, "sikka-wallet request: participant \"%s\" must be 4 uppercase letters\n",
                c->participant);
        return -1;
    }
    if (client_addrs_parse(c->connect, &k->addrs, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet request: --connect %s: %s\n", c->connect, err);
        return -1;
    }
    cli_pki_dir(pki, sizeof(pki));
    snprintf(k->cert, sizeof(k->cert), "%.*s/%s.crt", PATH_MAX - 16, pki, c->participant);
    snprintf(k->key, sizeof(k->key), "%.*s/%s.key", PATH_MAX - 16, pki, c->participant);
    snprintf(k->ca, sizeof(k->ca), "%.*s/ca.crt", PATH_MAX - 16, pki);
    k->opts.cert = c->cert != NULL ? c->cert : k->cert;
    k->opts.key = c->key != NULL ? c->key : k->key;
    k->opts.ca = c->ca != NULL ? c->ca : k->ca;
    k->opts.await_ready = true;
    log_set_level(c->verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    k->base = event_base_new();
    if (k->base == NULL) {
        fprintf(stderr, "sikka-wallet request: cannot create an event loop\n");
        return -1;
    }
    k->ctx = client_ssl_ctx(&k->opts, err, sizeof(err));
    if (k->ctx == NULL) {
        fprintf(stderr, "sikka-wallet request: TLS setup for %s failed: %s\n", c->participant, err);
        return -1;
    }
    int timeout = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    bool tls_failed = false;
    k->c = client_connect_any_sync(k->base, k->ctx, &k->opts, &k->addrs,
                                   timeout < ADDRESS_TIMEOUT_MS ? timeout : ADDRESS_TIMEOUT_MS,
                                   timeout, &tls_failed, err, sizeof(err));
    if (k->c == NULL) {
        fprintf(stderr, "sikka-wallet request: cannot connect as %s: %s\n", c->participant, err);
        return -1;
    }
    return 0;
}

/* What answers our question: a status of this request (or of our msg_id),
 * a control answer with our query id, or a reject about it. */
struct question {
    const char *msg_id;  /* send */
    uint64_t request_id; /* accept, decline, cancel */
    const char *query_id;
};

static bool rejects_us(const Sikka__V1__MessageReject *mr, const struct question *q)
{
    if (q->msg_id != NULL)
        return mr->ref_msg_id[0] == '\0' || strcmp(mr->ref_msg_id, q->msg_id) == 0;
    if (q->request_id != 0)
        return mr->ref_transfer_id == 0 || mr->ref_transfer_id == q->request_id;
    return true;
}

/* Sends env and waits for its answer (again after a refusal marked retry,
 * until the timeout). Returns the answering frame, or NULL (said on stderr). */
static Envelope *ask(struct conn *k, const struct request_defaults *c, const Envelope *env,
                     const struct question *q)
{
    int timeout = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    int64_t deadline = mono_ms() + timeout;
    struct client_backoff b;
    client_backoff_init(&b, 100, 2000);
    while (mono_ms() < deadline) {
        if (client_send(k->c, env) != 0)
            break;
        for (;;) {
            int64_t left = deadline - mono_ms();
            Envelope *e = left > 0 ? client_recv(k->c, (int)left) : NULL;
            if (e == NULL)
                goto none;
            if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT &&
                rejects_us(e->message_reject, q)) {
                if (!e->message_reject->retry)
                    return e;
                client_envelope_free(e);
                int wait = client_backoff_next(&b);
                usleep((useconds_t)wait * 1000);
                break; /* send again */
            }
            if (e->body_case == SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS) {
                const Sikka__V1__RequestStatus *st = e->request_status;
                bool ours = q->msg_id != NULL ? strcmp(st->original_msg_id, q->msg_id) == 0
                                              : st->request_id == q->request_id;
                if (ours && q->query_id == NULL)
                    return e;
            }
            if (e->body_case == SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL && q->query_id != NULL &&
                strcmp(e->request_control->query_id, q->query_id) == 0)
                return e;
            log_debug("event=frame_ignored body=%s", codec_body_name(e));
            client_envelope_free(e);
        }
    }
none:
    fprintf(stderr, "sikka-wallet request: no answer within %d ms%s%s\n", timeout,
            client_is_closed(k->c) ? ": " : "",
            client_is_closed(k->c) ? client_close_reason(k->c) : "");
    return NULL;
}

static int print_reject(const char *reason, const char *text)
{
    char line[MSG_TEXT_MAX * 4 + 1];
    const char *code = reason[0] != '\0' ? reason : "MS03";
    cli_one_line(text[0] != '\0' ? text : msg_reason_text(code), line, sizeof(line));
    out_line("RJCT %s%s%s", code, line[0] ? " " : "", line);
    return EXIT_REJECTED;
}

static int print_answer(const Envelope *e)
{
    if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT)
        return print_reject(e->message_reject->reason, e->message_reject->text);
    const Sikka__V1__RequestStatus *st = e->request_status;
    if (st->state == SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED)
        return print_reject(st->reason, st->text);
    return EXIT_OK;
}

static int cmd_send(struct args *a, struct conn *k)
{
    char err[512];
    if (a->to == NULL || a->amount == NULL || a->purpose == NULL) {
        fprintf(stderr, "sikka-wallet request send: --to, --amount and --purpose are required\n");
        return EXIT_FAILED;
    }
    int64_t amount;
    if (money_parse(a->amount, &amount, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet request send: --amount: %s\n", err);
        return EXIT_FAILED;
    }
    Sikka__V1__Purpose purpose;
    if (msg_parse_purpose(a->purpose, &purpose) != 0) {
        fprintf(stderr,
                "sikka-wallet request send: --purpose \"%s\" must be BNPL_REPAYMENT, "
                "SUPPLIER_PAYMENT or P2P\n",
                a->purpose);
        return EXIT_FAILED;
    }
    long expires = 0;
    if (a->expires != NULL && cli_parse_long(a->expires, 1, INT32_MAX, &expires) != 0) {
        fprintf(stderr,
                "sikka-wallet request send: --expires-in \"%s\" must be a number of "
                "seconds\n",
                a->expires);
        return EXIT_FAILED;
    }
    struct msg_remittance rm;
    if (a->ref != NULL && msg_remittance_init(&rm, purpose, a->ref, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-wallet request send: --ref: %s\n", err);
        return EXIT_FAILED;
    }
    char new_id[MSG_ID_LEN + 1];
    const char *msg_id = a->msg_id;
    if (msg_id == NULL) {
        if (msg_new_msg_id(new_id, sizeof(new_id)) != 0) {
            fprintf(stderr, "sikka-wallet request send: cannot make a message id\n");
            return EXIT_FAILED;
        }
        msg_id = new_id;
    }
    Sikka__V1__RequestToPay m = SIKKA__V1__REQUEST_TO_PAY__INIT;
    m.msg_id = (char *)msg_id;
    m.creditor_agent = (char *)a->c.participant;
    m.creditor_account = (char *)(a->from != NULL ? a->from : a->c.participant);
    m.debtor = (char *)a->to;
    m.amount = amount;
    m.purpose = purpose;
    m.remittance = a->ref != NULL ? &rm.remittance : NULL;
    m.due_date = (char *)(a->due != NULL ? a->due : "");
    m.expires_in_s = expires;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY;
    env.request_to_pay = &m;
    struct question q = {.msg_id = msg_id};
    Envelope *e = ask(k, &a->c, &env, &q);
    if (e == NULL)
        return EXIT_FAILED;
    int rc = print_answer(e);
    if (rc == EXIT_OK)
        out_line("%" PRIu64, e->request_status->request_id);
    client_envelope_free(e);
    return rc;
}

static int parse_id(const char *sub, const char *text, uint64_t *id)
{
    int64_t v;
    if (text == NULL || money_parse_id(text, &v) != 0) {
        fprintf(stderr, "sikka-wallet request %s: a request id (a positive number) is required\n",
                sub);
        return -1;
    }
    *id = (uint64_t)v;
    return 0;
}

static int cmd_decide(struct args *a, struct conn *k, bool accept, bool cancel)
{
    uint64_t id;
    if (parse_id(a->sub, a->target, &id) != 0)
        return EXIT_FAILED;
    if (!accept && !cancel && (a->reason == NULL || !msg_valid_reason(a->reason))) {
        fprintf(stderr, "sikka-wallet request decline: --reason CODE (an ISO 20022 reason code "
                        "like AC04 or MS02) is required\n");
        return EXIT_FAILED;
    }
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    Sikka__V1__RequestDecision d = SIKKA__V1__REQUEST_DECISION__INIT;
    Sikka__V1__RequestCancel rc = SIKKA__V1__REQUEST_CANCEL__INIT;
    if (cancel) {
        rc.request_id = id;
        rc.reason = (char *)(a->reason != NULL ? a->reason : "");
        env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CANCEL;
        env.request_cancel = &rc;
    } else {
        d.request_id = id;
        d.accept = accept;
        d.reason = (char *)(accept ? "" : a->reason);
        d.text = (char *)"";
        env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION;
        env.request_decision = &d;
    }
    struct question q = {.request_id = id};
    Envelope *e = ask(k, &a->c, &env, &q);
    if (e == NULL)
        return EXIT_FAILED;
    int code = print_answer(e);
    if (code == EXIT_OK)
        out_line("%s %" PRIu64, state_word(e->request_status->state), id);
    client_envelope_free(e);
    return code;
}

static int cmd_control(struct args *a, struct conn *k, Sikka__V1__RequestControl__Op op)
{
    Sikka__V1__RequestControl c = SIKKA__V1__REQUEST_CONTROL__INIT;
    char query_id[MSG_ID_LEN + 1];
    if (msg_new_msg_id(query_id, sizeof(query_id)) != 0)
        return EXIT_FAILED;
    c.query_id = query_id;
    c.op = op;
    if (op != SIKKA__V1__REQUEST_CONTROL__OP__LIST) {
        if (a->target == NULL || !msg_valid_agent(a->target) || a->account == NULL) {
            fprintf(stderr,
                    "sikka-wallet request %s: CODE (the creditor's participant) and "
                    "--account A (our customer's account) are required\n",
                    a->sub);
            return EXIT_FAILED;
        }
        c.creditor_agent = (char *)a->target;
        c.debtor_account = (char *)a->account;
    }
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL;
    env.request_control = &c;
    struct question q = {.query_id = query_id};
    Envelope *e = ask(k, &a->c, &env, &q);
    if (e == NULL)
        return EXIT_FAILED;
    int code = EXIT_OK;
    if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        code = print_reject(e->message_reject->reason, e->message_reject->text);
    } else if (op == SIKKA__V1__REQUEST_CONTROL__OP__LIST) {
        const Sikka__V1__RequestControl *r = e->request_control;
        for (size_t i = 0; i < r->n_requests; i++) {
            const Sikka__V1__RequestStatus *st = r->requests[i];
            char amount[MSG_AMOUNT_MAX], ref[80];
            cli_one_line(st->ref, ref, sizeof(ref));
            out_line("%" PRIu64 " %s %s->%s %s %s ref %s due %s expires_at_ms %" PRId64,
                     st->request_id, state_word(st->state), st->creditor_agent, st->debtor_agent,
                     money_format(st->amount, amount, sizeof(amount)),
                     msg_purpose_name(st->purpose), ref[0] ? ref : "-",
                     st->due_date[0] ? st->due_date : "-", st->expires_at_ms);
        }
    } else {
        out_line("%s %s", op == SIKKA__V1__REQUEST_CONTROL__OP__BLOCK ? "BLOCKED" : "UNBLOCKED",
                 a->target);
    }
    client_envelope_free(e);
    return code;
}

int request_main(const struct request_defaults *d, int argc, char **argv)
{
    struct args a = {0};
    a.c = *d;
    int p = parse(&a, argc, argv);
    if (p != 0)
        return p > 0 ? EXIT_OK : EXIT_FAILED;
    static const char *const subs[] = {"send",   "list",  "accept",  "decline",
                                       "cancel", "block", "unblock", NULL};
    bool known = false;
    for (size_t i = 0; subs[i] != NULL; i++)
        known |= strcmp(a.sub, subs[i]) == 0;
    if (!known) {
        fprintf(stderr, "sikka-wallet request: unknown sub-command \"%s\" (try --help)\n", a.sub);
        return EXIT_FAILED;
    }
    struct conn k;
    if (conn_open(&k, &a.c) != 0) {
        conn_close(&k);
        return EXIT_FAILED;
    }
    int rc;
    if (strcmp(a.sub, "send") == 0)
        rc = cmd_send(&a, &k);
    else if (strcmp(a.sub, "accept") == 0)
        rc = cmd_decide(&a, &k, true, false);
    else if (strcmp(a.sub, "decline") == 0)
        rc = cmd_decide(&a, &k, false, false);
    else if (strcmp(a.sub, "cancel") == 0)
        rc = cmd_decide(&a, &k, false, true);
    else if (strcmp(a.sub, "list") == 0)
        rc = cmd_control(&a, &k, SIKKA__V1__REQUEST_CONTROL__OP__LIST);
    else if (strcmp(a.sub, "block") == 0)
        rc = cmd_control(&a, &k, SIKKA__V1__REQUEST_CONTROL__OP__BLOCK);
    else
        rc = cmd_control(&a, &k, SIKKA__V1__REQUEST_CONTROL__OP__UNBLOCK);
    conn_close(&k);
    return rc;
}

/* ---- listen ---- */

/* Pays an accepted request delivered to us: a credit transfer naming it,
 * with a msg_id derived from the request, so a second attempt is a retry
 * of the first, never a second payment. */
static void listen_pay(struct request_listen *l, struct client *c, uint64_t id)
{
    unsigned i = (unsigned)(id % REQUEST_LISTEN_SLOTS);
    if (l->slot[i].id != id)
        return; /* not delivered to us through this listener (we may be its creditor) */
    char msg_id[MSG_ID_MAX + 1], err[256];
    snprintf(msg_id, sizeof(msg_id), "RTP-%" PRIu64, id);
    struct msg_transfer t;
    struct msg_transfer_fields f = {
        .msg_id = msg_id,
        .debtor_agent = l->slot[i].debtor_agent,
        .debtor_account = l->slot[i].debtor_account,
        .creditor_agent = l->slot[i].creditor_agent,
        .creditor_account = l->slot[i].creditor_account,
        .amount = l->slot[i].amount,
        .purpose = l->slot[i].purpose,
        .ref = l->slot[i].ref[0] ? l->slot[i].ref : NULL,
    };
    if (msg_transfer_init(&t, &f, err, sizeof(err)) != 0) {
        log_error("event=request_pay_failed request=%" PRIu64 " why=\"%s\"", id, err);
        return;
    }
    t.ct.request_id = id;
    if (client_send(c, &t.env) != 0)
        log_error("event=request_pay_failed request=%" PRIu64 " why=\"cannot send\"", id);
    else if (!l->quiet)
        out_line("REQUEST_PAYING %" PRIu64 " msg_id %s", id, msg_id);
}

bool request_listen_frame(struct request_listen *l, struct client *c, const Envelope *env)
{
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY) {
        const Sikka__V1__RequestToPay *m = env->request_to_pay;
        char amount[MSG_AMOUNT_MAX], masked[MSG_ACCOUNT_MAX + 1], ref[48] = "";
        const Sikka__V1__Remittance *rm = m->remittance;
        if (rm != NULL && rm->kind_case == SIKKA__V1__REMITTANCE__KIND_LOAN && rm->loan != NULL)
            snprintf(ref, sizeof(ref), "%.35s/%" PRIu32, rm->loan->loan_id, rm->loan->instalment);
        else if (rm != NULL && rm->kind_case == SIKKA__V1__REMITTANCE__KIND_INVOICE &&
                 rm->invoice != NULL)
            snprintf(ref, sizeof(ref), "%.35s", rm->invoice->invoice_number);
        if (!l->quiet)
            out_line("REQUEST %" PRIu64 " %s PKR from %s for %s purpose %s ref %s due %s",
                     m->request_id, money_format(m->amount, amount, sizeof(amount)),
                     m->creditor_agent, log_mask(m->debtor_account, masked, sizeof(masked)),
                     msg_purpose_name(m->purpose), ref[0] ? ref : "-",
                     m->due_date[0] ? m->due_date : "-");
        unsigned i = (unsigned)(m->request_id % REQUEST_LISTEN_SLOTS);
        memset(&l->slot[i], 0, sizeof(l->slot[i]));
        l->slot[i].id = m->request_id;
        snprintf(l->slot[i].debtor_account, sizeof(l->slot[i].debtor_account), "%s",
                 m->debtor_account);
        snprintf(l->slot[i].creditor_agent, sizeof(l->slot[i].creditor_agent), "%s",
                 m->creditor_agent);
        snprintf(l->slot[i].creditor_account, sizeof(l->slot[i].creditor_account), "%s",
                 m->creditor_account);
        l->slot[i].amount = m->amount;
        l->slot[i].purpose = m->purpose;
        snprintf(l->slot[i].ref, sizeof(l->slot[i].ref), "%s", ref);
        snprintf(l->slot[i].debtor_agent, sizeof(l->slot[i].debtor_agent), "%s", m->debtor_agent);
        if (l->mode == REQUEST_LISTEN_IGNORE)
            return true;
        Sikka__V1__RequestDecision d = SIKKA__V1__REQUEST_DECISION__INIT;
        d.request_id = m->request_id;
        d.accept = l->mode == REQUEST_LISTEN_ACCEPT;
        d.reason = (char *)(d.accept ? "" : l->reason);
        d.text = (char *)"";
        Envelope out = SIKKA__V1__ENVELOPE__INIT;
        out.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION;
        out.request_decision = &d;
        if (client_send(c, &out) != 0)
            log_error("event=request_decision_not_sent request=%" PRIu64, m->request_id);
        return true;
    }
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS) {
        const Sikka__V1__RequestStatus *st = env->request_status;
        if (!l->quiet) {
            char tid[40] = "";
            if (st->transfer_id != 0)
                snprintf(tid, sizeof(tid), " transfer %" PRIu64, st->transfer_id);
            out_line("REQUEST_%s %" PRIu64 "%s%s%s", state_word(st->state), st->request_id,
                     st->reason[0] ? " " : "", st->reason, tid);
        }
        if (st->state == SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED &&
            l->mode == REQUEST_LISTEN_ACCEPT)
            listen_pay(l, c, st->request_id);
        return true;
    }
    return false;
}
