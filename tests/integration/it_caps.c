/* Net debit caps lowered below a participant's exposure: allowed, but for
 * new reservations only, in memory first, so a payment already accepted is
 * never refused at posting for it. The database keeps the old cap as a
 * grace (schema/004) while payments reserved under it are in flight; the
 * switch ends it once they are through (shrunk to the exposure while the
 * position is still beyond the new cap, gone once it is back within).
 * Once through the operator console, once by a superuser's UPDATE that the
 * switch learns of by NOTIFY, and once by a superuser's UPDATE that commits
 * while the switch's call to end an earlier grace waits for the row: the
 * database must not end the grace under a cap the switch has not applied. */
#include "harness.h"

/* generous: the sanitizer tree is slow, and every wait ends on its event */
#define WAIT_MS 15000

static int64_t ndc(struct harness *h, const char *code)
{
    return h_sql_int(h, "SELECT ndc FROM participants WHERE code = '%s'", code);
}

/* The grace as the database holds it, -1 for NULL (none). */
static int64_t grace(struct harness *h, const char *code)
{
    return h_sql_int(h, "SELECT coalesce(ndc_grace, -1) FROM participants WHERE code = '%s'", code);
}

/* Waits for the switch to bring code's grace to want (-1: none). */
static void wait_grace(struct harness *h, const char *code, int64_t want)
{
    h_wait_sql_int(h, want, WAIT_MS,
                   "SELECT coalesce(ndc_grace, -1) FROM participants WHERE code = '%s'", code);
}

/* A payment the payee accepts at once: ACSC to both sides. */
static void settle(struct client *payer, struct client *payee, const char *msg_id, const char *from,
                   const char *to, int64_t amount)
{
    h_send_payment(payer, msg_id, from, to, amount);
    h_payee_decide(payee, true, NULL);
    h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
    h_expect_report(payee, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
}

/* A payment refused before its payee hears of it. */
static void refused(struct client *payer, struct client *payee, const char *msg_id,
                    const char *from, const char *to, int64_t amount, const char *reason)
{
    h_send_payment(payer, msg_id, from, to, amount);
    h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__RJCT, reason);
    CHECK(h_silent(payee, 200), "%s was forwarded", msg_id);
}

/* The payee's session receives the payment and keeps its answer back. */
static uint64_t held_by(struct client *payee, int64_t amount)
{
    Envelope *e = h_expect(payee, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    CHECK_INT(e->credit_transfer->amount, amount);
    uint64_t id = e->credit_transfer->transfer_id;
    CHECK(id != 0);
    client_envelope_free(e);
    return id;
}

/* The payee accepts the payment it held: ACSC to both sides. */
static void accept_held(struct client *payer, struct client *payee, uint64_t id, const char *msg_id)
{
    h_send_decision(payee, id, true, NULL);
    h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
    h_expect_report(payee, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
}

int main(void)
{
    struct harness h;
    h_init(&h, "caps");
    /* a held payment must outlive the operator's steps, even under ASan */
    h_config(&h, "payee_timeout_ms = 20000\n");
    h_admin(&h);
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *sada = h_connect(&h, "SADA");

    TEST_STEP("JAZZ's cap set to PKR 1,000.00 with nothing in flight: no grace stays");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "ndc", "set", "JAZZ", "1000.00"), 0);
    CHECK_INT(ndc(&h, "JAZZ"), 100000);
    /* the database kept the seeded cap (PKR 5,000,000.00) as a grace; nothing
     * was reserved under it and JAZZ's position (0) is within the new cap,
     * so the switch ends it */
    wait_grace(&h, "JAZZ", -1);

    TEST_STEP("JAZZ pays KOKO PKR 900.00; KOKO receives it and holds its answer");
    h_send_payment(jazz, "CAP-HELD", "JAZZ", "KOKO", 90000);
    uint64_t held = held_by(koko, 90000);

    TEST_STEP("the operator lowers JAZZ's cap to PKR 100.00, below its exposure: allowed");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "ndc", "set", "JAZZ", "100.00"), 0);
    CHECK_INT(ndc(&h, "JAZZ"), 10000);
    /* the cap it replaced, PKR 1,000.00, honoured for the held payment */
    CHECK_INT(grace(&h, "JAZZ"), 100000);

    TEST_STEP("a new JAZZ payment of PKR 50.00: AM23 at once, the new cap applies");
    /* headroom under the new cap: posted 0 - reserved 90000 + ndc 10000 < 5000 */
    refused(jazz, koko, "CAP-NEW", "JAZZ", "KOKO", 5000, "AM23");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND msg_id = "
                            "'CAP-NEW' AND status = 'RJCT' AND reason = 'AM23'"),
              1);

    TEST_STEP("KOKO accepts the held payment: it settles (ACSC) under the grace");
    /* JAZZ's position goes to -90000, beyond -ndc = -10000: only the grace
     * of 100000 lets the database post it */
    accept_held(jazz, koko, held, "CAP-HELD");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE id = %llu AND status = 'ACSC'",
                        (unsigned long long)held),
              1);
    CHECK_INT(h_position_balance(&h, "JAZZ"), -90000);

    TEST_STEP("nothing under the old cap is in flight: the grace shrinks to JAZZ's exposure");
    /* position -90000 is still beyond the cap of 10000: the grace becomes
     * min(100000, 90000) = 90000, so no further debit can pass */
    wait_grace(&h, "JAZZ", 90000);
    CHECK_INT(ndc(&h, "JAZZ"), 10000);
    refused(jazz, koko, "CAP-BEYOND", "JAZZ", "KOKO", 1, "AM23");

    TEST_STEP("KOKO pays JAZZ PKR 900.00: JAZZ is back within its cap, the grace ends");
    settle(koko, jazz, "CAP-BACK", "KOKO", "JAZZ", 90000);
    CHECK_INT(h_position_balance(&h, "JAZZ"), 0); /* -90000 + 90000 */
    wait_grace(&h, "JAZZ", -1);
    /* the new cap in full, and not a paisa more: 0 - 10000 = -ndc */
    settle(jazz, koko, "CAP-FULL", "JAZZ", "KOKO", 10000);
    refused(jazz, koko, "CAP-OVER", "JAZZ", "KOKO", 1, "AM23");
    CHECK_INT(grace(&h, "JAZZ"), -1);

    TEST_STEP("SADA pays KOKO PKR 900.00; KOKO holds its answer");
    h_send_payment(sada, "OOB-HELD", "SADA", "KOKO", 90000);
    uint64_t held2 = held_by(koko, 90000);

    TEST_STEP("a superuser lowers SADA's cap to PKR 100.00 in SQL, out of band");
    PQclear(h_sql(&h, "UPDATE participants SET ndc = 10000 WHERE code = 'SADA'"));
    /* the seeded cap, PKR 5,000,000.00, kept as the grace */
    CHECK_INT(grace(&h, "SADA"), 500000000);
    H_WAIT_LOG(&h, 1, WAIT_MS,
               "event=participant_synced code=SADA what=ndc from=500000000 to=10000");

    TEST_STEP("the switch applies it for new reservations: SADA's PKR 50.00 gets AM23");
    /* posted 0 - reserved 90000 + ndc 10000 < 5000 */
    refused(sada, koko, "OOB-NEW", "SADA", "KOKO", 5000, "AM23");

    TEST_STEP("KOKO accepts the held payment: ACSC under the grace");
    accept_held(sada, koko, held2, "OOB-HELD");
    CHECK_INT(h_position_balance(&h, "SADA"), -90000);
    /* beyond the cap of 10000: grace min(500000000, 90000) = 90000 */
    wait_grace(&h, "SADA", 90000);
    refused(sada, koko, "OOB-BEYOND", "SADA", "KOKO", 1, "AM23");

    TEST_STEP("KOKO pays SADA PKR 900.00 back: the grace ends");
    settle(koko, sada, "OOB-BACK", "KOKO", "SADA", 90000);
    CHECK_INT(h_position_balance(&h, "SADA"), 0);
    wait_grace(&h, "SADA", -1);

    TEST_STEP("NAYA's cap set to PKR 1,000.00; KOKO holds a NAYA payment of PKR 100.00");
    struct client *naya = h_connect(&h, "NAYA");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "ndc", "set", "NAYA", "1000.00"), 0);
    wait_grace(&h, "NAYA", -1); /* nothing in flight: no grace stays */
    h_send_payment(naya, "RACE-OLD", "NAYA", "KOKO", 10000);
    uint64_t old_id = held_by(koko, 10000);

    TEST_STEP("the operator lowers it to PKR 500.00; a PKR 300.00 payment fits and is held");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "ndc", "set", "NAYA", "500.00"), 0);
    CHECK_INT(grace(&h, "NAYA"), 100000);
    /* headroom: 0 - 10000 - 30000 = -40000 >= -50000 */
    h_send_payment(naya, "RACE-NEW", "NAYA", "KOKO", 30000);
    uint64_t new_id = held_by(koko, 30000);

    TEST_STEP("a superuser lowers it to PKR 200.00 while the switch ends the grace");
    /* The superuser's UPDATE holds NAYA's row; the held old payment settles,
     * so the switch asks the database to end the grace, and that call waits
     * for the row. The lowering commits first: the call then sees a cap the
     * switch has not heard of, under which its PKR 300.00 reservation does
     * not fit; the grace must stay for it. */
    PGconn *su = PQconnectdb(h.super_conninfo);
    CHECK(PQstatus(su) == CONNECTION_OK, "%s", PQerrorMessage(su));
    PGresult *r = PQexec(su, "BEGIN; UPDATE participants SET ndc = 20000 WHERE code = 'NAYA'");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    accept_held(naya, koko, old_id, "RACE-OLD");
    /* the switch's call to end NAYA's grace waits for the row */
    h_wait_sql_int(&h, 1, WAIT_MS,
                   "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                   "AND datname = current_database() AND wait_event_type = 'Lock' "
                   "AND query LIKE '%%participant_end_ndc_grace%%'");
    r = PQexec(su, "COMMIT");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(su);
    H_WAIT_LOG(&h, 1, WAIT_MS, "event=participant_synced code=NAYA what=ndc from=50000 to=20000");
    /* the lowering kept greatest(50000, grace 100000) = 100000 */
    CHECK_INT(grace(&h, "NAYA"), 100000);
    /* posted -10000 - reserved 30000 + ndc 20000 < 1 */
    refused(naya, koko, "RACE-AFTER", "NAYA", "KOKO", 1, "AM23");

    TEST_STEP("KOKO accepts the PKR 300.00 payment: ACSC under the grace");
    accept_held(naya, koko, new_id, "RACE-NEW");
    CHECK_INT(h_position_balance(&h, "NAYA"), -40000);
    /* beyond the cap of 20000: grace min(100000, 40000) = 40000 */
    wait_grace(&h, "NAYA", 40000);
    settle(koko, naya, "RACE-BACK", "KOKO", "NAYA", 40000);
    wait_grace(&h, "NAYA", -1); /* back within its cap: the grace ends */

    TEST_STEP("no posting was ever refused; reconcile: every invariant holds");
    CHECK(!h_log_has(&h, "event=posting_refused"), "the database refused an accepted payment");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM reconcile() WHERE status <> 'ok'"), 0);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);
    h_ctl_expect(&h, "ok    positions within their caps");

    client_free(jazz);
    client_free(koko);
    client_free(sada);
    client_free(naya);
    h_cleanup(&h);
    return 0;
}
