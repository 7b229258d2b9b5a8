/*
 * pgarray: a PostgreSQL array literal in text form ({"a","b",NULL,42}),
 * built element by element, for parameters that carry one value per
 * transfer (the ledger's posting batch, the outbox's acknowledgements).
 * Text elements are always quoted and escaped, so any string is safe;
 * integers are written without printf (text_u64): these run once per
 * transfer on the loop. The buffer grows as needed and is reused after
 * pgarray_reset. Owned by whoever holds the struct; not thread-safe.
 */
#ifndef SIKKA_PGARRAY_H
#define SIKKA_PGARRAY_H

#include <stddef.h>
#include <stdint.h>

struct pgarray {
    char *buf; /* owned; the literal, NUL-terminated after pgarray_finish */
    size_t len, cap;
    size_t n; /* elements so far */
};

/* Starts an empty literal ("{"), keeping the buffer. */
void pgarray_reset(struct pgarray *a);

/* Append one element. Each returns 0, or -1 (logged) when out of memory;
 * the literal is then unusable until the next reset. */
int pgarray_null(struct pgarray *a) __attribute__((warn_unused_result));
int pgarray_text(struct pgarray *a, const char *s) __attribute__((warn_unused_result));
/* s, or NULL when s is "" */
int pgarray_text_or_null(struct pgarray *a, const char *s) __attribute__((warn_unused_result));
int pgarray_int(struct pgarray *a, int64_t v) __attribute__((warn_unused_result));

/* Closes the literal ("}"); a->buf is then the parameter's text. */
int pgarray_finish(struct pgarray *a) __attribute__((warn_unused_result));

/* Frees the buffer; the struct may be reset and used again. */
void pgarray_free(struct pgarray *a);

#endif
