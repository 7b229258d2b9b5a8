#include "pgarray.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "text.h"

static int reserve(struct pgarray *a, size_t more)
{
    if (a->len + more + 2 <= a->cap)
        return 0;
    size_t ncap = a->cap ? a->cap : 4096;
    while (ncap < a->len + more + 2)
        ncap *= 2;
    char *nb = realloc(a->buf, ncap);
    if (nb == NULL) {
        log_error("event=oom what=pgarray bytes=%zu", ncap);
        return -1;
    }
    a->buf = nb;
    a->cap = ncap;
    return 0;
}

void pgarray_reset(struct pgarray *a)
{
    a->len = 0;
    a->n = 0;
    if (reserve(a, 1) == 0)
        a->buf[a->len++] = '{';
}

static int separate(struct pgarray *a)
{
    if (a->n++ > 0) {
        if (reserve(a, 1) != 0)
            return -1;
        a->buf[a->len++] = ',';
    }
    return 0;
}

int pgarray_null(struct pgarray *a)
{
    if (separate(a) != 0 || reserve(a, 4) != 0)
        return -1;
    memcpy(a->buf + a->len, "NULL", 4);
    a->len += 4;
    return 0;
}

/* Always quoted: "" and backslashes escaped, so any text is safe. */
int pgarray_text(struct pgarray *a, const char *s)
{
    size_t n = strlen(s);
    if (separate(a) != 0 || reserve(a, 2 * n + 2) != 0)
        return -1;
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = s[i];
    }
    a->buf[a->len++] = '"';
    return 0;
}

int pgarray_text_or_null(struct pgarray *a, const char *s)
{
    return s[0] != '\0' ? pgarray_text(a, s) : pgarray_null(a);
}

/* Without snprintf, whose format machinery was a few percent of the
 * switch's CPU when the ledger formatted five integers per transfer. */
int pgarray_int(struct pgarray *a, int64_t v)
{
    if (separate(a) != 0 || reserve(a, 1 + TEXT_U64_MAX) != 0)
        return -1;
    if (v < 0)
        a->buf[a->len++] = '-';
    /* the magnitude as unsigned: INT64_MIN has no positive counterpart */
    a->len += text_u64(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, a->buf + a->len);
    return 0;
}

int pgarray_finish(struct pgarray *a)
{
    if (reserve(a, 1) != 0)
        return -1;
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    return 0;
}

void pgarray_free(struct pgarray *a)
{
    free(a->buf);
    *a = (struct pgarray){0};
}
