/* A switch pair and the participants' tools across a takeover. Two
 * sikka-switch processes run on one database: A holds the fence and serves,
 * B is its standby. sikka-wallet (the binary users run) pays and listens
 * with --connect A,B:
 *   - a payment settles through A, and KOKO's `listen` prints it;
 *   - a payment is in flight at the payee MEZN (forwarded, not answered)
 *     when A dies;
 *   - A loses its fence (its fence connection is cut and the test holds the
 *     lock), so the ledger is unavailable: a payment is refused with
 *     MessageReject retry, and the wallet keeps sending the same msg_id;
 *   - the acknowledgement of the first payment's notice is "lost with A"
 *     (its outbox row put back, as when A died before applying it);
 *   - A is killed with SIGKILL, the lock freed: B takes over.
 * Then: both interrupted payments end ACSC, each printed once, through B;
 * the same msg_ids paid again get their first answers (one of them given
 * by A); each is one transfer posted once; KOKO's listen reconnected by
 * itself, was sent the first notice again, and printed every settlement
 * exactly once.
 *
 * The payers are stopped (SIGSTOP) while no switch serves and resumed once
 * B serves and the payees are back, so that a payer's retry never reaches
 * B before its payee has reconnected (that would be a rejection, AB08).
 *
 * Then sikka-replay runs against the pair (--connect B,A, A back as the
 * standby): B is frozen (SIGSTOP) until transfers are in flight on its
 * sessions, then killed; A takes over. The run reopens every session on A,
 * sends again what was in flight, and reports it: reconnects, resent, the
 * longest gap between ACSCs spanning the kill, every settlement notified to
 * its payee; `sikka-replay verify` finds every ACSC posted exactly once. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <time.h>

#include "fence.h"
#include "harness.h"

#ifndef SIKKA_WALLET_BIN
#error "SIKKA_WALLET_BIN must be defined by the build"
#endif
#ifndef SIKKA_REPLAY_BIN
#error "SIKKA_REPLAY_BIN must be defined by the build"
#endif

static struct harness h;
static char connect_list[64];

/* Every wallet started, so that a failed CHECK leaves none running. */
static pid_t started[16];
static size_t nstarted;

static void kill_wallets(void)
{
    for (size_t i = 0; i < nstarted; i++) {
        if (started[i] > 0 && waitpid(started[i], NULL, WNOHANG) == 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
    }
}

/* A sikka-wallet process: its output files and, while it runs, its pid. */
struct wallet {
    char out[320], err[320];
    pid_t pid;
};

static pid_t wallet_start(struct wallet *w, const char *name, const char *code,
                          const char *const *args)
{
    char cert[300], key[300], ca[300], file[32];
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(&h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(&h, file, key, sizeof(key));
    h_pki(&h, "ca.crt", ca, sizeof(ca));
    snprintf(w->out, sizeof(w->out), "%s/wallet-%s.out", h.workdir, name);
    snprintf(w->err, sizeof(w->err), "%s/wallet-%s.err", h.workdir, name);
    const char *argv[48] = {
        "sikka-wallet", "--connect", connect_list, "--participant", code, "--cert",
        cert,           "--key",     key,          "--ca",          ca};
    size_t n = 11;
    fprintf(stderr, "   $ sikka-wallet --connect %s --participant %s", connect_list, code);
    for (size_t i = 0; args[i] != NULL; i++) {
        CHECK(n < 47);
        argv[n++] = args[i];
        fprintf(stderr, " %s", args[i]);
    }
    fprintf(stderr, "\n");
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int out = open(w->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(w->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        execv(SIKKA_WALLET_BIN, (char *const *)argv);
        _exit(127);
    }
    w->pid = pid;
    CHECK(nstarted < sizeof(started) / sizeof(started[0]));
    started[nstarted++] = pid;
    return pid;
}
#define WALLET_START(w, name, code, ...)                                                           \
    wallet_start((w), (name), (code), (const char *const[]){__VA_ARGS__, NULL})

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts `sikka-replay ARGS...` like a wallet (its output in w's files). */
static pid_t replay_start(struct wallet *w, const char *name, const char *const *args)
{
    snprintf(w->out, sizeof(w->out), "%s/replay-%s.out", h.workdir, name);
    snprintf(w->err, sizeof(w->err), "%s/replay-%s.err", h.workdir, name);
    const char *argv[48] = {"sikka-replay"};
    size_t n = 1;
    fprintf(stderr, "   $ sikka-replay");
    for (size_t i = 0; args[i] != NULL; i++) {
        CHECK(n < 47);
        argv[n++] = args[i];
        fprintf(stderr, " %s", args[i]);
    }
    fprintf(stderr, "\n");
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int out = open(w->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(w->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        execv(SIKKA_REPLAY_BIN, (char *const *)argv);
        _exit(127);
    }
    w->pid = pid;
    CHECK(nstarted < sizeof(started) / sizeof(started[0]));
    started[nstarted++] = pid;
    return pid;
}
#define REPLAY_START(w, name, ...)                                                                 \
    replay_start((w), (name), (const char *const[]){__VA_ARGS__, NULL})

/* What a wallet wrote to a file so far. */
static const char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* How many lines of path are exactly line. */
static int count_lines(const char *path, const char *line)
{
    const char *text = slurp(path);
    int n = 0;
    size_t len = strlen(line);
    for (const char *p = text; *p != '\0';) {
        size_t l = strcspn(p, "\n");
        n += l == len && strncmp(p, line, len) == 0;
        p += l;
        if (*p == '\n')
            p++;
    }
    return n;
}

/* Polls until path holds needle, running h.base (the test's own
 * connections answer heartbeats meanwhile); CHECKs it within timeout_ms and
 * that the wallet is still running. */
static void wait_text(struct wallet *w, const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    while (strstr(slurp(path), needle) == NULL) {
        int st;
        CHECK(w->pid <= 0 || waitpid(w->pid, &st, WNOHANG) == 0,
              "the wallet exited before \"%s\" appeared in %s:\n%s\nstderr:\n%s", needle, path,
              slurp(path), slurp(w->err));
        CHECK(h_now_ms() < deadline, "no \"%s\" in %s after %d ms:\n%s\nstderr:\n%s", needle, path,
              timeout_ms, slurp(path), slurp(w->err));
        h_pump(&h, 20);
    }
}

/* Waits for the wallet to exit (running h.base meanwhile); returns its
 * exit status. */
static int wallet_wait(struct wallet *w, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(w->pid, &st, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == w->pid) {
            w->pid = 0;
            CHECK(WIFEXITED(st), "sikka-wallet died by signal %d", WTERMSIG(st));
            return WEXITSTATUS(st);
        }
        if (h_now_ms() >= deadline) {
            kill(w->pid, SIGKILL);
            waitpid(w->pid, NULL, 0);
            w->pid = 0;
            CHECK(false, "sikka-wallet did not exit within %d ms; stdout:\n%s\nstderr:\n%s",
                  timeout_ms, slurp(w->out), slurp(w->err));
        }
        h_pump(&h, 20);
    }
}

/* One payment of 10.00 from JAZZ to account@payee with msg_id, run to its
 * end; returns the one line it printed (static buffer). */
static const char *pay(const char *name, const char *msg_id, const char *to)
{
    struct wallet w;
    WALLET_START(&w, name, "JAZZ", "pay", "--from", "03001234567", "--to", to, "--amount", "10.00",
                 "--purpose", "P2P", "--msg-id", msg_id);
    int rc = wallet_wait(&w, 40000);
    static char line[256];
    snprintf(line, sizeof(line), "%s", slurp(w.out));
    line[strcspn(line, "\n")] = '\0';
    fprintf(stderr, "   -> %s (exit %d)\n", line, rc);
    CHECK(rc == 0, "pay %s exited %d: %s\nstderr:\n%s", msg_id, rc, line, slurp(w.err));
    CHECK(count_lines(w.out, line) == 1 && strlen(slurp(w.out)) == strlen(line) + 1,
          "pay prints one line:\n%s", slurp(w.out));
    return line;
}

static uint64_t acsc_id(const char *line)
{
    CHECK(strncmp(line, "ACSC ", 5) == 0, "expected ACSC <id>, got \"%s\"", line);
    uint64_t id = strtoull(line + 5, NULL, 10);
    CHECK(id != 0, "\"%s\"", line);
    return id;
}

/* msg_id of JAZZ is one transfer, ACSC with this id, posted once. */
static void check_posted_once(const char *msg_id, uint64_t id)
{
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND msg_id = '%s'",
                        msg_id),
              1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT id FROM transfers WHERE payer = 'JAZZ' AND msg_id = '%s' "
                        "AND status = 'ACSC'",
                        msg_id),
              id);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM ledger_entries WHERE transfer_id = %llu "
                        "AND leg = 'principal'",
                        (unsigned long long)id),
              2);
}

static double json_num(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *v = o;
    for (char *part = strtok(buf, "."); part != NULL; part = strtok(NULL, "."))
        v = json_object_get(v, part);
    CHECK(json_is_number(v), "JSON has no number at %s", path);
    return json_number_value(v);
}

/* The number after the last "outstanding " in sikka-replay's live lines,
 * and how many live lines there are; -1 when none yet. */
static long live_outstanding(const char *path, int *lines)
{
    const char *text = slurp(path), *last = NULL;
    *lines = 0;
    for (const char *p = text; (p = strstr(p, " outstanding ")) != NULL; p++) {
        last = p;
        (*lines)++;
    }
    return last != NULL ? strtol(last + 13, NULL, 10) : -1;
}

static void test_replay(int port_a, int port_b)
{
    /* h is B, the active switch; A is dead */
    char cap[300], results[300], json[300], list[64], reader[512];
    snprintf(cap, sizeof(cap), "%s/takeover.cap", h.workdir);
    snprintf(results, sizeof(results), "%s/takeover.tsv", h.workdir);
    snprintf(json, sizeof(json), "%s/takeover.json", h.workdir);
    snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d", port_b, port_a);

    TEST_STEP("A comes back as B's standby");
    h_swap_peer(&h);
    int waiting = h_log_count(&h, "event=fence_waiting");
    int ready = h_log_count(&h, "event=ready role=active");
    h_swap_peer(&h);
    h_start_peer(&h);
    h_swap_peer(&h);
    H_WAIT_LOG(&h, waiting + 1, 10000, "event=fence_waiting");
    h_swap_peer(&h);

    TEST_STEP("sikka-replay --connect B,A at 150/s; B frozen with transfers in flight, then "
              "killed; A takes over");
    struct wallet gen, run, verify;
    REPLAY_START(&gen, "gen", "gen", "-o", cap, "--count", "20000", "--seed", "9", "--retry-rate",
                 "0.05", "--reject-rate", "0", "--malformed-rate", "0");
    CHECK_INT(wallet_wait(&gen, 30000), 0);
    int64_t settled0 = h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'ACSC'");
    REPLAY_START(&run, "run", "run", cap, "--connect", list, "--pki", h.pki, "--rate", "150",
                 "--duration", "8", "--sessions", "2", "--json", json, "--results", results);
    int64_t deadline = h_now_ms() + 15000;
    while (h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'ACSC'") < settled0 + 100) {
        CHECK(h_now_ms() < deadline, "the replay settles nothing through B:\n%s", slurp(run.err));
        h_pump(&h, 20);
    }
    int64_t stop_wall = wall_ms();
    CHECK(kill(h.pid, SIGSTOP) == 0);
    int lines_at_stop, lines;
    (void)live_outstanding(run.err, &lines_at_stop);
    deadline = h_now_ms() + 10000;
    for (;;) {
        long outstanding = live_outstanding(run.err, &lines);
        if (lines > lines_at_stop && outstanding >= 20)
            break;
        CHECK(h_now_ms() < deadline, "no transfers piling up in flight on the frozen B:\n%s",
              slurp(run.err));
        h_pump(&h, 20);
    }
    int64_t kill_wall = wall_ms();
    h_kill(&h);
    h_swap_peer(&h);
    CHECK_INT(h.port, port_a);
    H_WAIT_LOG(&h, ready + 1, 15000, "event=ready role=active");
    int rc = wallet_wait(&run, 60000);
    fprintf(stderr, "%s", slurp(run.out));
    CHECK(rc == 0, "sikka-replay run exited %d:\n%s", rc, slurp(run.err));

    TEST_STEP("the report: sessions reopened on A, in-flight transfers sent again, the outage "
              "as the longest ACSC gap, every settlement notified");
    json_error_t jerr;
    json_t *j = json_load_file(json, 0, &jerr);
    CHECK(j != NULL, "%s: %s", json, jerr.text);
    double sessions = json_num(j, "sessions");
    CHECK(sessions == 12, "%g sessions", sessions);
    CHECK(json_num(j, "connection_failures") >= sessions, "every session was lost");
    CHECK(json_num(j, "reconnects") >= sessions, "every session was opened again: %g",
          json_num(j, "reconnects"));
    CHECK_INT(json_num(j, "sessions_down"), 0);
    CHECK(json_num(j, "resent") >= 20, "what was in flight on B went again: %g",
          json_num(j, "resent"));
    CHECK_INT(json_num(j, "no_answer"), 0);
    CHECK_INT(json_num(j, "acsc_without_notice"), 0);
    CHECK(json_num(j, "payee_notices") > 0);
    double gap = json_num(j, "max_acsc_gap_ms"), from = json_num(j, "gap_from_ms"),
           to = json_num(j, "gap_to_ms");
    fprintf(stderr,
            "   longest ACSC gap %.1f ms, from %.0f to %.0f (frozen at %lld, killed at %lld)\n",
            gap, from, to, (long long)stop_wall, (long long)kill_wall);
    /* no ACSC can come between the freeze and A's takeover */
    CHECK(from <= (double)kill_wall && to >= (double)kill_wall, "the gap spans the kill");
    CHECK(gap >= (double)(kill_wall - stop_wall), "the gap covers the freeze");
    /* every outcome is a settlement, or (a payer's retry reaching A before
     * the payee's session came back) AB08 */
    json_t *outcomes = json_object_get(j, "outcomes");
    size_t i;
    json_t *oc;
    json_array_foreach(outcomes, i, oc)
    {
        const char *status = json_string_value(json_object_get(oc, "status"));
        const char *reason = json_string_value(json_object_get(oc, "reason"));
        fprintf(stderr, "   outcome %s %s: %lld\n", status, reason,
                (long long)json_integer_value(json_object_get(oc, "count")));
        CHECK(strcmp(status, "ACSC") == 0 ||
                  (strcmp(status, "RJCT") == 0 && strcmp(reason, "AB08") == 0),
              "unexpected outcome %s %s", status, reason);
    }
    json_decref(j);

    TEST_STEP("verify: every ACSC the run saw is in the ledger exactly once");
    const char *rpw = h_env("SIKKA_TEST_READER_PASSWORD");
    snprintf(reader, sizeof(reader),
             "host=127.0.0.1 port=%s user=sikka_reader password=%s dbname=%s",
             h_env("SIKKA_TEST_PGPORT"), rpw, h.dbname);
    CHECK(setenv("SIKKA_DB_URI", reader, 1) == 0);
    REPLAY_START(&verify, "verify", "verify", "--results", results);
    rc = wallet_wait(&verify, 60000);
    fprintf(stderr, "%s", slurp(verify.out));
    CHECK_INT(rc, 0);
    CHECK(strstr(slurp(verify.out), "verify: OK") != NULL);
    unlink(cap);
    unlink(results);
    unlink(json);
}

int main(void)
{
    char line[128];
    h_init(&h, "takeover");
    atexit(kill_wallets);
    /* A keeps refusing (ledger unavailable) while the test holds its fence,
     * however long the steps take: it only exits as deposed after a minute.
     * The payment held at MEZN must not time out before A dies. */
    h_config(&h, "fence_takeover_ms = 60000\n"
                 "payee_timeout_ms = 20000\n"
                 "max_amount = 1000000000\n");
    /* room for the replay's supplier invoices (up to 2M PKR each) */
    PQclear(h_sql(&h, "UPDATE participants SET ndc = 100000000000000 WHERE status = 'active'"));

    TEST_STEP("A is active, B (same database) waits as its standby");
    h_start(&h);
    H_WAIT_LOG(&h, 1, 10000, "event=ready role=active");
    h_start_peer(&h);
    int port_a = h.port, port_b = h.peer_port;
    h_swap_peer(&h);
    H_WAIT_LOG(&h, 1, 10000, "event=fence_waiting");
    CHECK(!h_log_has(&h, "event=ready"), "B must not serve while A holds the fence");
    h_swap_peer(&h);
    snprintf(connect_list, sizeof(connect_list), "127.0.0.1:%d,127.0.0.1:%d", port_a, port_b);

    TEST_STEP("KOKO listens (sikka-wallet listen, --connect A,B); MEZN is a held payee");
    struct wallet listen;
    WALLET_START(&listen, "listen", "KOKO", "listen", "--accept-all");
    H_WAIT_LOG(&h, 1, 10000, "event=session_open session=KOKO#");
    struct client *mezn = h_connect(&h, "MEZN");

    TEST_STEP("a payment settles through A; listen prints it");
    uint64_t id1 = acsc_id(pay("m1", "TKO-M1", "LOAN-ACC-1@KOKO"));
    snprintf(line, sizeof(line), "ACSC %llu", (unsigned long long)id1);
    wait_text(&listen, listen.out, line, 5000);
    h_wait_sql_int(&h, 0, 5000, "SELECT count(*) FROM payee_outbox WHERE transfer_id = %llu",
                   (unsigned long long)id1);

    TEST_STEP("a payment in flight: forwarded to MEZN, not answered");
    struct wallet m2;
    WALLET_START(&m2, "m2", "JAZZ", "pay", "--from", "03001234567", "--to", "SUPP-9@MEZN",
                 "--amount", "10.00", "--purpose", "P2P", "--msg-id", "TKO-M2");
    Envelope *e = h_expect(mezn, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 10000);
    CHECK_STR(e->credit_transfer->msg_id, "TKO-M2");
    uint64_t held_id = e->credit_transfer->transfer_id;
    client_envelope_free(e);

    TEST_STEP("A loses its fence (the test holds the lock): a payment is refused with retry, "
              "and sent again");
    /* cut A's fence connection and queue for the lock in the same round
     * trip: the lock goes to the test as the cut backend releases it, before
     * A (or B) tries again */
    PGresult *r = h_sql(&h,
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                        "'advisory' AND granted AND mode = 'ExclusiveLock' AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database()) AND "
                        "((classid::bigint << 32) | objid::bigint) = %lld; "
                        "SELECT pg_advisory_lock(%lld)",
                        (long long)FENCE_KEY, (long long)FENCE_KEY);
    PQclear(r);
    H_WAIT_LOG(&h, 1, 10000, "event=fence_lost");
    struct wallet m3;
    WALLET_START(&m3, "m3", "JAZZ", "pay", "--from", "03001234567", "--to", "LOAN-ACC-3@KOKO",
                 "--amount", "10.00", "--purpose", "P2P", "--msg-id", "TKO-M3");
    wait_text(&m3, m3.err, "the ledger is unavailable", 10000);
    wait_text(&m3, m3.err, "msg_id TKO-M3 sent again", 10000);
    CHECK(h_log_has(&h, "retry=yes"), "A refused TKO-M3 as retryable");

    TEST_STEP("the acknowledgement of the first notice is lost with A (its outbox row back)");
    PQclear(h_sql(&h, "INSERT INTO payee_outbox (transfer_id, payee) VALUES (%llu, 'KOKO')",
                  (unsigned long long)id1));

    TEST_STEP("the payers pause; A is killed with SIGKILL, the lock freed: B takes over");
    CHECK(kill(m2.pid, SIGSTOP) == 0 && kill(m3.pid, SIGSTOP) == 0);
    h_kill(&h);
    client_free(mezn);
    PQclear(h_sql(&h, "SELECT pg_advisory_unlock_all()"));
    h_swap_peer(&h);
    CHECK_INT(h.port, port_b);
    H_WAIT_LOG(&h, 1, 15000, "event=ready role=active");
    CHECK(h_log_has(&h, "event=fence_held"));

    TEST_STEP("listen reconnects to B by itself and is sent the unacknowledged notice again");
    char want[96];
    snprintf(want, sizeof(want), "reconnected to 127.0.0.1:%d", port_b);
    wait_text(&listen, listen.err, want, 15000);
    H_WAIT_LOG(&h, 1, 10000, "event=outbox_resent session=KOKO#");
    h_wait_sql_int(&h, 0, 10000, "SELECT count(*) FROM payee_outbox WHERE transfer_id = %llu",
                   (unsigned long long)id1);
    mezn = h_connect(&h, "MEZN");

    TEST_STEP("the payers resume: each interrupted payment is sent again to B and settles once");
    CHECK(kill(m2.pid, SIGCONT) == 0 && kill(m3.pid, SIGCONT) == 0);
    e = h_expect(mezn, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 15000);
    CHECK_STR(e->credit_transfer->msg_id, "TKO-M2");
    uint64_t fwd2 = e->credit_transfer->transfer_id;
    client_envelope_free(e);
    fprintf(stderr, "   TKO-M2 forwarded again by B as %llu (A's forward was %llu)\n",
            (unsigned long long)fwd2, (unsigned long long)held_id);
    h_send_decision(mezn, fwd2, true, NULL);
    CHECK_INT(wallet_wait(&m2, 30000), 0);
    CHECK_INT(wallet_wait(&m3, 30000), 0);
    snprintf(line, sizeof(line), "%s", slurp(m2.out));
    line[strcspn(line, "\n")] = '\0';
    uint64_t id2 = acsc_id(line);
    CHECK_INT(id2, fwd2);
    CHECK_INT(count_lines(m2.out, line), 1);
    CHECK(strstr(slurp(m2.err), "msg_id TKO-M2 sent again") != NULL, "stderr:\n%s", slurp(m2.err));
    CHECK_INT(h_expect_report(mezn, "TKO-M2", SIKKA__V1__TX_STATUS__ACSC, ""), id2);
    snprintf(line, sizeof(line), "%s", slurp(m3.out));
    line[strcspn(line, "\n")] = '\0';
    uint64_t id3 = acsc_id(line);
    CHECK_INT(count_lines(m3.out, line), 1);
    fprintf(stderr, "   TKO-M2: ACSC %llu, TKO-M3: ACSC %llu; stderr of TKO-M3:\n%s",
            (unsigned long long)id2, (unsigned long long)id3, slurp(m3.err));

    TEST_STEP("the same msg_ids again, through B: the first answers (TKO-M1's given by A)");
    snprintf(line, sizeof(line), "ACSC %llu", (unsigned long long)id1);
    CHECK_STR(pay("m1-again", "TKO-M1", "LOAN-ACC-1@KOKO"), line);
    snprintf(line, sizeof(line), "ACSC %llu", (unsigned long long)id2);
    CHECK_STR(pay("m2-again", "TKO-M2", "SUPP-9@MEZN"), line);
    snprintf(line, sizeof(line), "ACSC %llu", (unsigned long long)id3);
    CHECK_STR(pay("m3-again", "TKO-M3", "LOAN-ACC-3@KOKO"), line);
    check_posted_once("TKO-M1", id1);
    check_posted_once("TKO-M2", id2);
    check_posted_once("TKO-M3", id3);
    CHECK(h_silent(mezn, 300), "MEZN hears nothing more (no second notice)");

    TEST_STEP("listen printed every settlement once, across its reconnection");
    CHECK(kill(listen.pid, SIGTERM) == 0);
    CHECK_INT(wallet_wait(&listen, 10000), 0);
    fprintf(stderr, "   listen's stdout:\n%s", slurp(listen.out));
    fprintf(stderr, "   listen's stderr:\n%s", slurp(listen.err));
    snprintf(want, sizeof(want), "connection to 127.0.0.1:%d closed", port_a);
    CHECK(strstr(slurp(listen.err), want) != NULL, "listen said it lost A");
    snprintf(line, sizeof(line), "ACSC %llu", (unsigned long long)id1);
    CHECK_INT(count_lines(listen.out, line), 1);
    snprintf(line, sizeof(line), "ACSC %llu", (unsigned long long)id3);
    CHECK_INT(count_lines(listen.out, line), 1);
    const char *out = slurp(listen.out);
    int acsc_lines = 0;
    for (const char *p = out; (p = strstr(p, "ACSC ")) != NULL; p++)
        acsc_lines++;
    CHECK_INT(acsc_lines, 2);
    CHECK(h_log_has(&h, "event=outbox_resent session=KOKO#"));
    client_free(mezn);

    test_replay(port_a, port_b);

    h_cleanup(&h);
    fprintf(stderr, "PASS\n");
    return 0;
}
