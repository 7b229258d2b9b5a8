/*
 * cli: what the command-line tools (sikka-wallet, sikka-ctl) share beyond
 * the protocol — where the development PKI lives, reading HOST:PORT, and
 * making text from the network safe to print on one line.
 *
 * Nothing here allocates or keeps state.
 */
#ifndef SIKKA_CLI_H
#define SIKKA_CLI_H

#include <stddef.h>

/* Writes the PKI directory into out: $SIKKA_PKI when set, else var/pki of
 * the tree the executable was built in (<exe>/../../var/pki, resolved) when
 * that directory exists, else "var/pki" (relative to the working directory). */
void cli_pki_dir(char *out, size_t len);

/* Splits "HOST:PORT" or "[IPv6]:PORT" into host and port (1..65535). On
 * failure writes why into err and returns -1. */
int cli_parse_addr(const char *text, char *host, size_t hostlen, int *port, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* A whole decimal number in [min, max] (option values such as counts and
 * timeouts). Returns -1 for anything else. */
int cli_parse_long(const char *text, long min, long max, long *out)
    __attribute__((warn_unused_result));

/* Copies text into buf with control characters replaced by spaces, so that
 * a value from the network stays on its line. NULL prints as "". Returns buf. */
const char *cli_one_line(const char *text, char *buf, size_t len);

#endif
