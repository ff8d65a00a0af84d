/* crypto.c — SHA-256, HMAC, HKDF, AES-256-GCM and base64 on libcrypto. */
#include "crypto.h"
#include "common.h"

#include <uv.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

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
