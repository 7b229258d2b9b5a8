/* SIGTERM drains: the listener stops, new transfers are turned away with a
 * retryable message reject (nothing recorded), transfers in flight finish
 * and are answered, the ledger flushes, and the process exits 0. */
#include <signal.h>

#include "harness.h"

int main(void)
{
    struct harness h;
    h_init(&h, "drain");
    h_config(&h, "payee_timeout_ms = 4000\n");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("a transfer is in flight when SIGTERM arrives");
    struct h_transfer t = {
        .msg_id = "DRAIN-1", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 4200};
    h_send_transfer(jazz, &t);
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    CHECK(kill(h.pid, SIGTERM) == 0);
    H_WAIT_LOG(&h, 1, 5000, "event=drain_start");

    TEST_STEP("new work is turned away, retryably, while draining");
    struct h_transfer t2 = {
        .msg_id = "DRAIN-2", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(jazz, &t2);
    Envelope *e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, "NARR");
    client_envelope_free(e);
    char err[256], cert[300], key[300];
    CHECK(h_connect_files(&h, h_pki(&h, "EASY.crt", cert, sizeof(cert)),
                          h_pki(&h, "EASY.key", key, sizeof(key)), err, sizeof(err)) == NULL,
          "new connections are refused while draining");
    fprintf(stderr, "   new connection: %s\n", err);

    TEST_STEP("the in-flight transfer finishes and both sides hear it");
    h_send_decision(koko, id, true, NULL);
    e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(e->status_report->transfer_id, id);
    client_envelope_free(e);
    e = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);

    TEST_STEP("the process exits 0 and the posting is in the ledger");
    /* drain_timeout_ms is 5 s: a switch still running 10 s on fails the
     * test, and is killed and reaped on the way out */
    CHECK_INT(h_wait_exit(&h, 10000), 0);
    CHECK(h_log_has(&h, "event=drained"), "the drain finished its work before the exit");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = %llu",
                        (unsigned long long)id),
              2);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'DRAIN-2'"), 0);
    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
    return 0;
}
