/*
 * sikka-switch: the daemon. Parses the command line, loads the config,
 * rebuilds state from the database, then runs one libevent loop for every
 * socket (participants, admin console, PostgreSQL) until SIGTERM drains it.
 *
 *   SIGTERM/SIGINT  drain: stop accepting, finish what is in flight, flush,
 *                   exit 0 (1 if the drain timed out with work unfinished)
 *   SIGHUP          reload the config (reloadable settings) and TLS material
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "admin.h"
#include "alias.h"
#include "bulk.h"
#include "config.h"
#include "fence.h"
#include "hmap.h"
#include "idem.h"
#include "ledger.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "outbox.h"
#include "participant.h"
#include "pgconn.h"
#include "recorder.h"
#include "recovery.h"
#include "router.h"
#include "rtp.h"
#include "session.h"
#include "sql.h"
#include "sync.h"
#include "tls.h"

static struct {
    struct event_base *base;
    struct config *cfg;
    const char *config_path;
    SSL_CTX *ssl_ctx;
    struct listener *listener;
    struct pgconn *ledger_db[LEDGER_MAX_CONNECTIONS];
    size_t nledger_db;
    struct pgconn *query_db; /* operators and state sync */
    struct pgconn *peer_db;  /* participants' status queries and return lookups */
    struct event *sig_term, *sig_int, *sig_hup;
    struct event *tick;
    struct event *drain_check;
    int64_t drain_deadline_ms;
    bool draining;
    bool active;          /* holds the fence and serves */
    struct event *warmup; /* until the database connections are ready */
    int64_t warmup_since_us;
    int64_t warmup_logged;
    int exit_code;
} M;

static void usage(FILE *out)
{
    fprintf(out, "usage: sikka-switch -c FILE [--check-config]\n"
                 "\n"
                 "  -c, --config FILE   the configuration file (see deploy/sikka.conf.example)\n"
                 "      --check-config  validate the configuration and TLS material, then exit\n"
                 "  -h, --help          this text\n"
                 "  -V, --version       print the version\n");
}

/* Descriptors kept for everything but sessions: the database connections,
 * the listeners, the admin console's clients, log and capture files. */
#define FD_RESERVE 256

/* max_sessions as the open-file limit allows: the soft limit is raised up
 * to the hard one when needed; what still does not fit is clamped, and said. */
static int64_t fit_open_files(int64_t max_sessions)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("event=rlimit_unknown why=\"%s\" max_sessions=%" PRId64, strerror(errno),
                 max_sessions);
        return max_sessions;
    }
    rlim_t want = (rlim_t)max_sessions + FD_RESERVE;
    /* raised only when the hard limit leaves room: soft already at hard is
     * not "raised" (the clamp below says what happens) */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want &&
        (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur)) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_warn("event=rlimit_raise_failed why=\"%s\"", strerror(errno));
            rl.rlim_cur = was;
        } else {
            log_info("event=rlimit_raised resource=nofile from=%llu to=%llu",
                     (unsigned long long)was, (unsigned long long)rl.rlim_cur);
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        int64_t fit = rl.rlim_cur > FD_RESERVE + 16 ? (int64_t)(rl.rlim_cur - FD_RESERVE) : 16;
        log_warn("event=max_sessions_clamped configured=%" PRId64 " used=%" PRId64
                 " why=\"the open-file limit is %llu (hard %llu)\"",
                 max_sessions, fit, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)rl.rlim_max);
        return fit;
    }
    return max_sessions;
}

static void apply_config(const struct config *cfg)
{
    enum log_level level = LOG_LEVEL_INFO;
    if (log_parse_level(cfg->log_level, &level) != 0)
        level = LOG_LEVEL_INFO; /* validated at load; cannot happen */
    log_set_level(level);
    struct session_options so = {
        .max_frame_bytes = cfg->max_frame_bytes,
        .max_bulk_frame_bytes = cfg->bulk_max_frame_bytes,
        .handshake_timeout_ms = cfg->handshake_timeout_ms,
        .heartbeat_interval_ms = cfg->heartbeat_interval_ms,
        .write_timeout_ms = cfg->write_timeout_ms,
        .max_inflight = cfg->session_max_inflight,
        .max_output_bytes = cfg->session_max_output_bytes,
        .max_sessions = fit_open_files(cfg->max_sessions),
        .max_handshakes_per_address = cfg->max_handshakes_per_address,
        .max_sessions_per_participant = cfg->max_sessions_per_participant,
        .participant_rate = cfg->participant_rate,
        .participant_burst = cfg->participant_burst,
        .max_frames_per_second = cfg->session_max_frames_per_second,
        .participant_max_frames = cfg->participant_max_frames_per_second,
        .max_malformed_per_second = cfg->session_max_malformed_per_second,
        .max_queries = cfg->session_max_queries,
        .max_output_bytes_total = cfg->max_output_bytes_total,
    };
    session_configure(&so);
    struct router_options ro = {
        .payee_timeout_ms = cfg->payee_timeout_ms,
        .max_amount = cfg->max_amount,
        .currency = cfg->currency,
        .ndc_warn_percent = cfg->ndc_warn_percent,
        .reconnect_grace_ms = cfg->reconnect_grace_ms,
    };
    router_configure(&ro);
    struct ledger_options lo = {
        .batch_max = cfg->batch_max_transfers,
        .window_us = cfg->batch_window_us,
    };
    ledger_configure(&lo);
    idem_set_limits((size_t)cfg->idempotency_cache_max, cfg->idempotency_cache_seconds * 1000);
    ops_configure(cfg->settlement_schedule, cfg->proposal_ttl_s);
    sync_configure(cfg->state_sync_seconds);
    struct alias_options ao = {
        .lookup_rate = cfg->alias_lookup_rate,
        .lookup_burst = cfg->alias_lookup_burst,
        .port_expiry_s = cfg->alias_port_expiry_s,
    };
    alias_configure(&ao);
}

/* The database refused or re-priced a posting: what the switch believes of
 * the scheme may be stale. */
static void on_ledger_refusal(void)
{
    sync_request("the ledger refused or re-priced a posting");
}

static void reload(void)
{
    char err[512];
    struct config *next = config_load(M.config_path, err, sizeof(err));
    if (next == NULL) {
        log_error("event=reload_failed why=\"%s\" action=keep_old_config", err);
        return;
    }
    if (!M.active) {
        /* a standby has nothing running to reconfigure: it keeps the file
         * for when it takes over (restart-only settings included) */
        config_free(M.cfg);
        M.cfg = next;
        log_info("event=config_reloaded path=%s role=standby", M.config_path);
        return;
    }
    if (config_check_reload(M.cfg, next, err, sizeof(err)) != 0) {
        log_error("event=reload_failed why=\"%s\" action=keep_old_config", err);
        config_free(next);
        return;
    }
    SSL_CTX *ctx = tls_server_ctx_new(next->tls_cert, next->tls_key, next->tls_ca, next->tls_crl,
                                      NULL, err, sizeof(err));
    if (ctx == NULL) {
        log_error("event=reload_failed why=\"%s\" action=keep_old_config", err);
        config_free(next);
        return;
    }
    SSL_CTX *admin_ctx = NULL;
    if (next->admin_listen[0] != '\0') {
        admin_ctx = admin_tls_ctx_new(next, err, sizeof(err));
        if (admin_ctx == NULL) {
            log_error("event=reload_failed why=\"admin console: %s\" action=keep_old_config", err);
            SSL_CTX_free(ctx);
            config_free(next);
            return;
        }
    }
    if (log_open(next->log_file) != 0)
        log_warn("event=reload_log_file_failed path=%s", next->log_file);
    /* new connections use the new TLS material; open ones keep theirs (the
     * SSL objects hold references to the old context) */
    session_set_ssl_ctx(ctx);
    SSL_CTX_free(M.ssl_ctx);
    M.ssl_ctx = ctx;
    size_t revoked = session_close_revoked(ctx);
    if (revoked > 0)
        log_warn("event=revoked_sessions_closed count=%zu crl=%s", revoked, next->tls_crl);
    if (admin_ctx != NULL)
        admin_set_tls_ctx(admin_ctx);
    apply_config(next);
    config_free(M.cfg);
    M.cfg = next;
    log_info("event=config_reloaded path=%s", M.config_path);
}

static void finish_drain(int code)
{
    M.exit_code = code;
    event_base_loopexit(M.base, NULL);
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = transfer_now_ms();
    bool work_left = router_inflight() > 0 || !ledger_idle();
    if (!work_left) {
        if (session_count() > 0 && session_all_flushed()) {
            session_close_all("switch shutting down");
        } else if (session_count() == 0) {
            log_info("event=drained");
            finish_drain(0);
            return;
        }
    }
    if (now > M.drain_deadline_ms) {
        log_error("event=drain_timeout inflight=%zu ledger_queued=%zu sessions=%zu "
                  "why=\"work unfinished; nothing unanswered was acknowledged\"",
                  router_inflight(), ledger_queued(), session_count());
        finish_drain(work_left ? 1 : 0);
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(M.drain_check, &tv);
}

static void start_drain(const char *why)
{
    if (M.draining)
        return;
    M.draining = true;
    log_info("event=drain_start why=%s inflight=%zu sessions=%zu", why, router_inflight(),
             session_count());
    /* closing the socket refuses new connections at once (a paused
     * listener would leave them hanging in the backlog) */
    listener_free(M.listener);
    M.listener = NULL;
    admin_stop();
    router_drain();
    M.drain_deadline_ms = transfer_now_ms() + M.cfg->drain_timeout_ms;
    M.drain_check = evtimer_new(M.base, on_drain_check, NULL);
    if (M.drain_check == NULL) {
        log_error("event=oom what=drain_timer action=exit_now");
        finish_drain(1);
        return;
    }
    struct timeval tv = {0, 0};
    evtimer_add(M.drain_check, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGHUP) {
        reload();
        return;
    }
    if (!M.active) {
        /* a standby has nothing in flight: it just stops waiting */
        log_info("event=standby_stopped why=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        finish_drain(0);
        return;
    }
    if (M.draining && sig == SIGINT) {
        log_warn("event=second_interrupt action=exit_now");
        finish_drain(1);
        return;
    }
    start_drain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    idem_evict(transfer_now_ms());
    recorder_flush();
}

static int write_pid_file(const char *path)
{
    if (path[0] == '\0')
        return 0;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        log_error("event=pid_file_failed path=%s why=\"%s\"", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0) {
        log_error("event=pid_file_failed path=%s why=\"%s\"", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The fence is held: load the ledger's state and serve. Runs once, from the
 * fence's callback; a failure stops the process (exit status 1). */
static void on_warmup(evutil_socket_t fd, short what, void *arg);

static void become_active(void)
{
    char err[1024];
    struct recovery_result rec;
    if (recovery_load(M.cfg->database_url, M.cfg->idempotency_cache_seconds,
                      M.cfg->idempotency_cache_max, &rec, err, sizeof(err)) != 0) {
        log_error("event=start_failed why=\"%s\"", err);
        goto fail;
    }
    log_info("event=state_recovered participants=%zu window=%" PRId64 " keys=%zu boot=%u",
             rec.participants, rec.window_id, rec.keys, rec.boot_id);
    size_t aliases = 0;
    int64_t alias_ms = 0;
    if (alias_load(M.cfg->database_url, &aliases, &alias_ms, err, sizeof(err)) != 0) {
        log_error("event=start_failed why=\"%s\"", err);
        goto fail;
    }
    log_info("event=aliases_loaded count=%zu ms=%" PRId64, aliases, alias_ms);

    /* posting connections (batches, and the window operations ordered with
     * them; each holds POSTING_KEY shared while it lives, see fence.h), one
     * for operators and state sync, one for participants' queries */
    M.nledger_db = (size_t)M.cfg->posting_connections;
    for (size_t i = 0; i < M.nledger_db; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ledger-%zu", i);
        M.ledger_db[i] =
            pgconn_new(M.base, name, M.cfg->database_url, sql_ledger_stmts, sql_ledger_nstmts);
        if (M.ledger_db[i] == NULL || pgconn_set_init(M.ledger_db[i], fence_posting_init_sql) != 0)
            goto fail;
    }
    M.query_db =
        pgconn_new(M.base, "query", M.cfg->database_url, sql_query_stmts, sql_query_nstmts);
    M.peer_db =
        pgconn_new(M.base, "peer-query", M.cfg->database_url, sql_query_stmts, sql_query_nstmts);
    if (M.query_db == NULL || M.peer_db == NULL)
        goto fail;
    if (metrics_start(M.base, M.query_db, rec.boot_id, rec.window_id) != 0 ||
        router_init(M.base, rec.boot_id, M.peer_db) != 0 || bulk_init(M.base, M.peer_db) != 0 ||
        rtp_init(M.base, rec.boot_id, M.peer_db) != 0 ||
        ledger_init(M.base, M.ledger_db, M.nledger_db, router_ledger_callback()) != 0 ||
        session_module_init(M.base, M.ssl_ctx) != 0 || ops_init(M.base, M.query_db) != 0 ||
        sync_init(M.base, M.query_db) != 0 || outbox_init(M.base, M.peer_db) != 0 ||
        alias_init(M.base, M.peer_db, M.query_db) != 0)
        goto fail;
    ledger_set_refusal_hook(on_ledger_refusal);
    ledger_set_resync_hook(sync_grace_check_all);
    for (int p = 0; p < 4; p++)
        router_set_fee((Sikka__V1__Purpose)p, &rec.fees[p]);
    ledger_set_window(rec.window_id);
    ledger_set_fee_account(rec.fee_account);
    apply_config(M.cfg);
    for (size_t i = 0; i < M.nledger_db; i++)
        if (pgconn_start(M.ledger_db[i]) != 0)
            goto fail;
    if (pgconn_start(M.query_db) != 0 || pgconn_start(M.peer_db) != 0)
        goto fail;
    /* the doors open once the database connections are: a participant's
     * first message is then answered from the ledger, not refused */
    M.warmup = event_new(M.base, -1, EV_PERSIST, on_warmup, NULL);
    if (M.warmup == NULL)
        goto fail;
    M.warmup_since_us = mono_us();
    struct timeval step = {0, 10 * 1000};
    event_add(M.warmup, &step);
    return;
fail:
    M.exit_code = 1;
    event_base_loopbreak(M.base);
}

static bool connections_ready(void)
{
    bool ledger = false;
    for (size_t i = 0; i < M.nledger_db; i++)
        ledger |= pgconn_is_ready(M.ledger_db[i]);
    return ledger && pgconn_is_ready(M.query_db) && pgconn_is_ready(M.peer_db);
}

/* Opens the console and the participant port: the switch is in service. */
static void open_doors(void)
{
    char err[512];
    /* the console first: once the participant port accepts, both are up */
    if (admin_start(M.base, M.cfg, err, sizeof(err)) != 0) {
        log_error("event=start_failed why=\"%s\"", err);
        goto fail;
    }
    M.listener = listener_new(M.base, M.cfg->listen);
    M.tick = event_new(M.base, -1, EV_PERSIST, on_tick, NULL);
    if (M.listener == NULL || M.tick == NULL)
        goto fail;
    struct timeval second = {1, 0};
    event_add(M.tick, &second);
    if (M.cfg->capture_file[0] != '\0' && recorder_open(M.cfg->capture_file) != 0)
        goto fail;
    rtp_load(); /* requests to pay: rules and open requests (RTP Later, expiry) */
    M.active = true;
    log_info("event=ready role=active fence_epoch=%" PRId64 " listen=%s port=%d admin_port=%d "
             "pid=%d",
             fence_epoch(), M.cfg->listen, listener_port(M.listener), admin_port(), (int)getpid());
    return;
fail:
    M.exit_code = 1;
    event_base_loopbreak(M.base);
}

static void on_warmup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    int64_t waited_ms = (mono_us() - M.warmup_since_us) / 1000;
    if (!connections_ready()) {
        if (waited_ms / 5000 != M.warmup_logged) {
            M.warmup_logged = waited_ms / 5000;
            log_warn("event=waiting_for_database ms=%" PRId64
                     " why=\"a posting, the query and the peer-query connections must be ready "
                     "before participants are let in\"",
                     waited_ms);
        }
        return;
    }
    event_free(M.warmup);
    M.warmup = NULL;
    log_info("event=database_ready ms=%" PRId64, waited_ms);
    open_doors();
}

/* Another switch took over: stop at once, as a fence would. Nothing is
 * drained or flushed to the database (this switch may not post); what was
 * in flight is in doubt and the new active's retries resolve it by key.
 * The log is written line by line; the capture file is closed. */
static void on_deposed(void)
{
    log_error("event=stopped exit=75 why=\"fenced: another switch is active\"");
    recorder_close();
    if (M.cfg->pid_file[0] != '\0')
        unlink(M.cfg->pid_file);
    _exit(75);
}

static int run(void)
{
    M.sig_term = evsignal_new(M.base, SIGTERM, on_signal, NULL);
    M.sig_int = evsignal_new(M.base, SIGINT, on_signal, NULL);
    M.sig_hup = evsignal_new(M.base, SIGHUP, on_signal, NULL);
    if (M.sig_term == NULL || M.sig_int == NULL || M.sig_hup == NULL) {
        log_error("event=start_failed why=\"cannot create signal events\"");
        return 1;
    }
    event_add(M.sig_term, NULL);
    event_add(M.sig_int, NULL);
    event_add(M.sig_hup, NULL);
    if (write_pid_file(M.cfg->pid_file) != 0)
        return 1;

    /* active only with the fence; until then a standby */
    char host[200] = "", holder[256];
    gethostname(host, sizeof(host) - 1);
    snprintf(holder, sizeof(holder), "%s:%d", host, (int)getpid());
    if (fence_init(M.base, M.cfg->database_url, holder, M.cfg->fence_takeover_ms, become_active,
                   on_deposed) != 0)
        return 1;
    log_info("event=starting role=standby pid=%d why=\"waiting for the fence\"", (int)getpid());
    event_base_dispatch(M.base);

    struct router_stats rs;
    struct ledger_stats ls;
    router_get_stats(&rs);
    ledger_get_stats(&ls);
    log_info("event=stopped exit=%d active=%d received=%" PRIu64 " settled=%" PRIu64
             " rejected=%" PRIu64 " duplicates=%" PRIu64 " batches=%" PRIu64 " max_batch=%" PRIu64
             " mean_commit_us=%" PRIu64 " attempts=%" PRIu64 " refused=%" PRIu64
             " retried=%" PRIu64,
             M.exit_code, M.active, rs.received, rs.settled, rs.rejected, rs.duplicates, ls.batches,
             ls.max_batch, ls.batches ? ls.commit_us / ls.batches : 0, ls.attempts, ls.refused,
             ls.retried);
    if (M.cfg->pid_file[0] != '\0')
        unlink(M.cfg->pid_file);
    return M.exit_code;
}

static void cleanup(void)
{
    /* before the database connections: their last answers must find the
     * admin requests abandoned, not their freed HTTP requests */
    admin_free();
    metrics_free();
    recorder_close();
    listener_free(M.listener);
    session_module_free();
    ledger_free();
    ops_free();
    sync_free();
    outbox_free();
    alias_free();
    fence_free();
    for (size_t i = 0; i < M.nledger_db; i++)
        pgconn_free(M.ledger_db[i]);
    pgconn_free(M.query_db);
    pgconn_free(M.peer_db);
    bulk_free();
    router_free();
    rtp_free();
    idem_free_all();
    participant_registry_free();
    if (M.sig_term)
        event_free(M.sig_term);
    if (M.sig_int)
        event_free(M.sig_int);
    if (M.sig_hup)
        event_free(M.sig_hup);
    if (M.tick)
        event_free(M.tick);
    if (M.warmup)
        event_free(M.warmup);
    if (M.drain_check)
        event_free(M.drain_check);
    if (M.ssl_ctx)
        SSL_CTX_free(M.ssl_ctx);
    if (M.base)
        event_base_free(M.base);
    config_free(M.cfg);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool check_only = false;
    int opt;
    log_setup("sikka-switch", LOG_LEVEL_INFO);
    metrics_init();
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            M.config_path = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sikka-switch 0.1.0\n");
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (M.config_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    /* before any I/O: a peer that vanishes mid-write must not kill us */
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    M.cfg = config_load(M.config_path, err, sizeof(err));
    if (M.cfg == NULL) {
        fprintf(stderr, "sikka-switch: %s\n", err);
        return 2;
    }
    M.ssl_ctx = tls_server_ctx_new(M.cfg->tls_cert, M.cfg->tls_key, M.cfg->tls_ca, M.cfg->tls_crl,
                                   NULL, err, sizeof(err));
    if (M.ssl_ctx == NULL) {
        fprintf(stderr, "sikka-switch: %s: %s\n", M.config_path, err);
        config_free(M.cfg);
        return 2;
    }
    if (M.cfg->admin_listen[0] != '\0') {
        SSL_CTX *admin_ctx = admin_tls_ctx_new(M.cfg, err, sizeof(err));
        if (admin_ctx == NULL) {
            fprintf(stderr, "sikka-switch: %s: admin console: %s\n", M.config_path, err);
            SSL_CTX_free(M.ssl_ctx);
            config_free(M.cfg);
            return 2;
        }
        SSL_CTX_free(admin_ctx);
    }
    if (check_only) {
        printf("%s: configuration OK\n", M.config_path);
        SSL_CTX_free(M.ssl_ctx);
        config_free(M.cfg);
        return 0;
    }
    if (log_open(M.cfg->log_file) != 0)
        return 2;
    enum log_level level = LOG_LEVEL_INFO;
    if (log_parse_level(M.cfg->log_level, &level) != 0)
        level = LOG_LEVEL_INFO; /* validated at load; cannot happen */
    log_set_level(level);
    hmap_seed_random();

    M.base = event_base_new();
    if (M.base == NULL || event_base_priority_init(M.base, 3) != 0) {
        log_error("event=start_failed why=\"cannot create the event loop\"");
        cleanup();
        return 1;
    }
    if (participant_registry_init() != 0 ||
        idem_init((size_t)M.cfg->idempotency_cache_max, M.cfg->idempotency_cache_seconds * 1000) !=
            0) {
        cleanup();
        return 1;
    }
    int rc = run();
    cleanup();
    return rc;
}
