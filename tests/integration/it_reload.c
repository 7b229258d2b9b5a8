/* SIGHUP: the switch re-reads its config and TLS material; reloadable
 * settings take effect for the next transfer, a change that needs a restart
 * is refused with the old config kept, and a broken file changes nothing. */
#include <signal.h>
#include <stdbool.h>

#include "harness.h"
#include "transfer.h"

/* Sends a transfer the payee never answers; returns ms until the AB05. */
static int64_t timeout_ms(struct client *jazz, struct client *koko, const char *msg_id)
{
    struct h_transfer t = {
        .msg_id = msg_id, .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    int64_t t0 = transfer_now_ms();
    h_send_transfer(jazz, &t);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000));
    Envelope *e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 10000);
    CHECK_STR(e->status_report->reason, "AB05");
    client_envelope_free(e);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    return transfer_now_ms() - t0;
}

/* SIGHUP, then waits for the switch to log the outcome it should have:
 * "event=config_reloaded" when applied, else "event=reload_failed" (either
 * is logged once the switch is done with the reload). */
static void reload(struct harness *h, bool applied)
{
    static const char *const outcomes[] = {"event=config_reloaded", "event=reload_failed"};
    int before[2] = {h_log_count(h, outcomes[0]), h_log_count(h, outcomes[1])};
    CHECK(kill(h->pid, SIGHUP) == 0);
    int64_t deadline = h_now_ms() + 5000;
    for (;;) {
        int now[2] = {h_log_count(h, outcomes[0]), h_log_count(h, outcomes[1])};
        if (now[0] > before[0] || now[1] > before[1]) {
            CHECK(now[applied ? 0 : 1] > before[applied ? 0 : 1],
                  "the reload was %s, expected it %s", applied ? "refused" : "applied",
                  applied ? "applied" : "refused");
            return;
        }
        CHECK(h_now_ms() < deadline, "no outcome of the reload logged within 5 s");
        h_pump(h, 20);
    }
}

int main(void)
{
    struct harness h;
    h_init(&h, "reload");
    h_config(&h, "payee_timeout_ms = 3000\n");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("payee_timeout_ms 3000 -> 400 by SIGHUP: the next transfer times out sooner");
    int64_t before = timeout_ms(jazz, koko, "HUP-1");
    CHECK(before >= 2900, "%lld ms", (long long)before);
    h_config(&h, "payee_timeout_ms = 400\n");
    h_write_config(&h);
    reload(&h, true);
    int64_t after = timeout_ms(jazz, koko, "HUP-2");
    CHECK(after < 1500, "%lld ms after the reload", (long long)after);

    TEST_STEP("a setting that needs a restart is refused; the old config stays");
    h_config(&h, "payee_timeout_ms = 3000\nposting_connections = 3\n");
    h_write_config(&h);
    reload(&h, false);
    after = timeout_ms(jazz, koko, "HUP-3");
    CHECK(after < 1500, "still the old timeout: %lld ms", (long long)after);

    TEST_STEP("a broken file is refused; the switch keeps serving");
    h_config(&h, "payee_timeout_ms = forever\n");
    h_write_config(&h);
    reload(&h, false);
    CHECK(h_running(&h));
    after = timeout_ms(jazz, koko, "HUP-4");
    CHECK(after < 1500, "%lld ms", (long long)after);

    client_free(jazz);
    client_free(koko);
    h_config(&h, "");
    h_cleanup(&h);
    return 0;
}
