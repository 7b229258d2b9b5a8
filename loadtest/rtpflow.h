/*
 * rtpflow: `sikka-replay requests`, the request-to-pay scenario. One
 * creditor's participant (a BNPL lender) sends `count` requests to pay, one
 * at a time, to consumers at one debtor's participant; the debtor side
 * answers each as the scenario's mix says — accept and pay it with a
 * linked credit transfer (the creditor accepts the payment as its payee),
 * decline it, let the creditor cancel it, or let it expire — and every
 * paid request is then paid again twice: the same transfer (a retry: the
 * first answer again) and a new one (refused DUPL). It checks that each
 * flow ends as planned on both sides and reports the counts and the time
 * from request to PAID.
 *
 * Blocking, one request in flight: a scenario that checks the protocol
 * end to end, not a load generator. Plain data owned by the caller.
 */
#ifndef SIKKA_RTPFLOW_H
#define SIKKA_RTPFLOW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum rtpflow_kind {
    RTPFLOW_ACCEPT = 0, /* accepted and paid */
    RTPFLOW_DECLINE,    /* declined by the debtor's participant (MS02) */
    RTPFLOW_CANCEL,     /* cancelled by the creditor's participant */
    RTPFLOW_EXPIRE,     /* not answered: expires after 1 s */
    RTPFLOW_KINDS,
};

struct rtpflow_opts {
    char host[256];
    int port;
    const char *pki;      /* <pki>/<CODE>.crt/.key and <pki>/ca.crt */
    const char *creditor; /* e.g. KOKO */
    const char *debtor;   /* e.g. JAZZ */
    const char *run_id;   /* makes msg_ids and loan ids unique per run */
    uint64_t count;
    unsigned mix[RTPFLOW_KINDS]; /* relative weights */
    int64_t amount;              /* paisa */
    int timeout_ms;              /* per expected frame */
};

struct rtpflow_result {
    uint64_t planned[RTPFLOW_KINDS];
    uint64_t ended[RTPFLOW_KINDS]; /* ended as planned on both sides */
    uint64_t refused;              /* requests the switch refused (first reason kept) */
    char first_refusal[160];
    uint64_t paid_once; /* paid requests whose retry and second payment held */
    uint64_t failures;  /* flows that did not end as planned */
    char first_failure[320];
    double paid_ms_sum, paid_ms_max; /* request sent -> PAID at the creditor */
};

void rtpflow_opts_defaults(struct rtpflow_opts *o);
/* "accept=70,decline=10,cancel=10,expire=10"; names left out become 0. */
int rtpflow_parse_mix(struct rtpflow_opts *o, const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Runs the scenario. -1 (err says why) when it could not start (a
 * connection); otherwise 0 with r filled (r->failures says how it went). */
int rtpflow_run(const struct rtpflow_opts *o, struct rtpflow_result *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void rtpflow_print(FILE *out, const struct rtpflow_opts *o, const struct rtpflow_result *r);

#endif
