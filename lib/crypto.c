/* crypto.c — SHA-256, HMAC, HKDF, AES-256-GCM and Ed25519 on nettle (the
 * library under GnuTLS, so a process loads one crypto stack); base64 by
 * hand. */
#include "crypto.h"
#include "common.h"

#include <uv.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/eddsa.h>
#include <nettle/gcm.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <sodium.h>

void
mm__sha256(uint8_t out[MM_SHA256_LEN], const void *data, size_t len)
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, MM_SHA256_LEN, out);
}

void
mm__hmac_sha256(uint8_t out[MM_SHA256_LEN], const uint8_t *key, size_t keylen,
                const void *data, size_t len)
{
    struct hmac_sha256_ctx c;
    hmac_sha256_set_key(&c, keylen, key);
    hmac_sha256_update(&c, len, data);
    hmac_sha256_digest(&c, MM_SHA256_LEN, out);
    mm__wipe(&c, sizeof(c));
}

int
mm__hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen,
                const void *info, size_t infolen)
{
    /* RFC 5869 caps the output at 255 blocks. */
    if (outlen == 0 || outlen > 255 * (size_t)MM_SHA256_LEN) return MM_EINVAL;
    struct hmac_sha256_ctx c;
    uint8_t prk[MM_SHA256_LEN];
    /* An empty salt: HMAC pads the key with zeros, so this is the RFC's
     * default salt of 32 zero bytes. */
    hmac_sha256_set_key(&c, 0, (const uint8_t *)"");
    hkdf_extract(&c, (nettle_hash_update_func *)hmac_sha256_update,
                 (nettle_hash_digest_func *)hmac_sha256_digest, MM_SHA256_LEN,
                 ikmlen, ikm, prk);
    hmac_sha256_set_key(&c, sizeof(prk), prk);
    hkdf_expand(&c, (nettle_hash_update_func *)hmac_sha256_update,
                (nettle_hash_digest_func *)hmac_sha256_digest, MM_SHA256_LEN,
                infolen, info, outlen, out);
    mm__wipe(&c, sizeof(c));
    mm__wipe(prk, sizeof(prk));
    return 0;
}

int
mm__hkdf_label(uint8_t *out, size_t outlen, const uint8_t key[32],
               const char *label, const void *ctx, size_t ctxlen)
{
    uint8_t info[256];
    size_t ll = strlen(label);
    if (ll + ctxlen > sizeof(info) || outlen == 0) return MM_EINVAL;
    memcpy(info, label, ll);
    if (ctxlen) memcpy(info + ll, ctx, ctxlen);
    return mm__hkdf_sha256(out, outlen, key, 32, info, ll + ctxlen);
}

int
mm__aead_seal(uint8_t *out, const uint8_t key[32],
              const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad,
              size_t aadlen, const uint8_t *in, size_t len)
{
    struct gcm_aes256_ctx c;
    gcm_aes256_set_key(&c, key);
    gcm_aes256_set_iv(&c, MM_GCM_NONCE_LEN, nonce);
    if (aadlen) gcm_aes256_update(&c, aadlen, aad);
    if (len) gcm_aes256_encrypt(&c, len, out, in);
    gcm_aes256_digest(&c, MM_GCM_TAG_LEN, out + len);
    mm__wipe(&c, sizeof(c));
    return 0;
}

int
mm__aead_open(uint8_t *out, const uint8_t key[32],
              const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad,
              size_t aadlen, const uint8_t *in, size_t len)
{
    if (len < MM_GCM_TAG_LEN) return MM_EUNAUTHORIZED;
    size_t body = len - MM_GCM_TAG_LEN;
    uint8_t tag[MM_GCM_TAG_LEN];
    struct gcm_aes256_ctx c;
    gcm_aes256_set_key(&c, key);
    gcm_aes256_set_iv(&c, MM_GCM_NONCE_LEN, nonce);
    if (aadlen) gcm_aes256_update(&c, aadlen, aad);
    /* The tag is copied first: |out| may be |in|. */
    memcpy(tag, in + body, MM_GCM_TAG_LEN);
    if (body) gcm_aes256_decrypt(&c, body, out, in);
    uint8_t want[MM_GCM_TAG_LEN];
    gcm_aes256_digest(&c, MM_GCM_TAG_LEN, want);
    mm__wipe(&c, sizeof(c));
    if (!memeql_sec(want, tag, MM_GCM_TAG_LEN)) {
        mm__wipe(out, body); /* no unauthenticated plaintext leaves */
        return MM_EUNAUTHORIZED;
    }
    return 0;
}

/* The 32-byte seed (RFC 8032's private key) and its public key, which
 * nettle's sign takes as well. */
struct mm_sign_key {
    uint8_t seed[MM_ED25519_KEY_LEN];
    uint8_t pub[MM_ED25519_KEY_LEN];
};

int
mm__sign_key_from_seed(struct mm_sign_key **out,
                       const uint8_t seed[MM_ED25519_KEY_LEN])
{
    *out = NULL;
    struct mm_sign_key *k = mm__malloc(sizeof(*k));
    if (!k) return UV_ENOMEM;
    memcpy(k->seed, seed, MM_ED25519_KEY_LEN);
    ed25519_sha512_public_key(k->pub, k->seed);
    *out = k;
    return 0;
}

int
mm__ed25519_seed_from_pem(uint8_t seed[MM_ED25519_KEY_LEN], const char *pem)
{
    gnutls_x509_privkey_t key;
    gnutls_datum_t in = {(unsigned char *)pem, pem ? (unsigned)strlen(pem) : 0};
    gnutls_datum_t k = {NULL, 0};
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    int rc = MM_EKEY;
    if (!pem || gnutls_x509_privkey_init(&key) < 0) return MM_EKEY;
    if (gnutls_x509_privkey_import2(key, &in, GNUTLS_X509_FMT_PEM, NULL,
                                    GNUTLS_PKCS_PLAIN) >= 0 &&
        gnutls_x509_privkey_get_pk_algorithm(key) == GNUTLS_PK_EDDSA_ED25519 &&
        gnutls_x509_privkey_export_ecc_raw(key, &curve, NULL, NULL, &k) >= 0 &&
        curve == GNUTLS_ECC_CURVE_ED25519 && k.size == MM_ED25519_KEY_LEN) {
        memcpy(seed, k.data, MM_ED25519_KEY_LEN);
        rc = 0;
    }
    if (k.data) {
        mm__wipe(k.data, k.size);
        gnutls_free(k.data);
    }
    gnutls_x509_privkey_deinit(key);
    return rc;
}

int
mm__sign_key_from_pem(struct mm_sign_key **out, const char *pem)
{
    uint8_t seed[MM_ED25519_KEY_LEN];
    *out = NULL;
    int rc = mm__ed25519_seed_from_pem(seed, pem);
    if (rc == 0) rc = mm__sign_key_from_seed(out, seed);
    mm__wipe(seed, sizeof(seed));
    return rc;
}

int
mm__sign_key_public(const struct mm_sign_key *k,
                    uint8_t pub[MM_ED25519_KEY_LEN])
{
    memcpy(pub, k->pub, MM_ED25519_KEY_LEN);
    return 0;
}

void
mm__sign_key_free(struct mm_sign_key *k)
{
    if (!k) return;
    mm__wipe(k, sizeof(*k));
    mm__free(k);
}

int
mm__ed25519_sign(const struct mm_sign_key *k, const void *msg, size_t len,
                 uint8_t sig[MM_ED25519_SIG_LEN])
{
    ed25519_sha512_sign(k->pub, k->seed, len, msg, sig);
    return 0;
}

/* sodium_init() picks the fastest code for the CPU.  The check itself
 * needs nothing of it: a failure (no random source) leaves the portable
 * code, which gives the same answers. */
static void
sodium_once(void)
{
    int rc = sodium_init();
    (void)rc;
}

int
mm__ed25519_verify(const uint8_t pub[MM_ED25519_KEY_LEN], const void *msg,
                   size_t len, const uint8_t sig[MM_ED25519_SIG_LEN])
{
    /*
     * libsodium, not nettle: every node checks every member's signed
     * record, N^2 checks in a cluster's join burst, and libsodium's
     * variable-time check (nothing secret in it) takes half nettle's
     * constant-time one.  It also refuses S >= L, a non-canonical or
     * small-order key and a small-order R (test_crypto).
     */
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, sodium_once);
    return crypto_sign_verify_detached(sig, msg, len, pub) == 0
               ? 0
               : MM_EUNAUTHORIZED;
}

int
mm__ct_memcmp(const void *a, const void *b, size_t len)
{
    return memeql_sec(a, b, len) ? 0 : 1;
}

void
mm__wipe(void *p, size_t len)
{
    if (len) gnutls_memset(p, 0, len);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
mm__base64_encode(char *out, const uint8_t *in, size_t len)
{
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int
b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int
mm__base64_decode(uint8_t *out, size_t outcap, const char *in, size_t inlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0, pad = 0;
    for (size_t i = 0; i < inlen; i++) {
        char c = in[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
        int v = b64val(c);
        if (v < 0 || pad) return MM_EDECODE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap) return MM_EDECODE;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2) return MM_EDECODE;
    return (int)o;
}
