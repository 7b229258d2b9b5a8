/* cli: HOST:PORT parsing, one-line text, where the PKI is found. */
#include <stdlib.h>

#include "check.h"
#include "cli.h"

static void addr_ok(const char *text, const char *host, int port)
{
    char h[64], err[256] = "";
    int p = 0;
    CHECK(cli_parse_addr(text, h, sizeof(h), &p, err, sizeof(err)) == 0, "\"%s\": %s", text, err);
    CHECK_STR(h, host);
    CHECK_INT(p, port);
}

static void addr_bad(const char *text)
{
    char h[8], err[256] = "";
    int p = 0;
    CHECK(cli_parse_addr(text, h, sizeof(h), &p, err, sizeof(err)) == -1, "\"%s\" accepted", text);
    CHECK(err[0] != '\0', "\"%s\": says why", text);
}

int main(void)
{
    char buf[64];

    TEST_STEP("HOST:PORT and [IPv6]:PORT");
    addr_ok("127.0.0.1:8443", "127.0.0.1", 8443);
    addr_ok("localhost:1", "localhost", 1);
    addr_ok("[::1]:65535", "::1", 65535);
    addr_bad("127.0.0.1");
    addr_bad("127.0.0.1:");
    addr_bad("127.0.0.1:0");
    addr_bad("127.0.0.1:65536");
    addr_bad("127.0.0.1:84x3");
    addr_bad(":8443");
    addr_bad("[]:8443");
    addr_bad("a-host-name-too-long-for-the-buffer:8443");

    TEST_STEP("text from the network stays on one line");
    CHECK_STR(cli_one_line("a\nb\tc\x7f", buf, sizeof(buf)), "a b c ");
    CHECK_STR(cli_one_line(NULL, buf, sizeof(buf)), "");
    CHECK_STR(cli_one_line("abcdef", buf, 4), "abc");

    TEST_STEP("the PKI: $SIKKA_PKI first, else ./var/pki when no tree is beside the binary");
    setenv("SIKKA_PKI", "/etc/sikka/pki", 1);
    cli_pki_dir(buf, sizeof(buf));
    CHECK_STR(buf, "/etc/sikka/pki");
    unsetenv("SIKKA_PKI");
    cli_pki_dir(buf, sizeof(buf));
    CHECK(strcmp(buf, "var/pki") == 0 || strstr(buf, "/var/pki") != NULL, "got %s", buf);
    return 0;
}
