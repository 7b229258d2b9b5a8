#include "recovery.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idem.h"
#include "log.h"
#include "participant.h"
#include "sql.h"

static PGresult *query(PGconn *db, const char *sql, int n, const char *const *params,
                       const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(res));
        size_t l = strlen(err);
        while (l > 0 && err[l - 1] == '\n')
            err[--l] = '\0';
        PQclear(res);
        return NULL;
    }
    return res;
}

static int hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int load_participants(PGconn *db, struct recovery_result *out, char *err, size_t errlen)
{
    PGresult *res = query(db, sql_load_participants, 0, NULL, "loading participants", err, errlen);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        struct participant *p =
            participant_add(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
        if (p == NULL) {
            snprintf(err, errlen, "cannot register participant %s", PQgetvalue(res, i, 0));
            PQclear(res);
            return -1;
        }
        if (participant_parse_status(PQgetvalue(res, i, 3), &p->status) != 0)
            p->status = PARTICIPANT_SUSPENDED;
        p->pos.ndc = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        p->position_account = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        p->pos.posted = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        p->pos.reserved = 0;
        p->settlement_account = strtoll(PQgetvalue(res, i, 7), NULL, 10);
        p->ndc_grace = strtoll(PQgetvalue(res, i, 8), NULL, 10);
        log_info("event=participant_loaded code=%s status=%s ndc=%lld position=%lld", p->code,
                 participant_status_name(p->status), (long long)p->pos.ndc,
                 (long long)p->pos.posted);
    }
    out->participants = (size_t)PQntuples(res);
    PQclear(res);

    res = query(db, sql_load_scheme_accounts, 0, NULL, "loading scheme accounts", err, errlen);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        if (strcmp(PQgetvalue(res, i, 0), "fee") == 0)
            out->fee_account = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        else if (strcmp(PQgetvalue(res, i, 0), "scheme_settlement") == 0)
            out->scheme_settlement_account = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    }
    PQclear(res);
    if (out->fee_account == 0) {
        snprintf(err, errlen, "the scheme fee account is missing (schema not applied?)");
        return -1;
    }
    return 0;
}

static int preload_keys(PGconn *db, int64_t seconds, int64_t max, struct recovery_result *out,
                        char *err, size_t errlen)
{
    char secs[32], lim[32];
    snprintf(secs, sizeof(secs), "%lld", (long long)seconds);
    snprintf(lim, sizeof(lim), "%lld", (long long)max);
    const char *params[] = {secs, lim};
    PGresult *res =
        query(db, sql_preload_keys, 2, params, "preloading idempotency keys", err, errlen);
    if (res == NULL)
        return -1;
    /* newest first in the result; the index wants oldest first */
    for (int i = PQntuples(res) - 1; i >= 0; i--) {
        struct idem_entry e;
        memset(&e, 0, sizeof(e));
        snprintf(e.payer, sizeof(e.payer), "%s", PQgetvalue(res, i, 0));
        snprintf(e.msg_id, sizeof(e.msg_id), "%s", PQgetvalue(res, i, 1));
        if (hex_to_bytes(PQgetvalue(res, i, 2), e.fingerprint, sizeof(e.fingerprint)) != 0)
            continue;
        e.transfer_id = strtoull(PQgetvalue(res, i, 3), NULL, 10);
        e.kind = strcmp(PQgetvalue(res, i, 4), "return") == 0 ? TRANSFER_KIND_RETURN
                                                              : TRANSFER_KIND_TRANSFER;
        e.status = strcmp(PQgetvalue(res, i, 5), "ACSC") == 0 ? TRANSFER_ACSC : TRANSFER_RJCT;
        snprintf(e.reason, sizeof(e.reason), "%s", PQgetvalue(res, i, 6));
        snprintf(e.payee, sizeof(e.payee), "%s", PQgetvalue(res, i, 7));
        snprintf(e.end_to_end_id, sizeof(e.end_to_end_id), "%s", PQgetvalue(res, i, 8));
        e.amount = strtoll(PQgetvalue(res, i, 9), NULL, 10);
        e.fee = strtoll(PQgetvalue(res, i, 10), NULL, 10);
        e.original_id = strtoull(PQgetvalue(res, i, 11), NULL, 10);
        e.finished_ms = strtoll(PQgetvalue(res, i, 12), NULL, 10);
        e.reason_text = PQgetvalue(res, i, 13); /* copied by the index */
        snprintf(e.fee_payer, sizeof(e.fee_payer), "%s", PQgetvalue(res, i, 14));
        if (idem_add_finished(&e) != NULL)
            out->keys++;
    }
    PQclear(res);
    return 0;
}

int recovery_load(const char *conninfo, int64_t key_seconds, int64_t key_max,
                  struct recovery_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    PGconn *db = PQconnectdb(conninfo);
    PGresult *res = NULL;
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(db));
        size_t l = strlen(err);
        while (l > 0 && err[l - 1] == '\n')
            err[--l] = '\0';
        goto fail;
    }
    res = query(db, sql_check_schema, 0, NULL, "checking the schema", err, errlen);
    if (res == NULL)
        goto fail;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        snprintf(err, errlen,
                 "the database lacks Sikka's schema (up to 005): apply schema/ with "
                 "deploy/migrate.sh first");
        goto fail;
    }
    PQclear(res);
    res = NULL;
    /* positions, window, fees and keys from one snapshot: a posting that
     * commits meanwhile is either all in what is read or not at all */
    res = query(db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                "starting the recovery snapshot", err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    res = NULL;
    if (load_participants(db, out, err, errlen) != 0)
        goto fail;

    res = query(db, sql_open_window, 0, NULL, "finding the open settlement window", err, errlen);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) != 1) {
        snprintf(err, errlen, "expected exactly one open settlement window, found %d",
                 PQntuples(res));
        goto fail;
    }
    out->window_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;

    res = query(db, sql_load_fees, 0, NULL, "loading the fee schedule", err, errlen);
    if (res == NULL)
        goto fail;
    for (int i = 0; i < PQntuples(res); i++) {
        Sikka__V1__Purpose purpose;
        if (transfer_parse_purpose(PQgetvalue(res, i, 0), &purpose) != 0)
            continue;
        struct fee_rule *r = &out->fees[purpose];
        r->bps = (int32_t)strtol(PQgetvalue(res, i, 1), NULL, 10);
        r->min_fee = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        r->max_fee = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        r->payee_pays = strcmp(PQgetvalue(res, i, 4), "payee") == 0;
        log_info("event=fee_loaded purpose=%s bps=%d min=%lld max=%lld charged_to=%s",
                 PQgetvalue(res, i, 0), r->bps, (long long)r->min_fee, (long long)r->max_fee,
                 PQgetvalue(res, i, 4));
    }
    PQclear(res);
    res = NULL;

    if (preload_keys(db, key_seconds, key_max, out, err, errlen) != 0)
        goto fail;
    res = query(db, "COMMIT", 0, NULL, "ending the recovery snapshot", err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    res = NULL;

    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    const char *params[] = {host, pid};
    res = query(db, sql_boot, 2, params, "registering this boot", err, errlen);
    if (res == NULL)
        goto fail;
    out->boot_id = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(db);
    return 0;
fail:
    if (res != NULL)
        PQclear(res);
    PQfinish(db);
    return -1;
}
