/* pgarray: PostgreSQL array literals as the ledger and the outbox send
 * them: text always quoted and escaped, NULL, integers at both ends of
 * int64, the buffer reused after a reset. */
#include "check.h"
#include "pgarray.h"

int main(void)
{
    struct pgarray a = {0};

    TEST_STEP("an empty array, then one of each kind of element");
    pgarray_reset(&a);
    CHECK(pgarray_finish(&a) == 0);
    CHECK_STR(a.buf, "{}");
    pgarray_reset(&a);
    CHECK(pgarray_text(&a, "JAZZ") == 0);
    CHECK(pgarray_null(&a) == 0);
    CHECK(pgarray_int(&a, 42) == 0);
    CHECK(pgarray_text_or_null(&a, "") == 0);
    CHECK(pgarray_text_or_null(&a, "x") == 0);
    CHECK(pgarray_finish(&a) == 0);
    CHECK_STR(a.buf, "{\"JAZZ\",NULL,42,NULL,\"x\"}");
    CHECK_INT(a.n, 5);

    TEST_STEP("quotes, backslashes, commas and braces stay inside one element");
    pgarray_reset(&a);
    CHECK(pgarray_text(&a, "a\"b\\c,{d}") == 0);
    CHECK(pgarray_text(&a, "") == 0);
    CHECK(pgarray_finish(&a) == 0);
    CHECK_STR(a.buf, "{\"a\\\"b\\\\c,{d}\",\"\"}");

    TEST_STEP("int64 at both ends, zero and negatives");
    pgarray_reset(&a);
    CHECK(pgarray_int(&a, INT64_MIN) == 0);
    CHECK(pgarray_int(&a, -1) == 0);
    CHECK(pgarray_int(&a, 0) == 0);
    CHECK(pgarray_int(&a, INT64_MAX) == 0);
    CHECK(pgarray_finish(&a) == 0);
    CHECK_STR(a.buf, "{-9223372036854775808,-1,0,9223372036854775807}");

    TEST_STEP("a reset keeps the buffer and starts over; growth past the first 4 KB");
    char *before = a.buf;
    pgarray_reset(&a);
    CHECK(a.buf == before);
    for (int i = 0; i < 2000; i++)
        CHECK(pgarray_int(&a, i) == 0);
    CHECK(pgarray_finish(&a) == 0);
    CHECK_INT(a.n, 2000);
    CHECK(strncmp(a.buf, "{0,1,2,", 7) == 0);
    CHECK(strcmp(a.buf + a.len - 6, ",1999}") == 0);
    pgarray_free(&a);
    CHECK(a.buf == NULL && a.len == 0 && a.cap == 0);
    return 0;
}
