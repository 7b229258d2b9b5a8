#include "clock.h"
#include "harness.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SIKKA_SWITCH_BIN
#error "SIKKA_SWITCH_BIN must be defined by the build"
#endif
#ifndef SIKKA_CTL_BIN
#error "SIKKA_CTL_BIN must be defined by the build"
#endif

static struct harness *current;
static bool finished;

static void h_check_strict(const Envelope *e);

const char *h_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "integration test needs %s: run it through tests/run.sh\n", name);
        exit(1);
    }
    return v;
}

static void on_exit_dump(void)
{
    if (current == NULL || finished)
        return;
    /* a CHECK failed: show why the switch did what it did, leave nothing running */
    h_dump_log(current);
    if (current->peer_pid > 0 || current->peer_log_path[0] != '\0') {
        h_swap_peer(current);
        h_dump_log(current);
        h_swap_peer(current);
    }
    pid_t *pids[] = {&current->pid, &current->peer_pid};
    for (size_t i = 0; i < 2; i++) {
        if (*pids[i] > 0) {
            kill(*pids[i], SIGKILL);
            waitpid(*pids[i], NULL, 0);
            *pids[i] = 0;
        }
    }
}

static void die_sql(PGconn *c, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, PQerrorMessage(c));
    exit(1);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_db(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die_sql(c, conninfo);
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "SQL failed: %s\n%s\n", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

/* Roles other than the superuser connect over TCP with their password, as
 * in production. */
static void tcp_conninfo(struct harness *h, const char *user, const char *password, char *buf,
                         size_t len)
{
    snprintf(buf, len, "host=127.0.0.1 port=%s user=%s password=%s dbname=%s",
             h_env("SIKKA_TEST_PGPORT"), user, password, h->dbname);
}

void h_init(struct harness *h, const char *name)
{
    memset(h, 0, sizeof(*h));
    signal(SIGPIPE, SIG_IGN);
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->dbname, sizeof(h->dbname), "t_%s_%d", name, (int)getpid());
    snprintf(h->pki, sizeof(h->pki), "%s", h_env("SIKKA_TEST_PKI"));
    const char *host = h_env("SIKKA_TEST_PGHOST"), *port = h_env("SIKKA_TEST_PGPORT");
    const char *super = h_env("SIKKA_TEST_PGUSER"), *tmpl = h_env("SIKKA_TEST_TEMPLATE");
    const char *pw = h_env("SIKKA_TEST_SWITCH_PASSWORD");
    current = h;
    finished = false;
    static bool hooked; /* a test may run several harnesses, one after another */
    if (!hooked)
        atexit(on_exit_dump);
    hooked = true;

    char admin[512];
    snprintf(admin, sizeof(admin), "host=%s port=%s user=%s dbname=postgres", host, port, super);
    PGconn *c = connect_db(admin);
    char sql[1024];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", h->dbname);
    exec_ok(c, sql);
    /* CREATE DATABASE ... TEMPLATE needs the template unused; retry briefly
     * when another test is cloning it at the same moment */
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE %s", h->dbname, tmpl);
    for (int attempt = 0;; attempt++) {
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok && attempt >= 50) {
            fprintf(stderr, "%s: %s\n", sql, PQresultErrorMessage(r));
            exit(1);
        }
        PQclear(r);
        if (ok)
            break;
        usleep(100000);
    }
    /* CREATE DATABASE copies the template's contents but not the database's
     * own privileges: the clone would let PUBLIC connect and create temporary
     * tables. Give it the template's, as the migrations left them. */
    snprintf(
        sql, sizeof(sql),
        "DO $$ DECLARE g record; BEGIN "
        "REVOKE ALL ON DATABASE %s FROM PUBLIC; "
        "FOR g IN SELECT a.privilege_type, a.grantee FROM pg_database d, "
        "aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
        "WHERE d.datname = '%s' LOOP "
        "EXECUTE format('GRANT %%s ON DATABASE %s TO %%s', g.privilege_type, "
        "CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END); "
        "END LOOP; END $$",
        h->dbname, tmpl, h->dbname);
    exec_ok(c, sql);
    PQfinish(c);

    snprintf(h->super_conninfo, sizeof(h->super_conninfo), "host=%s port=%s user=%s dbname=%s",
             host, port, super, h->dbname);
    tcp_conninfo(h, "sikka_switch", pw, h->conninfo, sizeof(h->conninfo));
    h->db = connect_db(h->super_conninfo);
    exec_ok(h->db, "INSERT INTO participants (code, name, kind, ndc) VALUES "
                   "('JAZZ', 'JazzCash', 'wallet', 500000000),"
                   "('EASY', 'Easypaisa', 'wallet', 500000000),"
                   "('SADA', 'SadaPay', 'wallet', 500000000),"
                   "('NAYA', 'NayaPay', 'wallet', 500000000),"
                   "('KOKO', 'Koko BNPL', 'bnpl', 500000000),"
                   "('MEZN', 'Meezan Bank', 'bank', 5000000000)");
    exec_ok(h->db, "INSERT INTO participants (code, name, kind, status, ndc) VALUES "
                   "('SUSP', 'Suspended Wallet', 'wallet', 'suspended', 100000000)");

    snprintf(h->workdir, sizeof(h->workdir), "/tmp/sikka-it-%s-%d", name, (int)getpid());
    mkdir(h->workdir, 0700);
    snprintf(h->config_path, sizeof(h->config_path), "%s/sikka.conf", h->workdir);
    snprintf(h->log_path, sizeof(h->log_path), "%s/switch.log", h->workdir);
    h->notices = client_notices_new(0);
    CHECK(h->notices != NULL, "out of memory");
    h->base = event_base_new();
    CHECK(h->base != NULL);
}

void h_config(struct harness *h, const char *extra)
{
    snprintf(h->extra_config, sizeof(h->extra_config), "%s", extra);
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "%s", strerror(errno));
    socklen_t len = sizeof(sin);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

void h_write_config(struct harness *h)
{
    if (h->port == 0)
        h->port = h_free_port();
    FILE *f = fopen(h->config_path, "w");
    CHECK(f != NULL);
    fprintf(f,
            "listen = 127.0.0.1:%d\n"
            "tls_cert = %s/switch.crt\n"
            "tls_key = %s/switch.key\n"
            "tls_ca = %s/ca.crt\n"
            "database_url = \"%s\"\n",
            h->port, h->pki, h->pki, h->pki, h->conninfo);
    /* test defaults, unless the test's own lines set them */
    static const char *const defaults[][2] = {
        {"admin_listen", "\"\""}, /* the console is off unless a test turns it on */
        {"log_level", "debug"},      {"payee_timeout_ms", "1500"}, {"drain_timeout_ms", "5000"},
        {"reconnect_grace_ms", "0"}, /* a payee not connected: AB08 at once */
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (strcmp(defaults[i][0], "admin_listen") == 0 && h->admin_addr[0] != '\0')
            continue;
        char key[64];
        snprintf(key, sizeof(key), "%s =", defaults[i][0]);
        if (strstr(h->extra_config, key) == NULL)
            fprintf(f, "%s = %s\n", defaults[i][0], defaults[i][1]);
    }
    /* the test PKI's revocation list, as a deployment loads its CA's */
    if (strstr(h->extra_config, "tls_crl =") == NULL)
        fprintf(f, "tls_crl = \"%s/crl.pem\"\n", h->pki);
    if (h->admin_addr[0] != '\0')
        fprintf(f, "admin_listen = %s\n", h->admin_addr);
    fprintf(f, "%s\n", h->extra_config);
    fclose(f);
}

/* Writes h's config and starts sikka-switch with it, its output in h's log. */
static pid_t spawn_switch(struct harness *h)
{
    h_write_config(h);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(SIKKA_SWITCH_BIN, "sikka-switch", "-c", h->config_path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

void h_swap_peer(struct harness *h)
{
    int port = h->port;
    h->port = h->peer_port;
    h->peer_port = port;
    pid_t pid = h->pid;
    h->pid = h->peer_pid;
    h->peer_pid = pid;
    char path[300];
    memcpy(path, h->config_path, sizeof(path));
    memcpy(h->config_path, h->peer_config_path, sizeof(path));
    memcpy(h->peer_config_path, path, sizeof(path));
    memcpy(path, h->log_path, sizeof(path));
    memcpy(h->log_path, h->peer_log_path, sizeof(path));
    memcpy(h->peer_log_path, path, sizeof(path));
}

void h_start_peer(struct harness *h)
{
    CHECK(h->peer_pid == 0, "second switch already running");
    if (h->peer_config_path[0] == '\0') {
        snprintf(h->peer_config_path, sizeof(h->peer_config_path), "%s/sikka-peer.conf",
                 h->workdir);
        snprintf(h->peer_log_path, sizeof(h->peer_log_path), "%s/switch-peer.log", h->workdir);
    }
    h_swap_peer(h);
    if (h->port == 0)
        h->port = h_free_port();
    h->pid = spawn_switch(h);
    h_swap_peer(h);
}

/* Lines of the switch's log holding both a and b. */
static int h_log_count_lines(struct harness *h, const char *a, const char *b)
{
    FILE *f = fopen(h->log_path, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, a) != NULL && strstr(line, b) != NULL;
    fclose(f);
    return n;
}

void h_start(struct harness *h)
{
    CHECK(h->pid == 0, "switch already running");
    pid_t pid = spawn_switch(h);
    h->pid = pid;
    /* ready when this process says it listens: an open port alone could be
     * another test's switch that took the same free port first (this one
     * then fails to bind and exits) */
    char ready[64];
    snprintf(ready, sizeof(ready), " pid=%d\n", (int)pid);
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            h->pid = 0;
            CHECK(false, "sikka-switch exited during start (status %d)", st);
        }
        if (h_log_count_lines(h, "event=ready role=active", ready) > 0 && port_open(h->port))
            return;
        usleep(50000);
    }
    CHECK(false, "sikka-switch did not accept connections within 10 s");
}

bool h_running(struct harness *h)
{
    if (h->pid <= 0)
        return false;
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
        h->pid = 0;
        return false;
    }
    return true;
}

int h_wait_exit(struct harness *h, int timeout_ms)
{
    CHECK(h->pid > 0, "switch not running");
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        CHECK(r >= 0, "waitpid %d: %s", (int)h->pid, strerror(errno));
        if (r == h->pid) {
            h->pid = 0;
            CHECK(WIFEXITED(st), "switch died by signal %d", WTERMSIG(st));
            return WEXITSTATUS(st);
        }
        /* still running: the failed CHECK exits, and on_exit_dump kills and
         * reaps it, so nothing is left behind */
        CHECK(h_now_ms() < deadline, "switch (pid %d) did not exit within %d ms", (int)h->pid,
              timeout_ms);
        /* pace the poll; connections on h->base keep answering meanwhile */
        if (h->base != NULL)
            h_pump(h, 20);
        else
            usleep(20000);
    }
}

int h_stop(struct harness *h)
{
    CHECK(h->pid > 0, "switch not running");
    CHECK(kill(h->pid, SIGTERM) == 0, "SIGTERM to %d: %s", (int)h->pid, strerror(errno));
    return h_wait_exit(h, 15000);
}

void h_kill(struct harness *h)
{
    CHECK(h->pid > 0, "switch not running");
    kill(h->pid, SIGKILL);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
}

void h_cleanup(struct harness *h)
{
    h_check_strict(NULL); /* frames taken with client_recv directly, too */
    for (int i = 0; i < 2; i++) {
        if (h->pid > 0) {
            int code = h_stop(h);
            CHECK(code == 0, "switch exited %d after SIGTERM", code);
        }
        h_swap_peer(h); /* the second switch, then back */
    }
    if (h->db != NULL)
        PQfinish(h->db);
    h->db = NULL;
    char admin[512];
    snprintf(admin, sizeof(admin), "host=%s port=%s user=%s dbname=postgres",
             h_env("SIKKA_TEST_PGHOST"), h_env("SIKKA_TEST_PGPORT"), h_env("SIKKA_TEST_PGUSER"));
    PGconn *c = connect_db(admin);
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", h->dbname);
    exec_ok(c, sql);
    PQfinish(c);
    unlink(h->config_path);
    unlink(h->log_path);
    if (h->peer_config_path[0] != '\0') {
        unlink(h->peer_config_path);
        unlink(h->peer_log_path);
    }
    rmdir(h->workdir);
    if (h->base != NULL)
        event_base_free(h->base);
    h->base = NULL;
    client_notices_free(h->notices);
    h->notices = NULL;
    finished = true;
}

const char *h_pki(struct harness *h, const char *file, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", h->pki, file);
    return buf;
}

SSL_CTX *h_tls_ctx(struct harness *h, const char *base)
{
    char cert[400], key[400], ca[400], file[96], err[512];
    snprintf(file, sizeof(file), "%s.crt", base);
    h_pki(h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", base);
    h_pki(h, file, key, sizeof(key));
    SSL_CTX *ctx =
        tls_client_ctx_new(cert, key, h_pki(h, "ca.crt", ca, sizeof(ca)), err, sizeof(err));
    CHECK(ctx != NULL, "%s: %s", base, err);
    return ctx;
}

struct client *h_connect_files(struct harness *h, const char *cert, const char *key, char *err,
                               size_t errlen)
{
    char ca[300];
    struct client_opts o = {
        .host = "127.0.0.1",
        .port = h->port,
        .cert = cert,
        .key = key,
        .ca = h_pki(h, "ca.crt", ca, sizeof(ca)),
        .await_ready = true,
        .notices = h->notices,
    };
    SSL_CTX *ctx = client_ssl_ctx(&o, err, errlen);
    if (ctx == NULL)
        return NULL;
    struct client *c = client_connect_sync(h->base, ctx, &o, 5000, err, errlen);
    SSL_CTX_free(ctx);
    return c;
}

struct client *h_connect(struct harness *h, const char *code)
{
    char cert[300], key[300], file[32], err[512];
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(h, file, key, sizeof(key));
    struct client *c = h_connect_files(h, cert, key, err, sizeof(err));
    CHECK(c != NULL, "connect as %s: %s", code, err);
    return c;
}

/* The whole suite is the test that everything the switch sends decodes
 * under a strict proto3 decoder: the client library refuses (and counts)
 * any frame that does not, and every frame handed to a test is checked once
 * more here. */
static void h_check_strict(const Envelope *e)
{
    const char *why;
    uint64_t refused = client_refused_frames(&why);
    CHECK(refused == 0, "the client refused %llu frame(s) from the switch, the last: %s",
          (unsigned long long)refused, why);
    if (e != NULL) {
        char err[300];
        CHECK(codec_check_strict(&e->base, err, sizeof(err)) == 0,
              "a %s from the switch fails a strict proto3 decoder: %s", codec_body_name(e), err);
    }
}

Envelope *h_recv(struct client *c, int timeout_ms)
{
    Envelope *e = client_recv(c, timeout_ms);
    h_check_strict(e);
    CHECK(e != NULL, "no frame within %d ms (closed=%d: %s)", timeout_ms, client_is_closed(c),
          client_close_reason(c));
    return e;
}

Envelope *h_expect(struct client *c, Sikka__V1__Envelope__BodyCase body, int timeout_ms)
{
    Envelope *e = h_recv(c, timeout_ms);
    if ((int)e->body_case != (int)body && e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT)
        CHECK(false, "expected body %d, got message_reject %s: %s", (int)body,
              e->message_reject->reason, e->message_reject->text);
    CHECK((int)e->body_case == (int)body, "expected body %d, got %s", (int)body,
          codec_body_name(e));
    return e;
}

bool h_silent(struct client *c, int timeout_ms)
{
    /* "Nothing arrives" has no event to wait for: only a bound can decide
     * it. So the wait is bounded, but it watches the connection the whole
     * time: a frame or a close ends it at once (and fails), and silence is
     * only declared once the deadline has passed. client_recv returns early
     * on either, hence the loop over what is left of the time. */
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - h_now_ms();
        if (left <= 0)
            return true;
        Envelope *e = client_recv(c, (int)left);
        h_check_strict(e);
        if (e != NULL) {
            fprintf(stderr, "unexpected frame: %s\n", codec_body_name(e));
            client_envelope_free(e);
            return false;
        }
        if (client_is_closed(c)) {
            fprintf(stderr, "the connection closed: %s\n", client_close_reason(c));
            return false;
        }
    }
}

/* text with every decimal occurrence of id replaced by "N", into buf. */
static const char *blank_id(const char *text, uint64_t id, char *buf, size_t len)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%llu", (unsigned long long)id);
    size_t dl = strlen(digits), o = 0;
    for (const char *p = text; *p != '\0' && o + 2 < len;) {
        if (id != 0 && strncmp(p, digits, dl) == 0) {
            buf[o++] = 'N';
            p += dl;
        } else {
            buf[o++] = *p++;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* The bytes of e as it would be sent, with what names the question (id,
 * the message answered, the time) blanked; into buf, returns the length. */
static size_t blank_answer(const Envelope *e, uint64_t id, uint8_t *buf, size_t len)
{
    char text[1024];
    Envelope env = *e;
    Sikka__V1__MessageReject mr;
    Sikka__V1__StatusReport sr;
    if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        mr = *e->message_reject;
        mr.text = (char *)blank_id(mr.text, id, text, sizeof(text));
        mr.ref_transfer_id = mr.ref_transfer_id == id ? 0 : mr.ref_transfer_id;
        mr.ref_msg_id = (char *)"";
        env.message_reject = &mr;
    } else {
        CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "got %s",
              codec_body_name(e));
        sr = *e->status_report;
        sr.text = (char *)blank_id(sr.text, id, text, sizeof(text));
        sr.original_transfer_id = sr.original_transfer_id == id ? 0 : sr.original_transfer_id;
        sr.transfer_id = 0; /* the answered message's own */
        sr.original_msg_id = (char *)"";
        sr.original_end_to_end_id = (char *)"";
        sr.settled_at_ms = 0;
        env.status_report = &sr;
    }
    size_t n = sikka__v1__envelope__get_packed_size(&env);
    CHECK(n <= len, "an answer of %zu bytes", n);
    return sikka__v1__envelope__pack(&env, buf);
}

void h_check_same_answer(const Envelope *a, uint64_t id_a, const Envelope *b, uint64_t id_b)
{
    CHECK(a->body_case == b->body_case, "answers differ: %s and %s", codec_body_name(a),
          codec_body_name(b));
    uint8_t pa[2048], pb[2048];
    size_t na = blank_answer(a, id_a, pa, sizeof(pa));
    size_t nb = blank_answer(b, id_b, pb, sizeof(pb));
    const char *ta = a->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT
                         ? a->message_reject->text
                         : a->status_report->text;
    const char *tb = b->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT
                         ? b->message_reject->text
                         : b->status_report->text;
    CHECK(na == nb && memcmp(pa, pb, na) == 0,
          "the answers about %llu (\"%s\") and %llu (\"%s\") tell them apart",
          (unsigned long long)id_a, ta, (unsigned long long)id_b, tb);
}

void h_send_transfer(struct client *c, const struct h_transfer *t)
{
    Sikka__V1__CreditTransfer ct = SIKKA__V1__CREDIT_TRANSFER__INIT;
    ct.msg_id = (char *)t->msg_id;
    ct.end_to_end_id = (char *)t->msg_id;
    ct.debtor_agent = (char *)t->debtor_agent;
    ct.debtor_account = (char *)(t->debtor_account ? t->debtor_account : "03001234567");
    ct.creditor_agent = (char *)t->creditor_agent;
    ct.creditor_account = (char *)(t->creditor_account ? t->creditor_account : "03219876543");
    ct.amount = t->amount;
    ct.currency = (char *)(t->currency ? t->currency : "PKR");
    ct.purpose = t->purpose ? t->purpose : SIKKA__V1__PURPOSE__P2P;
    Sikka__V1__Remittance rmt = SIKKA__V1__REMITTANCE__INIT;
    Sikka__V1__LoanInstalment loan = SIKKA__V1__LOAN_INSTALMENT__INIT;
    Sikka__V1__Invoice inv = SIKKA__V1__INVOICE__INIT;
    if (t->loan_id != NULL) {
        loan.loan_id = (char *)t->loan_id;
        loan.instalment = t->instalment;
        rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        rmt.loan = &loan;
        ct.remittance = &rmt;
    } else if (t->invoice != NULL) {
        inv.invoice_number = (char *)t->invoice;
        rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_INVOICE;
        rmt.invoice = &inv;
        ct.remittance = &rmt;
    }
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    env.credit_transfer = &ct;
    CHECK(client_send(c, &env) == 0, "send transfer %s", t->msg_id);
}

void h_send_payment(struct client *c, const char *msg_id, const char *from, const char *to,
                    int64_t amount)
{
    struct h_transfer t = {
        .msg_id = msg_id, .debtor_agent = from, .creditor_agent = to, .amount = amount};
    h_send_transfer(c, &t);
}

void h_send_decision_text(struct client *c, uint64_t transfer_id, bool accept, const char *reason,
                          const char *text)
{
    Sikka__V1__PayeeDecision d = SIKKA__V1__PAYEE_DECISION__INIT;
    d.transfer_id = transfer_id;
    d.accept = accept;
    d.reason = (char *)(reason ? reason : "");
    d.text = (char *)(text ? text : "");
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_DECISION;
    env.decision = &d;
    CHECK(client_send(c, &env) == 0, "send decision");
}

void h_send_decision(struct client *c, uint64_t transfer_id, bool accept, const char *reason)
{
    h_send_decision_text(c, transfer_id, accept, reason, NULL);
}

void h_send_return(struct client *c, const char *msg_id, uint64_t original_transfer_id,
                   int64_t amount, const char *reason, const char *text)
{
    Sikka__V1__PaymentReturn pr = SIKKA__V1__PAYMENT_RETURN__INIT;
    pr.msg_id = (char *)msg_id;
    pr.original_transfer_id = original_transfer_id;
    pr.amount = amount;
    pr.reason = (char *)(reason ? reason : "");
    pr.text = (char *)(text ? text : "");
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN;
    env.payment_return = &pr;
    CHECK(client_send(c, &env) == 0, "send return %s", msg_id);
}

uint64_t h_payee_decide(struct client *payee, bool accept, const char *reason)
{
    Envelope *e = h_expect(payee, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = e->credit_transfer->transfer_id;
    CHECK(id != 0, "forwarded transfer carries its id");
    client_envelope_free(e);
    h_send_decision(payee, id, accept, reason);
    return id;
}

uint64_t h_expect_report(struct client *c, const char *msg_id, Sikka__V1__TxStatus status,
                         const char *reason)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    const Sikka__V1__StatusReport *r = e->status_report;
    CHECK_STR(r->original_msg_id, msg_id);
    CHECK(r->status == status, "%s: status %d (%s %s), want %d", msg_id, r->status, r->reason,
          r->text, status);
    CHECK_STR(r->reason, reason);
    if (reason[0] != '\0')
        fprintf(stderr, "   %s: %s %s\n", msg_id, r->reason, r->text);
    uint64_t id = r->transfer_id;
    client_envelope_free(e);
    return id;
}

static PGresult *vsql(struct harness *h, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static PGresult *vsql(struct harness *h, const char *fmt, va_list ap)
{
    char sql[4096];
    vsnprintf(sql, sizeof(sql), fmt, ap);
    PGresult *r = PQexec(h->db, sql);
    ExecStatusType st = PQresultStatus(r);
    CHECK(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "SQL %s: %s", sql,
          PQresultErrorMessage(r));
    return r;
}

PGresult *h_sql(struct harness *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = vsql(h, fmt, ap);
    va_end(ap);
    return r;
}

int64_t h_sql_int(struct harness *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = vsql(h, fmt, ap);
    va_end(ap);
    CHECK(PQntuples(r) == 1 && PQnfields(r) >= 1, "expected one value");
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

int64_t h_position_balance(struct harness *h, const char *code)
{
    return h_sql_int(
        h, "SELECT balance FROM accounts WHERE participant = '%s' AND kind = 'position'", code);
}

PGresult *h_query_as_switch(struct harness *h, const char *sql, char *err, size_t errlen)
{
    /* a connection of its own per call: the switch's rights, nothing the
     * superuser connection h->db has set or left open */
    PGconn *c = connect_db(h->conninfo);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        err[0] = '\0';
    } else {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        r = NULL;
    }
    PQfinish(c);
    return r;
}

const char *h_sql_as_switch(struct harness *h, const char *sql, char *err, size_t errlen)
{
    PQclear(h_query_as_switch(h, sql, err, errlen));
    return err;
}

PGconn *h_connect_as(struct harness *h, const char *user, const char *password)
{
    char conninfo[512];
    tcp_conninfo(h, user, password, conninfo, sizeof(conninfo));
    PGconn *c = PQconnectdb(conninfo);
    CHECK(PQstatus(c) == CONNECTION_OK, "log in as %s: %s", user, PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

int h_sql_attempt(PGconn *c, const char *sql, char sqlstate[6], char *err, size_t errlen)
{
    exec_ok(c, "BEGIN");
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    snprintf(sqlstate, 6, "00000");
    err[0] = '\0';
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(sqlstate, 6, "%s", state != NULL ? state : "?????");
        snprintf(err, errlen, "%s", msg != NULL ? msg : PQerrorMessage(c));
        rc = -1;
    }
    PQclear(r);
    exec_ok(c, "ROLLBACK");
    return rc;
}

void h_dump_log(struct harness *h)
{
    FILE *f = fopen(h->log_path, "r");
    if (f == NULL)
        return;
    /* the last ~60 lines */
    static char lines[60][1024];
    int n = 0;
    while (fgets(lines[n % 60], sizeof(lines[0]), f) != NULL)
        n++;
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", h->log_path);
    for (int i = n > 60 ? n - 60 : 0; i < n; i++)
        fputs(lines[i % 60], stderr);
    fprintf(stderr, "----\n");
}

int h_log_count(struct harness *h, const char *needle)
{
    return h_log_count_lines(h, needle, needle);
}

bool h_log_has(struct harness *h, const char *needle)
{
    return h_log_count(h, needle) > 0;
}

int64_t h_now_ms(void)
{
    return mono_ms();
}

void h_pump(struct harness *h, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(h->base, &tv);
    event_base_dispatch(h->base);
}

void h_wait_sql_int(struct harness *h, int64_t want, int timeout_ms, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    int64_t deadline = h_now_ms() + timeout_ms, got;
    while ((got = h_sql_int(h, "%s", sql)) != want) {
        CHECK(h_now_ms() < deadline, "%s: still %lld after %d ms, want %lld", sql, (long long)got,
              timeout_ms, (long long)want);
        h_pump(h, 20);
    }
}

void h_wait_log(struct harness *h, int min, int timeout_ms, const char *const *needles)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int n = 0;
        for (size_t i = 0; needles[i] != NULL; i++)
            n += h_log_count(h, needles[i]);
        if (n >= min)
            return;
        CHECK(h_now_ms() < deadline, "fewer than %d lines with \"%s\"%s in the log after %d ms",
              min, needles[0], needles[1] != NULL ? " (or the others)" : "", timeout_ms);
        h_pump(h, 20);
    }
}

void h_admin(struct harness *h)
{
    h->admin_port = h_free_port();
    snprintf(h->admin_addr, sizeof(h->admin_addr), "127.0.0.1:%d", h->admin_port);
}

int h_ctl(struct harness *h, const char *const *args)
{
    return h_ctl_as(h, "operator", args);
}

int h_ctl_as(struct harness *h, const char *name, const char *const *args)
{
    CHECK(h->admin_addr[0] != '\0', "h_admin() before h_start() turns the console on");
    char cert[512], key[512], ca[300], file[128];
    snprintf(file, sizeof(file), "%s.crt", name);
    h_pki(h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", name);
    h_pki(h, file, key, sizeof(key));
    const char *argv[64] = {"sikka-ctl", "--admin", h->admin_addr,
                            "--cert",    cert,      "--key",
                            key,         "--ca",    h_pki(h, "ca.crt", ca, sizeof(ca))};
    size_t n = 9;
    fprintf(stderr, "   $ sikka-ctl%s%s", strcmp(name, "operator") != 0 ? " --as " : "",
            strcmp(name, "operator") != 0 ? name : "");
    for (size_t i = 0; args[i] != NULL; i++) {
        CHECK(n < 63);
        argv[n++] = args[i];
        fprintf(stderr, " %s", args[i]);
    }
    fprintf(stderr, "\n");
    argv[n] = NULL;
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(SIKKA_CTL_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], h->ctl_out + len, sizeof(h->ctl_out) - 1 - len)) > 0)
        len += (size_t)r;
    close(fds[0]);
    h->ctl_out[len] = '\0';
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st), "sikka-ctl died by signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

static pid_t spawned[64];
static size_t nspawned;

static void kill_spawned(void)
{
    for (size_t i = 0; i < nspawned; i++) {
        if (spawned[i] > 0 && waitpid(spawned[i], NULL, WNOHANG) == 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], NULL, 0);
        }
    }
}

pid_t h_spawn(const char *const *argv, const char *out, const char *err)
{
    const char *slash = strrchr(argv[0], '/');
    fprintf(stderr, "   $ %s", slash != NULL ? slash + 1 : argv[0]);
    for (size_t i = 1; argv[i] != NULL; i++)
        fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
    if (nspawned == 0)
        CHECK(atexit(kill_spawned) == 0);
    CHECK(nspawned < sizeof(spawned) / sizeof(spawned[0]), "too many child processes");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = err != NULL ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600) : o;
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    spawned[nspawned++] = pid;
    return pid;
}

int h_spawn_wait(struct harness *h, pid_t pid, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (h_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK(false, "child %d did not finish within %d ms", (int)pid, timeout_ms);
        }
        h_pump(h, 20);
    }
    CHECK(WIFEXITED(status), "child %d ended by signal %d", (int)pid,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

const char *h_read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
    return buf;
}

const char *h_ctl_last_line(struct harness *h)
{
    size_t len = strlen(h->ctl_out);
    while (len > 0 && h->ctl_out[len - 1] == '\n')
        h->ctl_out[--len] = '\0';
    const char *nl = strrchr(h->ctl_out, '\n');
    return nl != NULL ? nl + 1 : h->ctl_out;
}

void h_ctl_expect(struct harness *h, const char *needle)
{
    CHECK(strstr(h->ctl_out, needle) != NULL, "expected \"%s\" in:\n%s", needle, h->ctl_out);
}

int64_t h_ctl_proposed(struct harness *h)
{
    const char *last = h_ctl_last_line(h);
    char *end = NULL;
    CHECK(strncmp(last, "PROPOSED ", 9) == 0, "expected \"PROPOSED <id>\" last in:\n%s",
          h->ctl_out);
    long long id = strtoll(last + 9, &end, 10);
    CHECK(id > 0 && end != NULL && *end == '\0', "not a proposal id: \"%s\"", last);
    return id;
}

int h_propose_approve(struct harness *h, const char *proposer, const char *approver,
                      const char *const *args)
{
    CHECK_INT(h_ctl_as(h, proposer, args), 0);
    h->proposal = h_ctl_proposed(h);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)h->proposal);
    return h_ctl_as(h, approver, (const char *const[]){"approve", id, NULL});
}
