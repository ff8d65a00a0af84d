/*
 * seal.h — authenticated encryption of gossip datagrams (docs/design.md, Gossip
 * sealing).
 *
 *   datagram = 0x01 | key id u32 | sender node id [16] | generation u64 |
 *              counter u64 | ciphertext | tag [16]
 *
 * Integers little-endian.  AES-256-GCM under a per-sender key
 * HKDF-SHA256(ck, "murmer gossip" || sender id || generation u64 LE), nonce
 * = 4 zero bytes || counter u64 LE, the 37-byte header as AAD.  The counter
 * starts at 1 for each (sender, generation), so nonces never repeat: the
 * generation is bumped on every start.  Receivers keep a 64-entry sliding
 * replay window per sender (for its newest generation; older generations
 * are refused).  Anything that fails to open is dropped and counted.
 * Key derivations for senders not cached yet may be rate-limited, so that
 * datagrams that reuse a real key id cannot cost an HKDF each.
 */
#ifndef MM_SEAL_H
#define MM_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define MM_SEAL_VERSION 0x01
#define MM_SEAL_HDR_LEN 37
#define MM_SEAL_TAG_LEN 16
#define MM_SEAL_OVERHEAD (MM_SEAL_HDR_LEN + MM_SEAL_TAG_LEN)
#define MM_SEAL_WINDOW 64
#define MM_SEAL_KEYS_MAX 8     /* keyring size */
#define MM_SEAL_PEERS_MAX 4096 /* replay windows kept (LRU beyond) */

/* A keyring entry: |id| is the first 4 bytes (LE) of HKDF(ck, "murmer
 * keyid"), computed by the caller. */
struct mm_seal_key {
    uint32_t id;
    uint8_t key[32];
};

struct mm_seal_stats {
    uint64_t sealed, opened;
    uint64_t dropped_short;  /* truncated or not a gossip datagram */
    uint64_t dropped_key;    /* key id not in the keyring */
    uint64_t dropped_auth;   /* tag did not verify */
    uint64_t dropped_replay; /* seen, too old, or an older generation */
    uint64_t dropped_derive; /* a new sender past the derivation limit */
    uint64_t dropped;        /* all of the above */
    uint64_t derivations;    /* per-sender keys derived */
};

struct mm_seal;

/*
 * |self_id| and |generation| name our own datagrams.  |keys| (index 0 is
 * the primary, used to send) is copied.  0, MM_EINVAL or -ENOMEM.
 */
int mm__seal_new(struct mm_seal **out, const uint8_t self_id[16],
                 uint64_t generation, const struct mm_seal_key *keys,
                 size_t nkeys);
void mm__seal_free(struct mm_seal *s);
/* Replaces the keyring (rotation); derived keys are recomputed.  0 or
 * MM_EINVAL. */
int mm__seal_set_keys(struct mm_seal *s, const struct mm_seal_key *keys,
                      size_t nkeys);

/*
 * Seals |len| plaintext bytes into |out| (|cap| >= len + MM_SEAL_OVERHEAD);
 * *outlen gets the datagram length.  0 or MM_EINVAL.
 */
int mm__seal_packet(struct mm_seal *s, uint8_t *out, size_t cap, size_t *outlen,
                    const uint8_t *in, size_t len);
/*
 * Opens a datagram into |out| (|cap| >= len - MM_SEAL_OVERHEAD); *outlen
 * gets the plaintext length, |sender| and |generation| (either may be NULL)
 * who sealed it.  0, or MM_EUNAUTHORIZED for anything that does not open
 * (truncated, unknown key id, bad tag, replay); nothing is written to
 * |sender| then.
 */
int mm__seal_open(struct mm_seal *s, uint8_t *out, size_t cap, size_t *outlen,
                  const uint8_t *in, size_t len, uint8_t sender[16],
                  uint64_t *generation);
/*
 * Key derivations (HKDF) for senders, generations or keys not cached yet
 * are limited to |per_s| a second with bursts of |burst| (a token bucket
 * on the clock mm__seal_set_now gives): past it, such a datagram is
 * dropped before any crypto (dropped_derive).  |per_s| 0: no limit (the
 * default).
 */
void mm__seal_set_derive_limit(struct mm_seal *s, uint32_t per_s,
                               uint32_t burst);
/* The time in milliseconds (any monotonic origin) for the limit above. */
void mm__seal_set_now(struct mm_seal *s, uint64_t now_ms);
/* Cheap pre-check for the demultiplexer: first byte and minimum length. */
int mm__seal_looks_like(const uint8_t *in, size_t len);
const struct mm_seal_stats *mm__seal_stats(const struct mm_seal *s);

#endif /* MM_SEAL_H */
