/*
 * swim.h — SWIM + Lifeguard membership, as a pure state machine.
 *
 * No libuv, no sockets: time comes in as a millisecond count, packets come
 * in through mm__swim_recv() and go out through ops->send(); events go out
 * through ops->changed() and ops->want_sync().  The glue (membership.c)
 * seals every packet (seal.h), arms one timer to mm__swim_deadline() and
 * calls mm__swim_tick() when it fires.  The packet format is documented at
 * the top of swim.c.
 */
#ifndef MM_SWIM_H
#define MM_SWIM_H

#include <stddef.h>
#include <stdint.h>

#include "defaults.h"

/* Tunables not (yet) in defaults.h; same override rule. */
#ifndef MM_SWIM_GOSSIP_TO_DEAD_MS
#define MM_SWIM_GOSSIP_TO_DEAD_MS 30000u /* keep gossiping to the failed */
#endif
#ifndef MM_SWIM_REPROBE_MIN_MS
#define MM_SWIM_REPROBE_MIN_MS 2000u /* first re-probe of a failed member */
#endif
#ifndef MM_SWIM_REPROBE_MAX_MS
#define MM_SWIM_REPROBE_MAX_MS 30000u /* re-probe backoff cap */
#endif
#ifndef MM_SWIM_SEED_MIN_MS
#define MM_SWIM_SEED_MIN_MS 1000u /* first seed retry */
#endif
#ifndef MM_SWIM_SEED_MAX_MS
#define MM_SWIM_SEED_MAX_MS 30000u /* seed retry backoff cap */
#endif
#ifndef MM_SWIM_TOMBSTONE_MS
#define MM_SWIM_TOMBSTONE_MS (24ull * 3600ull * 1000ull)
#endif
#ifndef MM_SWIM_LEAVE_TIMEOUT_MS
#define MM_SWIM_LEAVE_TIMEOUT_MS 5000u /* leave gives up waiting for an ack */
#endif
#ifndef MM_SWIM_SYNC_JITTER_MS
#define MM_SWIM_SYNC_JITTER_MS 1000u /* delay before a digest-mismatch pull */
#endif
#ifndef MM_SWIM_SYNC_TIMEOUT_MS
#define MM_SWIM_SYNC_TIMEOUT_MS 10000u /* a pull that never reports is over */
#endif
#ifndef MM_SWIM_NEWS_GAP_DIV
/* News of a member (a new one, or a new generation) goes out in a gossip
 * round at most gossip_interval / this after the last round, not a whole
 * interval later: a join spreads in hops a few times shorter, for at most
 * this many more rounds an interval while members keep coming. */
#define MM_SWIM_NEWS_GAP_DIV 4u
#endif
#ifndef MM_SWIM_PACKET_MAX
#define MM_SWIM_PACKET_MAX 1347u /* plaintext; sealed datagram <= 1400 */
#endif

#ifndef MM_SWIM_LEAVE_TELL
/* A graceful leave is told directly to this many live members a round (or
 * gossip_nodes, if more) until one acknowledges it, not only to
 * gossip_nodes: the others learn it by gossip, whose retransmits are
 * bounded, and a member they all missed learnt it from a push-pull about
 * a second later (1 leave in 15-20 at N=8). */
#define MM_SWIM_LEAVE_TELL 8u
#endif

#ifndef MM_SWIM_MEMBERS_MAX
#define MM_SWIM_MEMBERS_MAX 65536u /* members (and tombstones) kept */
#endif

#define MM_SWIM_NAME_MAX 64  /* including the NUL */
#define MM_SWIM_TAGS_MAX 256 /* including the NUL */
#define MM_SWIM_ID_LEN 16
#define MM_SWIM_CONFIRM_MAX 16 /* distinct confirmers remembered */
#define MM_SWIM_PUB_LEN 32     /* raw Ed25519 public key */
#define MM_SWIM_SIG_LEN 64     /* Ed25519 signature */
/* Record flags: bit 0 marks the node's own graceful leave. */
#define MM_SWIM_REC_LEFT 0x01

/* Member states.  NONE is only ever a |was| value: "not known before". */
enum mm_swim_state {
    MM_SWIM_NONE = -1,
    MM_SWIM_ALIVE = 0,
    MM_SWIM_SUSPECT = 1,
    MM_SWIM_FAILED = 2,
    MM_SWIM_LEFT = 3,
    /*
     * Pseudo-state reported through changed() when a failed or left member
     * is reaped after reconnect_timeout.  It then stays as a hidden
     * tombstone (not listed, not counted) so that stale gossip cannot bring
     * that generation back.
     */
    MM_SWIM_REAPED = 4
};
/* "alive", "suspect", ... ("none", "reaped"; "?" for others): the one
 * table of member state names (murmer.h's mm_member_state_name too). */
const char *mm__swim_state_name(int state);

/* An address without socket headers: family 4 or 6, ip in network order
 * (first 4 bytes for IPv4), port in host order. */
struct mm_swim_addr {
    uint8_t family;
    uint8_t ip[16];
    uint16_t port;
};

/*
 * A member's signed record: everything the member itself said (what alive
 * messages carry), immutable once made.  Records are refcounted and
 * interned in a record pool (struct mm_swim_pool): the cores that share a
 * pool (the simulator's N nodes) hold one copy of each record, and a record
 * met again byte for byte need not be verified again.  A new signed record
 * of a member replaces the member's pointer to it.  Owned by the core:
 * valid until the next call into it.
 */
struct mm_swim_rec {
    uint8_t id[MM_SWIM_ID_LEN];
    uint8_t role;
    uint8_t rec_flags; /* MM_SWIM_REC_LEFT, as signed (see below) */
    uint8_t verified;  /* its signature was checked (internal) */
    struct mm_swim_addr addr;
    uint64_t generation;
    uint64_t incarnation;
    /*
     * The member's own word for this record: its public key (whose hash is
     * |id|) and its signature over (id, generation, incarnation, rec_flags,
     * role, addr, name, tags).  Only a record with a valid signature
     * changes generation, incarnation, address, tags or name, or says the
     * member left (rec_flags & MM_SWIM_REC_LEFT); suspicions, failure
     * verdicts and forced leaves are others' opinions and never raise the
     * incarnation past the one signed.
     */
    uint8_t pub[MM_SWIM_PUB_LEN];
    uint8_t sig[MM_SWIM_SIG_LEN];
    /* Opaque NUL-terminated tag string, by convention "k=v,k=v", of at
     * most MM_SWIM_TAGS_MAX - 1 bytes; never NULL (held after name). */
    const char *tags;
    struct mm_swim_rec *next; /* in the pool's hash chain (internal) */
    uint32_t refs;            /* holders (internal) */
    uint32_t hash;            /* of its content (internal) */
    char name[];              /* NUL-terminated, then the tags */
};

/* A pool of records (see struct mm_swim_rec).  Not thread-safe: the cores
 * that share one run on one thread. */
struct mm_swim_pool;
/* 0 or -ENOMEM. */
int mm__swim_pool_new(struct mm_swim_pool **out);
/* Frees the pool; every core using it must have been freed first. */
void mm__swim_pool_free(struct mm_swim_pool *p);
/* Records held in |p| and the bytes they take (for measurements). */
size_t mm__swim_pool_count(const struct mm_swim_pool *p, size_t *bytes);

/* A suspicion's and a failed member's bookkeeping, held out of line while
 * the member is suspect or failed (NULL otherwise).  Read-only. */
struct mm_swim_susp {
    uint64_t suspect_start;    /* ms the suspicion began */
    uint64_t suspect_deadline; /* ms it turns into FAILED */
    uint64_t reprobe_at;       /* FAILED: next re-probe */
    uint64_t reprobe_gap;      /* FAILED: current re-probe backoff */
    unsigned confirmations;    /* independent confirmations so far */
    unsigned nconfirmers;
    /* The distinct confirmers of the suspicion (at most
     * MM_SWIM_CONFIRM_MAX): allocated on the first, freed when the
     * suspicion ends; NULL otherwise. */
    uint8_t (*confirmers)[MM_SWIM_ID_LEN];
};

/*
 * A member as one node sees it: its signed record (shared) and this
 * node's bookkeeping about it (read-only for the glue).
 */
struct mm_swim_member {
    const struct mm_swim_rec *rec; /* never NULL */
    uint64_t state_since;          /* ms of the last state change */
    uint64_t last_ack;             /* ms of the last ack from it (0 = never) */
    uint64_t last_heard; /* ms of the last packet it sent us (0 = never) */
    struct mm_swim_susp *susp; /* suspect or failed: see above */
    uint64_t digest_part;      /* its share of mm__swim_digest (internal) */
    uint32_t rtt_ms;           /* last measured probe round trip */
    uint32_t due_slot;   /* in the set the tick walks: index + 1 (internal) */
    uint32_t table_slot; /* its index in the member table (internal) */
    uint8_t state;       /* enum mm_swim_state */
    unsigned is_self : 1;
    unsigned tombstone : 1; /* reaped: hidden */
    unsigned counted : 2;   /* what it counts for in the core's counts
                               (internal) */
    unsigned ghost : 1;     /* freed, still named by the probe order
                               (internal) */
};

/* Independent confirmations of |m|'s suspicion so far (0 unless suspect). */
static inline unsigned
mm__swim_confirmations(const struct mm_swim_member *m)
{
    return m->susp ? m->susp->confirmations : 0;
}

struct mm_swim_ops {
    void *data;
    /* A plaintext packet (<= packet_max bytes) for |to|; the glue seals it.
     * |buf| is borrowed for the call. */
    void (*send)(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
                 size_t len);
    /*
     * |m| changed.  |was| is the previous state: MM_SWIM_NONE for a member
     * just learnt; equal to m->state for a record update (new generation,
     * new incarnation carrying new tags or address).  m->state is
     * MM_SWIM_REAPED when the member is removed.  May be NULL.
     */
    void (*changed)(void *data, const struct mm_swim_member *m, int was);
    /*
     * Run a push-pull full-state sync with |peer| (over QUIC): send it
     * mm__swim_state_encode() and feed its answer to mm__swim_state_merge(),
     * or call mm__swim_sync_done() if it fails.  At most one is asked for at
     * a time.  May be NULL.
     */
    void (*want_sync)(void *data, const struct mm_swim_member *peer);
    /*
     * Signs |msg| with this node's identity key (the key of cfg.pub):
     * 0, or non-zero when it cannot (the record then goes out unsigned
     * and peers drop it).  Required.
     */
    int (*sign)(void *data, const uint8_t *msg, size_t len,
                uint8_t sig[MM_SWIM_SIG_LEN]);
    /*
     * 0 when |pub| is the key of node |id| (its hash is the id) and |sig|
     * its valid signature over |msg|; non-zero otherwise.  Required.
     */
    int (*verify)(void *data, const uint8_t id[MM_SWIM_ID_LEN],
                  const uint8_t pub[MM_SWIM_PUB_LEN], const uint8_t *msg,
                  size_t len, const uint8_t sig[MM_SWIM_SIG_LEN]);
};

struct mm_swim_config {
    /* Self record; strings are copied. */
    const char *name;
    uint8_t id[MM_SWIM_ID_LEN];
    uint8_t pub[MM_SWIM_PUB_LEN]; /* the identity key whose hash is id */
    struct mm_swim_addr addr;
    uint64_t generation;
    uint8_t role;
    const char *tags; /* NULL = none */

    /* Timings (ms) and knobs; mm__swim_config_init() sets the defaults. */
    uint32_t probe_interval_ms;  /* MM_SWIM_PROBE_MS */
    uint32_t probe_timeout_ms;   /* MM_SWIM_PROBE_TIMEOUT_MS */
    uint32_t indirect_checks;    /* MM_SWIM_INDIRECT */
    uint32_t gossip_interval_ms; /* MM_SWIM_GOSSIP_MS */
    uint32_t gossip_nodes;       /* MM_SWIM_GOSSIP_NODES */
    uint32_t gossip_burst;       /* MM_SWIM_GOSSIP_BURST */
    uint32_t retransmit_mult;    /* MM_SWIM_RETRANSMIT_MULT */
    uint32_t suspicion_mult;     /* MM_SWIM_SUSPICION_MULT */
    uint32_t suspicion_max_mult; /* MM_SWIM_SUSPICION_MAX_MULT */
    uint32_t awareness_max;      /* MM_SWIM_AWARENESS_MAX */
    uint32_t gossip_to_dead_ms;
    uint32_t reprobe_min_ms, reprobe_max_ms;
    uint32_t seed_min_ms, seed_max_ms;
    uint32_t leave_timeout_ms;
    uint32_t sync_jitter_ms, sync_timeout_ms;
    uint32_t sync_page;       /* MM_SWIM_SYNC_PAGE: members a push-pull state
                                 carries besides ourselves (>= 1) */
    uint32_t late_ms;         /* MM_SWIM_LATE_MS: a probe step run this much
                                 after it was due means we are behind; 0 = off */
    uint32_t sync_gap_max_ms; /* MM_SWIM_SYNC_GAP_MAX_MS: cap of the gap
                                 between digest pulls; 0 = no gap */
    uint64_t reconnect_timeout_ms; /* MM_SWIM_RECONNECT_TIMEOUT_MS */
    uint64_t tombstone_ms;
    uint32_t packet_max;
    uint64_t seed; /* PRNG seed; 0 = random */
    /* Where the core keeps the records it holds; NULL = a pool of its own.
     * Borrowed: it must outlive the core. */
    struct mm_swim_pool *pool;
};

struct mm_swim;

/* Fills |cfg| with the defaults (and a zero self record). */
void mm__swim_config_init(struct mm_swim_config *cfg);
/* 0, MM_EINVAL (bad self record or timings, no sign/verify op) or
 * -ENOMEM.  |ops| is copied.
 * |now| starts the clocks. */
int mm__swim_new(struct mm_swim **out, const struct mm_swim_config *cfg,
                 const struct mm_swim_ops *ops, uint64_t now);
void mm__swim_free(struct mm_swim *s);

/* A packet from |from|: 0, or MM_EDECODE (nothing applied) on garbage. */
int mm__swim_recv(struct mm_swim *s, const struct mm_swim_addr *from,
                  const uint8_t *buf, size_t len, uint64_t now);
/* The sender id a packet claims (bytes 1..16), for the glue to compare
 * with the sealed header's sender: 0 or MM_EDECODE. */
int mm__swim_packet_sender(const uint8_t *buf, size_t len,
                           uint8_t id[MM_SWIM_ID_LEN]);
/* Runs everything due at |now|. */
void mm__swim_tick(struct mm_swim *s, uint64_t now);
/* Absolute ms of the next thing to do (call tick then); UINT64_MAX when
 * nothing is scheduled (only after a leave has settled).  Re-read it after
 * every call into the core: news from recv may bring it forward. */
uint64_t mm__swim_deadline(struct mm_swim *s);

/* Adds a seed and pings it now; retried with capped backoff until some
 * seed answers (and again whenever we know no live member).  0 or
 * MM_EINVAL. */
int mm__swim_join(struct mm_swim *s, const struct mm_swim_addr *seed,
                  uint64_t now);
/* 1 once some seed (or any member) has answered us. */
int mm__swim_joined(const struct mm_swim *s);

/* Graceful leave: broadcasts LEFT and pings peers with it.  0,
 * MM_EINVAL if already left, or -ENOMEM. */
int mm__swim_leave(struct mm_swim *s, uint64_t now);
/* 1 once a peer acked the leave (or there was nobody to tell), 0 while
 * waiting, MM_ETIMEOUT after leave_timeout_ms. */
int mm__swim_left_acked(const struct mm_swim *s);
/* Marks a member LEFT at once and gossips it.  Give |id| or |name|.
 * 0, MM_ENOTFOUND, or MM_EINVAL for self. */
int mm__swim_force_leave(struct mm_swim *s, const uint8_t *id, const char *name,
                         uint64_t now);
/* Replaces our tags (bumps incarnation, gossips).  0, MM_EINVAL or
 * -ENOMEM. */
int mm__swim_set_tags(struct mm_swim *s, const char *tags, uint64_t now);

/* Push-pull payload.  encode returns the bytes needed; it writes only when
 * that fits |cap| (|out| may be NULL to size).  It carries ourselves and
 * at most cfg.sync_page other members: when there are more, each written
 * state is the next page of a rotation over the member table, so that
 * successive states cover them all (sizing with |out| NULL does not move
 * it).  merge: 0 or MM_EDECODE
 * (nothing applied); it also ends the sync in flight. */
size_t mm__swim_state_encode(struct mm_swim *s, uint8_t *out, size_t cap);
/* A peer's push-pull request |req| (its state) is about to be answered:
 * the answer's page starts where the request asked (a joiner walking our
 * table page by page).  Call before sizing and encoding the answer. */
void mm__swim_state_serve(struct mm_swim *s, const uint8_t *req, size_t len);
int mm__swim_state_merge(struct mm_swim *s, const uint8_t *buf, size_t len,
                         uint64_t now);
/* The same in steps of at most |max| signature checks (entries that need
 * none, news already held, are free; at most 256 entries a step): start
 * with *next = 0 and call again with the same payload while it returns 1
 * or 2; 2 says the next entry is a gone member's (failed or left), news
 * that may wait (a step ends where the live members end; the glue paces
 * the steps after that); 0 when merged (the sync in
 * flight ends), MM_EDECODE when it does not decode (nothing applied). */
int mm__swim_state_merge_some(struct mm_swim *s, const uint8_t *buf, size_t len,
                              uint32_t *next, uint32_t max, uint64_t now);
/* The glue's sync ended without a merge (failure). */
void mm__swim_sync_done(struct mm_swim *s, uint64_t now);
/* 1 while a want_sync is outstanding. */
int mm__swim_sync_in_flight(const struct mm_swim *s);

/* Order-independent hash over (id, generation, incarnation, state) of all
 * non-tombstone members; SUSPECT hashes as ALIVE (transient). */
uint64_t mm__swim_digest(struct mm_swim *s);

/* Calls |cb| for each listed member (self included, tombstones not);
 * stops early when |cb| returns non-zero. */
void mm__swim_members(struct mm_swim *s,
                      int (*cb)(void *data, const struct mm_swim_member *m),
                      void *data);
/* Listed members in |state| (MM_SWIM_NONE = all listed, self included). */
size_t mm__swim_count(const struct mm_swim *s, int state);
const struct mm_swim_member *mm__swim_find(const struct mm_swim *s,
                                           const uint8_t id[MM_SWIM_ID_LEN]);
const struct mm_swim_member *mm__swim_self(const struct mm_swim *s);
/*
 * Checks the core's internal bookkeeping against a full walk of its
 * member table (for tests and the simulator; O(N)): every member is found
 * by its id and nothing else is, the broadcast queue's index matches the
 * queue, the cached counts are right, and mm__swim_deadline is no later
 * than the earliest thing due for any member.  0, or -1 with a line on
 * stderr naming the first mismatch.
 */
int mm__swim_check(const struct mm_swim *s);
/* Lifeguard local-health score, 0 .. awareness_max - 1. */
int mm__swim_awareness(const struct mm_swim *s);
/* Current limits derived from the member count. */
unsigned mm__swim_retransmit_limit(const struct mm_swim *s);
void mm__swim_suspicion_bounds(const struct mm_swim *s, uint64_t *min_ms,
                               uint64_t *max_ms);
/* Suspicion timeout after |c| independent confirmations (Lifeguard). */
uint64_t mm__swim_suspicion_timeout(uint64_t min_ms, uint64_t max_ms,
                                    unsigned k, unsigned c);
/* "key: value" lines of every timing in force; snprintf semantics. */
int mm__swim_timings_format(const struct mm_swim *s, char *buf, size_t len);

struct mm_swim_stats {
    uint64_t packets_in, packets_out, decode_errors;
    uint64_t probes, indirect_probes, nacks_in, refutations, syncs;
    uint64_t stale_verdicts;  /* FAILED verdicts taken as suspicions */
    uint64_t verified;        /* records whose signature was checked, valid */
    uint64_t forged;          /* records dropped: signature or key invalid */
    uint64_t unknown_leaves;  /* gossiped leaves of members never known */
    uint64_t suspicions;      /* members that turned suspect */
    uint64_t late_probes;     /* probe steps run late (we were behind) */
    uint64_t heard_not_acked; /* probes unacked by a member heard meanwhile */
};
const struct mm_swim_stats *mm__swim_stats(const struct mm_swim *s);

#endif /* MM_SWIM_H */
