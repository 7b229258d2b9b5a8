/*
 * log: one structured line per event, `key=value` pairs after a timestamp and
 * a level. Owns the output stream; single-threaded like the rest of the loop.
 *
 * Lines name who and what: `session=JAZZ#12 msg_id=... transfer=... reason=AM05`.
 * Never log keys; mask account numbers with log_mask().
 */
#ifndef SIKKA_LOG_H
#define SIKKA_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
};

/* Sets the program name printed on each line and the minimum level. */
void log_setup(const char *program, enum log_level level);

/* Appends to `path` instead of stderr; "" or NULL means stderr. Reopens on
 * each call (for log rotation on SIGHUP). */
int log_open(const char *path) __attribute__((warn_unused_result));

void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *out) __attribute__((warn_unused_result));

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vwrite(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Copies an account number into buf with all but its last four characters
 * replaced by '*'. Returns buf. */
const char *log_mask(const char *account, char *buf, size_t size);

/* Copies s into buf quoted for a log value, so that a peer's string cannot
 * end the value or the line, or add key=value pairs of its own: always
 * wrapped in "", quotes and backslashes escaped, control characters (C0, DEL,
 * C1) and bytes that are not UTF-8 written as \xNN, cut to size on a
 * character boundary. Returns buf. Pass every peer-supplied string through
 * it (msg_id, names, texts, query ids). */
const char *log_quote(const char *s, char *buf, size_t size);

#endif
