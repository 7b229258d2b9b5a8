/* The console's pure parts: the embedded files' table (paths, "/" for
 * index.html, no traversal), If-None-Match against an ETag, the cross-site
 * checks of a write (Origin, Sec-Fetch-Site, OPTIONS) and its content type,
 * and the transfer search's parameters (times made canonical UTC). */
#include <event2/http.h>

#include "admin.h"
#include "check.h"
#include "console.h"

static int search(const char *query, struct admin_call *call)
{
    char why[512];
    int status = admin_parse_request(EVHTTP_REQ_GET, "/api/v1/transfers", query, NULL, 0, call, why,
                                     sizeof(why));
    if (status != 0)
        fprintf(stderr, "   ?%s -> %d %s\n", query, status, why);
    return status;
}

int main(void)
{
    TEST_STEP("the embedded files");
    CHECK(console_nassets >= 4, "index.html, app.js, console.css, icon.svg at least");
    CHECK(console_find("/") == console_find("/index.html") && console_find("/") != NULL);
    CHECK_STR(console_find("/app.js")->content_type, "text/javascript; charset=utf-8");
    CHECK_STR(console_find("/console.css")->content_type, "text/css; charset=utf-8");
    CHECK(console_find("app.js") == NULL && console_find("/../app.js") == NULL &&
              console_find("/app.js/") == NULL && console_find("//app.js") == NULL &&
              console_find("") == NULL && console_find(NULL) == NULL,
          "exact paths only");
    for (size_t i = 0; i < console_nassets; i++) {
        const struct console_asset *a = &console_assets[i];
        CHECK(a->len > 0 && a->data[a->len] == 0, "%s: its bytes", a->path);
        CHECK(strlen(a->etag) == 34 && a->etag[0] == '"' && a->etag[33] == '"', "%s: %s", a->path,
              a->etag);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(a->etag, console_assets[j].etag) != 0 || a->len == 0, "distinct ETags");
    }
    const char *html = (const char *)console_find("/index.html")->data;
    CHECK(strstr(html, "style=") == NULL && strstr(html, "<style") == NULL &&
              strstr(html, "<script>") == NULL && strstr(html, " on") == NULL,
          "index.html has no inline style, script or handler");

    TEST_STEP("If-None-Match");
    const char *etag = "\"0123456789abcdef0123456789abcdef\"";
    CHECK(console_etag_matches("\"0123456789abcdef0123456789abcdef\"", etag));
    CHECK(console_etag_matches("W/\"0123456789abcdef0123456789abcdef\"", etag));
    CHECK(console_etag_matches("\"x\", \"0123456789abcdef0123456789abcdef\"", etag));
    CHECK(console_etag_matches("*", etag));
    CHECK(!console_etag_matches(NULL, etag));
    CHECK(!console_etag_matches("", etag));
    CHECK(!console_etag_matches("\"0123456789abcdef0123456789abcdee\"", etag));
    CHECK(!console_etag_matches("\"0123456789abcdef0123456789abcdef", etag), "unterminated");
    CHECK(!console_etag_matches("0123456789abcdef0123456789abcdef", etag), "unquoted");
    CHECK(!console_etag_matches("\"0123456789abcdef\"", etag));

    TEST_STEP("cross-site writes");
    char why[512];
    CHECK_INT(
        admin_check_origin(EVHTTP_REQ_GET, "h:1", "https://evil", "cross-site", why, sizeof(why)),
        0);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, "h:1", NULL, NULL, why, sizeof(why)), 0);
    CHECK_INT(
        admin_check_origin(EVHTTP_REQ_POST, "h:1", "https://h:1", "same-origin", why, sizeof(why)),
        0);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_PUT, "h:1", NULL, "none", why, sizeof(why)), 0);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, "h:1", "https://h:2", NULL, why, sizeof(why)),
              403);
    CHECK(strstr(why, "Origin") != NULL, "%s", why);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, "h:1", "http://h:1", NULL, why, sizeof(why)),
              403);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, "h:1", "https://h:1/", NULL, why, sizeof(why)),
              403);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, NULL, "https://", NULL, why, sizeof(why)), 403);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, "", "https://", NULL, why, sizeof(why)), 403);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_DELETE, "h:1", "null", NULL, why, sizeof(why)), 403);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_POST, "h:1", NULL, "same-site", why, sizeof(why)), 403);
    CHECK_INT(
        admin_check_origin(EVHTTP_REQ_POST, "h:1", "https://h:1", "cross-site", why, sizeof(why)),
        403);
    CHECK_INT(admin_check_origin(EVHTTP_REQ_OPTIONS, "h:1", NULL, NULL, why, sizeof(why)), 405);
    CHECK_INT(admin_check_json(EVHTTP_REQ_POST, "application/json", why, sizeof(why)), 0);
    CHECK_INT(
        admin_check_json(EVHTTP_REQ_POST, "Application/JSON; charset=utf-8", why, sizeof(why)), 0);
    CHECK_INT(admin_check_json(EVHTTP_REQ_GET, NULL, why, sizeof(why)), 0);
    CHECK_INT(admin_check_json(EVHTTP_REQ_POST, NULL, why, sizeof(why)), 415);
    CHECK_INT(admin_check_json(EVHTTP_REQ_POST, "text/plain", why, sizeof(why)), 415);
    CHECK_INT(
        admin_check_json(EVHTTP_REQ_PUT, "application/x-www-form-urlencoded", why, sizeof(why)),
        415);
    CHECK_INT(admin_check_json(EVHTTP_REQ_POST, "application/json-seq", why, sizeof(why)), 415);

    TEST_STEP("the search's parameters");
    struct admin_call call;
    CHECK_INT(search(NULL, &call), 0);
    CHECK_INT(call.search.limit, OPS_SEARCH_LIMIT_DEFAULT);
    CHECK_INT(call.search.before, 0);
    admin_call_clear(&call);
    CHECK_INT(search("from=2026-12-02T09:30:00%2B05:00&to=2026-12-03&limit=200&before=7", &call),
              0);
    CHECK_STR(call.search.from, "2026-12-02T04:30:00.000000Z");
    CHECK_STR(call.search.to, "2026-12-03T00:00:00.000000Z");
    admin_call_clear(&call);
    CHECK_INT(search("from=2026-12-02T09:30:00%2B05:00&to=2026-12-02T05:00", &call), 0);
    admin_call_clear(&call);
    CHECK_INT(search("from=2026-12-02 23:59:59.1234567-0130", &call), 0);
    CHECK_STR(call.search.from, "2026-12-03T01:29:59.123456Z");
    admin_call_clear(&call);
    CHECK_INT(search("from=2024-02-29", &call), 0);
    admin_call_clear(&call);
    CHECK_INT(
        search("ref=KOKO-LN-42&status=RJCT&purpose=P2P&participant=KOKO&msg_id=%D8%A7", &call), 0);
    CHECK_STR(call.search.ref, "KOKO-LN-42");
    CHECK_STR(call.search.msg_id, "\xd8\xa7");
    admin_call_clear(&call);
    static const char *const bad[] = {
        "from=2025-02-29",
        "from=1969-12-31",
        "from=2026-12-02T09:30:00%2B5",
        "from=2026-12-02T9:30",
        "from=2026-12-02T09:30:60",
        "from=2026-12-02T09:30:00.",
        "from=2026-12-02Z0",
        "to=2026-12-02T09:30:00%2B15:00",
        "limit=",
        "limit=01x",
        "before=9223372036854775808",
        "status=RJCT&status=ACSC",
        "participant=KOKO&participant=",
        "ref=0123456789012345678901234567890123456",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = search(bad[i], &call);
        if (st == 0)
            admin_call_clear(&call);
        /* "limit=" is an empty field: no filter, the default */
        CHECK(st == 400 || (strcmp(bad[i], "limit=") == 0 && st == 0), "%s: %d", bad[i], st);
    }
    return 0;
}
