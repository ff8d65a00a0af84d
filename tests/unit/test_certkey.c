/* test_certkey.c — the Ed25519 key read straight from a certificate's DER,
 * checked against OpenSSL (which made the certificates) and GnuTLS (which
 * verifies the handshake signature with the key it parses itself). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "transport/certkey.h"

struct cert {
    uint8_t der[2048];
    size_t len;
    uint8_t pub[32]; /* the key the certificate was made for */
};

static EVP_PKEY *
keygen(int type)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(type, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    if (type == EVP_PKEY_EC)
        assert_int_equal(
            EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_X9_62_prime256v1), 1);
    assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

/*
 * A self-signed certificate for a new key of |type|.  |serial| (|nserial|
 * bytes, big-endian) replaces the serial number when given; |with_ext|
 * adds extensions like murmer's own (after the key in the DER).
 */
static void
make_cert(struct cert *out, int type, const uint8_t *serial, size_t nserial,
          int with_ext)
{
    EVP_PKEY *k = keygen(type);
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    BIGNUM *bn = serial ? BN_bin2bn(serial, (int)nserial, NULL) : BN_new();
    assert_non_null(bn);
    if (!serial) assert_int_equal(BN_set_word(bn, 12345), 1);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"murmer test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    if (with_ext) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                                                "critical,digitalSignature");
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, k, type == EVP_PKEY_EC ? EVP_sha256() : NULL) > 0);
    unsigned char *p = out->der;
    int n = i2d_X509(x, NULL);
    assert_true(n > 0 && (size_t)n <= sizeof(out->der));
    assert_int_equal(i2d_X509(x, &p), n);
    out->len = (size_t)n;
    memset(out->pub, 0, sizeof(out->pub));
    if (type == EVP_PKEY_ED25519) {
        size_t pl = sizeof(out->pub);
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, out->pub, &pl), 1);
        assert_int_equal(pl, 32);
    }
    X509_free(x);
    EVP_PKEY_free(k);
}

/* The Ed25519 key GnuTLS reads from |der|, as in a handshake: 0 or -1. */
static int
gnutls_key(const uint8_t *der, size_t len, uint8_t pub[32])
{
    gnutls_pubkey_t k;
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len}, x = {NULL, 0};
    gnutls_ecc_curve_t curve;
    int rc = -1;
    if (gnutls_pubkey_init(&k) < 0) return -1;
    if (gnutls_pubkey_import_x509_raw(k, &d, GNUTLS_X509_FMT_DER, 0) >= 0 &&
        gnutls_pubkey_export_ecc_raw2(k, &curve, &x, NULL, 0) >= 0 &&
        curve == GNUTLS_ECC_CURVE_ED25519 && x.size == 32) {
        memcpy(pub, x.data, 32);
        rc = 0;
    }
    gnutls_free(x.data);
    gnutls_pubkey_deinit(k);
    return rc;
}

/* The walker reads the key |c| was made for, and GnuTLS reads it too. */
static void
assert_reads_own_key(const struct cert *c)
{
    uint8_t got[32], g[32];
    assert_int_equal(mm__cert_ed25519_key(c->der, c->len, got), 0);
    assert_memory_equal(got, c->pub, 32);
    assert_int_equal(gnutls_key(c->der, c->len, g), 0);
    assert_memory_equal(got, g, 32);
}

static void
test_certkey_reads_the_key_gnutls_reads(void **state)
{
    (void)state;
    for (int ext = 0; ext < 2; ext++) {
        struct cert c;
        make_cert(&c, EVP_PKEY_ED25519, NULL, 0, ext);
        assert_reads_own_key(&c);
    }
}

/* A serial number that holds a whole Ed25519 key-info encoding (of a key
 * the certificate is not for) must not be taken for the key. */
static void
test_certkey_decoy_in_serial_ignored(void **state)
{
    (void)state;
    uint8_t serial[1 + 12 + 32];
    static const uint8_t spki[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                   0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    serial[0] = 0x01;
    memcpy(serial + 1, spki, sizeof(spki));
    memset(serial + 13, 0xee, 32);
    struct cert c;
    make_cert(&c, EVP_PKEY_ED25519, serial, sizeof(serial), 1);
    /* The decoy comes first in the DER: a search would find it. */
    const uint8_t *decoy = memmem(c.der, c.len, spki, sizeof(spki));
    const uint8_t *real = memmem(c.der, c.len, c.pub, 32);
    assert_non_null(real);
    assert_true(decoy < real - sizeof(spki));
    assert_reads_own_key(&c);
}

static void
test_certkey_other_key_types_refused(void **state)
{
    (void)state;
    struct cert c;
    uint8_t got[32];
    make_cert(&c, EVP_PKEY_EC, NULL, 0, 1);
    assert_int_equal(mm__cert_ed25519_key(c.der, c.len, got), -1);
    make_cert(&c, EVP_PKEY_ED448, NULL, 0, 0);
    assert_int_equal(mm__cert_ed25519_key(c.der, c.len, got), -1);
}

static void
test_certkey_truncated_and_padded_refused(void **state)
{
    (void)state;
    struct cert c;
    uint8_t got[32];
    make_cert(&c, EVP_PKEY_ED25519, NULL, 0, 1);
    for (size_t n = 0; n < c.len; n++)
        assert_int_equal(mm__cert_ed25519_key(c.der, n, got), -1);
    c.der[c.len] = 0;
    assert_int_equal(mm__cert_ed25519_key(c.der, c.len + 1, got), -1);
    assert_int_equal(mm__cert_ed25519_key(NULL, 0, got), -1);
    /* Garbage of every first byte. */
    uint8_t junk[64];
    for (int b = 0; b < 256; b++) {
        memset(junk, b, sizeof(junk));
        assert_int_equal(mm__cert_ed25519_key(junk, sizeof(junk), got), -1);
    }
}

/* Only definite, minimal lengths: the same certificate with its outer
 * length in the indefinite form or one byte too long is refused. */
static void
test_certkey_non_der_lengths_refused(void **state)
{
    (void)state;
    struct cert c;
    uint8_t got[32], buf[2100];
    make_cert(&c, EVP_PKEY_ED25519, NULL, 0, 1);
    assert_int_equal(c.der[0], 0x30);
    assert_true(c.der[1] == 0x81 || c.der[1] == 0x82); /* long form */
    size_t nl = c.der[1] & 0x7f, body = 0;
    for (size_t i = 0; i < nl; i++)
        body = body << 8 | c.der[2 + i];
    assert_int_equal(2 + nl + body, c.len);
    /* The same length with a leading zero byte: not minimal. */
    buf[0] = 0x30;
    buf[1] = (uint8_t)(0x80 | (nl + 1));
    buf[2] = 0;
    memcpy(buf + 3, c.der + 2, c.len - 2);
    assert_int_equal(mm__cert_ed25519_key(buf, c.len + 1, got), -1);
    /* 0x80: indefinite, with an end-of-contents marker. */
    buf[1] = 0x80;
    memcpy(buf + 2, c.der + 2 + nl, body);
    buf[2 + body] = 0;
    buf[3 + body] = 0;
    assert_int_equal(mm__cert_ed25519_key(buf, body + 4, got), -1);
    /* The original still reads. */
    assert_int_equal(mm__cert_ed25519_key(c.der, c.len, got), 0);
}

int
main(void)
{
    gnutls_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certkey_reads_the_key_gnutls_reads),
        cmocka_unit_test(test_certkey_decoy_in_serial_ignored),
        cmocka_unit_test(test_certkey_other_key_types_refused),
        cmocka_unit_test(test_certkey_truncated_and_padded_refused),
        cmocka_unit_test(test_certkey_non_der_lengths_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gnutls_global_deinit();
    return rc;
}
