#include "text.h"

#include <stdio.h>
#include <string.h>

size_t text_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    unsigned char b = p[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if (b >= 0xc2 && b <= 0xdf) { /* 0xc0, 0xc1 only start overlong forms */
        len = 2;
        c = b & 0x1f;
        min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        c = b & 0x0f;
        min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) { /* above 0xf4: beyond U+10FFFF */
        len = 4;
        c = b & 0x07;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, or 0xc0, 0xc1, 0xf5..0xff */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

bool text_valid_utf8(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* ASCII runs are the common case */
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = text_utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

bool text_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

size_t text_chars(const char *s)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        chars += (*p & 0xc0) != 0x80;
    return chars;
}

int text_check(const char *field, const char *s, size_t min, size_t max, enum text_unit unit,
               char *err, size_t errlen)
{
    size_t len = strlen(s), chars = 0;
    if (len == 0 && min > 0) {
        snprintf(err, errlen, "%s is missing", field);
        return -1;
    }
    for (size_t i = 0; i < len; chars++) {
        uint32_t cp;
        size_t n = text_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            snprintf(err, errlen, "%s is not valid UTF-8", field);
            return -1;
        }
        if (text_is_control(cp)) {
            snprintf(err, errlen, "%s contains a control character", field);
            return -1;
        }
        i += n;
    }
    size_t count = unit == TEXT_CHARS ? chars : len;
    const char *what = unit == TEXT_CHARS ? "characters" : "bytes";
    if (count > max) {
        snprintf(err, errlen, "%s: at most %zu %s", field, max, what);
        return -1;
    }
    if (count < min) {
        snprintf(err, errlen, "%s: at least %zu %s", field, min, what);
        return -1;
    }
    return 0;
}

bool text_copy_truncated(char *dst, size_t dstsize, const char *src)
{
    if (dstsize == 0)
        return src[0] == '\0';
    size_t len = strlen(src), o = 0;
    while (o < len) {
        uint32_t cp;
        size_t n = text_utf8_decode(src + o, len - o, &cp);
        if (n == 0 || o + n > dstsize - 1)
            break;
        o += n;
    }
    memcpy(dst, src, o);
    dst[o] = '\0';
    return o == len;
}

void text_limit_chars(char *s, size_t max_chars)
{
    size_t chars = 0;
    for (unsigned char *p = (unsigned char *)s; *p; p++) {
        if ((*p & 0xc0) != 0x80 && chars++ == max_chars) {
            *p = '\0';
            return;
        }
    }
}

size_t text_u64(uint64_t v, char *out)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\0';
    return n;
}
