/* The alias directory (Raast ID) against the real daemon: registering (in
 * any of a mobile number's forms), updating, looking up (a masked name,
 * never another participant's account), refusing a participant on another's
 * alias, porting (released by the holder, and expired), deregistering;
 * paying by alias end to end with sikka-wallet printing the masked name;
 * the directory surviving a restart; bad input (malformed numbers,
 * over-long names, control characters, invalid UTF-8) answered FF01; the
 * lookup rate limit; the operators' list masked. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "https.h"
#include "msg.h"

#ifndef SIKKA_WALLET_BIN
#error "SIKKA_WALLET_BIN must be defined by the build"
#endif
#ifndef SIKKA_REPLAY_BIN
#error "SIKKA_REPLAY_BIN must be defined by the build"
#endif

#define NAME   "Muhammad Ali Khan"
#define MASKED "M*** A*** K***"

static int requests;

/* Sends an AliasRequest and returns the answer (kept in *keep, freed by
 * the caller). */
static Sikka__V1__AliasResponse *call(struct client *c, Sikka__V1__AliasOp op, const char *alias,
                                      const char *account, const char *name, Envelope **keep)
{
    char id[32], err[256];
    snprintf(id, sizeof(id), "REQ-%d", ++requests);
    struct msg_alias a;
    CHECK(msg_alias_init(&a, id, op, alias, account, name, err, sizeof(err)) == 0, "%s", err);
    CHECK(client_send(c, &a.env) == 0, "alias request queued");
    *keep = h_expect(c, SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE, 5000);
    Sikka__V1__AliasResponse *r = (*keep)->alias_response;
    CHECK_STR(r->request_id, id);
    CHECK_INT(r->op, op);
    fprintf(stderr, "   op %d %s -> ok=%d %s %s holder=%s masked=%s account=%s pending=%d\n",
            (int)op, alias, r->ok, r->reason, r->text, r->participant, r->masked_name, r->account,
            r->port_pending);
    return r;
}

/* The call succeeds (ok) or fails with reason; the frame is freed. */
static void expect(struct client *c, Sikka__V1__AliasOp op, const char *alias, const char *account,
                   const char *name, const char *reason)
{
    Envelope *e;
    Sikka__V1__AliasResponse *r = call(c, op, alias, account, name, &e);
    if (reason == NULL) {
        CHECK(r->ok, "expected ok, got %s %s", r->reason, r->text);
    } else {
        CHECK(!r->ok, "expected %s, got ok", reason);
        CHECK_STR(r->reason, reason);
    }
    client_envelope_free(e);
}

/* A notice (op ALIAS_NOTICE) arrives on c about alias, held by holder. */
static void expect_notice(struct client *c, const char *alias, const char *holder,
                          const char *text_part)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE, 8000);
    Sikka__V1__AliasResponse *r = e->alias_response;
    fprintf(stderr, "   notice: %s (holder %s)\n", r->text, r->participant);
    CHECK_INT(r->op, SIKKA__V1__ALIAS_OP__ALIAS_NOTICE);
    CHECK_STR(r->request_id, "");
    CHECK_STR(r->alias, alias);
    CHECK_STR(r->participant, holder);
    CHECK(strstr(r->text, text_part) != NULL, "notice text \"%s\" has \"%s\"", r->text, text_part);
    client_envelope_free(e);
}

/* An AliasRequest with the given fields, packed by hand (for what the
 * client library would not send) and sent raw; the MessageReject or the
 * AliasResponse is checked for FF01 and `needle` in its text. */
static void expect_ff01_raw(struct client *c, const Sikka__V1__AliasRequest *rq, const char *needle)
{
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_ALIAS_REQUEST;
    env.alias_request = (Sikka__V1__AliasRequest *)rq;
    size_t len;
    uint8_t *buf = codec_pack_alloc(&env, &len);
    CHECK(buf != NULL);
    CHECK(client_send_raw(c, buf, len) == 0);
    free(buf);
    Envelope *e = h_recv(c, 5000);
    const char *reason, *text;
    if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        reason = e->message_reject->reason;
        text = e->message_reject->text;
    } else {
        CHECK_INT(e->body_case, SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE);
        CHECK(!e->alias_response->ok);
        reason = e->alias_response->reason;
        text = e->alias_response->text;
    }
    fprintf(stderr, "   refused: %s %s\n", reason, text);
    CHECK_STR(reason, "FF01");
    CHECK(strstr(text, needle) != NULL, "\"%s\" names \"%s\"", text, needle);
    client_envelope_free(e);
}

/* ---- sikka-wallet as a child process ---- */

/* sikka-replay with args, its output (stdout and stderr) in out; returns its
 * exit status. */
static int replay(struct harness *h, const char *out, const char *const *args)
{
    const char *argv[40] = {SIKKA_REPLAY_BIN};
    int n = 1;
    for (int i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return h_spawn_wait(h, h_spawn(argv, out, NULL), 60000);
}

#define REPLAY(h, out, ...) replay((h), (out), (const char *const[]){__VA_ARGS__, NULL})

/* sikka-wallet as participant `code` with args; its stdout in out (its
 * stderr beside it, in out.err). */
static pid_t wallet_start(struct harness *h, const char *out, const char *code,
                          const char *const *args)
{
    char connect[64], err[440];
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", h->port);
    snprintf(err, sizeof(err), "%s.err", out);
    setenv("SIKKA_PKI", h->pki, 1);
    const char *argv[40] = {SIKKA_WALLET_BIN, "--connect", connect, "--participant", code,
                            "--timeout-ms",   "10000"};
    int n = 7;
    for (int i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return h_spawn(argv, out, err);
}

/* Waits for the wallet (the test's connections keep running meanwhile);
 * returns its exit status and its stdout in buf. */
static int wallet_wait(struct harness *h, pid_t pid, const char *out, char *buf, size_t len)
{
    int status = h_spawn_wait(h, pid, 20000);
    fprintf(stderr, "   sikka-wallet exit %d: %s", status, h_read_file(out, buf, len));
    return status;
}

#define WALLET(h, out, code, ...)                                                                  \
    wallet_start((h), (out), (code), (const char *const[]){__VA_ARGS__, NULL})

int main(void)
{
    struct harness h;
    h_init(&h, "alias");
    h_admin(&h);
    h_config(&h, "alias_port_expiry_s = 3\nalias_lookup_rate = 1\nalias_lookup_burst = 40\n");
    /* no quiet hours: a request to pay by alias below is RTP Now, whenever the test runs */
    PQclear(h_sql(&h, "UPDATE request_rules SET quiet_start_s = 0, quiet_end_s = 0"));
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *easy = h_connect(&h, "EASY");
    struct client *koko = h_connect(&h, "KOKO");
    Envelope *e;
    Sikka__V1__AliasResponse *r;
    char out[400], text[4096];
    snprintf(out, sizeof(out), "%s/wallet.out", h.workdir);

    TEST_STEP("EASY registers 03001234567 for its account: stored canonical, audited");
    r = call(easy, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "03001234567", "EASY-ACC-1", NAME, &e);
    CHECK(r->ok);
    CHECK_STR(r->alias, "923001234567");
    CHECK_INT(r->type, SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE);
    CHECK_STR(r->participant, "EASY");
    CHECK_STR(r->masked_name, MASKED);
    CHECK_STR(r->account, "EASY-ACC-1"); /* its own: shown */
    client_envelope_free(e);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM aliases WHERE alias = '923001234567' AND "
                            "participant = 'EASY' AND account = 'EASY-ACC-1' AND "
                            "holder_name = '" NAME "' AND alias_type = 'mobile'"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM alias_audit WHERE alias = '923001234567' AND "
                            "action = 'register' AND actor = 'EASY'"),
              1);

    TEST_STEP("the same registration again is ok; another account is DUPL (use update)");
    expect(easy, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "923001234567", "EASY-ACC-1", NAME, NULL);
    expect(easy, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "03001234567", "EASY-ACC-2", NAME, "DUPL");

    TEST_STEP("JAZZ is refused on EASY's alias: register (any form), update, deregister, release");
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "+923001234567", "JAZZ-1", "Someone Else",
           "DUPL");
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_UPDATE, "03001234567", "JAZZ-1", "Someone Else",
           "AG01");
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER, "03001234567", NULL, NULL, "AG01");
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_RELEASE, "03001234567", NULL, NULL, "AG01");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM aliases WHERE participant = 'EASY' AND "
                            "account = 'EASY-ACC-1'"),
              1);

    TEST_STEP("JAZZ looks it up: EASY and the masked name, never EASY's account");
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "923001234567", NULL, NULL, &e);
    CHECK(r->ok);
    CHECK_STR(r->participant, "EASY");
    CHECK_STR(r->masked_name, MASKED);
    CHECK_STR(r->account, "");
    client_envelope_free(e);
    H_WAIT_LOG(&h, 1, 5000, "event=alias_lookup participant=JAZZ");
    CHECK(h_log_has(&h, "alias=********4567 found=yes holder=EASY"), "the lookup logged, masked");

    TEST_STEP("EASY updates its alias to another of its accounts");
    expect(easy, SIKKA__V1__ALIAS_OP__ALIAS_UPDATE, "03001234567", "EASY-ACC-2", NAME, NULL);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM aliases WHERE alias = '923001234567' AND "
                            "account = 'EASY-ACC-2'"),
              1);

    TEST_STEP("sikka-wallet alias lookup prints <CODE> <masked name>");
    pid_t pid = WALLET(&h, out, "JAZZ", "alias", "lookup", "03001234567");
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 0);
    CHECK_STR(text, "EASY " MASKED "\n");

    TEST_STEP("sikka-wallet pay --to 03001234567: forwarded with the real account, the payer "
              "sees only the masked name");
    pid = WALLET(&h, out, "JAZZ", "pay", "--from", "JAZZ-ACC-9", "--to", "03001234567", "--amount",
                 "250.00", "--purpose", "P2P", "--msg-id", "ALIAS-PAY-1");
    e = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 8000);
    CHECK_STR(e->credit_transfer->creditor_agent, "EASY");
    CHECK_STR(e->credit_transfer->creditor_account, "EASY-ACC-2");
    CHECK_STR(e->credit_transfer->creditor_alias, "");
    uint64_t paid = e->credit_transfer->transfer_id;
    client_envelope_free(e);
    h_send_decision(easy, paid, true, NULL);
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 0);
    char want[200];
    snprintf(want, sizeof(want), "PAYEE EASY " MASKED "\nACSC %llu\n", (unsigned long long)paid);
    CHECK_STR(text, want);
    CHECK(strstr(text, "EASY-ACC") == NULL, "no account of EASY's shown to the payer");
    client_envelope_free(h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE id = %llu AND payee = 'EASY' AND "
                        "creditor_account = 'EASY-ACC-2' AND status = 'ACSC' AND amount = 25000",
                        (unsigned long long)paid),
              1);

    TEST_STEP("the same msg_id again, the alias in another form: the same request, the "
              "stored answer (ACSC), nothing posted twice");
    pid = WALLET(&h, out, "JAZZ", "pay", "--from", "JAZZ-ACC-9", "--to", "+923001234567",
                 "--amount", "250.00", "--purpose", "P2P", "--msg-id", "ALIAS-PAY-1");
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 0);
    snprintf(want, sizeof(want), "ACSC %llu\n", (unsigned long long)paid);
    CHECK(strstr(text, want) != NULL, "the stored answer");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'ALIAS-PAY-1'"), 1);
    TEST_STEP("the same msg_id for another payee is AM05");
    pid = WALLET(&h, out, "JAZZ", "pay", "--from", "JAZZ-ACC-9", "--to", "03001234568", "--amount",
                 "250.00", "--purpose", "P2P", "--msg-id", "ALIAS-PAY-1");
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 1);
    CHECK(strncmp(text, "RJCT AM05", 9) == 0, "another alias is another request");

    TEST_STEP("paying an alias nobody registered: RJCT BE23, recorded, no name line");
    pid = WALLET(&h, out, "JAZZ", "pay", "--from", "JAZZ-ACC-9", "--to", "03119999999", "--amount",
                 "1.00", "--purpose", "P2P", "--msg-id", "ALIAS-PAY-2");
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 1);
    CHECK(strncmp(text, "RJCT BE23 ", 10) == 0, "BE23 first and only");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'ALIAS-PAY-2' AND "
                            "status = 'RJCT' AND reason = 'BE23' AND payee = ''"),
              1);

    TEST_STEP("sikka-wallet bulk: an item by alias is resolved like a payment, an unknown "
              "alias is refused (BE23) for its item alone");
    char csv[300];
    snprintf(csv, sizeof(csv), "%s/alias-bulk.csv", h.workdir);
    FILE *cf = fopen(csv, "w");
    CHECK(cf != NULL, "%s", csv);
    fputs("to,amount,purpose,ref,msg_id\n"
          "03001234567,10.00,P2P,,BULK-AL-1\n"
          "03119999999,1.00,P2P,,BULK-AL-2\n",
          cf);
    CHECK(fclose(cf) == 0);
    pid = WALLET(&h, out, "JAZZ", "bulk", csv, "--from", "JAZZ-ACC-9");
    e = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 8000);
    CHECK_STR(e->credit_transfer->msg_id, "BULK-AL-1");
    CHECK_STR(e->credit_transfer->creditor_account, "EASY-ACC-2");
    uint64_t bulk_paid = e->credit_transfer->transfer_id;
    client_envelope_free(e);
    h_send_decision(easy, bulk_paid, true, NULL);
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 1); /* one item refused */
    snprintf(want, sizeof(want), "2 ACSC %llu\n3 RJCT BE23 ", (unsigned long long)bulk_paid);
    CHECK(strncmp(text, want, strlen(want)) == 0, "bulk lines: %s", text);
    CHECK(strstr(text, "EASY-ACC") == NULL, "no account of EASY's shown to the payer");
    client_envelope_free(h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'BULK-AL-1' AND payee = "
                            "'EASY' AND creditor_account = 'EASY-ACC-2' AND status = 'ACSC'"),
              1);

    TEST_STEP("a request to pay sent to an alias: delivered to the holder's participant with "
              "the account; the creditor never sees it");
    pid = WALLET(&h, out, "KOKO", "request", "send", "--to", "+923001234567", "--amount", "5.00",
                 "--purpose", "P2P", "--expires-in", "60");
    e = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY, 8000);
    CHECK_STR(e->request_to_pay->debtor_agent, "EASY");
    CHECK_STR(e->request_to_pay->debtor_account, "EASY-ACC-2");
    CHECK_STR(e->request_to_pay->creditor_agent, "KOKO");
    uint64_t request = e->request_to_pay->request_id;
    client_envelope_free(e);
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 0);
    CHECK(strtoull(text, NULL, 10) == request, "the request id printed: %s", text);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM requests WHERE id = %llu AND debtor_agent = 'EASY' "
                        "AND debtor_account = 'EASY-ACC-2'",
                        (unsigned long long)request),
              1);
    pid = WALLET(&h, out, "KOKO", "request", "send", "--to", "03119999999", "--amount", "5.00",
                 "--purpose", "P2P", "--expires-in", "60");
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 1);
    CHECK(strncmp(text, "RJCT BE23 ", 10) == 0, "an unknown alias: %s", text);

    TEST_STEP("a transfer naming an alias and a creditor agent is FF01");
    {
        struct msg_transfer t;
        struct msg_transfer_fields f = {.msg_id = "ALIAS-PAY-3",
                                        .debtor_agent = "JAZZ",
                                        .debtor_account = "JAZZ-ACC-9",
                                        .creditor_alias = "03001234567",
                                        .amount = 100,
                                        .purpose = SIKKA__V1__PURPOSE__P2P};
        char err[200];
        CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == 0, "%s", err);
        t.ct.creditor_agent = (char *)"EASY";
        CHECK(client_send(jazz, &t.env) == 0);
        Envelope *rep = h_recv(jazz, 5000);
        CHECK_INT(rep->body_case, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT);
        CHECK_STR(rep->status_report->reason, "FF01");
        CHECK(strstr(rep->status_report->text, "creditor_alias") != NULL);
        client_envelope_free(rep);
        t.ct.creditor_agent = (char *)"";
        t.ct.creditor_alias = (char *)"0300-1234567";
        t.ct.msg_id = (char *)"ALIAS-PAY-4";
        CHECK(client_send(jazz, &t.env) == 0);
        rep = h_recv(jazz, 5000);
        CHECK_INT(rep->body_case, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT);
        CHECK_STR(rep->status_report->reason, "FF01");
        CHECK(strstr(rep->status_report->text, "creditor_alias is not a Pakistani mobile") != NULL);
        client_envelope_free(rep);
    }

    TEST_STEP("porting, released: KOKO asks, EASY hears of it and releases, both hear it moved");
    r = call(koko, SIKKA__V1__ALIAS_OP__ALIAS_PORT, "03001234567", "KOKO-ACC-5", "M Ali Khan", &e);
    CHECK(r->ok && r->port_pending);
    CHECK_STR(r->participant, "EASY"); /* still EASY's until released */
    CHECK_STR(r->port_to, "KOKO");
    CHECK_STR(r->account, "");
    client_envelope_free(e);
    expect_notice(easy, "923001234567", "EASY", "KOKO asks for this alias");
    /* a third participant may not port it meanwhile */
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_PORT, "03001234567", "JAZZ-1", NAME, "AG01");
    /* anyone sees that a port waits, not who asks */
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "03001234567", NULL, NULL, &e);
    CHECK(r->port_pending);
    CHECK_STR(r->port_to, "");
    client_envelope_free(e);
    r = call(easy, SIKKA__V1__ALIAS_OP__ALIAS_RELEASE, "03001234567", NULL, NULL, &e);
    CHECK(r->ok);
    CHECK_STR(r->participant, "KOKO");
    CHECK_STR(r->account, ""); /* KOKO's customer's account now: not EASY's to see */
    CHECK(!r->port_pending);
    client_envelope_free(e);
    expect_notice(koko, "923001234567", "KOKO", "ported from EASY to KOKO");
    expect_notice(easy, "923001234567", "KOKO", "ported from EASY to KOKO");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM aliases WHERE alias = '923001234567' AND "
                            "participant = 'KOKO' AND account = 'KOKO-ACC-5' AND port_to IS NULL"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM alias_audit WHERE alias = '923001234567' AND "
                            "action IN ('port_requested', 'port_released')"),
              2);
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "03001234567", NULL, NULL, &e);
    CHECK_STR(r->participant, "KOKO");
    CHECK_STR(r->masked_name, "M*** A*** K***");
    client_envelope_free(e);

    TEST_STEP("porting, expired: JAZZ's CNIC alias asked for by EASY moves after 3 s unreleased");
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "35202-1234567-1", "JAZZ-2", "Ayesha Bibi",
             &e);
    CHECK(r->ok);
    CHECK_STR(r->alias, "3520212345671");
    CHECK_INT(r->type, SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC);
    client_envelope_free(e);
    expect(easy, SIKKA__V1__ALIAS_OP__ALIAS_PORT, "3520212345671", "EASY-7", "Ayesha Bibi", NULL);
    expect_notice(jazz, "3520212345671", "JAZZ", "EASY asks for this alias");
    h_wait_sql_int(&h, 1, 10000,
                   "SELECT count(*) FROM aliases WHERE alias = '3520212345671' AND "
                   "participant = 'EASY' AND account = 'EASY-7'");
    expect_notice(easy, "3520212345671", "EASY", "the port expired");
    expect_notice(jazz, "3520212345671", "EASY", "the port expired");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM alias_audit WHERE alias = '3520212345671' AND "
                            "action = 'port_expired' AND actor IS NULL AND previous = 'JAZZ'"),
              1);

    TEST_STEP("deregistering: only the holder; then the alias is unknown (BE23)");
    expect(easy, SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER, "03001234567", NULL, NULL, "AG01");
    r = call(koko, SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER, "03001234567", NULL, NULL, &e);
    CHECK(r->ok);
    CHECK_STR(r->participant, "");
    client_envelope_free(e);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM aliases WHERE alias = '923001234567'"), 0);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM alias_audit WHERE alias = '923001234567' AND "
                            "action = 'deregister' AND actor = 'KOKO'"),
              1);
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "03001234567", NULL, NULL, "BE23");
    expect(koko, SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER, "03001234567", NULL, NULL, "BE23");
    pid = WALLET(&h, out, "KOKO", "alias", "register", "03001234567", "--account", "KOKO-ACC-5",
                 "--name", NAME);
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 0);
    CHECK_STR(text, "OK 923001234567 KOKO " MASKED "\n");
    pid = WALLET(&h, out, "KOKO", "alias", "deregister", "03001234567");
    CHECK_INT(wallet_wait(&h, pid, out, text, sizeof(text)), 0);
    CHECK_STR(text, "OK 923001234567\n");

    TEST_STEP("bad input: malformed numbers, over-long and blank names, control characters");
    const char *bad[] = {
        "0300123456",    "04001234567", "+9230012345678", "92 3001234567",  "0300-1234567",
        "+92 300 12345", "abc",         "923001234567x",  "00923001234567", "1234-12345678-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, bad[i], NULL, NULL, &e);
        CHECK(!r->ok);
        CHECK_STR(r->reason, "FF01");
        CHECK(strstr(r->text, "not a Pakistani mobile number") != NULL, "%s", r->text);
        client_envelope_free(e);
    }
    char longname[200];
    memset(longname, 'A', 141);
    longname[141] = '\0';
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "03005550000", "JAZZ-3", longname, &e);
    CHECK(!r->ok);
    CHECK_STR(r->reason, "FF01");
    CHECK(strstr(r->text, "name: at most 140 characters") != NULL, "%s", r->text);
    client_envelope_free(e);
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "03005550000", "JAZZ-3", "   ", "FF01");
    expect(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "03005550000", "JAZZ-3", NULL, "FF01");
    {
        Sikka__V1__AliasRequest rq = SIKKA__V1__ALIAS_REQUEST__INIT;
        rq.request_id = (char *)"RAW-1";
        rq.op = SIKKA__V1__ALIAS_OP__ALIAS_REGISTER;
        rq.alias = (char *)"03005550000";
        rq.account = (char *)"JAZZ-3";
        rq.name = (char *)"Ali\xC3\x28Khan"; /* a cut two-byte sequence */
        expect_ff01_raw(jazz, &rq, "alias_request.name is not valid UTF-8");
        rq.name = (char *)"Ali\x01Khan";
        expect_ff01_raw(jazz, &rq, "name contains a control character");
        rq.name = (char *)NAME;
        rq.type = SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC;
        expect_ff01_raw(jazz, &rq, "is a mobile number, not the CNIC");
        rq.type = SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED;
        rq.op = SIKKA__V1__ALIAS_OP__ALIAS_OP_UNSPECIFIED;
        expect_ff01_raw(jazz, &rq, "op must be");
        rq.op = SIKKA__V1__ALIAS_OP__ALIAS_NOTICE;
        expect_ff01_raw(jazz, &rq, "op must be");
        rq.op = SIKKA__V1__ALIAS_OP__ALIAS_REGISTER;
        rq.request_id = (char *)"";
        expect_ff01_raw(jazz, &rq, "request_id is missing");
    }
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM aliases WHERE alias = '923005550000'"), 0);
    /* an Urdu name is masked by characters, not bytes */
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_REGISTER, "03005550000", "JAZZ-3",
             "\xD8\xB9\xD9\x84\xDB\x8C \xD8\xAE\xD8\xA7\xD9\x86", &e);
    CHECK(r->ok);
    CHECK_STR(r->masked_name, "\xD8\xB9*** \xD8\xAE***");
    client_envelope_free(e);

    TEST_STEP("the directory survives a restart (loaded at start) and still answers");
    CHECK_INT(h_stop(&h), 0);
    client_free(jazz);
    client_free(easy);
    client_free(koko);
    h_start(&h);
    H_WAIT_LOG(&h, 1, 5000, "event=aliases_loaded count=2 ");
    jazz = h_connect(&h, "JAZZ");
    r = call(jazz, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "3520212345671", NULL, NULL, &e);
    CHECK(r->ok);
    CHECK_STR(r->participant, "EASY");
    CHECK_STR(r->masked_name, "A*** B***");
    client_envelope_free(e);

    TEST_STEP("lookups beyond the participant's rate are refused with retry");
    int refused = 0;
    for (int i = 0; i < 60; i++) {
        struct msg_alias a;
        char id[32], err[128];
        snprintf(id, sizeof(id), "FLOOD-%d", i);
        CHECK(msg_alias_init(&a, id, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP, "03005550000", NULL, NULL,
                             err, sizeof(err)) == 0);
        CHECK(client_send(jazz, &a.env) == 0);
    }
    for (int i = 0; i < 60; i++) {
        e = h_recv(jazz, 5000);
        if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
            CHECK(e->message_reject->retry);
            CHECK(strstr(e->message_reject->text, "rate limit") != NULL);
            refused++;
        } else {
            CHECK_INT(e->body_case, SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE);
        }
        client_envelope_free(e);
    }
    fprintf(stderr, "   %d of 60 refused\n", refused);
    CHECK(refused >= 19, "a burst of 40 (and a token a second) lets at most 41 through");
    CHECK(h_log_has(&h, "text=\"rate limit: JAZZ may look up 1 aliases a second"));

    TEST_STEP("GET /api/v1/aliases (viewer): names and accounts masked, by participant, paged");
    SSL_CTX *viewer = h_tls_ctx(&h, "viewer");
    struct https_response resp;
    char err[256];
    CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET",
                        "/api/v1/aliases?participant=EASY&limit=10", NULL, 0, 5000, &resp, err,
                        sizeof(err)) == 0,
          "%s", err);
    fprintf(stderr, "   %d %s\n", resp.status, resp.body);
    CHECK_INT(resp.status, 200);
    CHECK(strstr(resp.body, "\"masked_name\": \"A*** B***\"") != NULL ||
          strstr(resp.body, "\"masked_name\":\"A*** B***\"") != NULL);
    CHECK(strstr(resp.body, "Ayesha") == NULL, "no full name");
    CHECK(strstr(resp.body, "EASY-7") == NULL, "no full account");
    CHECK(strstr(resp.body, "JAZZ-3") == NULL, "only EASY's");
    https_response_free(&resp);
    CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET", "/api/v1/aliases?limit=1", NULL,
                        0, 5000, &resp, err, sizeof(err)) == 0,
          "%s", err);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    CHECK(json_is_object(j));
    CHECK_INT(json_array_size(json_object_get(j, "aliases")), 1);
    CHECK_STR(json_string_value(json_object_get(j, "next")), "3520212345671");
    json_decref(j);
    https_response_free(&resp);
    CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET",
                        "/api/v1/aliases?after=3520212345671", NULL, 0, 5000, &resp, err,
                        sizeof(err)) == 0,
          "%s", err);
    CHECK_INT(resp.status, 200);
    CHECK(strstr(resp.body, "923005550000") != NULL && strstr(resp.body, "3520212345671") == NULL);
    https_response_free(&resp);
    CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET", "/api/v1/aliases?participant=x",
                        NULL, 0, 5000, &resp, err, sizeof(err)) == 0,
          "%s", err);
    CHECK_INT(resp.status, 400);
    https_response_free(&resp);
    SSL_CTX_free(viewer);
    CHECK_INT(H_CTL_AS(&h, "viewer", "alias", "of", "EASY"), 0);
    fprintf(stderr, "%s", h.ctl_out);
    h_ctl_expect(&h, "3520212345671");
    h_ctl_expect(&h, "A*** B***");
    CHECK(strstr(h.ctl_out, "Ayesha") == NULL && strstr(h.ctl_out, "923005550000") == NULL);
    CHECK_INT(H_CTL_AS(&h, "viewer", "alias", "list", "--limit", "1"), 0);
    h_ctl_expect(&h, "more: GET /api/v1/aliases?after=3520212345671");

    TEST_STEP("sikka-replay run --by-alias: every creditor paid through the directory");
    {
        /* the generator's accounts (wallets: 03, their index, 7 digits; the
         * bank's: 0399 and 7 digits) as aliases of other accounts, so that
         * the ledger shows the directory's account was the one paid */
        PQclear(h_sql(&h, "INSERT INTO aliases (alias, alias_type, participant, account, "
                          "holder_name) SELECT '923' || lpad((c.i - 1)::text, 2, '0') || "
                          "lpad(a::text, 7, '0'), 'mobile', c.code, 'VIA-ALIAS-' || c.code || a, "
                          "'Replay Customer' FROM unnest(ARRAY['JAZZ', 'EASY', 'SADA', 'NAYA', "
                          "'KOKO']) WITH ORDINALITY c(code, i), generate_series(0, 4) a "
                          "UNION ALL SELECT '92399' || lpad(a::text, 7, '0'), 'mobile', 'MEZN', "
                          "'VIA-ALIAS-MEZN' || a, 'Replay Supplier' FROM generate_series(0, 4) a"));
        CHECK_INT(h_stop(&h), 0);
        client_free(jazz);
        h_start(&h);
        char cap[400], rout[400], connect[64];
        snprintf(cap, sizeof(cap), "%s/alias.cap", h.workdir);
        snprintf(rout, sizeof(rout), "%s/replay.out", h.workdir);
        snprintf(connect, sizeof(connect), "127.0.0.1:%d", h.port);
        CHECK_INT(REPLAY(&h, rout, "gen", "-o", cap, "--count", "80", "--seed", "3", "--accounts",
                         "5", "--retry-rate", "0", "--reject-rate", "0", "--malformed-rate", "0"),
                  0);
        int rc = REPLAY(&h, rout, "run", cap, "--connect", connect, "--pki", h.pki, "--rate", "100",
                        "--sessions", "1", "--run-id", "al", "--by-alias", "--quiet");
        FILE *f = fopen(rout, "r");
        if (f != NULL) {
            size_t n = fread(text, 1, sizeof(text) - 1, f);
            text[n] = '\0';
            fclose(f);
            fprintf(stderr, "%s", text);
        }
        CHECK_INT(rc, 0);
        int64_t all = h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE '%%-al'");
        CHECK(all >= 70, "the run's transfers are in the ledger (%lld)", (long long)all);
        CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE '%%-al' AND "
                                "status = 'ACSC' AND creditor_account LIKE 'VIA-ALIAS-%%'"),
                  all);
        /* the replay's own payees answered; the test's connection is back */
        jazz = h_connect(&h, "JAZZ");
    }

    TEST_STEP("the log holds no full alias and no holder's name");
    CHECK_INT(h_log_count(&h, "923001234567"), 0);
    CHECK_INT(h_log_count(&h, "Muhammad"), 0);

    client_free(jazz);
    h_cleanup(&h);
    fprintf(stderr, "PASS it_alias\n");
    return 0;
}
