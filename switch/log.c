#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "text.h"

static const char *log_program = "sikka";
static enum log_level log_min = LOG_LEVEL_INFO;
static FILE *log_out;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *program, enum log_level level)
{
    log_program = program;
    log_min = level;
}

int log_open(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        if (log_out != NULL && log_out != stderr)
            fclose(log_out);
        log_out = stderr;
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        log_error("event=log_open_failed path=%s error=\"%s\"", path, strerror(errno));
        return -1;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (log_out != NULL && log_out != stderr)
        fclose(log_out);
    log_out = f;
    return 0;
}

void log_set_level(enum log_level level)
{
    log_min = level;
}

int log_parse_level(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
    if (level < log_min)
        return;
    FILE *out = log_out != NULL ? log_out : stderr;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_program, level_names[level]);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + used, sizeof(line) - used - 1, fmt, ap);
    if (m > 0)
        used += (size_t)m < sizeof(line) - used - 1 ? (size_t)m : sizeof(line) - used - 2;
    line[used++] = '\n';
    /* one write per line so concurrent processes appending to a file do not
     * interleave within a line */
    fwrite(line, 1, used, out);
    fflush(out);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

const char *log_mask(const char *account, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    size_t len = account != NULL ? strlen(account) : 0;
    size_t i = 0;
    for (; i < len && i + 1 < size; i++)
        buf[i] = (len - i > 4) ? '*' : account[i];
    buf[i] = '\0';
    return buf;
}

const char *log_quote(const char *s, char *buf, size_t size)
{
    if (size < 3) {
        if (size > 0)
            buf[0] = '\0';
        return buf;
    }
    const char *p = s != NULL ? s : "";
    size_t len = strlen(p), i = 0, o = 0;
    buf[o++] = '"';
    while (i < len) {
        /* one character at a time, so a cut never splits one; control
         * characters (C0, DEL, C1) and bytes that are not UTF-8 are
         * escaped byte by byte, so a line stays one valid line */
        uint32_t cp;
        size_t n = text_utf8_decode(p + i, len - i, &cp);
        bool escape = n == 0 || text_is_control(cp);
        if (n == 0)
            n = 1;
        bool backslash = !escape && (cp == '"' || cp == '\\');
        size_t need = escape ? 4 * n : backslash ? 2 : n;
        if (o + need + 2 > size) /* the closing quote and the NUL */
            break;
        if (escape) {
            for (size_t k = 0; k < n; k++)
                o += (size_t)snprintf(buf + o, size - o, "\\x%02x", (unsigned char)p[i + k]);
        } else {
            if (backslash)
                buf[o++] = '\\';
            memcpy(buf + o, p + i, n);
            o += n;
        }
        i += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
