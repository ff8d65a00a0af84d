/*
 * swim.c — SWIM failure detection and gossip with the Lifeguard extensions,
 * as a sans-I/O state machine (see swim.h).
 *
 * Gossip packet format (plaintext; the glue seals it, see seal.h).  All
 * integers little-endian.
 *
 *   packet   = version u8 (= 2) | sender id [16] | count u8 | msg * count
 *   msg      = type u8 | len u16 | body [len]
 *
 * |count| makes every truncation detectable; no byte may follow the last
 * message.  A packet is at most packet_max (default 1347) bytes, so that the
 * sealed datagram (53 bytes more) stays within 1400.  Unknown message types
 * are skipped (their length is known); a known type whose body does not
 * decode exactly rejects the whole packet (MM_EDECODE, nothing applied).
 *
 *   type body
 *   0x01 PING      seq u32 | target id [16]      (all-zero target: anyone;
 *                                                  used by joins to seeds)
 *   0x02 PING_REQ  seq u32 | target id [16] | target addr | flags u8
 *                                                  (bit 0: send a nack)
 *   0x03 ACK       seq u32
 *   0x04 NACK      seq u32
 *   0x05 ALIVE     record (the member's own signed word: alive, or its
 *                  graceful leave when flags bit 0 is set)
 *   0x06 SUSPECT   id [16] | generation u64 | incarnation u64 | from id [16]
 *   0x07 FAILED    id [16] | generation u64 | incarnation u64 | from id [16]
 *   0x08 LEFT      id [16] | generation u64 | incarnation u64
 *                  (a forced leave: an opinion, like FAILED)
 *   0x09 DIGEST    digest u64 | members u32        (sender's mm__swim_digest)
 *
 *   addr     = family u8 (4 or 6) | ip [4 or 16] | port u16
 *   record   = id [16] | generation u64 | incarnation u64 | flags u8 |
 *              role u8 | addr | name_len u8 (1..63) | name |
 *              tags_len u8 (0..255) | tags | [pub [32] if flags bit 1] |
 *              sig [64]
 *              (name and tags hold no NUL byte; flags bit 0: the node left,
 *              bit 1: its Ed25519 public key follows; other bits 0)
 *   sig      = Ed25519 by the member's identity key over
 *              "murmer-swim-rec-v1" (18 bytes) | the record up to tags, with
 *              flags bit 1 cleared.  SHA-256(pub)[0..16] must be the id.
 *
 * Every packet starts with a DIGEST.  Pings and acks carry queued
 * broadcasts (ALIVE/SUSPECT/FAILED/LEFT) in whatever room is left; gossip
 * packets carry only the digest and broadcasts.  A ping to a member we
 * believe suspect also carries that SUSPECT (the buddy system), and a
 * re-probe of a failed member carries its FAILED, so either refutes at once.
 *
 * Push-pull state (exchanged by the glue over QUIC, not in datagrams):
 *
 *   state    = version u8 (= 1) | sender id [16] | count u32 | entry * count
 *   entry    = state u8 (0 alive, 1 suspect, 2 failed, 3 left) | len u16 |
 *              record [len]
 *
 * Ordering: a member is (generation, incarnation).  A newer generation is a
 * new process and replaces the record whatever its state; within one
 * generation SWIM's incarnation rules apply (alive needs a greater
 * incarnation; suspect, failed and left need at least an equal one).
 *
 * Who may say what: a record (ALIVE, or a push-pull entry's record) is the
 * member's own word and is believed only when newer than the one held and
 * its signature verifies (ops->verify); otherwise it is dropped and counted
 * (stats.forged), and so are the packet's or payload's later records,
 * unverified.  A record no newer than the one held is ignored before any
 * verification, so re-gossip costs nothing, and so is a gossiped graceful
 * leave of a member not held (it changes nothing).  SUSPECT, FAILED and LEFT
 * messages, and push-pull states other than alive, are opinions: they
 * never change a member's generation, address or tags, and an incarnation
 * above the signed one is read as the signed one.  A forced LEFT is taken
 * only for a member already suspect or failed and not heard from lately
 * (as a FAILED verdict is); for an alive one it is a suspicion.  A member
 * refutes any of these with a newly signed record at incarnation + 1.
 */
#include "membership/swim.h"

#include <math.h>
#include <stdio.h>

#include "core.h"
#include "membership/idx.h"

#define SWIM_VERSION 2
#define SWIM_HDR_LEN 18
/* A push-pull state: version | sender id | count u32 | want u32 | next u32
 * (docs/wire.md, Versions).  Its own version: a page position was added. */
#define SWIM_STATE_VERSION 3
#define SWIM_STATE_HDR (1 + MM_SWIM_ID_LEN + 12)
#define SWIM_PAGE_NONE UINT32_MAX
/* want = SWIM_PAGE_BACK | e: the page that ends at slot e (exclusive),
 * taken backwards; e = SWIM_PAGE_END: at the table's end. */
#define SWIM_PAGE_BACK 0x80000000u
#define SWIM_PAGE_END 0x7ffffffeu
/* Pages one walk pulls at most (256 members each): past it the walk ends
 * and differing digests ask for more the usual way, whatever a peer
 * answers. */
#define SWIM_WALK_PAGES_MAX 128u
#define SWIM_MSG_HDR 3
#define SWIM_REC_HEAD_MAX (16 + 8 + 8 + 1 + 1 + 19 + 1 + 63 + 1 + 255)
#define SWIM_REC_MAX (SWIM_REC_HEAD_MAX + MM_SWIM_PUB_LEN + MM_SWIM_SIG_LEN)
#define SWIM_REC_HAS_PUB 0x02
#define SWIM_SIG_LABEL "murmer-swim-rec-v1"
#define SWIM_SIG_LABEL_LEN 18
#define SWIM_FWD_MAX 64
#define SWIM_BCAST_MAX 1024
#define SWIM_MAX_MSGS 255
/* Entries a push-pull merge step takes at most, checked or not (decoding
 * and comparing one costs well under a microsecond). */
#define SWIM_MERGE_ENTRIES_MAX 256u
/* The smallest broadcast (a LEFT verdict), and how many in a row that do
 * not fit end pkt_fill's walk of the queue. */
#define SWIM_MSG_MIN (SWIM_MSG_HDR + MM_SWIM_ID_LEN + 16)
#define SWIM_FILL_MISSES_MAX 32u
/* mm_swim_member.counted: what the member counts for in nlisted, nlive. */
#define SWIM_COUNTED_LISTED 0x01u
#define SWIM_COUNTED_LIVE 0x02u

enum {
    MSG_PING = 1,
    MSG_PING_REQ = 2,
    MSG_ACK = 3,
    MSG_NACK = 4,
    MSG_ALIVE = 5,
    MSG_SUSPECT = 6,
    MSG_FAILED = 7,
    MSG_LEFT = 8,
    MSG_DIGEST = 9
};

/* A member record as carried by ALIVE and push-pull entries. */
struct swim_rec {
    uint8_t id[MM_SWIM_ID_LEN];
    uint64_t gen, inc;
    uint8_t flags; /* MM_SWIM_REC_LEFT only; has_pub says the rest */
    uint8_t role;
    struct mm_swim_addr addr;
    char name[MM_SWIM_NAME_MAX];
    char tags[MM_SWIM_TAGS_MAX];
    int has_pub;
    uint8_t pub[MM_SWIM_PUB_LEN];
    uint8_t sig[MM_SWIM_SIG_LEN];
};

/* One decoded message. */
struct swim_msg {
    uint8_t type;
    uint32_t seq;
    uint8_t id[MM_SWIM_ID_LEN];
    uint8_t from[MM_SWIM_ID_LEN];
    uint64_t gen, inc;
    struct mm_swim_addr addr;
    uint8_t flags;
    uint64_t digest;
    uint32_t nmembers;
    struct swim_rec rec;
};

/* A queued broadcast: one per member, the newest news wins.  An ALIVE
 * holds a reference to its record, written out when sent (the record is
 * immutable: the same bytes); the others are allocated to the size of
 * their message. */
struct swim_bcast {
    uint8_t about[MM_SWIM_ID_LEN];
    unsigned transmits;
    uint16_t len;                  /* of the whole message */
    const struct mm_swim_rec *rec; /* ALIVE: its record; msg is empty */
    uint8_t msg[];
};

/* An indirect probe we run for someone else. */
struct swim_fwd {
    int used, acked, want_nack;
    uint32_t our_seq, their_seq;
    struct mm_swim_addr requester;
    uint64_t nack_at, expire_at;
};

struct swim_seed {
    struct mm_swim_addr addr;
    uint64_t next_at, gap;
    uint32_t seq;
};

/* Builds one outgoing packet. */
struct swim_pkt {
    uint8_t buf[2048];
    size_t len, cap;
    unsigned count;
};

/* A record pool: records by content, in chains off a power-of-two table
 * that grows with them. */
struct mm_swim_pool {
    struct mm_swim_rec **tab; /* cap chains; owned with their records */
    size_t cap, n, bytes;
};

/* Members come from slabs (no allocator overhead per member; a member
 * never moves); a freed one goes on a free list, linked through its susp
 * field. */
struct swim_slab {
    struct swim_slab *next;
    size_t cap;
    struct mm_swim_member m[];
};
#define SWIM_SLAB_MIN 16u
#define SWIM_SLAB_MAX 1024u

struct mm_swim {
    struct mm_swim_config cfg; /* strings not kept: self holds them */
    struct mm_swim_ops ops;
    struct mm_swim_pool *pool; /* cfg.pool, or own_pool */
    struct mm_swim_pool *own_pool;
    struct swim_slab *slabs; /* owned; the newest first */
    size_t slab_used;        /* members taken from slabs->m */
    struct mm_swim_member *free_members;
    struct mm_swim_member **members; /* owned, each one owned */
    size_t nmembers, capmembers;
    struct mm_idx byid;          /* members[] by id (a member never moves) */
    struct mm_swim_member *self; /* borrowed from members[] */
    uint64_t now, rng;
    uint32_t seq;
    int awareness;

    /*
     * Probing: shuffled round-robin over members.  A member freed while
     * the order still names it stays as a ghost (in ghosts[]) until the
     * order is rebuilt: its entry then stands for its id, as when the
     * order held ids.
     */
    struct mm_swim_member **order; /* owned */
    size_t norder, order_pos, caporder;
    struct mm_swim_member **ghosts; /* owned, each one owned */
    size_t nghosts;
    uint64_t next_probe;
    struct {
        int active, acked, indirect_sent;
        uint8_t target[MM_SWIM_ID_LEN];
        uint32_t seq;
        uint64_t sent, timeout_at, end_at;
        unsigned expected_nacks, nacks;
        int graced; /* its end was put off once: we ran late */
    } probe;

    uint64_t next_gossip, last_gossip;
    struct swim_bcast **bq; /* owned; sorted by transmits, ascending */
    size_t nbq, capbq;
    struct mm_idx bqidx; /* bq[] by the member it is about */
    struct swim_fwd fwd[SWIM_FWD_MAX];

    struct swim_seed *seeds; /* owned */
    size_t nseeds;
    int joined;

    int leaving, leave_acked;
    uint64_t leave_start, leave_next;
    uint32_t leave_seq;

    int sync_in_flight, sync_pending;
    int sync_by_digest; /* the pending pull is for a differing digest */
    uint64_t sync_started, sync_at;
    uint8_t sync_peer[MM_SWIM_ID_LEN];
    uint64_t sync_peer_digest;
    uint32_t sync_peer_listed; /* members the pending pull's peer lists */
    /* Pulls for a differing digest: the last one began at sync_last, and
     * the next may not begin before sync_last + sync_gap.  The gap doubles
     * with every pull while digests keep differing (a join burst: gossip
     * is carrying the news anyway) up to cfg.sync_gap_max_ms, and is
     * cleared by a digest equal to ours. */
    uint64_t sync_last, sync_gap;
    size_t state_cursor; /* members[] slot the next state page starts at */
    /*
     * Paged pulls.  sync_want/sync_walk go with the pending pull, pull_*
     * with the one in flight: the page its answer should carry (a want,
     * see SWIM_PAGE_*), and whether it walks the sender's table (from its
     * end back, page after page, news or not).  serve_want is what a
     * peer's request asked of our next state (mm__swim_state_serve).
     */
    uint32_t sync_want, pull_want, serve_want;
    int sync_walk, pull_walk, serve_on;
    uint32_t walk_pages; /* pages the current walk pulled so far */
    /* A walk ends early once we list as many members as its peer did
     * (UINT32_MAX: it walks to the end). */
    uint32_t sync_walk_listed, pull_listed;
    uint8_t pull_peer[MM_SWIM_ID_LEN];
    uint64_t merge_verified; /* stats.verified when a merge began */

    /*
     * Set when a record of the packet or push-pull payload being applied
     * did not verify: an honest sender relays only records it verified,
     * so the rest of its records are dropped unverified (a forger pays
     * for one verification per packet or frame, not one per record).
     */
    int walk_forged;
    /* mm__swim_digest: the sum of the members' digest_part, each kept up
     * to date as the member changes (member_touch). */
    uint64_t digest;
    /* Listed (not tombstone) and live members, kept as each member changes
     * (member_touch: what a member counts for is in its |counted| bits). */
    size_t nlisted, nlive;
    /*
     * No later than the earliest thing due for any member (a suspicion's
     * end, a re-probe, a reap): every change that brings one forward
     * lowers it (member_due_note); the tick's walk sets it exactly.  So
     * mm__swim_deadline need not walk the members; a member whose
     * deadline went away costs at most one early tick.
     */
    uint64_t due;
    /* The members something may come due for (not alive: suspect, failed,
     * left, tombstones), kept by member_touch: a binary min-heap on a key
     * never later than what is due for the member (member_due_note brings
     * it forward; the tick sets it exactly once it looked).  m->due_slot
     * is the index + 1.  The tick takes what is due from the top, not a
     * walk of the set (500 failed members, each re-probed on its own
     * clock, made every re-probe a walk of all 500). */
    struct swim_due *dueset; /* owned */
    size_t ndueset, capdueset;
    /* A member was not added to dueset (out of memory): the tick adds
     * it before it walks. */
    int due_lost;
    struct mm_swim_stats stats;
};

static const uint8_t zero_id[MM_SWIM_ID_LEN];

/* The next capacity of a per-member table: by half, not double, so that
 * a large one wastes at most a third of itself. */
static size_t
swim_grow(size_t cap)
{
    return cap < 16 ? 16 : cap + cap / 2;
}

const char *
mm__swim_state_name(int state)
{
    switch (state) {
    case MM_SWIM_NONE:
        return "none";
    case MM_SWIM_ALIVE:
        return "alive";
    case MM_SWIM_SUSPECT:
        return "suspect";
    case MM_SWIM_FAILED:
        return "failed";
    case MM_SWIM_LEFT:
        return "left";
    case MM_SWIM_REAPED:
        return "reaped";
    }
    return "?";
}

/* ---- small helpers ----------------------------------------------------- */

static uint64_t
swim_rand(struct mm_swim *s)
{
    /* xorshift64* */
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t
swim_rand_below(struct mm_swim *s, size_t n)
{
    return n ? (size_t)(swim_rand(s) % n) : 0;
}

static uint64_t
swim_scale(const struct mm_swim *s, uint64_t ms)
{
    return ms * (uint64_t)(s->awareness + 1);
}

static void
swim_awareness_add(struct mm_swim *s, int delta)
{
    int max = (int)s->cfg.awareness_max - 1;
    int a = s->awareness + delta;
    if (a < 0) a = 0;
    if (a > max) a = max;
    if (a != s->awareness)
        MM_LOG(MM_LOG_DEBUG, "swim", "awareness %d -> %d", s->awareness, a);
    s->awareness = a;
}

static int
swim_live(const struct mm_swim_member *m)
{
    return !m->tombstone &&
           (m->state == MM_SWIM_ALIVE || m->state == MM_SWIM_SUSPECT);
}

static struct mm_swim_member *
swim_find(const struct mm_swim *s, const uint8_t *id)
{
    return mm__idx_find(&s->byid, id);
}

/* |m|'s share of the digest: (id, generation, incarnation, state), a
 * suspect hashed as alive; nothing for a tombstone. */
static uint64_t
member_digest_part(const struct mm_swim_member *m)
{
    uint8_t t[MM_SWIM_ID_LEN + 17];
    if (m->tombstone) return 0;
    memcpy(t, m->rec->id, MM_SWIM_ID_LEN);
    mm__put_u64(t + 16, m->rec->generation);
    mm__put_u64(t + 24, m->rec->incarnation);
    t[32] = (uint8_t)(m->state == MM_SWIM_SUSPECT ? MM_SWIM_ALIVE : m->state);
    return mm__hash_u64(mm__hash_bytes(t, sizeof(t)));
}

/* An entry of the due heap (struct mm_swim's dueset). */
struct swim_due {
    uint64_t key;
    struct mm_swim_member *m;
};

static uint64_t member_due(const struct mm_swim *s,
                           const struct mm_swim_member *m);

/* Whether the tick must look at |m| (it is in dueset). */
static int
member_due_wanted(const struct mm_swim_member *m)
{
    return !m->is_self && (m->tombstone || m->state != MM_SWIM_ALIVE);
}

static void
dueset_put(struct mm_swim *s, size_t i, struct swim_due e)
{
    s->dueset[i] = e;
    e.m->due_slot = (uint32_t)(i + 1);
}

/* The entry at |i| moves up while its key is below its parent's. */
static void
dueset_up(struct mm_swim *s, size_t i)
{
    struct swim_due e = s->dueset[i];
    while (i > 0 && s->dueset[(i - 1) / 2].key > e.key) {
        dueset_put(s, i, s->dueset[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    dueset_put(s, i, e);
}

/* The entry at |i| moves down while a child's key is below its own. */
static void
dueset_down(struct mm_swim *s, size_t i)
{
    struct swim_due e = s->dueset[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->ndueset) break;
        if (c + 1 < s->ndueset && s->dueset[c + 1].key < s->dueset[c].key) c++;
        if (s->dueset[c].key >= e.key) break;
        dueset_put(s, i, s->dueset[c]);
        i = c;
    }
    dueset_put(s, i, e);
}

/* 0, or -1 when out of memory. */
static int
dueset_add(struct mm_swim *s, struct mm_swim_member *m)
{
    if (s->ndueset == s->capdueset) {
        size_t cap = s->capdueset ? s->capdueset * 2 : 16;
        void *p = mm__realloc(s->dueset, cap * sizeof(s->dueset[0]));
        if (!p) return -1;
        s->dueset = p;
        s->capdueset = cap;
    }
    struct swim_due e = {member_due(s, m), m};
    dueset_put(s, s->ndueset++, e);
    dueset_up(s, s->ndueset - 1);
    if (e.key < s->due) s->due = e.key;
    return 0;
}

static void
dueset_remove(struct mm_swim *s, struct mm_swim_member *m)
{
    size_t i = m->due_slot - 1;
    struct swim_due last = s->dueset[--s->ndueset];
    m->due_slot = 0;
    if (i == s->ndueset) return;
    uint64_t was = s->dueset[i].key;
    dueset_put(s, i, last);
    if (last.key < was)
        dueset_up(s, i);
    else
        dueset_down(s, i);
}

/* |m|'s generation, incarnation, state or tombstone may have changed: its
 * share of the digest follows (O(1), not a walk per packet), and so do the
 * counts and whether the tick needs to look at it. */
static void
member_touch(struct mm_swim *s, struct mm_swim_member *m)
{
    uint64_t part = member_digest_part(m);
    s->digest += part - m->digest_part;
    m->digest_part = part;
    unsigned counted = (m->tombstone ? 0u : SWIM_COUNTED_LISTED) |
                       (swim_live(m) ? SWIM_COUNTED_LIVE : 0u);
    s->nlisted += !!(counted & SWIM_COUNTED_LISTED);
    s->nlisted -= !!(m->counted & SWIM_COUNTED_LISTED);
    s->nlive += !!(counted & SWIM_COUNTED_LIVE);
    s->nlive -= !!(m->counted & SWIM_COUNTED_LIVE);
    m->counted = (uint8_t)counted;
    int want = member_due_wanted(m);
    if (want && !m->due_slot) {
        if (dueset_add(s, m) != 0) s->due_lost = 1; /* the tick retries */
    } else if (!want && m->due_slot) {
        dueset_remove(s, m);
    }
}

static size_t
swim_listed(const struct mm_swim *s)
{
    return s->nlisted;
}

static size_t
swim_nlive(const struct mm_swim *s)
{
    return s->nlive;
}

/* A suspect's deadline (a suspect always has its susp; 0 = at once). */
static uint64_t
suspect_deadline(const struct mm_swim_member *m)
{
    return m->susp ? m->susp->suspect_deadline : 0;
}

/* A failed member's next re-probe (none without its susp: out of memory
 * when it failed). */
static uint64_t
reprobe_at(const struct mm_swim_member *m)
{
    return m->susp ? m->susp->reprobe_at : UINT64_MAX;
}

/* The earliest thing due for |m| (UINT64_MAX: nothing). */
static uint64_t
member_due(const struct mm_swim *s, const struct mm_swim_member *m)
{
    uint64_t d = UINT64_MAX;
    if (m->is_self) return d;
    if (m->tombstone)
        return m->state_since + s->cfg.reconnect_timeout_ms +
               s->cfg.tombstone_ms;
    if (m->state == MM_SWIM_SUSPECT) d = MM_MIN(d, suspect_deadline(m));
    if (m->state == MM_SWIM_FAILED || m->state == MM_SWIM_LEFT)
        d = MM_MIN(d, m->state_since + s->cfg.reconnect_timeout_ms);
    if (m->state == MM_SWIM_FAILED && !s->leaving) d = MM_MIN(d, reprobe_at(m));
    return d;
}

/* |m| changed: what is due for it may have come forward. */
static void
member_due_note(struct mm_swim *s, const struct mm_swim_member *m)
{
    uint64_t d = member_due(s, m);
    if (m->due_slot && d < s->dueset[m->due_slot - 1].key) {
        s->dueset[m->due_slot - 1].key = d;
        dueset_up(s, m->due_slot - 1);
    }
    if (d < s->due) s->due = d;
}

/* ---- out-of-line parts of a member ------------------------------------- */

static uint32_t
rec_hash(const uint8_t *id, uint64_t gen, uint64_t inc, const uint8_t *sig)
{
    uint8_t t[MM_SWIM_ID_LEN + 16 + MM_SWIM_SIG_LEN];
    memcpy(t, id, MM_SWIM_ID_LEN);
    mm__put_u64(t + 16, gen);
    mm__put_u64(t + 24, inc);
    memcpy(t + 32, sig, MM_SWIM_SIG_LEN);
    return (uint32_t)mm__hash_bytes(t, sizeof(t));
}

/* 1 when |x| holds exactly the record |r| with the key |pub|. */
static int
rec_same(const struct mm_swim_rec *x, const struct swim_rec *r,
         const uint8_t *pub)
{
    return memcmp(x->id, r->id, MM_SWIM_ID_LEN) == 0 &&
           x->generation == r->gen && x->incarnation == r->inc &&
           x->rec_flags == r->flags && x->role == r->role &&
           memcmp(&x->addr, &r->addr, sizeof(x->addr)) == 0 &&
           memcmp(x->sig, r->sig, MM_SWIM_SIG_LEN) == 0 &&
           memcmp(x->pub, pub, MM_SWIM_PUB_LEN) == 0 &&
           strcmp(x->name, r->name) == 0 && strcmp(x->tags, r->tags) == 0;
}

int
mm__swim_pool_new(struct mm_swim_pool **out)
{
    *out = mm__calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void
mm__swim_pool_free(struct mm_swim_pool *p)
{
    if (!p) return;
    /* Records still held (a core not freed) go too. */
    for (size_t i = 0; i < p->cap; i++) {
        struct mm_swim_rec *x = p->tab[i], *nx;
        for (; x; x = nx) {
            nx = x->next;
            mm__free(x);
        }
    }
    mm__free(p->tab);
    mm__free(p);
}

size_t
mm__swim_pool_count(const struct mm_swim_pool *p, size_t *bytes)
{
    if (bytes) *bytes = p->bytes + p->cap * sizeof(p->tab[0]);
    return p->n;
}

static struct mm_swim_rec *
pool_find(const struct mm_swim_pool *p, const struct swim_rec *r,
          const uint8_t *pub, uint32_t h)
{
    if (!p->cap) return NULL;
    for (struct mm_swim_rec *x = p->tab[h & (p->cap - 1)]; x; x = x->next)
        if (x->hash == h && rec_same(x, r, pub)) return x;
    return NULL;
}

static void
pool_grow(struct mm_swim_pool *p)
{
    size_t cap = p->cap ? p->cap * 2 : 64;
    struct mm_swim_rec **tab = mm__calloc(cap, sizeof(*tab));
    if (!tab) return; /* chains grow longer */
    for (size_t i = 0; i < p->cap; i++) {
        struct mm_swim_rec *x = p->tab[i], *nx;
        for (; x; x = nx) {
            nx = x->next;
            x->next = tab[x->hash & (cap - 1)];
            tab[x->hash & (cap - 1)] = x;
        }
    }
    mm__free(p->tab);
    p->tab = tab;
    p->cap = cap;
}

/* A new reference to the record |r| with the key |pub|: the pool's copy
 * if it holds one (then |verified| only raises its mark), else a new
 * one.  NULL when out of memory. */
static const struct mm_swim_rec *
rec_intern(struct mm_swim_pool *p, const struct swim_rec *r, const uint8_t *pub,
           int verified)
{
    uint32_t h = rec_hash(r->id, r->gen, r->inc, r->sig);
    struct mm_swim_rec *x = pool_find(p, r, pub, h);
    if (x) {
        x->refs++;
        if (verified) x->verified = 1;
        return x;
    }
    if (p->n >= p->cap) pool_grow(p);
    if (!p->cap) return NULL;
    size_t nl = strlen(r->name) + 1, tl = strlen(r->tags) + 1;
    size_t sz = sizeof(*x) + nl + tl;
    x = mm__malloc(sz);
    if (!x) return NULL;
    memcpy(x->id, r->id, MM_SWIM_ID_LEN);
    x->role = r->role;
    x->rec_flags = r->flags;
    x->verified = verified != 0;
    memcpy(&x->addr, &r->addr, sizeof(x->addr));
    x->generation = r->gen;
    x->incarnation = r->inc;
    memcpy(x->pub, pub, MM_SWIM_PUB_LEN);
    memcpy(x->sig, r->sig, MM_SWIM_SIG_LEN);
    memcpy(x->name, r->name, nl);
    memcpy(x->name + nl, r->tags, tl);
    x->tags = x->name + nl;
    x->refs = 1;
    x->hash = h;
    x->next = p->tab[h & (p->cap - 1)];
    p->tab[h & (p->cap - 1)] = x;
    p->n++;
    p->bytes += sz;
    return x;
}

static void
rec_unref(struct mm_swim_pool *p, const struct mm_swim_rec *cx)
{
    struct mm_swim_rec *x = (struct mm_swim_rec *)cx, **pp;
    if (!x || --x->refs > 0) return;
    for (pp = &p->tab[x->hash & (p->cap - 1)]; *pp != x; pp = &(*pp)->next)
        ;
    *pp = x->next;
    p->n--;
    p->bytes -= sizeof(*x) + strlen(x->name) + 1 + strlen(x->tags) + 1;
    mm__free(x);
}

/* |m| holds |rec| (a reference the caller gives it) from now on. */
static void
member_rec_set(struct mm_swim *s, struct mm_swim_member *m,
               const struct mm_swim_rec *rec)
{
    const struct mm_swim_rec *old = m->rec;
    m->rec = rec;
    rec_unref(s->pool, old);
}

/* A record as decoded, from what |x| holds (its key included). */
static void
rec_unpack(struct swim_rec *r, const struct mm_swim_rec *x)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->id, x->id, MM_SWIM_ID_LEN);
    r->gen = x->generation;
    r->inc = x->incarnation;
    r->flags = x->rec_flags;
    r->role = x->role;
    memcpy(&r->addr, &x->addr, sizeof(r->addr));
    snprintf(r->name, sizeof(r->name), "%s", x->name);
    snprintf(r->tags, sizeof(r->tags), "%s", x->tags);
    r->has_pub = 1;
    memcpy(r->pub, x->pub, MM_SWIM_PUB_LEN);
    memcpy(r->sig, x->sig, MM_SWIM_SIG_LEN);
}

/* |m|'s susp, made when it has none; NULL when out of memory. */
static struct mm_swim_susp *
member_susp(struct mm_swim_member *m)
{
    if (!m->susp) m->susp = mm__calloc(1, sizeof(*m->susp));
    return m->susp;
}

static void
susp_free(struct mm_swim_member *m)
{
    if (!m->susp) return;
    mm__free(m->susp->confirmers);
    mm__free(m->susp);
    m->susp = NULL;
}

static void
confirmers_clear(struct mm_swim_member *m)
{
    struct mm_swim_susp *x = m->susp;
    if (!x) return;
    mm__free(x->confirmers);
    x->confirmers = NULL;
    x->confirmations = x->nconfirmers = 0;
}

/* A zeroed member from the slabs; NULL when out of memory. */
static struct mm_swim_member *
member_alloc(struct mm_swim *s)
{
    struct mm_swim_member *m = s->free_members;
    if (m) {
        s->free_members = (struct mm_swim_member *)(void *)m->susp;
    } else {
        if (!s->slabs || s->slab_used == s->slabs->cap) {
            size_t cap = s->slabs ? s->slabs->cap * 2 : SWIM_SLAB_MIN;
            if (cap > SWIM_SLAB_MAX) cap = SWIM_SLAB_MAX;
            struct swim_slab *sl =
                mm__malloc(sizeof(*sl) + cap * sizeof(sl->m[0]));
            if (!sl) return NULL;
            sl->next = s->slabs;
            sl->cap = cap;
            s->slabs = sl;
            s->slab_used = 0;
        }
        m = &s->slabs->m[s->slab_used++];
    }
    memset(m, 0, sizeof(*m));
    return m;
}

static void
member_free(struct mm_swim *s, struct mm_swim_member *m)
{
    rec_unref(s->pool, m->rec);
    susp_free(m);
    m->rec = NULL;
    m->susp = (struct mm_swim_susp *)(void *)s->free_members;
    s->free_members = m;
}

/* ---- encoding ---------------------------------------------------------- */

struct swim_rd {
    const uint8_t *p;
    size_t n;
    int err;
};

static void
rd_bytes(struct swim_rd *r, void *out, size_t n)
{
    if (r->err || r->n < n) {
        r->err = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->n -= n;
}

static uint8_t
rd_u8(struct swim_rd *r)
{
    uint8_t v;
    rd_bytes(r, &v, 1);
    return v;
}

static uint16_t
rd_u16(struct swim_rd *r)
{
    uint8_t b[2];
    rd_bytes(r, b, 2);
    return mm__get_u16(b);
}

static uint32_t
rd_u32(struct swim_rd *r)
{
    uint8_t b[4];
    rd_bytes(r, b, 4);
    return mm__get_u32(b);
}

static uint64_t
rd_u64(struct swim_rd *r)
{
    uint8_t b[8];
    rd_bytes(r, b, 8);
    return mm__get_u64(b);
}

static void
rd_addr(struct swim_rd *r, struct mm_swim_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->family = rd_u8(r);
    if (a->family == 4)
        rd_bytes(r, a->ip, 4);
    else if (a->family == 6)
        rd_bytes(r, a->ip, 16);
    else
        r->err = 1;
    a->port = rd_u16(r);
}

/* A length-prefixed string without NUL bytes; |max| includes the NUL. */
static void
rd_str(struct swim_rd *r, char *out, size_t max, int allow_empty)
{
    size_t n = rd_u8(r);
    out[0] = '\0';
    if (r->err || n >= max || (!allow_empty && n == 0) || r->n < n) {
        r->err = 1;
        return;
    }
    memcpy(out, r->p, n);
    out[n] = '\0';
    if (memchr(out, '\0', n)) r->err = 1;
    r->p += n;
    r->n -= n;
}

static void
rd_rec(struct swim_rd *r, struct swim_rec *rec)
{
    rd_bytes(r, rec->id, MM_SWIM_ID_LEN);
    rec->gen = rd_u64(r);
    rec->inc = rd_u64(r);
    uint8_t flags = rd_u8(r);
    if (flags & ~(MM_SWIM_REC_LEFT | SWIM_REC_HAS_PUB)) r->err = 1;
    rec->flags = flags & MM_SWIM_REC_LEFT;
    rec->role = rd_u8(r);
    rd_addr(r, &rec->addr);
    rd_str(r, rec->name, sizeof(rec->name), 0);
    rd_str(r, rec->tags, sizeof(rec->tags), 1);
    rec->has_pub = (flags & SWIM_REC_HAS_PUB) != 0;
    if (rec->has_pub)
        rd_bytes(r, rec->pub, MM_SWIM_PUB_LEN);
    else
        memset(rec->pub, 0, sizeof(rec->pub));
    rd_bytes(r, rec->sig, MM_SWIM_SIG_LEN);
}

static size_t
wr_addr(uint8_t *p, const struct mm_swim_addr *a)
{
    size_t n = a->family == 6 ? 16 : 4;
    p[0] = a->family == 6 ? 6 : 4;
    memcpy(p + 1, a->ip, n);
    mm__put_u16(p + 1 + n, a->port);
    return 1 + n + 2;
}

/* Writes the signed part of a record (flags without the key bit); |p| has
 * room for SWIM_REC_HEAD_MAX. */
static size_t
wr_rec_head(uint8_t *p, const uint8_t *id, uint64_t gen, uint64_t inc,
            uint8_t flags, uint8_t role, const struct mm_swim_addr *addr,
            const char *name, const char *tags)
{
    size_t o = 0, n;
    memcpy(p, id, MM_SWIM_ID_LEN);
    o += MM_SWIM_ID_LEN;
    mm__put_u64(p + o, gen);
    o += 8;
    mm__put_u64(p + o, inc);
    o += 8;
    p[o++] = flags;
    p[o++] = role;
    o += wr_addr(p + o, addr);
    n = strlen(name);
    p[o++] = (uint8_t)n;
    memcpy(p + o, name, n);
    o += n;
    n = strlen(tags);
    p[o++] = (uint8_t)n;
    memcpy(p + o, tags, n);
    o += n;
    return o;
}

/* The bytes a record's signature covers: label | head.  |p| has room for
 * SWIM_SIG_LABEL_LEN + SWIM_REC_HEAD_MAX. */
static size_t
rec_tbs(uint8_t *p, const struct swim_rec *r)
{
    memcpy(p, SWIM_SIG_LABEL, SWIM_SIG_LABEL_LEN);
    return SWIM_SIG_LABEL_LEN + wr_rec_head(p + SWIM_SIG_LABEL_LEN, r->id,
                                            r->gen, r->inc, r->flags, r->role,
                                            &r->addr, r->name, r->tags);
}

/* Writes a record with its key and signature; |p| has room for
 * SWIM_REC_MAX. */
static size_t
wr_rec(uint8_t *p, const struct mm_swim_rec *x)
{
    size_t o = wr_rec_head(p, x->id, x->generation, x->incarnation,
                           x->rec_flags, x->role, &x->addr, x->name, x->tags);
    p[MM_SWIM_ID_LEN + 16] |= SWIM_REC_HAS_PUB;
    memcpy(p + o, x->pub, MM_SWIM_PUB_LEN);
    o += MM_SWIM_PUB_LEN;
    memcpy(p + o, x->sig, MM_SWIM_SIG_LEN);
    return o + MM_SWIM_SIG_LEN;
}

/* The bytes wr_rec writes for |x|. */
static size_t
rec_wire_len(const struct mm_swim_rec *x)
{
    return MM_SWIM_ID_LEN + 16 + 2 + (x->addr.family == 6 ? 19 : 7) + 1 +
           strlen(x->name) + 1 + strlen(x->tags) + MM_SWIM_PUB_LEN +
           MM_SWIM_SIG_LEN;
}

/* Decodes one message body of |type|; 0 or -1. */
static int
swim_decode_body(uint8_t type, const uint8_t *p, size_t n, struct swim_msg *m)
{
    struct swim_rd r = {p, n, 0};
    m->type = type;
    switch (type) {
    case MSG_PING:
        m->seq = rd_u32(&r);
        rd_bytes(&r, m->id, MM_SWIM_ID_LEN);
        break;
    case MSG_PING_REQ:
        m->seq = rd_u32(&r);
        rd_bytes(&r, m->id, MM_SWIM_ID_LEN);
        rd_addr(&r, &m->addr);
        m->flags = rd_u8(&r);
        break;
    case MSG_ACK:
    case MSG_NACK:
        m->seq = rd_u32(&r);
        break;
    case MSG_ALIVE:
        rd_rec(&r, &m->rec);
        break;
    case MSG_SUSPECT:
    case MSG_FAILED:
    case MSG_LEFT:
        rd_bytes(&r, m->id, MM_SWIM_ID_LEN);
        m->gen = rd_u64(&r);
        m->inc = rd_u64(&r);
        if (type != MSG_LEFT) rd_bytes(&r, m->from, MM_SWIM_ID_LEN);
        break;
    case MSG_DIGEST:
        m->digest = rd_u64(&r);
        m->nmembers = rd_u32(&r);
        break;
    default:
        m->type = 0; /* unknown: skipped */
        return 0;
    }
    return r.err || r.n != 0 ? -1 : 0;
}

/* ---- packets ----------------------------------------------------------- */

static void
pkt_begin(struct mm_swim *s, struct swim_pkt *b)
{
    b->cap = MM_MIN((size_t)s->cfg.packet_max, sizeof(b->buf));
    b->buf[0] = SWIM_VERSION;
    memcpy(b->buf + 1, s->self->rec->id, MM_SWIM_ID_LEN);
    b->buf[17] = 0;
    b->len = SWIM_HDR_LEN;
    b->count = 0;
}

static int
pkt_room(const struct swim_pkt *b, size_t body)
{
    return b->count < SWIM_MAX_MSGS && b->len + SWIM_MSG_HDR + body <= b->cap;
}

/* Reserves a message of |blen| body bytes; NULL when it does not fit. */
static uint8_t *
pkt_add(struct swim_pkt *b, uint8_t type, size_t blen)
{
    if (!pkt_room(b, blen)) return NULL;
    uint8_t *p = b->buf + b->len;
    p[0] = type;
    mm__put_u16(p + 1, (uint16_t)blen);
    b->len += SWIM_MSG_HDR + blen;
    b->count++;
    return p + SWIM_MSG_HDR;
}

static int
pkt_add_raw(struct swim_pkt *b, const uint8_t *msg, size_t len)
{
    if (b->count >= SWIM_MAX_MSGS || b->len + len > b->cap) return -1;
    memcpy(b->buf + b->len, msg, len);
    b->len += len;
    b->count++;
    return 0;
}

/* The ALIVE of |x|, |len| bytes in all (bcast_alive). */
static int
pkt_add_rec(struct swim_pkt *b, const struct mm_swim_rec *x, size_t len)
{
    if (b->count >= SWIM_MAX_MSGS || b->len + len > b->cap) return -1;
    uint8_t *p = b->buf + b->len;
    p[0] = MSG_ALIVE;
    mm__put_u16(p + 1, (uint16_t)(len - SWIM_MSG_HDR));
    wr_rec(p + SWIM_MSG_HDR, x);
    b->len += len;
    b->count++;
    return 0;
}

static void
pkt_add_seq(struct swim_pkt *b, uint8_t type, uint32_t seq)
{
    uint8_t *p = pkt_add(b, type, 4);
    if (p) mm__put_u32(p, seq);
}

static void
pkt_add_ping(struct swim_pkt *b, uint32_t seq, const uint8_t *target)
{
    uint8_t *p = pkt_add(b, MSG_PING, 4 + MM_SWIM_ID_LEN);
    if (!p) return;
    mm__put_u32(p, seq);
    memcpy(p + 4, target ? target : zero_id, MM_SWIM_ID_LEN);
}

static void
pkt_add_alive(struct swim_pkt *b, const struct mm_swim_member *m)
{
    uint8_t tmp[SWIM_REC_MAX];
    size_t n = wr_rec(tmp, m->rec);
    uint8_t *p = pkt_add(b, MSG_ALIVE, n);
    if (p) memcpy(p, tmp, n);
}

/* SUSPECT, FAILED or LEFT about |m| into |out|; returns the message size. */
static size_t
msg_verdict(uint8_t *out, uint8_t type, const struct mm_swim_member *m,
            const uint8_t *from)
{
    size_t blen = MM_SWIM_ID_LEN + 16 + (type == MSG_LEFT ? 0 : 16);
    out[0] = type;
    mm__put_u16(out + 1, (uint16_t)blen);
    uint8_t *p = out + SWIM_MSG_HDR;
    memcpy(p, m->rec->id, MM_SWIM_ID_LEN);
    mm__put_u64(p + 16, m->rec->generation);
    mm__put_u64(p + 24, m->rec->incarnation);
    if (type != MSG_LEFT) memcpy(p + 32, from, MM_SWIM_ID_LEN);
    return SWIM_MSG_HDR + blen;
}

unsigned
mm__swim_retransmit_limit(const struct mm_swim *s)
{
    /* mult * ceil(log10(n + 1)), in integers. */
    size_t n = swim_listed(s) + 1;
    unsigned digits = 0;
    for (size_t p = 1; p < n; p *= 10)
        digits++;
    if (digits == 0) digits = 1;
    return s->cfg.retransmit_mult * digits;
}

/*
 * Puts back the broadcasts pkt_fill sent (their slots in bq[0, walked) are
 * NULL; |sent| in queue order): the queue closes up, then each goes after
 * the last one sent no more often, so the queue stays sorted by transmits
 * at the cost of a binary search and a move each (not an insertion sort
 * of the whole queue a packet).
 */
static void
bq_reinsert(struct mm_swim *s, size_t walked, struct swim_bcast **sent,
            size_t nsent)
{
    size_t o = 0;
    for (size_t i = 0; i < walked; i++)
        if (s->bq[i]) s->bq[o++] = s->bq[i];
    memmove(&s->bq[o], &s->bq[walked], (s->nbq - walked) * sizeof(s->bq[0]));
    s->nbq -= nsent;
    for (size_t k = 0; k < nsent; k++) {
        size_t lo = 0, hi = s->nbq;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->bq[mid]->transmits <= sent[k]->transmits)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&s->bq[lo + 1], &s->bq[lo], (s->nbq - lo) * sizeof(s->bq[0]));
        s->bq[lo] = sent[k];
        s->nbq++;
    }
}

static void
bcast_free(struct mm_swim *s, struct swim_bcast *b)
{
    rec_unref(s->pool, b->rec);
    mm__free(b);
}

static void
bq_remove(struct mm_swim *s, size_t i)
{
    mm__idx_remove(&s->bqidx, s->bq[i]);
    bcast_free(s, s->bq[i]);
    memmove(&s->bq[i], &s->bq[i + 1], (s->nbq - i - 1) * sizeof(s->bq[0]));
    s->nbq--;
}

/* Queues |msg| (a whole message of |len| bytes), or the ALIVE of |rec|
 * (then |msg| is NULL and |rec| a reference it takes), as the latest news
 * about |about|. */
static void
bq_push(struct mm_swim *s, const uint8_t *about, const uint8_t *msg, size_t len,
        const struct mm_swim_rec *rec)
{
    struct swim_bcast *old = mm__idx_find(&s->bqidx, about);
    if (old) {
        /* Found by id; its place in the queue by pointer. */
        for (size_t i = 0; i < s->nbq; i++) {
            if (s->bq[i] == old) {
                bq_remove(s, i);
                break;
            }
        }
    }
    if (s->nbq == SWIM_BCAST_MAX)
        bq_remove(s, s->nbq - 1); /* the most transmitted */
    if (s->nbq == s->capbq) {
        size_t cap = s->capbq ? s->capbq * 2 : 16;
        void *p = mm__realloc(s->bq, cap * sizeof(s->bq[0]));
        if (!p) {
            rec_unref(s->pool, rec);
            return;
        }
        s->bq = p;
        s->capbq = cap;
    }
    struct swim_bcast *b = mm__malloc(sizeof(*b) + (msg ? len : 0));
    if (!b) {
        rec_unref(s->pool, rec);
        return;
    }
    memcpy(b->about, about, MM_SWIM_ID_LEN);
    b->rec = rec;
    if (mm__idx_insert(&s->bqidx, b) != 0) {
        bcast_free(s, b);
        return;
    }
    b->transmits = 0;
    b->len = (uint16_t)len;
    if (msg) memcpy(b->msg, msg, len);
    /* Newest first among the never-sent. */
    memmove(&s->bq[1], &s->bq[0], s->nbq * sizeof(s->bq[0]));
    s->bq[0] = b;
    s->nbq++;
}

static void
bcast_alive(struct mm_swim *s, const struct mm_swim_member *m)
{
    struct mm_swim_rec *x = (struct mm_swim_rec *)m->rec;
    x->refs++; /* the queue's */
    bq_push(s, x->id, NULL, SWIM_MSG_HDR + rec_wire_len(x), x);
}

static void
bcast_verdict(struct mm_swim *s, uint8_t type, const struct mm_swim_member *m,
              const uint8_t *from)
{
    uint8_t msg[64];
    size_t n = msg_verdict(msg, type, m, from);
    bq_push(s, m->rec->id, msg, n, NULL);
}

/* Fills the rest of |b| with broadcasts, least transmitted first;
 * returns how many went in.  The walk ends when no message can fit any
 * more, or after SWIM_FILL_MISSES_MAX in a row that did not (the queue is
 * up to SWIM_BCAST_MAX long; its tail is the most transmitted news). */
static unsigned
pkt_fill(struct mm_swim *s, struct swim_pkt *b)
{
    unsigned limit = mm__swim_retransmit_limit(s), added = 0, misses = 0;
    struct swim_bcast *sent[SWIM_MAX_MSGS];
    size_t nsent = 0, i = 0;
    for (; i < s->nbq && misses < SWIM_FILL_MISSES_MAX;) {
        struct swim_bcast *q = s->bq[i];
        if (b->count >= SWIM_MAX_MSGS || b->cap - b->len < SWIM_MSG_MIN) break;
        if ((q->rec ? pkt_add_rec(b, q->rec, q->len)
                    : pkt_add_raw(b, q->msg, q->len)) == 0) {
            added++;
            misses = 0;
            if (++q->transmits >= limit) {
                bq_remove(s, i);
                continue;
            }
            /* Out of the queue for now; back in at its new place below. */
            sent[nsent++] = q;
            s->bq[i] = NULL;
        } else {
            misses++;
        }
        i++;
    }
    if (nsent) bq_reinsert(s, i, sent, nsent);
    if (s->nbq == 0 && s->capbq) {
        /* Drained: the queue's tables go until there is news again (a
         * join burst grows them; most of the time they are empty). */
        mm__free(s->bq);
        s->bq = NULL;
        s->capbq = 0;
        mm__idx_free(&s->bqidx);
    }
    return added;
}

/* Every packet opens with our digest. */
static void
pkt_start(struct mm_swim *s, struct swim_pkt *b)
{
    pkt_begin(s, b);
    uint8_t *p = pkt_add(b, MSG_DIGEST, 12);
    mm__put_u64(p, mm__swim_digest(s));
    mm__put_u32(p + 8, (uint32_t)swim_listed(s));
}

static void
pkt_send(struct mm_swim *s, struct swim_pkt *b, const struct mm_swim_addr *to)
{
    b->buf[17] = (uint8_t)b->count;
    s->stats.packets_out++;
    if (s->ops.send) s->ops.send(s->ops.data, to, b->buf, b->len);
}

/* ---- digest ------------------------------------------------------------ */

uint64_t
mm__swim_digest(struct mm_swim *s)
{
    return s->digest;
}

/* ---- state transitions ------------------------------------------------- */

static int
swim_edge_ok(int was, int to)
{
    switch (to) {
    case MM_SWIM_ALIVE:
    case MM_SWIM_LEFT:
        return 1;
    case MM_SWIM_SUSPECT:
        return was == MM_SWIM_ALIVE;
    case MM_SWIM_FAILED:
        return was == MM_SWIM_ALIVE || was == MM_SWIM_SUSPECT;
    }
    return 0;
}

static void
swim_emit(struct mm_swim *s, const struct mm_swim_member *m, int was)
{
    member_due_note(s, m);
    if (s->ops.changed) s->ops.changed(s->ops.data, m, was);
}

/* The one transition function of a member's state machine. */
static void
member_set(struct mm_swim *s, struct mm_swim_member *m, int to, const char *why)
{
    int was = m->state;
    if (was == to) return;
    MM_ASSERT(swim_edge_ok(was, to));
    m->state = to;
    m->state_since = s->now;
    if (to == MM_SWIM_SUSPECT) s->stats.suspicions++;
    if (to == MM_SWIM_FAILED) {
        /* Out of memory, it is not re-probed (reprobe_at). */
        struct mm_swim_susp *x = member_susp(m);
        confirmers_clear(m);
        if (x) {
            x->suspect_start = x->suspect_deadline = 0;
            x->reprobe_gap = s->cfg.reprobe_min_ms;
            x->reprobe_at = s->now + x->reprobe_gap;
        }
    } else if (to != MM_SWIM_SUSPECT) {
        susp_free(m);
    }
    member_touch(s, m);
    MM_LOG(MM_LOG_INFO, "swim", "%s: %s -> %s (%s)", m->rec->name,
           mm__swim_state_name(was), mm__swim_state_name(to), why);
    swim_emit(s, m, was);
}

void
mm__swim_suspicion_bounds(const struct mm_swim *s, uint64_t *min_ms,
                          uint64_t *max_ms)
{
    double n = (double)swim_listed(s);
    double f = n >= 10 ? log10(n) : 1.0;
    uint64_t mn = (uint64_t)((double)s->cfg.suspicion_mult * f *
                             (double)s->cfg.probe_interval_ms);
    *min_ms = mn;
    *max_ms = mn * s->cfg.suspicion_max_mult;
}

uint64_t
mm__swim_suspicion_timeout(uint64_t min_ms, uint64_t max_ms, unsigned k,
                           unsigned c)
{
    if (k < 1 || max_ms <= min_ms) return min_ms;
    double frac = log((double)c + 1.0) / log((double)k + 1.0);
    double cut = frac * (double)(max_ms - min_ms);
    if (cut >= (double)(max_ms - min_ms)) return min_ms;
    uint64_t t = max_ms - (uint64_t)cut;
    return t < min_ms ? min_ms : t;
}

/* Confirmations needed to reach the minimum (0 in tiny clusters). */
static unsigned
swim_suspicion_k(const struct mm_swim *s)
{
    unsigned k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
    size_t n = swim_listed(s);
    if (n < 2 || n - 2 < k) k = 0;
    return k;
}

static void
suspicion_update(struct mm_swim *s, struct mm_swim_member *m)
{
    uint64_t mn, mx;
    struct mm_swim_susp *x = m->susp;
    if (!x) return; /* a suspect always has one */
    mm__swim_suspicion_bounds(s, &mn, &mx);
    x->suspect_deadline =
        x->suspect_start + mm__swim_suspicion_timeout(
                               mn, mx, swim_suspicion_k(s), x->confirmations);
    member_due_note(s, m);
}

/* Records |from| as a confirmer; 1 if it was new.  The list is allocated
 * on the first (only suspects have one); out of memory, a confirmation
 * is not counted (the suspicion runs its longer course). */
static int
suspicion_confirm(struct mm_swim_member *m, const uint8_t *from)
{
    struct mm_swim_susp *x = m->susp;
    if (!x) return 0;
    for (unsigned i = 0; i < x->nconfirmers; i++)
        if (memcmp(x->confirmers[i], from, MM_SWIM_ID_LEN) == 0) return 0;
    if (x->nconfirmers < MM_SWIM_CONFIRM_MAX) {
        if (!x->confirmers) {
            x->confirmers =
                mm__malloc(MM_SWIM_CONFIRM_MAX * sizeof(x->confirmers[0]));
            if (!x->confirmers) return 0;
        }
        memcpy(x->confirmers[x->nconfirmers++], from, MM_SWIM_ID_LEN);
    }
    return 1;
}

/* Signs |r| (our own record) in place. */
static void
self_sign(struct mm_swim *s, struct swim_rec *r)
{
    uint8_t tbs[SWIM_SIG_LABEL_LEN + SWIM_REC_HEAD_MAX];
    size_t n = rec_tbs(tbs, r);
    if (s->ops.sign(s->ops.data, tbs, n, r->sig) != 0) {
        memset(r->sig, 0, sizeof(r->sig));
        MM_LOG(MM_LOG_ERR, "swim", "cannot sign our own record");
    }
}

/* Our record at incarnation |inc| with |flags| and |tags| (NULL: as
 * they are), signed, replaces the one we hold: 0, or -ENOMEM (nothing
 * changed). */
static int
self_resign(struct mm_swim *s, uint64_t inc, uint8_t flags, const char *tags)
{
    struct swim_rec r;
    rec_unpack(&r, s->self->rec);
    r.inc = inc;
    r.flags = flags;
    if (tags) snprintf(r.tags, sizeof(r.tags), "%s", tags);
    self_sign(s, &r);
    const struct mm_swim_rec *x = rec_intern(s->pool, &r, r.pub, 0);
    if (!x) {
        MM_LOG(MM_LOG_ERR, "swim", "out of memory: our record not changed");
        return -ENOMEM;
    }
    member_rec_set(s, s->self, x);
    return 0;
}

/*
 * 0 when |r| carries its member's valid signature, with *out a new
 * reference to it as the pool holds it (NULL when out of memory); else
 * counts a forgery.  The key is the record's own, or the one |known|
 * holds (a member's key never changes: its hash is the id).  A record the
 * pool holds already, checked, key and all, is valid without a second
 * check: the check is a function of exactly those bytes.
 */
static int
rec_verify(struct mm_swim *s, const struct swim_rec *r,
           const struct mm_swim_member *known, const struct mm_swim_rec **out)
{
    uint8_t tbs[SWIM_SIG_LABEL_LEN + SWIM_REC_HEAD_MAX];
    const uint8_t *pub = r->has_pub ? r->pub : known ? known->rec->pub : NULL;
    *out = NULL;
    if (!s->walk_forged && pub) {
        uint32_t h = rec_hash(r->id, r->gen, r->inc, r->sig);
        const struct mm_swim_rec *hit = pool_find(s->pool, r, pub, h);
        int ok = hit && hit->verified;
        if (!ok) {
            size_t n = rec_tbs(tbs, r);
            ok = s->ops.verify(s->ops.data, r->id, pub, tbs, n, r->sig) == 0;
        }
        if (ok) {
            s->stats.verified++;
            *out = rec_intern(s->pool, r, pub, 1);
            return 0;
        }
    }
    s->walk_forged = 1;
    s->stats.forged++;
    MM_LOG(MM_LOG_DEBUG, "swim",
           "dropped a record for %s (generation %llu, incarnation %llu): "
           "not signed by that node",
           r->name, (unsigned long long)r->gen, (unsigned long long)r->inc);
    return -1;
}

/*
 * Someone holds an opinion of us (suspect, failed, left) at incarnation
 * |inc| of our generation: say we are alive at a greater one.  The
 * opinion's incarnation is not trusted beyond ours (we signed none
 * greater), so a forged one cannot run ours to the end of its range.
 */
static void
swim_refute(struct mm_swim *s, uint64_t inc, const char *why)
{
    struct mm_swim_member *self = s->self;
    (void)inc;
    if (s->leaving || self->rec->incarnation == UINT64_MAX) return;
    if (self_resign(s, self->rec->incarnation + 1, 0, NULL) != 0) return;
    swim_awareness_add(s, 1);
    s->stats.refutations++;
    member_touch(s, self);
    MM_LOG(MM_LOG_INFO, "swim", "refuting %s with incarnation %llu", why,
           (unsigned long long)self->rec->incarnation);
    if (self->state != MM_SWIM_ALIVE)
        member_set(s, self, MM_SWIM_ALIVE, "refuted");
    bcast_alive(s, self);
}

/* ---- member table ------------------------------------------------------ */

static void
order_insert(struct mm_swim *s, struct mm_swim_member *m)
{
    if (s->norder == s->caporder) {
        size_t cap = swim_grow(s->caporder);
        void *p = mm__realloc(s->order, cap * sizeof(s->order[0]));
        if (!p) return;
        s->order = p;
        s->caporder = cap;
    }
    /* At a random place among those not yet probed this round. */
    size_t j = s->order_pos + swim_rand_below(s, s->norder - s->order_pos + 1);
    s->order[s->norder] = m;
    if (j != s->norder) {
        s->order[s->norder] = s->order[j];
        s->order[j] = m;
    }
    s->norder++;
}

static int
rec_differs(const struct mm_swim_member *m, const struct swim_rec *r)
{
    return strcmp(m->rec->name, r->name) != 0 ||
           strcmp(m->rec->tags, r->tags) != 0 || m->rec->role != r->role ||
           memcmp(&m->rec->addr, &r->addr, sizeof(r->addr)) != 0;
}

/*
 * A member is new, or has a new generation: its record goes out in a
 * gossip round MM_SWIM_NEWS_GAP_DIV times sooner than the next regular
 * one would (never sooner after the last round than that), so that each
 * hop of a join costs a fraction of an interval, not half of one on
 * average.  Rounds stay that far apart: a burst of joins is at most that
 * many rounds an interval.
 */
static void
gossip_news_soon(struct mm_swim *s)
{
    uint64_t t =
        s->last_gossip + s->cfg.gossip_interval_ms / MM_SWIM_NEWS_GAP_DIV;
    if (t < s->now) t = s->now;
    if (t < s->next_gossip) s->next_gossip = t;
}

/* Adds a member holding |rec| (the caller's reference, which it takes;
 * NULL: out of memory, nothing added). */
static struct mm_swim_member *
member_add(struct mm_swim *s, const struct mm_swim_rec *rec, int state)
{
    if (!rec) return NULL;
    if (s->nmembers >= MM_SWIM_MEMBERS_MAX) {
        MM_LOG(MM_LOG_WARN, "swim", "member table full (%u): %s ignored",
               (unsigned)MM_SWIM_MEMBERS_MAX, rec->name);
        rec_unref(s->pool, rec);
        return NULL;
    }
    if (s->nmembers == s->capmembers) {
        size_t cap = swim_grow(s->capmembers);
        void *p = mm__realloc(s->members, cap * sizeof(s->members[0]));
        if (!p) {
            rec_unref(s->pool, rec);
            return NULL;
        }
        s->members = p;
        s->capmembers = cap;
    }
    struct mm_swim_member *m = member_alloc(s);
    if (!m) {
        rec_unref(s->pool, rec);
        return NULL;
    }
    m->rec = rec;
    if (mm__idx_insert(&s->byid, m) != 0) {
        member_free(s, m);
        return NULL;
    }
    m->state = (uint8_t)state;
    m->state_since = s->now;
    if (state == MM_SWIM_FAILED) {
        struct mm_swim_susp *x = member_susp(m);
        if (x) {
            x->reprobe_gap = s->cfg.reprobe_min_ms;
            x->reprobe_at = s->now + x->reprobe_gap;
        }
    }
    m->table_slot = (uint32_t)s->nmembers;
    s->members[s->nmembers++] = m;
    if (s->self) order_insert(s, m);
    if (s->self && state == MM_SWIM_ALIVE) gossip_news_soon(s);
    s->joined = 1;
    member_touch(s, m);
    MM_LOG(MM_LOG_INFO, "swim", "%s: joined as %s", m->rec->name,
           mm__swim_state_name(state));
    swim_emit(s, m, MM_SWIM_NONE);
    return m;
}

static void
member_free_at(struct mm_swim *s, size_t i)
{
    mm__idx_remove(&s->byid, s->members[i]);
    struct mm_swim_member *m = s->members[i];
    s->digest -= m->digest_part;
    s->nlisted -= !!(m->counted & SWIM_COUNTED_LISTED);
    s->nlive -= !!(m->counted & SWIM_COUNTED_LIVE);
    if (m->due_slot) dueset_remove(s, m);
    /* Still named by the probe order: a ghost until it is rebuilt. */
    size_t k = s->order_pos;
    while (k < s->norder && s->order[k] != m)
        k++;
    void *p =
        k < s->norder
            ? mm__realloc(s->ghosts, (s->nghosts + 1) * sizeof(s->ghosts[0]))
            : NULL;
    if (p) {
        s->ghosts = p;
        s->ghosts[s->nghosts++] = m;
        susp_free(m);
        m->ghost = 1;
    } else {
        if (k < s->norder) /* out of memory: the entries are dropped */
            for (size_t j = k; j < s->norder; j++)
                if (s->order[j] == m) s->order[j] = s->self;
        member_free(s, m);
    }
    s->members[i] = s->members[--s->nmembers];
    if (i < s->nmembers) s->members[i]->table_slot = (uint32_t)i;
}

/* ---- applying news ----------------------------------------------------- */

/*
 * A member's own record (alive, or its graceful leave): applied when newer
 * than the one held and signed by that member.  0, or -1 when it was
 * dropped as forged.
 */
static int
apply_record(struct mm_swim *s, const struct swim_rec *r)
{
    struct mm_swim_member *m;
    if (memcmp(r->id, s->self->rec->id, MM_SWIM_ID_LEN) == 0) {
        const struct mm_swim_member *self = s->self;
        if (r->gen < self->rec->generation ||
            (r->gen == self->rec->generation &&
             r->inc <= self->rec->incarnation))
            return 0;
        const struct mm_swim_rec *x;
        if (rec_verify(s, r, self, &x) != 0) return -1;
        rec_unref(s->pool, x);
        if (r->gen > self->rec->generation)
            MM_LOG(MM_LOG_WARN, "swim",
                   "a newer generation of this node is alive elsewhere");
        else
            swim_refute(s, r->inc, "a newer incarnation of ourselves");
        return 0;
    }
    m = swim_find(s, r->id);
    if (!m && (r->flags & MM_SWIM_REC_LEFT)) {
        /* The graceful leave of a member we never knew changes nothing
         * here: ignored unchecked (a joiner hears those of every member
         * that left lately; push-pull states bring them, paced). */
        s->stats.unknown_leaves++;
        return 0;
    }
    if (!m) {
        const struct mm_swim_rec *x;
        if (rec_verify(s, r, NULL, &x) != 0) return -1;
        m = member_add(
            s, x, r->flags & MM_SWIM_REC_LEFT ? MM_SWIM_LEFT : MM_SWIM_ALIVE);
        if (m) bcast_alive(s, m);
        return 0;
    }
    if (r->gen < m->rec->generation ||
        (r->gen == m->rec->generation && r->inc <= m->rec->incarnation))
        return 0; /* what we hold is as new: nothing to verify */
    const struct mm_swim_rec *x;
    if (rec_verify(s, r, m, &x) != 0) return -1;
    if (!x) {
        MM_LOG(MM_LOG_WARN, "swim", "out of memory: a record of %s dropped",
               m->rec->name);
        return 0;
    }
    int was = m->state, newgen = r->gen > m->rec->generation;
    if (r->flags & MM_SWIM_REC_LEFT) {
        /* Its own graceful leave. */
        member_rec_set(s, m, x);
        m->last_ack = 0;
        member_touch(s, m);
        if (!m->tombstone) {
            if (was == MM_SWIM_LEFT)
                swim_emit(s, m, was);
            else
                member_set(s, m, MM_SWIM_LEFT, "left");
        }
        bcast_alive(s, m);
        return 0;
    }
    int differs = rec_differs(m, r);
    member_rec_set(s, m, x);
    m->last_ack = 0;
    member_touch(s, m);
    if (m->tombstone) {
        m->tombstone = 0;
        m->state = MM_SWIM_ALIVE;
        m->state_since = s->now;
        susp_free(m);
        order_insert(s, m);
        gossip_news_soon(s);
        member_touch(s, m);
        MM_LOG(MM_LOG_INFO, "swim", "%s: back from the tombstone",
               m->rec->name);
        swim_emit(s, m, MM_SWIM_NONE);
    } else if (newgen) {
        /* A new process: the old record goes entirely. */
        m->state = MM_SWIM_ALIVE;
        m->state_since = s->now;
        susp_free(m);
        m->rtt_ms = 0;
        if (was == MM_SWIM_FAILED || was == MM_SWIM_LEFT) order_insert(s, m);
        gossip_news_soon(s);
        member_touch(s, m);
        MM_LOG(MM_LOG_INFO, "swim", "%s: new generation %llu (was %s)",
               m->rec->name, (unsigned long long)m->rec->generation,
               mm__swim_state_name(was));
        swim_emit(s, m, was);
    } else if (was != MM_SWIM_ALIVE) {
        if (was == MM_SWIM_FAILED || was == MM_SWIM_LEFT) order_insert(s, m);
        member_set(s, m, MM_SWIM_ALIVE, "refuted");
    } else if (differs) {
        swim_emit(s, m, was);
    }
    bcast_alive(s, m);
    return 0;
}

/* An opinion's incarnation, never above the one |m| signed. */
static uint64_t
opinion_inc(const struct mm_swim_member *m, uint64_t inc)
{
    return inc > m->rec->incarnation ? m->rec->incarnation : inc;
}

static void
apply_suspect(struct mm_swim *s, const uint8_t *id, uint64_t gen, uint64_t inc,
              const uint8_t *from)
{
    struct mm_swim_member *m;
    if (memcmp(id, s->self->rec->id, MM_SWIM_ID_LEN) == 0) {
        if (gen == s->self->rec->generation && inc >= s->self->rec->incarnation)
            swim_refute(s, inc, "a suspicion");
        return;
    }
    m = swim_find(s, id);
    if (!m || m->tombstone || gen != m->rec->generation) return;
    /* Never above what it signed, and not below it: |inc| is the signed
     * one from here on. */
    inc = opinion_inc(m, inc);
    if (inc < m->rec->incarnation) return;
    if (m->state == MM_SWIM_ALIVE) {
        struct mm_swim_susp *x = member_susp(m);
        if (!x) {
            MM_LOG(MM_LOG_WARN, "swim", "out of memory: %s not suspected",
                   m->rec->name);
            return;
        }
        x->suspect_start = s->now;
        confirmers_clear(m);
        suspicion_confirm(m, from);
        /* The deadline first, so that the change (and what is due) reads
         * it. */
        suspicion_update(s, m);
        member_set(s, m, MM_SWIM_SUSPECT, "suspected");
        bcast_verdict(s, MSG_SUSPECT, m, from);
    } else if (m->state == MM_SWIM_SUSPECT) {
        if (suspicion_confirm(m, from)) {
            m->susp->confirmations++;
            suspicion_update(s, m);
            bcast_verdict(s, MSG_SUSPECT, m, from);
        }
    }
}

/*
 * 1 if |m| sent us a packet within the minimum suspicion timeout.  A
 * FAILED verdict ends a suspicion that lasted at least that long and began
 * after |m| last answered its author, so a member that really failed has
 * been silent towards us for at least that long when its verdict arrives.
 */
static int
swim_heard_lately(const struct mm_swim *s, const struct mm_swim_member *m)
{
    uint64_t mn, mx;
    if (m->last_heard == 0) return 0;
    mm__swim_suspicion_bounds(s, &mn, &mx);
    return s->now - m->last_heard < mn;
}

static void
apply_failed(struct mm_swim *s, const uint8_t *id, uint64_t gen, uint64_t inc,
             const uint8_t *from)
{
    struct mm_swim_member *m;
    if (memcmp(id, s->self->rec->id, MM_SWIM_ID_LEN) == 0) {
        if (gen == s->self->rec->generation && inc >= s->self->rec->incarnation)
            swim_refute(s, inc, "a failure verdict");
        return;
    }
    m = swim_find(s, id);
    if (!m || m->tombstone || gen != m->rec->generation) return;
    inc = opinion_inc(m, inc);
    if (inc < m->rec->incarnation) return;
    if (m->state != MM_SWIM_ALIVE && m->state != MM_SWIM_SUSPECT) return;
    if (swim_heard_lately(s, m)) {
        /*
         * It spoke to us after that verdict can have been reached: a
         * verdict ends a suspicion of at least the minimum timeout, all of
         * it silent towards its author, so a member that truly failed has
         * been silent towards us that long as well.  Typically the author
         * was cut off and has just come back, still gossiping what it
         * concluded meanwhile.  Take it as a suspicion: the member stays in
         * our view and refutes, instead of leaving it and coming back.
         */
        s->stats.stale_verdicts++;
        apply_suspect(s, id, gen, inc, from);
        /* Its author suspected it for a whole timeout already: ours runs
         * the shortest one, as if fully confirmed. */
        if (m->state == MM_SWIM_SUSPECT && m->susp) {
            unsigned k = swim_suspicion_k(s);
            if (m->susp->confirmations < k) m->susp->confirmations = k;
            suspicion_update(s, m);
        }
        return;
    }
    member_set(s, m, MM_SWIM_FAILED, "declared failed by a peer");
    bcast_verdict(s, MSG_FAILED, m, from);
}

/*
 * A forced leave (someone's force-leave, not the member's own word): as
 * strong as a FAILED verdict and no stronger.  It ends a member already
 * suspect or failed that has not talked to us lately; of one alive, or
 * heard from lately, it is a suspicion, which the member refutes.
 */
static void
apply_left(struct mm_swim *s, const uint8_t *id, uint64_t gen, uint64_t inc,
           const uint8_t *from)
{
    struct mm_swim_member *m;
    if (memcmp(id, s->self->rec->id, MM_SWIM_ID_LEN) == 0) {
        /* A forced leave of a live node does not stick. */
        if (!s->leaving && gen == s->self->rec->generation &&
            inc >= s->self->rec->incarnation)
            swim_refute(s, inc, "a leave we did not make");
        return;
    }
    m = swim_find(s, id);
    if (!m || m->tombstone || gen != m->rec->generation) return;
    inc = opinion_inc(m, inc);
    if (inc < m->rec->incarnation || m->state == MM_SWIM_LEFT) return;
    if (m->state == MM_SWIM_ALIVE || swim_heard_lately(s, m)) {
        apply_suspect(s, id, gen, inc, from);
        return;
    }
    member_set(s, m, MM_SWIM_LEFT, "forced to leave");
    bcast_verdict(s, MSG_LEFT, m, NULL);
}

/* ---- sync -------------------------------------------------------------- */

static void
sync_fire(struct mm_swim *s, struct mm_swim_member *peer)
{
    s->sync_pending = 0;
    if (s->sync_in_flight || !s->ops.want_sync) return;
    s->sync_in_flight = 1;
    s->sync_started = s->now;
    s->pull_want = s->sync_want;
    s->pull_walk = s->sync_walk;
    s->pull_listed = s->sync_walk_listed;
    memcpy(s->pull_peer, peer->rec->id, MM_SWIM_ID_LEN);
    s->sync_want = SWIM_PAGE_NONE;
    s->sync_walk = 0;
    s->sync_walk_listed = UINT32_MAX;
    s->stats.syncs++;
    MM_LOG(MM_LOG_DEBUG, "swim", "push-pull with %s", peer->rec->name);
    s->ops.want_sync(s->ops.data, peer);
}

/* A pull for a differing digest begins now: the next one waits longer
 * (see sync_gap in struct mm_swim). */
static void
sync_gap_grow(struct mm_swim *s)
{
    uint64_t cap = s->cfg.sync_gap_max_ms;
    s->sync_last = s->now;
    if (cap == 0) return;
    s->sync_gap = s->sync_gap ? s->sync_gap * 2 : s->cfg.sync_jitter_ms;
    if (s->sync_gap > cap) s->sync_gap = cap;
    if (s->sync_gap == 0) s->sync_gap = 1;
}

/*
 * A pull from a peer that lists |listed| members: when that is more than
 * we list, we lack members, and in a table filled in the order members
 * were learnt the ones we lack sit together: the late joiners of a burst,
 * at its end, where random pages rarely land.  So such a pull walks the
 * peer's table from its end back, page after page, until we list more
 * than it did or the walk reaches its start; other pulls take one page of
 * the peer's rotation (more while pages bring news).
 */
static void
sync_plan_walk(struct mm_swim *s, uint32_t listed)
{
    int walk = listed > swim_listed(s);
    s->sync_want = walk ? SWIM_PAGE_BACK | SWIM_PAGE_END : SWIM_PAGE_NONE;
    if (walk) s->walk_pages = 0;
    s->sync_walk = walk;
    s->sync_walk_listed = listed;
}

/*
 * A peer's packet said its digest and how many members it lists.  A digest
 * that differs from ours asks for a pull after a jitter; until it fires, a
 * differing peer that lists more members than we do takes the place of a
 * chosen one that does not (after a join burst the pulls go to peers that
 * know more, and what they know spreads from pull to pull).  Not the peer
 * that lists the most: during a burst that is the seed, and every pull
 * would go to it.
 */
static void
sync_consider(struct mm_swim *s, const uint8_t *peer_id, uint64_t digest,
              uint32_t listed)
{
    if (s->sync_pending && memcmp(s->sync_peer, peer_id, MM_SWIM_ID_LEN) == 0) {
        s->sync_peer_digest = digest;
        s->sync_peer_listed = listed;
    }
    if (digest == mm__swim_digest(s)) {
        if (s->sync_pending &&
            memcmp(s->sync_peer, peer_id, MM_SWIM_ID_LEN) == 0)
            s->sync_pending = 0;
        s->sync_gap = 0; /* someone sees what we see: pull at once again */
        return;
    }
    if (s->sync_pending && s->sync_by_digest && !s->sync_in_flight &&
        s->sync_peer_listed <= swim_listed(s) && listed > swim_listed(s)) {
        struct mm_swim_member *m = swim_find(s, peer_id);
        if (!m || m->is_self || !swim_live(m)) return;
        memcpy(s->sync_peer, peer_id, MM_SWIM_ID_LEN);
        s->sync_peer_digest = digest;
        s->sync_peer_listed = listed;
        sync_plan_walk(s, listed);
        return;
    }
    if (s->sync_in_flight || s->sync_pending || s->leaving) return;
    struct mm_swim_member *m = swim_find(s, peer_id);
    if (!m || m->is_self || !swim_live(m)) return;
    uint64_t j = s->cfg.sync_jitter_ms;
    s->sync_pending = 1;
    s->sync_by_digest = 1;
    sync_plan_walk(s, listed);
    s->sync_at = s->now + j / 2 + swim_rand_below(s, (size_t)(j / 2 + 1));
    if (s->sync_gap && s->sync_at < s->sync_last + s->sync_gap)
        s->sync_at = s->sync_last + s->sync_gap;
    memcpy(s->sync_peer, peer_id, MM_SWIM_ID_LEN);
    s->sync_peer_digest = digest;
    s->sync_peer_listed = listed;
}

/* ---- receiving --------------------------------------------------------- */

/* Walks a packet; with |apply| 0 only validates.  0 or -1. */
static int swim_walk(struct mm_swim *s, const uint8_t *buf, size_t len,
                     const struct mm_swim_addr *from, int apply);

static struct swim_fwd *
fwd_alloc(struct mm_swim *s)
{
    struct swim_fwd *oldest = &s->fwd[0];
    for (size_t i = 0; i < SWIM_FWD_MAX; i++) {
        if (!s->fwd[i].used) return &s->fwd[i];
        if (s->fwd[i].expire_at < oldest->expire_at) oldest = &s->fwd[i];
    }
    return oldest;
}

static void
on_ping(struct mm_swim *s, const struct swim_msg *g,
        const struct mm_swim_addr *from)
{
    struct swim_pkt b;
    int anyone = memcmp(g->id, zero_id, MM_SWIM_ID_LEN) == 0;
    if (!anyone && memcmp(g->id, s->self->rec->id, MM_SWIM_ID_LEN) != 0)
        return; /* meant for a previous holder of this address */
    pkt_start(s, &b);
    if (anyone) pkt_add_alive(&b, s->self);
    pkt_add_seq(&b, MSG_ACK, g->seq);
    pkt_fill(s, &b);
    pkt_send(s, &b, from);
}

static void
on_ping_req(struct mm_swim *s, const struct swim_msg *g,
            const struct mm_swim_addr *from)
{
    struct swim_pkt b;
    if (memcmp(g->id, s->self->rec->id, MM_SWIM_ID_LEN) == 0) return;
    struct swim_fwd *f = fwd_alloc(s);
    memset(f, 0, sizeof(*f));
    f->used = 1;
    f->our_seq = ++s->seq;
    f->their_seq = g->seq;
    f->requester = *from;
    f->want_nack = g->flags & 1;
    /* Nack well before the requester's probe interval ends. */
    f->nack_at = s->now + s->cfg.probe_timeout_ms * 8 / 10;
    f->expire_at = s->now + s->cfg.probe_timeout_ms;
    pkt_start(s, &b);
    pkt_add_ping(&b, f->our_seq, g->id);
    pkt_fill(s, &b);
    pkt_send(s, &b, &g->addr);
}

static void
probe_acked(struct mm_swim *s)
{
    struct mm_swim_member *t = swim_find(s, s->probe.target);
    s->probe.acked = 1;
    swim_awareness_add(s, -1);
    if (t) {
        t->last_ack = s->now;
        t->rtt_ms = (uint32_t)(s->now - s->probe.sent);
    }
}

static void
join_acked(struct mm_swim *s, const uint8_t *sender)
{
    struct mm_swim_member *peer = swim_find(s, sender);
    s->joined = 1;
    MM_LOG(MM_LOG_INFO, "swim", "joined through %s",
           peer ? peer->rec->name : "a seed");
    if (peer && !peer->is_self && swim_live(peer) && !s->sync_in_flight) {
        /* The first pull walks the peer's whole table, from its end. */
        s->sync_want = SWIM_PAGE_BACK | SWIM_PAGE_END;
        s->sync_walk = 1;
        s->walk_pages = 0;
        s->sync_walk_listed = UINT32_MAX;
        sync_fire(s, peer);
    }
}

static void
on_ack(struct mm_swim *s, const struct swim_msg *g, const uint8_t *sender,
       int *join_ack)
{
    struct mm_swim_member *peer = swim_find(s, sender);
    if (peer && !peer->is_self) peer->last_ack = s->now;
    if (s->probe.active && !s->probe.acked && g->seq == s->probe.seq) {
        probe_acked(s);
        return;
    }
    for (size_t i = 0; i < SWIM_FWD_MAX; i++) {
        struct swim_fwd *f = &s->fwd[i];
        if (f->used && !f->acked && f->our_seq == g->seq) {
            struct swim_pkt b;
            f->acked = 1;
            pkt_start(s, &b);
            pkt_add_seq(&b, MSG_ACK, f->their_seq);
            pkt_fill(s, &b);
            pkt_send(s, &b, &f->requester);
            return;
        }
    }
    for (size_t i = 0; i < s->nseeds; i++) {
        if (s->seeds[i].seq == g->seq && g->seq) {
            s->seeds[i].seq = 0;
            s->seeds[i].gap = s->cfg.seed_min_ms;
            *join_ack = 1;
            return;
        }
    }
    if (s->leaving && g->seq == s->leave_seq) {
        if (!s->leave_acked) MM_LOG(MM_LOG_INFO, "swim", "leave acknowledged");
        s->leave_acked = 1;
    }
}

static void
on_nack(struct mm_swim *s, const struct swim_msg *g)
{
    s->stats.nacks_in++;
    if (s->probe.active && s->probe.indirect_sent && !s->probe.acked &&
        g->seq == s->probe.seq && s->probe.nacks < s->probe.expected_nacks)
        s->probe.nacks++;
}

static int
swim_walk(struct mm_swim *s, const uint8_t *buf, size_t len,
          const struct mm_swim_addr *from, int apply)
{
    struct swim_msg m;
    const uint8_t *sender = buf + 1;
    int join_ack = 0, have_digest = 0;
    uint32_t listed = 0;
    uint64_t digest = 0;
    if (len < SWIM_HDR_LEN || buf[0] != SWIM_VERSION) return -1;
    s->walk_forged = 0;
    if (apply) {
        /* Any packet counts as hearing from its sender (see
         * swim_heard_lately). */
        struct mm_swim_member *snd = swim_find(s, sender);
        if (snd && !snd->is_self) snd->last_heard = s->now;
    }
    unsigned count = buf[17];
    size_t o = SWIM_HDR_LEN;
    for (unsigned i = 0; i < count; i++) {
        if (len - o < SWIM_MSG_HDR) return -1;
        uint8_t type = buf[o];
        size_t blen = mm__get_u16(buf + o + 1);
        o += SWIM_MSG_HDR;
        if (len - o < blen) return -1;
        if (swim_decode_body(type, buf + o, blen, &m) != 0) return -1;
        o += blen;
        if (!apply) continue;
        switch (m.type) {
        case MSG_PING:
            on_ping(s, &m, from);
            break;
        case MSG_PING_REQ:
            on_ping_req(s, &m, from);
            break;
        case MSG_ACK:
            on_ack(s, &m, sender, &join_ack);
            break;
        case MSG_NACK:
            on_nack(s, &m);
            break;
        case MSG_ALIVE:
            apply_record(s, &m.rec);
            break;
        case MSG_SUSPECT:
            apply_suspect(s, m.id, m.gen, m.inc, m.from);
            break;
        case MSG_FAILED:
            apply_failed(s, m.id, m.gen, m.inc, m.from);
            break;
        case MSG_LEFT:
            apply_left(s, m.id, m.gen, m.inc, sender);
            break;
        case MSG_DIGEST:
            have_digest = 1;
            digest = m.digest;
            listed = m.nmembers;
            break;
        default:
            break;
        }
    }
    if (o != len) return -1;
    if (!apply) return 0;
    if (join_ack) join_acked(s, sender);
    /* Compare only after this packet's news is in. */
    if (have_digest) sync_consider(s, sender, digest, listed);
    return 0;
}

int
mm__swim_packet_sender(const uint8_t *buf, size_t len,
                       uint8_t id[MM_SWIM_ID_LEN])
{
    if (!buf || len < SWIM_HDR_LEN || buf[0] != SWIM_VERSION) return MM_EDECODE;
    memcpy(id, buf + 1, MM_SWIM_ID_LEN);
    return 0;
}

int
mm__swim_recv(struct mm_swim *s, const struct mm_swim_addr *from,
              const uint8_t *buf, size_t len, uint64_t now)
{
    if (now > s->now) s->now = now;
    s->stats.packets_in++;
    if (!buf || swim_walk(s, buf, len, from, 0) != 0) {
        s->stats.decode_errors++;
        return MM_EDECODE;
    }
    if (memcmp(buf + 1, s->self->rec->id, MM_SWIM_ID_LEN) == 0)
        return 0; /* our own packet, looped back */
    swim_walk(s, buf, len, from, 1);
    return 0;
}

/* ---- timers ------------------------------------------------------------ */

static void
ghosts_free(struct mm_swim *s)
{
    for (size_t i = 0; i < s->nghosts; i++)
        member_free(s, s->ghosts[i]);
    mm__free(s->ghosts);
    s->ghosts = NULL;
    s->nghosts = 0;
}

/* Room for the members a pick among them (probe_indirect, gossip_round,
 * leave_round) draws from: held only for that call, not per member all
 * the time.  NULL when out of memory (the pick is skipped). */
static struct mm_swim_member **
scratch_get(const struct mm_swim *s)
{
    return mm__malloc((s->nmembers ? s->nmembers : 1) *
                      sizeof(struct mm_swim_member *));
}

static struct mm_swim_member *
probe_next_target(struct mm_swim *s)
{
    for (int round = 0; round < 2; round++) {
        while (s->order_pos < s->norder) {
            struct mm_swim_member *m = s->order[s->order_pos++];
            if (m->ghost) m = swim_find(s, m->rec->id);
            if (m && !m->is_self && swim_live(m)) return m;
        }
        /* New round: every live member, reshuffled (Fisher-Yates). */
        s->norder = s->order_pos = 0;
        ghosts_free(s);
        for (size_t i = 0; i < s->nmembers; i++) {
            struct mm_swim_member *m = s->members[i];
            if (m->is_self || !swim_live(m)) continue;
            if (s->norder == s->caporder) {
                size_t cap = swim_grow(s->caporder);
                void *p = mm__realloc(s->order, cap * sizeof(s->order[0]));
                if (!p) return NULL;
                s->order = p;
                s->caporder = cap;
            }
            s->order[s->norder++] = m;
        }
        for (size_t i = s->norder; i > 1; i--) {
            size_t j = swim_rand_below(s, i);
            struct mm_swim_member *t = s->order[i - 1];
            s->order[i - 1] = s->order[j];
            s->order[j] = t;
        }
    }
    return NULL;
}

static void
probe_start(struct mm_swim *s)
{
    struct swim_pkt b;
    struct mm_swim_member *t = probe_next_target(s);
    s->next_probe = s->now + swim_scale(s, s->cfg.probe_interval_ms);
    if (!t) return;
    memset(&s->probe, 0, sizeof(s->probe));
    s->probe.active = 1;
    memcpy(s->probe.target, t->rec->id, MM_SWIM_ID_LEN);
    s->probe.seq = ++s->seq;
    s->probe.sent = s->now;
    s->probe.timeout_at = s->now + swim_scale(s, s->cfg.probe_timeout_ms);
    s->probe.end_at = s->next_probe;
    s->stats.probes++;
    pkt_start(s, &b);
    if (t->state == MM_SWIM_SUSPECT) {
        /* Buddy system: tell the suspect so it refutes at once. */
        uint8_t msg[64];
        size_t n = msg_verdict(msg, MSG_SUSPECT, t, s->self->rec->id);
        pkt_add_raw(&b, msg, n);
    }
    pkt_add_ping(&b, s->probe.seq, t->rec->id);
    pkt_fill(s, &b);
    pkt_send(s, &b, &t->rec->addr);
}

static void
probe_indirect(struct mm_swim *s)
{
    struct mm_swim_member *t = swim_find(s, s->probe.target);
    size_t n = 0;
    s->probe.indirect_sent = 1;
    if (!t) return;
    struct mm_swim_member **scratch = scratch_get(s);
    if (!scratch) return;
    for (size_t i = 0; i < s->nmembers; i++) {
        struct mm_swim_member *m = s->members[i];
        if (!m->is_self && m != t && !m->tombstone && m->state == MM_SWIM_ALIVE)
            scratch[n++] = m;
    }
    for (unsigned k = 0; k < s->cfg.indirect_checks && n > 0; k++) {
        size_t j = swim_rand_below(s, n);
        struct mm_swim_member *via = scratch[j];
        scratch[j] = scratch[--n];
        struct swim_pkt b;
        pkt_start(s, &b);
        uint8_t *p = pkt_add(&b, MSG_PING_REQ,
                             4 + MM_SWIM_ID_LEN + 3 +
                                 (t->rec->addr.family == 6 ? 16 : 4) + 1);
        mm__put_u32(p, s->probe.seq);
        memcpy(p + 4, t->rec->id, MM_SWIM_ID_LEN);
        size_t a = wr_addr(p + 4 + MM_SWIM_ID_LEN, &t->rec->addr);
        p[4 + MM_SWIM_ID_LEN + a] = 1; /* nack, please */
        pkt_fill(s, &b);
        pkt_send(s, &b, &via->rec->addr);
        s->probe.expected_nacks++;
        s->stats.indirect_probes++;
    }
    mm__free(scratch);
}

/*
 * A probe step (the timeout, the end) ran |late| ms after it was due: 1 if
 * that says we are behind (our loop or the CPU did not run us in time),
 * and then, as Lifeguard does for missing nacks, our local health score
 * goes up: we probe and time out more slowly until acks come back in time,
 * and do not accuse others of our own lateness.
 */
static int
probe_late(struct mm_swim *s, uint64_t late)
{
    if (s->cfg.late_ms == 0 || late < s->cfg.late_ms) return 0;
    s->stats.late_probes++;
    swim_awareness_add(s, 1);
    MM_LOG(MM_LOG_DEBUG, "swim", "probe step %llu ms late",
           (unsigned long long)late);
    return 1;
}

static void
probe_finish(struct mm_swim *s)
{
    struct mm_swim_member *t = swim_find(s, s->probe.target);
    s->probe.active = 0;
    if (s->probe.acked) return;
    /* Lifeguard: missing nacks mean our own network is the problem. */
    if (s->probe.expected_nacks > 0)
        swim_awareness_add(s, (int)(s->probe.expected_nacks - s->probe.nacks));
    else
        swim_awareness_add(s, 1);
    if (t && swim_live(t) && t->last_heard >= s->probe.sent) {
        /* No ack, but it sent us something since the ping went out: it is
         * up and can reach us (an ack lost, or late from a busy node).
         * Not a suspicion; the next probe of it asks again. */
        s->stats.heard_not_acked++;
        return;
    }
    if (t && swim_live(t)) {
        MM_LOG(MM_LOG_INFO, "swim", "%s: no ack in %llu ms", t->rec->name,
               (unsigned long long)(s->now - s->probe.sent));
        apply_suspect(s, t->rec->id, t->rec->generation, t->rec->incarnation,
                      s->self->rec->id);
    }
}

/* A gossip target: live, or failed lately (it may be back). */
static int
gossip_target(const struct mm_swim *s, const struct mm_swim_member *m)
{
    if (m->is_self || m->tombstone) return 0;
    return swim_live(m) || (m->state == MM_SWIM_FAILED &&
                            s->now - m->state_since < s->cfg.gossip_to_dead_ms);
}

static void
gossip_round_with(struct mm_swim *s, struct mm_swim_member ***sp)
{
    size_t n = 0, want = s->cfg.gossip_nodes;
    struct mm_swim_member **scratch = *sp; /* room for want (or nmembers) */
    /* Targets drawn at random from the table, O(gossip_nodes) and not a
     * walk of every member; only when draws keep missing (few members are
     * targets, or fewer than gossip_nodes) are they all walked. */
    for (size_t t = 0; n < want && t < 4 * want + 8 && s->nmembers > 1; t++) {
        struct mm_swim_member *m = s->members[swim_rand_below(s, s->nmembers)];
        size_t k = 0;
        if (!gossip_target(s, m)) continue;
        while (k < n && scratch[k] != m)
            k++;
        if (k == n) scratch[n++] = m;
    }
    if (n < want) {
        void *p = mm__realloc(scratch, (s->nmembers ? s->nmembers : 1) *
                                           sizeof(scratch[0]));
        if (!p) return;
        *sp = scratch = p;
        n = 0;
        for (size_t i = 0; i < s->nmembers; i++)
            if (gossip_target(s, s->members[i])) scratch[n++] = s->members[i];
    }
    for (unsigned k = 0; k < want && n > 0 && s->nbq; k++) {
        size_t j = swim_rand_below(s, n);
        struct mm_swim_member *to = scratch[j];
        scratch[j] = scratch[--n];
        /* More packets to the same target while what is queued does not
         * fit in one (a backlog: a join burst), at most gossip_burst. */
        for (unsigned p = 0; p < MM_MAX(s->cfg.gossip_burst, 1u) && s->nbq;
             p++) {
            size_t queued = s->nbq;
            struct swim_pkt b;
            pkt_start(s, &b);
            unsigned added = pkt_fill(s, &b);
            if (added == 0) {
                if (p == 0) return;
                break;
            }
            pkt_send(s, &b, &to->rec->addr);
            if (added >= queued) break; /* it all fit */
        }
    }
}

static void
gossip_round(struct mm_swim *s)
{
    if (s->nbq == 0 || s->cfg.gossip_nodes == 0) return;
    /* Room for the draws; gossip_round_with grows it for a walk. */
    size_t room = MM_MIN((size_t)s->cfg.gossip_nodes, s->nmembers);
    struct mm_swim_member **scratch =
        mm__malloc((room ? room : 1) * sizeof(*scratch));
    if (!scratch) return;
    gossip_round_with(s, &scratch);
    mm__free(scratch);
}

static void
reprobe(struct mm_swim *s, struct mm_swim_member *m)
{
    struct swim_pkt b;
    uint8_t msg[64];
    struct mm_swim_susp *x = m->susp; /* reprobe_at says it has one */
    uint32_t seq = ++s->seq;
    pkt_start(s, &b);
    /* Tell it what we think, so that it refutes if it is alive. */
    pkt_add_raw(&b, msg, msg_verdict(msg, MSG_FAILED, m, s->self->rec->id));
    pkt_add_alive(&b, s->self);
    pkt_add_ping(&b, seq, m->rec->id);
    pkt_fill(s, &b);
    pkt_send(s, &b, &m->rec->addr);
    x->reprobe_gap =
        MM_MIN(x->reprobe_gap * 2, (uint64_t)s->cfg.reprobe_max_ms);
    if (x->reprobe_gap == 0) x->reprobe_gap = s->cfg.reprobe_min_ms;
    x->reprobe_at = s->now + x->reprobe_gap;
    member_due_note(s, m);
}

static void
seed_ping(struct mm_swim *s, struct swim_seed *sd)
{
    struct swim_pkt b;
    sd->seq = ++s->seq;
    pkt_start(s, &b);
    pkt_add_alive(&b, s->self);
    pkt_add_ping(&b, sd->seq, NULL);
    pkt_fill(s, &b);
    pkt_send(s, &b, &sd->addr);
    sd->next_at = s->now + sd->gap;
    sd->gap = MM_MIN(sd->gap * 2, (uint64_t)s->cfg.seed_max_ms);
}

static int
seeds_active(const struct mm_swim *s)
{
    return !s->leaving && s->nseeds > 0 && (!s->joined || swim_nlive(s) <= 1);
}

static void
leave_round(struct mm_swim *s)
{
    size_t n = 0;
    struct mm_swim_member **scratch = scratch_get(s);
    if (!scratch) {
        s->leave_next = s->now + s->cfg.gossip_interval_ms;
        return;
    }
    for (size_t i = 0; i < s->nmembers; i++) {
        struct mm_swim_member *m = s->members[i];
        if (!m->is_self && swim_live(m)) scratch[n++] = m;
    }
    if (n == 0) {
        s->leave_acked = 1; /* nobody to tell */
        mm__free(scratch);
        return;
    }
    unsigned tell = MM_MAX(s->cfg.gossip_nodes, MM_SWIM_LEAVE_TELL);
    for (unsigned k = 0; k < tell && n > 0; k++) {
        size_t j = swim_rand_below(s, n);
        struct mm_swim_member *to = scratch[j];
        scratch[j] = scratch[--n];
        struct swim_pkt b;
        pkt_start(s, &b);
        pkt_add_alive(&b, s->self); /* our signed leave */
        pkt_add_ping(&b, s->leave_seq, to->rec->id);
        pkt_fill(s, &b);
        pkt_send(s, &b, &to->rec->addr);
    }
    s->leave_next = s->now + s->cfg.gossip_interval_ms;
    mm__free(scratch);
}

static int
leave_timed_out(const struct mm_swim *s)
{
    return s->leaving && !s->leave_acked &&
           s->now >= s->leave_start + s->cfg.leave_timeout_ms;
}

/* What is due for |m| at |now|: a suspicion's end, a reap, a tombstone's
 * end (1: |m| was freed), a re-probe. */
static int
member_due_step(struct mm_swim *s, struct mm_swim_member *m, uint64_t now)
{
    if (m->tombstone) {
        if (now - m->state_since >=
            s->cfg.reconnect_timeout_ms + s->cfg.tombstone_ms) {
            member_free_at(s, m->table_slot);
            return 1;
        }
        return 0;
    }
    if (m->state == MM_SWIM_SUSPECT && now >= suspect_deadline(m)) {
        MM_LOG(MM_LOG_INFO, "swim",
               "%s: suspicion timed out (%u confirmations)", m->rec->name,
               mm__swim_confirmations(m));
        member_set(s, m, MM_SWIM_FAILED, "suspicion timed out");
        bcast_verdict(s, MSG_FAILED, m, s->self->rec->id);
    }
    if ((m->state == MM_SWIM_FAILED || m->state == MM_SWIM_LEFT) &&
        now - m->state_since >= s->cfg.reconnect_timeout_ms) {
        struct mm_swim_member tmp = *m;
        tmp.due_slot = 0; /* a copy, not in the heap */
        m->tombstone = 1;
        member_touch(s, m);
        tmp.state = MM_SWIM_REAPED;
        MM_LOG(MM_LOG_INFO, "swim", "%s: reaped", m->rec->name);
        swim_emit(s, &tmp, m->state);
        susp_free(m); /* nothing is re-probed in a tombstone */
        return 0;
    }
    if (m->state == MM_SWIM_FAILED && !s->leaving && now >= reprobe_at(m))
        reprobe(s, m);
    return 0;
}

void
mm__swim_tick(struct mm_swim *s, uint64_t now)
{
    if (now > s->now) s->now = now;
    now = s->now;

    /* Probing first: a failed probe may confirm a suspicion due now. */
    if (s->probe.active && !s->probe.acked && !s->probe.indirect_sent &&
        now >= s->probe.timeout_at) {
        /* The intermediaries get their whole window from now, however
         * late this step ran: not a suspicion in the same step. */
        uint64_t win = s->probe.end_at - s->probe.timeout_at;
        probe_indirect(s);
        if (s->probe.end_at < now + win) s->probe.end_at = now + win;
        probe_late(s, now - s->probe.timeout_at);
    }
    if (s->probe.active && now >= s->probe.end_at) {
        uint64_t late = now - s->probe.end_at;
        if (!s->probe.acked && !s->probe.graced && probe_late(s, late)) {
            /* We were not running when the answer was due: it may be
             * waiting, unread, behind this step.  Read it first. */
            s->probe.graced = 1;
            s->probe.end_at =
                now + MM_MIN(late, (uint64_t)s->cfg.probe_timeout_ms);
        } else {
            probe_finish(s);
        }
    }
    if (!s->probe.active && !s->leaving && now >= s->next_probe) probe_start(s);

    /* Suspicions that ran out; reaping; re-probing the failed: only when
     * one may be due (s->due is never later than the first), and only
     * the members whose key in the due heap has come (changes made
     * meanwhile, by the changed callback too, bring keys forward). */
    if (now >= s->due) {
        if (s->due_lost) {
            /* Members left out of the set (out of memory) go in first. */
            s->due_lost = 0;
            for (size_t i = 0; i < s->nmembers; i++) {
                struct mm_swim_member *m = s->members[i];
                if (member_due_wanted(m) && !m->due_slot &&
                    dueset_add(s, m) != 0)
                    s->due_lost = 1;
            }
        }
        while (s->ndueset > 0 && s->dueset[0].key <= now) {
            struct mm_swim_member *m = s->dueset[0].m;
            if (member_due_step(s, m, now)) continue; /* freed */
            /* Still in the heap: its key is now exact.  (Nothing is due
             * for it at |now| any more; if it were, the next tick takes
             * it, rather than this one spinning.) */
            if (!m->due_slot) continue;
            size_t i = m->due_slot - 1;
            uint64_t key = member_due(s, m);
            s->dueset[i].key = key;
            dueset_down(s, i);
            if (key <= now) break;
        }
        s->due = s->ndueset > 0 ? s->dueset[0].key : UINT64_MAX;
    }

    /* Indirect probes we run for others. */
    for (size_t i = 0; i < SWIM_FWD_MAX; i++) {
        struct swim_fwd *f = &s->fwd[i];
        if (!f->used) continue;
        if (f->want_nack && !f->acked && now >= f->nack_at) {
            struct swim_pkt b;
            f->want_nack = 0;
            pkt_start(s, &b);
            pkt_add_seq(&b, MSG_NACK, f->their_seq);
            pkt_send(s, &b, &f->requester);
        }
        if (now >= f->expire_at) f->used = 0;
    }

    if (now >= s->next_gossip) {
        gossip_round(s);
        s->last_gossip = now;
        s->next_gossip = now + s->cfg.gossip_interval_ms;
    }

    if (seeds_active(s))
        for (size_t i = 0; i < s->nseeds; i++)
            if (now >= s->seeds[i].next_at) seed_ping(s, &s->seeds[i]);

    if (s->leaving && !s->leave_acked && !leave_timed_out(s) &&
        now >= s->leave_next)
        leave_round(s);

    if (s->sync_in_flight && now >= s->sync_started + s->cfg.sync_timeout_ms)
        s->sync_in_flight = s->pull_walk = 0;
    if (s->sync_pending && now >= s->sync_at) {
        struct mm_swim_member *peer = swim_find(s, s->sync_peer);
        s->sync_pending = 0;
        if (peer && swim_live(peer) && !peer->is_self &&
            s->sync_peer_digest != mm__swim_digest(s)) {
            if (s->sync_by_digest && !s->sync_in_flight) sync_gap_grow(s);
            sync_fire(s, peer);
        }
    }
}

uint64_t
mm__swim_deadline(struct mm_swim *s)
{
    /* Gossip wakes us only when there is news to spread. */
    uint64_t d = s->nbq ? s->next_gossip : UINT64_MAX;
#define AT(t) (d = MM_MIN(d, (uint64_t)(t)))
    if (!s->leaving)
        AT(s->probe.active ? (s->probe.acked || s->probe.indirect_sent
                                  ? s->probe.end_at
                                  : s->probe.timeout_at)
                           : s->next_probe);
    else if (s->probe.active)
        AT(s->probe.end_at);
    AT(s->due); /* the members' (kept, see struct mm_swim) */
    for (size_t i = 0; i < SWIM_FWD_MAX; i++) {
        const struct swim_fwd *f = &s->fwd[i];
        if (f->used) AT(f->want_nack && !f->acked ? f->nack_at : f->expire_at);
    }
    if (seeds_active(s))
        for (size_t i = 0; i < s->nseeds; i++)
            AT(s->seeds[i].next_at);
    if (s->leaving && !s->leave_acked && !leave_timed_out(s)) {
        AT(s->leave_next);
        AT(s->leave_start + s->cfg.leave_timeout_ms);
    }
    if (s->sync_in_flight) AT(s->sync_started + s->cfg.sync_timeout_ms);
    if (s->sync_pending) AT(s->sync_at);
#undef AT
    return d;
}

/* ---- lifecycle and commands -------------------------------------------- */

void
mm__swim_config_init(struct mm_swim_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->addr.family = 4;
    cfg->probe_interval_ms = MM_SWIM_PROBE_MS;
    cfg->probe_timeout_ms = MM_SWIM_PROBE_TIMEOUT_MS;
    cfg->indirect_checks = MM_SWIM_INDIRECT;
    cfg->gossip_interval_ms = MM_SWIM_GOSSIP_MS;
    cfg->gossip_nodes = MM_SWIM_GOSSIP_NODES;
    cfg->gossip_burst = MM_SWIM_GOSSIP_BURST;
    cfg->retransmit_mult = MM_SWIM_RETRANSMIT_MULT;
    cfg->suspicion_mult = MM_SWIM_SUSPICION_MULT;
    cfg->suspicion_max_mult = MM_SWIM_SUSPICION_MAX_MULT;
    cfg->awareness_max = MM_SWIM_AWARENESS_MAX;
    cfg->gossip_to_dead_ms = MM_SWIM_GOSSIP_TO_DEAD_MS;
    cfg->reprobe_min_ms = MM_SWIM_REPROBE_MIN_MS;
    cfg->reprobe_max_ms = MM_SWIM_REPROBE_MAX_MS;
    cfg->seed_min_ms = MM_SWIM_SEED_MIN_MS;
    cfg->seed_max_ms = MM_SWIM_SEED_MAX_MS;
    cfg->leave_timeout_ms = MM_SWIM_LEAVE_TIMEOUT_MS;
    cfg->sync_jitter_ms = MM_SWIM_SYNC_JITTER_MS;
    cfg->sync_timeout_ms = MM_SWIM_SYNC_TIMEOUT_MS;
    cfg->sync_page = MM_SWIM_SYNC_PAGE;
    cfg->late_ms = MM_SWIM_LATE_MS;
    cfg->sync_gap_max_ms = MM_SWIM_SYNC_GAP_MAX_MS;
    cfg->reconnect_timeout_ms = MM_SWIM_RECONNECT_TIMEOUT_MS;
    cfg->tombstone_ms = MM_SWIM_TOMBSTONE_MS;
    cfg->packet_max = MM_SWIM_PACKET_MAX;
}

static int
swim_tags_ok(const char *tags)
{
    return !tags || strlen(tags) < MM_SWIM_TAGS_MAX;
}

int
mm__swim_new(struct mm_swim **out, const struct mm_swim_config *cfg,
             const struct mm_swim_ops *ops, uint64_t now)
{
    struct mm_swim *s;
    struct swim_rec r;
    *out = NULL;
    if (!cfg->name || !*cfg->name || strlen(cfg->name) >= MM_SWIM_NAME_MAX ||
        !swim_tags_ok(cfg->tags) ||
        (cfg->addr.family != 4 && cfg->addr.family != 6) ||
        memcmp(cfg->id, zero_id, MM_SWIM_ID_LEN) == 0 ||
        cfg->probe_interval_ms == 0 || cfg->probe_timeout_ms == 0 ||
        cfg->probe_timeout_ms > cfg->probe_interval_ms ||
        cfg->gossip_interval_ms == 0 || cfg->awareness_max == 0 ||
        cfg->retransmit_mult == 0 || cfg->suspicion_mult == 0 ||
        cfg->suspicion_max_mult == 0 || cfg->packet_max < 256 ||
        cfg->sync_page == 0 || cfg->reprobe_min_ms == 0 ||
        cfg->seed_min_ms == 0 || !ops || !ops->sign || !ops->verify)
        return MM_EINVAL;
    s = mm__calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->cfg = *cfg;
    s->cfg.name = s->cfg.tags = NULL;
    s->ops = *ops;
    s->now = now;
    s->rng = cfg->seed ? cfg->seed : mm__rand64();
    if (s->rng == 0) s->rng = 0x9E3779B97F4A7C15ULL;
    /* The indexes' hash keys come from the seed without drawing from the
     * generator: one seed still makes one run. */
    mm__idx_init_ind(&s->byid, offsetof(struct mm_swim_member, rec),
                     offsetof(struct mm_swim_rec, id),
                     mm__hash_u64(s->rng ^ 0x6964786d656d6273ULL));
    s->byid.dense = 1; /* one entry per member: up to 3/4 full */
    mm__idx_init(&s->bqidx, offsetof(struct swim_bcast, about),
                 mm__hash_u64(s->rng ^ 0x6964786263617374ULL));
    s->pool = cfg->pool;
    if (!s->pool) {
        if (mm__swim_pool_new(&s->own_pool) != 0) {
            mm__free(s);
            return -ENOMEM;
        }
        s->pool = s->own_pool;
    }
    s->due = UINT64_MAX;
    s->sync_want = s->pull_want = SWIM_PAGE_NONE;
    s->sync_walk_listed = s->pull_listed = UINT32_MAX;
    memset(&r, 0, sizeof(r));
    memcpy(r.id, cfg->id, MM_SWIM_ID_LEN);
    memcpy(r.pub, cfg->pub, MM_SWIM_PUB_LEN);
    r.has_pub = 1;
    r.gen = cfg->generation;
    r.role = cfg->role;
    r.addr.family = cfg->addr.family;
    memcpy(r.addr.ip, cfg->addr.ip, sizeof(r.addr.ip));
    r.addr.port = cfg->addr.port;
    snprintf(r.name, sizeof(r.name), "%s", cfg->name);
    snprintf(r.tags, sizeof(r.tags), "%s", cfg->tags ? cfg->tags : "");
    self_sign(s, &r);
    /* Self is a member like the others, except that it is never probed. */
    struct mm_swim_ops saved = s->ops;
    s->ops.changed = NULL;
    s->self = member_add(s, rec_intern(s->pool, &r, r.pub, 0), MM_SWIM_ALIVE);
    s->ops = saved;
    if (!s->self) {
        mm__swim_free(s);
        return -ENOMEM;
    }
    s->self->is_self = 1;
    s->joined = 0;
    /* Stagger the first probe and gossip inside their intervals. */
    s->next_probe = now + swim_rand_below(s, cfg->probe_interval_ms);
    s->next_gossip = now + swim_rand_below(s, cfg->gossip_interval_ms);
    *out = s;
    return 0;
}

void
mm__swim_free(struct mm_swim *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nmembers; i++)
        member_free(s, s->members[i]);
    ghosts_free(s);
    while (s->slabs) {
        struct swim_slab *sl = s->slabs;
        s->slabs = sl->next;
        mm__free(sl);
    }
    for (size_t i = 0; i < s->nbq; i++)
        bcast_free(s, s->bq[i]);
    mm__swim_pool_free(s->own_pool);
    mm__idx_free(&s->byid);
    mm__idx_free(&s->bqidx);
    mm__free(s->members);
    mm__free(s->dueset);
    mm__free(s->order);
    mm__free(s->bq);
    mm__free(s->seeds);
    mm__free(s);
}

int
mm__swim_join(struct mm_swim *s, const struct mm_swim_addr *seed, uint64_t now)
{
    if (now > s->now) s->now = now;
    if (!seed || (seed->family != 4 && seed->family != 6) || s->leaving)
        return MM_EINVAL;
    struct swim_seed *sd = NULL;
    for (size_t i = 0; i < s->nseeds; i++)
        if (memcmp(&s->seeds[i].addr, seed, sizeof(*seed)) == 0)
            sd = &s->seeds[i];
    if (!sd) {
        void *p = mm__realloc(s->seeds, (s->nseeds + 1) * sizeof(*s->seeds));
        if (!p) return -ENOMEM;
        s->seeds = p;
        sd = &s->seeds[s->nseeds++];
        memset(sd, 0, sizeof(*sd));
        sd->addr = *seed;
    }
    sd->gap = s->cfg.seed_min_ms;
    seed_ping(s, sd);
    return 0;
}

int
mm__swim_joined(const struct mm_swim *s)
{
    return s->joined;
}

int
mm__swim_leave(struct mm_swim *s, uint64_t now)
{
    if (now > s->now) s->now = now;
    if (s->leaving) return MM_EINVAL;
    /* A greater incarnation, so no stale alive can undo the leave; signed,
     * so nobody else can make one. */
    if (self_resign(s, s->self->rec->incarnation + 1, MM_SWIM_REC_LEFT, NULL) !=
        0)
        return -ENOMEM;
    s->leaving = 1;
    s->leave_start = s->now;
    s->leave_seq = ++s->seq;
    s->probe.active = 0;
    s->sync_pending = 0;
    member_touch(s, s->self);
    member_set(s, s->self, MM_SWIM_LEFT, "leaving");
    bcast_alive(s, s->self);
    leave_round(s);
    return 0;
}

int
mm__swim_left_acked(const struct mm_swim *s)
{
    if (!s->leaving) return 0;
    if (s->leave_acked) return 1;
    return leave_timed_out(s) ? MM_ETIMEOUT : 0;
}

int
mm__swim_force_leave(struct mm_swim *s, const uint8_t *id, const char *name,
                     uint64_t now)
{
    struct mm_swim_member *m = NULL;
    if (now > s->now) s->now = now;
    if (id)
        m = swim_find(s, id);
    else if (name)
        for (size_t i = 0; i < s->nmembers && !m; i++)
            if (!s->members[i]->tombstone &&
                strcmp(s->members[i]->rec->name, name) == 0)
                m = s->members[i];
    if (!m || m->tombstone) return MM_ENOTFOUND;
    if (m->is_self) return MM_EINVAL;
    if (m->state != MM_SWIM_LEFT) {
        member_set(s, m, MM_SWIM_LEFT, "forced to leave");
        bcast_verdict(s, MSG_LEFT, m, NULL);
    }
    return 0;
}

int
mm__swim_set_tags(struct mm_swim *s, const char *tags, uint64_t now)
{
    if (now > s->now) s->now = now;
    if (!swim_tags_ok(tags) || s->leaving) return MM_EINVAL;
    if (self_resign(s, s->self->rec->incarnation + 1, s->self->rec->rec_flags,
                    tags ? tags : "") != 0)
        return -ENOMEM;
    member_touch(s, s->self);
    bcast_alive(s, s->self);
    return 0;
}

/* ---- push-pull --------------------------------------------------------- */

/*
 * The members a push-pull state carries besides ourselves: all of them
 * while they fit in one page (cfg.sync_page), else a page of the table:
 * the one a peer's request asked for (mm__swim_state_serve), or else the
 * next of the rotating cursor, so that successive states cover every
 * member.  Sets *start and *span (the table slots the page covers,
 * wrapping) and *next (where the following page starts, or for a page
 * taken backwards ends; SWIM_PAGE_NONE when everything fit or a backwards
 * page reached slot 0) and returns how many it holds.
 */
static size_t
state_page(const struct mm_swim *s, size_t *start, size_t *span, uint32_t *next)
{
    size_t others = swim_listed(s) - (s->self->tombstone ? 0 : 1), n = 0, k;
    *start = 0;
    *span = s->nmembers;
    *next = SWIM_PAGE_NONE;
    if (others <= s->cfg.sync_page) return others;
    uint32_t want = s->serve_on ? s->serve_want : SWIM_PAGE_NONE;
    if (want != SWIM_PAGE_NONE && (want & SWIM_PAGE_BACK)) {
        size_t end = want & ~SWIM_PAGE_BACK;
        if (end > s->nmembers) end = s->nmembers;
        for (k = 0; k < end && n < s->cfg.sync_page; k++) {
            const struct mm_swim_member *m = s->members[end - 1 - k];
            n += !m->tombstone && m != s->self;
        }
        *start = end - k;
        *span = k;
        *next = *start ? (uint32_t)*start : SWIM_PAGE_NONE;
        return n;
    }
    if (want != SWIM_PAGE_NONE && want < s->nmembers)
        *start = want;
    else
        *start = s->state_cursor < s->nmembers ? s->state_cursor : 0;
    for (k = 0; k < s->nmembers && n < s->cfg.sync_page; k++) {
        const struct mm_swim_member *m = s->members[(*start + k) % s->nmembers];
        n += !m->tombstone && m != s->self;
    }
    *span = k;
    *next = (uint32_t)((*start + k) % s->nmembers);
    return n;
}

void
mm__swim_state_serve(struct mm_swim *s, const uint8_t *req, size_t len)
{
    s->serve_on = 0;
    if (!req || len < SWIM_STATE_HDR || req[0] != SWIM_STATE_VERSION) return;
    uint32_t want = mm__get_u32(req + 1 + MM_SWIM_ID_LEN + 4);
    if (want == SWIM_PAGE_NONE) return;
    s->serve_on = 1;
    s->serve_want = want;
}

/*
 * A state from |buf|'s sender was merged and brought |news| records.
 * When it was a page (its sender holds more members than it carried), the
 * next page is pulled from the sender at once, not after the jitter a
 * differing digest waits: while pages bring news, and on a walk (a
 * joiner's first pull, or a pull from a peer that lists more) until it
 * reaches the start of the sender's table or we caught up (a joiner
 * learns a large cluster a page a round trip, in order, not by random
 * pages of a rotation that others' pulls move too).
 */
static void
state_page_more(struct mm_swim *s, const uint8_t *buf, uint64_t news)
{
    int back = 0;
    uint32_t next = mm__get_u32(buf + 1 + MM_SWIM_ID_LEN + 8);
    int walk =
        s->pull_walk && memcmp(buf + 1, s->pull_peer, MM_SWIM_ID_LEN) == 0;
    if (walk) {
        /* A walk goes on by its own rule only, news or not. */
        s->pull_walk = 0;
        news = 0;
        /* It ends at the table's start, or once we list more than its
         * peer did (one more: ourselves, whom it may not list). */
        walk = next != SWIM_PAGE_NONE && (s->pull_listed == UINT32_MAX ||
                                          swim_listed(s) <= s->pull_listed);
        /* Each page must end below the one before (a peer that answers
         * the same page again ends the walk), and a walk is bounded. */
        if (walk && (!(s->pull_want & SWIM_PAGE_BACK) ||
                     s->pull_want == SWIM_PAGE_NONE ||
                     next >= (s->pull_want & ~SWIM_PAGE_BACK) ||
                     ++s->walk_pages >= SWIM_WALK_PAGES_MAX))
            walk = 0;
        back = walk;
    }
    if (next == SWIM_PAGE_NONE || (news == 0 && !walk) || s->leaving ||
        s->sync_pending)
        return;
    struct mm_swim_member *m = swim_find(s, buf + 1);
    if (!m || m->is_self || !swim_live(m)) return;
    s->sync_pending = 1;
    s->sync_by_digest = 0;
    s->sync_at = s->now;
    s->sync_want = back ? SWIM_PAGE_BACK | next : next;
    s->sync_walk = walk;
    s->sync_walk_listed = s->pull_listed;
    memcpy(s->sync_peer, m->rec->id, MM_SWIM_ID_LEN);
    s->sync_peer_digest = ~mm__swim_digest(s);
}

size_t
mm__swim_state_encode(struct mm_swim *s, uint8_t *out, size_t cap)
{
    size_t need = SWIM_STATE_HDR, count = 0, start, span;
    uint32_t next;
    uint8_t rec[SWIM_REC_MAX];
    state_page(s, &start, &span, &next);
    for (size_t k = 0; k < span; k++) {
        const struct mm_swim_member *m = s->members[(start + k) % s->nmembers];
        if (m->tombstone || m == s->self) continue;
        need += 3 + wr_rec(rec, m->rec);
        count++;
    }
    if (!s->self->tombstone) {
        need += 3 + wr_rec(rec, s->self->rec);
        count++;
    }
    if (!out || cap < need) return need;
    size_t o = 0;
    out[o++] = SWIM_STATE_VERSION;
    memcpy(out + o, s->self->rec->id, MM_SWIM_ID_LEN);
    o += MM_SWIM_ID_LEN;
    mm__put_u32(out + o, (uint32_t)count);
    mm__put_u32(out + o + 4, s->sync_in_flight ? s->pull_want : SWIM_PAGE_NONE);
    mm__put_u32(out + o + 8, next);
    o += 12;
    /* Ourselves first, then the live members, then the gone: a receiver
     * that merges in steps knows the sender and the live members first. */
    for (int pass = 0; pass < 3; pass++) {
        for (size_t k = 0; k < (pass ? span : 1); k++) {
            const struct mm_swim_member *m =
                pass ? s->members[(start + k) % s->nmembers] : s->self;
            if (m->tombstone || (pass && m == s->self)) continue;
            int live = m->state == MM_SWIM_ALIVE || m->state == MM_SWIM_SUSPECT;
            if ((pass == 1 && !live) || (pass == 2 && live)) continue;
            size_t n = wr_rec(out + o + 3, m->rec);
            out[o] = (uint8_t)m->state;
            mm__put_u16(out + o + 1, (uint16_t)n);
            o += 3 + n;
        }
    }
    if (s->serve_on)
        s->serve_on = 0; /* a served page leaves the rotation where it is */
    else if (span < s->nmembers)
        s->state_cursor = (start + span) % s->nmembers;
    return o;
}

static void
merge_entry(struct mm_swim *s, int state, const struct swim_rec *r,
            const uint8_t *sender)
{
    struct mm_swim_member *m = swim_find(s, r->id);
    int own_leave = (r->flags & MM_SWIM_REC_LEFT) != 0;
    if (memcmp(r->id, s->self->rec->id, MM_SWIM_ID_LEN) == 0) {
        if (apply_record(s, r) == 0 && state != MM_SWIM_ALIVE && !own_leave &&
            r->gen == s->self->rec->generation &&
            r->inc >= s->self->rec->incarnation)
            swim_refute(s, r->inc, "a peer's stale view of us");
        return;
    }
    if (!m) {
        /* Learn it (its signed record only); a suspicion then follows the
         * same path as for a member we knew, so a second merge changes
         * nothing. */
        const struct mm_swim_rec *x;
        if (rec_verify(s, r, NULL, &x) != 0) return;
        int st = own_leave                  ? MM_SWIM_LEFT
                 : state == MM_SWIM_SUSPECT ? MM_SWIM_ALIVE
                                            : state;
        m = member_add(s, x, st);
        /* Gossiped on only in a small cluster (at most
         * MM_SWIM_STATE_GOSSIP_MAX members): there everyone's fan-out
         * speeds a join burst (a burst of 32 took about 1.7x as long
         * without), for a few hundred bytes.  In a large one a joiner that
         * pulls the membership does not re-gossip it (retransmit_mult x
         * log N sends a member: most of a join burst's bytes at N=1 000,
         * and at 500 real nodes on 2 cores a storm of suspicions): its
         * sender holds those, and the rest learn them from their own
         * gossip and their own pulls (a digest that differs). */
        if (m && m->state == MM_SWIM_ALIVE &&
            s->nmembers <= MM_SWIM_STATE_GOSSIP_MAX)
            bcast_alive(s, m);
        if (m && state == MM_SWIM_SUSPECT && !own_leave)
            apply_suspect(s, r->id, r->gen, r->inc, sender);
        return;
    }
    /* The record is the member's word; the state is the sender's
     * opinion, weighed as such. */
    if (apply_record(s, r) != 0 || own_leave) return;
    switch (state) {
    case MM_SWIM_SUSPECT:
    case MM_SWIM_FAILED:
        /* Prefer suspicion to a verdict we did not reach: if it is alive,
         * it gets the chance to refute. */
        apply_suspect(s, r->id, r->gen, r->inc, sender);
        break;
    case MM_SWIM_LEFT:
        apply_left(s, r->id, r->gen, r->inc, sender);
        break;
    default:
        break;
    }
}

/* Signatures checked so far (valid or not). */
static uint64_t
swim_checks(const struct mm_swim *s)
{
    return s->stats.verified + s->stats.forged;
}

/*
 * Walks a push-pull payload; with |apply| 0 only validates.  Applying
 * takes the entries from *next on until |max| signatures were checked
 * (entries that need no check, news we hold already, cost nothing) or
 * SWIM_MERGE_ENTRIES_MAX entries were taken, or at the first gone member
 * (failed or left: background news, see mm__swim_state_merge_some) after
 * a live one, and leaves in *next where it stopped: 1
 * when entries remain, 2 when they remain and the next one is a gone member's,
 * 0 at the end, -1 when the payload does not decode.
 */
static int
state_walk(struct mm_swim *s, const uint8_t *buf, size_t len, int apply,
           uint32_t *next, uint32_t max)
{
    uint64_t checks0 = swim_checks(s);
    struct swim_rd r = {buf, len, 0};
    uint8_t sender[MM_SWIM_ID_LEN];
    struct swim_rec rec;
    if (rd_u8(&r) != SWIM_STATE_VERSION) return -1;
    rd_bytes(&r, sender, MM_SWIM_ID_LEN);
    uint32_t count = rd_u32(&r);
    rd_u32(&r); /* want: read by mm__swim_state_serve */
    rd_u32(&r); /* next: read by state_page_more */
    if (r.err) return -1;
    uint32_t first = apply ? *next : 0, done = 0;
    int live_done = 0; /* the last entry this step took was a live one */
    for (uint32_t i = 0; i < count; i++) {
        uint8_t st = rd_u8(&r);
        size_t n = rd_u16(&r);
        if (r.err || st > MM_SWIM_LEFT || r.n < n) return -1;
        int gone = st == MM_SWIM_FAILED || st == MM_SWIM_LEFT;
        if (apply && i >= first &&
            (swim_checks(s) - checks0 >= max ||
             done == SWIM_MERGE_ENTRIES_MAX || (gone && live_done))) {
            *next = i;
            return gone ? 2 : 1;
        }
        struct swim_rd e = {r.p, n, 0};
        r.p += n;
        r.n -= n;
        if (apply && i < first) continue; /* applied in an earlier step */
        rd_rec(&e, &rec);
        if (e.err || e.n != 0) return -1;
        if (apply) {
            merge_entry(s, st, &rec, sender);
            done++;
            live_done = !gone;
        }
    }
    if (apply) *next = count;
    return r.n == 0 ? 0 : -1;
}

int
mm__swim_state_merge_some(struct mm_swim *s, const uint8_t *buf, size_t len,
                          uint32_t *next, uint32_t max, uint64_t now)
{
    if (now > s->now) s->now = now;
    if (*next == 0) {
        uint32_t none = 0;
        if (!buf || state_walk(s, buf, len, 0, &none, 0) != 0) {
            s->stats.decode_errors++;
            return MM_EDECODE;
        }
        s->walk_forged = 0; /* a payload's forgery spans its steps */
        s->merge_verified = s->stats.verified;
    }
    int rc = state_walk(s, buf, len, 1, next, max ? max : 1);
    if (rc > 0) return rc;
    s->sync_in_flight = 0;
    state_page_more(s, buf, s->stats.verified - s->merge_verified);
    return 0;
}

int
mm__swim_state_merge(struct mm_swim *s, const uint8_t *buf, size_t len,
                     uint64_t now)
{
    uint32_t next = 0;
    int rc;
    do
        rc = mm__swim_state_merge_some(s, buf, len, &next, UINT32_MAX, now);
    while (rc > 0);
    return rc;
}

void
mm__swim_sync_done(struct mm_swim *s, uint64_t now)
{
    if (now > s->now) s->now = now;
    s->sync_in_flight = s->pull_walk = 0;
}

int
mm__swim_sync_in_flight(const struct mm_swim *s)
{
    return s->sync_in_flight;
}

/* ---- queries ----------------------------------------------------------- */

void
mm__swim_members(struct mm_swim *s,
                 int (*cb)(void *data, const struct mm_swim_member *m),
                 void *data)
{
    for (size_t i = 0; i < s->nmembers; i++)
        if (!s->members[i]->tombstone && cb(data, s->members[i])) return;
}

size_t
mm__swim_count(const struct mm_swim *s, int state)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nmembers; i++) {
        const struct mm_swim_member *m = s->members[i];
        if (!m->tombstone && (state == MM_SWIM_NONE || m->state == state)) n++;
    }
    return n;
}

const struct mm_swim_member *
mm__swim_find(const struct mm_swim *s, const uint8_t id[MM_SWIM_ID_LEN])
{
    const struct mm_swim_member *m = swim_find(s, id);
    return m && !m->tombstone ? m : NULL;
}

const struct mm_swim_member *
mm__swim_self(const struct mm_swim *s)
{
    return s->self;
}

int
mm__swim_check(const struct mm_swim *s)
{
#define BAD(...)                                                               \
    do {                                                                       \
        fprintf(stderr, "swim check: " __VA_ARGS__);                           \
        fputc('\n', stderr);                                                   \
        return -1;                                                             \
    } while (0)
    size_t listed = 0, live = 0;
    uint64_t due = UINT64_MAX, digest = 0;
    if (s->byid.n != s->nmembers)
        BAD("the index holds %zu members, the table %zu", s->byid.n,
            s->nmembers);
    for (size_t i = 0; i < s->nmembers; i++) {
        const struct mm_swim_member *m = s->members[i];
        if (swim_find(s, m->rec->id) != m)
            BAD("%s is not found by its id", m->rec->name);
        if (!m->rec->tags) BAD("%s has no tags string", m->rec->name);
        if (m->rec->refs == 0)
            BAD("%s holds a record nobody holds", m->rec->name);
        if (m->susp && (m->tombstone || (m->state != MM_SWIM_SUSPECT &&
                                         m->state != MM_SWIM_FAILED)))
            BAD("%s holds a suspicion while %s", m->rec->name,
                mm__swim_state_name(m->state));
        if (!m->susp && !m->tombstone && m->state == MM_SWIM_SUSPECT)
            BAD("%s is suspect without its suspicion", m->rec->name);
        if (m->susp && m->susp->confirmers && m->state != MM_SWIM_SUSPECT)
            BAD("%s holds confirmers while %s", m->rec->name,
                mm__swim_state_name(m->state));
        if (m->susp && m->susp->nconfirmers >
                           (m->susp->confirmers ? MM_SWIM_CONFIRM_MAX : 0))
            BAD("%s counts %u confirmers", m->rec->name, m->susp->nconfirmers);
        if (m->digest_part != member_digest_part(m))
            BAD("%s: digest share not updated", m->rec->name);
        digest += m->digest_part;
        listed += !m->tombstone;
        live += swim_live(m);
        due = MM_MIN(due, member_due(s, m));
    }
    if (digest != s->digest) BAD("the digest kept is not the members' sum");
    size_t ndue = 0;
    for (size_t i = 0; i < s->nmembers; i++) {
        const struct mm_swim_member *m = s->members[i];
        int want = !m->is_self && (m->tombstone || m->state != MM_SWIM_ALIVE);
        if (m->table_slot != i) BAD("%s: table slot not kept", m->rec->name);
        if (member_due(s, m) != UINT64_MAX && !want)
            BAD("%s has something due but the tick would not look",
                m->rec->name);
        if (want && !m->due_slot && s->due_lost) continue;
        if (want != (m->due_slot != 0) ||
            (m->due_slot &&
             (m->due_slot > s->ndueset || s->dueset[m->due_slot - 1].m != m)))
            BAD("%s: its place in the set the tick walks is wrong",
                m->rec->name);
        if (m->due_slot && s->dueset[m->due_slot - 1].key > member_due(s, m))
            BAD("%s: due at %llu, its heap key is later", m->rec->name,
                (unsigned long long)member_due(s, m));
        ndue += want;
    }
    if (ndue != s->ndueset)
        BAD("the set the tick walks holds %zu, %zu belong", s->ndueset, ndue);
    for (size_t i = 1; i < s->ndueset; i++)
        if (s->dueset[(i - 1) / 2].key > s->dueset[i].key)
            BAD("the due heap is out of order at %zu", i);
    if (s->bqidx.n != s->nbq)
        BAD("the broadcast index holds %zu, the queue %zu", s->bqidx.n, s->nbq);
    for (size_t i = 0; i < s->nbq; i++) {
        if (mm__idx_find(&s->bqidx, s->bq[i]->about) != s->bq[i])
            BAD("broadcast %zu is not found by its member id", i);
        if (i > 0 && s->bq[i - 1]->transmits > s->bq[i]->transmits)
            BAD("broadcast %zu is sent more often than the next", i - 1);
    }
    if (s->nlisted != listed || s->nlive != live)
        BAD("counts kept %zu listed, %zu live; there are %zu, %zu", s->nlisted,
            s->nlive, listed, live);
    if (s->due > due)
        BAD("next member deadline kept at %llu, one is due at %llu",
            (unsigned long long)s->due, (unsigned long long)due);
    return 0;
#undef BAD
}

int
mm__swim_awareness(const struct mm_swim *s)
{
    return s->awareness;
}

const struct mm_swim_stats *
mm__swim_stats(const struct mm_swim *s)
{
    return &s->stats;
}

int
mm__swim_timings_format(const struct mm_swim *s, char *buf, size_t len)
{
    const struct mm_swim_config *c = &s->cfg;
    uint64_t mn, mx;
    mm__swim_suspicion_bounds(s, &mn, &mx);
    return snprintf(
        buf, len,
        "probe_interval: %u ms (now %llu ms, x%d for local health)\n"
        "probe_timeout: %u ms (now %llu ms)\n"
        "indirect_checks: %u\n"
        "gossip_interval: %u ms\n"
        "gossip_nodes: %u\n"
        "retransmit_mult: %u (limit now %u sends)\n"
        "suspicion_mult: %u (min now %llu ms)\n"
        "suspicion_max_mult: %u (max now %llu ms, %u confirmations to "
        "reach min)\n"
        "awareness_max: %u (score now %d)\n"
        "gossip_to_dead: %u ms\n"
        "reprobe_backoff: %u..%u ms\n"
        "seed_backoff: %u..%u ms\n"
        "leave_timeout: %u ms\n"
        "sync_jitter: %u ms\n"
        "sync_gap_max: %u ms (gap now %llu ms)\n"
        "late: %u ms (probe steps run late: %llu)\n"
        "reconnect_timeout: %llu ms\n"
        "tombstone: %llu ms\n"
        "packet_max: %u bytes\n",
        c->probe_interval_ms,
        (unsigned long long)swim_scale(s, c->probe_interval_ms),
        s->awareness + 1, c->probe_timeout_ms,
        (unsigned long long)swim_scale(s, c->probe_timeout_ms),
        c->indirect_checks, c->gossip_interval_ms, c->gossip_nodes,
        c->retransmit_mult, mm__swim_retransmit_limit(s), c->suspicion_mult,
        (unsigned long long)mn, c->suspicion_max_mult, (unsigned long long)mx,
        swim_suspicion_k(s), c->awareness_max, s->awareness,
        c->gossip_to_dead_ms, c->reprobe_min_ms, c->reprobe_max_ms,
        c->seed_min_ms, c->seed_max_ms, c->leave_timeout_ms, c->sync_jitter_ms,
        c->sync_gap_max_ms, (unsigned long long)s->sync_gap, c->late_ms,
        (unsigned long long)s->stats.late_probes,
        (unsigned long long)c->reconnect_timeout_ms,
        (unsigned long long)c->tombstone_ms, c->packet_max);
}
