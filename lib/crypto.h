/*
 * crypto.h — the few primitives murmer needs, on nettle, the library
 * GnuTLS (the QUIC handshake's, lib/transport/) is built on.
 */
#ifndef MM_CRYPTO_H
#define MM_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define MM_SHA256_LEN 32
#define MM_GCM_TAG_LEN 16
#define MM_GCM_NONCE_LEN 12

void mm__sha256(uint8_t out[MM_SHA256_LEN], const void *data, size_t len);
void mm__hmac_sha256(uint8_t out[MM_SHA256_LEN], const uint8_t *key,
                     size_t keylen, const void *data, size_t len);
/* HKDF-SHA256 (RFC 5869) with an empty salt; 0 or MM_EINVAL. */
int mm__hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm,
                    size_t ikmlen, const void *info, size_t infolen);
/* HKDF-SHA256 of a 32-byte |key| with info = |label| ‖ |ctx| (at most 256
 * bytes), the labels being ckey.h's MM_LABEL_*.  0 or MM_EINVAL. */
int mm__hkdf_label(uint8_t *out, size_t outlen, const uint8_t key[32],
                   const char *label, const void *ctx, size_t ctxlen);
/*
 * AES-256-GCM.  seal writes |len| ciphertext bytes then a 16-byte tag to
 * |out| (which holds len + 16).  open checks the tag and writes |len| - 16
 * plaintext bytes; MM_EUNAUTHORIZED when it does not verify.
 */
int mm__aead_seal(uint8_t *out, const uint8_t key[32],
                  const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad,
                  size_t aadlen, const uint8_t *in, size_t len);
int mm__aead_open(uint8_t *out, const uint8_t key[32],
                  const uint8_t nonce[MM_GCM_NONCE_LEN], const uint8_t *aad,
                  size_t aadlen, const uint8_t *in, size_t len);
/*
 * Ed25519 (RFC 8032, pure: no pre-hash, no context).  A signing key is
 * parsed once from the identity's PKCS#8 PEM and kept; verify takes the
 * raw 32-byte public key.  sign: 0 or MM_EKEY; verify: 0 when |sig| is
 * valid (S below the group order: no malleable twin), else
 * MM_EUNAUTHORIZED.
 */
#define MM_ED25519_SIG_LEN 64
#define MM_ED25519_KEY_LEN 32
struct mm_sign_key;
int mm__sign_key_from_pem(struct mm_sign_key **out, const char *pem);
/* The 32-byte private seed of an unencrypted PKCS#8 PEM Ed25519 key: 0 or
 * MM_EKEY (not PEM, encrypted, or not Ed25519). */
int mm__ed25519_seed_from_pem(uint8_t seed[MM_ED25519_KEY_LEN],
                              const char *pem);
/* A key from a raw 32-byte private seed (tests and vectors). */
int mm__sign_key_from_seed(struct mm_sign_key **out,
                           const uint8_t seed[MM_ED25519_KEY_LEN]);
int mm__sign_key_public(const struct mm_sign_key *k,
                        uint8_t pub[MM_ED25519_KEY_LEN]);
void mm__sign_key_free(struct mm_sign_key *k);
int mm__ed25519_sign(const struct mm_sign_key *k, const void *msg, size_t len,
                     uint8_t sig[MM_ED25519_SIG_LEN]);
int mm__ed25519_verify(const uint8_t pub[MM_ED25519_KEY_LEN], const void *msg,
                       size_t len, const uint8_t sig[MM_ED25519_SIG_LEN]);

/* Constant-time comparison: 0 when equal. */
int mm__ct_memcmp(const void *a, const void *b, size_t len);
/* Zeroes |len| bytes of secret in a way the compiler keeps. */
void mm__wipe(void *p, size_t len);
/* Base64 (standard alphabet, padded).  encode returns the length written
 * (|out| >= 4 * ceil(len / 3) + 1); decode returns the byte count or
 * MM_EDECODE. */
size_t mm__base64_encode(char *out, const uint8_t *in, size_t len);
int mm__base64_decode(uint8_t *out, size_t outcap, const char *in,
                      size_t inlen);

#endif /* MM_CRYPTO_H */
