/*
 * harness: what every integration test needs to drive the real daemon —
 * a fresh database cloned from the migrated template on the throwaway
 * PostgreSQL that tests/run.sh started, demo participants, a config, the
 * sikka-switch process itself, participant connections over real mutual TLS
 * (the shared client library), blocking SQL for assertions, the switch's log,
 * and waits that poll the database or the log until a stated timeout.
 *
 * Environment (set by tests/run.sh): SIKKA_TEST_PGHOST, SIKKA_TEST_PGPORT,
 * SIKKA_TEST_PGUSER, SIKKA_TEST_TEMPLATE, SIKKA_TEST_SWITCH_PASSWORD,
 * SIKKA_TEST_READER_PASSWORD (tests that log in as sikka_reader),
 * SIKKA_TEST_PKI. A missing variable fails the test with a message.
 *
 * Any failure exits the test process with status 1 after printing why and
 * the tail of the switch's log.
 */
#ifndef SIKKA_HARNESS_H
#define SIKKA_HARNESS_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "check.h"
#include "client.h"
#include "codec.h"

struct harness {
    char name[64];
    char dbname[96];
    char workdir[256];
    char config_path[300];
    char log_path[300];
    /* The PKI the config (tls_cert, tls_key, tls_ca, tls_crl) and every
     * connection use: SIKKA_TEST_PKI, shared by all tests. A test that
     * changes certificates (revokes one) copies it and points this at its
     * copy before h_write_config / h_start, and back when done. */
    char pki[256];
    char conninfo[512];       /* as the switch role */
    char super_conninfo[512]; /* as the superuser, on the test database */
    char extra_config[2048];
    char admin_addr[64]; /* "127.0.0.1:port" once h_admin() turned the console on */
    int admin_port;
    char ctl_out[65536]; /* what the last h_ctl() printed on stdout */
    int64_t proposal;    /* the last proposal h_propose_approve() made */
    int port;
    pid_t pid;
    PGconn *db;
    struct event_base *base;
    /* The notices the test's participants have seen, shared by every
     * h_connect like one participant process reconnecting: a notice the
     * switch sends again because a closed connection never acknowledged it
     * is dropped as a repeat (transfer ids are unique per database). */
    struct client_notices *notices;
    /* The other half of a switch pair (h_start_peer): a second sikka-switch
     * on the same database with its own port, config file and log.
     * h_swap_peer() exchanges these with port, pid, config_path and
     * log_path above, so that every helper acts on the other process. */
    int peer_port;
    pid_t peer_pid;
    char peer_config_path[300];
    char peer_log_path[300];
};

/* Creates the test database (from the template, with the template's own
 * database privileges), seeds participants (JAZZ EASY SADA NAYA KOKO MEZN
 * active, SUSP suspended) and a work dir. */
void h_init(struct harness *h, const char *name);

/* Extra config lines ("name = value\n...") for the next h_start. They
 * replace the test defaults of admin_listen (""), log_level (debug),
 * payee_timeout_ms (1500), drain_timeout_ms (5000) and reconnect_grace_ms
 * (0) when they set them. */
void h_config(struct harness *h, const char *extra);

/* A TCP port on 127.0.0.1 that is free right now (e.g. for admin_listen). */
int h_free_port(void);

/* Turns the admin console on for the next h_start, on a free port. */
void h_admin(struct harness *h);

/* Runs sikka-ctl against the console with the operator certificate (role
 * operator) and the NULL-terminated args; its stdout lands in h->ctl_out.
 * Returns its exit status (0 done, 1 refused, 2 usage or connection error). */
int h_ctl(struct harness *h, const char *const *args);
#define H_CTL(h, ...) h_ctl((h), (const char *const[]){__VA_ARGS__, NULL})
/* A tool (sikka-wallet, sikka-replay) as a child process: argv[0] is the
 * binary's path, argv NULL-terminated; its stdout goes to out, its stderr to
 * err (NULL: with stdout). The command line is echoed on stderr. A child
 * still running when the test exits (a CHECK failed) is killed then. */
pid_t h_spawn(const char *const *argv, const char *out, const char *err);
/* Waits up to timeout_ms for a child of h_spawn, pumping the harness's
 * connections meanwhile (a payee the test plays keeps answering); returns
 * its exit status. A signal or the time running out fails the test. */
int h_spawn_wait(struct harness *h, pid_t pid, int timeout_ms);
/* The whole of a (small) file, for a tool's output: buf, NUL-terminated;
 * "" when it cannot be read. */
const char *h_read_file(const char *path, char *buf, size_t len);

/* The same as operator `name`: <pki>/<name>.crt and .key (deploy/pki.sh
 * makes viewer, operator, supervisor and supervisor2; "operator-X" for
 * `deploy/pki.sh DIR operator X`). */
int h_ctl_as(struct harness *h, const char *name, const char *const *args);
#define H_CTL_AS(h, name, ...) h_ctl_as((h), (name), (const char *const[]){__VA_ARGS__, NULL})
/* The id in the last line "PROPOSED <id>" of what sikka-ctl printed;
 * CHECKs that it is there. */
int64_t h_ctl_proposed(struct harness *h);
/* Four-eyes: runs the command as operator `proposer`, CHECKs that it exits
 * 0 with "PROPOSED <id>" last, then runs `approve <id>` as `approver` and
 * returns that exit status (its output in h->ctl_out, the id in
 * h->proposal). */
int h_propose_approve(struct harness *h, const char *proposer, const char *approver,
                      const char *const *args);
#define H_FOUR_EYES(h, proposer, approver, ...)                                                    \
    h_propose_approve((h), (proposer), (approver), (const char *const[]){__VA_ARGS__, NULL})
/* The last line sikka-ctl printed (e.g. the closed window's id). */
const char *h_ctl_last_line(struct harness *h);
/* CHECKs that the last output contains needle. */
void h_ctl_expect(struct harness *h, const char *needle);

/* Writes the config file (h_start does it; tests of SIGHUP call it again). */
void h_write_config(struct harness *h);

/* Starts sikka-switch and waits until it accepts connections. */
void h_start(struct harness *h);
/* Starts a second sikka-switch on the same database (a switch pair), with
 * the config h_start writes but its own listen port (peer_port), config and
 * log. It does not wait for the port: while another switch holds the fence
 * it is a standby, which does not listen. A failed CHECK and h_cleanup stop
 * it like the first. */
void h_start_peer(struct harness *h);
/* Exchanges the two switches: h_kill, h_stop, h_running, h_wait_log,
 * h_log_has and h->port act on the other one from now on. */
void h_swap_peer(struct harness *h);
/* SIGTERM and h_wait_exit(h, 15000). */
int h_stop(struct harness *h);
/* Polls for the switch's exit, running h->base between tries; returns its
 * exit status. CHECKs that it exits within timeout_ms and not by a signal;
 * when it does not, the failure kills and reaps it (no stray process). */
int h_wait_exit(struct harness *h, int timeout_ms);
/* SIGKILL and reap. */
void h_kill(struct harness *h);
bool h_running(struct harness *h);

/* Drops the database and the work dir; stops the switch if running. */
void h_cleanup(struct harness *h);

/* Connects as participant `code` with <pki>/<code>.crt; CHECKs the handshake. */
struct client *h_connect(struct harness *h, const char *code);
/* Connects with explicit files (may fail: returns NULL with err set). */
struct client *h_connect_files(struct harness *h, const char *cert, const char *key, char *err,
                               size_t errlen);

/* Next frame within timeout_ms, skipping heartbeats; CHECKs one arrives
 * and that it, like every frame any client of the test received so far
 * (client_refused_frames), passes a strict proto3 decoder
 * (codec_check_strict). h_expect and h_silent check the same; h_cleanup
 * checks that no client refused a frame. */
Envelope *h_recv(struct client *c, int timeout_ms);
/* Next frame of this body type (other frames are a failure). */
Envelope *h_expect(struct client *c, Sikka__V1__Envelope__BodyCase body, int timeout_ms);
/* true when nothing arrives within timeout_ms and the connection stays
 * open; false (saying what came) at the first frame or at a close. A
 * bounded wait by nature: see harness.c. */
bool h_silent(struct client *c, int timeout_ms);

/* Sends a credit transfer with the usual fields. Like every h_send_* below,
 * it queues one frame on c, CHECKs that it was queued, and only reads the
 * strings it is given (the frame is packed before it returns). */
struct h_transfer {
    const char *msg_id;
    const char *debtor_agent; /* default: the connection's participant must be given */
    const char *creditor_agent;
    const char *debtor_account; /* default "03001234567" */
    const char *creditor_account;
    int64_t amount;
    const char *currency;       /* default "PKR" */
    Sikka__V1__Purpose purpose; /* default P2P */
    const char *loan_id;
    uint32_t instalment;
    const char *invoice;
};
void h_send_transfer(struct client *c, const struct h_transfer *t);

/* A P2P credit transfer of amount from one participant to another, with
 * h_send_transfer's defaults for every other field. */
void h_send_payment(struct client *c, const char *msg_id, const char *from, const char *to,
                    int64_t amount);
/* A payee's answer to transfer_id (reason NULL: none). */
void h_send_decision(struct client *c, uint64_t transfer_id, bool accept, const char *reason);
/* The same, with the payee's narrative (NULL: none). */
void h_send_decision_text(struct client *c, uint64_t transfer_id, bool accept, const char *reason,
                          const char *text);
/* A PaymentReturn of amount of original_transfer_id, with its reason code
 * and narrative (NULL: none). */
void h_send_return(struct client *c, const char *msg_id, uint64_t original_transfer_id,
                   int64_t amount, const char *reason, const char *text);

/* A payee answers the next forwarded transfer; returns its transfer id. */
uint64_t h_payee_decide(struct client *payee, bool accept, const char *reason);

/* The next frame on c within 5 s is a status report for msg_id with this
 * status and reason ("" for none); CHECKs all three and prints the reason
 * and text when there is a reason. Returns the report's transfer id (the
 * frame is freed). */
uint64_t h_expect_report(struct client *c, const char *msg_id, Sikka__V1__TxStatus status,
                         const char *reason);

/* CHECKs that two answers (MessageReject or StatusReport) are the same
 * frame byte for byte once what names the question is blanked: the
 * transfer id each was about (id_a, id_b: in the text and the id fields),
 * and for reports the answered message's own id, msg_id, end_to_end_id and
 * time. For answers that must not tell two situations apart (another
 * participant's transfer and one that does not exist). */
void h_check_same_answer(const Envelope *a, uint64_t id_a, const Envelope *b, uint64_t id_b);

/* A variable tests/run.sh sets; a missing one fails the test with a message. */
const char *h_env(const char *name);

/* Blocking SQL on the test database as superuser. */
PGresult *h_sql(struct harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t h_sql_int(struct harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The balance of code's position account, as the ledger holds it. */
int64_t h_position_balance(struct harness *h, const char *code);
/* Runs SQL as the switch role; returns the error text ("" on success). */
const char *h_sql_as_switch(struct harness *h, const char *sql, char *err, size_t errlen);
/* The same, for a query whose rows the test reads: returns its result (the
 * caller PQclears it), or NULL with the error text in err. */
PGresult *h_query_as_switch(struct harness *h, const char *sql, char *err, size_t errlen);

/* Connects to the test database over TCP as `user`, as a deployed client
 * would; CHECKs the login. The caller PQfinish()es it. */
PGconn *h_connect_as(struct harness *h, const char *user, const char *password);
/* Runs one statement on c inside BEGIN ... ROLLBACK, so nothing of it stays.
 * Returns 0 when it succeeded, -1 when it failed; sqlstate gets its SQLSTATE
 * ("00000" on success), err its primary message ("" on success). */
int h_sql_attempt(PGconn *c, const char *sql, char sqlstate[6], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Prints the last lines of the switch log (on failure). */
void h_dump_log(struct harness *h);

/* The switch's log as it stands (nothing yet: no lines): how many lines
 * contain needle; whether any does. */
int h_log_count(struct harness *h, const char *needle);
bool h_log_has(struct harness *h, const char *needle);

/* ---- time and waiting: every wait names its timeout and CHECKs it ---- */

/* Milliseconds on the monotonic clock, for deadlines and durations. */
int64_t h_now_ms(void);

/* Runs h->base for ms: connections answer heartbeats and queue what arrives
 * (for h_recv), callbacks set on a client run; nothing is taken off a
 * queue. */
void h_pump(struct harness *h, int ms);

/* Polls a one-value query (as h_sql_int) until it gives want, running
 * h->base between tries; CHECKs that happens within timeout_ms. */
void h_wait_sql_int(struct harness *h, int64_t want, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Polls the switch's log, running h->base between reads, until the lines
 * with any of the NULL-terminated needles number at least min (a line
 * counts once per needle it holds); CHECKs that happens within timeout_ms. */
void h_wait_log(struct harness *h, int min, int timeout_ms, const char *const *needles);
#define H_WAIT_LOG(h, min, timeout_ms, ...)                                                        \
    h_wait_log((h), (min), (timeout_ms), (const char *const[]){__VA_ARGS__, NULL})

/* Path of a file in the test PKI. */
const char *h_pki(struct harness *h, const char *file, char *buf, size_t len);

/* A TLS client context presenting the test PKI's <base>.crt/.key and
 * trusting its CA (e.g. "operator", "viewer", "JAZZ"); CHECKs it loads.
 * The caller frees it (SSL_CTX_free). */
SSL_CTX *h_tls_ctx(struct harness *h, const char *base);

#endif
