/* The token bucket behind the rate limits: starts full, refills at the
 * rate, never beyond the burst, takes nothing when empty, says how long a
 * batch takes to refill, and survives huge gaps without overflowing. */
#include "bucket.h"
#include "check.h"

int main(void)
{
    TEST_STEP("a fresh bucket holds its burst, then refuses");
    struct bucket b = {0};
    int64_t t = 1000000;
    for (int i = 0; i < 5; i++)
        CHECK(bucket_take(&b, t, 10, 5), "token %d of the burst", i);
    CHECK(!bucket_take(&b, t, 10, 5), "the sixth at once is refused");

    TEST_STEP("it refills at the rate: 10 a second is one every 100 ms");
    CHECK(!bucket_take(&b, t + 99999, 10, 5), "not before 100 ms");
    CHECK(bucket_take(&b, t + 100000, 10, 5), "one after 100 ms");
    CHECK(!bucket_take(&b, t + 100000, 10, 5));

    TEST_STEP("never beyond the burst, however long it waited");
    int64_t later = t + 3600LL * 1000000;
    for (int i = 0; i < 5; i++)
        CHECK(bucket_take(&b, later, 10, 5));
    CHECK(!bucket_take(&b, later, 10, 5), "an hour's idling still buys only the burst");

    TEST_STEP("the wait for a batch");
    CHECK_INT(bucket_wait_us(&b, 10, 5, 1), 100000);
    CHECK_INT(bucket_wait_us(&b, 10, 5, 3), 300000);
    CHECK_INT(bucket_wait_us(&b, 10, 5, 100), 500000); /* at most the burst */

    TEST_STEP("no overflow: huge rates and gaps");
    struct bucket h = {0};
    CHECK(bucket_take(&h, 1, INT64_MAX / 2, INT64_MAX));
    CHECK(bucket_take(&h, INT64_MAX - 1, INT64_MAX / 2, INT64_MAX));
    CHECK(h.tokens > 0);
    return 0;
}
