/* test_seal.c — gossip datagram sealing: round trip, tamper, replay,
 * window, wrong key, keyring rotation, the derivation limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common.h"
#include "crypto.h"
#include "membership/seal.h"

static const uint8_t id_a[16] = {0xa1, 1, 2,  3,  4,  5,  6,  7,
                                 8,    9, 10, 11, 12, 13, 14, 15};
static const uint8_t id_b[16] = {0xb2, 1, 2,  3,  4,  5,  6,  7,
                                 8,    9, 10, 11, 12, 13, 14, 15};

static struct mm_seal_key
key_make(uint32_t id, uint8_t fill)
{
    struct mm_seal_key k;
    k.id = id;
    memset(k.key, fill, sizeof(k.key));
    return k;
}

struct pair {
    struct mm_seal *a, *b;
};

static void
pair_new(struct pair *p, uint64_t gen_a)
{
    struct mm_seal_key k = key_make(0x11111111, 0x42);
    assert_int_equal(mm__seal_new(&p->a, id_a, gen_a, &k, 1), 0);
    assert_int_equal(mm__seal_new(&p->b, id_b, 1, &k, 1), 0);
}

static void
pair_free(struct pair *p)
{
    mm__seal_free(p->a);
    mm__seal_free(p->b);
}

/* Seals |msg| with |from| into |dg|; returns its length. */
static size_t
seal_msg(struct mm_seal *from, uint8_t *dg, const char *msg)
{
    size_t n = 0;
    assert_int_equal(
        mm__seal_packet(from, dg, 1500, &n, (const uint8_t *)msg, strlen(msg)),
        0);
    assert_int_equal(n, strlen(msg) + MM_SEAL_OVERHEAD);
    return n;
}

static int
open_dg(struct mm_seal *to, const uint8_t *dg, size_t n, char *out)
{
    size_t len = 0;
    uint8_t sender[16];
    uint64_t gen = 0;
    int rc = mm__seal_open(to, (uint8_t *)out, 1500, &len, dg, n, sender, &gen);
    if (rc == 0) out[len] = '\0';
    return rc;
}

static void
test_seal_roundtrip(void **state)
{
    (void)state;
    struct pair p;
    uint8_t dg[1500];
    char out[1500];
    size_t len = 0;
    uint8_t sender[16];
    uint64_t gen = 0;
    pair_new(&p, 7);
    size_t n = seal_msg(p.a, dg, "hello gossip");
    assert_int_equal(dg[0], 0x01);
    assert_int_equal(mm__get_u32(dg + 1), 0x11111111);
    assert_memory_equal(dg + 5, id_a, 16);
    assert_int_equal(mm__get_u64(dg + 21), 7);
    assert_int_equal(mm__get_u64(dg + 29), 1);
    /* The plaintext does not appear in the datagram. */
    assert_null(memmem(dg, n, "hello", 5));
    assert_int_equal(mm__seal_open(p.b, (uint8_t *)out, sizeof(out), &len, dg,
                                   n, sender, &gen),
                     0);
    assert_int_equal(len, 12);
    assert_memory_equal(out, "hello gossip", 12);
    assert_memory_equal(sender, id_a, 16);
    assert_int_equal(gen, 7);
    /* Empty plaintext works too. */
    n = seal_msg(p.a, dg, "");
    assert_int_equal(open_dg(p.b, dg, n, out), 0);
    assert_string_equal(out, "");
    assert_int_equal(mm__seal_stats(p.b)->opened, 2);
    assert_int_equal(mm__seal_stats(p.a)->sealed, 2);
    pair_free(&p);
}

static void
test_seal_tamper_dropped(void **state)
{
    (void)state;
    struct pair p;
    uint8_t dg[1500], bad[1500];
    char out[1500];
    pair_new(&p, 1);
    size_t n = seal_msg(p.a, dg, "integrity matters");
    /* Flip each byte in turn (header, ciphertext and tag). */
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, dg, n);
        bad[i] ^= 0x40;
        assert_int_equal(open_dg(p.b, bad, n, out), MM_EUNAUTHORIZED);
    }
    /* Every truncation fails. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(open_dg(p.b, dg, i, out), MM_EUNAUTHORIZED);
    assert_int_equal(mm__seal_stats(p.b)->opened, 0);
    assert_int_equal(mm__seal_stats(p.b)->dropped, 2 * n);
    assert_true(mm__seal_stats(p.b)->dropped_auth > 0);
    assert_true(mm__seal_stats(p.b)->dropped_key > 0);
    assert_true(mm__seal_stats(p.b)->dropped_short > 0);
    /* The genuine one still opens afterwards. */
    assert_int_equal(open_dg(p.b, dg, n, out), 0);
    assert_string_equal(out, "integrity matters");
    pair_free(&p);
}

static void
test_seal_replay_dropped(void **state)
{
    (void)state;
    struct pair p;
    uint8_t dg1[1500], dg2[1500];
    char out[1500];
    pair_new(&p, 1);
    size_t n1 = seal_msg(p.a, dg1, "one");
    size_t n2 = seal_msg(p.a, dg2, "two");
    /* Out of order is fine, a second copy is not. */
    assert_int_equal(open_dg(p.b, dg2, n2, out), 0);
    assert_int_equal(open_dg(p.b, dg1, n1, out), 0);
    assert_int_equal(open_dg(p.b, dg1, n1, out), MM_EUNAUTHORIZED);
    assert_int_equal(open_dg(p.b, dg2, n2, out), MM_EUNAUTHORIZED);
    assert_int_equal(mm__seal_stats(p.b)->dropped_replay, 2);
    pair_free(&p);
}

static void
test_seal_window_slides(void **state)
{
    (void)state;
    struct pair p;
    static uint8_t dg[200][128];
    size_t n[200];
    char out[1500];
    pair_new(&p, 1);
    for (int i = 0; i < 200; i++)
        n[i] = seal_msg(p.a, dg[i], "w"); /* counters 1..200 */
    /* Newest first: 200 opens, then 63 older ones still inside. */
    assert_int_equal(open_dg(p.b, dg[199], n[199], out), 0);
    for (int i = 198; i >= 199 - 63; i--)
        assert_int_equal(open_dg(p.b, dg[i], n[i], out), 0);
    /* Counter 136 is 64 behind the top (200): outside the window. */
    assert_int_equal(open_dg(p.b, dg[135], n[135], out), MM_EUNAUTHORIZED);
    assert_int_equal(open_dg(p.b, dg[0], n[0], out), MM_EUNAUTHORIZED);
    /* A fresh counter still opens and slides the window. */
    uint8_t more[128];
    size_t m = seal_msg(p.a, more, "x"); /* 201 */
    assert_int_equal(open_dg(p.b, more, m, out), 0);
    assert_int_equal(open_dg(p.b, dg[136], n[136], out), MM_EUNAUTHORIZED);
    assert_int_equal(mm__seal_stats(p.b)->dropped_replay, 3);
    /* A big jump empties the window: old ones are now too old. */
    for (int i = 0; i < 100; i++)
        m = seal_msg(p.a, more, "y");
    assert_int_equal(open_dg(p.b, more, m, out), 0); /* 301 */
    assert_int_equal(open_dg(p.b, dg[199], n[199], out), MM_EUNAUTHORIZED);
    pair_free(&p);
}

static void
test_seal_wrong_key_dropped(void **state)
{
    (void)state;
    struct mm_seal *a, *b, *c;
    struct mm_seal_key ka = key_make(1, 0x01), kb = key_make(1, 0x02),
                       kc = key_make(2, 0x01);
    uint8_t dg[1500];
    char out[1500];
    assert_int_equal(mm__seal_new(&a, id_a, 1, &ka, 1), 0);
    /* Same key id, different key: the tag fails. */
    assert_int_equal(mm__seal_new(&b, id_b, 1, &kb, 1), 0);
    /* Same key bytes, unknown key id: refused before any crypto. */
    assert_int_equal(mm__seal_new(&c, id_b, 1, &kc, 1), 0);
    size_t n = seal_msg(a, dg, "secret");
    assert_int_equal(open_dg(b, dg, n, out), MM_EUNAUTHORIZED);
    assert_int_equal(mm__seal_stats(b)->dropped_auth, 1);
    assert_int_equal(open_dg(c, dg, n, out), MM_EUNAUTHORIZED);
    assert_int_equal(mm__seal_stats(c)->dropped_key, 1);
    /* Bad arguments. */
    struct mm_seal *x;
    assert_int_equal(mm__seal_new(&x, id_a, 1, &ka, 0), MM_EINVAL);
    size_t len;
    assert_int_equal(mm__seal_packet(a, dg, 10, &len, (const uint8_t *)"ab", 2),
                     MM_EINVAL);
    mm__seal_free(a);
    mm__seal_free(b);
    mm__seal_free(c);
}

static void
test_seal_keyring_rotation(void **state)
{
    (void)state;
    struct mm_seal *a, *b;
    struct mm_seal_key old = key_make(0xaaaa, 0x10),
                       neu = key_make(0xbbbb, 0x20);
    struct mm_seal_key ring_b[2] = {neu, old};
    uint8_t dg[1500];
    char out[1500];
    assert_int_equal(mm__seal_new(&a, id_a, 3, &old, 1), 0);
    assert_int_equal(mm__seal_new(&b, id_b, 1, ring_b, 2), 0);
    /* b already has the new primary but still accepts the old key. */
    size_t n = seal_msg(a, dg, "old key");
    assert_int_equal(open_dg(b, dg, n, out), 0);
    assert_string_equal(out, "old key");
    /* b sends with its primary: a (old key only) cannot open it yet. */
    n = seal_msg(b, dg, "new key");
    assert_int_equal(mm__get_u32(dg + 1), 0xbbbb);
    assert_int_equal(open_dg(a, dg, n, out), MM_EUNAUTHORIZED);
    /* a rotates: new primary, old still accepted. */
    struct mm_seal_key ring_a[2] = {neu, old};
    assert_int_equal(mm__seal_set_keys(a, ring_a, 2), 0);
    assert_int_equal(open_dg(a, dg, n, out), 0);
    assert_string_equal(out, "new key");
    n = seal_msg(a, dg, "rotated");
    assert_int_equal(mm__get_u32(dg + 1), 0xbbbb);
    assert_int_equal(open_dg(b, dg, n, out), 0);
    /* The replay window survives the switch of key: same sender. */
    assert_int_equal(open_dg(b, dg, n, out), MM_EUNAUTHORIZED);
    /* Old key dropped from b's ring: a's old-key datagrams now fail. */
    struct mm_seal *a_old;
    assert_int_equal(mm__seal_new(&a_old, id_a, 4, &old, 1), 0);
    assert_int_equal(mm__seal_set_keys(b, &neu, 1), 0);
    n = seal_msg(a_old, dg, "stale");
    assert_int_equal(open_dg(b, dg, n, out), MM_EUNAUTHORIZED);
    mm__seal_free(a);
    mm__seal_free(a_old);
    mm__seal_free(b);
}

static void
test_seal_generation_order(void **state)
{
    (void)state;
    struct mm_seal_key k = key_make(9, 0x33);
    struct mm_seal *a1, *a2, *b;
    uint8_t dg1[256], dg2[256];
    char out[1500];
    assert_int_equal(mm__seal_new(&a1, id_a, 1, &k, 1), 0);
    assert_int_equal(mm__seal_new(&a2, id_a, 2, &k, 1), 0);
    assert_int_equal(mm__seal_new(&b, id_b, 1, &k, 1), 0);
    size_t n1 = seal_msg(a1, dg1, "gen one");
    size_t n2 = seal_msg(a2, dg2, "gen two"); /* counter 1 again */
    assert_int_equal(open_dg(b, dg1, n1, out), 0);
    /* A restart (new generation) starts its counter over: accepted. */
    assert_int_equal(open_dg(b, dg2, n2, out), 0);
    /* The older generation is refused from then on. */
    n1 = seal_msg(a1, dg1, "gen one again");
    assert_int_equal(open_dg(b, dg1, n1, out), MM_EUNAUTHORIZED);
    assert_int_equal(mm__seal_stats(b)->dropped_replay, 1);
    mm__seal_free(a1);
    mm__seal_free(a2);
    mm__seal_free(b);
}

/* The bytes on the wire, rebuilt by hand: the per-sender key is
 * HKDF(ck, "murmer gossip" || sender id || generation u64 LE). */
static void
test_seal_wire_bytes(void **state)
{
    (void)state;
    struct mm_seal_key k = key_make(0x11111111, 0x42);
    struct mm_seal *s;
    assert_int_equal(mm__seal_new(&s, id_a, 7, &k, 1), 0);
    uint8_t dg[128];
    size_t n = seal_msg(s, dg, "hello");

    uint8_t info[13 + 16 + 8], key[32], want[128];
    memcpy(info, "murmer gossip", 13);
    memcpy(info + 13, id_a, 16);
    mm__put_u64(info + 29, 7);
    assert_int_equal(mm__hkdf_sha256(key, 32, k.key, 32, info, sizeof(info)),
                     0);
    want[0] = MM_SEAL_VERSION;
    mm__put_u32(want + 1, k.id);
    memcpy(want + 5, id_a, 16);
    mm__put_u64(want + 21, 7);
    mm__put_u64(want + 29, 1); /* the first counter */
    uint8_t nonce[MM_GCM_NONCE_LEN] = {0};
    mm__put_u64(nonce + 4, 1);
    assert_int_equal(mm__aead_seal(want + MM_SEAL_HDR_LEN, key, nonce, want,
                                   MM_SEAL_HDR_LEN, (const uint8_t *)"hello",
                                   5),
                     0);
    assert_int_equal(n, MM_SEAL_HDR_LEN + 5 + MM_SEAL_TAG_LEN);
    assert_memory_equal(dg, want, n);
    mm__seal_free(s);
}

/* Datagrams that reuse a real key id under made-up senders cost a key
 * derivation each: those are limited, known senders are not. */
static void
test_seal_derive_limit(void **state)
{
    (void)state;
    struct pair p;
    uint8_t dg[1500], forged[1500];
    char out[1500];
    pair_new(&p, 1);
    mm__seal_set_now(p.b, 1000);
    mm__seal_set_derive_limit(p.b, 10, 5); /* 10 a second, bursts of 5 */
    /* A genuine sender first: one derivation, then cached. */
    size_t n = seal_msg(p.a, dg, "known");
    assert_int_equal(open_dg(p.b, dg, n, out), 0);
    assert_int_equal(mm__seal_stats(p.b)->derivations, 1);
    /* 100 forgeries with the real key id, each from a new sender: 4 more
     * derivations (the burst), the rest dropped before any crypto. */
    for (int i = 0; i < 100; i++) {
        memcpy(forged, dg, n);
        mm__put_u32(forged + 5, 0xf0000000u + (uint32_t)i); /* sender id */
        assert_int_equal(open_dg(p.b, forged, n, out), MM_EUNAUTHORIZED);
    }
    const struct mm_seal_stats *st = mm__seal_stats(p.b);
    assert_int_equal(st->derivations, 5);
    assert_int_equal(st->dropped_auth, 4);
    assert_int_equal(st->dropped_derive, 96);
    assert_int_equal(st->dropped, 100);
    /* The known sender is not held back. */
    n = seal_msg(p.a, dg, "still known");
    assert_int_equal(open_dg(p.b, dg, n, out), 0);
    assert_string_equal(out, "still known");
    /* A new genuine sender waits for a token: 100 ms gives one. */
    struct mm_seal *c;
    static const uint8_t id_c[16] = {0xc3, 1, 2, 3};
    struct mm_seal_key k = key_make(0x11111111, 0x42);
    assert_int_equal(mm__seal_new(&c, id_c, 1, &k, 1), 0);
    n = seal_msg(c, dg, "new");
    assert_int_equal(open_dg(p.b, dg, n, out), MM_EUNAUTHORIZED);
    assert_int_equal(st->dropped_derive, 97);
    mm__seal_set_now(p.b, 1099);
    n = seal_msg(c, dg, "new");
    assert_int_equal(open_dg(p.b, dg, n, out), MM_EUNAUTHORIZED);
    mm__seal_set_now(p.b, 1100);
    n = seal_msg(c, dg, "new");
    assert_int_equal(open_dg(p.b, dg, n, out), 0);
    assert_string_equal(out, "new");
    assert_int_equal(st->derivations, 6);
    /* A long pause refills the burst, no more. */
    mm__seal_set_now(p.b, 1000000);
    for (int i = 0; i < 10; i++) {
        memcpy(forged, dg, n);
        mm__put_u32(forged + 5, 0xe0000000u + (uint32_t)i);
        open_dg(p.b, forged, n, out);
    }
    assert_int_equal(st->derivations, 11);
    mm__seal_free(c);
    pair_free(&p);
}

/*
 * Thousands of senders (more than MM_SEAL_PEERS_MAX): each is found again
 * by its id, with its cached key and replay window, through the table's
 * growth and its evictions; the least recently used make room.
 */
static void
test_seal_many_peers(void **state)
{
    (void)state;
    enum { MAX = MM_SEAL_PEERS_MAX, N = MM_SEAL_PEERS_MAX + 100 };
    struct mm_seal_key k = key_make(0x11111111, 0x42);
    struct mm_seal *rx, *tx;
    uint8_t(*dg)[3][64] = malloc(N * sizeof(*dg));
    size_t len = 1 + MM_SEAL_OVERHEAD;
    char out[1500];
    assert_non_null(dg);
    assert_int_equal(mm__seal_new(&rx, id_b, 1, &k, 1), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t id[16];
        memcpy(id, id_a, 16);
        mm__put_u32(id + 1, i);
        assert_int_equal(mm__seal_new(&tx, id, 1, &k, 1), 0);
        for (int j = 0; j < 3; j++)
            assert_int_equal(seal_msg(tx, dg[i][j],
                                      j == 0   ? "a"
                                      : j == 1 ? "b"
                                               : "c"),
                             len);
        mm__seal_free(tx);
    }
    const struct mm_seal_stats *st = mm__seal_stats(rx);
    for (uint32_t i = 0; i < MAX; i++)
        assert_int_equal(open_dg(rx, dg[i][0], len, out), 0);
    assert_int_equal(st->derivations, MAX);
    /* Each one's window is found: a copy is a replay; its next datagram
     * needs no derivation (the key cached with it). */
    for (uint32_t i = 0; i < MAX; i++)
        assert_int_equal(open_dg(rx, dg[i][0], len, out), MM_EUNAUTHORIZED);
    assert_int_equal(st->dropped_replay, MAX);
    for (uint32_t i = 0; i < MAX; i++)
        assert_int_equal(open_dg(rx, dg[i][1], len, out), 0);
    assert_int_equal(st->derivations, MAX);
    /* 100 more: senders 0..99, the least recently heard, make room. */
    for (uint32_t i = MAX; i < N; i++)
        assert_int_equal(open_dg(rx, dg[i][0], len, out), 0);
    assert_int_equal(st->derivations, N);
    for (uint32_t i = 100; i < N; i++)
        assert_int_equal(open_dg(rx, dg[i][i < MAX ? 1 : 0], len, out),
                         MM_EUNAUTHORIZED);
    assert_int_equal(st->dropped_replay, MAX + (N - 100));
    assert_int_equal(open_dg(rx, dg[100][2], len, out), 0);
    assert_int_equal(st->derivations, N);
    assert_int_equal(open_dg(rx, dg[0][2], len, out), 0); /* evicted */
    assert_int_equal(st->derivations, N + 1);
    mm__seal_free(rx);
    free(dg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_many_peers),
        cmocka_unit_test(test_seal_wire_bytes),
        cmocka_unit_test(test_seal_roundtrip),
        cmocka_unit_test(test_seal_tamper_dropped),
        cmocka_unit_test(test_seal_replay_dropped),
        cmocka_unit_test(test_seal_window_slides),
        cmocka_unit_test(test_seal_wrong_key_dropped),
        cmocka_unit_test(test_seal_keyring_rotation),
        cmocka_unit_test(test_seal_generation_order),
        cmocka_unit_test(test_seal_derive_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
