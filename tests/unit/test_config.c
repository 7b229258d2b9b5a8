/* config: defaults, required settings, bounds, quoting, comments, unknown
 * and repeated names, reload rules, and the shipped example is valid. */
#include <stdlib.h>

#include "check.h"
#include "config.h"

#define REQUIRED "tls_cert = a.crt\ntls_key = a.key\ntls_ca = ca.crt\ndatabase_url = \"host=x\"\n"

static void refused(const char *text, const char *needle)
{
    char err[512];
    struct config *c = config_parse(text, "t.conf", err, sizeof(err));
    CHECK(c == NULL, "accepted: %s", text);
    CHECK(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
}

int main(void)
{
    char err[512];

    TEST_STEP("defaults fill what the file leaves out");
    struct config *c = config_parse(REQUIRED, "t.conf", err, sizeof(err));
    CHECK(c != NULL, "%s", err);
    CHECK_STR(c->listen, "127.0.0.1:7443");
    CHECK_INT(c->max_frame_bytes, 65536);
    CHECK_INT(c->payee_timeout_ms, 5000);
    CHECK_STR(c->currency, "PKR");

    TEST_STEP("values, quotes and comments");
    struct config *d = config_parse(REQUIRED "max_frame_bytes = 1024 # small\n"
                                             "log_file = \"/tmp/a # not a comment\"\n",
                                    "t.conf", err, sizeof(err));
    CHECK(d != NULL, "%s", err);
    CHECK_INT(d->max_frame_bytes, 1024);
    CHECK_STR(d->log_file, "/tmp/a # not a comment");

    TEST_STEP("reload: only reloadable settings may change");
    CHECK(config_check_reload(c, d, err, sizeof(err)) == 0, "%s", err);
    struct config *e = config_parse(REQUIRED "listen = 127.0.0.1:9\n", "t", err, sizeof(err));
    CHECK(e != NULL, "%s", err);
    CHECK(config_check_reload(c, e, err, sizeof(err)) != 0);
    CHECK(strstr(err, "listen") != NULL, "%s", err);
    config_free(c);
    config_free(d);
    config_free(e);

    TEST_STEP("errors name the line and the setting");
    refused("tls_cert = a\ntls_key = b\ntls_ca = c\n", "required setting \"database_url\"");
    refused(REQUIRED "bogus = 1\n", "t.conf:5: unknown setting \"bogus\"");
    refused(REQUIRED "tls_cert = b\n", "given twice");
    refused(REQUIRED "max_frame_bytes = 10\n", "between");
    refused(REQUIRED "max_frame_bytes = 12x\n", "whole number");
    refused(REQUIRED "listen = localhost\n", "host:port");
    refused(REQUIRED "log_level = loud\n", "log_level");
    refused(REQUIRED "settlement_schedule = 9:00\n", "HH:MM");
    refused(REQUIRED "payee_timeout_ms = 60000\n", "between");
    refused(REQUIRED "just words\n", "name = value");

    TEST_STEP("the example config shipped in deploy/ loads");
    const char *src = getenv("SIKKA_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/deploy/sikka.conf.example", src ? src : SIKKA_SOURCE_DIR);
    struct config *x = config_load(path, err, sizeof(err));
    CHECK(x != NULL, "%s", err);
    config_free(x);
    return 0;
}
