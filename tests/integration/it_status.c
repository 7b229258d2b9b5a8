/* Status query (pacs.028): a participant asks for the state of its own
 * transfer by msg_id or transfer id, in every state (in flight, settled,
 * rejected, after a restart from the ledger); another participant's transfer
 * is not visible to it. */
#include "harness.h"

static void query(struct client *c, const char *qid, const char *msg_id, uint64_t id)
{
    Sikka__V1__StatusQuery q = SIKKA__V1__STATUS_QUERY__INIT;
    q.query_id = (char *)qid;
    q.msg_id = (char *)(msg_id ? msg_id : "");
    q.transfer_id = id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_QUERY;
    env.status_query = &q;
    CHECK(client_send(c, &env) == 0);
}

static void expect_state(struct client *c, const char *qid, Sikka__V1__TxStatus st,
                         const char *reason, uint64_t id)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    Sikka__V1__StatusReport *r = e->status_report;
    CHECK_INT(r->kind, SIKKA__V1__REPORT_KIND__REPORT_KIND_QUERY);
    CHECK_STR(r->query_id, qid);
    CHECK(r->status == st, "%s: status %d, want %d", qid, r->status, st);
    if (reason != NULL)
        CHECK_STR(r->reason, reason);
    if (id != 0)
        CHECK_INT(r->transfer_id, id);
    fprintf(stderr, "   %s: status %d %s %s\n", qid, r->status, r->reason, r->text);
    client_envelope_free(e);
}

static void expect_invisible(struct client *c, const char *qid)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK(strstr(e->message_reject->text, "is known") != NULL, "%s", e->message_reject->text);
    fprintf(stderr, "   %s: %s %s\n", qid, e->message_reject->reason, e->message_reject->text);
    client_envelope_free(e);
}

int main(void)
{
    struct harness h;
    h_init(&h, "status");
    h_config(&h, "payee_timeout_ms = 3000\n");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *easy = h_connect(&h, "EASY");

    TEST_STEP("in flight: PDNG by msg_id and by id, to both parties");
    struct h_transfer t = {
        .msg_id = "Q-1", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 900};
    h_send_transfer(jazz, &t);
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    query(jazz, "q1", "Q-1", 0);
    expect_state(jazz, "q1", SIKKA__V1__TX_STATUS__PDNG, NULL, id);
    query(jazz, "q2", NULL, id);
    expect_state(jazz, "q2", SIKKA__V1__TX_STATUS__PDNG, NULL, id);
    query(koko, "q3", NULL, id);
    expect_state(koko, "q3", SIKKA__V1__TX_STATUS__PDNG, NULL, id);

    TEST_STEP("another participant sees nothing, by id or by msg_id");
    query(easy, "q4", NULL, id);
    expect_invisible(easy, "q4");
    query(easy, "q5", "Q-1", 0);
    expect_invisible(easy, "q5");

    TEST_STEP("settled: ACSC");
    h_send_decision(koko, id, true, NULL);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    query(jazz, "q6", "Q-1", 0);
    expect_state(jazz, "q6", SIKKA__V1__TX_STATUS__ACSC, NULL, id);

    TEST_STEP("rejected: RJCT with its reason; unknown: refused");
    struct h_transfer rj = {
        .msg_id = "Q-2", .debtor_agent = "JAZZ", .creditor_agent = "NAYA", .amount = 900};
    h_send_transfer(jazz, &rj);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    query(jazz, "q7", "Q-2", 0);
    expect_state(jazz, "q7", SIKKA__V1__TX_STATUS__RJCT, "AB08", 0);
    query(jazz, "q8", "NEVER-SENT", 0);
    expect_invisible(jazz, "q8");
    query(jazz, "q9", "", 0);
    Envelope *e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, "FF01");
    client_envelope_free(e);

    TEST_STEP("after a restart, from the ledger (nothing kept in memory)");
    client_free(jazz);
    client_free(koko);
    client_free(easy);
    CHECK_INT(h_stop(&h), 0);
    h_config(&h, "payee_timeout_ms = 3000\nidempotency_cache_seconds = 0\n");
    h_start(&h);
    jazz = h_connect(&h, "JAZZ");
    koko = h_connect(&h, "KOKO");
    easy = h_connect(&h, "EASY");
    query(jazz, "q10", "Q-1", 0);
    expect_state(jazz, "q10", SIKKA__V1__TX_STATUS__ACSC, NULL, id);
    query(koko, "q11", NULL, id);
    expect_state(koko, "q11", SIKKA__V1__TX_STATUS__ACSC, NULL, id);
    query(jazz, "q12", "Q-2", 0);
    expect_state(jazz, "q12", SIKKA__V1__TX_STATUS__RJCT, "AB08", 0);
    query(easy, "q13", NULL, id);
    expect_invisible(easy, "q13");

    client_free(jazz);
    client_free(koko);
    client_free(easy);
    h_cleanup(&h);
    return 0;
}
