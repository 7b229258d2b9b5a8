/* Faults (issue 9): the switch under load while its database and its own
 * process fail, on a private PostgreSQL cluster this test starts, stops and
 * kills (deploy/pg.sh), so no other test shares its fate.
 *
 * Two payers stream transfers to two payees that accept everything. The
 * participants behave as the client library intends: a transfer refused
 * with MessageReject.retry, or in flight on a connection that closed, is
 * sent again with the same msg_id once connected; a closed connection is
 * reopened (to the other switch address when there are two) after 100 ms;
 * payees share one notice memory per participant across reconnects.
 *
 * First two exact cases, without load: the payee's session drops after its
 * accept (its notice waits in the outbox and comes on reconnect), and the
 * switch dies between the posting's COMMIT and the reports (the switch is
 * stopped while its batch waits on a lock, the lock is released so the
 * batch commits, the switch is killed: after the restart the payee gets
 * exactly one ACSC and the payer's retry the first answer).
 *
 * Then, each under load: posting backends terminated, PostgreSQL restarted
 * fast, restarted immediate, its postmaster killed -9, and the active
 * switch killed -9 with a standby on the same database taking over. After
 * each, the books: every answer a payer saw is the ledger's (ACSC posted
 * exactly once, with its id), no transfer is in the ledger that the payers'
 * retries did not find, every ACSC transfer's payee was notified exactly
 * once and the outbox is empty, and reconcile (the ledger's invariants and
 * the switch's positions in memory against it) exits 0. Each phase prints
 * the longest gap between ACSCs and what was refused or resent. */
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

#define MAX_XFERS    40000
#define WINDOW       12  /* transfers in flight per payer */
#define RETRY_MS     100 /* pause before a refused transfer is sent again */
#define RECONNECT_MS 100 /* pause before a closed connection is reopened */
#define WARM_ACSC    40  /* ACSCs before a fault */
#define AFTER_ACSC   60  /* ACSCs after it, for service to count as back */
#define PHASE_MS     90000
#define NPEERS       4

enum xstate { X_UNSENT = 0, X_SENT, X_WAITING, X_ANSWERED };

struct xfer {
    int payer, payee; /* indexes into F.peers */
    enum xstate state;
    int64_t resend_at_ms; /* X_WAITING: when to send again */
    uint32_t sends;
    Sikka__V1__TxStatus status;
    char reason[8];
    uint64_t id;
};

struct peer {
    const char *code;
    bool payer;
    int partner; /* a payer's payee */
    SSL_CTX *ctx;
    struct client_opts opts;
    struct client *c;
    bool ready;
    int64_t reopen_at_ms;
    unsigned next_addr;
    int slots[WINDOW]; /* payers: the transfers in flight, -1 free */
    uint64_t *notices; /* payees: transfer ids of ACSC notices handed to us */
    size_t nnotices, cap;
    struct client_notices *memory;
};

static struct {
    struct harness *h;
    int ports[2];
    int nports;
    struct peer peers[NPEERS];
    struct xfer *x;
    size_t nx;
    bool generating;
    /* the current phase */
    uint64_t acsc, rjct, refused, resent, reopened;
    int64_t last_acsc_ms, gap_ms, gap_from_ms;
    char cluster[300]; /* the private cluster's data directory */
    char cmdlog[300];
} F;

/* ------------------------------------------------------------- commands */

/* Runs a shell command (its output to F.cmdlog) while the load keeps
 * going; returns its exit status (-1 when it did not end in timeout_ms). */
static void drive(int ms);
static int run_cmd(int timeout_ms, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_cmd(int timeout_ms, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(F.cmdlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (h_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        if (F.h != NULL && F.h->base != NULL)
            drive(10);
        else
            usleep(10000);
    }
}

static void cmd_ok(int timeout_ms, const char *what, const char *cmd)
{
    int rc = run_cmd(timeout_ms, "%s", cmd);
    if (rc != 0) {
        fprintf(stderr, "---- %s ----\n", F.cmdlog);
        char buf[4096];
        FILE *f = fopen(F.cmdlog, "r");
        size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        buf[n] = '\0';
        if (f != NULL)
            fclose(f);
        fprintf(stderr, "%s\n----\n", buf);
    }
    CHECK(rc == 0, "%s: exit %d", what, rc);
}

static const char *pg_sh(void)
{
    static char path[300];
    snprintf(path, sizeof(path), "%s/deploy/pg.sh", h_env("SIKKA_SOURCE_DIR"));
    return path;
}

static void read_secret(const char *file, const char *key, char *out, size_t len)
{
    FILE *f = fopen(file, "r");
    CHECK(f != NULL, "%s: %s", file, strerror(errno));
    char line[512];
    size_t klen = strlen(key);
    out[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(out, len, "%s", line + klen + 1);
        }
    fclose(f);
    CHECK(out[0] != '\0', "%s has no %s", file, key);
}

/* A private cluster with the template database, and the environment that
 * points the harness at it. */
static void cluster_up(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/sikka-faults-%d", (int)getpid());
    CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    snprintf(F.cmdlog, sizeof(F.cmdlog), "%s/commands.log", dir);
    if (geteuid() == 0) {
        /* initdb refuses root: the server's user must own the directory */
        char cmd[400], user[64] = "";
        snprintf(cmd, sizeof(cmd), "%s server-user", pg_sh());
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL && fgets(user, sizeof(user), p) != NULL, "pg.sh server-user");
        pclose(p);
        user[strcspn(user, "\n")] = '\0';
        struct passwd *pw = getpwnam(user);
        CHECK(pw != NULL, "no user %s", user);
        CHECK(chown(dir, pw->pw_uid, pw->pw_gid) == 0, "chown %s: %s", dir, strerror(errno));
    }
    snprintf(F.cluster, sizeof(F.cluster), "%s/pg", dir);
    char port[16];
    snprintf(port, sizeof(port), "%d", h_free_port());
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "%s init %s %s && %s start %s", pg_sh(), F.cluster, port, pg_sh(),
             F.cluster);
    cmd_ok(120000, "pg.sh init and start", cmd);
    char secrets[300];
    snprintf(secrets, sizeof(secrets), "%s/secrets.env", dir);
    snprintf(cmd, sizeof(cmd), "%s setup-db %s sikka_template %s", pg_sh(), F.cluster, secrets);
    cmd_ok(120000, "pg.sh setup-db", cmd);

    char sock[300], sw[128], rd[128];
    snprintf(cmd, sizeof(cmd), "%s sockdir %s", pg_sh(), F.cluster);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL && fgets(sock, sizeof(sock), p) != NULL, "pg.sh sockdir");
    pclose(p);
    sock[strcspn(sock, "\n")] = '\0';
    read_secret(secrets, "SIKKA_SWITCH_PASSWORD", sw, sizeof(sw));
    read_secret(secrets, "SIKKA_READER_PASSWORD", rd, sizeof(rd));
    setenv("SIKKA_TEST_PGHOST", sock, 1);
    setenv("SIKKA_TEST_PGPORT", port, 1);
    setenv("SIKKA_TEST_PGUSER", "postgres", 1);
    setenv("SIKKA_TEST_TEMPLATE", "sikka_template", 1);
    setenv("SIKKA_TEST_SWITCH_PASSWORD", sw, 1);
    setenv("SIKKA_TEST_READER_PASSWORD", rd, 1);
}

static void cluster_destroy(const char *dir)
{
    F.h = NULL;
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "%s destroy %s", pg_sh(), F.cluster);
    cmd_ok(120000, "pg.sh destroy", cmd);
    unlink(F.cmdlog);
    rmdir(dir);
}

/* ----------------------------------------------------------- the load */

static int64_t ms_now(void)
{
    return h_now_ms();
}

static int xfer_index(const char *msg_id)
{
    if (strncmp(msg_id, "F-", 2) != 0)
        return -1;
    char *end;
    long i = strtol(msg_id + 2, &end, 10);
    return *end == '\0' && i >= 0 && (size_t)i < F.nx ? (int)i : -1;
}

static void xfer_msg_id(int i, char *buf, size_t len)
{
    snprintf(buf, len, "F-%d", i);
}

static void send_xfer(struct peer *p, int i)
{
    struct xfer *x = &F.x[i];
    char msg_id[24];
    xfer_msg_id(i, msg_id, sizeof(msg_id));
    Sikka__V1__CreditTransfer ct = SIKKA__V1__CREDIT_TRANSFER__INIT;
    Sikka__V1__Remittance rem = SIKKA__V1__REMITTANCE__INIT;
    ct.msg_id = msg_id;
    ct.end_to_end_id = msg_id;
    ct.amount = 100 + i % 900;
    ct.currency = "PKR";
    ct.debtor_agent = (char *)p->code;
    ct.debtor_account = "03001234567";
    ct.debtor_name = "Payer";
    ct.creditor_agent = (char *)F.peers[x->payee].code;
    ct.creditor_account = "03007654321";
    ct.creditor_name = "Payee";
    ct.purpose = SIKKA__V1__PURPOSE__P2P;
    ct.remittance = &rem;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    env.credit_transfer = &ct;
    if (client_send(p->c, &env) != 0) {
        x->state = X_WAITING; /* the close callback will say why */
        x->resend_at_ms = ms_now() + RETRY_MS;
        return;
    }
    if (x->sends++ > 0)
        F.resent++;
    x->state = X_SENT;
}

static void answered(struct peer *p, int i, const Sikka__V1__StatusReport *r)
{
    struct xfer *x = &F.x[i];
    CHECK(x->payer == (int)(p - F.peers), "%s got the answer to F-%d", p->code, i);
    if (x->state == X_ANSWERED) {
        /* a retry's answer: the first one, always */
        CHECK(x->id == r->transfer_id && x->status == r->status,
              "F-%d answered %s %" PRIu64 " then %s %" PRIu64, i,
              x->status == SIKKA__V1__TX_STATUS__ACSC ? "ACSC" : "RJCT", x->id,
              r->status == SIKKA__V1__TX_STATUS__ACSC ? "ACSC" : "RJCT", r->transfer_id);
        return;
    }
    x->state = X_ANSWERED;
    x->status = r->status;
    x->id = r->transfer_id;
    snprintf(x->reason, sizeof(x->reason), "%s", r->reason);
    for (int s = 0; s < WINDOW; s++)
        if (p->slots[s] == i)
            p->slots[s] = -1;
    if (r->status == SIKKA__V1__TX_STATUS__ACSC) {
        int64_t now = ms_now();
        if (F.last_acsc_ms != 0 && now - F.last_acsc_ms > F.gap_ms) {
            F.gap_ms = now - F.last_acsc_ms;
            F.gap_from_ms = F.last_acsc_ms;
        }
        F.last_acsc_ms = now;
        F.acsc++;
    } else {
        F.rjct++;
    }
}

static void on_frame(struct client *c, const Envelope *env, void *arg)
{
    (void)c;
    struct peer *p = arg;
    switch (env->body_case) {
    case SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER: {
        CHECK(!p->payer, "payer %s was sent a transfer", p->code);
        Sikka__V1__PayeeDecision d = SIKKA__V1__PAYEE_DECISION__INIT;
        d.transfer_id = env->credit_transfer->transfer_id;
        d.accept = true;
        Envelope out = SIKKA__V1__ENVELOPE__INIT;
        out.body_case = SIKKA__V1__ENVELOPE__BODY_DECISION;
        out.decision = &d;
        if (client_send(p->c, &out) != 0) /* closing: the switch times the transfer out */
            fprintf(stderr, "   %s could not answer transfer %" PRIu64 "\n", p->code,
                    d.transfer_id);
        break;
    }
    case SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT: {
        const Sikka__V1__StatusReport *r = env->status_report;
        if (r->to_payee) {
            CHECK(!p->payer, "payer %s was sent a notice", p->code);
            if (r->status != SIKKA__V1__TX_STATUS__ACSC)
                break;
            if (p->nnotices == p->cap) {
                p->cap = p->cap ? 2 * p->cap : 4096;
                p->notices = realloc(p->notices, p->cap * sizeof(*p->notices));
                CHECK(p->notices != NULL);
            }
            p->notices[p->nnotices++] = r->transfer_id;
            break;
        }
        int i = xfer_index(r->original_msg_id);
        CHECK(p->payer && i >= 0, "%s: a report for \"%s\"", p->code, r->original_msg_id);
        answered(p, i, r);
        break;
    }
    case SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT: {
        const Sikka__V1__MessageReject *m = env->message_reject;
        int i = xfer_index(m->ref_msg_id);
        CHECK(m->retry && i >= 0, "%s: MessageReject %s \"%s\" (retry=%d) for \"%s\"", p->code,
              m->reason, m->text, m->retry, m->ref_msg_id);
        F.refused++;
        if (F.x[i].state == X_SENT) {
            F.x[i].state = X_WAITING;
            F.x[i].resend_at_ms = ms_now() + RETRY_MS;
        }
        break;
    }
    default:
        CHECK(false, "%s got %s", p->code, codec_body_name(env));
    }
}

static void on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    struct peer *p = arg;
    if (ev == CLIENT_READY) {
        p->ready = true;
        return;
    }
    if (ev != CLIENT_CLOSED)
        return;
    (void)why;
    p->ready = false;
    p->c = NULL;
    client_free(c);
    p->reopen_at_ms = ms_now() + RECONNECT_MS;
    /* what was in flight on it is sent again once connected */
    for (int s = 0; s < WINDOW; s++)
        if (p->payer && p->slots[s] >= 0 && F.x[p->slots[s]].state == X_SENT) {
            F.x[p->slots[s]].state = X_WAITING;
            F.x[p->slots[s]].resend_at_ms = 0;
        }
}

static void peer_open(struct peer *p)
{
    char err[256];
    p->opts.port = F.ports[p->next_addr++ % (unsigned)F.nports];
    p->c = client_open(F.h->base, p->ctx, &p->opts, err, sizeof(err));
    p->ready = false;
    if (p->c == NULL) {
        p->reopen_at_ms = ms_now() + RECONNECT_MS;
        return;
    }
    client_set_callbacks(p->c, on_frame, on_event, p);
    F.reopened++;
}

static void peers_init(void)
{
    static const char *const codes[NPEERS] = {"JAZZ", "EASY", "KOKO", "MEZN"};
    static char certs[NPEERS][300], keys[NPEERS][300], ca[300];
    h_pki(F.h, "ca.crt", ca, sizeof(ca));
    for (int i = 0; i < NPEERS; i++) {
        struct peer *p = &F.peers[i];
        memset(p, 0, sizeof(*p));
        p->code = codes[i];
        p->payer = i < 2;
        p->partner = i + 2;
        char file[32];
        snprintf(file, sizeof(file), "%s.crt", codes[i]);
        h_pki(F.h, file, certs[i], sizeof(certs[i]));
        snprintf(file, sizeof(file), "%s.key", codes[i]);
        h_pki(F.h, file, keys[i], sizeof(keys[i]));
        p->memory = client_notices_new(0);
        CHECK(p->memory != NULL);
        p->opts = (struct client_opts){.host = "127.0.0.1",
                                       .cert = certs[i],
                                       .key = keys[i],
                                       .ca = ca,
                                       .await_ready = true,
                                       .notices = p->memory};
        char err[256];
        p->ctx = client_ssl_ctx(&p->opts, err, sizeof(err));
        CHECK(p->ctx != NULL, "%s", err);
        for (int s = 0; s < WINDOW; s++)
            p->slots[s] = -1;
    }
}

static void peers_free(void)
{
    for (int i = 0; i < NPEERS; i++) {
        struct peer *p = &F.peers[i];
        client_free(p->c);
        SSL_CTX_free(p->ctx);
        client_notices_free(p->memory);
        free(p->notices);
    }
}

/* One step of every participant: reopen, resend what is due, send new. */
static void step(void)
{
    int64_t now = ms_now();
    for (int i = 0; i < NPEERS; i++) {
        struct peer *p = &F.peers[i];
        if (p->c == NULL) {
            if (now >= p->reopen_at_ms)
                peer_open(p);
            continue;
        }
        if (!p->ready || !p->payer)
            continue;
        for (int s = 0; s < WINDOW; s++) {
            int k = p->slots[s];
            if (k < 0 && F.generating && F.nx < MAX_XFERS) {
                k = (int)F.nx++;
                F.x[k] = (struct xfer){.payer = i, .payee = p->partner, .state = X_UNSENT};
                p->slots[s] = k;
                send_xfer(p, k);
            } else if (k >= 0 && F.x[k].state == X_WAITING && now >= F.x[k].resend_at_ms) {
                send_xfer(p, k);
            }
        }
    }
}

static void drive(int ms)
{
    int64_t end = ms_now() + ms;
    do {
        step();
        h_pump(F.h, 2);
    } while (ms_now() < end);
}

static bool all_answered(void)
{
    for (int i = 0; i < NPEERS; i++)
        for (int s = 0; s < WINDOW; s++)
            if (F.peers[i].slots[s] >= 0)
                return false;
    return true;
}

static size_t notices_total(void)
{
    return F.peers[2].nnotices + F.peers[3].nnotices;
}

static void phase_reset(void)
{
    F.acsc = F.rjct = F.refused = F.resent = F.reopened = 0;
    F.last_acsc_ms = F.gap_ms = F.gap_from_ms = 0;
}

/* ------------------------------------------------------------ the books */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every answer is the ledger's; every ACSC payee notified once; reconcile. */
static void check_books(const char *phase)
{
    struct harness *h = F.h;
    size_t acsc = 0;
    for (size_t i = 0; i < F.nx; i++)
        acsc += F.x[i].state == X_ANSWERED && F.x[i].status == SIKKA__V1__TX_STATUS__ACSC;

    /* the payees' notices come after the payers' answers: wait for them */
    int64_t deadline = ms_now() + 20000;
    while (notices_total() < acsc && ms_now() < deadline)
        drive(20);

    PGresult *r = h_sql(h, "SELECT msg_id, id, status, coalesce(reason, ''), "
                           "(SELECT count(*) FROM ledger_entries e WHERE e.transfer_id = t.id) "
                           "FROM transfers t WHERE msg_id LIKE 'F-%%'");
    size_t rows_acsc = 0;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *msg_id = PQgetvalue(r, k, 0);
        int i = xfer_index(msg_id);
        CHECK(i >= 0, "%s: the ledger has %s, which no payer sent", phase, msg_id);
        struct xfer *x = &F.x[i];
        uint64_t id = strtoull(PQgetvalue(r, k, 1), NULL, 10);
        bool is_acsc = strcmp(PQgetvalue(r, k, 2), "ACSC") == 0;
        long entries = atol(PQgetvalue(r, k, 4));
        /* every transfer in the ledger was found by its payer's retries */
        CHECK(x->state == X_ANSWERED, "%s: %s is in the ledger (%s) but its payer has no answer",
              phase, msg_id, PQgetvalue(r, k, 2));
        CHECK(x->id == id, "%s: %s answered with id %" PRIu64 ", the ledger has %" PRIu64, phase,
              msg_id, x->id, id);
        CHECK(is_acsc == (x->status == SIKKA__V1__TX_STATUS__ACSC),
              "%s: %s answered %s, the ledger says %s %s", phase, msg_id,
              x->status == SIKKA__V1__TX_STATUS__ACSC ? "ACSC" : "RJCT", PQgetvalue(r, k, 2),
              PQgetvalue(r, k, 3));
        CHECK(is_acsc ? entries >= 2 : entries == 0, "%s: %s (%s) has %ld ledger entries", phase,
              msg_id, PQgetvalue(r, k, 2), entries);
        rows_acsc += is_acsc;
    }
    PQclear(r);
    /* every ACSC a payer saw is posted (the loop above: once, with its id) */
    CHECK(rows_acsc == acsc, "%s: payers saw %zu ACSC, the ledger has %zu", phase, acsc, rows_acsc);

    /* every ACSC transfer's payee was told, once */
    uint64_t *ids = malloc((notices_total() + 1) * sizeof(*ids));
    CHECK(ids != NULL);
    size_t n = 0;
    for (int p = 2; p < NPEERS; p++) {
        memcpy(ids + n, F.peers[p].notices, F.peers[p].nnotices * sizeof(*ids));
        n += F.peers[p].nnotices;
    }
    qsort(ids, n, sizeof(*ids), cmp_u64);
    for (size_t k = 1; k < n; k++)
        CHECK(ids[k] != ids[k - 1], "%s: a payee was handed transfer %" PRIu64 "'s notice twice",
              phase, ids[k]);
    for (size_t i = 0; i < F.nx; i++) {
        if (F.x[i].state != X_ANSWERED || F.x[i].status != SIKKA__V1__TX_STATUS__ACSC)
            continue;
        CHECK(bsearch(&F.x[i].id, ids, n, sizeof(*ids), cmp_u64) != NULL,
              "%s: F-%zu (transfer %" PRIu64 ") settled, its payee %s was never notified", phase, i,
              F.x[i].id, F.peers[F.x[i].payee].code);
    }
    CHECK(n == acsc, "%s: %zu notices for %zu ACSC", phase, n, acsc);
    free(ids);
    h_wait_sql_int(h, 0, 15000, "SELECT count(*) FROM payee_outbox");

    CHECK_INT(H_CTL(h, "reconcile"), 0);
    fprintf(stderr,
            "   %s: %zu ACSC in all, the ledger agrees; payees notified once each (%" PRIu64
            " repeats dropped); reconcile ok\n",
            phase, acsc,
            client_notices_repeats(F.peers[2].memory) + client_notices_repeats(F.peers[3].memory));
}

/* Load, the fault, load until service is back, drain, the books. */
static void phase(const char *name, void (*fault)(void))
{
    TEST_STEP(name);
    phase_reset();
    F.generating = true;
    int64_t deadline = ms_now() + PHASE_MS;
    while (F.acsc < WARM_ACSC) {
        CHECK(ms_now() < deadline, "%s: no load before the fault (%" PRIu64 " ACSC)", name, F.acsc);
        drive(10);
    }
    uint64_t before = F.acsc;
    fault();
    while (F.acsc < before + AFTER_ACSC) {
        CHECK(ms_now() < deadline, "%s: service not back (%" PRIu64 " ACSC since the fault)", name,
              F.acsc - before);
        drive(10);
    }
    F.generating = false;
    while (!all_answered()) {
        CHECK(ms_now() < deadline, "%s: transfers still unanswered", name);
        drive(10);
    }
    fprintf(stderr,
            "   %s: longest gap between ACSCs %" PRId64 " ms; %" PRIu64 " ACSC, %" PRIu64
            " RJCT, %" PRIu64 " refused retryably, %" PRIu64 " resent, %" PRIu64 " connections\n",
            name, F.gap_ms, F.acsc, F.rjct, F.refused, F.resent, F.reopened);
    /* payees accept everything: after a takeover too, a payee not yet back
     * costs its payers a retry, not a rejection */
    CHECK(F.rjct == 0, "%s: %" PRIu64 " transfers rejected", name, F.rjct);
    check_books(name);
}

/* --------------------------------------------------------------- faults */

static struct client *probe; /* SADA, a payer outside the load */

/* Once the switch has seen its posting connections go, a new transfer is
 * refused at once, retryably, and nothing of it is kept. */
static void probe_refused(int lost_before)
{
    int64_t deadline = ms_now() + 15000;
    while (h_log_count(F.h, "event=pg_connection_lost conn=ledger-") < lost_before + 2) {
        CHECK(ms_now() < deadline, "the switch did not notice its posting connections go");
        drive(10);
    }
    static int n;
    char msg_id[24];
    snprintf(msg_id, sizeof(msg_id), "PROBE-%d", ++n);
    int64_t t0 = ms_now();
    h_send_payment(probe, msg_id, "SADA", "KOKO", 700);
    Envelope *e = h_expect(probe, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 1000);
    int64_t ms = ms_now() - t0;
    CHECK(e->message_reject->retry, "%s: %s %s without retry", msg_id, e->message_reject->reason,
          e->message_reject->text);
    CHECK_STR(e->message_reject->ref_msg_id, msg_id);
    fprintf(stderr, "   %s while the database is away: %s \"%s\" (retry) in %lld ms\n", msg_id,
            e->message_reject->reason, e->message_reject->text, (long long)ms);
    client_envelope_free(e);
}

static void terminate_posting_backends(void)
{
    int64_t n = h_sql_int(F.h, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name LIKE 'sikka-switch/ledger-%%' "
                               "AND datname = current_database()");
    CHECK(n >= 1, "no posting backend to terminate");
    fprintf(stderr, "   terminated %lld posting backends\n", (long long)n);
}

static void pg_down_and_up(const char *mode)
{
    PQfinish(F.h->db); /* the harness's own connection goes with the server */
    F.h->db = NULL;
    int lost = h_log_count(F.h, "event=pg_connection_lost conn=ledger-");
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "%s stop %s %s", pg_sh(), F.cluster, mode);
    cmd_ok(60000, "pg.sh stop", cmd);
    probe_refused(lost);
    drive(1500); /* down for a while, under load */
    snprintf(cmd, sizeof(cmd), "%s start %s", pg_sh(), F.cluster);
    cmd_ok(60000, "pg.sh start", cmd);
    F.h->db = PQconnectdb(F.h->super_conninfo);
    CHECK(PQstatus(F.h->db) == CONNECTION_OK, "%s", PQerrorMessage(F.h->db));
}

static void pg_restart_fast(void)
{
    pg_down_and_up("fast");
}

static void pg_restart_immediate(void)
{
    pg_down_and_up("immediate");
}

/* The process exists and is not a zombie. */
static bool process_exists(pid_t pid)
{
    char path[64], buf[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return paren == NULL || paren[1] != ' ' || paren[2] != 'Z';
}

static void pg_kill_postmaster(void)
{
    char path[400], line[32] = "";
    snprintf(path, sizeof(path), "%s/postmaster.pid", F.cluster);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL && fgets(line, sizeof(line), f) != NULL, "%s: %s", path, strerror(errno));
    fclose(f);
    pid_t pid = (pid_t)atoi(line);
    CHECK(pid > 1, "postmaster pid \"%s\"", line);
    PQfinish(F.h->db);
    F.h->db = NULL;
    int lost = h_log_count(F.h, "event=pg_connection_lost conn=ledger-");
    CHECK(kill(pid, SIGKILL) == 0, "kill -9 %d: %s", (int)pid, strerror(errno));
    fprintf(stderr, "   killed the postmaster (pid %d)\n", (int)pid);
    probe_refused(lost);
    /* gone once reaped (by init: it is not our child) */
    int64_t deadline = ms_now() + 30000;
    while (process_exists(pid)) {
        CHECK(ms_now() < deadline, "the killed postmaster %d is still there", (int)pid);
        drive(20);
    }
    drive(1000);
    /* its backends notice and exit; until they have, a start is refused */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "%s start %s", pg_sh(), F.cluster);
    deadline = ms_now() + 60000;
    for (;;) {
        if (run_cmd(60000, "%s", cmd) == 0) {
            F.h->db = PQconnectdb(F.h->super_conninfo);
            if (PQstatus(F.h->db) == CONNECTION_OK)
                break;
            PQfinish(F.h->db);
            F.h->db = NULL;
        }
        CHECK(ms_now() < deadline, "PostgreSQL does not start after its postmaster was killed");
        drive(500);
    }
}

/* The switch pair: two processes on one database, each with its own
 * ports, config and log. The harness's switch (h->pid, h->port, its log and
 * console) is always the active one; the other is the standby. */
struct sw {
    pid_t pid;
    int port, admin_port;
    char config[300], log[300];
};
static struct sw pair[2];
static int active; /* index into pair of the harness's switch */

/* The harness's running switch becomes pair[0]; pair[1] gets its own
 * ports and a copy of the config. */
static void pair_init(void)
{
    struct harness *h = F.h;
    pair[0] = (struct sw){.pid = h->pid, .port = h->port, .admin_port = h->admin_port};
    snprintf(pair[0].config, sizeof(pair[0].config), "%s", h->config_path);
    snprintf(pair[0].log, sizeof(pair[0].log), "%s", h->log_path);
    struct sw *b = &pair[1];
    b->port = h_free_port();
    b->admin_port = h_free_port();
    snprintf(b->config, sizeof(b->config), "%s/standby.conf", h->workdir);
    snprintf(b->log, sizeof(b->log), "%s/standby.log", h->workdir);
    FILE *in = fopen(h->config_path, "r");
    FILE *out = fopen(b->config, "w");
    CHECK(in != NULL && out != NULL);
    char line[4096];
    while (fgets(line, sizeof(line), in) != NULL) {
        if (strncmp(line, "listen =", 8) == 0)
            fprintf(out, "listen = 127.0.0.1:%d\n", b->port);
        else if (strncmp(line, "admin_listen =", 14) == 0)
            fprintf(out, "admin_listen = 127.0.0.1:%d\n", b->admin_port);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
    active = 0;
    F.ports[0] = pair[0].port;
    F.ports[1] = pair[1].port;
    F.nports = 2;
}

/* Starts the switch that is not active; it waits for the fence. */
static void standby_start(void)
{
    struct sw *w = &pair[1 - active];
    int waiting = 0;
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "grep -c 'event=fence_waiting' %s 2>/dev/null", w->log);
        FILE *p = popen(cmd, "r");
        if (p != NULL && fscanf(p, "%d", &waiting) != 1)
            waiting = 0;
        if (p != NULL)
            pclose(p);
    }
    w->pid = fork();
    CHECK(w->pid >= 0);
    if (w->pid == 0) {
        int fd = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(SIKKA_SWITCH_BIN, "sikka-switch", "-c", w->config, (char *)NULL);
        _exit(127);
    }
    int64_t deadline = ms_now() + 15000;
    for (;;) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "test $(grep -c 'event=fence_waiting' %s) -gt %d", w->log,
                 waiting);
        if (run_cmd(5000, "%s", cmd) == 0)
            break;
        int st;
        CHECK(waitpid(w->pid, &st, WNOHANG) == 0, "the standby exited (status %d)", st);
        CHECK(ms_now() < deadline, "the standby never said it waits for the fence");
        drive(50);
    }
    fprintf(stderr, "   standby switch (pid %d, port %d) waits for the fence\n", (int)w->pid,
            w->port);
}

/* The standby is the harness's switch from now on. */
static void standby_is_active(void)
{
    struct harness *h = F.h;
    active = 1 - active;
    struct sw *w = &pair[active];
    h->pid = w->pid;
    h->port = w->port;
    h->admin_port = w->admin_port;
    snprintf(h->admin_addr, sizeof(h->admin_addr), "127.0.0.1:%d", w->admin_port);
    snprintf(h->log_path, sizeof(h->log_path), "%s", w->log);
    snprintf(h->config_path, sizeof(h->config_path), "%s", w->config);
}

static void kill_active_switch(void)
{
    h_kill(F.h);
    pair[active].pid = 0;
    fprintf(stderr, "   killed the active switch\n");
    standby_is_active();
}

/* The active switch is frozen (SIGSTOP) and its fence connection cut; the
 * standby takes the fence. Thawed, the old active must not post again: the
 * database refuses its epoch, or it finds the fence taken, and it exits 75. */
static void fence_stolen(void)
{
    struct harness *h = F.h;
    int64_t epoch = h_sql_int(h, "SELECT epoch FROM switch_fence");
    CHECK(kill(h->pid, SIGSTOP) == 0);
    drive(200); /* transfers go to the frozen switch and wait */
    int64_t n = h_sql_int(h, "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                             "WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock' "
                             "AND database = (SELECT oid FROM pg_database "
                             "WHERE datname = current_database()) "
                             "AND ((classid::bigint << 32) | objid::bigint) = 5353235353000001");
    CHECK_INT(n, 1);
    h_wait_sql_int(h, epoch + 1, 10000, "SELECT epoch FROM switch_fence");
    fprintf(stderr, "   the standby holds the fence (epoch %lld); thawing the old active\n",
            (long long)epoch + 1);
    pid_t old = h->pid;
    CHECK(kill(old, SIGCONT) == 0);
    int64_t deadline = ms_now() + 15000;
    for (;;) {
        int st;
        pid_t r = waitpid(old, &st, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == old) {
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 75,
                  "the fenced switch ended with status %d, not exit 75", st);
            break;
        }
        CHECK(ms_now() < deadline, "the fenced switch still runs");
        drive(10);
    }
    CHECK(h_log_count(h, "event=fenced") == 1, "the old active says it was fenced");
    fprintf(stderr, "   the old active exited 75 (fenced)\n");
    pair[active].pid = 0;
    standby_is_active();
}

/* -------------------------------------------------------- exact cases */

/* The payee's session drops right after its accept: the notice is kept
 * and comes, once, on its next connection. */
static void payee_session_drops(void)
{
    struct harness *h = F.h;
    TEST_STEP("the payee's session drops after its accept: its notice comes on reconnect, once");
    struct client *jazz = h_connect(h, "JAZZ");
    struct client *koko = h_connect(h, "KOKO");
    h_send_payment(jazz, "DROP-1", "JAZZ", "KOKO", 5100);
    /* the accept goes out; nothing more is read, then the session is gone */
    Envelope *ct = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = ct->credit_transfer->transfer_id;
    client_envelope_free(ct);
    CHECK(client_set_reading(koko, false) == 0);
    h_send_decision(koko, id, true, NULL);
    int64_t deadline = h_now_ms() + 5000;
    while (client_output_pending(koko) > 0) {
        CHECK(h_now_ms() < deadline, "the accept was not written");
        h_pump(h, 5);
    }
    client_free(koko);
    CHECK_INT(h_expect_report(jazz, "DROP-1", SIKKA__V1__TX_STATUS__ACSC, ""), id);
    h_wait_sql_int(h, 1, 5000, "SELECT count(*) FROM payee_outbox WHERE transfer_id = %llu",
                   (unsigned long long)id);
    koko = h_connect(h, "KOKO");
    /* an acknowledgement of an id no transfer can have (beyond bigint)
     * must not hold back the real one, which is applied with it or after */
    CHECK(client_ack(koko, &(uint64_t){UINT64_MAX}, 1) == 0);
    Envelope *e = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK(e->status_report->to_payee, "a settlement notice");
    CHECK_INT(e->status_report->transfer_id, id);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    CHECK(h_silent(koko, 300), "one notice only");
    h_wait_sql_int(h, 0, 5000, "SELECT count(*) FROM payee_outbox");
    CHECK(h_log_count(h, "event=outbox_ack_failed") == 0, "no acknowledgement call failed");
    client_free(koko);
    koko = h_connect(h, "KOKO");
    CHECK(h_silent(koko, 300), "acknowledged: not sent again");
    client_free(koko);
    client_free(jazz);
}

/* The switch dies after the posting committed and before any report. */
static void switch_dies_after_commit(void)
{
    struct harness *h = F.h;
    TEST_STEP("the switch dies between COMMIT and the reports: after the restart the payee gets "
              "one ACSC, the payer's retry the first answer");
    struct client *jazz = h_connect(h, "JAZZ");
    struct client *koko = h_connect(h, "KOKO");
    PGconn *blocker = PQconnectdb(h->super_conninfo);
    CHECK(PQstatus(blocker) == CONNECTION_OK, "%s", PQerrorMessage(blocker));
    PQclear(PQexec(blocker, "BEGIN"));
    PGresult *r =
        PQexec(blocker, "SELECT 1 FROM settlement_windows WHERE state = 'open' FOR UPDATE");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s", PQresultErrorMessage(r));
    PQclear(r);
    h_send_payment(jazz, "COMMIT-1", "JAZZ", "KOKO", 5200);
    uint64_t id = h_payee_decide(koko, true, NULL);
    /* the batch waits on the lock inside the database */
    h_wait_sql_int(h, 1, 10000,
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                   "'sikka-switch/ledger-%%' AND wait_event_type = 'Lock' "
                   "AND datname = current_database()");
    CHECK(kill(h->pid, SIGSTOP) == 0);
    PQclear(PQexec(blocker, "ROLLBACK"));
    PQfinish(blocker);
    /* committed without the switch hearing of it */
    h_wait_sql_int(h, 1, 10000,
                   "SELECT count(*) FROM transfers WHERE msg_id = 'COMMIT-1' AND status = 'ACSC' "
                   "AND id = %llu",
                   (unsigned long long)id);
    CHECK_INT(h_sql_int(h, "SELECT count(*) FROM payee_outbox WHERE transfer_id = %llu",
                        (unsigned long long)id),
              1);
    h_kill(h);
    client_free(jazz);
    client_free(koko);
    h_start(h);
    koko = h_connect(h, "KOKO");
    Envelope *e = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK(e->status_report->to_payee, "a settlement notice");
    CHECK_INT(e->status_report->transfer_id, id);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(e->status_report->amount, 5200);
    client_envelope_free(e);
    CHECK(h_silent(koko, 300), "one notice only");
    jazz = h_connect(h, "JAZZ");
    h_send_payment(jazz, "COMMIT-1", "JAZZ", "KOKO", 5200);
    CHECK_INT(h_expect_report(jazz, "COMMIT-1", SIKKA__V1__TX_STATUS__ACSC, ""), id);
    CHECK(h_silent(koko, 300), "the retry is not forwarded or notified again");
    h_wait_sql_int(h, 0, 5000, "SELECT count(*) FROM payee_outbox");
    CHECK_INT(h_sql_int(h, "SELECT count(*) FROM transfers WHERE msg_id = 'COMMIT-1'"), 1);
    client_free(jazz);
    client_free(koko);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    char dir[256];
    TEST_STEP("a private PostgreSQL cluster for this test");
    cluster_up(dir, sizeof(dir));

    struct harness h;
    h_init(&h, "faults");
    F.h = &h;
    h_admin(&h);
    /* a quick takeover; the posting connections notice a dead server fast */
    h_config(&h, "fence_takeover_ms = 2000\n"
                 "payee_timeout_ms = 3000\n"
                 "reconnect_grace_ms = 10000\n");
    h_start(&h);
    payee_session_drops();
    switch_dies_after_commit();

    F.x = calloc(MAX_XFERS, sizeof(*F.x));
    CHECK(F.x != NULL);
    F.ports[0] = h.port;
    F.nports = 1;
    F.h = &h;
    peers_init();
    probe = h_connect(&h, "SADA");
    phase("posting backends terminated (pg_terminate_backend) under load",
          terminate_posting_backends);
    phase("PostgreSQL restarted (fast) under load", pg_restart_fast);
    phase("PostgreSQL restarted (immediate: crash recovery) under load", pg_restart_immediate);
    phase("PostgreSQL's postmaster killed -9 under load", pg_kill_postmaster);
    client_free(probe); /* not across the takeovers */
    CHECK(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'PROBE-%%'") == 0,
          "a refused probe was recorded");
    pair_init();
    standby_start();
    phase("the active switch frozen, its fence taken by the standby: it is fenced off",
          fence_stolen);
    standby_start();
    phase("the active switch killed -9: the standby takes over", kill_active_switch);
    peers_free();
    free(F.x);

    unlink(pair[1 - active].config);
    unlink(pair[1 - active].log);
    h_cleanup(&h);
    cluster_destroy(dir);
    return 0;
}
