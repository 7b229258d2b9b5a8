/* Identity: the participant is the client certificate's CN, never a field of
 * a message. Spoofed debtor agents, foreign-CA, expired, unregistered,
 * suspended and non-participant certificates are all refused, and the switch
 * keeps serving everyone else. */
#include "harness.h"

static void expect_refused(struct harness *h, const char *cert, const char *key,
                           const char *want_reason)
{
    char c[300], k[300], err[512];
    struct client *cl = h_connect_files(h, h_pki(h, cert, c, sizeof(c)),
                                        h_pki(h, key, k, sizeof(k)), err, sizeof(err));
    if (cl == NULL) {
        fprintf(stderr, "   refused at the handshake: %s\n", err);
        return;
    }
    /* TLS 1.3: the client may finish first; the server's refusal follows */
    Envelope *e = client_recv(cl, 3000);
    if (want_reason != NULL) {
        CHECK(e != NULL, "%s: expected a MessageReject %s before the close", cert, want_reason);
        CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, "got %s",
              codec_body_name(e));
        CHECK_STR(e->message_reject->reason, want_reason);
        client_envelope_free(e);
        e = client_recv(cl, 3000);
    }
    CHECK(e == NULL, "%s: the connection must carry nothing more", cert);
    CHECK(client_is_closed(cl), "%s: the switch must close the connection", cert);
    fprintf(stderr, "   closed: %s\n", client_close_reason(cl));
    client_free(cl);
}

static void pay_ok(struct client *payer, struct client *payee, const char *from, const char *to,
                   const char *msg_id)
{
    struct h_transfer t = {
        .msg_id = msg_id, .debtor_agent = from, .creditor_agent = to, .amount = 100};
    h_send_transfer(payer, &t);
    h_payee_decide(payee, true, NULL);
    Envelope *e = h_expect(payer, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
}

int main(void)
{
    struct harness h;
    h_init(&h, "identity");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("debtor agent spoofed: RC01, nothing forwarded or recorded");
    struct h_transfer spoof = {
        .msg_id = "SPOOF-1", .debtor_agent = "EASY", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(jazz, &spoof);
    Envelope *e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(e->status_report->reason, "RC01");
    client_envelope_free(e);
    CHECK(h_silent(koko, 200));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'SPOOF-1'"), 0);

    TEST_STEP("certificate from another CA: refused at the handshake");
    expect_refused(&h, "foreign-JAZZ.crt", "foreign-JAZZ.key", NULL);

    TEST_STEP("expired certificate: refused at the handshake");
    expect_refused(&h, "expired-JAZZ.crt", "expired-JAZZ.key", NULL);

    TEST_STEP("valid certificate of an unregistered participant: RC01 and closed");
    expect_refused(&h, "ZZZZ.crt", "ZZZZ.key", "RC01");

    TEST_STEP("suspended participant: AG10 and closed");
    expect_refused(&h, "SUSP.crt", "SUSP.key", "AG10");

    TEST_STEP("operator certificate on the participant port: RC01 and closed");
    expect_refused(&h, "operator.crt", "operator.key", "RC01");

    TEST_STEP("payee suspended: AG11; payee unknown: RC04");
    struct h_transfer to_susp = {
        .msg_id = "TO-SUSP", .debtor_agent = "JAZZ", .creditor_agent = "SUSP", .amount = 100};
    h_send_transfer(jazz, &to_susp);
    e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_STR(e->status_report->reason, "AG11");
    client_envelope_free(e);
    struct h_transfer to_none = {
        .msg_id = "TO-NONE", .debtor_agent = "JAZZ", .creditor_agent = "QQQQ", .amount = 100};
    h_send_transfer(jazz, &to_none);
    e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_STR(e->status_report->reason, "RC04");
    client_envelope_free(e);

    TEST_STEP("a decision from a participant that is not the payee: exactly the answer to an "
              "unknown transfer");
    struct h_transfer t = {
        .msg_id = "WRONG-PAYEE", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(jazz, &t);
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    struct client *easy = h_connect(&h, "EASY");
    h_send_decision(easy, id, true, NULL);
    e = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, "NARR");
    h_send_decision(easy, id + 1000, true, NULL);
    Envelope *unknown = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    h_check_same_answer(e, id, unknown, id + 1000);
    client_envelope_free(unknown);
    client_envelope_free(e);
    h_send_decision(koko, id, true, NULL);
    e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("the switch still serves everyone else");
    pay_ok(jazz, koko, "JAZZ", "KOKO", "AFTER-1");
    pay_ok(easy, koko, "EASY", "KOKO", "AFTER-2");

    client_free(easy);
    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
    return 0;
}
