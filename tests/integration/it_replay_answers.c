/* A retry gets the first answer field for field (fee, text, settlement time),
 * whether it comes from memory or from the ledger: three first answers (a
 * supplier payment whose fee the payee bears, a P2P payment whose fee the
 * payer bears, a rejection by the payee with its own text), each retried
 * from the switch's memory, after a restart (the index preloaded from the
 * ledger), and with no finished key kept in memory (the database's unique
 * key answers, after the payee was asked again). */
#include "harness.h"

struct answer_case {
    struct h_transfer t;
    bool accept;
    const char *reason; /* the payee's, when it rejects */
    const char *text;
    Envelope *first; /* the payer's first StatusReport, kept whole */
};

/* The name of the first field in which b differs from a (why says how), or
 * NULL when they are equal in every field, including any this helper does
 * not list (their encodings are compared last). */
static const char *report_diff(const Sikka__V1__StatusReport *a, const Sikka__V1__StatusReport *b,
                               char *why, size_t len)
{
#define DIFF_INT(f)                                                                                \
    do {                                                                                           \
        if (a->f != b->f) {                                                                        \
            snprintf(why, len, "%lld != %lld", (long long)a->f, (long long)b->f);                  \
            return #f;                                                                             \
        }                                                                                          \
    } while (0)
#define DIFF_STR(f)                                                                                \
    do {                                                                                           \
        if (strcmp(a->f, b->f) != 0) {                                                             \
            snprintf(why, len, "\"%s\" != \"%s\"", a->f, b->f);                                    \
            return #f;                                                                             \
        }                                                                                          \
    } while (0)
    DIFF_INT(transfer_id);
    DIFF_STR(original_msg_id);
    DIFF_STR(original_end_to_end_id);
    DIFF_INT(status);
    DIFF_STR(reason);
    DIFF_STR(text);
    DIFF_INT(amount);
    DIFF_STR(debtor_agent);
    DIFF_STR(creditor_agent);
    DIFF_INT(kind);
    DIFF_INT(fee);
    DIFF_INT(original_transfer_id);
    DIFF_INT(settled_at_ms);
    DIFF_STR(query_id);
#undef DIFF_INT
#undef DIFF_STR
    size_t na = sikka__v1__status_report__get_packed_size(a);
    size_t nb = sikka__v1__status_report__get_packed_size(b);
    uint8_t pa[1024], pb[1024];
    CHECK(na <= sizeof(pa) && nb <= sizeof(pb), "reports of %zu and %zu bytes", na, nb);
    sikka__v1__status_report__pack(a, pa);
    sikka__v1__status_report__pack(b, pb);
    if (na != nb || memcmp(pa, pb, na) != 0) {
        snprintf(why, len, "encodings of %zu and %zu bytes differ", na, nb);
        return "a field report_diff does not list";
    }
    return NULL;
}

static void expect_same(const char *when, const Envelope *first, const Envelope *again)
{
    CHECK(again->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "%s: got %s", when,
          codec_body_name(again));
    char why[512];
    const char *field = report_diff(first->status_report, again->status_report, why, sizeof(why));
    CHECK(field == NULL, "%s: %s: the retry's %s differs from the first answer: %s", when,
          first->status_report->original_msg_id, field, why);
}

/* The first answer: sent, decided by the payee, the payer's report kept. */
static void first_answer(struct client *payer, struct client *payee, struct answer_case *c)
{
    h_send_transfer(payer, &c->t);
    Envelope *fwd = h_expect(payee, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    h_send_decision_text(payee, id, c->accept, c->reason, c->text);
    c->first = h_expect(payer, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(c->first->status_report->transfer_id, id);
    Envelope *pr = h_expect(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(pr->status_report->transfer_id, id);
    client_envelope_free(pr);
    const Sikka__V1__StatusReport *r = c->first->status_report;
    fprintf(stderr, "   %s: %s reason=%s fee=%lld settled_at_ms=%lld text=\"%s\"\n", c->t.msg_id,
            r->status == SIKKA__V1__TX_STATUS__ACSC ? "ACSC" : "RJCT", r->reason, (long long)r->fee,
            (long long)r->settled_at_ms, r->text);
}

/* The same message again, answered without asking the payee. */
static void retry_answered(struct client *payer, struct client *payee, struct answer_case *c,
                           const char *when)
{
    h_send_transfer(payer, &c->t);
    Envelope *e = h_expect(payer, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    expect_same(when, c->first, e);
    client_envelope_free(e);
    CHECK(h_silent(payee, 200), "%s: the payee was asked again", when);
}

/* The same message again when the switch no longer knows the key: it is
 * forwarded, the payee accepts, and the ledger's unique key answers. */
static void retry_from_ledger(struct client *payer, struct client *payee, struct answer_case *c,
                              const char *when)
{
    h_send_transfer(payer, &c->t);
    Envelope *fwd = h_expect(payee, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t again = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    CHECK(again != c->first->status_report->transfer_id, "a new attempt gets a new id");
    h_send_decision(payee, again, true, NULL);
    Envelope *e = h_expect(payer, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    expect_same(when, c->first, e);
    client_envelope_free(e);
    Envelope *pr = h_expect(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(pr->status_report->transfer_id, again);
    CHECK_INT(pr->status_report->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(pr->status_report->reason, "AM05");
    client_envelope_free(pr);
}

int main(void)
{
    struct harness h;
    h_init(&h, "replay_answers");
    /* P2P charged to the payer at 0.10 % (within PKR 1..1,000), so a payer's
     * report carries a fee too; the switch reads the schedule at start */
    PQclear(h_sql(&h, "UPDATE fee_schedule SET bps = 10, min_fee = 100, max_fee = 100000, "
                      "charged_to = 'payer' WHERE purpose = 'P2P'"));
    h_start(&h);
    struct client *mezn = h_connect(&h, "MEZN");
    struct client *easy = h_connect(&h, "EASY");

    struct answer_case cases[] = {
        {.t = {.msg_id = "RA-SUPPLIER",
               .debtor_agent = "MEZN",
               .creditor_agent = "EASY",
               .amount = 1000000,
               .purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT,
               .invoice = "INV-2024-001"},
         .accept = true},
        {.t = {.msg_id = "RA-P2P",
               .debtor_agent = "MEZN",
               .creditor_agent = "EASY",
               .amount = 500000,
               .purpose = SIKKA__V1__PURPOSE__P2P},
         .accept = true},
        {.t = {.msg_id = "RA-REJECTED",
               .debtor_agent = "MEZN",
               .creditor_agent = "EASY",
               .amount = 250000,
               .purpose = SIKKA__V1__PURPOSE__P2P},
         .accept = false,
         .reason = "AC01",
         .text = "account 03219876543 is unknown"},
    };
    const size_t n = sizeof(cases) / sizeof(cases[0]);

    TEST_STEP("first answers: payee-charged fee, payer-charged fee, a rejection with text");
    for (size_t i = 0; i < n; i++)
        first_answer(mezn, easy, &cases[i]);
    const Sikka__V1__StatusReport *sup = cases[0].first->status_report;
    const Sikka__V1__StatusReport *p2p = cases[1].first->status_report;
    const Sikka__V1__StatusReport *rej = cases[2].first->status_report;
    CHECK_INT(sup->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(sup->fee, 0); /* PKR 20.00, borne by the payee */
    CHECK_INT(h_sql_int(&h, "SELECT fee FROM transfers WHERE msg_id = 'RA-SUPPLIER'"), 2000);
    CHECK_INT(p2p->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(p2p->fee, 500);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'RA-P2P' AND fee = 500 "
                            "AND fee_payer = 'MEZN'"),
              1);
    CHECK_INT(rej->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(rej->reason, "AC01");
    CHECK_STR(rej->text, "rejected by creditor agent EASY: account 03219876543 is unknown");
    CHECK_INT(rej->fee, 0);
    for (size_t i = 0; i < n; i++) {
        const Sikka__V1__StatusReport *r = cases[i].first->status_report;
        CHECK(r->settled_at_ms > 0, "%s: no settlement time", r->original_msg_id);
        CHECK_INT(r->settled_at_ms,
                  h_sql_int(&h,
                            "SELECT (extract(epoch FROM finished_at) * 1000)::bigint FROM "
                            "transfers WHERE id = %llu",
                            (unsigned long long)r->transfer_id));
        CHECK_STR(r->original_msg_id, cases[i].t.msg_id);
        CHECK_STR(r->original_end_to_end_id, cases[i].t.msg_id);
        CHECK_STR(r->debtor_agent, "MEZN");
        CHECK_STR(r->creditor_agent, "EASY");
        CHECK_INT(r->amount, cases[i].t.amount);
        CHECK_INT(r->kind, SIKKA__V1__REPORT_KIND__REPORT_KIND_RESULT);
    }

    TEST_STEP("retried: answered from memory, field for field");
    for (size_t i = 0; i < n; i++)
        retry_answered(mezn, easy, &cases[i], "from memory");

    TEST_STEP("after a restart: answered from the index preloaded from the ledger");
    client_free(mezn);
    client_free(easy);
    CHECK_INT(h_stop(&h), 0);
    h_start(&h);
    mezn = h_connect(&h, "MEZN");
    easy = h_connect(&h, "EASY");
    for (size_t i = 0; i < n; i++)
        retry_answered(mezn, easy, &cases[i], "after a restart");

    TEST_STEP("no finished key in memory: the ledger's unique key answers");
    client_free(mezn);
    client_free(easy);
    CHECK_INT(h_stop(&h), 0);
    h_config(&h, "idempotency_cache_max = 0\n");
    h_start(&h);
    mezn = h_connect(&h, "MEZN");
    easy = h_connect(&h, "EASY");
    for (size_t i = 0; i < n; i++)
        retry_from_ledger(mezn, easy, &cases[i], "from the ledger");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'RA-%%'"), 3);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries"), 4 + 4);

    for (size_t i = 0; i < n; i++)
        client_envelope_free(cases[i].first);
    client_free(mezn);
    client_free(easy);
    h_cleanup(&h);
    return 0;
}
