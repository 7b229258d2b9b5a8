/* metrics: the per-second histogram's buckets and quantiles, label
 * escaping, the `since` parser, the seconds ring (roll, gaps, the stats
 * JSON) and the exposition the counters produce, without a loop or a
 * database. */
#include <event2/buffer.h>
#include <jansson.h>

#include "check.h"
#include "clock.h"
#include "metrics.h"
#include "participant.h"

/* |got - want| within 1/16 of want (the fine histogram's promise). */
static void check_near(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;
    CHECK(diff * 16 <= want, "got %" PRIu64 ", want %" PRIu64 " within 6.25%%", got, want);
}

static void test_fine(void)
{
    TEST_STEP("fine buckets: exact below 8 us, monotonic, 8 per power of two");
    for (uint64_t v = 0; v < 8; v++)
        CHECK_INT(metrics_fine_index(v), v);
    CHECK_INT(metrics_fine_index(8), 8);
    CHECK_INT(metrics_fine_index(15), 15);
    CHECK_INT(metrics_fine_index(16), 16);
    CHECK_INT(metrics_fine_index(17), 16); /* 16..17 share a bucket of width 2 */
    CHECK_INT(metrics_fine_index(18), 17);
    unsigned prev = 0;
    for (uint64_t v = 1; v < (UINT64_C(1) << 29); v += v / 7 + 1) {
        unsigned i = metrics_fine_index(v);
        CHECK(i >= prev && i < METRICS_FINE_BUCKETS, "v=%" PRIu64 " i=%u prev=%u", v, i, prev);
        prev = i;
    }
    CHECK_INT(metrics_fine_index(UINT64_MAX), METRICS_FINE_BUCKETS - 1);

    TEST_STEP("quantiles: empty, exact small values, a uniform spread, a tail");
    struct metrics_fine h;
    memset(&h, 0, sizeof(h));
    CHECK_INT(metrics_fine_quantile(&h, 500), 0);
    metrics_fine_add(&h, 3);
    CHECK_INT(metrics_fine_quantile(&h, 500), 3);
    CHECK_INT(metrics_fine_quantile(&h, 990), 3);
    memset(&h, 0, sizeof(h));
    for (uint64_t v = 1; v <= 10000; v++)
        metrics_fine_add(&h, v * 100); /* 100 us .. 1 s */
    CHECK_INT(h.n, 10000);
    check_near(metrics_fine_quantile(&h, 500), 500000);
    check_near(metrics_fine_quantile(&h, 990), 990000);
    check_near(metrics_fine_quantile(&h, 1000), 1000000);
    check_near(metrics_fine_quantile(&h, 1), 1000); /* the 10th of 10000 */
    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 98; i++)
        metrics_fine_add(&h, 2000);
    metrics_fine_add(&h, 150000);
    metrics_fine_add(&h, 150000);
    check_near(metrics_fine_quantile(&h, 500), 2000);
    check_near(metrics_fine_quantile(&h, 980), 2000);
    check_near(metrics_fine_quantile(&h, 990), 150000);
}

static void test_text(void)
{
    TEST_STEP("label values: backslash, quote and newline escaped; nothing else");
    char out[64];
    CHECK_INT(metrics_label_escape("JAZZ", out, sizeof(out)), 4);
    CHECK_STR(out, "JAZZ");
    CHECK(metrics_label_escape("a\"b\\c\nd", out, sizeof(out)) > 0);
    CHECK_STR(out, "a\\\"b\\\\c\\nd");
    CHECK(metrics_label_escape("caf\xc3\xa9 {x=1}", out, sizeof(out)) > 0);
    CHECK_STR(out, "caf\xc3\xa9 {x=1}");
    CHECK_INT(metrics_label_escape("", out, sizeof(out)), 0);
    CHECK_STR(out, "");
    CHECK_INT(metrics_label_escape("abcd", out, 4), -1);
    CHECK_INT(metrics_label_escape("ab\"", out, 4), -1);
    CHECK_INT(metrics_label_escape("abc", out, 4), 3);

    TEST_STEP("since: decimal digits only");
    int64_t v = -1;
    CHECK(metrics_parse_since("0", &v) == 0 && v == 0);
    CHECK(metrics_parse_since("1767225600", &v) == 0 && v == 1767225600);
    CHECK(metrics_parse_since("999999999999999999", &v) == 0 && v == INT64_C(999999999999999999));
    static const char *const bad[] = {
        "", "-1", "+1", " 1", "1 ", "1e3", "0x1", "1.", "a", "1a1", "9999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(metrics_parse_since(bad[i], &v) != 0, "since \"%s\" accepted", bad[i]);
    CHECK(metrics_parse_since(NULL, &v) != 0);
}

/* A settled P2P transfer of `payer` that took `us`. */
static void settle(struct participant *payer, int64_t amount, int64_t us)
{
    struct transfer t;
    memset(&t, 0, sizeof(t));
    t.kind = TRANSFER_KIND_TRANSFER;
    t.purpose = SIKKA__V1__PURPOSE__P2P;
    t.amount = amount;
    t.payer_index = payer->index;
    t.received_us = mono_us() - us;
    metrics_transfer_received(&t);
    metrics_transfer_settled(&t);
}

static json_t *stats(int64_t since)
{
    json_t *j = metrics_stats_json(since);
    CHECK(json_is_object(j), "stats JSON");
    return j;
}

static void test_seconds(void)
{
    TEST_STEP("seconds: one rolls into the series, skipped ones come back empty");
    metrics_init();
    CHECK(participant_registry_init() == 0);
    struct participant *jazz = participant_add("JAZZ", "Jazz", "wallet");
    struct participant *koko = participant_add("KOKO", "Koko", "bnpl");
    CHECK(jazz != NULL && koko != NULL && jazz->index == 0 && koko->index == 1);
    metrics_tick(1000);
    for (int i = 0; i < 10; i++)
        settle(jazz, 150000, 2000); /* 2 ms each */
    settle(koko, 500, 40000);
    metrics_transfer_rejected("AM23", jazz->index);
    metrics_transfer_rejected("ZZ99", koko->index); /* not in the table: OTHER */
    metrics_batch_committed(8, 3000, mono_us());
    metrics_batch_committed(5, 3000, mono_us());
    json_t *j = stats(0);
    CHECK_INT(json_array_size(json_object_get(j, "series")), 0); /* 1000 is not whole yet */
    json_decref(j);
    metrics_tick(1000); /* early: nothing */
    metrics_tick(1001);
    metrics_tick(1004); /* 1001 closes empty, 1002 and 1003 were skipped */
    j = stats(0);
    json_t *series = json_object_get(j, "series");
    CHECK_INT(json_array_size(series), 4);
    json_t *s0 = json_array_get(series, 0);
    CHECK_INT(json_integer_value(json_object_get(s0, "t")), 1000);
    CHECK_INT(json_integer_value(json_object_get(s0, "settled")), 11);
    CHECK_INT(json_integer_value(json_object_get(s0, "rejected")), 2);
    double p50 = json_real_value(json_object_get(s0, "p50_ms"));
    double p99 = json_real_value(json_object_get(s0, "p99_ms"));
    CHECK(p50 > 1.8 && p50 < 2.2, "p50 %f ms", p50);
    CHECK(p99 > 37.0 && p99 < 43.0, "p99 %f ms", p99);
    double c50 = json_real_value(json_object_get(s0, "commit_p50_ms"));
    CHECK(c50 > 2.8 && c50 < 3.2, "commit p50 %f ms", c50);
    CHECK(json_real_value(json_object_get(s0, "batch_avg")) == 6.5);
    for (size_t i = 1; i < 4; i++) {
        json_t *s = json_array_get(series, i);
        CHECK_INT(json_integer_value(json_object_get(s, "t")), 1000 + (int64_t)i);
        CHECK_INT(json_integer_value(json_object_get(s, "settled")), 0);
        CHECK(json_real_value(json_object_get(s, "p99_ms")) == 0.0);
    }
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "rejections"), "AM23")), 1);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "rejections"), "OTHER")), 1);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "sessions"), "KOKO")), 0);
    CHECK(json_is_null(json_object_get(j, "window_gross")), "unknown before the seed");
    json_decref(j);

    TEST_STEP("since: only later seconds");
    j = stats(1002);
    CHECK_INT(json_array_size(json_object_get(j, "series")), 1);
    json_decref(j);
    j = stats(5000);
    CHECK_INT(json_array_size(json_object_get(j, "series")), 0);
    json_decref(j);

    TEST_STEP("the ring keeps the last METRICS_SECONDS seconds; a long jump is bounded");
    metrics_tick(1004 + 3 * METRICS_SECONDS);
    j = stats(0);
    series = json_object_get(j, "series");
    CHECK_INT(json_array_size(series), METRICS_SECONDS);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(series, METRICS_SECONDS - 1), "t")),
              1004 + 3 * METRICS_SECONDS - 1);
    json_decref(j);

    TEST_STEP("a newer window starts from zero, known at once");
    metrics_window_opened(7);
    metrics_batch_window(7);
    settle(jazz, 1000, 100);
    j = stats(0);
    CHECK_INT(json_integer_value(json_object_get(j, "window")), 7);
    CHECK_INT(json_integer_value(json_object_get(j, "window_gross")), 1000);
    CHECK_INT(json_integer_value(json_object_get(j, "window_postings")), 1);
    json_decref(j);
    metrics_batch_window(6); /* an older batch's: not the open window's */
    settle(jazz, 1000, 100);
    j = stats(0);
    CHECK_INT(json_integer_value(json_object_get(j, "window")), 7);
    CHECK_INT(json_integer_value(json_object_get(j, "window_postings")), 1);
    json_decref(j);

    TEST_STEP("the exposition: counters by label, cumulative buckets, seconds exact");
    struct evbuffer *b = evbuffer_new();
    CHECK(b != NULL && metrics_write_prometheus(b) == 0);
    size_t len = evbuffer_get_length(b);
    char *text = calloc(1, len + 1);
    CHECK(text != NULL);
    CHECK(evbuffer_remove(b, text, len) == (int)len);
    evbuffer_free(b);
    static const char *const lines[] = {
        "# TYPE sikka_transfers_settled_total counter\n",
        "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"JAZZ\"} 12\n",
        "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"KOKO\"} 1\n",
        "sikka_transfers_settled_total{purpose=\"RETURN\",participant=\"JAZZ\"} 0\n",
        "sikka_transfers_settled_paisa_total{purpose=\"P2P\",participant=\"JAZZ\"} 1502000\n",
        "sikka_transfers_received_total{purpose=\"P2P\"} 13\n",
        "sikka_transfers_rejected_total{reason=\"AM23\",participant=\"JAZZ\"} 1\n",
        "sikka_transfers_rejected_total{reason=\"OTHER\",participant=\"KOKO\"} 1\n",
        "# TYPE sikka_transfer_duration_seconds histogram\n",
        "sikka_transfer_duration_seconds_bucket{le=\"0.0005\"} 2\n",
        "sikka_transfer_duration_seconds_bucket{le=\"0.0025\"} 12\n",
        "sikka_transfer_duration_seconds_bucket{le=\"0.025\"} 12\n",
        "sikka_transfer_duration_seconds_bucket{le=\"0.05\"} 13\n",
        "sikka_transfer_duration_seconds_bucket{le=\"20\"} 13\n",
        "sikka_transfer_duration_seconds_bucket{le=\"+Inf\"} 13\n",
        "sikka_transfer_duration_seconds_count 13\n",
        "sikka_db_commit_duration_seconds_sum 0.006\n",
        "sikka_batch_size_bucket{le=\"5\"} 1\n",
        "sikka_batch_size_bucket{le=\"10\"} 2\n",
        "sikka_batch_size_sum 13\n",
        "sikka_batch_size_count 2\n",
        "sikka_sessions{participant=\"JAZZ\"} 0\n",
        "sikka_window_id 7\n",
        "sikka_window_postings 1\n",
        "sikka_up 1\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        CHECK(strstr(text, lines[i]) != NULL, "missing: %s--- exposition:\n%s", lines[i], text);
    CHECK(strstr(text, "UNSPECIFIED") == NULL, "no empty UNSPECIFIED series");
    CHECK(text[len - 1] == '\n', "ends with a newline");
    free(text);
    participant_registry_free();
}

int main(void)
{
    test_fine();
    test_text();
    test_seconds();
    return 0;
}
