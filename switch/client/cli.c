#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_pki_dir(char *out, size_t len)
{
    const char *env = getenv("SIKKA_PKI");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, len, "%s", env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            struct stat st;
            int m = snprintf(out, len, "%s/../../var/pki", exe);
            if (m > 0 && (size_t)m < len && stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
                char *real = realpath(out, NULL);
                if (real != NULL && strlen(real) < len)
                    memcpy(out, real, strlen(real) + 1);
                free(real);
                return;
            }
        }
    }
    snprintf(out, len, "var/pki");
}

int cli_parse_addr(const char *text, char *host, size_t hostlen, int *port, char *err,
                   size_t errlen)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errlen, "\"%s\" must be HOST:PORT", text);
        return -1;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 65535) {
        snprintf(err, errlen, "\"%s\": the port must be a number from 1 to 65535", text);
        return -1;
    }
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostlen) {
        snprintf(err, errlen, "\"%s\" has no usable host", text);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

const char *cli_one_line(const char *text, char *buf, size_t len)
{
    size_t i = 0;
    if (len == 0)
        return buf;
    for (; text != NULL && text[i] != '\0' && i + 1 < len; i++)
        buf[i] = ((unsigned char)text[i] < ' ' || text[i] == 0x7f) ? ' ' : text[i];
    buf[i] = '\0';
    return buf;
}

int cli_parse_long(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
