#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CFG_STR(field, dflt, reload, doc)                                                          \
    {                                                                                              \
#field, CONFIG_STRING, dflt, offsetof(struct config, field), 0, 0, reload, doc             \
    }
#define CFG_INT(field, dflt, lo, hi, reload, doc)                                                  \
    {                                                                                              \
#field, CONFIG_INT, dflt, offsetof(struct config, field), lo, hi, reload, doc              \
    }

const struct config_setting config_settings[] = {
    CFG_STR(listen, "127.0.0.1:7443", false, "participant listener, host:port"),
    CFG_STR(tls_cert, NULL, false, "switch certificate, PEM"),
    CFG_STR(tls_key, NULL, false, "switch private key, PEM"),
    CFG_STR(tls_ca, NULL, false, "scheme CA that signs participant certificates, PEM"),
    CFG_STR(tls_crl, "", true,
            "certificate revocation list(s) of the CA, PEM; empty: none. SIGHUP reloads it and "
            "closes the sessions of newly revoked certificates"),
    CFG_INT(max_frame_bytes, "65536", 256, 16 << 20, true, "largest frame accepted"),
    CFG_INT(bulk_max_frame_bytes, "1048576", 256, 4 << 20, true,
            "largest frame accepted for a bulk of credit transfers (only that message may "
            "exceed max_frame_bytes)"),
    CFG_INT(handshake_timeout_ms, "5000", 100, 600000, true,
            "deadline from accept to a verified TLS handshake, however the peer trickles"),
    CFG_INT(max_handshakes_per_address, "32", 1, 1000000, true,
            "connections from one IP address still in the TLS handshake"),
    CFG_INT(heartbeat_interval_ms, "15000", 100, 3600000, true,
            "idle time before a ping; no answer within as long again closes"),
    CFG_INT(write_timeout_ms, "30000", 100, 3600000, true,
            "a peer that reads nothing for this long is closed"),
    CFG_INT(session_max_inflight, "4096", 1, 1000000, true,
            "transfers one session may have in flight before it is no longer read"),
    CFG_INT(session_max_output_bytes, "4194304", 65536, 1 << 30, true,
            "queued output that stops reading from that session"),
    CFG_INT(max_sessions, "10000", 1, 1000000, true,
            "connections accepted at once (clamped to the open-file limit)"),
    CFG_INT(max_sessions_per_participant, "32", 1, 100000, true,
            "sessions one participant may have open at once"),
    CFG_INT(participant_rate, "10000", 1, 10000000, true,
            "credit transfers and returns per second one participant may send"),
    CFG_INT(participant_burst, "20000", 1, 100000000, true,
            "how many above participant_rate it may send at once"),
    CFG_INT(session_max_frames_per_second, "50000", 1, 100000000, true,
            "frames of any kind one session may send per second; past it, it is read later"),
    CFG_INT(participant_max_frames_per_second, "50000", 1, 100000000, true,
            "frames of any kind all of one participant's sessions may send per second"),
    CFG_INT(session_max_malformed_per_second, "100", 1, 1000000, true,
            "malformed frames a session may send in a second before it is closed"),
    CFG_INT(session_max_queries, "64", 1, 1000000, true,
            "status queries one session may have waiting for the database"),
    CFG_INT(max_output_bytes_total, "536870912", 1048576, INT64_MAX, true,
            "output queued for all sessions together"),
    CFG_STR(admin_listen, "127.0.0.1:8443", false, "admin console, host:port; empty disables"),
    CFG_STR(admin_ca, "", false, "CA for operator certificates; empty means tls_ca"),
    CFG_STR(database_url, NULL, false, "libpq connection string or URI"),
    CFG_INT(fence_takeover_ms, "10000", 100, 3600000, false,
            "a switch that lost its fence and finds it held by another this long exits"),
    CFG_INT(reconnect_grace_ms, "10000", 0, 600000, true,
            "after a start or takeover, how long a payee with no session is awaited"),
    CFG_INT(payee_timeout_ms, "5000", 10, 20000, true,
            "payee decision deadline (Raast: credit within 20 s); then AB05"),
    CFG_INT(max_amount, "500000000", 1, INT64_MAX, true, "scheme limit per transfer, paisa"),
    CFG_STR(currency, "PKR", false, "the only accepted currency"),
    CFG_INT(ndc_warn_percent, "80", 1, 100, true, "share of the net debit cap that warns"),
    CFG_INT(posting_connections, "2", 1, 8, false,
            "database connections posting batches in parallel"),
    CFG_INT(batch_max_transfers, "2000", 1, 100000, true, "transfers per posting transaction"),
    CFG_INT(batch_window_us, "1000", 0, 1000000, true,
            "longest a batch waits to fill before it is sent (group commit)"),
    CFG_INT(idempotency_cache_seconds, "86400", 0, 31 * 86400, true,
            "finished keys kept in memory (also preloaded at start)"),
    CFG_INT(idempotency_cache_max, "2000000", 0, 100000000, true,
            "most finished keys kept in memory"),
    CFG_INT(drain_timeout_ms, "15000", 0, 600000, true, "SIGTERM: longest wait for in-flight work"),
    CFG_STR(log_level, "info", true, "debug, info, warn or error"),
    CFG_STR(log_file, "", true, "append log lines here; empty: stderr"),
    CFG_STR(pid_file, "", false, "write the process id here"),
    CFG_STR(capture_file, "", false, "record received transfers for sikka-replay; empty: off"),
    CFG_INT(state_sync_seconds, "30", 1, 86400, true,
            "re-read participants, caps, window and fees at least this often (changes "
            "made in the database are also notified at once)"),
    CFG_STR(settlement_schedule, "", true,
            "UTC times to close the settlement window, \"HH:MM,HH:MM\"; empty: manual"),
    CFG_INT(proposal_ttl_s, "3600", 1, 604800, true,
            "seconds a four-eyes proposal waits for its second operator; then it expires"),
    CFG_INT(alias_lookup_rate, "1000", 1, 10000000, true,
            "alias lookups (confirmation of payee) per second one participant may send; past "
            "it, a MessageReject with retry"),
    CFG_INT(alias_lookup_burst, "2000", 1, 100000000, true,
            "how many above alias_lookup_rate it may send at once"),
    CFG_INT(alias_port_expiry_s, "604800", 1, 31 * 86400, true,
            "a port of an alias that its holder does not release moves after this long"),
    {NULL, CONFIG_STRING, NULL, 0, 0, 0, false, NULL},
};

static char **str_field(struct config *cfg, const struct config_setting *s)
{
    return (char **)((char *)cfg + s->offset);
}

static int64_t *int_field(struct config *cfg, const struct config_setting *s)
{
    return (int64_t *)((char *)cfg + s->offset);
}

static const struct config_setting *find_setting(const char *name)
{
    for (const struct config_setting *s = config_settings; s->name != NULL; s++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static int parse_int(const char *value, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int set_value(struct config *cfg, const struct config_setting *s, const char *value,
                     const char *where, char *err, size_t errlen)
{
    if (s->type == CONFIG_STRING) {
        char *copy = strdup(value);
        if (copy == NULL) {
            snprintf(err, errlen, "%s: out of memory", where);
            return -1;
        }
        free(*str_field(cfg, s));
        *str_field(cfg, s) = copy;
        return 0;
    }
    int64_t v;
    if (parse_int(value, &v) != 0) {
        snprintf(err, errlen, "%s: %s must be a whole number, got \"%s\"", where, s->name, value);
        return -1;
    }
    if (v < s->min || v > s->max) {
        snprintf(err, errlen, "%s: %s must be between %lld and %lld, got %lld", where, s->name,
                 (long long)s->min, (long long)s->max, (long long)v);
        return -1;
    }
    *int_field(cfg, s) = v;
    return 0;
}

static int validate(const struct config *cfg, const char *origin, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (config_split_addr(cfg->listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "%s: listen must be host:port, got \"%s\"", origin, cfg->listen);
        return -1;
    }
    if (cfg->admin_listen[0] != '\0' &&
        config_split_addr(cfg->admin_listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "%s: admin_listen must be host:port or empty, got \"%s\"", origin,
                 cfg->admin_listen);
        return -1;
    }
    enum log_level level;
    if (log_parse_level(cfg->log_level, &level) != 0) {
        snprintf(err, errlen, "%s: log_level must be debug, info, warn or error, got \"%s\"",
                 origin, cfg->log_level);
        return -1;
    }
    if (strlen(cfg->currency) != 3) {
        snprintf(err, errlen, "%s: currency must be an ISO 4217 code, got \"%s\"", origin,
                 cfg->currency);
        return -1;
    }
    const char *p = cfg->settlement_schedule;
    while (*p != '\0') {
        int hh, mm, n = 0;
        if (sscanf(p, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59 || hh < 0 ||
            mm < 0 || (p[5] != ',' && p[5] != '\0')) {
            snprintf(err, errlen, "%s: settlement_schedule must be \"HH:MM,HH:MM,...\", got \"%s\"",
                     origin, cfg->settlement_schedule);
            return -1;
        }
        p += p[5] == ',' ? 6 : 5;
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

struct config *config_parse(const char *text, const char *origin, char *err, size_t errlen)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    char *copy = strdup(text);
    char seen[64] = {0};
    if (cfg == NULL || copy == NULL) {
        snprintf(err, errlen, "%s: out of memory", origin);
        goto fail;
    }
    for (const struct config_setting *s = config_settings; s->name != NULL; s++) {
        if (s->default_value != NULL &&
            set_value(cfg, s, s->default_value, "default", err, errlen) != 0)
            goto fail;
    }

    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char where[300];
        snprintf(where, sizeof(where), "%s:%d", origin, lineno);
        char *hash = NULL;
        /* a # starts a comment unless inside quotes */
        bool quoted = false;
        for (char *c = line; *c; c++) {
            if (*c == '"')
                quoted = !quoted;
            else if (*c == '#' && !quoted) {
                hash = c;
                break;
            }
        }
        if (hash != NULL)
            *hash = '\0';
        char *l = trim(line);
        if (*l == '\0')
            continue;
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s: expected \"name = value\", got \"%s\"", where, l);
            goto fail;
        }
        *eq = '\0';
        char *name = trim(l);
        char *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        const struct config_setting *s = find_setting(name);
        if (s == NULL) {
            snprintf(err, errlen, "%s: unknown setting \"%s\"", where, name);
            goto fail;
        }
        size_t idx = (size_t)(s - config_settings);
        if (idx < sizeof(seen) && seen[idx]) {
            snprintf(err, errlen, "%s: setting \"%s\" given twice", where, name);
            goto fail;
        }
        if (idx < sizeof(seen))
            seen[idx] = 1;
        if (set_value(cfg, s, value, where, err, errlen) != 0)
            goto fail;
    }
    for (const struct config_setting *s = config_settings; s->name != NULL; s++) {
        if (s->type == CONFIG_STRING && *str_field(cfg, s) == NULL) {
            snprintf(err, errlen, "%s: required setting \"%s\" is missing", origin, s->name);
            goto fail;
        }
    }
    if (validate(cfg, origin, err, errlen) != 0)
        goto fail;
    free(copy);
    return cfg;
fail:
    free(copy);
    config_free(cfg);
    return NULL;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            size_t ncap = (len + n + 1) * 2;
            char *t = realloc(text, ncap);
            if (t == NULL) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return NULL;
            }
            text = t;
            cap = ncap;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(text);
        snprintf(err, errlen, "%s: read error", path);
        return NULL;
    }
    if (text == NULL) {
        text = strdup("");
        if (text == NULL) {
            snprintf(err, errlen, "%s: out of memory", path);
            return NULL;
        }
    } else {
        text[len] = '\0';
    }
    struct config *cfg = config_parse(text, path, err, errlen);
    free(text);
    return cfg;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (const struct config_setting *s = config_settings; s->name != NULL; s++)
        if (s->type == CONFIG_STRING)
            free(*str_field(cfg, s));
    free(cfg);
}

int config_check_reload(const struct config *old_cfg, const struct config *new_cfg, char *err,
                        size_t errlen)
{
    for (const struct config_setting *s = config_settings; s->name != NULL; s++) {
        if (s->reloadable)
            continue;
        bool same;
        if (s->type == CONFIG_STRING)
            same = strcmp(*str_field((struct config *)old_cfg, s),
                          *str_field((struct config *)new_cfg, s)) == 0;
        else
            same =
                *int_field((struct config *)old_cfg, s) == *int_field((struct config *)new_cfg, s);
        if (!same) {
            snprintf(err, errlen, "setting \"%s\" cannot change on reload; restart instead",
                     s->name);
            return -1;
        }
    }
    return 0;
}

int config_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= hostlen)
        return -1;
    int64_t p;
    if (parse_int(colon + 1, &p) != 0 || p < 0 || p > 65535)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)p;
    return 0;
}
