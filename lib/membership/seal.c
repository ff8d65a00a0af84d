/*
 * seal.c — gossip datagram sealing (see seal.h for the format).
 *
 * Derived keys are cached per sender (one slot per keyring entry) together
 * with the sender's replay window, so a steady stream costs one AES-GCM
 * operation per datagram and no HKDF.  A sender's entry is created only
 * after a datagram from it opened, so garbage cannot fill the table; and
 * garbage that claims a new sender (any key id is public) gets at most
 * derive_rate derivations a second, all senders together.
 */
#include "membership/seal.h"

#include "ckey.h"
#include "core.h"
#include "crypto.h"
#include "membership/idx.h"

struct seal_peer {
    uint8_t id[16];
    uint64_t generation;
    uint64_t top;     /* highest counter accepted */
    uint64_t window;  /* bit i: counter top - i was seen */
    uint64_t used;    /* LRU clock */
    uint32_t derived; /* bit i: key[i] derived for this generation */
    uint8_t key[MM_SEAL_KEYS_MAX][32];
};

struct mm_seal {
    uint8_t self_id[16];
    uint64_t generation, counter;
    struct mm_seal_key keys[MM_SEAL_KEYS_MAX];
    size_t nkeys;
    uint8_t send_key[32];    /* ours, from keys[0] */
    struct seal_peer *peers; /* owned */
    size_t npeers, cappeers;
    struct mm_idx byid; /* peers[] by sender id; rebuilt when they move */
    uint64_t clock;
    struct mm_seal_stats stats;
    /* The derivation limit: a token bucket, in thousandths of a token. */
    uint32_t derive_rate, derive_burst;
    uint64_t derive_tokens, derive_last_ms, now_ms;
};

/* HKDF(ck, MM_LABEL_GOSSIP || sender id || generation u64 LE). */
static int
seal_derive(uint8_t out[32], const uint8_t ck[32], const uint8_t id[16],
            uint64_t generation)
{
    uint8_t ctx[16 + 8];
    memcpy(ctx, id, 16);
    mm__put_u64(ctx + 16, generation);
    return mm__hkdf_label(out, 32, ck, MM_LABEL_GOSSIP, ctx, sizeof(ctx));
}

int
mm__seal_set_keys(struct mm_seal *s, const struct mm_seal_key *keys,
                  size_t nkeys)
{
    if (!keys || nkeys == 0 || nkeys > MM_SEAL_KEYS_MAX) return MM_EINVAL;
    uint8_t k[32];
    if (seal_derive(k, keys[0].key, s->self_id, s->generation) != 0)
        return MM_EINVAL;
    memcpy(s->send_key, k, 32);
    memcpy(s->keys, keys, nkeys * sizeof(*keys));
    s->nkeys = nkeys;
    for (size_t i = 0; i < s->npeers; i++)
        s->peers[i].derived = 0;
    return 0;
}

int
mm__seal_new(struct mm_seal **out, const uint8_t self_id[16],
             uint64_t generation, const struct mm_seal_key *keys, size_t nkeys)
{
    struct mm_seal *s = mm__calloc(1, sizeof(*s));
    int rc;
    *out = NULL;
    if (!s) return -ENOMEM;
    memcpy(s->self_id, self_id, 16);
    s->generation = generation;
    mm__idx_init(&s->byid, offsetof(struct seal_peer, id), mm__rand64());
    rc = mm__seal_set_keys(s, keys, nkeys);
    if (rc != 0) {
        mm__free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void
mm__seal_free(struct mm_seal *s)
{
    if (!s) return;
    mm__idx_free(&s->byid);
    mm__free(s->peers);
    memset(s, 0, sizeof(*s)); /* keys */
    mm__free(s);
}

void
mm__seal_set_derive_limit(struct mm_seal *s, uint32_t per_s, uint32_t burst)
{
    s->derive_rate = per_s;
    s->derive_burst = burst ? burst : 1;
    s->derive_tokens = (uint64_t)s->derive_burst * 1000u;
    s->derive_last_ms = s->now_ms;
}

void
mm__seal_set_now(struct mm_seal *s, uint64_t now_ms)
{
    s->now_ms = now_ms;
}

/* 0 when a derivation may run now (and takes its token). */
static int
seal_derive_take(struct mm_seal *s)
{
    if (s->derive_rate == 0) return 0;
    uint64_t full = (uint64_t)s->derive_burst * 1000u;
    if (s->now_ms > s->derive_last_ms) {
        uint64_t dt = s->now_ms - s->derive_last_ms;
        uint64_t add = dt >= full ? full : dt * s->derive_rate;
        s->derive_tokens = MM_MIN(s->derive_tokens + add, full);
        s->derive_last_ms = s->now_ms;
    }
    if (s->derive_tokens < 1000u) return -1;
    s->derive_tokens -= 1000u;
    return 0;
}

static void
seal_nonce(uint8_t nonce[MM_GCM_NONCE_LEN], uint64_t counter)
{
    memset(nonce, 0, 4);
    mm__put_u64(nonce + 4, counter);
}

int
mm__seal_packet(struct mm_seal *s, uint8_t *out, size_t cap, size_t *outlen,
                const uint8_t *in, size_t len)
{
    uint8_t nonce[MM_GCM_NONCE_LEN];
    if (cap < MM_SEAL_OVERHEAD || len > cap - MM_SEAL_OVERHEAD)
        return MM_EINVAL;
    uint64_t ctr = ++s->counter;
    out[0] = MM_SEAL_VERSION;
    mm__put_u32(out + 1, s->keys[0].id);
    memcpy(out + 5, s->self_id, 16);
    mm__put_u64(out + 21, s->generation);
    mm__put_u64(out + 29, ctr);
    seal_nonce(nonce, ctr);
    int rc = mm__aead_seal(out + MM_SEAL_HDR_LEN, s->send_key, nonce, out,
                           MM_SEAL_HDR_LEN, in, len);
    if (rc != 0) return rc;
    *outlen = len + MM_SEAL_OVERHEAD;
    s->stats.sealed++;
    return 0;
}

int
mm__seal_looks_like(const uint8_t *in, size_t len)
{
    return len >= MM_SEAL_OVERHEAD && in[0] == MM_SEAL_VERSION;
}

static struct seal_peer *
seal_peer_find(struct mm_seal *s, const uint8_t *id)
{
    return mm__idx_find(&s->byid, id);
}

static struct seal_peer *
seal_peer_add(struct mm_seal *s, const uint8_t *id)
{
    struct seal_peer *p;
    if (s->npeers == s->cappeers && s->cappeers < MM_SEAL_PEERS_MAX) {
        size_t cap = s->cappeers ? s->cappeers * 2 : 16;
        if (cap > MM_SEAL_PEERS_MAX) cap = MM_SEAL_PEERS_MAX;
        void *np = mm__realloc(s->peers, cap * sizeof(*s->peers));
        if (np) {
            /* The peers moved: index them again (the slots suffice, no
             * allocation; amortised O(1) a peer, like the growth). */
            s->peers = np;
            s->cappeers = cap;
            mm__idx_clear(&s->byid);
            for (size_t i = 0; i < s->npeers; i++)
                mm__idx_insert(&s->byid, &s->peers[i]);
        }
    }
    if (s->npeers < s->cappeers) {
        p = &s->peers[s->npeers++];
    } else if (s->npeers > 0) {
        p = &s->peers[0]; /* evict the least recently used */
        for (size_t i = 1; i < s->npeers; i++)
            if (s->peers[i].used < p->used) p = &s->peers[i];
        mm__idx_remove(&s->byid, p);
    } else {
        return NULL;
    }
    memset(p, 0, sizeof(*p));
    memcpy(p->id, id, 16);
    if (mm__idx_insert(&s->byid, p) != 0) {
        /* Out of memory: not kept (its replay window neither). */
        if (p == &s->peers[s->npeers - 1])
            s->npeers--;
        else
            memset(p, 0, sizeof(*p)); /* an evicted slot stays, unused */
        return NULL;
    }
    return p;
}

/* Replay check: 0 if |ctr| is new for |p|. */
static int
seal_window_check(const struct seal_peer *p, uint64_t ctr)
{
    if (ctr == 0) return -1;
    if (ctr > p->top) return 0;
    uint64_t age = p->top - ctr;
    if (age >= MM_SEAL_WINDOW) return -1;
    return (p->window >> age) & 1 ? -1 : 0;
}

static void
seal_window_mark(struct seal_peer *p, uint64_t ctr)
{
    if (ctr > p->top) {
        uint64_t shift = ctr - p->top;
        p->window = shift >= MM_SEAL_WINDOW ? 0 : p->window << shift;
        p->window |= 1;
        p->top = ctr;
    } else {
        p->window |= 1ull << (p->top - ctr);
    }
}

static int
seal_drop(struct mm_seal *s, uint64_t *counter)
{
    (*counter)++;
    s->stats.dropped++;
    return MM_EUNAUTHORIZED;
}

int
mm__seal_open(struct mm_seal *s, uint8_t *out, size_t cap, size_t *outlen,
              const uint8_t *in, size_t len, uint8_t sender[16],
              uint64_t *generation)
{
    uint8_t nonce[MM_GCM_NONCE_LEN], key[32];
    const uint8_t *id;
    size_t ki;
    if (!in || !mm__seal_looks_like(in, len) || cap < len - MM_SEAL_OVERHEAD)
        return seal_drop(s, &s->stats.dropped_short);
    id = in + 5;
    uint32_t key_id = mm__get_u32(in + 1);
    for (ki = 0; ki < s->nkeys; ki++)
        if (s->keys[ki].id == key_id) break;
    if (ki == s->nkeys) return seal_drop(s, &s->stats.dropped_key);
    uint64_t gen = mm__get_u64(in + 21), ctr = mm__get_u64(in + 29);

    struct seal_peer *p = seal_peer_find(s, id);
    int fresh_gen = !p || gen > p->generation;
    if (p && gen < p->generation) return seal_drop(s, &s->stats.dropped_replay);
    if (!fresh_gen && seal_window_check(p, ctr) != 0)
        return seal_drop(s, &s->stats.dropped_replay);
    if (fresh_gen && ctr == 0) return seal_drop(s, &s->stats.dropped_replay);

    if (!fresh_gen && (p->derived >> ki) & 1) {
        memcpy(key, p->key[ki], 32);
    } else if (seal_derive_take(s) != 0) {
        return seal_drop(s, &s->stats.dropped_derive);
    } else if (seal_derive(key, s->keys[ki].key, id, gen) != 0) {
        return seal_drop(s, &s->stats.dropped_auth);
    } else {
        s->stats.derivations++;
    }
    seal_nonce(nonce, ctr);
    if (mm__aead_open(out, key, nonce, in, MM_SEAL_HDR_LEN,
                      in + MM_SEAL_HDR_LEN, len - MM_SEAL_HDR_LEN) != 0)
        return seal_drop(s, &s->stats.dropped_auth);

    /* Authentic: only now does the sender get state here. */
    if (!p) p = seal_peer_add(s, id);
    if (p) {
        if (fresh_gen) {
            memset(p, 0, sizeof(*p));
            memcpy(p->id, id, 16);
            p->generation = gen;
        }
        memcpy(p->key[ki], key, 32);
        p->derived |= 1u << ki;
        seal_window_mark(p, ctr);
        p->used = ++s->clock;
    }
    *outlen = len - MM_SEAL_OVERHEAD;
    if (sender) memcpy(sender, id, 16);
    if (generation) *generation = gen;
    s->stats.opened++;
    return 0;
}

const struct mm_seal_stats *
mm__seal_stats(const struct mm_seal *s)
{
    return &s->stats;
}
