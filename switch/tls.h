/*
 * tls: OpenSSL 3 contexts for Sikka's mutual TLS, server and client side,
 * and reading a verified peer's identity. TLS 1.3 only; peers must present a
 * certificate chaining to the configured CA (expired, foreign-CA or missing
 * certificates fail the handshake).
 *
 * Identity is the certificate subject: OU says the kind of peer
 * ("participant", "operator", "switch"), CN the name (a participant's
 * 4-letter code, an operator's name) and, for operators, the title
 * attribute (X.520 title) their role in the console ("viewer", "operator",
 * "supervisor").
 * SSL_CTX objects are reference counted by OpenSSL; whoever creates one
 * frees it with SSL_CTX_free.
 */
#ifndef SIKKA_TLS_H
#define SIKKA_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#define TLS_NAME_MAX 64
/* a certificate's serial in hex (at most 20 octets by RFC 5280; room for
 * more) and its SHA-256 fingerprint in lowercase hex */
#define TLS_SERIAL_MAX      84
#define TLS_FINGERPRINT_LEN 64

struct tls_identity {
    char role[TLS_NAME_MAX];  /* subject OU */
    char name[TLS_NAME_MAX];  /* subject CN */
    char title[TLS_NAME_MAX]; /* subject title; "" when there is none */
};

/* Which certificate exactly: for an audit trail. */
struct tls_cert_id {
    char serial[TLS_SERIAL_MAX];               /* uppercase hex, as openssl prints it */
    char fingerprint[TLS_FINGERPRINT_LEN + 1]; /* SHA-256 of the DER, lowercase hex */
};

/* Server context: our certificate and key, and the CA that must have signed
 * every client. `crl` (NULL or "" for none) is a PEM file of revocation
 * lists: a revoked client certificate fails the handshake. `role` (NULL for
 * any) is the subject OU a client certificate must carry, checked in the
 * handshake itself: another role's certificate is refused before a byte of
 * application data is read. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca, const char *crl,
                            const char *role, char *err, size_t errlen);

/* Whether `cert` appears in a revocation list loaded into ctx. */
bool tls_cert_revoked(SSL_CTX *ctx, X509 *cert);

/* Client context: our certificate and key, and the CA the server must chain to.
 * The server's name is checked against `expected_host` in tls_client_prepare. */
SSL_CTX *tls_client_ctx_new(const char *cert, const char *key, const char *ca, char *err,
                            size_t errlen);

/* Sets SNI and host/IP verification on a client SSL before the handshake. */
int tls_client_prepare(SSL *ssl, const char *host) __attribute__((warn_unused_result));

/* Copies the verified peer certificate's OU, CN and title. Call after the
 * handshake. */
int tls_peer_identity(SSL *ssl, struct tls_identity *id) __attribute__((warn_unused_result));
/* The same from a certificate: -1 when it has no usable CN (a missing OU or
 * title leaves role or title ""). Checks nothing else about it
 * (tls_peer_identity's handshake has verified it). */
int tls_cert_identity(const X509 *cert, struct tls_identity *id)
    __attribute__((warn_unused_result));
/* The serial and SHA-256 fingerprint of a certificate (of the verified peer's
 * for tls_peer_cert_id). -1 when they cannot be computed. */
int tls_cert_id(const X509 *cert, struct tls_cert_id *out) __attribute__((warn_unused_result));
int tls_peer_cert_id(SSL *ssl, struct tls_cert_id *out) __attribute__((warn_unused_result));

/* The last OpenSSL error queue entry as text (clears the queue). */
const char *tls_last_error(char *buf, size_t len);

#endif
