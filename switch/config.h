/*
 * config: the switch's settings, declared once in a table (config.c) that
 * gives each its name, type, default, bounds and whether SIGHUP may change it.
 * The file format is `name = value` per line, `#` comments, values optionally
 * in double quotes. Unknown or repeated names are errors.
 *
 * A struct config is immutable once loaded; a reload builds a new one and the
 * caller swaps it in only when it validated (the old one stays on failure).
 */
#ifndef SIKKA_CONFIG_H
#define SIKKA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config {
    /* participant listener */
    char *listen;                 /* host:port */
    char *tls_cert;               /* switch certificate (PEM) */
    char *tls_key;                /* its private key */
    char *tls_ca;                 /* the scheme CA that signs participant certificates */
    char *tls_crl;                /* its revocation list(s), "" for none */
    int64_t max_frame_bytes;      /* largest accepted frame */
    int64_t bulk_max_frame_bytes; /* largest accepted bulk frame */
    int64_t handshake_timeout_ms; /* absolute deadline from accept */
    int64_t max_handshakes_per_address;
    int64_t heartbeat_interval_ms;
    int64_t write_timeout_ms;
    int64_t session_max_inflight;
    int64_t session_max_output_bytes;
    int64_t max_sessions;
    int64_t max_sessions_per_participant;
    int64_t participant_rate; /* transfers and returns per second */
    int64_t participant_burst;
    int64_t session_max_frames_per_second;
    int64_t participant_max_frames_per_second;
    int64_t session_max_malformed_per_second;
    int64_t session_max_queries;
    int64_t max_output_bytes_total;

    /* admin console */
    char *admin_listen; /* host:port, "" disables */
    char *admin_ca;     /* CA for operator certificates; "" = tls_ca */

    /* database */
    char *database_url; /* libpq conninfo or URI */
    int64_t fence_takeover_ms;
    int64_t reconnect_grace_ms;

    /* scheme rules */
    int64_t payee_timeout_ms;
    int64_t max_amount; /* paisa, per transfer */
    char *currency;
    int64_t ndc_warn_percent;

    /* posting */
    int64_t posting_connections;
    int64_t batch_max_transfers;
    int64_t batch_window_us;

    /* idempotency */
    int64_t idempotency_cache_seconds;
    int64_t idempotency_cache_max;

    /* process */
    int64_t drain_timeout_ms;
    char *log_level;
    char *log_file;
    char *pid_file;
    char *capture_file;         /* record received frames; "" disables */
    char *settlement_schedule;  /* "HH:MM,HH:MM,..." UTC window closes; "" = manual */
    int64_t proposal_ttl_s;     /* a four-eyes proposal's time to be approved */
    int64_t state_sync_seconds; /* backstop re-read of the scheme's state */

    /* the alias directory (alias.h) */
    int64_t alias_lookup_rate;   /* alias lookups a second per participant */
    int64_t alias_lookup_burst;  /* above the rate, at once */
    int64_t alias_port_expiry_s; /* a port not released moves after this long */
};

enum config_type {
    CONFIG_STRING = 0,
    CONFIG_INT,
};

struct config_setting {
    const char *name;
    enum config_type type;
    const char *default_value; /* NULL: required */
    size_t offset;
    int64_t min, max; /* CONFIG_INT bounds */
    bool reloadable;
    const char *doc;
};

/* The table, terminated by a NULL name. */
extern const struct config_setting config_settings[];

/* Loads and validates `path`. On failure returns NULL and writes a message
 * naming the file, line and setting into err. */
struct config *config_load(const char *path, char *err, size_t errlen);

/* Builds a config from defaults and `text` (the file's contents). */
struct config *config_parse(const char *text, const char *origin, char *err, size_t errlen);

void config_free(struct config *cfg);

/* Checks that every setting that differs between old and new is reloadable;
 * names the first one that is not. */
int config_check_reload(const struct config *old_cfg, const struct config *new_cfg, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* Splits "host:port" into parts. */
int config_split_addr(const char *addr, char *host, size_t hostlen, int *port)
    __attribute__((warn_unused_result));

#endif
