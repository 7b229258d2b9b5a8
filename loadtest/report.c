#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* The percentiles every report lists. */
static const double report_pcts[] = {50, 90, 99, 99.9};
static const char *const report_pct_names[] = {"p50", "p90", "p99", "p99.9"};
#define REPORT_NPCTS (sizeof(report_pcts) / sizeof(report_pcts[0]))

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static double share(uint64_t part, uint64_t whole)
{
    return whole != 0 ? 100.0 * (double)part / (double)whole : 0;
}

/* The percentiles of the distribution chart: 0, 50, 75, 87.5, ... (four
 * steps per halving of what is left), as far as the count resolves, then
 * 100. Returns how many were written to out. */
static size_t distribution_points(const struct hdr *h, double *out, size_t max)
{
    size_t n = 0;
    uint64_t count = hdr_count(h);
    if (count == 0)
        return 0;
    for (int k = 0; n + 1 < max; k++) {
        double tail = pow(2.0, -(double)k / 4.0); /* share of values above */
        if (tail * (double)count < 1.0)
            break;
        out[n++] = 100.0 * (1.0 - tail);
    }
    out[n++] = 100.0;
    return n;
}

/* Unix ms as ISO 8601 UTC with milliseconds, into buf. */
static const char *report_wall(int64_t unix_ms, char *buf, size_t len)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char base[24];
    if (gmtime_r(&t, &tm) == NULL || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "%" PRId64 " ms", unix_ms);
        return buf;
    }
    snprintf(buf, len, "%s.%03dZ", base, (int)(unix_ms % 1000));
    return buf;
}

/* ---------------------------------------------------------------- text */

static void text_latency_row(FILE *out, const char *name, const struct hdr *h)
{
    fprintf(out, "    %-13s", name);
    for (size_t i = 0; i < REPORT_NPCTS; i++)
        fprintf(out, " %9.3f", ms(hdr_percentile(h, report_pcts[i])));
    fprintf(out, " %9.3f %9.3f\n", ms(hdr_max(h)), ms(hdr_mean(h)));
}

void report_text(FILE *out, const struct replay_result *r, const struct report_verdict *v)
{
    fprintf(out, "\nsikka-replay run: %s -> %s, mode %s", v->capture, v->target,
            replay_mode_name(r->mode));
    if (r->mode == REPLAY_CLOSED)
        fprintf(out, " (%u outstanding)", r->closed);
    else if (r->mode == REPLAY_SPEED)
        fprintf(out, " (x%g)", r->speed);
    fprintf(out, ", %u sessions for %u participants, started %s\n", r->sessions, r->participants,
            r->started_at);
    fprintf(out, "  capture            %" PRIu64 " records (%" PRIu64 " not replayable, skipped)\n",
            r->capture_records, r->skipped_records);
    fprintf(out, "  measured           %.2f s of sending; %" PRIu64 " sent in the warmup\n",
            r->elapsed_s, r->warmup_sent);
    fprintf(out,
            "  sent               %" PRIu64 " (retries %" PRIu64 ", malformed %" PRIu64
            ")   answered %" PRIu64 "   no answer %" PRIu64 "\n",
            r->sent, r->retries, r->malformed, r->answered, r->no_answer);
    if (r->requested_rate > 0)
        fprintf(out,
                "  rate               requested %.1f/s   achieved %.1f/s (%+.2f %%)   "
                "answered %.1f/s (%.1f/s settled)\n",
                r->requested_rate, r->achieved_rate,
                100.0 * (r->achieved_rate - r->requested_rate) / r->requested_rate, r->throughput,
                r->settled_rate);
    else
        fprintf(out,
                "  rate               achieved %.1f/s sent, %.1f/s answered (%.1f/s settled)\n",
                r->achieved_rate, r->throughput, r->settled_rate);
    if (r->mode != REPLAY_CLOSED)
        fprintf(out,
                "  late sends         %" PRIu64 " (%.3f %%) more than %d ms behind schedule; "
                "worst %.3f ms; %" PRIu64 " deferred\n",
                r->late, share(r->late, r->sent), REPLAY_LATE_US / 1000, ms(r->max_late_us),
                r->stalls);
    fprintf(out,
            "  as payees          %" PRIu64 " forwarded: %" PRIu64 " accepted, %" PRIu64
            " rejected, %" PRIu64 " ignored (%" PRIu64 " not ours)\n",
            r->forwards, r->accepts, r->rejects, r->ignores, r->unknown_forwards);
    fprintf(out, "  connections        %u sessions, %" PRIu64 " lost during the run%s%s\n",
            r->sessions, r->connection_failures, r->connection_failures ? ": " : "",
            r->first_failure);
    fprintf(out,
            "  reconnection       %" PRIu64 " sessions reopened, %u down at the end; %" PRIu64
            " refused to retry, %" PRIu64 " sent again\n",
            r->reconnects, r->sessions_down, r->refused_retryably, r->resent);
    fprintf(out,
            "  payee notices      %" PRIu64 " settled transfers notified, %" PRIu64
            " repeats dropped, %" PRIu64 " settled but never notified%s\n",
            r->payee_notices, r->payee_notice_repeats, r->acsc_without_notice,
            r->acsc_without_notice > 0 ? "  <-- FAIL" : "");
    fprintf(out, "  longest ACSC gap   %.3f ms", ms(r->max_acsc_gap_us));
    if (r->max_acsc_gap_us > 0) {
        char from[32], to[32];
        fprintf(out, " (from %s to %s)", report_wall(r->gap_from_ms, from, sizeof(from)),
                report_wall(r->gap_to_ms, to, sizeof(to)));
    }
    fputc('\n', out);

    fprintf(out, "\n  outcome               count    share  expected\n");
    for (size_t i = 0; i < r->noutcomes; i++) {
        const struct replay_outcome *o = &r->outcomes[i];
        char name[24];
        snprintf(name, sizeof(name), "%s %s", o->status, o->reason);
        fprintf(out, "    %-14s %10" PRIu64 " %7.3f %%  %s\n", name, o->count,
                share(o->count, r->sent), o->expected ? "yes" : "NO");
    }
    fprintf(out, "  errors             %" PRIu64 " (%.3f %% of sent)\n", r->errors,
            share(r->errors, r->sent));

    fprintf(out,
            "\n  latency (ms)         p50       p90       p99     p99.9       max      mean\n");
    text_latency_row(out, "corrected", r->corrected);
    text_latency_row(out, "uncorrected", r->uncorrected);

    if (v->nchecks > 0) {
        fprintf(out, "\n  thresholds\n");
        for (size_t i = 0; i < v->nchecks; i++)
            fprintf(out, "    %-4s %s\n", v->checks[i].ok ? "ok" : "FAIL", v->checks[i].why);
    }
    fprintf(out, "\n  verdict            %s\n", v->passed ? "PASS" : "FAIL");
}

/* ---------------------------------------------------------------- JSON */

static json_t *json_latency(const struct hdr *h)
{
    json_t *o = json_object();
    for (size_t i = 0; i < REPORT_NPCTS; i++)
        json_object_set_new(o, report_pct_names[i],
                            json_real(ms(hdr_percentile(h, report_pcts[i]))));
    json_object_set_new(o, "max", json_real(ms(hdr_max(h))));
    json_object_set_new(o, "min", json_real(ms(hdr_min(h))));
    json_object_set_new(o, "mean", json_real(ms(hdr_mean(h))));
    json_object_set_new(o, "count", json_integer((json_int_t)hdr_count(h)));
    return o;
}

static json_t *json_distribution(const struct hdr *h)
{
    double pts[200];
    size_t n = distribution_points(h, pts, sizeof(pts) / sizeof(pts[0]));
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:f,s:f}", "percentile", pts[i], "ms", ms(hdr_percentile(h, pts[i]))));
    return a;
}

int report_json(const char *path, const struct replay_result *r, const struct report_verdict *v,
                char *err, size_t errlen)
{
    json_t *o = json_object();
    json_object_set_new(o, "tool", json_string("sikka-replay run"));
    json_object_set_new(o, "format", json_integer(1));
    json_object_set_new(o, "started_at", json_string(r->started_at));
    json_object_set_new(o, "capture", json_string(v->capture));
    json_object_set_new(o, "target", json_string(v->target));
    json_object_set_new(o, "mode", json_string(replay_mode_name(r->mode)));
    if (r->mode == REPLAY_CLOSED)
        json_object_set_new(o, "closed", json_integer(r->closed));
    if (r->mode == REPLAY_SPEED)
        json_object_set_new(o, "speed", json_real(r->speed));
    json_object_set_new(o, "sessions", json_integer(r->sessions));
    json_object_set_new(o, "participants", json_integer(r->participants));
    json_object_set_new(o, "capture_records", json_integer((json_int_t)r->capture_records));
    json_object_set_new(o, "skipped_records", json_integer((json_int_t)r->skipped_records));
    json_object_set_new(o, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(o, "requested_rate", json_real(r->requested_rate));
    json_object_set_new(o, "achieved_rate", json_real(r->achieved_rate));
    json_object_set_new(
        o, "rate_error_percent",
        json_real(r->requested_rate > 0
                      ? 100.0 * (r->achieved_rate - r->requested_rate) / r->requested_rate
                      : 0));
    json_object_set_new(o, "throughput", json_real(r->throughput));
    json_object_set_new(o, "cpu_s",
                        json_pack("{s:f,s:f}", "user", r->cpu_user_s, "system", r->cpu_system_s));
    json_object_set_new(o, "settled_rate", json_real(r->settled_rate));
    json_object_set_new(o, "settled", json_integer((json_int_t)r->settled));
    json_object_set_new(o, "total_answered", json_integer((json_int_t)r->total_answered));
    json_object_set_new(o, "sent", json_integer((json_int_t)r->sent));
    json_object_set_new(o, "answered", json_integer((json_int_t)r->answered));
    json_object_set_new(o, "no_answer", json_integer((json_int_t)r->no_answer));
    json_object_set_new(o, "errors", json_integer((json_int_t)r->errors));
    json_object_set_new(o, "error_percent", json_real(share(r->errors, r->sent)));
    json_object_set_new(o, "late", json_integer((json_int_t)r->late));
    json_object_set_new(o, "max_late_ms", json_real(ms(r->max_late_us)));
    json_object_set_new(o, "deferred", json_integer((json_int_t)r->stalls));
    json_object_set_new(o, "retries", json_integer((json_int_t)r->retries));
    json_object_set_new(o, "malformed", json_integer((json_int_t)r->malformed));
    json_object_set_new(o, "warmup_sent", json_integer((json_int_t)r->warmup_sent));
    json_object_set_new(o, "total_sent", json_integer((json_int_t)r->total_sent));
    json_object_set_new(o, "unmatched", json_integer((json_int_t)r->unmatched));
    json_object_set_new(o, "payee",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "forwarded", (json_int_t)r->forwards,
                                  "accepted", (json_int_t)r->accepts, "rejected",
                                  (json_int_t)r->rejects, "ignored", (json_int_t)r->ignores,
                                  "unknown", (json_int_t)r->unknown_forwards));
    json_object_set_new(o, "connection_failures", json_integer((json_int_t)r->connection_failures));
    json_object_set_new(o, "first_failure", json_string(r->first_failure));
    json_object_set_new(o, "reconnects", json_integer((json_int_t)r->reconnects));
    json_object_set_new(o, "sessions_down", json_integer((json_int_t)r->sessions_down));
    json_object_set_new(o, "refused_retryably", json_integer((json_int_t)r->refused_retryably));
    json_object_set_new(o, "resent", json_integer((json_int_t)r->resent));
    json_object_set_new(o, "payee_notices", json_integer((json_int_t)r->payee_notices));
    json_object_set_new(o, "payee_notice_repeats",
                        json_integer((json_int_t)r->payee_notice_repeats));
    json_object_set_new(o, "acsc_without_notice", json_integer((json_int_t)r->acsc_without_notice));
    json_object_set_new(o, "max_acsc_gap_ms", json_real(ms(r->max_acsc_gap_us)));
    json_object_set_new(o, "gap_from_ms", json_integer((json_int_t)r->gap_from_ms));
    json_object_set_new(o, "gap_to_ms", json_integer((json_int_t)r->gap_to_ms));
    json_t *outcomes = json_array();
    for (size_t i = 0; i < r->noutcomes; i++) {
        const struct replay_outcome *oc = &r->outcomes[i];
        json_array_append_new(outcomes, json_pack("{s:s,s:s,s:I,s:b}", "status", oc->status,
                                                  "reason", oc->reason, "count",
                                                  (json_int_t)oc->count, "expected", oc->expected));
    }
    json_object_set_new(o, "outcomes", outcomes);
    json_object_set_new(o, "latency_ms",
                        json_pack("{s:o,s:o}", "corrected", json_latency(r->corrected),
                                  "uncorrected", json_latency(r->uncorrected)));
    json_object_set_new(o, "distribution_ms",
                        json_pack("{s:o,s:o}", "corrected", json_distribution(r->corrected),
                                  "uncorrected", json_distribution(r->uncorrected)));
    json_t *secs = json_array();
    for (size_t i = 0; i < r->nseconds; i++) {
        const struct replay_second *s = &r->seconds[i];
        json_array_append_new(
            secs, json_pack("{s:f,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:b}", "t", s->t, "sent",
                            (json_int_t)s->sent, "answered", (json_int_t)s->answered, "errors",
                            (json_int_t)s->errors, "p50_ms", ms(s->p50), "p90_ms", ms(s->p90),
                            "p99_ms", ms(s->p99), "max_ms", ms(s->max), "warmup", s->warmup));
    }
    json_object_set_new(o, "seconds", secs);
    json_t *checks = json_array();
    for (size_t i = 0; i < v->nchecks; i++)
        json_array_append_new(
            checks, json_pack("{s:s,s:b}", "result", v->checks[i].why, "ok", v->checks[i].ok));
    json_object_set_new(o, "thresholds", checks);
    json_object_set_new(o, "passed", json_boolean(v->passed));

    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot write the JSON report: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- HTML */

/* A chart's plot area and its scales. */
struct chart {
    double x, y, w, h; /* plot area in SVG units */
    double xmin, xmax, ymin, ymax;
    bool xlog; /* x is log10(1 / (1 - percentile)) */
};

static double cx(const struct chart *c, double v)
{
    double span = c->xmax - c->xmin;
    return c->x + (span > 0 ? (v - c->xmin) / span : 0) * c->w;
}

static double cy(const struct chart *c, double v)
{
    double span = c->ymax - c->ymin;
    return c->y + c->h - (span > 0 ? (v - c->ymin) / span : 0) * c->h;
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double range, int n)
{
    if (range <= 0)
        return 1;
    double raw = range / n;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void svg_y_axis(FILE *f, const struct chart *c, const char *label)
{
    double step = nice_step(c->ymax - c->ymin, 5);
    for (double v = 0; v <= c->ymax + step / 1000; v += step) {
        double y = cy(c, v);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", c->x, y,
                c->x + c->w, y);
        fprintf(f, "<text x='%.1f' y='%.1f' class='yl'>%g</text>", c->x - 6, y + 4, v);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' class='al' transform='rotate(-90 %.1f %.1f)'>%s</text>",
            c->x - 44, c->y + c->h / 2, c->x - 44, c->y + c->h / 2, label);
}

static void svg_polyline(FILE *f, const struct chart *c, const double *xs, const double *ys,
                         size_t n, const char *cls)
{
    if (n == 0)
        return;
    fprintf(f, "<polyline class='%s' points='", cls);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.1f,%.1f ", cx(c, xs[i]), cy(c, ys[i]));
    fputs("'/>", f);
}

static void svg_legend(FILE *f, const struct chart *c, const char *const *names,
                       const char *const *classes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double x = c->x + 10 + (double)i * 120, y = c->y - 10;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='%s'/>", x, y, x + 24, y,
                classes[i]);
        fprintf(f, "<text x='%.1f' y='%.1f' class='lg'>%s</text>", x + 30, y + 4, names[i]);
    }
}

/* Corrected p50 / p99 / max per second, with the warmup shaded. */
static int html_time_chart(FILE *f, const struct replay_result *r)
{
    size_t n = r->nseconds;
    double *xs = calloc(n + 1, sizeof(double));
    double *ys = calloc(3 * (n + 1), sizeof(double));
    if (xs == NULL || ys == NULL) {
        free(xs);
        free(ys);
        return -1;
    }
    struct chart c = {70, 30, 820, 260, 0, 1, 0, 1, false};
    for (size_t i = 0; i < n; i++) {
        const struct replay_second *s = &r->seconds[i];
        xs[i] = s->t;
        ys[i] = ms(s->p50);
        ys[n + i] = ms(s->p99);
        ys[2 * n + i] = ms(s->max);
        if (s->t > c.xmax)
            c.xmax = s->t;
        if (ms(s->max) > c.ymax)
            c.ymax = ms(s->max);
    }
    c.ymax = nice_step(c.ymax, 5) * ceil(c.ymax / nice_step(c.ymax, 5));
    fprintf(f, "<svg viewBox='0 0 920 340' role='img' aria-label='latency over time'>");
    for (size_t i = 0; i < n && r->seconds[i].warmup; i++)
        if (i + 1 == n || !r->seconds[i + 1].warmup)
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' class='warm'/>", c.x,
                    c.y, cx(&c, r->seconds[i].t) - c.x, c.h);
    svg_y_axis(f, &c, "latency, ms (corrected)");
    double step = nice_step(c.xmax, 10);
    for (double t = 0; t <= c.xmax + step / 1000; t += step)
        fprintf(f, "<text x='%.1f' y='%.1f' class='xl'>%g</text>", cx(&c, t), c.y + c.h + 18, t);
    fprintf(f, "<text x='%.1f' y='%.1f' class='al'>seconds since start</text>", c.x + c.w / 2,
            c.y + c.h + 38);
    svg_polyline(f, &c, xs, ys + 2 * n, n, "max");
    svg_polyline(f, &c, xs, ys + n, n, "p99");
    svg_polyline(f, &c, xs, ys, n, "p50");
    static const char *const names[] = {"p50", "p99", "max"};
    static const char *const classes[] = {"p50", "p99", "max"};
    svg_legend(f, &c, names, classes, 3);
    fputs("</svg>\n", f);
    free(xs);
    free(ys);
    return 0;
}

/* Latency by percentile, x on HdrHistogram's 1 / (1 - p) log scale. */
static void html_distribution_chart(FILE *f, const struct replay_result *r)
{
    double pts[200], xs[2][200], ys[2][200];
    size_t n[2];
    const struct hdr *hs[2] = {r->corrected, r->uncorrected};
    struct chart c = {70, 30, 820, 260, 0, 1, 0, 1, true};
    for (int k = 0; k < 2; k++) {
        n[k] = distribution_points(hs[k], pts, 200);
        for (size_t i = 0; i < n[k]; i++) {
            /* 100 % sits one decade past the last resolvable percentile */
            double tail = pts[i] >= 100 ? 0 : 1 - pts[i] / 100;
            xs[k][i] = tail > 0 ? log10(1 / tail) : (i > 0 ? xs[k][i - 1] + 0.5 : 0);
            ys[k][i] = ms(hdr_percentile(hs[k], pts[i]));
            if (xs[k][i] > c.xmax)
                c.xmax = xs[k][i];
            if (ys[k][i] > c.ymax)
                c.ymax = ys[k][i];
        }
    }
    c.ymax = nice_step(c.ymax, 5) * ceil(c.ymax / nice_step(c.ymax, 5));
    fprintf(f, "<svg viewBox='0 0 920 340' role='img' aria-label='latency by percentile'>");
    svg_y_axis(f, &c, "latency, ms");
    static const char *const labels[] = {"0%",     "90%",     "99%",     "99.9%",
                                         "99.99%", "99.999%", "99.9999%"};
    for (int d = 0; d <= 6 && d <= c.xmax; d++) {
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>", cx(&c, d), c.y,
                cx(&c, d), c.y + c.h);
        fprintf(f, "<text x='%.1f' y='%.1f' class='xl'>%s</text>", cx(&c, d), c.y + c.h + 18,
                labels[d]);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' class='al'>percentile</text>", c.x + c.w / 2,
            c.y + c.h + 38);
    svg_polyline(f, &c, xs[1], ys[1], n[1], "unc");
    svg_polyline(f, &c, xs[0], ys[0], n[0], "p99");
    static const char *const names[] = {"corrected", "uncorrected"};
    static const char *const classes[] = {"p99", "unc"};
    svg_legend(f, &c, names, classes, 2);
    fputs("</svg>\n", f);
}

static void html_row(FILE *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void html_row(FILE *f, const char *name, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(f, "<tr><th>%s</th><td>", name);
    html_escape(f, buf);
    fputs("</td></tr>\n", f);
}

int report_html(const char *path, const struct replay_result *r, const struct report_verdict *v,
                char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
          "<title>sikka-replay run</title>\n<style>\n"
          "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}\n"
          "table{border-collapse:collapse;margin:.5em 0 1.5em}"
          "th,td{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}"
          "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
          ".pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}\n"
          "svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd}\n"
          ".grid{stroke:#e3e3e3}.warm{fill:#f0f0f0}\n"
          "text{font:12px system-ui,sans-serif;fill:#555}.yl{text-anchor:end}"
          ".xl{text-anchor:middle}.al{text-anchor:middle;fill:#333}\n"
          "polyline{fill:none;stroke-width:1.6}line.p50,line.p99,line.max,line.unc{stroke-width:3}"
          "\n.p50{stroke:#1f77b4}.p99{stroke:#d62728}.max{stroke:#999}.unc{stroke:#2ca02c}\n"
          "</style></head><body>\n",
          f);
    fprintf(f, "<h1>sikka-replay run <span class='%s'>%s</span></h1>\n",
            v->passed ? "pass" : "fail", v->passed ? "PASS" : "FAIL");
    fputs("<table>\n", f);
    html_row(f, "capture", "%s (%" PRIu64 " records)", v->capture, r->capture_records);
    html_row(f, "switch", "%s", v->target);
    html_row(f, "started", "%s", r->started_at);
    if (r->mode == REPLAY_CLOSED)
        html_row(f, "mode", "closed loop, %u outstanding", r->closed);
    else if (r->mode == REPLAY_RATE)
        html_row(f, "mode", "open loop at %.1f/s", r->requested_rate);
    else
        html_row(f, "mode", "recorded timing x%g (%.1f/s)", r->speed, r->requested_rate);
    html_row(f, "sessions", "%u for %u participants, %" PRIu64 " lost", r->sessions,
             r->participants, r->connection_failures);
    html_row(f, "reconnection",
             "%" PRIu64 " sessions reopened, %u down at the end; %" PRIu64
             " refused to retry, %" PRIu64 " sent again",
             r->reconnects, r->sessions_down, r->refused_retryably, r->resent);
    html_row(f, "payee notices",
             "%" PRIu64 " settled transfers notified, %" PRIu64 " repeats dropped, %" PRIu64
             " settled but never notified",
             r->payee_notices, r->payee_notice_repeats, r->acsc_without_notice);
    char from[32] = "-", to[32] = "-";
    if (r->max_acsc_gap_us > 0) {
        report_wall(r->gap_from_ms, from, sizeof(from));
        report_wall(r->gap_to_ms, to, sizeof(to));
    }
    html_row(f, "longest ACSC gap", "%.3f ms (from %s to %s)", ms(r->max_acsc_gap_us), from, to);
    html_row(f, "measured", "%.2f s, %" PRIu64 " sent, %" PRIu64 " answered", r->elapsed_s, r->sent,
             r->answered);
    html_row(f, "rate", "achieved %.1f/s sent, %.1f/s answered", r->achieved_rate, r->throughput);
    if (r->mode != REPLAY_CLOSED)
        html_row(f, "late sends", "%" PRIu64 " (%.3f %%), worst %.3f ms", r->late,
                 share(r->late, r->sent), ms(r->max_late_us));
    html_row(f, "errors", "%" PRIu64 " (%.3f %%)", r->errors, share(r->errors, r->sent));
    fputs("</table>\n<h2>Latency (ms)</h2>\n<table><tr><th></th>", f);
    for (size_t i = 0; i < REPORT_NPCTS; i++)
        fprintf(f, "<th>%s</th>", report_pct_names[i]);
    fputs("<th>max</th><th>mean</th></tr>\n", f);
    const struct hdr *hs[2] = {r->corrected, r->uncorrected};
    static const char *const hnames[2] = {"corrected", "uncorrected"};
    for (int k = 0; k < 2; k++) {
        fprintf(f, "<tr><th>%s</th>", hnames[k]);
        for (size_t i = 0; i < REPORT_NPCTS; i++)
            fprintf(f, "<td class='n'>%.3f</td>", ms(hdr_percentile(hs[k], report_pcts[i])));
        fprintf(f, "<td class='n'>%.3f</td><td class='n'>%.3f</td></tr>\n", ms(hdr_max(hs[k])),
                ms(hdr_mean(hs[k])));
    }
    fputs("</table>\n<h2>Latency over time</h2>\n", f);
    if (html_time_chart(f, r) != 0) {
        fclose(f);
        snprintf(err, errlen, "out of memory drawing the chart");
        return -1;
    }
    fputs("<h2>Latency by percentile</h2>\n", f);
    html_distribution_chart(f, r);
    fputs("<h2>Outcomes</h2>\n<table><tr><th>status</th><th>reason</th><th>count</th>"
          "<th>share</th><th>expected</th></tr>\n",
          f);
    for (size_t i = 0; i < r->noutcomes; i++) {
        const struct replay_outcome *o = &r->outcomes[i];
        fprintf(f,
                "<tr><td>%s</td><td>%s</td><td class='n'>%" PRIu64
                "</td><td class='n'>%.3f %%</td><td>%s</td></tr>\n",
                o->status, o->reason, o->count, share(o->count, r->sent),
                o->expected ? "yes" : "<span class='fail'>no</span>");
    }
    fputs("</table>\n", f);
    if (v->nchecks > 0) {
        fputs("<h2>Thresholds</h2>\n<table>\n", f);
        for (size_t i = 0; i < v->nchecks; i++) {
            fprintf(f, "<tr><td class='%s'>%s</td><td>", v->checks[i].ok ? "pass" : "fail",
                    v->checks[i].ok ? "ok" : "FAIL");
            html_escape(f, v->checks[i].why);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    if (r->connection_failures > 0) {
        fputs("<p class='fail'>First lost session: ", f);
        html_escape(f, r->first_failure);
        fputs("</p>\n", f);
    }
    fputs("</body></html>\n", f);
    if (ferror(f) != 0 || fclose(f) != 0) {
        snprintf(err, errlen, "%s: cannot write the HTML report: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
