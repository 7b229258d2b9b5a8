#include "metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fence.h"
#include "idem.h"
#include "ledger.h"
#include "log.h"
#include "outbox.h"
#include "participant.h"
#include "router.h"
#include "session.h"
#include "sql.h"

/* ---- fixed label tables ---- */

/* By purpose index: a return has no purpose of its own. */
enum {
    PURPOSE_RETURN = 0,
    PURPOSE_BNPL,
    PURPOSE_SUPPLIER,
    PURPOSE_P2P,
    PURPOSE_UNSPECIFIED,
    PURPOSES
};
static const char *const purpose_names[PURPOSES] = {"RETURN", "BNPL_REPAYMENT", "SUPPLIER_PAYMENT",
                                                    "P2P", "UNSPECIFIED"};

/* The codes the switch sends (router.c, ledger.h, session.c) and the ISO
 * 20022 status reasons payees commonly answer with. Index 0 counts every
 * other code: a payee's arbitrary codes cannot grow the label set. */
static const char *const reason_codes[] = {
    "OTHER",
    /* the switch's own */
    "FF01", "FF03", "RC01", "RC04", "AM02", "AM03", "AM05", "AM06", "AM23", "AG01", "AG10", "AG11",
    "AB05", "AB08", "MS03", "NARR",
    /* payees' */
    "AC01", "AC03", "AC04", "AC06", "AC07", "AC13", "AG02", "AG03", "AM01", "AM04", "AM09", "AM12",
    "BE01", "BE04", "BE05", "CUST", "DUPL", "FOCR", "FRAD", "MD07", "RR01", "RR02", "RR03", "RR04",
    "SL01"};
#define REASONS (sizeof(reason_codes) / sizeof(reason_codes[0]))

/* Prometheus bucket bounds (le), microseconds: sub-millisecond commits up to
 * Raast's 20 s credit rule. */
static const uint64_t duration_bounds[] = {500,     1000,    2500,    5000,     10000,
                                           25000,   50000,   100000,  250000,   500000,
                                           1000000, 2500000, 5000000, 10000000, 20000000};
#define DURATION_BOUNDS (sizeof(duration_bounds) / sizeof(duration_bounds[0]))
static const uint64_t batch_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
#define BATCH_BOUNDS (sizeof(batch_bounds) / sizeof(batch_bounds[0]))
#define HIST_MAX     16
_Static_assert(DURATION_BOUNDS <= HIST_MAX && BATCH_BOUNDS <= HIST_MAX, "struct hist too small");

/* A Prometheus histogram: counts per bucket (not cumulative), the last one
 * for +Inf; cumulated only when written. */
struct hist {
    uint64_t counts[HIST_MAX + 1];
    uint64_t count;
    uint64_t sum;
};

/* One whole second of the dashboard's series. */
struct second {
    int64_t t;
    uint32_t settled, rejected;
    uint32_t p50_us, p99_us, commit_p50_us, commit_p99_us;
    uint32_t batches, batched;
};

/* Counters of one participant (index = participant index; the last slot
 * of the arrays takes every index beyond METRICS_PARTICIPANTS_MAX). */
struct per_participant {
    uint64_t settled[PURPOSES];
    uint64_t settled_paisa[PURPOSES];
    uint64_t rejected[REASONS];
    uint64_t session_opens;
};

static struct {
    int64_t started_us; /* wall clock, process start */
    struct event_base *base;
    struct pgconn *db;
    struct event *timer;
    char boot_first_id[24]; /* this boot's lowest transfer id */

    uint64_t received[PURPOSES];
    uint64_t rejected_by_reason[REASONS];
    uint64_t messages_rejected[REASONS];
    uint64_t messages_refused;
    struct per_participant parts[METRICS_PARTICIPANTS_MAX + 1];
    struct hist transfer_duration, commit_duration, batch_size;

    /* the second being counted, and the ring of whole ones */
    int64_t cur_t;
    uint32_t cur_settled, cur_rejected, cur_batches, cur_batched;
    struct metrics_fine cur_e2e, cur_commit;
    struct second ring[METRICS_SECONDS];
    size_t ring_head, ring_n; /* oldest at ring_head */
    int64_t next_refresh_s;

    /* the open window: seed (earlier boots, from the database) + live */
    int64_t win_id;
    int64_t win_seed_gross, win_seed_postings;
    int64_t win_live_gross, win_live_postings;
    bool win_seeded, win_seed_inflight;
    int64_t batch_window; /* the batch being delivered was posted there */

    /* the clock for settlements: read at a batch's commit, then again every
     * METRICS_CLOCK_REUSE transfers delivered */
    int64_t clock_us;
    unsigned clock_uses;

    int64_t outbox_pending;
    bool outbox_known, outbox_inflight;
    bool started;
} M;

/* ---- pure parts ---- */

int metrics_parse_since(const char *text, int64_t *out)
{
    size_t n = text != NULL ? strlen(text) : 0;
    if (n == 0 || n > 18 || strspn(text, "0123456789") != n)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (text[i] - '0');
    *out = v;
    return 0;
}

int metrics_label_escape(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *s = in; *s != '\0'; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        size_t k = rep != NULL ? 2 : 1;
        if (o + k >= outlen)
            return -1;
        if (rep != NULL)
            memcpy(out + o, rep, 2);
        else
            out[o] = *s;
        o += k;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return (int)o;
}

unsigned metrics_fine_index(uint64_t us)
{
    if (us < METRICS_FINE_SUB)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 3 */
    if (e > METRICS_FINE_MAX_EXP)
        return METRICS_FINE_BUCKETS - 1;
    unsigned sub = (unsigned)(us >> (e - 3)) & (METRICS_FINE_SUB - 1);
    return METRICS_FINE_SUB + (e - 3) * METRICS_FINE_SUB + sub;
}

void metrics_fine_add(struct metrics_fine *h, uint64_t us)
{
    h->counts[metrics_fine_index(us)]++;
    h->n++;
}

uint64_t metrics_fine_quantile(const struct metrics_fine *h, unsigned permille)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = ((uint64_t)h->n * permille + 999) / 1000;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < METRICS_FINE_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        if (i < METRICS_FINE_SUB)
            return i;
        unsigned k = i - METRICS_FINE_SUB;
        unsigned shift = k / METRICS_FINE_SUB;
        uint64_t low = (uint64_t)(METRICS_FINE_SUB + k % METRICS_FINE_SUB) << shift;
        uint64_t width = UINT64_C(1) << shift;
        return low + width / 2;
    }
    return 0; /* counts and n disagree: cannot happen */
}

static void hist_add(struct hist *h, const uint64_t *bounds, size_t nbounds, uint64_t v)
{
    size_t i = 0;
    while (i < nbounds && v > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

/* The code's row in reason_codes; 0 (OTHER) when it has none. */
static unsigned reason_index(const char *code)
{
    if (code == NULL || strlen(code) != 4)
        return 0;
    for (unsigned i = 1; i < REASONS; i++)
        if (memcmp(reason_codes[i], code, 4) == 0)
            return i;
    return 0;
}

static unsigned purpose_index(const struct transfer *t)
{
    if (t->kind == TRANSFER_KIND_RETURN)
        return PURPOSE_RETURN;
    switch (t->purpose) {
    case SIKKA__V1__PURPOSE__BNPL_REPAYMENT:
        return PURPOSE_BNPL;
    case SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT:
        return PURPOSE_SUPPLIER;
    case SIKKA__V1__PURPOSE__P2P:
        return PURPOSE_P2P;
    default:
        return PURPOSE_UNSPECIFIED;
    }
}

static struct per_participant *part(unsigned index)
{
    return &M.parts[index < METRICS_PARTICIPANTS_MAX ? index : METRICS_PARTICIPANTS_MAX];
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the hot path ---- */

void metrics_transfer_received(const struct transfer *t)
{
    M.received[purpose_index(t)]++;
}

void metrics_transfer_settled(const struct transfer *t)
{
    unsigned p = purpose_index(t);
    struct per_participant *pp = part(t->payer_index);
    pp->settled[p]++;
    pp->settled_paisa[p] += (uint64_t)t->amount;
    if (++M.clock_uses > METRICS_CLOCK_REUSE) {
        M.clock_us = mono_us();
        M.clock_uses = 1;
    }
    int64_t took = M.clock_us - t->received_us;
    uint64_t us = took > 0 ? (uint64_t)took : 0;
    hist_add(&M.transfer_duration, duration_bounds, DURATION_BOUNDS, us);
    metrics_fine_add(&M.cur_e2e, us);
    M.cur_settled++;
    if (M.batch_window == M.win_id) {
        /* its debits: the principal, and the fee leg (a return refunds it) */
        M.win_live_gross += t->amount + (t->fee > 0 ? t->fee : 0);
        M.win_live_postings++;
    }
}

void metrics_transfer_rejected(const char *reason, unsigned payer_index)
{
    unsigned r = reason_index(reason);
    part(payer_index)->rejected[r]++;
    M.rejected_by_reason[r]++;
    M.cur_rejected++;
}

void metrics_batch_committed(size_t n, int64_t took_us, int64_t now_us)
{
    M.clock_us = now_us;
    M.clock_uses = 0;
    uint64_t us = took_us > 0 ? (uint64_t)took_us : 0;
    hist_add(&M.commit_duration, duration_bounds, DURATION_BOUNDS, us);
    hist_add(&M.batch_size, batch_bounds, BATCH_BOUNDS, n);
    metrics_fine_add(&M.cur_commit, us);
    M.cur_batches++;
    M.cur_batched += (uint32_t)n;
}

void metrics_window_opened(int64_t window_id)
{
    if (window_id <= M.win_id)
        return;
    /* newer than the window open at recovery: only this boot posts there */
    M.win_id = window_id;
    M.win_seed_gross = M.win_seed_postings = 0;
    M.win_live_gross = M.win_live_postings = 0;
    M.win_seeded = true;
}

void metrics_batch_window(int64_t window_id)
{
    metrics_window_opened(window_id);
    M.batch_window = window_id;
}

void metrics_session_opened(unsigned participant_index)
{
    part(participant_index)->session_opens++;
}

void metrics_message_rejected(const char *reason, bool retry)
{
    if (retry)
        M.messages_refused++;
    else
        M.messages_rejected[reason_index(reason)]++;
}

/* ---- seconds ---- */

static void ring_push(const struct second *s)
{
    size_t slot = (M.ring_head + M.ring_n) % METRICS_SECONDS;
    if (M.ring_n == METRICS_SECONDS)
        M.ring_head = (M.ring_head + 1) % METRICS_SECONDS;
    else
        M.ring_n++;
    M.ring[slot] = *s;
}

static uint32_t clamp_u32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void metrics_tick(int64_t now_s)
{
    if (M.cur_t == 0) {
        M.cur_t = now_s;
        return;
    }
    if (now_s <= M.cur_t)
        return; /* early, or the clock stepped back: keep counting this second */
    struct second s = {
        .t = M.cur_t,
        .settled = M.cur_settled,
        .rejected = M.cur_rejected,
        .p50_us = clamp_u32(metrics_fine_quantile(&M.cur_e2e, 500)),
        .p99_us = clamp_u32(metrics_fine_quantile(&M.cur_e2e, 990)),
        .commit_p50_us = clamp_u32(metrics_fine_quantile(&M.cur_commit, 500)),
        .commit_p99_us = clamp_u32(metrics_fine_quantile(&M.cur_commit, 990)),
        .batches = M.cur_batches,
        .batched = M.cur_batched,
    };
    ring_push(&s);
    /* seconds the loop did not see (stalled, or the clock jumped): empty */
    int64_t gap = now_s - M.cur_t - 1;
    if (gap > METRICS_SECONDS)
        gap = METRICS_SECONDS;
    for (int64_t i = 0; i < gap; i++) {
        struct second empty = {.t = now_s - gap + i};
        ring_push(&empty);
    }
    M.cur_t = now_s;
    M.cur_settled = M.cur_rejected = M.cur_batches = M.cur_batched = 0;
    memset(&M.cur_e2e, 0, sizeof(M.cur_e2e));
    memset(&M.cur_commit, 0, sizeof(M.cur_commit));
}

/* ---- what only the database knows ---- */

static void on_window_seed(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    int64_t window = (int64_t)(intptr_t)arg;
    M.win_seed_inflight = false;
    if (!M.started)
        return;
    if (flags != PGCONN_OK || PQntuples(res) != 1) {
        log_warn("event=metrics_window_seed_failed window=%" PRId64 " why=\"%s\" action=retry",
                 window, flags != PGCONN_OK ? error : "no row");
        return;
    }
    if (window != M.win_id || M.win_seeded)
        return; /* a newer window opened meanwhile: it starts from zero */
    M.win_seed_postings = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    M.win_seed_gross = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    M.win_seeded = true;
    log_info("event=metrics_window_seeded window=%" PRId64 " postings=%" PRId64 " gross=%" PRId64,
             window, M.win_seed_postings, M.win_seed_gross);
}

static void on_outbox_count(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    M.outbox_inflight = false;
    if (!M.started)
        return;
    if (flags != PGCONN_OK || PQntuples(res) != 1) {
        log_debug("event=metrics_outbox_count_failed why=\"%s\"",
                  flags != PGCONN_OK ? error : "no row");
        return;
    }
    M.outbox_pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    M.outbox_known = true;
}

/* Sends what is due; false when the connection is not ready (try again
 * in a second). */
static bool refresh(void)
{
    if (M.db == NULL || !pgconn_is_ready(M.db))
        return false;
    if (!M.win_seeded && !M.win_seed_inflight) {
        char window[24];
        snprintf(window, sizeof(window), "%" PRId64, M.win_id);
        const char *params[] = {window, M.boot_first_id};
        if (pgconn_exec(M.db, SQL_METRICS_WINDOW, 2, params, on_window_seed,
                        (void *)(intptr_t)M.win_id) == 0)
            M.win_seed_inflight = true;
    }
    if (!M.outbox_inflight &&
        pgconn_exec(M.db, SQL_METRICS_OUTBOX, 0, NULL, on_outbox_count, NULL) == 0)
        M.outbox_inflight = true;
    return true;
}

/* Fires just after each wall-clock second boundary. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    int64_t now = wall_us();
    metrics_tick(now / 1000000);
    if (now / 1000000 >= M.next_refresh_s)
        M.next_refresh_s = now / 1000000 + (refresh() ? METRICS_REFRESH_S : 1);
    /* 1 ms past the next boundary, so time() reads the new second */
    int64_t wait = 1000000 - now % 1000000 + 1000;
    struct timeval tv = {wait / 1000000, wait % 1000000};
    evtimer_add(M.timer, &tv);
}

void metrics_init(void)
{
    memset(&M, 0, sizeof(M));
    M.started_us = wall_us();
    M.batch_window = -1;
    M.clock_uses = METRICS_CLOCK_REUSE; /* read the clock at the first use */
}

int metrics_start(struct event_base *base, struct pgconn *db, uint32_t boot_id, int64_t window_id)
{
    M.base = base;
    M.db = db;
    snprintf(M.boot_first_id, sizeof(M.boot_first_id), "%" PRIu64, (uint64_t)boot_id << 32);
    M.win_id = window_id;
    M.win_seeded = false;
    M.win_seed_gross = M.win_seed_postings = M.win_live_gross = M.win_live_postings = 0;
    M.timer = evtimer_new(base, on_timer, NULL);
    if (M.timer == NULL) {
        log_error("event=oom what=metrics_timer");
        return -1;
    }
    M.started = true;
    M.cur_t = 0;
    metrics_tick(wall_us() / 1000000);
    struct timeval now = {0, 0};
    evtimer_add(M.timer, &now);
    return 0;
}

void metrics_free(void)
{
    if (M.timer != NULL)
        event_free(M.timer);
    M.timer = NULL;
    M.started = false;
    M.db = NULL;
}

/* ---- the exposition ---- */

/* Microseconds as decimal seconds ("0.0005", "1", "20"), exact. */
static const char *seconds_text(uint64_t us, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
    char *end = buf + strlen(buf);
    while (end[-1] == '0')
        *--end = '\0';
    if (end[-1] == '.')
        end[-1] = '\0';
    return buf;
}

struct out {
    struct evbuffer *b;
    int rc;
};

static void out_family(struct out *o, const char *name, const char *type, const char *help)
{
    if (o->rc == 0 &&
        evbuffer_add_printf(o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0)
        o->rc = -1;
}

/* name{k1="v1",k2="v2"} value: labels with NULL keys are left out. */
static void out_sample(struct out *o, const char *name, const char *k1, const char *v1,
                       const char *k2, const char *v2, const char *value)
{
    char e1[128], e2[128];
    if (o->rc != 0)
        return;
    if ((k1 != NULL && metrics_label_escape(v1, e1, sizeof(e1)) < 0) ||
        (k2 != NULL && metrics_label_escape(v2, e2, sizeof(e2)) < 0)) {
        o->rc = -1;
        return;
    }
    int rc;
    if (k1 == NULL)
        rc = evbuffer_add_printf(o->b, "%s %s\n", name, value);
    else if (k2 == NULL)
        rc = evbuffer_add_printf(o->b, "%s{%s=\"%s\"} %s\n", name, k1, e1, value);
    else
        rc = evbuffer_add_printf(o->b, "%s{%s=\"%s\",%s=\"%s\"} %s\n", name, k1, e1, k2, e2, value);
    if (rc < 0)
        o->rc = -1;
}

static void out_i64(struct out *o, const char *name, const char *k1, const char *v1, const char *k2,
                    const char *v2, int64_t v)
{
    char value[24];
    snprintf(value, sizeof(value), "%" PRId64, v);
    out_sample(o, name, k1, v1, k2, v2, value);
}

static void out_u64(struct out *o, const char *name, const char *k1, const char *v1, const char *k2,
                    const char *v2, uint64_t v)
{
    char value[24];
    snprintf(value, sizeof(value), "%" PRIu64, v);
    out_sample(o, name, k1, v1, k2, v2, value);
}

static void out_gauge(struct out *o, const char *name, const char *help, int64_t v)
{
    out_family(o, name, "gauge", help);
    out_i64(o, name, NULL, NULL, NULL, NULL, v);
}

static void out_counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    out_family(o, name, "counter", help);
    out_u64(o, name, NULL, NULL, NULL, NULL, v);
}

/* A histogram; `in_seconds`: bounds and sum are microseconds, written as
 * seconds. */
static void out_hist(struct out *o, const char *name, const char *help, const struct hist *h,
                     const uint64_t *bounds, size_t nbounds, bool in_seconds)
{
    char bucket[96], le[32], value[32];
    out_family(o, name, "histogram", help);
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    uint64_t cum = 0;
    for (size_t i = 0; i < nbounds; i++) {
        cum += h->counts[i];
        if (in_seconds)
            seconds_text(bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "%" PRIu64, bounds[i]);
        out_u64(o, bucket, "le", le, NULL, NULL, cum);
    }
    out_u64(o, bucket, "le", "+Inf", NULL, NULL, h->count);
    snprintf(bucket, sizeof(bucket), "%s_sum", name);
    if (in_seconds)
        out_sample(o, bucket, NULL, NULL, NULL, NULL, seconds_text(h->sum, value, sizeof(value)));
    else
        out_u64(o, bucket, NULL, NULL, NULL, NULL, h->sum);
    snprintf(bucket, sizeof(bucket), "%s_count", name);
    out_u64(o, bucket, NULL, NULL, NULL, NULL, h->count);
}

static void out_process(struct out *o)
{
    char value[32];
    out_family(o, "process_start_time_seconds", "gauge",
               "Start time of the process since the Unix epoch, in seconds.");
    out_sample(o, "process_start_time_seconds", NULL, NULL, NULL, NULL,
               seconds_text((uint64_t)M.started_us, value, sizeof(value)));
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        uint64_t us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                      (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        out_family(o, "process_cpu_seconds_total", "counter",
                   "User and system CPU time spent, in seconds.");
        out_sample(o, "process_cpu_seconds_total", NULL, NULL, NULL, NULL,
                   seconds_text(us, value, sizeof(value)));
    }
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages_virt = 0, pages_res = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &pages_virt, &pages_res) == 2) {
            long page = sysconf(_SC_PAGESIZE);
            out_gauge(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                      (int64_t)(pages_virt * (unsigned long long)page));
            out_gauge(o, "process_resident_memory_bytes", "Resident memory size in bytes.",
                      (int64_t)(pages_res * (unsigned long long)page));
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int64_t n = 0;
        for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
            n += e->d_name[0] != '.';
        closedir(d);
        out_gauge(o, "process_open_fds", "Number of open file descriptors.", n - 1 /* d's own */);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out_gauge(o, "process_max_fds", "Maximum number of open file descriptors.",
                  (int64_t)rl.rlim_cur);
}

/* Row i (0..n) of the per-participant counters: participant i's own slot,
 * or at i == n the slot every participant beyond the arrays shares
 * ("_other"). NULL when there is no such row. */
static const char *slot(struct participant *const *all, size_t n, size_t i,
                        const struct per_participant **pp)
{
    if (i < n && all[i]->index < METRICS_PARTICIPANTS_MAX) {
        *pp = &M.parts[all[i]->index];
        return all[i]->code;
    }
    if (i == n && n > METRICS_PARTICIPANTS_MAX) {
        *pp = &M.parts[METRICS_PARTICIPANTS_MAX];
        return "_other";
    }
    return NULL;
}

static void out_participants(struct out *o)
{
    size_t n;
    struct participant *const *all = participant_all(&n);
    const struct per_participant *pp;
    const char *code;

    out_family(o, "sikka_transfers_settled_total", "counter",
               "Transfers settled (ACSC sent after COMMIT), by purpose and payer.");
    for (size_t i = 0; i <= n; i++)
        for (unsigned p = 0; (code = slot(all, n, i, &pp)) != NULL && p < PURPOSES; p++)
            if (p != PURPOSE_UNSPECIFIED || pp->settled[p] > 0)
                out_u64(o, "sikka_transfers_settled_total", "purpose", purpose_names[p],
                        "participant", code, pp->settled[p]);
    out_family(o, "sikka_transfers_settled_paisa_total", "counter",
               "Amounts settled in paisa, by purpose and payer.");
    for (size_t i = 0; i <= n; i++)
        for (unsigned p = 0; (code = slot(all, n, i, &pp)) != NULL && p < PURPOSES; p++)
            if (p != PURPOSE_UNSPECIFIED || pp->settled[p] > 0)
                out_u64(o, "sikka_transfers_settled_paisa_total", "purpose", purpose_names[p],
                        "participant", code, pp->settled_paisa[p]);
    out_family(o, "sikka_transfers_rejected_total", "counter",
               "Transfers rejected by the switch (RJCT), by reason code (OTHER: a code outside "
               "the switch's table) and payer.");
    for (size_t i = 0; i <= n; i++)
        for (unsigned r = 0; (code = slot(all, n, i, &pp)) != NULL && r < REASONS; r++)
            if (pp->rejected[r] > 0)
                out_u64(o, "sikka_transfers_rejected_total", "reason", reason_codes[r],
                        "participant", code, pp->rejected[r]);

    out_family(o, "sikka_sessions", "gauge", "Sessions registered, by participant.");
    for (size_t i = 0; i < n; i++)
        out_i64(o, "sikka_sessions", "participant", all[i]->code, NULL, NULL,
                (int64_t)all[i]->nsessions);
    out_family(o, "sikka_session_opens_total", "counter",
               "Sessions that registered since start, by participant.");
    for (size_t i = 0; i <= n; i++)
        if ((code = slot(all, n, i, &pp)) != NULL)
            out_u64(o, "sikka_session_opens_total", "participant", code, NULL, NULL,
                    pp->session_opens);

    out_family(o, "sikka_participant_position_paisa", "gauge",
               "Position in paisa: posted (committed balance, negative = owes) and reserved "
               "(debits routed, not yet posted).");
    for (size_t i = 0; i < n; i++) {
        out_i64(o, "sikka_participant_position_paisa", "participant", all[i]->code, "kind",
                "posted", all[i]->pos.posted);
        out_i64(o, "sikka_participant_position_paisa", "participant", all[i]->code, "kind",
                "reserved", all[i]->pos.reserved);
    }
    out_family(o, "sikka_participant_ndc_paisa", "gauge",
               "Net debit cap in paisa: posted - reserved may not go below -ndc.");
    for (size_t i = 0; i < n; i++)
        out_i64(o, "sikka_participant_ndc_paisa", "participant", all[i]->code, NULL, NULL,
                all[i]->pos.ndc);
    out_family(o, "sikka_participant_headroom_paisa", "gauge",
               "Room left under the net debit cap in paisa (posted - reserved + ndc).");
    for (size_t i = 0; i < n; i++)
        out_i64(o, "sikka_participant_headroom_paisa", "participant", all[i]->code, NULL, NULL,
                position_headroom(&all[i]->pos));
    out_family(o, "sikka_participant_active", "gauge",
               "1 when the participant is active, 0 when suspended.");
    for (size_t i = 0; i < n; i++)
        out_i64(o, "sikka_participant_active", "participant", all[i]->code, NULL, NULL,
                all[i]->status == PARTICIPANT_ACTIVE);
}

int metrics_write_prometheus(struct evbuffer *b)
{
    struct out o = {b, 0};
    struct router_stats rs;
    struct ledger_stats ls;
    uint64_t resent = 0, acked = 0;
    router_get_stats(&rs);
    ledger_get_stats(&ls);
    outbox_get_stats(&resent, &acked);

    out_gauge(&o, "sikka_up", "1 while the switch answers.", 1);
    out_gauge(&o, "sikka_ready",
              "1 when the switch takes transfers: it holds the fence, the ledger accepts "
              "postings and it is not draining.",
              fence_state() == FENCE_HELD && ledger_accepting() && !router_draining());
    out_process(&o);

    out_family(&o, "sikka_transfers_received_total", "counter",
               "Transfers and returns admitted (given a transfer id), by purpose.");
    for (unsigned p = 0; p < PURPOSES; p++)
        if (p != PURPOSE_UNSPECIFIED || M.received[p] > 0)
            out_u64(&o, "sikka_transfers_received_total", "purpose", purpose_names[p], NULL, NULL,
                    M.received[p]);
    out_participants(&o);
    out_counter(&o, "sikka_transfers_duplicates_total",
                "Retries answered from the idempotency index or found in the ledger.",
                rs.duplicates);
    out_counter(&o, "sikka_transfers_refused_total",
                "Transfers turned away retryably while the ledger was unavailable (nothing "
                "recorded).",
                rs.refused_unavailable);
    out_family(&o, "sikka_messages_rejected_total", "counter",
               "MessageReject frames sent (admi.002), by reason code.");
    for (unsigned r = 0; r < REASONS; r++)
        if (M.messages_rejected[r] > 0)
            out_u64(&o, "sikka_messages_rejected_total", "reason", reason_codes[r], NULL, NULL,
                    M.messages_rejected[r]);
    out_counter(&o, "sikka_messages_refused_total",
                "MessageReject frames marked retry (rate limit, ledger unavailable, draining).",
                M.messages_refused);

    out_hist(&o, "sikka_transfer_duration_seconds",
             "End to end: from reading the CreditTransfer to sending its ACSC.",
             &M.transfer_duration, duration_bounds, DURATION_BOUNDS, true);
    out_hist(&o, "sikka_db_commit_duration_seconds",
             "From sending a posting batch to its COMMIT returning.", &M.commit_duration,
             duration_bounds, DURATION_BOUNDS, true);
    out_hist(&o, "sikka_batch_size", "Transfers per committed posting batch.", &M.batch_size,
             batch_bounds, BATCH_BOUNDS, false);
    out_family(&o, "sikka_db_batch_failures_total", "counter",
               "Posting batches that failed: refused for their data (bisected) or retried "
               "(connection lost, transient error).");
    out_u64(&o, "sikka_db_batch_failures_total", "kind", "refused", NULL, NULL, ls.refused);
    out_u64(&o, "sikka_db_batch_failures_total", "kind", "retried", NULL, NULL, ls.retried);

    out_gauge(&o, "sikka_inflight_transfers", "Transfers admitted and not yet answered.",
              (int64_t)router_inflight());
    out_gauge(&o, "sikka_posting_queue_depth",
              "Decided transfers waiting for a posting batch (queued and pieces of refused "
              "batches).",
              (int64_t)ls.queued);
    out_gauge(&o, "sikka_posting_inflight_transfers",
              "Transfers in posting batches being committed.", (int64_t)ls.committing);
    if (M.outbox_known)
        out_gauge(&o, "sikka_payee_outbox_pending",
                  "Payee settlement notices not yet acknowledged (payee_outbox rows, counted "
                  "every few seconds).",
                  M.outbox_pending);
    out_counter(&o, "sikka_payee_notices_resent_total",
                "Payee settlement notices sent again from the outbox.", resent);
    out_counter(&o, "sikka_payee_notices_acknowledged_total",
                "Payee acknowledgements applied to the outbox.", acked);
    out_gauge(&o, "sikka_idempotency_keys", "Keys held by the in-memory idempotency index.",
              (int64_t)idem_count());
    out_gauge(&o, "sikka_connections", "Participant connections, handshaking ones included.",
              (int64_t)session_count());

    out_gauge(&o, "sikka_window_id", "The open settlement window.", M.win_id);
    if (M.win_seeded) {
        out_gauge(&o, "sikka_window_gross_paisa",
                  "Gross of the open window in paisa: the sum of its postings' debits.",
                  M.win_seed_gross + M.win_live_gross);
        out_gauge(&o, "sikka_window_postings", "Postings (settled transfers) in the open window.",
                  M.win_seed_postings + M.win_live_postings);
    }
    return o.rc;
}

/* ---- the dashboard's JSON ---- */

static json_t *ms(uint32_t us)
{
    return json_real((double)us / 1000.0);
}

json_t *metrics_stats_json(int64_t since)
{
    json_t *series = json_array();
    json_t *rejections = json_object();
    json_t *sessions = json_object();
    if (series == NULL || rejections == NULL || sessions == NULL)
        goto fail;
    for (size_t i = 0; i < M.ring_n; i++) {
        const struct second *s = &M.ring[(M.ring_head + i) % METRICS_SECONDS];
        if (s->t <= since)
            continue;
        double avg =
            s->batches > 0 ? (double)((uint64_t)s->batched * 100 / s->batches) / 100.0 : 0.0;
        json_t *row =
            json_pack("{s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:f}", "t", (json_int_t)s->t, "settled",
                      (json_int_t)s->settled, "rejected", (json_int_t)s->rejected, "p50_ms",
                      ms(s->p50_us), "p99_ms", ms(s->p99_us), "commit_p50_ms", ms(s->commit_p50_us),
                      "commit_p99_ms", ms(s->commit_p99_us), "batch_avg", avg);
        if (row == NULL || json_array_append_new(series, row) != 0)
            goto fail;
    }
    for (unsigned r = 0; r < REASONS; r++)
        if (M.rejected_by_reason[r] > 0 &&
            json_object_set_new(rejections, reason_codes[r],
                                json_integer((json_int_t)M.rejected_by_reason[r])) != 0)
            goto fail;
    size_t n;
    struct participant *const *all = participant_all(&n);
    for (size_t i = 0; i < n; i++)
        if (json_object_set_new(sessions, all[i]->code,
                                json_integer((json_int_t)all[i]->nsessions)) != 0)
            goto fail;
    json_t *gross = M.win_seeded ? json_integer(M.win_seed_gross + M.win_live_gross) : json_null();
    json_t *postings =
        M.win_seeded ? json_integer(M.win_seed_postings + M.win_live_postings) : json_null();
    return json_pack("{s:I, s:o, s:o, s:o, s:I, s:o, s:o}", "now",
                     (json_int_t)(wall_us() / 1000000), "series", series, "rejections", rejections,
                     "sessions", sessions, "window", (json_int_t)M.win_id, "window_gross", gross,
                     "window_postings", postings);
fail:
    log_error("event=oom what=metrics_stats");
    json_decref(series);
    json_decref(rejections);
    json_decref(sessions);
    return NULL;
}
