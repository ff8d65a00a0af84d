/* FUZZ_SOURCES: lib/transport/certkey.c */
/*
 * fuzz_certkey.c — libFuzzer target for the certificate key walker
 * (lib/transport/certkey.c), differential against GnuTLS.
 *
 * The walker names the peer's node id; GnuTLS checks the handshake
 * signature with the key it parses itself.  So whenever the walker
 * accepts an input, GnuTLS must parse the same input as a certificate
 * with an Ed25519 key, and that key must be the walker's: otherwise a
 * peer could prove one key and be taken for another.  (The converse need
 * not hold: the walker may refuse certificates GnuTLS would take.)
 * Seeds: tests/fuzz/corpus/fuzz_certkey/ (murmer-shaped certificates).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "transport/certkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pub[MM_CERTKEY_LEN];
    if (mm__cert_ed25519_key(data, size, pub) != 0) return 0;
    gnutls_pubkey_t k;
    gnutls_datum_t d = {(unsigned char *)data, (unsigned)size}, x = {NULL, 0};
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    if (gnutls_pubkey_init(&k) < 0) abort();
    int rv = gnutls_pubkey_import_x509_raw(k, &d, GNUTLS_X509_FMT_DER, 0);
    /* Refused by GnuTLS (it checks fields the walker skips): the handshake
     * fails before murmer sees the certificate, so nothing to compare. */
    if (rv >= 0) {
        if (gnutls_pubkey_export_ecc_raw2(k, &curve, &x, NULL, 0) < 0 ||
            curve != GNUTLS_ECC_CURVE_ED25519 || x.size != MM_CERTKEY_LEN ||
            memcmp(x.data, pub, MM_CERTKEY_LEN) != 0)
            abort(); /* the same certificate, another key */
    }
    gnutls_free(x.data);
    gnutls_pubkey_deinit(k);
    return 0;
}
