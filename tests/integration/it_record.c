/* The switch records what participants send (capture_file) in the format
 * sikka-replay replays: every transfer with its payee's answer, retries and
 * malformed frames; the recording replays against a switch with the same
 * outcomes. */
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "capture.h"
#include "harness.h"

#ifndef SIKKA_REPLAY_BIN
#error "SIKKA_REPLAY_BIN must be defined by the build"
#endif

static void settle_one(struct client *payer, struct client *payee, const char *msg_id,
                       const char *from, const char *to, bool accept, Sikka__V1__Purpose purpose)
{
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = from,
                           .creditor_agent = to,
                           .amount = 12345,
                           .purpose = purpose};
    if (purpose == SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT)
        t.invoice = "INV-R";
    h_send_transfer(payer, &t);
    h_payee_decide(payee, accept, accept ? NULL : "AC04");
    client_envelope_free(h_expect(payer, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_envelope_free(h_expect(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
}

int main(void)
{
    struct harness h;
    h_init(&h, "record");
    char path[400], extra[600];
    snprintf(path, sizeof(path), "%s/recorded.cap", h.workdir);
    snprintf(extra, sizeof(extra), "capture_file = %s\n", path);
    h_config(&h, extra);
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *mezn = h_connect(&h, "MEZN");
    struct client *easy = h_connect(&h, "EASY");

    TEST_STEP("traffic: accepted, refused by the payee, a retry, a malformed frame");
    settle_one(jazz, koko, "REC-1", "JAZZ", "KOKO", true, SIKKA__V1__PURPOSE__BNPL_REPAYMENT);
    settle_one(jazz, koko, "REC-2", "JAZZ", "KOKO", false, SIKKA__V1__PURPOSE__P2P);
    settle_one(mezn, easy, "REC-3", "MEZN", "EASY", true, SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT);
    struct h_transfer again = {.msg_id = "REC-1",
                               .debtor_agent = "JAZZ",
                               .creditor_agent = "KOKO",
                               .amount = 12345,
                               .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT};
    h_send_transfer(jazz, &again);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK(client_send_raw(jazz, "\x00\x00\x00\x03\xff\xff\xff", 7) == 0);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000));
    client_free(jazz);
    client_free(koko);
    client_free(mezn);
    client_free(easy);
    CHECK_INT(h_stop(&h), 0); /* flushes and closes the capture */

    TEST_STEP("the capture holds each message with its payee's answer");
    char err[512];
    struct capture_reader *r = capture_open(path, err, sizeof(err));
    CHECK(r != NULL, "%s", err);
    CHECK_STR(capture_header(r)->source, "sikka-switch");
    int n = 0, rejects = 0, retries = 0, malformed = 0;
    const CaptureRecord *rec;
    while ((rec = capture_next(r, err, sizeof(err))) != NULL) {
        n++;
        if (rec->malformed) {
            malformed++;
            CHECK_STR(rec->participant, "JAZZ");
            continue;
        }
        char dec_err[256];
        static unsigned char mem[8192];
        struct arena a;
        arena_init(&a, mem, sizeof(mem), 1 << 16);
        Envelope *env = codec_unpack(&a, rec->frame.data, rec->frame.len, dec_err, sizeof(dec_err));
        CHECK(env != NULL && env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, "%s",
              dec_err);
        CHECK_STR(env->credit_transfer->msg_id, rec->msg_id);
        CHECK_INT(env->credit_transfer->transfer_id, 0);
        if (rec->retry)
            retries++;
        if (rec->payee_action == SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_REJECT) {
            rejects++;
            CHECK_STR(rec->msg_id, "REC-2");
            CHECK_STR(rec->reject_reason, "AC04");
        }
        arena_reset(&a);
    }
    CHECK(err[0] == '\0', "%s", err);
    capture_close_reader(r);
    CHECK_INT(n, 5);
    CHECK_INT(rejects, 1);
    CHECK_INT(retries, 1);
    CHECK_INT(malformed, 1);

    TEST_STEP("sikka-replay replays the recording with the same outcomes");
    h_config(&h, "");
    h_start(&h);
    char port[16], json[420];
    snprintf(port, sizeof(port), "127.0.0.1:%d", h.port);
    snprintf(json, sizeof(json), "%s/replay.json", h.workdir);
    pid_t pid = fork();
    if (pid == 0) {
        execl(SIKKA_REPLAY_BIN, "sikka-replay", "run", path, "--connect", port, "--pki", h.pki,
              "--speed", "10", "--run-id", "again", "--json", json, "--quiet", (char *)NULL);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st), "sikka-replay ran");
    CHECK_INT(WEXITSTATUS(st), 0);
    json_t *j = json_load_file(json, 0, NULL);
    CHECK(j != NULL, "replay JSON");
    CHECK_INT(json_integer_value(json_object_get(j, "errors")), 0);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'REC-%%-again' AND "
                            "status = 'ACSC'"),
              2);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'REC-%%-again' AND "
                            "status = 'RJCT' AND reason = 'AC04'"),
              1);
    json_decref(j);
    unlink(path);
    unlink(json);
    h_cleanup(&h);
    return 0;
}
