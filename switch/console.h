/*
 * console: the operators' web console's static files (switch/console/),
 * embedded into the binary at build time by switch/embed_console.cmake as a
 * table of byte arrays, each with its URL path, Content-Type and ETag. admin.c
 * serves them under the admin listener (GET and HEAD, behind the same
 * operator certificate as the API).
 *
 * The table is constant and lives as long as the process; nothing here
 * allocates or touches the loop.
 */
#ifndef SIKKA_CONSOLE_H
#define SIKKA_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

struct console_asset {
    const char *path;         /* "/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* "\"<32 hex digits of the SHA-256>\"", quotes included */
};

/* Generated (the build tree's console/console_assets.c). */
extern const struct console_asset console_assets[];
extern const size_t console_nassets;

/* The asset at a URL path ("/" is /index.html), or NULL. Exact matches
 * only: no directory, no "..", no query (the caller strips it). */
const struct console_asset *console_find(const char *path);

/* Whether an If-None-Match header value (NULL: none) names etag: a list of
 * entity tags, weak ones (W/"...") compared weakly, or "*". */
bool console_etag_matches(const char *if_none_match, const char *etag);

#endif
