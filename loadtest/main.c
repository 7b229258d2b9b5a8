/*
 * sikka-replay: generates, replays and checks Sikka traffic.
 *
 *   sikka-replay gen -o FILE [scenario options]      write a capture file
 *   sikka-replay run CAPTURE [options]               replay it against a switch
 *   sikka-replay verify --results FILE --db URI      compare the ledger with a run
 *   sikka-replay flood --participant CODE [options]  a participant flooding the switch
 *
 * This file only turns command lines into calls of the modules: scenario
 * and gen (capture generation), replay (the run engine), report (text,
 * JSON, HTML), threshold (pass/fail conditions), verify and flood. Exit status:
 * 0 success; 1 a threshold broke, a session was lost during the run, or
 * verify found a discrepancy; 2 usage errors and anything that kept the
 * command from running.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "bulkflow.h"
#include "config.h"
#include "flood.h"
#include "gen.h"
#include "log.h"
#include "lookups.h"
#include "msg.h"
#include "replay.h"
#include "report.h"
#include "rtpflow.h"
#include "scenario.h"
#include "threshold.h"
#include "verify.h"

#define EXIT_FAILED    1
#define EXIT_USAGE     2
#define MAX_THRESHOLDS 32

static void usage_main(FILE *out)
{
    fprintf(out, "usage: sikka-replay COMMAND [options]\n"
                 "\n"
                 "Generates, replays and checks traffic for the Sikka switch.\n"
                 "\n"
                 "Commands:\n"
                 "  gen      write a capture file from a scenario\n"
                 "  run      replay a capture over mutual TLS and measure\n"
                 "  verify   compare the ledger with the results of a run\n"
                 "  flood    connect as one participant and flood the switch with pings\n"
                 "           and malformed frames, optionally never reading\n"
                 "  requests the request-to-pay scenario: a lender's requests accepted and\n"
                 "           paid (once), declined, cancelled or left to expire\n"
                 "  lookups  look aliases up as one participant as fast as the switch answers\n"
                 "  bulk     the bulk supplier payments scenario: batches with mixed outcomes,\n"
                 "           each sent twice (the same answers, nothing paid twice)\n"
                 "Run `sikka-replay COMMAND --help` for a command's options.\n");
}

/* ---------------------------------------------------------------- numbers */

static int parse_u64(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || text[0] == '-' || v < min || v > max) {
        fprintf(stderr,
                "sikka-replay: %s wants a whole number from %" PRIu64 " to %" PRIu64
                ", got \"%s\"\n",
                opt, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_positive(const char *opt, const char *text, bool zero_ok, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 ||
        (v == 0 && !zero_ok)) {
        fprintf(stderr, "sikka-replay: %s wants a number %s 0, got \"%s\"\n", opt,
                zero_ok ? ">=" : "above", text);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- gen */

static const char gen_usage[] =
    "usage: sikka-replay gen -o FILE [options]\n"
    "\n"
    "Writes a capture file (loadtest/README.md, format version 1) from a scenario.\n"
    "The same options and --seed always give the same file.\n"
    "\n"
    "  -o, --output FILE        the capture to write (required)\n"
    "  --count N                records, retries and malformed ones included (10000)\n"
    "  --participants LIST      participant codes, payers and payees\n"
    "                           (JAZZ,EASY,SADA,NAYA,KOKO,MEZN)\n"
    "  --lender CODE            payee of every BNPL repayment, a hot payee (KOKO)\n"
    "  --bank CODE              payer of most supplier payments (MEZN)\n"
    "  --bank-share PCT         percent of supplier payments paid by the bank (70)\n"
    "  --accounts N             customer accounts per participant (1000)\n"
    "  --mix LIST               purpose weights (bnpl=60,supplier=25,p2p=15)\n"
    "  --bnpl-amount MIN:MAX    instalments, rupees, log-uniform (500:5000)\n"
    "  --supplier-amount MIN:MAX  invoices, rupees (10000:2000000)\n"
    "  --p2p-amount MIN:MAX     person to person, rupees (100:50000)\n"
    "  --retry-rate P           share of records resending an earlier msg_id,\n"
    "                           same bytes, retry=true (0.02)\n"
    "  --reject-rate P          share of transfers the payee rejects, AC01 or AC04 (0.01)\n"
    "  --ignore-rate P          share of transfers the payee never answers: AB05 (0)\n"
    "  --malformed-rate P       share of records that are not a valid Envelope (0.001)\n"
    "  --rate R                 records per second: spacing of offset_us, used by\n"
    "                           `run --speed` (1000)\n"
    "  --seed S                 PRNG seed; also starts every msg_id (1)\n"
    "  --start-ms MS            the header's started_at_ms (1767225600000)\n";

enum gen_opt {
    GEN_COUNT = 256,
    GEN_PARTICIPANTS,
    GEN_LENDER,
    GEN_BANK,
    GEN_BANK_SHARE,
    GEN_ACCOUNTS,
    GEN_MIX,
    GEN_BNPL_AMOUNT,
    GEN_SUPPLIER_AMOUNT,
    GEN_P2P_AMOUNT,
    GEN_RETRY,
    GEN_REJECT,
    GEN_IGNORE,
    GEN_MALFORMED,
    GEN_RATE,
    GEN_SEED,
    GEN_START,
    GEN_HELP,
};

static int set_role(char *dst, const char *code, const struct scenario *s, const char *opt)
{
    for (size_t i = 0; i < s->nparticipants; i++) {
        if (strcmp(s->participants[i], code) == 0) {
            memcpy(dst, s->participants[i], SCENARIO_CODE_LEN + 1);
            return 0;
        }
    }
    fprintf(stderr, "sikka-replay gen: %s %s is not among --participants\n", opt, code);
    return -1;
}

static int cmd_gen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"count", required_argument, NULL, GEN_COUNT},
        {"participants", required_argument, NULL, GEN_PARTICIPANTS},
        {"lender", required_argument, NULL, GEN_LENDER},
        {"bank", required_argument, NULL, GEN_BANK},
        {"bank-share", required_argument, NULL, GEN_BANK_SHARE},
        {"accounts", required_argument, NULL, GEN_ACCOUNTS},
        {"mix", required_argument, NULL, GEN_MIX},
        {"bnpl-amount", required_argument, NULL, GEN_BNPL_AMOUNT},
        {"supplier-amount", required_argument, NULL, GEN_SUPPLIER_AMOUNT},
        {"p2p-amount", required_argument, NULL, GEN_P2P_AMOUNT},
        {"retry-rate", required_argument, NULL, GEN_RETRY},
        {"reject-rate", required_argument, NULL, GEN_REJECT},
        {"ignore-rate", required_argument, NULL, GEN_IGNORE},
        {"malformed-rate", required_argument, NULL, GEN_MALFORMED},
        {"rate", required_argument, NULL, GEN_RATE},
        {"seed", required_argument, NULL, GEN_SEED},
        {"start-ms", required_argument, NULL, GEN_START},
        {"help", no_argument, NULL, GEN_HELP},
        {NULL, 0, NULL, 0},
    };
    struct scenario s;
    scenario_defaults(&s);
    const char *output = NULL, *lender = NULL, *bank = NULL;
    char err[512];
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        int rc = 0;
        err[0] = '\0';
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case GEN_COUNT:
            rc = parse_u64("--count", optarg, 1, UINT32_MAX, &s.count);
            break;
        case GEN_PARTICIPANTS:
            rc = scenario_set_participants(&s, optarg, err, sizeof(err));
            break;
        case GEN_LENDER:
            lender = optarg;
            break;
        case GEN_BANK:
            bank = optarg;
            break;
        case GEN_BANK_SHARE:
            rc = parse_u64("--bank-share", optarg, 0, 100, &n);
            s.bank_share = (unsigned)n;
            break;
        case GEN_ACCOUNTS:
            rc = parse_u64("--accounts", optarg, 1, 10000000, &n);
            s.accounts = (uint32_t)n;
            break;
        case GEN_MIX:
            rc = scenario_set_mix(&s, optarg, err, sizeof(err));
            break;
        case GEN_BNPL_AMOUNT:
            rc = scenario_parse_range(optarg, &s.amount[SCENARIO_BNPL], err, sizeof(err));
            break;
        case GEN_SUPPLIER_AMOUNT:
            rc = scenario_parse_range(optarg, &s.amount[SCENARIO_SUPPLIER], err, sizeof(err));
            break;
        case GEN_P2P_AMOUNT:
            rc = scenario_parse_range(optarg, &s.amount[SCENARIO_P2P], err, sizeof(err));
            break;
        case GEN_RETRY:
            rc = scenario_parse_rate(optarg, &s.retry_rate, err, sizeof(err));
            break;
        case GEN_REJECT:
            rc = scenario_parse_rate(optarg, &s.reject_rate, err, sizeof(err));
            break;
        case GEN_IGNORE:
            rc = scenario_parse_rate(optarg, &s.ignore_rate, err, sizeof(err));
            break;
        case GEN_MALFORMED:
            rc = scenario_parse_rate(optarg, &s.malformed_rate, err, sizeof(err));
            break;
        case GEN_RATE:
            rc = parse_positive("--rate", optarg, false, &s.rate);
            break;
        case GEN_SEED:
            rc = parse_u64("--seed", optarg, 0, UINT64_MAX, &s.seed);
            break;
        case GEN_START:
            rc = parse_u64("--start-ms", optarg, 0, INT64_MAX, &n);
            s.start_ms = (int64_t)n;
            break;
        case GEN_HELP:
            fputs(gen_usage, stdout);
            return 0;
        default:
            fputs(gen_usage, stderr);
            return EXIT_USAGE;
        }
        if (rc != 0) {
            if (err[0] != '\0')
                fprintf(stderr, "sikka-replay gen: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || output == NULL) {
        fprintf(stderr, "sikka-replay gen: %s\n",
                output == NULL ? "-o FILE is required" : "unexpected arguments");
        fputs(gen_usage, stderr);
        return EXIT_USAGE;
    }
    /* roles are checked once the participant list is final */
    if ((lender != NULL && set_role(s.lender, lender, &s, "--lender") != 0) ||
        (bank != NULL && set_role(s.bank, bank, &s, "--bank") != 0))
        return EXIT_USAGE;
    if (gen_write_file(&s, output, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay gen: %s\n", err);
        return EXIT_USAGE;
    }
    fprintf(stderr, "sikka-replay gen: wrote %" PRIu64 " records to %s (seed %" PRIu64 ")\n",
            s.count, output, s.seed);
    return 0;
}

/* ---------------------------------------------------------------- run */

static const char run_usage[] =
    "usage: sikka-replay run CAPTURE [options]\n"
    "\n"
    "Replays CAPTURE against a switch over mutual TLS. Every participant in the\n"
    "capture's header connects --sessions times; each sends its own transfers\n"
    "(round robin over its sessions) and answers, as the payee, the transfers the\n"
    "switch forwards to it as the record says: accept, reject with the record's\n"
    "reason, or ignore (the switch then times out: AB05).\n"
    "\n"
    "Where:\n"
    "  --connect HOST:PORT[,HOST:PORT...]\n"
    "                        the switch, or a switch pair's addresses separated by\n"
    "                        commas (default $SIKKA_CONNECT, else 127.0.0.1:7443)\n"
    "  --pki DIR             <DIR>/<CODE>.crt and .key per participant, <DIR>/ca.crt\n"
    "                        (default $SIKKA_PKI, else var/pki beside the build tree,\n"
    "                        else ./var/pki)\n"
    "  --sessions N          connections per participant (1)\n"
    "\n"
    "A session that closes is opened again, on the next address (or the one another\n"
    "session found working), after 100 ms doubling to 2 s. What was in flight on it,\n"
    "and transfers refused with a MessageReject marked retry (nothing recorded), are\n"
    "sent again, the same msg_id and bytes, after 100 ms doubling to 2 s, until the\n"
    "end of the run (--drain). Payees remember settlement notices per participant\n"
    "across their sessions, so a notice sent again is counted once.\n"
    "\n"
    "Pace (one of; default --speed 1):\n"
    "  --rate R              open loop at R messages per second, wrk2's model: message\n"
    "                        k is due at start + k/R and latency is measured from that\n"
    "                        moment (\"corrected\"), so a stall is not hidden; latency\n"
    "                        from the actual send is kept too (\"uncorrected\")\n"
    "  --speed F             open loop on the capture's recorded offsets divided by F\n"
    "  --closed N            closed loop: N messages outstanding in total (over all\n"
    "                        sessions), the next sent as soon as one is answered\n"
    "\n"
    "How much:\n"
    "  --count N             send N messages (the capture is looped as needed)\n"
    "  --duration S          send for S seconds after the warmup (loops as needed)\n"
    "                        With neither, the capture is sent once. When looping (or\n"
    "                        with --run-id) msg_ids get a suffix so keys stay unique:\n"
    "                        \"-<run id>\" and, from the second pass, \"~<pass>\".\n"
    "  --warmup S            the first S seconds are sent but not measured (0)\n"
    "  --drain S             after the last send, wait up to S seconds for answers;\n"
    "                        what is still outstanding counts as no answer (10)\n"
    "  --by-alias            pay each creditor by its alias (a wallet account is a\n"
    "                        mobile number already; a bank account's alias is 0399\n"
    "                        and its last 7 digits): the switch's directory must\n"
    "                        hold them (loadtest/bench.sh seeds them)\n"
    "  --hold S              then keep every session connected S more seconds (0),\n"
    "                        e.g. to measure the switch with them open\n"
    "  --max-outstanding N   open loop: most messages awaiting an answer; at the cap\n"
    "                        sends wait and show as late (200000)\n"
    "  --run-id ID           appended to every msg_id (letters and digits, at most 12),\n"
    "                        to replay one capture twice against one database\n"
    "  --connect-timeout S   all sessions must be connected within S seconds (15)\n"
    "\n"
    "Output:\n"
    "  a live line on stderr every second (elapsed, sent, answered, rate, p99 so far,\n"
    "  errors), then a table: requested vs achieved rate, late sends (more than 1 ms\n"
    "  behind schedule), outcomes by status and reason, latency p50/p90/p99/p99.9/max\n"
    "  corrected and uncorrected; reconnections (sessions reopened, refusals to retry,\n"
    "  messages sent again); the payees' settlement notices (distinct transfers\n"
    "  notified, repeats dropped, ACSC seen by a payer whose payee never heard it: a\n"
    "  failure); and the longest gap between two ACSCs, with when it began and ended.\n"
    "  --json FILE           the results as JSON\n"
    "  --html FILE           one self-contained page with latency over time and by\n"
    "                        percentile drawn as charts\n"
    "  --results FILE        one line per finished transfer (tab-separated, COPY text\n"
    "                        format): payer, msg_id, status (ACSC, RJCT, MSGREJ for a\n"
    "                        MessageReject, NONE for no answer), reason, transfer_id,\n"
    "                        amount in paisa; what `sikka-replay verify` reads\n"
    "  --quiet               no live line\n"
    "  --verbose             the client library's log lines too\n"
    "\n"
    "Pass/fail:\n"
    "  --threshold EXPR      repeatable; every one must hold (like k6). EXPR is\n"
    "                        METRIC OP VALUE with OP one of < <= > >= ==:\n"
    "                          p50, p90, p99, p99.9, ... max, mean  corrected latency,\n"
    "                                       units us, ms (default), s: p99<20ms\n"
    "                          errors       messages not ending as the capture expects\n"
    "                                       (or unanswered): errors<0.1%% or errors<=3\n"
    "                          late         late sends: late<1%%\n"
    "                          rate         achieved messages/s: rate>=1000\n"
    "Exit status: 0 when every threshold holds, every session is connected at the\n"
    "end and every transfer a payer saw settle was notified to its payee; 1\n"
    "otherwise, with a line saying which; 2 when the run could not start.\n";

enum run_opt {
    RUN_CONNECT = 256,
    RUN_PKI,
    RUN_SESSIONS,
    RUN_RATE,
    RUN_SPEED,
    RUN_CLOSED,
    RUN_COUNT,
    RUN_DURATION,
    RUN_WARMUP,
    RUN_DRAIN,
    RUN_HOLD,
    RUN_BY_ALIAS,
    RUN_MAX_OUTSTANDING,
    RUN_RUN_ID,
    RUN_CONNECT_TIMEOUT,
    RUN_JSON,
    RUN_HTML,
    RUN_RESULTS,
    RUN_QUIET,
    RUN_VERBOSE,
    RUN_THRESHOLD,
    RUN_HELP,
};

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, RUN_CONNECT},
        {"pki", required_argument, NULL, RUN_PKI},
        {"sessions", required_argument, NULL, RUN_SESSIONS},
        {"rate", required_argument, NULL, RUN_RATE},
        {"speed", required_argument, NULL, RUN_SPEED},
        {"closed", required_argument, NULL, RUN_CLOSED},
        {"count", required_argument, NULL, RUN_COUNT},
        {"duration", required_argument, NULL, RUN_DURATION},
        {"warmup", required_argument, NULL, RUN_WARMUP},
        {"drain", required_argument, NULL, RUN_DRAIN},
        {"hold", required_argument, NULL, RUN_HOLD},
        {"by-alias", no_argument, NULL, RUN_BY_ALIAS},
        {"max-outstanding", required_argument, NULL, RUN_MAX_OUTSTANDING},
        {"run-id", required_argument, NULL, RUN_RUN_ID},
        {"connect-timeout", required_argument, NULL, RUN_CONNECT_TIMEOUT},
        {"json", required_argument, NULL, RUN_JSON},
        {"html", required_argument, NULL, RUN_HTML},
        {"results", required_argument, NULL, RUN_RESULTS},
        {"quiet", no_argument, NULL, RUN_QUIET},
        {"verbose", no_argument, NULL, RUN_VERBOSE},
        {"threshold", required_argument, NULL, RUN_THRESHOLD},
        {"help", no_argument, NULL, RUN_HELP},
        {NULL, 0, NULL, 0},
    };
    struct replay_opts o;
    replay_opts_defaults(&o);
    const char *connect = getenv("SIKKA_CONNECT");
    const char *json = NULL, *html = NULL;
    char pki[PATH_MAX], err[1024];
    pki[0] = '\0';
    struct threshold thresholds[MAX_THRESHOLDS];
    size_t nthresholds = 0;
    int modes = 0;
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case RUN_CONNECT:
            connect = optarg;
            break;
        case RUN_PKI:
            snprintf(pki, sizeof(pki), "%s", optarg);
            break;
        case RUN_SESSIONS:
            rc = parse_u64("--sessions", optarg, 1, 10000, &n);
            o.sessions = (unsigned)n;
            break;
        case RUN_RATE:
            o.mode = REPLAY_RATE;
            modes++;
            rc = parse_positive("--rate", optarg, false, &o.rate);
            break;
        case RUN_SPEED:
            o.mode = REPLAY_SPEED;
            modes++;
            rc = parse_positive("--speed", optarg, false, &o.speed);
            break;
        case RUN_CLOSED:
            o.mode = REPLAY_CLOSED;
            modes++;
            rc = parse_u64("--closed", optarg, 1, 1000000, &n);
            o.closed = (unsigned)n;
            break;
        case RUN_COUNT:
            rc = parse_u64("--count", optarg, 1, UINT64_MAX / 2, &o.count);
            break;
        case RUN_DURATION:
            rc = parse_positive("--duration", optarg, false, &o.duration_s);
            break;
        case RUN_WARMUP:
            rc = parse_positive("--warmup", optarg, true, &o.warmup_s);
            break;
        case RUN_DRAIN:
            rc = parse_positive("--drain", optarg, true, &o.drain_s);
            break;
        case RUN_HOLD:
            rc = parse_positive("--hold", optarg, true, &o.hold_s);
            break;
        case RUN_BY_ALIAS:
            o.by_alias = true;
            break;
        case RUN_MAX_OUTSTANDING:
            rc = parse_u64("--max-outstanding", optarg, 1, 10000000, &n);
            o.max_outstanding = (unsigned)n;
            break;
        case RUN_RUN_ID:
            o.run_id = optarg;
            break;
        case RUN_CONNECT_TIMEOUT:
            rc = parse_positive("--connect-timeout", optarg, false, &o.connect_timeout_s);
            break;
        case RUN_JSON:
            json = optarg;
            break;
        case RUN_HTML:
            html = optarg;
            break;
        case RUN_RESULTS:
            o.results = optarg;
            break;
        case RUN_QUIET:
            o.live = false;
            break;
        case RUN_VERBOSE:
            log_set_level(LOG_LEVEL_INFO);
            break;
        case RUN_THRESHOLD:
            if (nthresholds == MAX_THRESHOLDS) {
                fprintf(stderr, "sikka-replay run: at most %d thresholds\n", MAX_THRESHOLDS);
                return EXIT_USAGE;
            }
            rc = threshold_parse(optarg, &thresholds[nthresholds++], err, sizeof(err));
            if (rc != 0)
                fprintf(stderr, "sikka-replay run: %s\n", err);
            break;
        case RUN_HELP:
            fputs(run_usage, stdout);
            return 0;
        default:
            fputs(run_usage, stderr);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return EXIT_USAGE;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "sikka-replay run: %s\n",
                optind == argc ? "which capture? (sikka-replay run CAPTURE)"
                               : "one capture at a time");
        return EXIT_USAGE;
    }
    if (modes > 1) {
        fprintf(stderr, "sikka-replay run: --rate, --speed and --closed exclude each other\n");
        return EXIT_USAGE;
    }
    o.capture = argv[optind];
    if (connect == NULL || connect[0] == '\0')
        connect = "127.0.0.1:7443";
    if (client_addrs_parse(connect, &o.addrs, err, sizeof(err)) != 0) {
        fprintf(stderr,
                "sikka-replay run: --connect wants HOST:PORT[,HOST:PORT...], got \"%s\": %s\n",
                connect, err);
        return EXIT_USAGE;
    }
    if (pki[0] == '\0')
        cli_pki_dir(pki, sizeof(pki)); /* as sikka-wallet and sikka-ctl look */
    o.pki = pki;

    struct replay_result r;
    if (replay_run(&o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay run: %s\n", err);
        replay_result_free(&r);
        return EXIT_USAGE;
    }

    struct report_check checks[MAX_THRESHOLDS];
    struct threshold_metrics m = {
        .latency = r.corrected,
        .sent = r.sent,
        .errors = r.errors,
        .late = r.late,
        .rate = r.achieved_rate,
    };
    /* a session lost and opened again fails nothing by itself: what it
     * had in flight was sent again and counts in errors if unanswered */
    bool passed = r.sessions_down == 0 && r.acsc_without_notice == 0;
    for (size_t i = 0; i < nthresholds; i++) {
        checks[i].ok = threshold_holds(&thresholds[i], &m, checks[i].why, sizeof(checks[i].why));
        passed = passed && checks[i].ok;
    }
    struct report_verdict v = {
        .checks = checks,
        .nchecks = nthresholds,
        .passed = passed,
        .capture = o.capture,
        .target = connect,
    };
    report_text(stdout, &r, &v);
    fflush(stdout);
    int status = passed ? 0 : EXIT_FAILED;
    if (json != NULL && report_json(json, &r, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay run: %s\n", err);
        status = EXIT_USAGE;
    }
    if (html != NULL && report_html(html, &r, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay run: %s\n", err);
        status = EXIT_USAGE;
    }
    for (size_t i = 0; i < nthresholds; i++)
        if (!checks[i].ok)
            fprintf(stderr, "sikka-replay run: threshold broken: %s\n", checks[i].why);
    if (r.connection_failures > 0)
        fprintf(stderr,
                "sikka-replay run: %" PRIu64 " session(s) lost during the run, %" PRIu64
                " reopened; first: %s\n",
                r.connection_failures, r.reconnects, r.first_failure);
    if (r.sessions_down > 0)
        fprintf(stderr, "sikka-replay run: %u session(s) not connected at the end of the run\n",
                r.sessions_down);
    if (r.acsc_without_notice > 0)
        fprintf(stderr,
                "sikka-replay run: %" PRIu64
                " transfer(s) settled (ACSC to the payer) but never notified to the payee\n",
                r.acsc_without_notice);
    replay_result_free(&r);
    return status;
}

/* ---------------------------------------------------------------- verify */

static const char verify_usage[] =
    "usage: sikka-replay verify --results FILE --db URI [--json FILE]\n"
    "\n"
    "Compares the ledger with what `sikka-replay run --results FILE` saw: every\n"
    "transfer answered ACSC is in the ledger exactly once with its amount (one\n"
    "posting: two principal entries, plus two fee entries when it carries a fee),\n"
    "no rejection is posted, and every posting in the ledger balances. Prints the\n"
    "counts and a verdict; exit 0 only if everything holds (1 if not, 2 when the\n"
    "comparison could not be made).\n"
    "\n"
    "  --results FILE   the run's results\n"
    "  --db URI         libpq URI or conninfo (default $SIKKA_DB_URI), e.g. the last\n"
    "                   line of `deploy/local.sh pguri`; read access is enough\n"
    "  --json FILE      the counts and the verdict as JSON too\n";

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"results", required_argument, NULL, 'r'},
        {"db", required_argument, NULL, 'd'},
        {"json", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *results = NULL, *db = getenv("SIKKA_DB_URI"), *json = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            results = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'j':
            json = optarg;
            break;
        case 'h':
            fputs(verify_usage, stdout);
            return 0;
        default:
            fputs(verify_usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || results == NULL || db == NULL || db[0] == '\0') {
        fprintf(stderr, "sikka-replay verify: --results FILE and --db URI are required\n");
        fputs(verify_usage, stderr);
        return EXIT_USAGE;
    }
    struct verify_report v;
    char err[1024];
    if (verify_run(results, db, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay verify: %s\n", err);
        return EXIT_USAGE;
    }
    verify_print(stdout, &v);
    if (json != NULL && verify_write_json(json, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay verify: %s\n", err);
        return EXIT_USAGE;
    }
    return v.ok ? 0 : EXIT_FAILED;
}

/* The switch and the certificates of a command that talks to one switch:
 * --connect (else $SIKKA_CONNECT, else the local stack's 127.0.0.1:7443)
 * as host and port, and --pki (when not given, where sikka-wallet looks).
 * 0, or -1 after saying what was wrong about `cmd`'s --connect. */
static int target_of(const char *cmd, const char *connect, char *host, size_t hostlen, int *port,
                     char *pki, size_t pkilen)
{
    if (connect == NULL || connect[0] == '\0')
        connect = "127.0.0.1:7443";
    if (config_split_addr(connect, host, hostlen, port) != 0) {
        fprintf(stderr, "sikka-replay %s: --connect wants HOST:PORT, got \"%s\"\n", cmd, connect);
        return -1;
    }
    if (pki[0] == '\0')
        cli_pki_dir(pki, pkilen);
    return 0;
}

/* ---------------------------------------------------------------- flood */

static const char flood_usage[] =
    "usage: sikka-replay flood --participant CODE [options]\n"
    "\n"
    "A hostile participant: connects as CODE over mutual TLS and writes frames as\n"
    "fast as the connections take them, to see what the switch's protections\n"
    "leave of a flood for everyone else (run a `sikka-replay run` beside it).\n"
    "Every frame has the same length; pings are answered with pongs, malformed\n"
    "frames with MessageReject FF01.\n"
    "\n"
    "  --participant CODE    the flooder (<PKI>/<CODE>.crt and .key); required\n"
    "  --connect HOST:PORT   the switch (default $SIKKA_CONNECT, else 127.0.0.1:7443)\n"
    "  --pki DIR             as for `run` (default $SIKKA_PKI, else var/pki beside the\n"
    "                        build tree, else ./var/pki)\n"
    "  --sessions N          connections (1)\n"
    "  --seconds S           how long to flood once every session is connected (10)\n"
    "  --mode MODE           pings (heartbeat pings), malformed (a correct length\n"
    "                        prefix around bytes that are no Envelope) or mixed (the\n"
    "                        two alternating) (mixed)\n"
    "  --no-read[=K]         never read the socket after the switch's welcome, in\n"
    "                        every session or in the first K, so the switch's\n"
    "                        answers pile up at the switch\n"
    "  --connect-timeout S   all sessions must be connected within S seconds (15)\n"
    "  --verbose             the client library's log lines too\n"
    "\n"
    "It prints the frames written (handed to the kernel; the switch reads what its\n"
    "limits let it), their rate, the MessageRejects read and the sessions the switch\n"
    "closed. SIGINT or SIGTERM end the flood early, with the counts so far.\n"
    "Exit status: 0 when it flooded to the end with at least one session open; 1\n"
    "when the switch closed every session before; 2 when it could not start.\n";

enum flood_opt {
    FLOOD_OPT_PARTICIPANT = 256,
    FLOOD_OPT_CONNECT,
    FLOOD_OPT_PKI,
    FLOOD_OPT_SESSIONS,
    FLOOD_OPT_SECONDS,
    FLOOD_OPT_MODE,
    FLOOD_OPT_NO_READ,
    FLOOD_OPT_CONNECT_TIMEOUT,
    FLOOD_OPT_VERBOSE,
    FLOOD_OPT_HELP,
};

static int cmd_flood(int argc, char **argv)
{
    static const struct option opts[] = {
        {"participant", required_argument, NULL, FLOOD_OPT_PARTICIPANT},
        {"connect", required_argument, NULL, FLOOD_OPT_CONNECT},
        {"pki", required_argument, NULL, FLOOD_OPT_PKI},
        {"sessions", required_argument, NULL, FLOOD_OPT_SESSIONS},
        {"seconds", required_argument, NULL, FLOOD_OPT_SECONDS},
        {"mode", required_argument, NULL, FLOOD_OPT_MODE},
        {"no-read", optional_argument, NULL, FLOOD_OPT_NO_READ},
        {"connect-timeout", required_argument, NULL, FLOOD_OPT_CONNECT_TIMEOUT},
        {"verbose", no_argument, NULL, FLOOD_OPT_VERBOSE},
        {"help", no_argument, NULL, FLOOD_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct flood_opts o;
    flood_opts_defaults(&o);
    const char *connect = getenv("SIKKA_CONNECT");
    char pki[PATH_MAX], err[1024];
    pki[0] = '\0';
    bool no_read_all = false;
    uint64_t no_read = 0, n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case FLOOD_OPT_PARTICIPANT:
            o.participant = optarg;
            break;
        case FLOOD_OPT_CONNECT:
            connect = optarg;
            break;
        case FLOOD_OPT_PKI:
            snprintf(pki, sizeof(pki), "%s", optarg);
            break;
        case FLOOD_OPT_SESSIONS:
            rc = parse_u64("--sessions", optarg, 1, 1000, &n);
            o.sessions = (unsigned)n;
            break;
        case FLOOD_OPT_SECONDS:
            rc = parse_positive("--seconds", optarg, false, &o.seconds);
            break;
        case FLOOD_OPT_MODE:
            rc = flood_parse_mode(optarg, &o.mode);
            if (rc != 0)
                fprintf(stderr,
                        "sikka-replay flood: --mode is pings, malformed or mixed, not \"%s\"\n",
                        optarg);
            break;
        case FLOOD_OPT_NO_READ:
            no_read_all = optarg == NULL;
            if (optarg != NULL)
                rc = parse_u64("--no-read", optarg, 1, 1000, &no_read);
            break;
        case FLOOD_OPT_CONNECT_TIMEOUT:
            rc = parse_positive("--connect-timeout", optarg, false, &o.connect_timeout_s);
            break;
        case FLOOD_OPT_VERBOSE:
            log_set_level(LOG_LEVEL_INFO);
            break;
        case FLOOD_OPT_HELP:
            fputs(flood_usage, stdout);
            return 0;
        default:
            fputs(flood_usage, stderr);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return EXIT_USAGE;
    }
    if (optind != argc || o.participant == NULL) {
        fprintf(stderr, "sikka-replay flood: %s\n",
                o.participant == NULL ? "--participant CODE is required" : "unexpected arguments");
        fputs(flood_usage, stderr);
        return EXIT_USAGE;
    }
    if (!msg_valid_agent(o.participant)) {
        fprintf(stderr,
                "sikka-replay flood: --participant wants a participant code (4 capital "
                "letters), got \"%s\"\n",
                o.participant);
        return EXIT_USAGE;
    }
    o.no_read = no_read_all ? o.sessions : (unsigned)no_read;
    if (o.no_read > o.sessions) {
        fprintf(stderr, "sikka-replay flood: --no-read=%u is more than --sessions %u\n", o.no_read,
                o.sessions);
        return EXIT_USAGE;
    }
    if (target_of("flood", connect, o.host, sizeof(o.host), &o.port, pki, sizeof(pki)) != 0)
        return EXIT_USAGE;
    o.pki = pki;

    struct flood_result r;
    if (flood_run(&o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay flood: %s\n", err);
        return EXIT_USAGE;
    }
    flood_report(stdout, &o, &r);
    if (r.closed < o.sessions)
        return 0;
    fprintf(stderr, "sikka-replay flood: the switch closed every session; first: %s\n",
            r.first_close);
    return EXIT_FAILED;
}

/* ---------------------------------------------------------------- lookups */

static const char lookups_usage[] =
    "usage: sikka-replay lookups --participant CODE [options]\n"
    "\n"
    "Looks aliases up (the alias directory's ALIAS_LOOKUP, confirmation of payee)\n"
    "as one participant, keeping N lookups in flight per session, each for a random\n"
    "alias of [BASE, BASE + COUNT), and prints the answers a second.\n"
    "\n"
    "  --participant CODE    who looks up (<PKI>/<CODE>.crt and .key); required\n"
    "  --connect HOST:PORT   the switch (default $SIKKA_CONNECT, else 127.0.0.1:7443)\n"
    "  --pki DIR             certificates (default $SIKKA_PKI, else var/pki)\n"
    "  --sessions N          connections (4)\n"
    "  --outstanding N       lookups in flight per session (64)\n"
    "  --seconds S           measured, from every session ready (5)\n"
    "  --base N --count N    the aliases asked (923100000001, 1000000)\n"
    "Exit status: 0 measured; 2 usage or it could not run.\n";

enum lookups_opt {
    LOOKUPS_OPT_PARTICIPANT = 256,
    LOOKUPS_OPT_CONNECT,
    LOOKUPS_OPT_PKI,
    LOOKUPS_OPT_SESSIONS,
    LOOKUPS_OPT_OUTSTANDING,
    LOOKUPS_OPT_SECONDS,
    LOOKUPS_OPT_BASE,
    LOOKUPS_OPT_COUNT,
    LOOKUPS_OPT_HELP,
};

static int cmd_lookups(int argc, char **argv)
{
    static const struct option opts[] = {
        {"participant", required_argument, NULL, LOOKUPS_OPT_PARTICIPANT},
        {"connect", required_argument, NULL, LOOKUPS_OPT_CONNECT},
        {"pki", required_argument, NULL, LOOKUPS_OPT_PKI},
        {"sessions", required_argument, NULL, LOOKUPS_OPT_SESSIONS},
        {"outstanding", required_argument, NULL, LOOKUPS_OPT_OUTSTANDING},
        {"seconds", required_argument, NULL, LOOKUPS_OPT_SECONDS},
        {"base", required_argument, NULL, LOOKUPS_OPT_BASE},
        {"count", required_argument, NULL, LOOKUPS_OPT_COUNT},
        {"help", no_argument, NULL, LOOKUPS_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct lookups_opts o;
    lookups_opts_defaults(&o);
    const char *connect = getenv("SIKKA_CONNECT");
    char pki[PATH_MAX], err[1024];
    pki[0] = '\0';
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case LOOKUPS_OPT_PARTICIPANT:
            o.participant = optarg;
            break;
        case LOOKUPS_OPT_CONNECT:
            connect = optarg;
            break;
        case LOOKUPS_OPT_PKI:
            snprintf(pki, sizeof(pki), "%s", optarg);
            break;
        case LOOKUPS_OPT_SESSIONS:
            rc = parse_u64("--sessions", optarg, 1, 256, &n);
            o.sessions = (unsigned)n;
            break;
        case LOOKUPS_OPT_OUTSTANDING:
            rc = parse_u64("--outstanding", optarg, 1, 100000, &n);
            o.outstanding = (unsigned)n;
            break;
        case LOOKUPS_OPT_SECONDS:
            rc = parse_positive("--seconds", optarg, false, &o.seconds);
            break;
        case LOOKUPS_OPT_BASE:
            rc = parse_u64("--base", optarg, 1, UINT64_C(9999999999999), &o.base);
            break;
        case LOOKUPS_OPT_COUNT:
            rc = parse_u64("--count", optarg, 1, UINT64_C(100000000), &o.count);
            break;
        case LOOKUPS_OPT_HELP:
            fputs(lookups_usage, stdout);
            return 0;
        default:
            fputs(lookups_usage, stderr);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return EXIT_USAGE;
    }
    if (optind != argc || o.participant == NULL || !msg_valid_agent(o.participant)) {
        fprintf(stderr, "sikka-replay lookups: --participant CODE (4 capital letters) is "
                        "required, and nothing else\n");
        return EXIT_USAGE;
    }
    if (target_of("lookups", connect, o.host, sizeof(o.host), &o.port, pki, sizeof(pki)) != 0)
        return EXIT_USAGE;
    o.pki = pki;
    struct lookups_result r;
    if (lookups_run(&o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay lookups: %s\n", err);
        return EXIT_USAGE;
    }
    lookups_report(stdout, &o, &r);
    return 0;
}

/* ---------------------------------------------------------------- requests */

static const char requests_usage[] =
    "usage: sikka-replay requests [options]\n"
    "\n"
    "The request-to-pay scenario (RTP Now): the creditor's participant sends --count\n"
    "requests, one at a time, to consumers at the debtor's participant, which accepts\n"
    "and pays each with a linked credit transfer (the creditor accepts it as payee),\n"
    "declines it (MS02), or leaves it to the creditor to cancel or to expire (1 s), as\n"
    "--mix says. Every paid request is paid again with the same transfer (answered\n"
    "with the first transfer) and with another one (refused DUPL). Exit 0 when every\n"
    "request ended as planned on both sides.\n"
    "\n"
    "  --connect HOST:PORT  the switch (default $SIKKA_CONNECT, else 127.0.0.1:7443)\n"
    "  --pki DIR            certificates <DIR>/<CODE>.crt/.key and <DIR>/ca.crt\n"
    "  --creditor CODE      default KOKO\n"
    "  --debtor CODE        default JAZZ\n"
    "  --count N            requests (default 20)\n"
    "  --mix accept=70,decline=10,cancel=10,expire=10   (the default)\n"
    "  --amount PKR         of each request (default 1500.00)\n"
    "  --run-id ID          in every msg_id and loan id, for repeated runs (default 1)\n"
    "  --timeout-ms N       per expected frame (default 5000)\n";

enum {
    RQ_OPT_CONNECT = 256,
    RQ_OPT_PKI,
    RQ_OPT_CREDITOR,
    RQ_OPT_DEBTOR,
    RQ_OPT_COUNT,
    RQ_OPT_MIX,
    RQ_OPT_AMOUNT,
    RQ_OPT_RUN_ID,
    RQ_OPT_TIMEOUT,
    RQ_OPT_HELP,
};

static int cmd_requests(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, RQ_OPT_CONNECT},
        {"pki", required_argument, NULL, RQ_OPT_PKI},
        {"creditor", required_argument, NULL, RQ_OPT_CREDITOR},
        {"debtor", required_argument, NULL, RQ_OPT_DEBTOR},
        {"count", required_argument, NULL, RQ_OPT_COUNT},
        {"mix", required_argument, NULL, RQ_OPT_MIX},
        {"amount", required_argument, NULL, RQ_OPT_AMOUNT},
        {"run-id", required_argument, NULL, RQ_OPT_RUN_ID},
        {"timeout-ms", required_argument, NULL, RQ_OPT_TIMEOUT},
        {"help", no_argument, NULL, RQ_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct rtpflow_opts o;
    rtpflow_opts_defaults(&o);
    const char *connect = getenv("SIKKA_CONNECT");
    char pki[PATH_MAX], err[1024];
    pki[0] = '\0';
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case RQ_OPT_CONNECT:
            connect = optarg;
            break;
        case RQ_OPT_PKI:
            snprintf(pki, sizeof(pki), "%s", optarg);
            break;
        case RQ_OPT_CREDITOR:
            o.creditor = optarg;
            break;
        case RQ_OPT_DEBTOR:
            o.debtor = optarg;
            break;
        case RQ_OPT_COUNT:
            rc = parse_u64("--count", optarg, 1, 1000000, &o.count);
            break;
        case RQ_OPT_MIX:
            rc = rtpflow_parse_mix(&o, optarg, err, sizeof(err));
            if (rc != 0)
                fprintf(stderr, "sikka-replay requests: %s\n", err);
            break;
        case RQ_OPT_AMOUNT:
            rc = money_parse(optarg, &o.amount, err, sizeof(err));
            if (rc != 0)
                fprintf(stderr, "sikka-replay requests: --amount: %s\n", err);
            break;
        case RQ_OPT_RUN_ID:
            o.run_id = optarg;
            if (strlen(optarg) < 1 || strlen(optarg) > 12 || !msg_valid_account(optarg)) {
                fprintf(stderr, "sikka-replay requests: --run-id wants 1..12 characters\n");
                rc = -1;
            }
            break;
        case RQ_OPT_TIMEOUT:
            rc = parse_u64("--timeout-ms", optarg, 1, INT_MAX, &n);
            o.timeout_ms = (int)n;
            break;
        case RQ_OPT_HELP:
            fputs(requests_usage, stdout);
            return 0;
        default:
            fputs(requests_usage, stderr);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return EXIT_USAGE;
    }
    if (optind != argc || !msg_valid_agent(o.creditor) || !msg_valid_agent(o.debtor)) {
        fprintf(stderr, "sikka-replay requests: %s\n",
                optind != argc ? "unexpected arguments"
                               : "--creditor and --debtor want participant codes");
        return EXIT_USAGE;
    }
    if (target_of("requests", connect, o.host, sizeof(o.host), &o.port, pki, sizeof(pki)) != 0)
        return EXIT_USAGE;
    o.pki = pki;
    struct rtpflow_result r;
    if (rtpflow_run(&o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay requests: %s\n", err);
        return EXIT_USAGE;
    }
    rtpflow_print(stdout, &o, &r);
    uint64_t ended = 0;
    for (size_t k = 0; k < RTPFLOW_KINDS; k++)
        ended += r.ended[k];
    return ended == o.count && r.paid_once == r.ended[RTPFLOW_ACCEPT] ? 0 : EXIT_FAILED;
}

/* ---------------------------------------------------------------- bulk */

static const char bulk_usage[] =
    "usage: sikka-replay bulk [options]\n"
    "\n"
    "The bulk supplier payments scenario: the payer's participant sends --batches\n"
    "batches of --items supplier payments (BulkCreditTransfer) spread over the\n"
    "payees, whose sides run here: they accept, or reject --reject-permille of the\n"
    "payments (AC01); payments to --offline (a participant left without a session)\n"
    "are refused AB08 while the rest of their batch settles. Every batch is then\n"
    "sent again with its batch id: each payment must get its first answer again and\n"
    "none may be forwarded twice. Exit 0 when everything ended as planned.\n"
    "\n"
    "  --connect HOST:PORT     the switch (default $SIKKA_CONNECT, else 127.0.0.1:7443)\n"
    "  --pki DIR               certificates <DIR>/<CODE>.crt/.key and <DIR>/ca.crt\n"
    "  --payer CODE            default MEZN\n"
    "  --payees CODE,CODE,...  up to 8 (default JAZZ,EASY,SADA)\n"
    "  --offline CODE          a registered participant given payments but no session\n"
    "  --batches N             default 5\n"
    "  --items N               payments per batch, 1..1000 (default 200)\n"
    "  --reject-permille N     payments the payees reject, per thousand (default 50)\n"
    "  --run-id ID             in every batch id and msg_id, 1..12 characters (default 1)\n"
    "  --timeout-ms N          per sending of a batch (default 30000)\n";

enum {
    BK_OPT_CONNECT = 256,
    BK_OPT_PKI,
    BK_OPT_PAYER,
    BK_OPT_PAYEES,
    BK_OPT_OFFLINE,
    BK_OPT_BATCHES,
    BK_OPT_ITEMS,
    BK_OPT_REJECT,
    BK_OPT_RUN_ID,
    BK_OPT_TIMEOUT,
    BK_OPT_HELP,
};

/* --payees: codes separated by commas, into o (the list's text in buf) */
static int parse_payees(struct bulkflow_opts *o, const char *text, char *buf, size_t len)
{
    snprintf(buf, len, "%s", text);
    o->npayees = 0;
    for (char *save = NULL, *code = strtok_r(buf, ",", &save); code != NULL;
         code = strtok_r(NULL, ",", &save)) {
        if (o->npayees == BULKFLOW_MAX_PAYEES || !msg_valid_agent(code)) {
            fprintf(stderr,
                    "sikka-replay bulk: --payees wants 1..%d participant codes, got \"%s\"\n",
                    BULKFLOW_MAX_PAYEES, text);
            return -1;
        }
        o->payees[o->npayees++] = code;
    }
    return o->npayees > 0 ? 0 : -1;
}

static int cmd_bulk(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, BK_OPT_CONNECT},
        {"pki", required_argument, NULL, BK_OPT_PKI},
        {"payer", required_argument, NULL, BK_OPT_PAYER},
        {"payees", required_argument, NULL, BK_OPT_PAYEES},
        {"offline", required_argument, NULL, BK_OPT_OFFLINE},
        {"batches", required_argument, NULL, BK_OPT_BATCHES},
        {"items", required_argument, NULL, BK_OPT_ITEMS},
        {"reject-permille", required_argument, NULL, BK_OPT_REJECT},
        {"run-id", required_argument, NULL, BK_OPT_RUN_ID},
        {"timeout-ms", required_argument, NULL, BK_OPT_TIMEOUT},
        {"help", no_argument, NULL, BK_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct bulkflow_opts o;
    bulkflow_opts_defaults(&o);
    const char *connect = getenv("SIKKA_CONNECT");
    char pki[PATH_MAX], err[1024], payees[128];
    pki[0] = '\0';
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case BK_OPT_CONNECT:
            connect = optarg;
            break;
        case BK_OPT_PKI:
            snprintf(pki, sizeof(pki), "%s", optarg);
            break;
        case BK_OPT_PAYER:
            o.payer = optarg;
            break;
        case BK_OPT_PAYEES:
            rc = parse_payees(&o, optarg, payees, sizeof(payees));
            break;
        case BK_OPT_OFFLINE:
            o.offline = optarg;
            break;
        case BK_OPT_BATCHES:
            rc = parse_u64("--batches", optarg, 1, 100000, &n);
            o.batches = (unsigned)n;
            break;
        case BK_OPT_ITEMS:
            rc = parse_u64("--items", optarg, 1, 1000, &n);
            o.items = (unsigned)n;
            break;
        case BK_OPT_REJECT:
            rc = parse_u64("--reject-permille", optarg, 0, 1000, &n);
            o.reject_permille = (unsigned)n;
            break;
        case BK_OPT_RUN_ID:
            o.run_id = optarg;
            if (strlen(optarg) < 1 || strlen(optarg) > 12 || !msg_valid_account(optarg)) {
                fprintf(stderr, "sikka-replay bulk: --run-id wants 1..12 characters\n");
                rc = -1;
            }
            break;
        case BK_OPT_TIMEOUT:
            rc = parse_u64("--timeout-ms", optarg, 100, 600000, &n);
            o.timeout_ms = (int)n;
            break;
        case BK_OPT_HELP:
            fputs(bulk_usage, stdout);
            return 0;
        default:
            fputs(bulk_usage, stderr);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return EXIT_USAGE;
    }
    if (optind != argc || !msg_valid_agent(o.payer) ||
        (o.offline != NULL && !msg_valid_agent(o.offline))) {
        fprintf(stderr, "sikka-replay bulk: %s\n",
                optind != argc ? "unexpected arguments"
                               : "--payer and --offline want participant codes");
        return EXIT_USAGE;
    }
    if (target_of("bulk", connect, o.host, sizeof(o.host), &o.port, pki, sizeof(pki)) != 0)
        return EXIT_USAGE;
    o.pki = pki;
    struct bulkflow_result r;
    if (bulkflow_run(&o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-replay bulk: %s\n", err);
        return EXIT_FAILED;
    }
    bulkflow_print(stdout, &o, &r);
    return bulkflow_ok(&r) ? 0 : EXIT_FAILED;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    log_setup("sikka-replay", LOG_LEVEL_WARN);
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage_main(stdout);
        return 0;
    }
    /* the sub-command's options start after its name */
    argc--;
    argv++;
    if (strcmp(cmd, "gen") == 0)
        return cmd_gen(argc, argv);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc, argv);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc, argv);
    if (strcmp(cmd, "flood") == 0)
        return cmd_flood(argc, argv);
    if (strcmp(cmd, "requests") == 0)
        return cmd_requests(argc, argv);
    if (strcmp(cmd, "lookups") == 0)
        return cmd_lookups(argc, argv);
    if (strcmp(cmd, "bulk") == 0)
        return cmd_bulk(argc, argv);
    fprintf(stderr, "sikka-replay: unknown command \"%s\"\n", cmd);
    usage_main(stderr);
    return EXIT_USAGE;
}
