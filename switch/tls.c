#include "tls.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
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

/* The role a server context demands of its clients (SSL_CTX ex_data). */
static int role_index = -1;

static void role_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_free(ptr);
}

static int subject_field(X509_NAME *subject, int nid, char *out, size_t len);

/* Refuses, in the handshake, a client certificate of another role. */
static int verify_role(int ok, X509_STORE_CTX *store)
{
    if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const char *want = ssl != NULL ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), role_index) : NULL;
    if (want == NULL)
        return ok;
    char role[TLS_NAME_MAX];
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (cert == NULL ||
        subject_field(X509_get_subject_name(cert), NID_organizationalUnitName, role,
                      sizeof(role)) != 0 ||
        strcmp(role, want) != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return ok;
}

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca, const char *crl,
                            const char *role, char *err, size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = ctx_common(TLS_server_method(), cert, key, ca, err, errlen);
    if (ctx == NULL)
        return NULL;
    if (crl != NULL && crl[0] != '\0') {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (lookup == NULL || X509_load_crl_file(lookup, crl, X509_FILETYPE_PEM) < 1) {
            snprintf(err, errlen, "CRL %s: %s", crl, tls_last_error(e, sizeof(e)));
            goto fail;
        }
        /* the client certificate's issuer must have a current CRL */
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    if (role != NULL) {
        if (role_index < 0)
            role_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, role_free);
        char *copy = OPENSSL_strdup(role);
        if (role_index < 0 || copy == NULL || SSL_CTX_set_ex_data(ctx, role_index, copy) != 1) {
            OPENSSL_free(copy);
            snprintf(err, errlen, "cannot require the role %s", role);
            goto fail;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       role != NULL ? verify_role : NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    /* no session tickets: every connection proves its certificate afresh */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

bool tls_cert_revoked(SSL_CTX *ctx, X509 *cert)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (store == NULL || cert == NULL)
        return false;
    bool revoked = false;
    X509_STORE_lock(store);
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs) && !revoked; i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
        X509_REVOKED *entry = NULL;
        if (crl != NULL &&
            X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) == 0 &&
            X509_CRL_get0_by_cert(crl, &entry, cert) == 1)
            revoked = true;
    }
    X509_STORE_unlock(store);
    return revoked;
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

int tls_cert_identity(const X509 *cert, struct tls_identity *id)
{
    memset(id, 0, sizeof(*id));
    X509_NAME *subject = X509_get_subject_name(cert);
    if (subject_field(subject, NID_commonName, id->name, sizeof(id->name)) != 0)
        return -1;
    if (subject_field(subject, NID_organizationalUnitName, id->role, sizeof(id->role)) != 0)
        id->role[0] = '\0';
    if (subject_field(subject, NID_title, id->title, sizeof(id->title)) != 0)
        id->title[0] = '\0';
    return 0;
}

int tls_cert_id(const X509 *cert, struct tls_cert_id *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    memset(out, 0, sizeof(*out));
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen * 2 != TLS_FINGERPRINT_LEN)
        return -1;
    for (unsigned int i = 0; i < mdlen; i++) {
        out->fingerprint[2 * i] = hex[md[i] >> 4];
        out->fingerprint[2 * i + 1] = hex[md[i] & 0xf];
    }
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *text = bn != NULL ? BN_bn2hex(bn) : NULL;
    int rc = -1;
    if (text != NULL && strlen(text) < sizeof(out->serial)) {
        memcpy(out->serial, text, strlen(text) + 1);
        rc = 0;
    }
    OPENSSL_free(text);
    BN_free(bn);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int tls_peer_cert_id(SSL *ssl, struct tls_cert_id *out)
{
    memset(out, 0, sizeof(*out));
    if (SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    return peer != NULL ? tls_cert_id(peer, out) : -1;
}

int tls_peer_identity(SSL *ssl, struct tls_identity *id)
{
    memset(id, 0, sizeof(*id));
    if (SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL)
        return -1;
    return tls_cert_identity(peer, id);
}
