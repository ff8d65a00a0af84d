/* clang-format off */
/* FUZZ_SOURCES: lib/membership/swim.c lib/membership/seal.c lib/membership/idx.c lib/crypto.c lib/util.c lib/err.c */
/* clang-format on */
/*
 * fuzz_gossip.c — libFuzzer target for the gossip path: the SWIM packet
 * decoder and state machine, the push-pull merge, and datagram opening.
 *
 * The input is a script of steps, each `op u8 | len u16 LE | bytes`:
 *   op % 6 == 0  bytes are a gossip packet from peer (op / 6) % 4
 *   op % 6 == 1  bytes are a push-pull payload to merge
 *   op % 6 == 2  advance the clock by (first two bytes) ms and tick
 *   op % 6 == 3  bytes are a sealed datagram to open (then fed to SWIM)
 *   op % 6 == 4  leave / force-leave / join, picked by the first byte
 *   op % 6 == 5  seal the bytes and open them again (must round-trip)
 * The instance starts knowing three members (records signed by their real
 * Ed25519 keys, made once from fixed seeds), so probes, suspicion and
 * gossip all run; fuzzed records must verify like any other.  Nothing may
 * crash, leak or trip a sanitizer, and the deadline must always lie in the
 * future after a tick.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crypto.h"
#include "membership/seal.h"
#include "membership/swim.h"

static size_t sent_bytes;

/* Node i's key (0 = the instance) and id = SHA-256(pub)[0..16]. */
static struct mm_sign_key *fz_key[4];
static uint8_t fz_pub[4][32], fz_id[4][16];

static void
fz_keys(void)
{
    if (fz_key[0]) return;
    for (int i = 0; i < 4; i++) {
        uint8_t seed[32], h[32];
        memset(seed, 0x33, sizeof(seed));
        seed[0] = (uint8_t)i;
        if (mm__sign_key_from_seed(&fz_key[i], seed) != 0 ||
            mm__sign_key_public(fz_key[i], fz_pub[i]) != 0)
            abort();
        mm__sha256(h, fz_pub[i], 32);
        memcpy(fz_id[i], h, 16);
    }
}

static int
fz_sign(void *data, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    (void)data;
    return mm__ed25519_sign(fz_key[0], msg, len, sig);
}

static int
fz_verify(void *data, const uint8_t id[16], const uint8_t pub[32],
          const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    uint8_t h[32];
    (void)data;
    mm__sha256(h, pub, 32);
    if (memcmp(h, id, 16) != 0) return -1;
    return mm__ed25519_verify(pub, msg, len, sig);
}

static void
fz_send(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
        size_t len)
{
    (void)data;
    (void)to;
    if (len > MM_SWIM_PACKET_MAX) abort();
    sent_bytes += len + buf[0];
}

static void
fz_changed(void *data, const struct mm_swim_member *m, int was)
{
    (void)data;
    (void)was;
    if (m->state > MM_SWIM_REAPED) abort(); /* ALIVE is 0 */
}

static void
fz_want_sync(void *data, const struct mm_swim_member *peer)
{
    (void)data;
    (void)peer;
}

static struct mm_swim_addr
fz_addr(int i)
{
    struct mm_swim_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 4;
    a.ip[0] = 10;
    a.ip[3] = (uint8_t)(i + 1);
    a.port = (uint16_t)(7000 + i);
    return a;
}

/* A valid packet from peer 1 announcing members 1..3 alive, each record
 * signed by its member. */
static size_t
fz_hello(uint8_t *b)
{
    size_t o = 18;
    b[0] = 2;
    memcpy(b + 1, fz_id[1], 16);
    b[17] = 3;
    for (int i = 1; i <= 3; i++) {
        uint8_t *p = b + o, tbs[18 + 45];
        size_t rl = 45 + 32 + 64;
        p[0] = 5; /* ALIVE */
        mm__put_u16(p + 1, (uint16_t)rl);
        p += 3;
        memcpy(p, fz_id[i], 16);
        mm__put_u64(p + 16, 1);
        mm__put_u64(p + 24, 0);
        p[32] = 0; /* flags */
        p[33] = 0; /* role */
        p[34] = 4;
        struct mm_swim_addr a = fz_addr(i);
        memcpy(p + 35, a.ip, 4);
        mm__put_u16(p + 39, a.port);
        p[41] = 2;
        p[42] = 'n';
        p[43] = (uint8_t)('0' + i);
        p[44] = 0;
        memcpy(tbs, "murmer-swim-rec-v1", 18);
        memcpy(tbs + 18, p, 45);
        if (mm__ed25519_sign(fz_key[i], tbs, sizeof(tbs), p + 45 + 32) != 0)
            abort();
        p[32] = 2; /* the key follows */
        memcpy(p + 45, fz_pub[i], 32);
        o += 3 + rl;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mm_swim_config cfg;
    struct mm_swim_ops ops = {NULL,         fz_send, fz_changed,
                              fz_want_sync, fz_sign, fz_verify};
    struct mm_swim *s;
    struct mm_seal *seal, *peer;
    struct mm_seal_key key = {0x01020304, {0}};
    uint8_t self_id[16], peer_id[16], buf[2048], out[2048];
    uint64_t now = 1000;
    size_t n;

    memset(key.key, 0x5a, sizeof(key.key));
    mm_log_set_level(MM_LOG_ERR);
    mm__swim_config_init(&cfg);
    cfg.name = "fuzz";
    fz_keys();
    memcpy(cfg.id, fz_id[0], 16);
    memcpy(cfg.pub, fz_pub[0], 32);
    cfg.addr = fz_addr(0);
    cfg.generation = 1;
    cfg.seed = 42;
    memcpy(self_id, cfg.id, 16);
    memcpy(peer_id, fz_id[1], 16);
    if (mm__swim_new(&s, &cfg, &ops, now) != 0) abort();
    if (mm__seal_new(&seal, self_id, 1, &key, 1) != 0 ||
        mm__seal_new(&peer, peer_id, 1, &key, 1) != 0)
        abort();
    n = fz_hello(buf);
    struct mm_swim_addr a1 = fz_addr(1);
    if (mm__swim_recv(s, &a1, buf, n, now) != 0 ||
        mm__swim_count(s, MM_SWIM_NONE) != 4)
        abort();

    size_t o = 0;
    while (size - o >= 3) {
        uint8_t op = data[o];
        size_t len = mm__get_u16(data + o + 1);
        o += 3;
        if (len > size - o) len = size - o;
        const uint8_t *p = data + o;
        o += len;
        struct mm_swim_addr from = fz_addr((op / 6) % 4);
        switch (op % 6) {
        case 0:
            mm__swim_recv(s, &from, p, len, now);
            break;
        case 1:
            mm__swim_state_merge(s, p, len, now);
            break;
        case 2:
            now += len >= 2 ? mm__get_u16(p) : 1000;
            mm__swim_tick(s, now);
            if (mm__swim_deadline(s) <= now) abort();
            break;
        case 3: {
            size_t pl = 0;
            if (mm__seal_open(seal, out, sizeof(out), &pl, p, len, NULL,
                              NULL) == 0)
                mm__swim_recv(s, &from, out, pl, now);
            break;
        }
        case 4:
            if (len == 0) break;
            if (p[0] % 3 == 0)
                mm__swim_leave(s, now);
            else if (p[0] % 3 == 1)
                mm__swim_force_leave(s, len >= 17 ? p + 1 : NULL,
                                     len >= 17 ? NULL : "n2", now);
            else
                mm__swim_join(s, &from, now);
            break;
        case 5: {
            size_t sl = 0, pl = 0;
            if (len > sizeof(buf) - MM_SEAL_OVERHEAD) break;
            if (mm__seal_packet(peer, buf, sizeof(buf), &sl, p, len) != 0)
                abort();
            if (mm__seal_open(seal, out, sizeof(out), &pl, buf, sl, NULL,
                              NULL) != 0 ||
                pl != len || memcmp(out, p, len) != 0)
                abort();
            /* A replay never opens. */
            if (mm__seal_open(seal, out, sizeof(out), &pl, buf, sl, NULL,
                              NULL) == 0)
                abort();
            break;
        }
        }
    }
    /* Encode and re-merge our own state: must always decode. */
    n = mm__swim_state_encode(s, NULL, 0);
    uint8_t *st = malloc(n);
    if (!st || mm__swim_state_encode(s, st, n) != n ||
        mm__swim_state_merge(s, st, n, now) != 0)
        abort();
    free(st);
    mm__swim_free(s);
    mm__seal_free(seal);
    mm__seal_free(peer);
    return 0;
}
