/* Hostile and broken peers against the real daemon, over real TLS, with the
 * real ledger. Each case crosses one of the switch's limits with small
 * settings and shows that the offender gets the documented answer or effect
 * while a bystander pair (JAZZ -> KOKO, or MEZN -> EASY when JAZZ or KOKO is
 * the offender) keeps settling payments before, during and after it:
 *
 *   1. max_sessions_per_participant: one session too many gets NARR, closed
 *   2. participant_rate / participant_burst: transfers and returns beyond
 *      the bucket get NARR "rate limit:", are not recorded, and the same
 *      msg_id goes through later
 *   3. session_max_queries: status queries beyond it get NARR "too many
 *      status queries"; every query is answered once, never another's answer
 *   4. max_handshakes_per_address: one connection too many is closed at
 *      accept; silent ones are closed at handshake_timeout_ms
 *   5. a ClientHello trickled a byte at a time is closed at the absolute
 *      handshake deadline
 *   6. floods by peers that never read: paused for frame_rate (per session and
 *      per participant), closed for malformed frames, paused for output
 *      per session, and for the global max_output_bytes_total
 *   7. tls_crl: revoking a certificate and SIGHUP closes its live session and
 *      refuses it in the handshake
 *   8. suspension retires a participant's sessions, payer and payee alike,
 *      after their transfers in flight are decided
 *   9. the open-file limit: max_sessions clamped to what RLIMIT_NOFILE allows
 *      (last: it lowers this process's own limit, which the switch inherits)
 *
 * The switch is restarted with each case's settings; the database (and so
 * the msg_ids already used) carries over. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tls.h"

/* generous: the sanitizer tree is slow, and every wait ends on its event */
#define WAIT_MS 15000
/* how late a deadline of the switch may fire on a loaded machine */
#define DEADLINE_SLACK_MS 3000

/* ---- bystanders ---- */

/* A payer and a payee that have nothing to do with the offender of the
 * moment; every call of bystander_pays settles one more payment. */
struct bystander {
    struct client *payer, *payee;
    const char *from, *to;
};

static int bystander_seq;

static void settle(struct client *payer, struct client *payee, const char *from, const char *to,
                   const char *msg_id)
{
    h_send_payment(payer, msg_id, from, to, 100);
    h_payee_decide(payee, true, NULL);
    h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
    h_expect_report(payee, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
}

static void bystander_pays(struct bystander *b)
{
    char msg_id[32];
    snprintf(msg_id, sizeof(msg_id), "BY-%s-%d", b->from, ++bystander_seq);
    settle(b->payer, b->payee, b->from, b->to, msg_id);
}

static struct bystander bystander_open(struct harness *h, const char *from, const char *to)
{
    struct bystander b = {h_connect(h, from), h_connect(h, to), from, to};
    bystander_pays(&b);
    return b;
}

static void bystander_close(struct bystander *b)
{
    client_free(b->payer);
    client_free(b->payee);
    b->payer = b->payee = NULL;
}

/* ---- the switch and its log ---- */

static void restart(struct harness *h, const char *config)
{
    if (h_running(h))
        CHECK_INT(h_stop(h), 0);
    h_config(h, config);
    h_start(h);
}

/* Lines of the switch's log that hold both a and b. */
static int log_count_both(struct harness *h, const char *a, const char *b)
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

static void wait_log_both(struct harness *h, int min, const char *a, const char *b)
{
    int64_t deadline = h_now_ms() + WAIT_MS;
    while (log_count_both(h, a, b) < min) {
        CHECK(h_now_ms() < deadline, "fewer than %d lines with \"%s\" and \"%s\" after %d ms", min,
              a, b, WAIT_MS);
        h_pump(h, 20);
    }
}

static void sighup(struct harness *h)
{
    int reloads = h_log_count(h, "event=config_reloaded");
    CHECK(kill(h->pid, SIGHUP) == 0);
    H_WAIT_LOG(h, reloads + 1, WAIT_MS, "event=config_reloaded");
}

/* ---- participants the switch turns away ---- */

/* Connects as code without waiting for the switch's first frame: with TLS
 * 1.3 our side of the handshake ends first, so a refusal after it (a
 * MessageReject, then the close) is there to read. NULL, with err, when the
 * handshake itself failed. */
static struct client *connect_nowait(struct harness *h, const char *code, char *err, size_t errlen)
{
    char cert[300], key[300], ca[300], file[32];
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(h, file, key, sizeof(key));
    struct client_opts o = {.host = "127.0.0.1",
                            .port = h->port,
                            .cert = cert,
                            .key = key,
                            .ca = h_pki(h, "ca.crt", ca, sizeof(ca))};
    SSL_CTX *ctx = client_ssl_ctx(&o, err, errlen);
    CHECK(ctx != NULL, "%s", err);
    struct client *c = client_connect_sync(h->base, ctx, &o, 5000, err, errlen);
    SSL_CTX_free(ctx);
    return c;
}

/* A connection of code is answered with a MessageReject reason whose text
 * holds `text`, then closed with nothing more. */
static void expect_turned_away(struct harness *h, const char *code, const char *reason,
                               const char *text)
{
    char err[512];
    struct client *c = connect_nowait(h, code, err, sizeof(err));
    CHECK(c != NULL, "%s: the handshake itself failed: %s", code, err);
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, reason);
    CHECK(strstr(e->message_reject->text, text) != NULL, "%s: \"%s\"", code,
          e->message_reject->text);
    fprintf(stderr, "   %s turned away: %s %s\n", code, reason, e->message_reject->text);
    client_envelope_free(e);
    e = client_recv(c, 5000);
    CHECK(e == NULL && client_is_closed(c), "%s: the switch must close the connection (%s)", code,
          e != NULL ? codec_body_name(e) : "open");
    client_free(c);
}

/* c's session is closed by the switch within timeout_ms, carrying no frame
 * before the close. */
static void expect_closed(struct client *c, const char *who, int timeout_ms)
{
    Envelope *e = client_recv(c, timeout_ms);
    CHECK(e == NULL, "%s: unexpected %s before the close", who, e ? codec_body_name(e) : "");
    CHECK(client_is_closed(c), "%s: still open after %d ms", who, timeout_ms);
    fprintf(stderr, "   %s closed: %s\n", who, client_close_reason(c));
}

/* ---- raw TCP peers ---- */

static int tcp_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect: %s", strerror(errno));
    return fd;
}

/* Waits up to timeout_ms for the switch to close fd (EOF or reset); bytes it
 * sends first (a TLS alert) are read and dropped. true when it closed. */
static bool closed_within(int fd, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - h_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0, "poll: %s", strerror(errno));
        if (n == 0)
            return false;
        char buf[512];
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return true;
        CHECK(r > 0 || errno == EINTR || errno == EAGAIN, "read: %s", strerror(errno));
    }
}

/* ---- flooders: TLS participants that write without end and never read ---- */

/* A participant session driven by hand on h->base: it writes its flood
 * (valid frames, or garbage of a sane length, cycled) whenever its socket
 * takes more, and never reads a byte, so what the switch sends it piles up
 * in the switch. Its receive buffer is made small so that happens soon. */
struct flooder {
    const char *code;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    struct event *ev;
    unsigned char *buf; /* the flood, written over and over */
    size_t len, off;
    uint64_t sent;
    bool closed;
};

static void flood_on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct flooder *f = arg;
    for (int i = 0; i < 8; i++) {
        ERR_clear_error();
        /* a retry after WANT_WRITE must name the same bytes: off moves only
         * on success */
        int n = SSL_write(f->ssl, f->buf + f->off, (int)(f->len - f->off));
        if (n > 0) {
            f->sent += (uint64_t)n;
            f->off = (f->off + (size_t)n) % f->len;
            continue;
        }
        int e = SSL_get_error(f->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return;
        /* the switch closed it */
        f->closed = true;
        event_del(f->ev);
        return;
    }
}

/* A flood of pings (each answered with a pong), of malformed frames (each
 * answered with a MessageReject FF01), or both. */
static void flood_build(struct flooder *f, bool pings, bool garbage)
{
    struct evbuffer *b = evbuffer_new();
    CHECK(b != NULL);
    for (uint64_t i = 1; i <= 512; i++) {
        if (pings) {
            Sikka__V1__Heartbeat hb = SIKKA__V1__HEARTBEAT__INIT;
            hb.nonce = i;
            Envelope env = SIKKA__V1__ENVELOPE__INIT;
            env.body_case = SIKKA__V1__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &hb;
            CHECK(codec_write(b, &env) > 0);
        }
        /* five bytes that are no protobuf, in a frame of a sane length */
        if (garbage)
            CHECK(evbuffer_add(b, "\x00\x00\x00\x05\xff\xff\xff\xff\xff", 9) == 0);
    }
    f->len = evbuffer_get_length(b);
    f->buf = malloc(f->len);
    CHECK(f->buf != NULL);
    CHECK(evbuffer_remove(b, f->buf, f->len) == (int)f->len);
    evbuffer_free(b);
}

static struct flooder *flooder_open(struct harness *h, const char *code, bool pings, bool garbage)
{
    struct flooder *f = calloc(1, sizeof(*f));
    CHECK(f != NULL);
    f->code = code;
    flood_build(f, pings, garbage);
    char cert[300], key[300], ca[300], file[32], err[256];
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(h, file, key, sizeof(key));
    struct client_opts o = {.cert = cert, .key = key, .ca = h_pki(h, "ca.crt", ca, sizeof(ca))};
    f->ctx = client_ssl_ctx(&o, err, sizeof(err));
    CHECK(f->ctx != NULL, "%s", err);

    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(f->fd >= 0);
    int rcvbuf = 4096; /* before connect: the window the switch may fill */
    CHECK(setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0);
    /* the handshake below blocks: a switch that stalls fails the test */
    struct timeval tv = {5, 0};
    CHECK(setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
    CHECK(setsockopt(f->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(f->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "%s", strerror(errno));
    f->ssl = SSL_new(f->ctx);
    CHECK(f->ssl != NULL && tls_client_prepare(f->ssl, "127.0.0.1") == 0);
    SSL_set_mode(f->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    CHECK(SSL_set_fd(f->ssl, f->fd) == 1);
    CHECK(SSL_connect(f->ssl) == 1, "%s: TLS handshake failed", code);
    /* the switch's welcome ping: the session is registered. The last read. */
    unsigned char first[256];
    CHECK(SSL_read(f->ssl, first, sizeof(first)) > 0, "%s: no welcome from the switch", code);
    CHECK(fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK) == 0);
    f->ev = event_new(h->base, f->fd, EV_WRITE | EV_PERSIST, flood_on_writable, f);
    CHECK(f->ev != NULL && event_add(f->ev, NULL) == 0);
    return f;
}

/* Hangs up with its input unread: the kernel resets the connection, which
 * the switch sees even on a session it no longer reads. */
static void flooder_close(struct flooder *f)
{
    fprintf(stderr, "   %s flooded %llu bytes%s\n", f->code, (unsigned long long)f->sent,
            f->closed ? " (closed by the switch)" : "");
    event_free(f->ev);
    SSL_free(f->ssl);
    close(f->fd);
    SSL_CTX_free(f->ctx);
    free(f->buf);
    free(f);
}

/* ---- bursts of transfers or returns, answered as they come ---- */

enum burst_state { BURST_WAITING = 0, BURST_LIMITED, BURST_SETTLED };

/* Messages one payer sent at once; the payee accepts whatever is forwarded
 * to it, and every message ends rate limited (NARR) or settled (ACSC). */
struct burst {
    struct client *payer, *payee;
    int n;
    char msg_id[32][24];
    enum burst_state state[32];
    uint64_t transfer_id[32]; /* of the settled ones */
    int forwarded;            /* to the payee */
    int payee_reports;        /* ACSC reports the payee got */
};

static int burst_find(const struct burst *b, const char *msg_id)
{
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->msg_id[i], msg_id) == 0)
            return i;
    CHECK(false, "an answer for %s, which was not sent", msg_id);
    return -1;
}

static bool burst_done(const struct burst *b)
{
    for (int i = 0; i < b->n; i++)
        if (b->state[i] == BURST_WAITING)
            return false;
    return b->payee_reports == b->forwarded;
}

/* Takes what arrived for b's payer and payee; true when anything did. */
static bool burst_step(struct burst *b)
{
    bool any = false;
    Envelope *e;
    while ((e = client_recv(b->payer, 0)) != NULL) {
        any = true;
        if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
            const Sikka__V1__MessageReject *mr = e->message_reject;
            int i = burst_find(b, mr->ref_msg_id);
            CHECK_STR(mr->reason, "NARR");
            CHECK(strncmp(mr->text, "rate limit:", 11) == 0, "%s: %s", mr->ref_msg_id, mr->text);
            CHECK(b->state[i] == BURST_WAITING, "%s answered twice", b->msg_id[i]);
            b->state[i] = BURST_LIMITED;
        } else {
            CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "payer got %s",
                  codec_body_name(e));
            const Sikka__V1__StatusReport *r = e->status_report;
            int i = burst_find(b, r->original_msg_id);
            CHECK(r->status == SIKKA__V1__TX_STATUS__ACSC, "%s: %s %s", r->original_msg_id,
                  r->reason, r->text);
            CHECK(b->state[i] == BURST_WAITING, "%s answered twice", b->msg_id[i]);
            b->state[i] = BURST_SETTLED;
            b->transfer_id[i] = r->transfer_id;
        }
        client_envelope_free(e);
    }
    while ((e = client_recv(b->payee, 0)) != NULL) {
        any = true;
        if (e->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER) {
            h_send_decision(b->payee, e->credit_transfer->transfer_id, true, NULL);
            b->forwarded++;
        } else if (e->body_case == SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN) {
            h_send_decision(b->payee, e->payment_return->transfer_id, true, NULL);
            b->forwarded++;
        } else {
            CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "payee got %s",
                  codec_body_name(e));
            CHECK(e->status_report->status == SIKKA__V1__TX_STATUS__ACSC);
            b->payee_reports++;
        }
        client_envelope_free(e);
    }
    return any;
}

/* Runs the loop until every burst is answered in full. */
static void bursts_settle(struct harness *h, struct burst *const *bursts, int nb)
{
    int64_t deadline = h_now_ms() + WAIT_MS;
    for (;;) {
        bool any = false, done = true;
        for (int i = 0; i < nb; i++) {
            any |= burst_step(bursts[i]);
            done &= burst_done(bursts[i]);
        }
        if (done)
            return;
        CHECK(h_now_ms() < deadline, "a burst still unanswered after %d ms", WAIT_MS);
        if (!any)
            h_pump(h, 5);
    }
}

static int burst_count(const struct burst *b, enum burst_state st)
{
    int n = 0;
    for (int i = 0; i < b->n; i++)
        n += b->state[i] == st;
    return n;
}

/* Sends msg_id (a payment of 100 paisa) again until the rate lets it
 * through, then sees it settle. */
static void resend_until_settled(struct harness *h, struct client *payer, struct client *payee,
                                 const char *from, const char *to, const char *msg_id)
{
    int64_t deadline = h_now_ms() + WAIT_MS;
    for (int attempt = 1;; attempt++) {
        struct burst b = {.payer = payer, .payee = payee, .n = 1};
        snprintf(b.msg_id[0], sizeof(b.msg_id[0]), "%s", msg_id);
        h_send_payment(payer, msg_id, from, to, 100);
        struct burst *one[] = {&b};
        bursts_settle(h, one, 1);
        if (b.state[0] == BURST_SETTLED) {
            fprintf(stderr, "   %s settled when sent again (attempt %d)\n", msg_id, attempt);
            return;
        }
        CHECK(h_now_ms() < deadline, "%s still rate limited after %d ms", msg_id, WAIT_MS);
        h_pump(h, 100); /* the bucket refills at participant_rate */
    }
}

/* ---- status queries ---- */

static void send_query(struct client *c, const char *query_id, const char *msg_id)
{
    Sikka__V1__StatusQuery q = SIKKA__V1__STATUS_QUERY__INIT;
    q.query_id = (char *)query_id;
    q.msg_id = (char *)msg_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_QUERY;
    env.status_query = &q;
    CHECK(client_send(c, &env) == 0);
}

/* ================================================================ cases */

static void case_sessions(struct harness *h)
{
    TEST_STEP("1. max_sessions_per_participant = 2: a third JAZZ session gets NARR and is closed");
    restart(h, "max_sessions_per_participant = 2\n");
    struct bystander by = bystander_open(h, "MEZN", "EASY");
    struct client *koko = h_connect(h, "KOKO");
    struct client *j1 = h_connect(h, "JAZZ"), *j2 = h_connect(h, "JAZZ");
    expect_turned_away(h, "JAZZ", "NARR", "JAZZ has 2 sessions open");
    CHECK(h_log_has(h, "why=\"too many sessions for the participant\""));
    bystander_pays(&by);

    TEST_STEP("   the first two still work; once one is gone a new one fits");
    settle(j1, koko, "JAZZ", "KOKO", "SESS-1");
    settle(j2, koko, "JAZZ", "KOKO", "SESS-2");
    int closed = log_count_both(h, "event=session_closed session=JAZZ#", "why=\"peer closed\"");
    client_free(j2);
    wait_log_both(h, closed + 1, "event=session_closed session=JAZZ#", "why=\"peer closed\"");
    struct client *j3 = h_connect(h, "JAZZ");
    settle(j3, koko, "JAZZ", "KOKO", "SESS-3");
    settle(j1, koko, "JAZZ", "KOKO", "SESS-4");
    bystander_pays(&by);

    client_free(j1);
    client_free(j3);
    client_free(koko);
    bystander_close(&by);
}

static void case_rate(struct harness *h)
{
    TEST_STEP("2. participant_rate = 20, burst 5: JAZZ sends 30 transfers at once");
    restart(h, "participant_rate = 20\nparticipant_burst = 5\n");
    struct client *jazz = h_connect(h, "JAZZ"), *koko = h_connect(h, "KOKO");
    struct client *mezn = h_connect(h, "MEZN"), *easy = h_connect(h, "EASY");
    static struct burst flood, calm;
    flood = (struct burst){.payer = jazz, .payee = koko, .n = 30};
    calm = (struct burst){.payer = mezn, .payee = easy, .n = 3};
    for (int i = 0; i < flood.n; i++) {
        snprintf(flood.msg_id[i], sizeof(flood.msg_id[i]), "RATE-%02d", i);
        h_send_payment(jazz, flood.msg_id[i], "JAZZ", "KOKO", 100);
    }
    /* MEZN pays EASY at the same moment: its own bucket, untouched */
    for (int i = 0; i < calm.n; i++) {
        snprintf(calm.msg_id[i], sizeof(calm.msg_id[i]), "CALM-%02d", i);
        h_send_payment(mezn, calm.msg_id[i], "MEZN", "EASY", 100);
    }
    struct burst *both[] = {&flood, &calm};
    bursts_settle(h, both, 2);
    int settled = burst_count(&flood, BURST_SETTLED);
    int limited = burst_count(&flood, BURST_LIMITED);
    fprintf(stderr, "   JAZZ: %d settled, %d rate limited; MEZN: %d of 3 settled\n", settled,
            limited, burst_count(&calm, BURST_SETTLED));
    /* the burst, and at most a few tokens refilled (one per 50 ms) while
     * the 30 frames were read */
    CHECK(settled >= 5 && settled <= 8, "%d of 30 went through", settled);
    CHECK_INT(settled + limited, 30);
    CHECK_INT(flood.forwarded, settled);
    CHECK_INT(burst_count(&calm, BURST_SETTLED), 3);

    TEST_STEP("   nothing recorded for the rate-limited msg_ids; sent again later, one settles");
    h_wait_sql_int(h, settled, WAIT_MS,
                   "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND msg_id LIKE 'RATE-%%'");
    const char *again = NULL;
    for (int i = 0; i < flood.n; i++) {
        if (flood.state[i] != BURST_LIMITED)
            continue;
        CHECK_INT(
            h_sql_int(h, "SELECT count(*) FROM transfers WHERE msg_id = '%s'", flood.msg_id[i]), 0);
        if (again == NULL)
            again = flood.msg_id[i];
    }
    CHECK(again != NULL);
    resend_until_settled(h, jazz, koko, "JAZZ", "KOKO", again);
    CHECK_INT(h_sql_int(h,
                        "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND msg_id = '%s' "
                        "AND status = 'ACSC'",
                        again),
              1);

    TEST_STEP("   returns count too: KOKO returns 1 paisa of a settled transfer 10 times at once");
    uint64_t original = 0;
    for (int i = 0; i < flood.n && original == 0; i++)
        if (flood.state[i] == BURST_SETTLED)
            original = flood.transfer_id[i];
    static struct burst rets;
    rets = (struct burst){.payer = koko, .payee = jazz, .n = 10};
    for (int i = 0; i < rets.n; i++) {
        snprintf(rets.msg_id[i], sizeof(rets.msg_id[i]), "RATE-RET-%02d", i);
        h_send_return(koko, rets.msg_id[i], original, 1, "AC04", NULL);
    }
    struct burst *r[] = {&rets};
    bursts_settle(h, r, 1);
    int rsettled = burst_count(&rets, BURST_SETTLED);
    fprintf(stderr, "   KOKO: %d returns settled, %d rate limited\n", rsettled,
            burst_count(&rets, BURST_LIMITED));
    CHECK(rsettled >= 5 && rsettled <= 8, "%d of 10 returns went through", rsettled);
    h_wait_sql_int(h, rsettled, WAIT_MS,
                   "SELECT count(*) FROM transfers WHERE payer = 'KOKO' AND kind = 'return' AND "
                   "msg_id LIKE 'RATE-RET-%%'");
    settle(mezn, easy, "MEZN", "EASY", "CALM-AFTER");

    client_free(jazz);
    client_free(koko);
    client_free(mezn);
    client_free(easy);
}

static void case_queries(struct harness *h)
{
    TEST_STEP("3. session_max_queries = 1: 20 status queries back to back");
    restart(h, "session_max_queries = 1\n");
    struct bystander by = bystander_open(h, "MEZN", "EASY");
    struct client *jazz = h_connect(h, "JAZZ"), *koko = h_connect(h, "KOKO");
    /* five settled transfers the index answers; the other fifteen msg_ids
     * are unknown, so each of those costs a round trip to the ledger */
    enum { NQ = 20 };
    char msg_id[NQ][24], query_id[NQ][16];
    for (int i = 0; i < NQ; i++) {
        snprintf(query_id[i], sizeof(query_id[i]), "hq-%02d", i);
        if (i % 4 == 1) {
            snprintf(msg_id[i], sizeof(msg_id[i]), "QRY-KNOWN-%02d", i);
            settle(jazz, koko, "JAZZ", "KOKO", msg_id[i]);
        } else {
            snprintf(msg_id[i], sizeof(msg_id[i]), "QRY-NONE-%02d", i);
        }
    }
    /* one write, so the switch reads them together: the first unknown one
     * is still waiting on the ledger when the next arrives */
    for (int i = 0; i < NQ; i++)
        send_query(jazz, query_id[i], msg_id[i]);
    send_query(by.payer, "mezn-q", "QRY-MEZN-NONE");

    int answered[NQ] = {0}, too_many = 0, unknown = 0, reports = 0;
    for (int n = 0; n < NQ; n++) {
        Envelope *e = h_recv(jazz, 5000);
        if (e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT) {
            const Sikka__V1__StatusReport *r = e->status_report;
            int i = 0;
            while (i < NQ && strcmp(query_id[i], r->query_id) != 0)
                i++;
            CHECK(i < NQ, "a report for query \"%s\", which was not sent", r->query_id);
            CHECK_STR(r->original_msg_id, msg_id[i]); /* its own answer, not another's */
            CHECK_INT(r->kind, SIKKA__V1__REPORT_KIND__REPORT_KIND_QUERY);
            CHECK_INT(r->status, SIKKA__V1__TX_STATUS__ACSC);
            answered[i]++;
            reports++;
        } else {
            CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, "got %s",
                  codec_body_name(e));
            const Sikka__V1__MessageReject *mr = e->message_reject;
            int i = 0;
            while (i < NQ && strcmp(msg_id[i], mr->ref_msg_id) != 0)
                i++;
            CHECK(i < NQ, "a reject for msg_id \"%s\", which was not asked about", mr->ref_msg_id);
            CHECK_STR(mr->reason, "NARR");
            if (strncmp(mr->text, "too many status queries", 23) == 0) {
                too_many++;
            } else {
                /* a known transfer is never reported unknown */
                CHECK(i % 4 != 1, "%s: %s", msg_id[i], mr->text);
                CHECK(strstr(mr->text, "is known") != NULL, "%s: %s", msg_id[i], mr->text);
                unknown++;
            }
            answered[i]++;
        }
        client_envelope_free(e);
    }
    for (int i = 0; i < NQ; i++)
        CHECK_INT(answered[i], 1);
    /* a bounded wait for nothing: a twenty-first answer would be a mix-up */
    CHECK(h_silent(jazz, 300), "more answers than queries");
    fprintf(stderr, "   %d reports, %d unknown, %d \"too many status queries\"\n", reports, unknown,
            too_many);
    CHECK_INT(reports, 5);
    CHECK(too_many >= 1, "no query was refused");
    CHECK(unknown >= 1, "no query reached the ledger");

    TEST_STEP("   MEZN's query, sent meanwhile, is answered; JAZZ may ask again");
    Envelope *e = h_expect(by.payer, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->ref_msg_id, "QRY-MEZN-NONE");
    CHECK(strstr(e->message_reject->text, "is known") != NULL, "%s", e->message_reject->text);
    client_envelope_free(e);
    send_query(jazz, "hq-again", "QRY-NONE-02");
    e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->ref_msg_id, "QRY-NONE-02");
    CHECK(strstr(e->message_reject->text, "is known") != NULL, "%s", e->message_reject->text);
    client_envelope_free(e);
    bystander_pays(&by);

    client_free(jazz);
    client_free(koko);
    bystander_close(&by);
}

static void case_handshakes(struct harness *h)
{
    TEST_STEP("4. max_handshakes_per_address = 3: three silent TCP peers, a fourth closed at once");
    restart(h, "max_handshakes_per_address = 3\nhandshake_timeout_ms = 800\n");
    struct bystander by = bystander_open(h, "JAZZ", "KOKO");
    int accepted = h_log_count(h, "event=session_accepted");
    int refused = h_log_count(h, "event=connection_refused");
    int deadlines = h_log_count(h, "why=\"TLS handshake deadline passed\"");
    int64_t t0 = h_now_ms();
    int silent[3];
    for (int i = 0; i < 3; i++)
        silent[i] = tcp_open(h->port);
    H_WAIT_LOG(h, accepted + 3, WAIT_MS, "event=session_accepted");
    int fourth = tcp_open(h->port);
    int64_t t4 = h_now_ms();
    /* at accept, long before the deadline of 800 ms */
    CHECK(closed_within(fourth, 600), "the fourth connection was not closed at accept");
    fprintf(stderr, "   fourth closed after %lld ms\n", (long long)(h_now_ms() - t4));
    close(fourth);
    H_WAIT_LOG(h, refused + 1, WAIT_MS, "event=connection_refused");
    CHECK(h_log_has(h, "connections of this address are in the TLS handshake already"));
    bystander_pays(&by);

    TEST_STEP("   the three are closed at the handshake deadline; then TLS connects fine");
    for (int i = 0; i < 3; i++) {
        CHECK(closed_within(silent[i], 800 + DEADLINE_SLACK_MS), "silent peer %d still open", i);
        int64_t ms = h_now_ms() - t0;
        fprintf(stderr, "   silent peer %d closed %lld ms after connecting\n", i, (long long)ms);
        /* accepted after t0, so the deadline cannot have passed sooner */
        CHECK(ms >= 780, "closed after %lld ms, before the deadline", (long long)ms);
        close(silent[i]);
    }
    H_WAIT_LOG(h, deadlines + 3, WAIT_MS, "why=\"TLS handshake deadline passed\"");
    struct client *mezn = h_connect(h, "MEZN"), *easy = h_connect(h, "EASY");
    settle(mezn, easy, "MEZN", "EASY", "HS-AFTER");
    bystander_pays(&by);
    client_free(mezn);
    client_free(easy);

    TEST_STEP("5. a ClientHello trickled a byte every 100 ms: closed at the deadline");
    deadlines = h_log_count(h, "why=\"TLS handshake deadline passed\"");
    /* a TLS record header announcing a 200-byte ClientHello, then its start */
    static const unsigned char hello[] = {
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x00, 0x00,
        0x02, 0x13, 0x01, 0x01, 0x00, 0x00, 0x99, 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04};
    int fd = tcp_open(h->port);
    t0 = h_now_ms();
    size_t sent = 0;
    bool closed = false;
    while (!closed) {
        CHECK(h_now_ms() - t0 < 800 + DEADLINE_SLACK_MS, "trickler open after %lld ms, %zu bytes",
              (long long)(h_now_ms() - t0), sent);
        if (sent < sizeof(hello)) {
            if (send(fd, &hello[sent], 1, MSG_NOSIGNAL) < 0) {
                CHECK(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
                break; /* closed under our feet */
            }
            sent++;
        }
        closed = closed_within(fd, 100); /* the trickle's pace */
    }
    int64_t ms = h_now_ms() - t0;
    close(fd);
    fprintf(stderr, "   trickler closed after %lld ms and %zu bytes\n", (long long)ms, sent);
    CHECK(ms >= 780, "closed after %lld ms, before the deadline", (long long)ms);
    /* every byte came within 100 ms of the last: only an absolute deadline
     * could end it */
    CHECK(sent >= 5, "only %zu bytes trickled", sent);
    H_WAIT_LOG(h, deadlines + 1, WAIT_MS, "why=\"TLS handshake deadline passed\"");
    bystander_pays(&by);
    bystander_close(&by);
}

/* The bystanders pay while the floods run, until every log line wanted
 * (a line holding both strings of a pair) is there; then five more. */
static void pay_through_flood(struct harness *h, struct bystander *by, const char *const want[][2],
                              int nwant)
{
    int64_t deadline = h_now_ms() + WAIT_MS;
    int paid = 0;
    for (int i = 0; i < nwant; i++) {
        while (log_count_both(h, want[i][0], want[i][1]) == 0) {
            CHECK(h_now_ms() < deadline, "no \"%s\" ... \"%s\" in the log after %d ms", want[i][0],
                  want[i][1], WAIT_MS);
            bystander_pays(by);
            paid++;
        }
    }
    for (int i = 0; i < 5; i++, paid++)
        bystander_pays(by);
    fprintf(stderr, "   %d bystander payments settled during the flood\n", paid);
}

/* Hangs the flooders up and waits for the switch to free their sessions:
 * it notices even while it does not read them. */
static void floods_end(struct harness *h, struct flooder **f, int n)
{
    int before[4];
    char needle[4][64];
    for (int i = 0; i < n; i++) {
        CHECK(!f[i]->closed, "%s was closed rather than held", f[i]->code);
        snprintf(needle[i], sizeof(needle[i]), "event=session_closed session=%s#", f[i]->code);
        before[i] = h_log_count(h, needle[i]);
        flooder_close(f[i]);
    }
    for (int i = 0; i < n; i++)
        H_WAIT_LOG(h, before[i] + 1, WAIT_MS, needle[i]);
}

static void case_flood(struct harness *h)
{
    TEST_STEP("6. session_max_frames_per_second = 500: NAYA floods pings, reads nothing");
    restart(h, "session_max_frames_per_second = 500\n");
    struct bystander by = bystander_open(h, "JAZZ", "KOKO");
    struct flooder *naya = flooder_open(h, "NAYA", true, false);
    pay_through_flood(
        h, &by, (const char *const[][2]){{"event=session_paused session=NAYA#", "why=frame_rate"}},
        1);
    /* a throttled session is read at its rate again and again: its pause is
     * said once at info, and so is nothing else of it */
    CHECK_INT(log_count_both(h, "session=NAYA#", "sikka-switch info event=session_paused"), 1);
    CHECK(log_count_both(h, "session=NAYA#", "sikka-switch info event=session_resumed") <= 1);
    floods_end(h, &naya, 1);
    bystander_pays(&by);
    bystander_close(&by);

    TEST_STEP("   participant_max_frames_per_second = 500: three NAYA sessions share it");
    /* each session alone is far under its own rate: only the participant's
     * budget, drawn by all three, can hold them */
    restart(h, "participant_max_frames_per_second = 500\n");
    by = bystander_open(h, "JAZZ", "KOKO");
    struct flooder *three[] = {flooder_open(h, "NAYA", true, false),
                               flooder_open(h, "NAYA", true, false),
                               flooder_open(h, "NAYA", true, false)};
    pay_through_flood(
        h, &by, (const char *const[][2]){{"event=session_paused session=NAYA#", "why=frame_rate"}},
        1);
    floods_end(h, three, 3);
    bystander_pays(&by);
    bystander_close(&by);

    TEST_STEP("   session_max_malformed_per_second = 100: NAYA floods garbage and is closed");
    restart(h, "");
    by = bystander_open(h, "JAZZ", "KOKO");
    struct flooder *garbage = flooder_open(h, "NAYA", false, true);
    pay_through_flood(h, &by,
                      (const char *const[][2]){
                          {"event=session_closed session=NAYA#", "too many malformed frames"}},
                      1);
    flooder_close(garbage);
    bystander_pays(&by);
    bystander_close(&by);

    TEST_STEP("   session_max_output_bytes = 64 KiB: SADA floods the same, its output piles up");
    /* no frame rate to speak of: only the output cap can hold SADA */
    restart(h, "session_max_output_bytes = 65536\nsession_max_frames_per_second = 100000000\n"
               "participant_max_frames_per_second = 100000000\n"
               "session_max_malformed_per_second = 1000000\n");
    by = bystander_open(h, "JAZZ", "KOKO");
    struct flooder *sada = flooder_open(h, "SADA", true, true);
    pay_through_flood(
        h, &by, (const char *const[][2]){{"event=session_paused session=SADA#", "why=output "}}, 1);
    floods_end(h, &sada, 1);
    bystander_pays(&by);
    bystander_close(&by);

    TEST_STEP("   max_output_bytes_total = 1 MiB, two flooders: the global budget holds them");
    restart(h, "session_max_output_bytes = 1073741824\nmax_output_bytes_total = 1048576\n"
               "session_max_frames_per_second = 100000000\n"
               "participant_max_frames_per_second = 100000000\n"
               "session_max_malformed_per_second = 1000000\n");
    by = bystander_open(h, "JAZZ", "KOKO");
    struct flooder *two[] = {flooder_open(h, "NAYA", true, true),
                             flooder_open(h, "SADA", true, true)};
    pay_through_flood(
        h, &by,
        (const char *const[][2]){{"event=output_budget_exhausted", "max=1048576"},
                                 {"event=session_paused session=NAYA#", "why=output_budget"},
                                 {"event=session_paused session=SADA#", "why=output_budget"}},
        3);
    floods_end(h, two, 2);
    bystander_pays(&by);
    bystander_close(&by);
}

static void run_cmd(const char *cmd)
{
    fprintf(stderr, "   $ %s\n", cmd);
    int st = system(cmd);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", cmd, st);
}

static void case_revocation(struct harness *h)
{
    TEST_STEP("7. tls_crl: NAYA revoked in a private copy of the PKI, then SIGHUP");
    /* the shared test PKI stays as it is: this case revokes in its own copy
     * (the CA key comes along), which the config and connections then use */
    char shared[sizeof(h->pki)], cmd[1024];
    snprintf(shared, sizeof(shared), "%s", h->pki);
    char copy[sizeof(h->workdir) + 8];
    snprintf(copy, sizeof(copy), "%s/pki", h->workdir);
    CHECK(strlen(copy) < sizeof(h->pki), "%s: too long", copy);
    memcpy(h->pki, copy, strlen(copy) + 1);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", h->pki, shared, h->pki);
    run_cmd(cmd);
    restart(h, "");
    struct bystander by = bystander_open(h, "JAZZ", "KOKO");
    struct client *naya = h_connect(h, "NAYA");
    settle(naya, by.payee, "NAYA", "KOKO", "CRL-BEFORE");

    snprintf(cmd, sizeof(cmd), "'%s/deploy/pki.sh' '%s' revoke NAYA >&2", h_env("SIKKA_SOURCE_DIR"),
             h->pki);
    run_cmd(cmd);
    sighup(h);
    H_WAIT_LOG(h, 1, WAIT_MS, "event=revoked_sessions_closed count=1");
    Envelope *e = h_expect(naya, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, "NARR");
    CHECK_STR(e->message_reject->text, "certificate revoked");
    client_envelope_free(e);
    expect_closed(naya, "NAYA's live session", 5000);
    client_free(naya);
    bystander_pays(&by);

    TEST_STEP("   a new NAYA connection fails the handshake; JAZZ keeps paying");
    char cert[300], key[300], err[512];
    struct client *again =
        h_connect_files(h, h_pki(h, "NAYA.crt", cert, sizeof(cert)),
                        h_pki(h, "NAYA.key", key, sizeof(key)), err, sizeof(err));
    CHECK(again == NULL, "a revoked certificate was let in");
    fprintf(stderr, "   NAYA refused: %s\n", err);
    CHECK(strstr(err, "revoked") != NULL, "the refusal does not say revoked: %s", err);
    bystander_pays(&by);
    struct client *easy = h_connect(h, "EASY");
    settle(by.payer, easy, "JAZZ", "EASY", "CRL-AFTER");
    client_free(easy);
    bystander_close(&by);

    CHECK_INT(h_stop(h), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->pki);
    run_cmd(cmd);
    snprintf(h->pki, sizeof(h->pki), "%s", shared);
}

static void case_suspension(struct harness *h)
{
    TEST_STEP("8. JAZZ suspended by an operator while KOKO holds its transfer");
    /* a held transfer must outlive sikka-ctl's run, even under ASan; the
     * retiring sessions close payee_timeout_ms + 500 ms after the suspension */
    const int grace_ms = 3000 + 500;
    h_admin(h);
    restart(h, "payee_timeout_ms = 3000\n");
    struct bystander by = bystander_open(h, "MEZN", "EASY");
    struct client *jazz = h_connect(h, "JAZZ"), *koko = h_connect(h, "KOKO");
    h_send_payment(jazz, "SUSP-HELD", "JAZZ", "KOKO", 100);
    Envelope *e = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t held = e->credit_transfer->transfer_id;
    client_envelope_free(e);
    int64_t t0 = h_now_ms();
    CHECK_INT(H_CTL(h, "participant", "suspend", "JAZZ"), 0);
    /* the console's call or the database's NOTIFY: whichever the switch hears first */
    H_WAIT_LOG(h, 1, WAIT_MS, "event=session_retiring session=JAZZ#");

    TEST_STEP("   JAZZ's session stays for its transfer: new work AG10, KOKO accepts, ACSC");
    h_send_payment(jazz, "SUSP-NEW", "JAZZ", "KOKO", 100);
    h_expect_report(jazz, "SUSP-NEW", SIKKA__V1__TX_STATUS__RJCT, "AG10");
    bystander_pays(&by);
    h_send_decision(koko, held, true, NULL);
    h_expect_report(jazz, "SUSP-HELD", SIKKA__V1__TX_STATUS__ACSC, "");
    h_expect_report(koko, "SUSP-HELD", SIKKA__V1__TX_STATUS__ACSC, "");

    TEST_STEP("   then its session closes; a new one is refused (AG10) until it is resumed");
    expect_closed(jazz, "JAZZ's retiring session", grace_ms + DEADLINE_SLACK_MS);
    int64_t ms = h_now_ms() - t0;
    CHECK(ms >= grace_ms - 100, "closed %lld ms after the suspension, before the grace ended",
          (long long)ms);
    CHECK(log_count_both(h, "event=session_closed session=JAZZ#", "why=\"participant suspended\"") >
          0);
    client_free(jazz);
    expect_turned_away(h, "JAZZ", "AG10", "suspended");
    bystander_pays(&by);
    CHECK_INT(H_FOUR_EYES(h, "operator", "supervisor", "participant", "resume", "JAZZ"), 0);
    jazz = h_connect(h, "JAZZ");
    settle(jazz, koko, "JAZZ", "KOKO", "SUSP-RESUMED");

    TEST_STEP("   KOKO suspended in the database while it holds a transfer: it may still decide");
    h_send_payment(jazz, "SUSP-PAYEE", "JAZZ", "KOKO", 100);
    e = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    held = e->credit_transfer->transfer_id;
    client_envelope_free(e);
    t0 = h_now_ms();
    PQclear(h_sql(h, "UPDATE participants SET status = 'suspended' WHERE code = 'KOKO'"));
    wait_log_both(h, 1, "event=session_retiring session=KOKO#", "suspended in the database");
    h_send_decision(koko, held, true, NULL);
    h_expect_report(jazz, "SUSP-PAYEE", SIKKA__V1__TX_STATUS__ACSC, "");
    h_expect_report(koko, "SUSP-PAYEE", SIKKA__V1__TX_STATUS__ACSC, "");
    h_send_payment(jazz, "SUSP-TO-KOKO", "JAZZ", "KOKO", 100);
    h_expect_report(jazz, "SUSP-TO-KOKO", SIKKA__V1__TX_STATUS__RJCT, "AG11");
    bystander_pays(&by);
    expect_closed(koko, "KOKO's retiring session", grace_ms + DEADLINE_SLACK_MS);
    ms = h_now_ms() - t0;
    CHECK(ms >= grace_ms - 100, "closed %lld ms after the suspension", (long long)ms);
    client_free(koko);
    CHECK(log_count_both(h, "event=session_closed session=KOKO#", "why=\"participant suspended\"") >
          0);

    TEST_STEP("   KOKO resumed: it is paid again");
    int synced = log_count_both(h, "event=participant_synced code=KOKO what=status", "to=active");
    PQclear(h_sql(h, "UPDATE participants SET status = 'active' WHERE code = 'KOKO'"));
    wait_log_both(h, synced + 1, "event=participant_synced code=KOKO what=status", "to=active");
    koko = h_connect(h, "KOKO");
    settle(jazz, koko, "JAZZ", "KOKO", "SUSP-KOKO-BACK");
    bystander_pays(&by);

    client_free(jazz);
    client_free(koko);
    bystander_close(&by);
}

/* Sets this process's RLIMIT_NOFILE (the switch started next inherits it).
 * Lowering a limit needs no privilege, so this should never fail: where we
 * cannot be refused (root) a failure fails the test, elsewhere it is a loud
 * skip. Returns whether the limit is set. */
static bool set_nofile(rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        return true;
    int err = errno;
    CHECK(geteuid() != 0, "setrlimit(RLIMIT_NOFILE, %llu/%llu) as root: %s",
          (unsigned long long)soft, (unsigned long long)hard, strerror(err));
    fprintf(stderr, "   SKIPPED: setrlimit(RLIMIT_NOFILE, %llu/%llu): %s (not root)\n",
            (unsigned long long)soft, (unsigned long long)hard, strerror(err));
    return false;
}

static void case_open_files(struct harness *h)
{
    TEST_STEP("9. RLIMIT_NOFILE soft 1024, max_sessions = 10000: the switch raises its soft limit");
    CHECK_INT(h_stop(h), 0);
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    const rlim_t need = 10000 + 256; /* max_sessions and the switch's FD_RESERVE */
    rlim_t low = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 1024 ? rl.rlim_max : 1024;
    int raised = h_log_count(h, "event=rlimit_raised");
    char want[128];
    snprintf(want, sizeof(want), "event=max_sessions_clamped configured=10000 used=%llu",
             (unsigned long long)(low - 256));
    int clamped = h_log_count(h, want);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "   (the hard limit, %llu, leaves no room: only the clamp is shown)\n",
                (unsigned long long)rl.rlim_max);
    } else if (set_nofile(low, rl.rlim_max)) {
        restart(h, "max_sessions = 10000\n");
        char line[128];
        snprintf(line, sizeof(line), "event=rlimit_raised resource=nofile from=%llu to=%llu",
                 (unsigned long long)low, (unsigned long long)need);
        H_WAIT_LOG(h, 1, WAIT_MS, line);
        CHECK_INT(h_log_count(h, "event=max_sessions_clamped"), 0);
        struct bystander by = bystander_open(h, "JAZZ", "KOKO");
        bystander_close(&by);
        CHECK_INT(h_stop(h), 0);
        raised++;
    }

    TEST_STEP("   RLIMIT_NOFILE 1024 soft and hard: max_sessions clamped, still serving");
    if (!set_nofile(low, low))
        return;
    restart(h, "max_sessions = 10000\n");
    H_WAIT_LOG(h, clamped + 1, WAIT_MS, want);
    /* soft already at hard: nothing to raise, and not said to be raised */
    CHECK_INT(h_log_count(h, "event=rlimit_raised"), raised);
    struct bystander by = bystander_open(h, "JAZZ", "KOKO");
    bystander_pays(&by);

    TEST_STEP("   and again at reload");
    sighup(h);
    H_WAIT_LOG(h, clamped + 2, WAIT_MS, want);
    bystander_pays(&by);
    bystander_close(&by);
}

int main(void)
{
    struct harness h;
    h_init(&h, "hostile");
    int64_t t0 = h_now_ms();

    case_sessions(&h);
    case_rate(&h);
    case_queries(&h);
    case_handshakes(&h);
    case_flood(&h);
    case_revocation(&h);
    case_suspension(&h);
    case_open_files(&h);

    TEST_STEP("the ledger holds together after all of it");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM reconcile() WHERE status <> 'ok'"), 0);
    CHECK(!h_log_has(&h, "event=posting_refused"), "the database refused an accepted payment");
    fprintf(stderr, "   %d bystander payments in all, %lld ms\n", bystander_seq,
            (long long)(h_now_ms() - t0));
    h_cleanup(&h);
    return 0;
}
