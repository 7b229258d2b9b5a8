#include "scenario.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

static const char *const purpose_names[SCENARIO_PURPOSES] = {"bnpl", "supplier", "p2p"};

void scenario_defaults(struct scenario *s)
{
    memset(s, 0, sizeof(*s));
    s->count = 10000;
    static const char *const codes[] = {"JAZZ", "EASY", "SADA", "NAYA", "KOKO", "MEZN"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        snprintf(s->participants[i], sizeof(s->participants[i]), "%s", codes[i]);
    s->nparticipants = sizeof(codes) / sizeof(codes[0]);
    snprintf(s->lender, sizeof(s->lender), "KOKO");
    snprintf(s->bank, sizeof(s->bank), "MEZN");
    s->accounts = 1000;
    s->mix[SCENARIO_BNPL] = 60;
    s->mix[SCENARIO_SUPPLIER] = 25;
    s->mix[SCENARIO_P2P] = 15;
    s->amount[SCENARIO_BNPL] = (struct scenario_range){50000, 500000};
    s->amount[SCENARIO_SUPPLIER] = (struct scenario_range){1000000, 200000000};
    s->amount[SCENARIO_P2P] = (struct scenario_range){10000, 5000000};
    s->bank_share = 70;
    s->retry_rate = 0.02;
    s->reject_rate = 0.01;
    s->ignore_rate = 0;
    s->malformed_rate = 0.001;
    s->rate = 1000;
    s->seed = 1;
    s->start_ms = 1767225600000; /* 2026-01-01T00:00:00Z: fixed, so a seed fixes the file */
}

static bool in_list(const struct scenario *s, const char *code)
{
    for (size_t i = 0; i < s->nparticipants; i++)
        if (strcmp(s->participants[i], code) == 0)
            return true;
    return false;
}

int scenario_set_participants(struct scenario *s, const char *list, char *err, size_t errlen)
{
    size_t n = 0;
    const char *p = list;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char code[16];
        if (len == 0 || len >= sizeof(code)) {
            snprintf(err, errlen, "participants \"%s\": expected CODE,CODE,... (4 letters each)",
                     list);
            return -1;
        }
        memcpy(code, p, len);
        code[len] = '\0';
        if (!msg_valid_agent(code)) {
            snprintf(err, errlen,
                     "participants: \"%s\" is not a participant code (4 uppercase "
                     "letters)",
                     code);
            return -1;
        }
        if (n == SCENARIO_MAX_PARTICIPANTS) {
            snprintf(err, errlen, "participants: at most %d", SCENARIO_MAX_PARTICIPANTS);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (strcmp(s->participants[i], code) == 0) {
                snprintf(err, errlen, "participants: %s is listed twice", code);
                return -1;
            }
        }
        memcpy(s->participants[n++], code, SCENARIO_CODE_LEN + 1); /* validated: 4 letters */
        p += len;
        if (*p == ',')
            p++;
    }
    if (n < 2) {
        snprintf(err, errlen, "participants \"%s\": at least two are needed", list);
        return -1;
    }
    s->nparticipants = n;
    if (!in_list(s, s->lender))
        s->lender[0] = '\0';
    if (!in_list(s, s->bank))
        s->bank[0] = '\0';
    return 0;
}

int scenario_set_mix(struct scenario *s, const char *text, char *err, size_t errlen)
{
    unsigned mix[SCENARIO_PURPOSES] = {0};
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (eq == NULL) {
            snprintf(err, errlen, "mix \"%s\": expected NAME=WEIGHT,... (bnpl, supplier, p2p)",
                     text);
            return -1;
        }
        size_t nlen = (size_t)(eq - p);
        int which = -1;
        for (int i = 0; i < SCENARIO_PURPOSES; i++)
            if (strlen(purpose_names[i]) == nlen && strncmp(p, purpose_names[i], nlen) == 0)
                which = i;
        if (which < 0) {
            snprintf(err, errlen, "mix \"%s\": unknown purpose \"%.*s\" (bnpl, supplier, p2p)",
                     text, (int)nlen, p);
            return -1;
        }
        char *end;
        errno = 0;
        unsigned long w = strtoul(eq + 1, &end, 10);
        if (end == eq + 1 || end != p + len || errno != 0 || w > 1000000) {
            snprintf(err, errlen, "mix \"%s\": weight of %s must be a whole number", text,
                     purpose_names[which]);
            return -1;
        }
        mix[which] = (unsigned)w;
        p += len;
        if (*p == ',')
            p++;
    }
    if (mix[0] + mix[1] + mix[2] == 0) {
        snprintf(err, errlen, "mix \"%s\": the weights sum to zero", text);
        return -1;
    }
    memcpy(s->mix, mix, sizeof(mix));
    return 0;
}

int scenario_parse_range(const char *text, struct scenario_range *r, char *err, size_t errlen)
{
    char lo[64], why[160];
    const char *colon = strchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(lo)) {
        snprintf(err, errlen, "range \"%s\": expected MIN:MAX in rupees (e.g. 500:5000)", text);
        return -1;
    }
    memcpy(lo, text, (size_t)(colon - text));
    lo[colon - text] = '\0';
    struct scenario_range out;
    if (money_parse(lo, &out.min, why, sizeof(why)) != 0 ||
        money_parse(colon + 1, &out.max, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "range \"%s\": %s", text, why);
        return -1;
    }
    if (out.min <= 0 || out.max < out.min) {
        snprintf(err, errlen, "range \"%s\": need 0 < MIN <= MAX", text);
        return -1;
    }
    *r = out;
    return 0;
}

int scenario_parse_rate(const char *text, double *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !(v >= 0 && v <= 1)) {
        snprintf(err, errlen, "\"%s\" is not a share between 0 and 1 (e.g. 0.02)", text);
        return -1;
    }
    *out = v;
    return 0;
}

int scenario_validate(const struct scenario *s, char *err, size_t errlen)
{
    if (s->count == 0) {
        snprintf(err, errlen, "--count must be at least 1");
        return -1;
    }
    if (s->accounts == 0) {
        snprintf(err, errlen, "--accounts must be at least 1");
        return -1;
    }
    if (!(s->rate > 0)) {
        snprintf(err, errlen, "--rate must be above 0");
        return -1;
    }
    if (s->mix[SCENARIO_BNPL] > 0 && s->lender[0] == '\0') {
        snprintf(err, errlen, "BNPL repayments need a lender among the participants (--lender)");
        return -1;
    }
    /* supplier payments and P2P need two participants that are not the lender */
    size_t others = s->nparticipants - (s->lender[0] != '\0' ? 1 : 0);
    if ((s->mix[SCENARIO_SUPPLIER] > 0 || s->mix[SCENARIO_P2P] > 0) && others < 2) {
        snprintf(err, errlen,
                 "supplier and P2P payments need two participants besides the "
                 "lender");
        return -1;
    }
    if (s->mix[SCENARIO_BNPL] > 0 && others < 1) {
        snprintf(err, errlen, "BNPL repayments need a payer besides the lender");
        return -1;
    }
    if (s->reject_rate + s->ignore_rate > 1) {
        snprintf(err, errlen, "--reject-rate and --ignore-rate add up to more than 1");
        return -1;
    }
    if (s->retry_rate + s->malformed_rate >= 1) {
        snprintf(err, errlen, "--retry-rate and --malformed-rate leave no room for transfers");
        return -1;
    }
    if (s->bank_share > 100) {
        snprintf(err, errlen, "--bank-share is a percentage (0..100)");
        return -1;
    }
    return 0;
}

char *scenario_to_json(const struct scenario *s)
{
    json_t *o = json_object();
    json_t *parts = json_array();
    json_t *mix = json_object();
    json_t *amounts = json_object();
    char *out = NULL;
    if (o == NULL || parts == NULL || mix == NULL || amounts == NULL)
        goto done;
    for (size_t i = 0; i < s->nparticipants; i++)
        json_array_append_new(parts, json_string(s->participants[i]));
    for (int i = 0; i < SCENARIO_PURPOSES; i++) {
        json_object_set_new(mix, purpose_names[i], json_integer(s->mix[i]));
        json_t *r = json_pack("{s:I,s:I}", "min_paisa", (json_int_t)s->amount[i].min, "max_paisa",
                              (json_int_t)s->amount[i].max);
        json_object_set_new(amounts, purpose_names[i], r);
    }
    json_object_set_new(o, "generator", json_string("sikka-replay gen"));
    json_object_set_new(o, "count", json_integer((json_int_t)s->count));
    json_object_set(o, "participants", parts);
    json_object_set_new(o, "lender", json_string(s->lender));
    json_object_set_new(o, "bank", json_string(s->bank));
    json_object_set_new(o, "accounts", json_integer(s->accounts));
    json_object_set(o, "mix", mix);
    json_object_set(o, "amounts", amounts);
    json_object_set_new(o, "bank_share_percent", json_integer(s->bank_share));
    json_object_set_new(o, "retry_rate", json_real(s->retry_rate));
    json_object_set_new(o, "reject_rate", json_real(s->reject_rate));
    json_object_set_new(o, "ignore_rate", json_real(s->ignore_rate));
    json_object_set_new(o, "malformed_rate", json_real(s->malformed_rate));
    json_object_set_new(o, "rate", json_real(s->rate));
    json_object_set_new(o, "seed", json_integer((json_int_t)s->seed));
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
done:
    json_decref(parts);
    json_decref(mix);
    json_decref(amounts);
    json_decref(o);
    return out;
}
