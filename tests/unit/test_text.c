/* text: UTF-8 as strict decoders read it (overlongs, surrogates, the top of
 * the code space, sequences cut short), control characters, limits in bytes
 * and in characters, cuts on character boundaries; and log_quote, which
 * leans on the same decoder to keep a log line one valid line. */
#include "check.h"
#include "log.h"
#include "text.h"

static bool valid(const char *s)
{
    return text_valid_utf8(s, strlen(s));
}

/* One Urdu letter (U+06A9 KEHEH, two bytes) n times, into buf. */
static const char *urdu(char *buf, size_t size, size_t n)
{
    CHECK(2 * n + 1 <= size);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 2 * i, "\xda\xa9", 2);
    buf[2 * n] = '\0';
    return buf;
}

int main(void)
{
    char err[128];
    uint32_t cp;

    TEST_STEP("well-formed UTF-8 of every length, up to U+10FFFF");
    CHECK(valid(""));
    CHECK(valid("plain ASCII ~!"));
    CHECK(valid("caf\xc3\xa9"));              /* U+00E9 */
    CHECK(valid("\xe2\x82\xac 100"));         /* U+20AC */
    CHECK(valid("\xd9\xbe\xd8\xa7\xda\xa9")); /* Urdu */
    CHECK(valid("\xf0\x9f\x98\x80"));         /* U+1F600, four bytes */
    CHECK(valid("\xf4\x8f\xbf\xbf"));         /* U+10FFFF, the last */
    CHECK(valid("\xed\x9f\xbf\xee\x80\x80")); /* U+D7FF, U+E000: around the surrogates */
    CHECK_INT(text_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
    CHECK_INT(cp, 0x1f600);
    CHECK_INT(text_utf8_decode("\xdf\xbf", 2, &cp), 2);
    CHECK_INT(cp, 0x7ff);
    CHECK_INT(text_utf8_decode("\xe0\xa0\x80", 3, &cp), 3);
    CHECK_INT(cp, 0x800);
    CHECK(text_valid_utf8("a\0b", 3)); /* NUL is UTF-8; text_check refuses it as C0 */

    TEST_STEP("overlong forms are refused");
    CHECK(!valid("\xc0\x80"));         /* NUL in two bytes */
    CHECK(!valid("\xc1\xbf"));         /* U+007F in two */
    CHECK(!valid("\xe0\x80\xaf"));     /* '/' in three */
    CHECK(!valid("\xe0\x9f\xbf"));     /* U+07FF in three */
    CHECK(!valid("\xf0\x80\x80\x80")); /* NUL in four */
    CHECK(!valid("\xf0\x8f\xbf\xbf")); /* U+FFFF in four */

    TEST_STEP("surrogates and code points above U+10FFFF are refused");
    CHECK(!valid("\xed\xa0\x80"));             /* U+D800 */
    CHECK(!valid("\xed\xbf\xbf"));             /* U+DFFF */
    CHECK(!valid("\xed\xa0\xbd\xed\xb8\x80")); /* a CESU-8 pair */
    CHECK(!valid("\xf4\x90\x80\x80"));         /* U+110000 */
    CHECK(!valid("\xf5\x80\x80\x80"));
    CHECK(!valid("\xf8\x88\x80\x80\x80")); /* old five-byte form */
    CHECK(!valid("\xff"));
    CHECK(!valid("\xfe"));

    TEST_STEP("sequences cut short, stray continuation bytes");
    CHECK(!valid("\xe2\x82"));     /* the euro sign without its last byte */
    CHECK(!valid("\xe2\x82 100")); /* ... followed by more text */
    CHECK(!valid("\xf0\x9f\x98")); /* three of four bytes */
    CHECK(!valid("\xc3"));
    CHECK(!valid("abc\x80"));
    CHECK(!valid("\xbf"));
    CHECK(!valid("\xc3\xa9\xa9"));                              /* one continuation byte too many */
    CHECK_INT(text_utf8_decode("\xf0\x9f\x98\x80", 3, &cp), 0); /* length is respected */
    CHECK_INT(text_utf8_decode("a", 0, &cp), 0);

    TEST_STEP("control characters: C0, DEL, C1 refused; the rest of Unicode allowed");
    CHECK(text_is_control(0x00) && text_is_control(0x1f) && text_is_control(0x7f));
    CHECK(text_is_control(0x80) && text_is_control(0x9f));
    CHECK(!text_is_control(' ') && !text_is_control(0xa0) && !text_is_control(0x200c));
    CHECK(text_check("msg_id", "a\tb", 1, 35, TEXT_BYTES, err, sizeof(err)) != 0);
    CHECK_STR(err, "msg_id contains a control character");
    CHECK(text_check("text", "x\x7fy", 0, 140, TEXT_CHARS, err, sizeof(err)) != 0);
    CHECK(text_check("text", "x\xc2\x85y", 0, 140, TEXT_CHARS, err, sizeof(err)) != 0); /* NEL */
    CHECK_STR(err, "text contains a control character");
    CHECK(text_check("text",
                     "no\xc2\xa0"
                     "break",
                     0, 140, TEXT_CHARS, err, sizeof(err)) == 0);
    CHECK(text_check("text", "id with spaces = and \"quotes\"", 0, 140, TEXT_CHARS, err,
                     sizeof(err)) == 0);

    TEST_STEP("text_check names the field and the rule");
    CHECK(text_check("msg_id", "M\xff", 1, 35, TEXT_BYTES, err, sizeof(err)) != 0);
    CHECK_STR(err, "msg_id is not valid UTF-8");
    CHECK(text_check("end_to_end_id", "", 1, 35, TEXT_BYTES, err, sizeof(err)) != 0);
    CHECK_STR(err, "end_to_end_id is missing");
    CHECK(text_check("debtor_name", "", 0, 140, TEXT_CHARS, err, sizeof(err)) == 0);
    CHECK(text_check("msg_id", "123456789012345678901234567890123456", 1, 35, TEXT_BYTES, err,
                     sizeof(err)) != 0);
    CHECK_STR(err, "msg_id: at most 35 bytes");

    TEST_STEP("limits: bytes for identifiers, characters for names");
    char u[1024];
    CHECK(text_check("msg_id", urdu(u, sizeof(u), 17), 1, 35, TEXT_BYTES, err, sizeof(err)) == 0);
    CHECK(text_check("msg_id", urdu(u, sizeof(u), 18), 1, 35, TEXT_BYTES, err, sizeof(err)) != 0);
    CHECK_STR(err, "msg_id: at most 35 bytes");
    CHECK(text_check("debtor_name", urdu(u, sizeof(u), 140), 0, 140, TEXT_CHARS, err,
                     sizeof(err)) == 0); /* 280 bytes */
    CHECK(text_check("debtor_name", urdu(u, sizeof(u), 141), 0, 140, TEXT_CHARS, err,
                     sizeof(err)) != 0);
    CHECK_STR(err, "debtor_name: at most 140 characters");
    CHECK_INT(text_chars(urdu(u, sizeof(u), 141)), 141);
    CHECK_INT(text_chars("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 4);
    /* 140 four-byte characters: 560 bytes, still 140 characters */
    for (int i = 0; i < 140; i++)
        memcpy(u + 4 * i, "\xf0\x9f\x98\x80", 4);
    u[560] = '\0';
    CHECK(text_check("text", u, 0, 140, TEXT_CHARS, err, sizeof(err)) == 0);

    TEST_STEP("text_copy_truncated cuts on a character boundary");
    char d4[4], d5[5], d1[1];
    CHECK(!text_copy_truncated(d4, sizeof(d4), "a\xc3\xa9\xe2\x82\xac")); /* a é € */
    CHECK_STR(d4, "a\xc3\xa9");
    CHECK(text_copy_truncated(d4, sizeof(d4), "\xe2\x82\xac"));
    CHECK_STR(d4, "\xe2\x82\xac");
    CHECK(!text_copy_truncated(d4, sizeof(d4), "\xf0\x9f\x98\x80")); /* 4 bytes in 3: nothing */
    CHECK_STR(d4, "");
    CHECK(text_copy_truncated(d5, sizeof(d5), "\xf0\x9f\x98\x80"));
    CHECK_STR(d5, "\xf0\x9f\x98\x80");
    CHECK(!text_copy_truncated(d5, sizeof(d5), "ab\xe2\x82")); /* a cut-short tail is dropped */
    CHECK_STR(d5, "ab");
    CHECK(!text_copy_truncated(d5, sizeof(d5), "a\xffz"));
    CHECK_STR(d5, "a");
    CHECK(!text_copy_truncated(d1, sizeof(d1), "x"));
    CHECK_STR(d1, "");
    CHECK(text_copy_truncated(d1, sizeof(d1), ""));
    /* every cut of an Urdu text stays valid, at every buffer size */
    urdu(u, sizeof(u), 150);
    for (size_t size = 1; size < 310; size++) {
        char out[310];
        text_copy_truncated(out, size, u);
        CHECK(valid(out), "size %zu", size);
        CHECK_INT(strlen(out), ((size - 1) / 2) * 2 < 300 ? ((size - 1) / 2) * 2 : 300);
    }

    TEST_STEP("text_limit_chars keeps whole characters");
    urdu(u, sizeof(u), 150);
    text_limit_chars(u, 140);
    CHECK_INT(strlen(u), 280);
    CHECK(valid(u));
    char mixed[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    text_limit_chars(mixed, 3);
    CHECK_STR(mixed, "a\xc3\xa9\xe2\x82\xac");
    text_limit_chars(mixed, 10);
    CHECK_STR(mixed, "a\xc3\xa9\xe2\x82\xac");

    TEST_STEP("log_quote: a peer's string stays one value of one valid line");
    char q[64];
    CHECK_STR(log_quote("M-1", q, sizeof(q)), "\"M-1\"");
    CHECK_STR(log_quote("a b=c \"d\"", q, sizeof(q)), "\"a b=c \\\"d\\\"\"");
    CHECK_STR(log_quote("x\ny", q, sizeof(q)), "\"x\\x0ay\"");
    CHECK_STR(log_quote("x\xc2\x85y", q, sizeof(q)), "\"x\\xc2\\x85y\""); /* C1 NEL */
    CHECK_STR(log_quote("x\xffy", q, sizeof(q)), "\"x\\xffy\"");
    CHECK_STR(log_quote("\xd9\xbe\xd8\xa7", q, sizeof(q)), "\"\xd9\xbe\xd8\xa7\"");
    CHECK_STR(log_quote(NULL, q, sizeof(q)), "\"\"");
    char q8[8]; /* room for 5 bytes between the quotes */
    CHECK_STR(log_quote("ab\xe2\x82\xac", q8, sizeof(q8)), "\"ab\xe2\x82\xac\"");
    CHECK_STR(log_quote("abc\xe2\x82\xac", q8, sizeof(q8)), "\"abc\""); /* no split euro */
    CHECK(valid(log_quote(urdu(u, sizeof(u), 100), q, sizeof(q))));

    TEST_STEP("text_u64: decimal digits without printf, 0 to UINT64_MAX");
    char num[TEXT_U64_MAX];
    CHECK_INT(text_u64(0, num), 1);
    CHECK_STR(num, "0");
    CHECK_INT(text_u64(10, num), 2);
    CHECK_STR(num, "10");
    CHECK_INT(text_u64(UINT64_MAX, num), 20);
    CHECK_STR(num, "18446744073709551615");
    CHECK_INT(text_u64((uint64_t)INT64_MAX + 1, num), 19);
    CHECK_STR(num, "9223372036854775808");
    return 0;
}
