#include "threshold.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the operator at *p, advancing past it. */
static int parse_op(const char **p, enum threshold_op *op)
{
    const char *s = *p;
    if (s[0] == '<' && s[1] == '=') {
        *op = THRESHOLD_LE;
        *p += 2;
    } else if (s[0] == '>' && s[1] == '=') {
        *op = THRESHOLD_GE;
        *p += 2;
    } else if (s[0] == '=' && s[1] == '=') {
        *op = THRESHOLD_EQ;
        *p += 2;
    } else if (s[0] == '<') {
        *op = THRESHOLD_LT;
        *p += 1;
    } else if (s[0] == '>') {
        *op = THRESHOLD_GT;
        *p += 1;
    } else {
        return -1;
    }
    return 0;
}

/* A non-negative decimal number at *p, advancing past it. */
static int parse_number(const char **p, double *out)
{
    if (!isdigit((unsigned char)**p) && **p != '.')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(*p, &end);
    if (end == *p || errno != 0 || !isfinite(v) || v < 0)
        return -1;
    *p = end;
    *out = v;
    return 0;
}

int threshold_parse(const char *text, struct threshold *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    char buf[THRESHOLD_TEXT_MAX + 1];
    size_t n = 0;
    for (const char *s = text; *s != '\0'; s++) {
        if (isspace((unsigned char)*s))
            continue;
        if (n == THRESHOLD_TEXT_MAX) {
            snprintf(err, errlen, "threshold \"%s\" is too long", text);
            return -1;
        }
        buf[n++] = *s;
    }
    buf[n] = '\0';
    snprintf(t->text, sizeof(t->text), "%s", buf);

    /* the metric is everything before the operator, matched whole */
    size_t mlen = strcspn(buf, "<>=");
    char metric[THRESHOLD_TEXT_MAX + 1];
    memcpy(metric, buf, mlen);
    metric[mlen] = '\0';
    const char *p = buf + mlen;
    bool latency = true;
    if (strcmp(metric, "errors") == 0) {
        t->metric = THRESHOLD_ERRORS;
        latency = false;
    } else if (strcmp(metric, "late") == 0) {
        t->metric = THRESHOLD_LATE;
        latency = false;
    } else if (strcmp(metric, "rate") == 0) {
        t->metric = THRESHOLD_RATE;
        latency = false;
    } else if (strcmp(metric, "max") == 0) {
        t->metric = THRESHOLD_MAX;
    } else if (strcmp(metric, "mean") == 0) {
        t->metric = THRESHOLD_MEAN;
    } else if (metric[0] == 'p' && isdigit((unsigned char)metric[1])) {
        const char *q = metric + 1;
        t->metric = THRESHOLD_PERCENTILE;
        if (parse_number(&q, &t->percentile) != 0 || *q != '\0' || t->percentile > 100) {
            snprintf(err, errlen, "threshold \"%s\": the percentile must be 0..100 (p99, p99.9)",
                     text);
            return -1;
        }
    } else {
        snprintf(err, errlen,
                 "threshold \"%s\": unknown metric (pNN, max, mean, errors, late or rate)", text);
        return -1;
    }
    if (parse_op(&p, &t->op) != 0) {
        snprintf(err, errlen, "threshold \"%s\": expected <, <=, >, >= or == after the metric",
                 text);
        return -1;
    }
    if (parse_number(&p, &t->limit) != 0) {
        snprintf(err, errlen, "threshold \"%s\": expected a number after the operator", text);
        return -1;
    }
    if (latency) {
        double scale = 1000; /* a bare number is milliseconds */
        if (strcmp(p, "us") == 0)
            scale = 1;
        else if (strcmp(p, "ms") == 0 || *p == '\0')
            scale = 1000;
        else if (strcmp(p, "s") == 0)
            scale = 1000000;
        else
            goto bad_unit;
        t->limit *= scale;
    } else if (t->metric == THRESHOLD_RATE) {
        if (*p != '\0' && strcmp(p, "/s") != 0)
            goto bad_unit;
    } else {
        if (strcmp(p, "%") == 0) {
            t->percent = true;
            if (t->limit > 100) {
                snprintf(err, errlen, "threshold \"%s\": a percentage above 100", text);
                return -1;
            }
        } else if (*p != '\0') {
            goto bad_unit;
        }
    }
    return 0;
bad_unit:
    snprintf(err, errlen,
             "threshold \"%s\": unexpected \"%s\" (latency: us, ms, s; errors and late: %% or a "
             "count; rate: /s)",
             text, p);
    return -1;
}

static bool compare(double v, enum threshold_op op, double limit)
{
    switch (op) {
    case THRESHOLD_LT:
        return v < limit;
    case THRESHOLD_LE:
        return v <= limit;
    case THRESHOLD_GT:
        return v > limit;
    case THRESHOLD_GE:
        return v >= limit;
    case THRESHOLD_EQ:
        return v == limit;
    }
    return false;
}

bool threshold_holds(const struct threshold *t, const struct threshold_metrics *m, char *why,
                     size_t whylen)
{
    double v = 0;
    char name[32];
    switch (t->metric) {
    case THRESHOLD_PERCENTILE:
        v = (double)hdr_percentile(m->latency, t->percentile);
        snprintf(name, sizeof(name), "p%g", t->percentile);
        break;
    case THRESHOLD_MAX:
        v = (double)hdr_max(m->latency);
        snprintf(name, sizeof(name), "max");
        break;
    case THRESHOLD_MEAN:
        v = (double)hdr_mean(m->latency);
        snprintf(name, sizeof(name), "mean");
        break;
    case THRESHOLD_ERRORS:
    case THRESHOLD_LATE: {
        uint64_t count = t->metric == THRESHOLD_ERRORS ? m->errors : m->late;
        snprintf(name, sizeof(name), "%s", t->metric == THRESHOLD_ERRORS ? "errors" : "late");
        v = (double)count;
        if (t->percent)
            v = m->sent != 0 ? 100.0 * (double)count / (double)m->sent : 0;
        break;
    }
    case THRESHOLD_RATE:
        v = m->rate;
        snprintf(name, sizeof(name), "rate");
        break;
    }
    bool ok = compare(v, t->op, t->limit);
    switch (t->metric) {
    case THRESHOLD_PERCENTILE:
    case THRESHOLD_MAX:
    case THRESHOLD_MEAN:
        snprintf(why, whylen, "%s: %s = %.3f ms", t->text, name, v / 1000.0);
        break;
    case THRESHOLD_RATE:
        snprintf(why, whylen, "%s: rate = %.1f/s", t->text, v);
        break;
    default:
        if (t->percent)
            snprintf(why, whylen, "%s: %s = %.4f%% of %llu sent", t->text, name, v,
                     (unsigned long long)m->sent);
        else
            snprintf(why, whylen, "%s: %s = %.0f", t->text, name, v);
        break;
    }
    return ok;
}
