/*
 * text: the one place where strings from peers are judged and cut.
 *
 * Every string on the wire is UTF-8: proto3 says so, and a strict decoder
 * (Python's, Go's, Java's) refuses a frame holding anything else, so a
 * string the switch accepts and echoes must be well-formed UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF, no sequence cut
 * short). On top of that the switch refuses control characters in every
 * text it takes from a peer: C0 (U+0000..U+001F), DEL (U+007F) and C1
 * (U+0080..U+009F).
 *
 * Limits count either bytes (identifiers and accounts, whose columns and
 * buffers are sized in bytes) or characters, i.e. code points (names and
 * narratives, ISO 20022 Max140Text): which one is fixed per field in
 * proto/sikka.proto and transfer.h. A character is at most
 * TEXT_MAX_CHAR_BYTES bytes, so N characters fit in N * 4 bytes.
 *
 * Whenever the switch copies text into a fixed buffer it cuts on a
 * character boundary (text_copy_truncated), so what it sends stays valid.
 * Pure functions; no state, any thread.
 */
#ifndef SIKKA_TEXT_H
#define SIKKA_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEXT_MAX_CHAR_BYTES 4

enum text_unit {
    TEXT_BYTES = 0, /* the limit counts bytes */
    TEXT_CHARS,     /* the limit counts characters (code points) */
};

/* Decodes the character at the start of s (n bytes available): returns its
 * length in bytes (1..4) and stores the code point in *cp, or returns 0 when
 * s does not start with a well-formed UTF-8 sequence (a stray continuation
 * byte, an overlong form, a surrogate, a value above U+10FFFF, a sequence
 * cut short, n == 0). */
size_t text_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* true when the len bytes at s are well-formed UTF-8 (NUL bytes included). */
bool text_valid_utf8(const char *s, size_t len);

/* C0, DEL or C1. */
bool text_is_control(uint32_t cp);

/* Characters in s, which must be valid UTF-8 (an invalid byte counts as one). */
size_t text_chars(const char *s);

/* Checks a peer's string for `field`: valid UTF-8, no control character,
 * and min..max bytes or characters. Returns 0, or -1 with err naming the
 * field and the rule ("msg_id is not valid UTF-8", "debtor_name: at most 140
 * characters", "end_to_end_id is missing", "text contains a control
 * character"). */
int text_check(const char *field, const char *s, size_t min, size_t max, enum text_unit unit,
               char *err, size_t errlen) __attribute__((warn_unused_result));

/* Copies the longest prefix of src that fits in dstsize - 1 bytes, ends on a
 * character boundary and is well-formed UTF-8 (copying stops before the first
 * ill-formed sequence). dst is always terminated (dstsize > 0). Returns true
 * when all of src was copied. */
bool text_copy_truncated(char *dst, size_t dstsize, const char *src);
/* v in decimal into out (TEXT_U64_MAX bytes at least, NUL-terminated);
 * returns the digits' count. Without printf: callers format a number per
 * transfer (the ledger's batch arrays, sikka-replay's result lines). */
#define TEXT_U64_MAX 21
size_t text_u64(uint64_t v, char *out);

/* Cuts s (valid UTF-8) after its first max_chars characters. */
void text_limit_chars(char *s, size_t max_chars);

#endif
