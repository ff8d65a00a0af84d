/* test_err.c — the error table, crypto primitives and small utilities. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common.h"
#include "crypto.h"

static void
test_err_table_roundtrip(void **state)
{
    (void)state;
    int codes[] = {
#define XX(s, c, w, e, n, m) c,
        MM_ERR_MAP(XX)
#undef XX
    };
    for (size_t i = 0; i < MM_ARRAY_SIZE(codes); i++) {
        int c = codes[i];
        assert_int_equal(mm_err_from_wire(mm_err_to_wire(c)), c);
        assert_int_equal(mm_err_from_name(mm_err_name(c)), c);
        assert_non_null(mm_strerror(c));
    }
    assert_int_equal(mm_err_exit_code(MM_ENOTFOUND), MM_EXIT_NOTFOUND);
    assert_int_equal(mm_err_exit_code(MM_ETIMEOUT), MM_EXIT_UNAVAILABLE);
    assert_int_equal(mm_err_exit_code(MM_EUNAUTHORIZED), MM_EXIT_AUTH);
    assert_int_equal(mm_err_exit_code(MM_EDECODE), MM_EXIT_INPUT);
    assert_int_equal(mm_err_exit_code(MM_EHANDLER), MM_EXIT_ACTOR);
    assert_string_equal(mm_err_name(MM_ENOTFOUND), "not_found");
    /* libuv errors pass through the wire unchanged. */
    assert_int_equal(mm_err_from_wire(mm_err_to_wire(UV_ECONNRESET)),
                     UV_ECONNRESET);
    assert_int_equal(mm_err_from_wire(999), MM_EDECODE);
}

/* The sans-I/O cores return -ENOMEM where the rest says UV_ENOMEM: one
 * code, one name, one wire status. */
static void
test_err_negative_errno_is_uv(void **state)
{
    (void)state;
    assert_int_equal(-ENOMEM, UV_ENOMEM);
    assert_string_equal(mm_err_name(-ENOMEM), "ENOMEM");
    assert_string_equal(mm_strerror(-ENOMEM), uv_strerror(UV_ENOMEM));
    assert_int_equal(mm_err_to_wire(-ENOMEM), 0x8000 | ENOMEM);
    assert_int_equal(mm_err_from_wire(mm_err_to_wire(-ENOMEM)), UV_ENOMEM);
    assert_int_equal(mm_err_exit_code(-ENOMEM), 1);
}

static void
test_err_hkdf_rfc5869_case3(void **state)
{
    (void)state;
    /* RFC 5869 test case 3: empty salt and info. */
    uint8_t ikm[22], okm[42];
    memset(ikm, 0x0b, sizeof(ikm));
    assert_int_equal(mm__hkdf_sha256(okm, sizeof(okm), ikm, sizeof(ikm), "", 0),
                     0);
    char hex[85];
    mm__hex(hex, okm, sizeof(okm));
    assert_string_equal(hex, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879e"
                             "c3454e5f3c738d2d9d201395faa4b61a96c8");
}

static void
test_err_aead_and_base64(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, nonce[12] = {2}, ct[64 + 16], pt[64];
    const uint8_t msg[] = "hello gossip";
    assert_int_equal(mm__aead_seal(ct, key, nonce, (const uint8_t *)"h", 1, msg,
                                   sizeof(msg)),
                     0);
    assert_int_equal(mm__aead_open(pt, key, nonce, (const uint8_t *)"h", 1, ct,
                                   sizeof(msg) + 16),
                     0);
    assert_memory_equal(pt, msg, sizeof(msg));
    ct[0] ^= 1;
    assert_int_equal(mm__aead_open(pt, key, nonce, (const uint8_t *)"h", 1, ct,
                                   sizeof(msg) + 16),
                     MM_EUNAUTHORIZED);
    char b[64];
    uint8_t back[32];
    mm__base64_encode(b, (const uint8_t *)"murmer!", 7);
    assert_string_equal(b, "bXVybWVyIQ==");
    assert_int_equal(mm__base64_decode(back, sizeof(back), b, strlen(b)), 7);
    assert_memory_equal(back, "murmer!", 7);
    assert_int_equal(mm__base64_decode(back, sizeof(back), "a*b", 3),
                     MM_EDECODE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_table_roundtrip),
        cmocka_unit_test(test_err_negative_errno_is_uv),
        cmocka_unit_test(test_err_hkdf_rfc5869_case3),
        cmocka_unit_test(test_err_aead_and_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
