#include "console.h"

#include <string.h>

const struct console_asset *console_find(const char *path)
{
    if (path == NULL)
        return NULL;
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < console_nassets; i++)
        if (strcmp(console_assets[i].path, path) == 0)
            return &console_assets[i];
    return NULL;
}

bool console_etag_matches(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL || etag == NULL)
        return false;
    size_t elen = strlen(etag);
    const char *p = if_none_match;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2; /* If-None-Match compares weakly */
        const char *start = p;
        if (*p != '"')
            return false; /* malformed: no match, the full answer goes */
        p = strchr(p + 1, '"');
        if (p == NULL)
            return false;
        p++;
        if ((size_t)(p - start) == elen && strncmp(start, etag, elen) == 0)
            return true;
    }
}
