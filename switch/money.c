#include "money.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

int money_parse(const char *text, int64_t *paisa, char *err, size_t errlen)
{
    if (text == NULL || text[0] == '\0') {
        snprintf(err, errlen, "amount is empty");
        return -1;
    }
    const char *p = text;
    uint64_t rupees = 0;
    for (; is_digit(*p); p++) {
        /* INT64_MAX / 100 rupees is the most that can still fit; checking
         * before the multiply keeps the arithmetic from wrapping */
        if (rupees > (uint64_t)INT64_MAX / 100)
            goto overflow;
        rupees = rupees * 10 + (uint64_t)(*p - '0');
    }
    if (p == text) {
        snprintf(err, errlen, "amount \"%s\" must start with a digit (e.g. 1500.00)", text);
        return -1;
    }
    uint64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        for (; is_digit(*p); p++, digits++) {
            if (digits == 2) {
                snprintf(err, errlen, "amount \"%s\" has more than two decimals", text);
                return -1;
            }
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        if (digits == 0) {
            snprintf(err, errlen, "amount \"%s\" needs digits after the '.'", text);
            return -1;
        }
        if (digits == 1)
            frac *= 10;
    }
    if (*p != '\0') {
        snprintf(err, errlen,
                 "amount \"%s\" is not a plain decimal number (unexpected '%c'; no sign, "
                 "exponent, spaces or separators)",
                 text, *p);
        return -1;
    }
    if (rupees > ((uint64_t)INT64_MAX - frac) / 100)
        goto overflow;
    *paisa = (int64_t)(rupees * 100 + frac);
    return 0;
overflow:
    snprintf(err, errlen, "amount \"%s\" exceeds the largest amount 92233720368547758.07", text);
    return -1;
}

const char *money_format(int64_t paisa, char *buf, size_t len)
{
    /* the magnitude in unsigned arithmetic: -INT64_MIN does not fit int64 */
    uint64_t mag = paisa < 0 ? (uint64_t)0 - (uint64_t)paisa : (uint64_t)paisa;
    snprintf(buf, len, "%s%llu.%02llu", paisa < 0 ? "-" : "", (unsigned long long)(mag / 100),
             (unsigned long long)(mag % 100));
    return buf;
}

int money_parse_id(const char *text, int64_t *out)
{
    int64_t v = 0;
    if (*text == '\0' || strlen(text) > 19)
        return -1;
    for (const char *s = text; *s != '\0'; s++)
        if (*s < '0' || *s > '9' || __builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, *s - '0', &v))
            return -1;
    if (v <= 0)
        return -1;
    *out = v;
    return 0;
}
