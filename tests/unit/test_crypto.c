/* test_crypto.c — crypto.h against published vectors (RFC 8032, RFC 4231,
 * the GCM specification's AES-256 cases) and its refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common.h"
#include "crypto.h"

static void
unhex(uint8_t *out, const char *hex)
{
    assert_int_equal(mm__unhex(out, strlen(hex) / 2, hex), 0);
}

static void
test_crypto_sha256_hmac(void **state)
{
    (void)state;
    uint8_t h[32], want[32];
    mm__sha256(h, "abc", 3);
    unhex(want,
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_memory_equal(h, want, 32);
    /* RFC 4231 test case 2. */
    mm__hmac_sha256(h, (const uint8_t *)"Jefe", 4,
                    "what do ya want for nothing?", 28);
    unhex(want,
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_memory_equal(h, want, 32);
}

static void
test_crypto_hkdf_bounds(void **state)
{
    (void)state;
    static uint8_t out[255 * 32 + 1];
    uint8_t ikm[32] = {7};
    assert_int_equal(mm__hkdf_sha256(out, 255 * 32, ikm, 32, "i", 1), 0);
    assert_int_equal(mm__hkdf_sha256(out, 255 * 32 + 1, ikm, 32, "i", 1),
                     MM_EINVAL);
    assert_int_equal(mm__hkdf_sha256(out, 0, ikm, 32, "i", 1), MM_EINVAL);
}

static void
test_crypto_gcm_vectors(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, nonce[12] = {0}, pt[16] = {0}, buf[32], want[32];
    /* AES-256-GCM, all-zero key and nonce: empty and one zero block. */
    assert_int_equal(mm__aead_seal(buf, key, nonce, NULL, 0, NULL, 0), 0);
    unhex(want, "530f8afbc74536b9a963b4f1c4cb738b");
    assert_memory_equal(buf, want, 16);
    assert_int_equal(mm__aead_seal(buf, key, nonce, NULL, 0, pt, 16), 0);
    unhex(want, "cea7403d4d606b6e074ec5d3baf39d18"
                "d0d1c8a799996bf0265b98b5d48ab919");
    assert_memory_equal(buf, want, 32);
    /* In place. */
    assert_int_equal(mm__aead_open(buf, key, nonce, NULL, 0, buf, 32), 0);
    assert_memory_equal(buf, pt, 16);
    /* A failed open leaves no plaintext behind. */
    uint8_t secret[16], zero[16] = {0};
    memset(secret, 0x5a, sizeof(secret));
    assert_int_equal(mm__aead_seal(buf, key, nonce, NULL, 0, secret, 16), 0);
    buf[31] ^= 1;
    assert_int_equal(mm__aead_open(buf, key, nonce, NULL, 0, buf, 32),
                     MM_EUNAUTHORIZED);
    assert_memory_equal(buf, zero, 16);
    assert_int_equal(mm__aead_open(buf, key, nonce, NULL, 0, want, 15),
                     MM_EUNAUTHORIZED);
}

/* RFC 8032, 7.1, tests 1 and 2. */
static const struct {
    const char *seed, *pub, *msg, *sig;
} ed_vec[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

static void
test_crypto_ed25519_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < MM_ARRAY_SIZE(ed_vec); i++) {
        uint8_t seed[32], pub[32], want_pub[32], msg[1], sig[64], want[64];
        size_t ml = strlen(ed_vec[i].msg) / 2;
        unhex(seed, ed_vec[i].seed);
        unhex(want_pub, ed_vec[i].pub);
        if (ml) unhex(msg, ed_vec[i].msg);
        unhex(want, ed_vec[i].sig);
        struct mm_sign_key *k = NULL;
        assert_int_equal(mm__sign_key_from_seed(&k, seed), 0);
        assert_int_equal(mm__sign_key_public(k, pub), 0);
        assert_memory_equal(pub, want_pub, 32);
        assert_int_equal(mm__ed25519_sign(k, msg, ml, sig), 0);
        assert_memory_equal(sig, want, 64);
        assert_int_equal(mm__ed25519_verify(pub, msg, ml, sig), 0);
        sig[5] ^= 0x10;
        assert_int_equal(mm__ed25519_verify(pub, msg, ml, sig),
                         MM_EUNAUTHORIZED);
        mm__sign_key_free(k);
    }
}

/* S + L is the same scalar mod L: a second valid-looking encoding of one
 * signature, refused (RFC 8032 5.1.7 requires S < L; OpenSSL refused it
 * too, and signed state relies on one encoding per signature). */
static void
test_crypto_ed25519_malleable_refused(void **state)
{
    (void)state;
    static const uint8_t l[32] = {
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
        0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    uint8_t pub[32], sig[64];
    unhex(pub, ed_vec[1].pub);
    unhex(sig, ed_vec[1].sig);
    const uint8_t msg[1] = {0x72};
    assert_int_equal(mm__ed25519_verify(pub, msg, 1, sig), 0);
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned v = sig[32 + i] + l[i] + carry;
        sig[32 + i] = (uint8_t)v;
        carry = v >> 8;
    }
    assert_int_equal(carry, 0);
    assert_int_equal(mm__ed25519_verify(pub, msg, 1, sig), MM_EUNAUTHORIZED);
}

/* A small-order key (here the identity point) with R the identity and
 * S = 0 satisfies the verification equation for every message: a member
 * whose id hashes such a key would have records anyone can forge.
 * Refused (nettle's check accepted it). */
static void
test_crypto_ed25519_small_order_refused(void **state)
{
    (void)state;
    uint8_t pub[32] = {1}, sig[64] = {1};
    const uint8_t msg[3] = {'a', 'b', 'c'};
    assert_int_equal(mm__ed25519_verify(pub, msg, sizeof(msg), sig),
                     MM_EUNAUTHORIZED);
    assert_int_equal(mm__ed25519_verify(pub, msg, 1, sig), MM_EUNAUTHORIZED);
}

/* The identity's key file: unencrypted PKCS#8, RFC 8410's Ed25519 form. */
static void
test_crypto_key_from_pem(void **state)
{
    (void)state;
    uint8_t der[48], seed[32], pub[32], want[32];
    unhex(der, "302e020100300506032b657004220420");
    unhex(der + 16, ed_vec[0].seed);
    char pem[200], b64[80];
    mm__base64_encode(b64, der, sizeof(der));
    snprintf(pem, sizeof(pem),
             "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n",
             b64);
    assert_int_equal(mm__ed25519_seed_from_pem(seed, pem), 0);
    assert_memory_equal(seed, der + 16, 32);
    struct mm_sign_key *k = NULL;
    assert_int_equal(mm__sign_key_from_pem(&k, pem), 0);
    assert_int_equal(mm__sign_key_public(k, pub), 0);
    unhex(want, ed_vec[0].pub);
    assert_memory_equal(pub, want, 32);
    mm__sign_key_free(k);
    /* Not a key; an X25519 key (the OID's last byte 0x6e): refused. */
    assert_int_equal(mm__sign_key_from_pem(&k, "-----BEGIN PRIVATE KEY-----\n"
                                               "AAAA\n"
                                               "-----END PRIVATE KEY-----\n"),
                     MM_EKEY);
    assert_null(k);
    der[11] = 0x6e;
    mm__base64_encode(b64, der, sizeof(der));
    snprintf(pem, sizeof(pem),
             "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n",
             b64);
    assert_int_equal(mm__ed25519_seed_from_pem(seed, pem), MM_EKEY);
    assert_int_equal(mm__sign_key_from_pem(&k, NULL), MM_EKEY);
}

static void
test_crypto_ct_memcmp(void **state)
{
    (void)state;
    assert_int_equal(mm__ct_memcmp("abcd", "abcd", 4), 0);
    assert_int_not_equal(mm__ct_memcmp("abcd", "abce", 4), 0);
    assert_int_equal(mm__ct_memcmp("a", "b", 0), 0);
    uint8_t s[8] = {1, 2, 3, 4, 5, 6, 7, 8}, z[8] = {0};
    mm__wipe(s, sizeof(s));
    assert_memory_equal(s, z, sizeof(z));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_sha256_hmac),
        cmocka_unit_test(test_crypto_hkdf_bounds),
        cmocka_unit_test(test_crypto_gcm_vectors),
        cmocka_unit_test(test_crypto_ed25519_vectors),
        cmocka_unit_test(test_crypto_ed25519_malleable_refused),
        cmocka_unit_test(test_crypto_ed25519_small_order_refused),
        cmocka_unit_test(test_crypto_key_from_pem),
        cmocka_unit_test(test_crypto_ct_memcmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
