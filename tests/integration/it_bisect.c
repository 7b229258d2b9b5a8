/* A refused group commit is bisected: 2,000 transfers decided at once go
 * to the ledger as one batch, one of them carrying a value the database
 * refuses (a CHECK planted on transfers: SQLSTATE 23514, a refusal for the
 * data whose message names no transfer). The switch splits the batch in
 * halves until it has the offending transfer, answers it RJCT MS03 with the
 * fixed text (the database's message goes to the log only), records the
 * rejection, and commits the other 1,999 in a few transactions: about
 * log2(2000) refused pieces and twice as many attempts, not one per
 * transfer. A first round with nothing planted is the yardstick: the time
 * of one commit of 2,000. Times are printed, never asserted (the machine is
 * shared); the counts are asserted. */
#include <jansson.h>

#include "harness.h"
#include "ledger.h"

#define N          2000
#define POISON_AT  1234 /* its place in the stream: in the middle, not at a half */
#define POISON     "POISON-1234"
#define DEADLINE_S 120

/* ceil(log2(N)): the splits a batch of N needs to isolate one transfer */
#define SPLITS 11

/* One round: JAZZ pays KOKO N times; KOKO accepts all once it has them. */
struct round {
    int number;
    uint64_t ids[N]; /* forwarded transfer ids, in the order KOKO got them */
    int forwarded;
    int payer_acsc, payer_rjct;
    int payee_acsc, payee_rjct;
    int64_t accepted_ms;    /* KOKO's last accept queued */
    int64_t last_acsc_ms;   /* the payer's last ACSC */
    int64_t last_report_ms; /* the payer's last report of any kind */
    /* the poisoned transfer, as each side was told */
    uint64_t poison_id;
    int payer_poison_status, payee_poison_status;
    char poison_reason[8], poison_text[256], payee_poison_reason[8];
};

static struct round rounds[2];
static struct round *cur;

static void on_payer(struct client *c, const Envelope *env, void *arg)
{
    (void)c;
    (void)arg;
    CHECK(env->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "payer got %s%s%s",
          codec_body_name(env),
          env->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT ? ": " : "",
          env->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT ? env->message_reject->text
                                                                     : "");
    const Sikka__V1__StatusReport *r = env->status_report;
    if (strcmp(r->original_msg_id, POISON) == 0) {
        cur->payer_poison_status = r->status;
        cur->poison_id = r->transfer_id;
        snprintf(cur->poison_reason, sizeof(cur->poison_reason), "%s", r->reason);
        snprintf(cur->poison_text, sizeof(cur->poison_text), "%s", r->text);
    }
    cur->last_report_ms = h_now_ms();
    if (r->status == SIKKA__V1__TX_STATUS__ACSC) {
        cur->payer_acsc++;
        cur->last_acsc_ms = cur->last_report_ms;
    } else {
        cur->payer_rjct++;
    }
}

static void on_payee(struct client *c, const Envelope *env, void *arg)
{
    (void)c;
    (void)arg;
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER) {
        CHECK(cur->forwarded < N, "more than %d transfers forwarded", N);
        cur->ids[cur->forwarded++] = env->credit_transfer->transfer_id;
        return;
    }
    CHECK(env->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "payee got %s",
          codec_body_name(env));
    const Sikka__V1__StatusReport *r = env->status_report;
    if (strcmp(r->original_msg_id, POISON) == 0) {
        cur->payee_poison_status = r->status;
        snprintf(cur->payee_poison_reason, sizeof(cur->payee_poison_reason), "%s", r->reason);
    }
    if (r->status == SIKKA__V1__TX_STATUS__ACSC)
        cur->payee_acsc++;
    else
        cur->payee_rjct++;
}

struct counters {
    int64_t batches, attempts, refused, retried, max_batch;
};

static int64_t counter(json_t *counters, const char *name)
{
    json_t *v = json_object_get(counters, name);
    CHECK(json_is_integer(v), "status counter %s", name);
    return json_integer_value(v);
}

static void read_counters(struct harness *h, struct counters *out)
{
    CHECK_INT(H_CTL(h, "--json", "status"), 0);
    json_t *j = json_loads(h->ctl_out, 0, NULL);
    json_t *c = json_object_get(j, "counters");
    CHECK(json_is_object(c), "status JSON has counters: %s", h->ctl_out);
    out->batches = counter(c, "batches");
    out->attempts = counter(c, "batch_attempts");
    out->refused = counter(c, "batches_refused");
    out->retried = counter(c, "batches_retried");
    out->max_batch = counter(c, "max_batch");
    /* every attempt ended: committed, refused, or failed and sent again */
    CHECK(out->attempts == out->batches + out->refused + out->retried,
          "%" PRId64 " attempts != %" PRId64 " committed + %" PRId64 " refused + %" PRId64
          " retried",
          out->attempts, out->batches, out->refused, out->retried);
    json_decref(j);
}

/* Sends N transfers pipelined, lets KOKO collect all of them, then has it
 * accept all at once, so that the N decided transfers reach the ledger
 * within its batch window; returns once both sides have every report. */
static void run_round(struct harness *h, struct client *jazz, struct client *koko, int number)
{
    cur = &rounds[number - 1];
    memset(cur, 0, sizeof(*cur));
    cur->number = number;
    for (int i = 0; i < N; i++) {
        char msg_id[32];
        if (number == 2 && i == POISON_AT)
            snprintf(msg_id, sizeof(msg_id), "%s", POISON);
        else
            snprintf(msg_id, sizeof(msg_id), "BI%d-%04d", number, i);
        h_send_payment(jazz, msg_id, "JAZZ", "KOKO", 1000 + i);
    }
    int64_t deadline = h_now_ms() + (int64_t)DEADLINE_S * 1000;
    while (cur->forwarded < N) {
        h_pump(h, 10);
        CHECK(h_now_ms() < deadline, "round %d: %d of %d forwarded", number, cur->forwarded, N);
    }
    CHECK_INT(cur->payer_acsc + cur->payer_rjct, 0);
    for (int i = 0; i < N; i++)
        h_send_decision(koko, cur->ids[i], true, NULL);
    cur->accepted_ms = h_now_ms();
    while (cur->payer_acsc + cur->payer_rjct < N || cur->payee_acsc + cur->payee_rjct < N) {
        h_pump(h, 10);
        CHECK(h_now_ms() < deadline, "round %d: %d payer and %d payee reports of %d", number,
              cur->payer_acsc + cur->payer_rjct, cur->payee_acsc + cur->payee_rjct, N);
    }
}

/* The log lines that contain every one of the NULL-terminated needles. */
static int log_lines(struct harness *h, const char *const *needles, char *first, size_t len)
{
    FILE *f = fopen(h->log_path, "r");
    CHECK(f != NULL, "open %s", h->log_path);
    static char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        bool all = true;
        for (size_t i = 0; needles[i] != NULL && all; i++)
            all = strstr(line, needles[i]) != NULL;
        if (all && n++ == 0 && first != NULL)
            snprintf(first, len, "%s", line);
    }
    fclose(f);
    return n;
}
#define LOG_LINES(h, first, len, ...)                                                              \
    log_lines((h), (const char *const[]){__VA_ARGS__, NULL}, (first), (len))

int main(void)
{
    struct harness h;
    h_init(&h, "bisect");
    h_config(&h, "batch_max_transfers = 2000\n"
                 "batch_window_us = 1000000\n"
                 "posting_connections = 2\n"
                 "payee_timeout_ms = 15000\n"
                 "session_max_inflight = 10000\n"
                 "log_level = info\n");
    h_admin(&h);
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    client_set_callbacks(jazz, on_payer, NULL, NULL);
    client_set_callbacks(koko, on_payee, NULL, NULL);
    struct counters c0, c1, c2;
    read_counters(&h, &c0);

    TEST_STEP("round 1, nothing planted: 2,000 accepted at once settle in one commit");
    run_round(&h, jazz, koko, 1);
    int64_t t1 = rounds[0].last_acsc_ms - rounds[0].accepted_ms;
    read_counters(&h, &c1);
    CHECK_INT(rounds[0].payer_acsc, N);
    CHECK_INT(rounds[0].payee_acsc, N);
    int64_t b1 = c1.batches - c0.batches;
    fprintf(stderr,
            "   %d ACSC in %" PRId64 " ms after the last accept: %" PRId64 " batch(es), %" PRId64
            " attempt(s), largest %" PRId64 "\n",
            N, t1, b1, c1.attempts - c0.attempts, c1.max_batch);
    CHECK_INT(c1.refused - c0.refused, 0);
    CHECK(b1 >= 1 && b1 <= N, "%" PRId64 " batches", b1);

    TEST_STEP("plant a value the ledger refuses to post (not to record as rejected)");
    PQclear(h_sql(&h, "ALTER TABLE transfers ADD CONSTRAINT planted_refusal "
                      "CHECK (status <> 'ACSC' OR msg_id <> '" POISON "') NOT VALID"));

    TEST_STEP("round 2: 2,000 more, " POISON " among them, all accepted at once");
    run_round(&h, jazz, koko, 2);
    read_counters(&h, &c2);
    struct round *r = &rounds[1];
    int64_t t2 = r->last_acsc_ms - r->accepted_ms;
    int64_t t2_rjct = r->last_report_ms - r->accepted_ms;
    CHECK_INT(r->payer_acsc, N - 1);
    CHECK_INT(r->payer_rjct, 1);
    CHECK_INT(r->payer_poison_status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(r->poison_reason, LEDGER_REFUSED_REASON);
    CHECK_STR(r->poison_text, LEDGER_REFUSED_TEXT);
    static const char *const leaks[] = {"ERROR",   "SQLSTATE", "constraint",
                                        "CONTEXT", "planted",  "transfers"};
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++)
        CHECK(strstr(r->poison_text, leaks[i]) == NULL, "database text on the wire: %s",
              r->poison_text);
    CHECK(r->poison_id != 0, "the rejection names the transfer");
    CHECK_INT(r->payee_acsc, N - 1);
    CHECK_INT(r->payee_rjct, 1);
    CHECK_INT(r->payee_poison_status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(r->payee_poison_reason, LEDGER_REFUSED_REASON);

    TEST_STEP("the ledger: 3,999 posted, the poisoned one recorded as rejected, no entries");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND "
                            "status = 'ACSC' AND msg_id LIKE 'BI1-%%'"),
              N);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND "
                            "status = 'ACSC' AND msg_id LIKE 'BI2-%%'"),
              N - 1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers"), 2 * N);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND msg_id = "
                        "'" POISON "' AND id = %" PRIu64 " AND status = 'RJCT' AND reason = "
                        "'" LEDGER_REFUSED_REASON "' AND reason_text = '" LEDGER_REFUSED_TEXT
                        "' AND window_id IS NULL",
                        r->poison_id),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = %" PRIu64,
                        r->poison_id),
              0);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers t WHERE t.status = 'ACSC' AND "
                        "(SELECT count(*) FROM ledger_entries e WHERE e.transfer_id = t.id) <> 2"),
              0);

    TEST_STEP("bisection: about log2(2000) refused pieces, not a replay one by one");
    int64_t attempts = c2.attempts - c1.attempts, refused = c2.refused - c1.refused;
    int64_t batches = c2.batches - c1.batches, retried = c2.retried - c1.retried;
    /* committed: the batches that held no poison, one good half per split
     * (refused - 1 of them) and the rejection record; so the batches taken
     * from the queue were */
    int64_t sent = batches - refused + 1;
    int64_t bound = 2 * SPLITS + 4 + (sent - 1) + retried;
    fprintf(stderr,
            "   %" PRId64 " attempt(s) (bound %" PRId64 "), %" PRId64 " refused, %" PRId64
            " committed, %" PRId64 " retried; %" PRId64 " batch(es) from the queue\n",
            attempts, bound, refused, batches, retried, sent);
    fprintf(stderr,
            "   the other %d settled in %" PRId64 " ms, %.1fx one commit of %d (%" PRId64
            " ms); the payer's last report after %" PRId64 " ms\n",
            N - 1, t2, t1 > 0 ? (double)t2 / (double)t1 : 0.0, N, t1, t2_rjct);
    CHECK(sent >= 1, "%" PRId64 " batches from the queue", sent);
    CHECK(refused >= 1 && refused <= SPLITS + 1, "%" PRId64 " refused", refused);
    CHECK(attempts <= bound, "%" PRId64 " attempts > %" PRId64, attempts, bound);
    if (sent == 1) /* the whole round in one batch: every level of the bisection */
        CHECK(refused >= SPLITS, "%" PRId64 " refused for a batch of %d", refused, N);

    TEST_STEP("reconcile holds; the log has the database's reason, the wire does not");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM reconcile() WHERE status <> 'ok'"), 0);
    char line[8192];
    CHECK_INT(LOG_LINES(&h, NULL, 0, "event=batch_refused", "action=bisect"), refused - 1);
    if (sent == 1)
        CHECK_INT(LOG_LINES(&h, NULL, 0, "event=batch_refused", "transfers=2000 "), 1);
    CHECK_INT(LOG_LINES(&h, line, sizeof(line), "event=posting_refused", "msg_id=\"" POISON "\"",
                        "reason=" LEDGER_REFUSED_REASON, "action=record_rejection"),
              1);
    CHECK(strstr(line, "planted_refusal") != NULL && strstr(line, "23514") != NULL,
          "the log names the database's reason: %s", line);
    fprintf(stderr, "   %s", line);
    CHECK_INT(LOG_LINES(&h, NULL, 0, "event=posting_refused"), 1);
    CHECK_INT(LOG_LINES(&h, NULL, 0, "event=record_refused"), 0);
    CHECK_INT(LOG_LINES(&h, NULL, 0, "event=transfer_abandoned"), 0);

    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
    return 0;
}
