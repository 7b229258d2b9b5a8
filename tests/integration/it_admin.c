/* Admin API and sikka-ctl: every sikka-ctl command against the running
 * switch with the test PKI's operator certificates (changes that need four
 * eyes proposed by one and approved by another: it_foureyes.c tests the
 * rule itself); a client without a certificate, or with a foreign CA's, is
 * refused at the handshake; a participant's certificate too; malformed
 * requests get 4xx with a JSON error; a client that vanishes mid-request
 * does not hurt the switch; every change leaves its audit row, with the
 * operator's name, role and certificate. */
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "https.h"
#include "tls.h"

static int admin_port;

/* One raw request over TLS with the given context; CHECKs an answer came. */
static int raw(SSL_CTX *ctx, const char *method, const char *path, const char *body,
               size_t body_len, struct https_response *resp)
{
    char err[512];
    int rc = https_request(ctx, "127.0.0.1", admin_port, method, path, body, body_len, 5000, resp,
                           err, sizeof(err));
    CHECK(rc == 0, "%s %s: %s", method, path, err);
    fprintf(stderr, "   %s %s -> %d %s", method, path, resp->status, resp->body);
    return resp->status;
}

static void expect_status(SSL_CTX *ctx, const char *method, const char *path, const char *body,
                          int want)
{
    struct https_response resp;
    int got = raw(ctx, method, path, body, body != NULL ? strlen(body) : 0, &resp);
    CHECK_INT(got, want);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    CHECK(json_is_object(j), "the answer is JSON");
    if (want >= 400)
        CHECK(json_is_string(json_object_get(j, "error")), "a JSON error");
    json_decref(j);
    https_response_free(&resp);
}

/* The handshake (or the first read after it, in TLS 1.3) must fail. */
static void expect_refused(SSL_CTX *ctx, const char *what)
{
    struct https_response resp;
    char err[512];
    int rc = https_request(ctx, "127.0.0.1", admin_port, "GET", "/api/v1/status", NULL, 0, 5000,
                           &resp, err, sizeof(err));
    CHECK(rc != 0, "%s: expected a refused handshake, got HTTP %d", what, resp.status);
    fprintf(stderr, "   %s: refused: %s\n", what, err);
}

/* A request sent, then the connection dropped before the answer. */
static void vanish_mid_request(struct harness *h)
{
    SSL_CTX *ctx = h_tls_ctx(h, "operator");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)admin_port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    SSL *ssl = SSL_new(ctx);
    CHECK(ssl != NULL && tls_client_prepare(ssl, "127.0.0.1") == 0 && SSL_set_fd(ssl, fd) == 1);
    CHECK(SSL_connect(ssl) == 1, "handshake");
    static const char req[] = "GET /api/v1/reconcile HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(SSL_write(ssl, req, (int)strlen(req)) == (int)strlen(req));
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
}

int main(void)
{
    struct harness h;
    h_init(&h, "admin");
    h_admin(&h);
    admin_port = h.admin_port;
    /* the switch opens the console before the participant port */
    h_start(&h);

    TEST_STEP("a settled payment to look at");
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct h_transfer t = {
        .msg_id = "ADMIN-1", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 150000};
    h_send_transfer(jazz, &t);
    uint64_t id = h_payee_decide(koko, true, NULL);
    Envelope *e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    char ids[32];
    snprintf(ids, sizeof(ids), "%" PRIu64, id);

    TEST_STEP("reading: status, participants, positions, transfer, fees, windows");
    CHECK_INT(H_CTL(&h, "status"), 0);
    h_ctl_expect(&h, "window:");
    CHECK_INT(H_CTL(&h, "--json", "status"), 0);
    json_t *j = json_loads(h.ctl_out, 0, NULL);
    CHECK(json_is_object(j) && json_is_integer(json_object_get(j, "window")), "status JSON");
    json_decref(j);
    CHECK_INT(H_CTL(&h, "participants"), 0);
    h_ctl_expect(&h, "JAZZ");
    h_ctl_expect(&h, "Suspended Wallet");
    CHECK_INT(H_CTL(&h, "positions"), 0);
    h_ctl_expect(&h, "-1500.00");
    CHECK_INT(H_CTL(&h, "transfer", "show", ids), 0);
    h_ctl_expect(&h, "amount: 1500.00 PKR (150000 paisa)");
    CHECK_INT(H_CTL(&h, "transfer", "show", "999999999"), 1);
    CHECK_INT(H_CTL(&h, "fees"), 0);
    h_ctl_expect(&h, "SUPPLIER_PAYMENT");
    CHECK_INT(H_CTL(&h, "window", "list"), 0);
    h_ctl_expect(&h, "open");

    TEST_STEP("participants: add, refuse a duplicate, suspend, resume, set the cap");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "participant", "add", "TEST", "--name",
                          "Test Wallet", "--kind", "wallet", "--ndc", "1000.00"),
              0);
    h_ctl_expect(&h, "participant TEST added");
    CHECK_INT(h_sql_int(&h, "SELECT ndc FROM participants WHERE code = 'TEST'"), 100000);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "participant", "add", "TEST", "--name", "Again", "--kind",
                       "wallet"),
              1);
    CHECK_INT(H_CTL(&h, "participant", "add", "test", "--name", "x", "--kind", "wallet"), 2);
    CHECK_INT(H_CTL(&h, "participant", "add", "TSTB", "--kind", "wallet"), 2);
    CHECK_INT(H_CTL(&h, "participant", "add", "TSTB", "--name", "x", "--kind", "shop"), 2);
    CHECK_INT(H_CTL(&h, "participant", "suspend", "TEST"), 0);
    h_ctl_expect(&h, "suspended");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'TEST' "
                            "AND status = 'suspended'"),
              1);
    CHECK_INT(H_FOUR_EYES(&h, "operator", "supervisor", "participant", "resume", "TEST"), 0);
    h_ctl_expect(&h, "participant TEST resumed");
    CHECK_INT(H_CTL(&h, "participant", "suspend", "QQQQ"), 1);
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "ndc", "set", "TEST", "2500.50"), 0);
    CHECK_INT(h_sql_int(&h, "SELECT ndc FROM participants WHERE code = 'TEST'"), 250050);
    CHECK_INT(H_CTL(&h, "ndc", "set", "TEST", "1.234"), 2);
    CHECK_INT(H_CTL(&h, "ndc", "set", "TEST", "-5"), 2);
    CHECK_INT(H_CTL(&h, "participant", "show", "TEST"), 0);
    h_ctl_expect(&h, "2500.50 PKR");
    h_ctl_expect(&h, "status: active");

    TEST_STEP("windows: close (id last), report (table and CSV), settle, reconcile");
    CHECK_INT(H_CTL(&h, "window", "close"), 0);
    char window[32];
    snprintf(window, sizeof(window), "%s", h_ctl_last_line(&h));
    int64_t wid = strtoll(window, NULL, 10);
    CHECK(wid > 0, "last line is the window id: \"%s\"", window);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM settlement_windows WHERE id = %" PRId64
                        " AND state = 'closed'",
                        wid),
              1);
    CHECK_INT(H_CTL(&h, "window", "report", window), 0);
    h_ctl_expect(&h, "total: 0.00 PKR");
    h_ctl_expect(&h, "-1500.00");
    CHECK_INT(H_CTL(&h, "window", "report", window, "--csv"), 0);
    CHECK(strncmp(h.ctl_out, "participant,account_id,net,net_pkr,postings\n", 44) == 0, "%s",
          h.ctl_out);
    h_ctl_expect(&h, "JAZZ,");
    CHECK(strncmp(h_ctl_last_line(&h), "total,,0,0.00,1", 15) == 0, "total line: %s",
          h_ctl_last_line(&h));
    CHECK_INT(H_FOUR_EYES(&h, "supervisor2", "supervisor", "window", "settle", window), 0);
    h_ctl_expect(&h, "settled window");
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM settlement_windows WHERE id = %" PRId64
                        " AND state = 'settled'",
                        wid),
              1);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "window", "settle", window), 1);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);
    h_ctl_expect(&h, "reconcile: all");
    CHECK_INT(H_CTL(&h, "positions"), 0);

    TEST_STEP("every change is in the audit trail, by the certificate's operator and role");
    CHECK_INT(H_CTL(&h, "audit", "--limit", "20"), 0);
    h_ctl_expect(&h, "window.settle");
    h_ctl_expect(&h, "supervisor2");
    /* the change's own row is the approver's, with the proposal's id */
    static const struct {
        const char *action, *operator, * role;
        bool proposed;
    } actions[] = {
        {"participant.add", "supervisor2", "supervisor", true},
        {"participant.suspend", "operator", "operator", false},
        {"participant.resume", "supervisor", "supervisor", true},
        {"ndc.set", "supervisor2", "supervisor", true},
        {"window.close", "operator", "operator", false},
        {"window.settle", "supervisor", "supervisor", true},
    };
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        CHECK_INT(h_sql_int(&h,
                            "SELECT count(*) FROM audit_log WHERE operator = '%s' "
                            "AND operator_role = '%s' AND action = '%s' "
                            "AND cert_fingerprint ~ '^[0-9a-f]{64}$' AND cert_serial <> '' "
                            "AND (proposal_id IS NOT NULL) = %s",
                            actions[i].operator, actions[i].role, actions[i].action,
                            actions[i].proposed ? "true" : "false"),
                  1);
    /* four proposals made and approved: two rows each beside the change's */
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log WHERE action = 'proposal.create'"), 4);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log WHERE action = 'proposal.approve'"), 4);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log"), 14);

    TEST_STEP("usage and connection errors: exit 2");
    CHECK_INT(H_CTL(&h, "--help"), 0);
    h_ctl_expect(&h, "window close");
    CHECK_INT(H_CTL(&h, "window", "report", "--help"), 0);
    h_ctl_expect(&h, "--csv");
    CHECK_INT(H_CTL(&h, "frobnicate"), 2);
    CHECK_INT(H_CTL(&h, "window"), 2);
    CHECK_INT(H_CTL(&h, "positions", "--csv"), 2);
    CHECK_INT(H_CTL(&h, "transfer", "show", "abc"), 2);
    CHECK_INT(H_CTL(&h, "status", "--admin", "127.0.0.1:1"), 2);

    TEST_STEP("no certificate, a foreign CA: refused at the handshake");
    char ca[300];
    SSL_CTX *anon = SSL_CTX_new(TLS_client_method());
    CHECK(anon != NULL && SSL_CTX_set_min_proto_version(anon, TLS1_3_VERSION) == 1 &&
          SSL_CTX_load_verify_locations(anon, h_pki(&h, "ca.crt", ca, sizeof(ca)), NULL) == 1);
    SSL_CTX_set_verify(anon, SSL_VERIFY_PEER, NULL);
    expect_refused(anon, "no client certificate");
    SSL_CTX_free(anon);
    SSL_CTX *foreign = h_tls_ctx(&h, "foreign-JAZZ");
    expect_refused(foreign, "foreign CA");
    SSL_CTX_free(foreign);

    TEST_STEP("a participant's certificate: refused in the handshake, nothing changes");
    int64_t windows = h_sql_int(&h, "SELECT count(*) FROM settlement_windows");
    SSL_CTX *participant = h_tls_ctx(&h, "JAZZ");
    expect_refused(participant, "a participant's certificate");
    SSL_CTX_free(participant);
    CHECK(!h_log_has(&h, "event=admin_refused"),
          "the console read a request of the participant before refusing it");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM settlement_windows"), windows);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log"), 14);

    TEST_STEP("malformed requests: 404, 405, 400, 413 (from a supervisor, who may send them)");
    SSL_CTX *op = h_tls_ctx(&h, "supervisor");
    expect_status(op, "GET", "/api/v1/nothing", NULL, 404);
    expect_status(op, "GET", "/no-such-file.js", NULL, 404);
    expect_status(op, "GET", "/api/v1/participants/", NULL, 404);
    expect_status(op, "DELETE", "/api/v1/participants", NULL, 405);
    expect_status(op, "GET", "/api/v1/windows/close", NULL, 405);
    expect_status(op, "GET", "/api/v1/participants/jazz", NULL, 400);
    expect_status(op, "GET", "/api/v1/transfers/0", NULL, 400);
    expect_status(op, "GET", "/api/v1/transfers/99999999999999999999", NULL, 400);
    expect_status(op, "GET", "/api/v1/audit?limit=0", NULL, 400);
    expect_status(op, "GET", "/api/v1/positions?x=1", NULL, 400);
    expect_status(op, "POST", "/api/v1/participants", "{", 400);
    expect_status(op, "POST", "/api/v1/participants", "[]", 400);
    expect_status(op, "POST", "/api/v1/participants",
                  "{\"code\":\"NEWP\",\"name\":\"N\",\"kind\":\"wallet\",\"ndc\":1.5}", 400);
    expect_status(op, "POST", "/api/v1/participants",
                  "{\"code\":\"NEWP\",\"name\":\"N\",\"kind\":\"wallet\",\"extra\":1}", 400);
    expect_status(op, "PUT", "/api/v1/participants/TEST/ndc", "{\"ndc\":-1}", 400);
    expect_status(op, "PUT", "/api/v1/participants/TEST/ndc", "{\"ndc\":\"100\"}", 400);
    expect_status(op, "PUT", "/api/v1/participants/TEST/ndc", NULL, 400);
    expect_status(op, "POST", "/api/v1/windows/close", "{\"force\":true}", 400);
    static char big[70 * 1024];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    expect_status(op, "PUT", "/api/v1/participants/TEST/ndc", big, 413);
    expect_status(op, "GET", "/api/v1/participants/ZZZZ", NULL, 404);
    expect_status(op, "GET", "/api/v1/proposals?state=maybe", NULL, 400);
    expect_status(op, "GET", "/api/v1/proposals/999", NULL, 404);
    expect_status(op, "POST", "/api/v1/proposals/999/approve", NULL, 404);
    expect_status(op, "POST", "/api/v1/proposals/999/reject", "{\"reason\":\"\"}", 400);
    expect_status(op, "POST", "/api/v1/proposals/999/reject", "{\"why\":\"x\"}", 400);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log"), 14);

    TEST_STEP("a client that vanishes mid-request; the console keeps serving");
    for (int i = 0; i < 3; i++)
        vanish_mid_request(&h);
    expect_status(op, "GET", "/api/v1/status", NULL, 200);
    SSL_CTX_free(op);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);

    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
    return 0;
}
