/* position: reservations never cross the net debit cap, arithmetic never
 * overflows, releases and postings keep the books straight. */
#include "check.h"
#include "position.h"

int main(void)
{
    TEST_STEP("reserve within the cap, refuse beyond it");
    struct position p = {.posted = 0, .reserved = 0, .ndc = 1000};
    CHECK(position_reserve(&p, 600) == 0);
    CHECK(position_reserve(&p, 400) == 0);
    CHECK_INT(p.reserved, 1000);
    CHECK(position_reserve(&p, 1) != 0, "the cap is exactly -ndc");
    CHECK_INT(position_headroom(&p), 0);
    CHECK_INT(position_used_percent(&p), 100);

    TEST_STEP("release gives room back; posting moves it to posted");
    position_release(&p, 400);
    CHECK(position_post(&p, -600) == 0);
    position_release(&p, 600);
    CHECK_INT(p.posted, -600);
    CHECK_INT(p.reserved, 0);
    CHECK_INT(position_headroom(&p), 400);
    CHECK_INT(position_used_percent(&p), 60);

    TEST_STEP("credits raise the room");
    CHECK(position_post(&p, 5000) == 0);
    CHECK_INT(position_headroom(&p), 5400);
    CHECK_INT(position_used_percent(&p), 0);

    TEST_STEP("zero and negative amounts are never reserved");
    CHECK(position_reserve(&p, 0) != 0);
    CHECK(position_reserve(&p, -5) != 0);

    TEST_STEP("overflow is refused, not wrapped");
    struct position big = {.posted = INT64_MAX - 10, .reserved = 0, .ndc = INT64_MAX};
    CHECK(position_post(&big, 11) != 0);
    CHECK_INT(big.posted, INT64_MAX - 10);
    struct position neg = {.posted = INT64_MIN + 5, .reserved = 0, .ndc = INT64_MAX};
    CHECK(position_reserve(&neg, 10) != 0);
    struct position r = {.posted = 0, .reserved = INT64_MAX - 1, .ndc = INT64_MAX};
    CHECK(position_reserve(&r, 2) != 0);
    CHECK_INT(r.reserved, INT64_MAX - 1);

    TEST_STEP("a zero cap allows no debit at all");
    struct position z = {.posted = 0, .reserved = 0, .ndc = 0};
    CHECK(position_reserve(&z, 1) != 0);
    CHECK(position_post(&z, 100) == 0);
    CHECK(position_reserve(&z, 100) == 0);
    CHECK(position_reserve(&z, 1) != 0);
    return 0;
}
