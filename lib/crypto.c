/* crypto.c — SHA-256, HMAC, HKDF, AES-256-GCM and base64 on libcrypto. */
#include "crypto.h"
#include "common.h"

#include <uv.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>

void
mm__sha256(uint8_t out[MM_SHA256_LEN], const void *data, size_t len)
{
    unsigned int outlen = MM_SHA256_LEN;
    EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL);
}

void
mm__hmac_sha256(uint8_t out[MM_SHA256_LEN], const uint8_t *key, size_t keylen,
                const void *data, size_t len)
{
    unsigned int outlen = MM_SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen);
}

int
mm__hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen,
                const void *info, size_t infolen)
{
    int rc = MM_EINVAL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (!pctx) return rc;
    if (EVP_PKEY_derive_init(pctx) > 0 &&
        EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_salt(pctx, (const unsigned char *)"", 0) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_key(pctx, ikm, (int)ikmlen) > 0 &&
        EVP_PKEY_CTX_add1_hkdf_info(pctx, info, (int)infolen) > 0 &&
        EVP_PKEY_derive(pctx, out, &outlen) > 0)
        rc = 0;
    EVP_PKEY_CTX_free(pctx);
    return rc;
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

static int
aead(int enc, uint8_t *out, const uint8_t key[32],
     const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad, size_t aadlen,
     const uint8_t *in, size_t len)
{
    int rc = enc ? MM_EINVAL : MM_EUNAUTHORIZED, n = 0;
    size_t body = enc ? len : len - MM_GCM_TAG_LEN;
    if (!enc && len < MM_GCM_TAG_LEN) return MM_EUNAUTHORIZED;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return UV_ENOMEM;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) <= 0)
        goto out;
    if (aadlen && EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) <= 0)
        goto out;
    if (body && EVP_CipherUpdate(c, out, &n, in, (int)body) <= 0) goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, MM_GCM_TAG_LEN,
                                    (void *)(in + body)) <= 0)
        goto out;
    if (EVP_CipherFinal_ex(c, out + body, &n) <= 0) goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, MM_GCM_TAG_LEN,
                                   out + body) <= 0)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int
mm__aead_seal(uint8_t *out, const uint8_t key[32],
              const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad,
              size_t aadlen, const uint8_t *in, size_t len)
{
    return aead(1, out, key, nonce, aad, aadlen, in, len);
}

int
mm__aead_open(uint8_t *out, const uint8_t key[32],
              const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad,
              size_t aadlen, const uint8_t *in, size_t len)
{
    return aead(0, out, key, nonce, aad, aadlen, in, len);
}

/* An EVP_PKEY behind an opaque name, so that crypto.h pulls in no
 * OpenSSL header. */
struct mm_sign_key {
    EVP_PKEY *pkey;
};

static int
sign_key_wrap(struct mm_sign_key **out, EVP_PKEY *pkey)
{
    *out = NULL;
    if (!pkey) return MM_EKEY;
    if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        return MM_EKEY;
    }
    struct mm_sign_key *k = mm__malloc(sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pkey);
        return UV_ENOMEM;
    }
    k->pkey = pkey;
    *out = k;
    return 0;
}

int
mm__sign_key_from_pem(struct mm_sign_key **out, const char *pem)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    if (bio) pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return sign_key_wrap(out, pkey);
}

int
mm__sign_key_from_seed(struct mm_sign_key **out,
                       const uint8_t seed[MM_ED25519_KEY_LEN])
{
    return sign_key_wrap(out, EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519,
                                                           NULL, seed,
                                                           MM_ED25519_KEY_LEN));
}

int
mm__sign_key_public(const struct mm_sign_key *k,
                    uint8_t pub[MM_ED25519_KEY_LEN])
{
    size_t n = MM_ED25519_KEY_LEN;
    return EVP_PKEY_get_raw_public_key(k->pkey, pub, &n) == 1 &&
                   n == MM_ED25519_KEY_LEN
               ? 0
               : MM_EKEY;
}

void
mm__sign_key_free(struct mm_sign_key *k)
{
    if (!k) return;
    EVP_PKEY_free(k->pkey);
    mm__free(k);
}

int
mm__ed25519_sign(const struct mm_sign_key *k, const void *msg, size_t len,
                 uint8_t sig[MM_ED25519_SIG_LEN])
{
    int rc = MM_EKEY;
    size_t n = MM_ED25519_SIG_LEN;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey) == 1 &&
        EVP_DigestSign(c, sig, &n, msg, len) == 1 && n == MM_ED25519_SIG_LEN)
        rc = 0;
    EVP_MD_CTX_free(c);
    return rc;
}

int
mm__ed25519_verify(const uint8_t pub[MM_ED25519_KEY_LEN], const void *msg,
                   size_t len, const uint8_t sig[MM_ED25519_SIG_LEN])
{
    int rc = MM_EUNAUTHORIZED;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
                                                 MM_ED25519_KEY_LEN);
    EVP_MD_CTX *c = pkey ? EVP_MD_CTX_new() : NULL;
    if (c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pkey) == 1 &&
        EVP_DigestVerify(c, sig, MM_ED25519_SIG_LEN, msg, len) == 1)
        rc = 0;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pkey);
    return rc;
}

int
mm__ct_memcmp(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len);
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
