/* Fuzz target: certificates and CRLs, parsed the ways the switch and its
 * tools load TLS material, then read the way tls.c reads a peer.
 *
 * The same bytes are tried as
 *   - a PEM bundle of certificates and CRLs (PEM_X509_INFO_read_bio, what
 *     SSL_CTX_load_verify_locations does with tls_ca / admin_ca),
 *   - a PEM certificate chain (what SSL_CTX_use_certificate_chain_file does
 *     with tls_cert),
 *   - a DER certificate and a DER CRL (what arrives in a handshake is DER).
 * Each certificate that parses goes through tls_cert_identity (OU, CN and
 * title, as tls_peer_identity takes them after the handshake) and
 * tls_cert_id (serial and fingerprint, for the audit trail), its validity and
 * its public key; each CRL has its issuer, dates and revoked list walked,
 * and a lookup by serial. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_cert(const X509 *x)
{
    struct tls_identity id;
    if (tls_cert_identity(x, &id) == 0) {
        /* what the switch then compares and logs: bounded C strings */
        if (strlen(id.name) >= sizeof(id.name) || strlen(id.role) >= sizeof(id.role) ||
            strlen(id.title) >= sizeof(id.title))
            abort();
    } else if (id.name[0] != '\0' || id.role[0] != '\0' || id.title[0] != '\0') {
        abort(); /* a refusal leaves no half identity */
    }
    /* the serial and fingerprint an operator's audit row records */
    struct tls_cert_id cid;
    if (tls_cert_id(x, &cid) == 0) {
        if (strlen(cid.fingerprint) != TLS_FINGERPRINT_LEN || cid.serial[0] == '\0' ||
            strspn(cid.serial, "-0123456789ABCDEF") != strlen(cid.serial))
            abort();
    } else if (cid.serial[0] != '\0' || cid.fingerprint[0] != '\0') {
        abort();
    }
    char line[256];
    X509_NAME_oneline(X509_get_issuer_name(x), line, sizeof(line));
    X509_cmp_current_time(X509_get0_notBefore(x));
    X509_cmp_current_time(X509_get0_notAfter(x));
    X509_get0_pubkey(x);
}

static void read_crl(X509_CRL *crl)
{
    char line[256];
    X509_NAME_oneline(X509_CRL_get_issuer(crl), line, sizeof(line));
    X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl));
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    if (next != NULL)
        X509_cmp_current_time(next);
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
    const ASN1_INTEGER *first = NULL;
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
        X509_REVOKED *rev = sk_X509_REVOKED_value(revoked, i);
        const ASN1_INTEGER *serial = X509_REVOKED_get0_serialNumber(rev);
        if (first == NULL)
            first = serial;
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        if (bn != NULL) {
            char *hex = BN_bn2hex(bn);
            OPENSSL_free(hex);
            BN_free(bn);
        }
        X509_cmp_current_time(X509_REVOKED_get0_revocationDate(rev));
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
        ASN1_ENUMERATED_free(reason);
    }
    if (first != NULL) {
        X509_REVOKED *found = NULL;
        X509_CRL_get0_by_serial(crl, &found, first);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INT32_MAX)
        return 0;
    BIO *bio = BIO_new_mem_buf(data, (int)size);
    if (bio != NULL) {
        STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
        for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
            X509_INFO *info = sk_X509_INFO_value(infos, i);
            if (info->x509 != NULL)
                read_cert(info->x509);
            if (info->crl != NULL)
                read_crl(info->crl);
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        BIO_free(bio);
    }
    bio = BIO_new_mem_buf(data, (int)size);
    if (bio != NULL) {
        X509 *x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
        for (int n = 0; x != NULL && n < 8; n++) {
            read_cert(x);
            X509_free(x);
            x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        }
        X509_free(x);
        BIO_free(bio);
    }
    const unsigned char *p = data;
    X509 *der = d2i_X509(NULL, &p, (long)size);
    if (der != NULL) {
        read_cert(der);
        X509_free(der);
    }
    p = data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)size);
    if (crl != NULL) {
        read_crl(crl);
        X509_CRL_free(crl);
    }
    ERR_clear_error();
    return 0;
}
