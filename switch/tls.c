#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

const char *tls_last_error(char *buf, size_t len)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last == 0)
        snprintf(buf, len, "no OpenSSL error recorded");
    else
        ERR_error_string_n(last, buf, len);
    return buf;
}

static SSL_CTX *ctx_common(const SSL_METHOD *method, const char *cert, const char *key,
                           const char *ca, char *err, size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", tls_last_error(e, sizeof(e)));
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        snprintf(err, errlen, "cannot require TLS 1.3: %s", tls_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "certificate %s: %s", cert, tls_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "private key %s: %s", key, tls_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "private key %s does not match certificate %s", key, cert);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(err, errlen, "CA %s: %s", ca, tls_last_error(e, sizeof(e)));
        goto fail;
    }
    /* Not SSL_MODE_RELEASE_BUFFERS: freeing and reallocating the record
     * buffers around every read costs more CPU than the memory it saves.
     * Not read-ahead either: libevent 2.1's TLS bufferevent does not look at
     * what OpenSSL buffered beyond the socket, so frames would wait there
     * for the next packet. */
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca, char *err,
                            size_t errlen)
{
    SSL_CTX *ctx = ctx_common(TLS_server_method(), cert, key, ca, err, errlen);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    /* no session tickets: every connection proves its certificate afresh */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

SSL_CTX *tls_client_ctx_new(const char *cert, const char *key, const char *ca, char *err,
                            size_t errlen)
{
    SSL_CTX *ctx = ctx_common(TLS_client_method(), cert, key, ca, err, errlen);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

int tls_client_prepare(SSL *ssl, const char *host)
{
    int is_ip = strspn(host, "0123456789.") == strlen(host) || strchr(host, ':') != NULL;
    if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1) {
        log_error("event=tls_prepare_failed host=%s why=\"cannot set SNI\"", host);
        return -1;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                   : X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (ok != 1) {
        log_error("event=tls_prepare_failed host=%s why=\"cannot set host check\"", host);
        return -1;
    }
    return 0;
}

static int subject_field(X509_NAME *subject, int nid, char *out, size_t len)
{
    int idx = X509_NAME_get_index_by_NID(subject, nid, -1);
    if (idx < 0)
        return -1;
    X509_NAME_ENTRY *entry = X509_NAME_get_entry(subject, idx);
    ASN1_STRING *data = X509_NAME_ENTRY_get_data(entry);
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0)
        return -1;
    int rc = -1;
    if ((size_t)n < len && memchr(utf8, '\0', (size_t)n) == NULL) {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
        rc = 0;
    }
    OPENSSL_free(utf8);
    return rc;
}

int tls_peer_identity(SSL *ssl, struct tls_identity *id)
{
    memset(id, 0, sizeof(*id));
    if (SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL)
        return -1;
    X509_NAME *subject = X509_get_subject_name(peer);
    if (subject_field(subject, NID_commonName, id->name, sizeof(id->name)) != 0)
        return -1;
    if (subject_field(subject, NID_organizationalUnitName, id->role, sizeof(id->role)) != 0)
        id->role[0] = '\0';
    return 0;
}
