/* Bad input: oversized lengths, truncated frames, bytes that are not
 * protobuf, unknown fields, missing fields, bad amounts, unknown purposes and
 * currencies. Each gets a reason code or closes that one connection; the
 * switch never crashes and keeps serving other participants. */
#include <unistd.h>

#include "harness.h"

static void expect_reject(struct client *c, const char *reason)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, reason);
    fprintf(stderr, "   %s: %s\n", reason, e->message_reject->text);
    client_envelope_free(e);
}

static void still_serving(struct harness *h, const char *tag)
{
    struct client *mezn = h_connect(h, "MEZN");
    struct client *easy = h_connect(h, "EASY");
    char msg_id[32];
    snprintf(msg_id, sizeof(msg_id), "ALIVE-%s", tag);
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = "MEZN",
                           .creditor_agent = "EASY",
                           .amount = 100000,
                           .purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT,
                           .invoice = "INV-1"};
    h_send_transfer(mezn, &t);
    h_payee_decide(easy, true, NULL);
    Envelope *e = h_expect(mezn, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_free(mezn);
    client_free(easy);
}

static void send_raw(struct client *c, const void *p, size_t n)
{
    CHECK(client_send_raw(c, p, n) == 0);
}

int main(void)
{
    struct harness h;
    h_init(&h, "badinput");
    h_config(&h, "max_amount = 1000000000\n");
    h_start(&h);
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("a length over the maximum: FF01, that connection closed");
    struct client *c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x10\x00\x01", 4); /* 1 MiB + 1 */
    expect_reject(c, "FF01");
    CHECK(client_recv(c, 3000) == NULL && client_is_closed(c), "closed after an oversized frame");
    client_free(c);
    still_serving(&h, "1");

    TEST_STEP("bytes that are not protobuf: FF01, the connection stays in sync");
    c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x00\x00\x05\xff\xff\xff\xff\xff", 9);
    expect_reject(c, "FF01");
    send_raw(c, "\x00\x00\x00\x00", 4); /* an empty envelope: no body */
    expect_reject(c, "FF01");
    /* a known message with a field this version does not know */
    send_raw(c, "\x00\x00\x00\x06\x2a\x04\x08\x01\x48\x01", 10);
    expect_reject(c, "FF01");
    struct h_transfer ok = {
        .msg_id = "OK-1", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(c, &ok);
    h_payee_decide(koko, true, NULL);
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("zero, negative, over-limit and overflowing amounts: AM02, nothing posted");
    const int64_t bad[] = {0, -1, -9223372036854775807LL - 1, 1000000001, INT64_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char id[32];
        snprintf(id, sizeof(id), "AMT-%zu", i);
        struct h_transfer t = {
            .msg_id = id, .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = bad[i]};
        h_send_transfer(c, &t);
        h_expect_report(c, id, SIKKA__V1__TX_STATUS__RJCT, "AM02");
    }
    CHECK(h_silent(koko, 200), "nothing forwarded");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'AMT-%%' AND status "
                            "= 'RJCT' AND reason = 'AM02'"),
              5);

    TEST_STEP("unknown purpose: FF03; other currency: AM03");
    struct h_transfer np = {.msg_id = "PURPOSE-1",
                            .debtor_agent = "JAZZ",
                            .creditor_agent = "KOKO",
                            .amount = 100,
                            .purpose = (Sikka__V1__Purpose)42};
    h_send_transfer(c, &np);
    h_expect_report(c, "PURPOSE-1", SIKKA__V1__TX_STATUS__RJCT, "FF03");
    struct h_transfer usd = {.msg_id = "CCY-1",
                             .debtor_agent = "JAZZ",
                             .creditor_agent = "KOKO",
                             .amount = 100,
                             .currency = "USD"};
    h_send_transfer(c, &usd);
    h_expect_report(c, "CCY-1", SIKKA__V1__TX_STATUS__RJCT, "AM03");

    TEST_STEP("missing fields: FF01");
    struct h_transfer nomsg = {
        .msg_id = "", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(c, &nomsg);
    expect_reject(c, "FF01");
    struct h_transfer noacc = {.msg_id = "NOACC-1",
                               .debtor_agent = "JAZZ",
                               .creditor_agent = "KOKO",
                               .creditor_account = "",
                               .amount = 100};
    h_send_transfer(c, &noacc);
    h_expect_report(c, "NOACC-1", SIKKA__V1__TX_STATUS__RJCT, "FF01");
    struct h_transfer toolong = {.msg_id = "0123456789012345678901234567890123456789",
                                 .debtor_agent = "JAZZ",
                                 .creditor_agent = "KOKO",
                                 .amount = 100};
    h_send_transfer(c, &toolong);
    expect_reject(c, "FF01");
    struct h_transfer noagent = {
        .msg_id = "NOAGENT-1", .debtor_agent = "JAZZ", .creditor_agent = "", .amount = 100};
    h_send_transfer(c, &noagent);
    h_expect_report(c, "NOAGENT-1", SIKKA__V1__TX_STATUS__RJCT, "FF01");

    TEST_STEP("a message participants do not send: FF01");
    Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT;
    env.status_report = &sr;
    CHECK(client_send(c, &env) == 0);
    expect_reject(c, "FF01");
    client_free(c);
    still_serving(&h, "2");

    TEST_STEP("a truncated frame, then the peer vanishes: only that connection goes");
    c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x00\x00\x64\x0a\x05", 6);
    CHECK(client_flush(c, 2000) == 0);
    client_free(c);
    still_serving(&h, "3");

    TEST_STEP("a truncated frame, then silence: the switch closes it after the heartbeat");
    client_free(koko);
    CHECK_INT(h_stop(&h), 0);
    h_config(&h, "max_amount = 1000000000\nheartbeat_interval_ms = 300\n");
    h_start(&h);
    c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x00\x00\x64\x0a\x05", 6);
    /* our client answers pings, but the half frame swallows its answers:
     * the switch sees garbage or silence and closes the connection */
    for (int i = 0; i < 40 && !client_is_closed(c); i++) {
        Envelope *x = client_recv(c, 100);
        if (x != NULL)
            client_envelope_free(x);
    }
    CHECK(client_is_closed(c), "a stalled half frame must not hold the connection forever");
    client_free(c);
    still_serving(&h, "4");

    TEST_STEP("a peer that stops answering heartbeats is found dead and closed");
    /* a client on a loop of its own that nobody runs: it reads nothing and
     * answers no ping, like a peer whose machine froze */
    struct event_base *frozen = event_base_new();
    char cert[300], key[300], ca[300], err[256];
    struct client_opts o = {.host = "127.0.0.1",
                            .port = h.port,
                            .cert = h_pki(&h, "NAYA.crt", cert, sizeof(cert)),
                            .key = h_pki(&h, "NAYA.key", key, sizeof(key)),
                            .ca = h_pki(&h, "ca.crt", ca, sizeof(ca)),
                            .await_ready = true};
    SSL_CTX *ctx = client_ssl_ctx(&o, err, sizeof(err));
    CHECK(ctx != NULL, "%s", err);
    struct client *dead = client_connect_sync(frozen, ctx, &o, 5000, err, sizeof(err));
    CHECK(dead != NULL, "%s", err);
    usleep(1500000);                      /* five heartbeat intervals of silence */
    Envelope *x = client_recv(dead, 500); /* now let it see what happened */
    while (x != NULL) {
        client_envelope_free(x);
        x = client_recv(dead, 500);
    }
    CHECK(client_is_closed(dead), "the switch must close a peer that answers no heartbeat");
    fprintf(stderr, "   frozen peer: %s\n", client_close_reason(dead));
    client_free(dead);
    SSL_CTX_free(ctx);
    event_base_free(frozen);
    still_serving(&h, "5");
    CHECK(h_running(&h), "the switch is still running");

    h_cleanup(&h);
    return 0;
}
