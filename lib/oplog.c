/*
 * oplog.c — registry replication: per-origin logs, version vectors, the
 * view with label conflicts, anti-entropy and compaction (docs/design.md,
 * Registry). Pure: no libuv, no sockets, no clock.  See oplog.h for the model.
 *
 * Byte format (all integers little-endian; strings are length-prefixed
 * bytes without a terminator and must not contain NUL).
 *
 *   record    = kind:u8 | origin:16 | generation:u64 | seq:u64 | body
 *               (33-byte header; the body fills the rest of the record
 *               exactly, trailing bytes are an error)
 *   kind 1  REGISTER   body = entry
 *   kind 2  CHECK_IN   body = label:str | key:str
 *   kind 3  REMOVE     body = label:str | reason:u8       (reason < 64)
 *   kind 4  SNAPSHOT   body = nentries:u32 | nentries x entry
 *                      (seq = S, the last op folded into the snapshot)
 *   entry     = hlc:u64 | actor:u64 | visibility:u8 | label:str | type:str |
 *               nkeys:u16 | nkeys x key:str
 *   str       = len:u16 | bytes
 *
 *   batch     = version:u8 (=2) | nheads:u16 | nheads x head |
 *               count:u32 | count x (len:u32 | record)
 *   head      = origin:16 | generation:u64 | seq:u64 | base:32 | hash:32 |
 *               pub:32 | sig:64        (MM_OPLOG_HEAD_LEN = 192 bytes;
 *               heads in ascending origin order, one per origin of the
 *               records; see mm__oplog_batch_verify)
 *   chain     : h_0 = 32 zero bytes, h_n = SHA-256(h_{n-1} | record n),
 *               per (origin, generation)
 *   sig       = Ed25519(origin's identity key, "murmer-oplog-head-v1" |
 *               origin | generation | seq | hash)
 *   vector    = version:u8 (=1) | count:u32 |
 *               count x (origin:16 | generation:u64 | seq:u64)
 *               (origins strictly ascending bytewise; length exactly
 *               5 + 32 * count)
 *
 * Limits (MM_EDECODE beyond them): seq >= 1; label 1..MM_OPLOG_LABEL_MAX
 * bytes; type 0..MM_OPLOG_TYPE_MAX; key 1..MM_OPLOG_KEY_MAX; nkeys <=
 * MM_OPLOG_KEYS_MAX; visibility 0 (internal) or 1 (public) — private never
 * travels; counts are checked against the bytes left before any loop, and
 * nothing is allocated from a peer-supplied length.
 *
 * The vector lists every origin with seq >= 1 (the local node included);
 * the digest is 64-bit FNV-1a over the encoded vector.  The registry hash
 * folds, in label order, each visible winner's label, origin, generation,
 * actor and (order-independently) keys.
 */
#include "oplog.h"

#include <errno.h>

#include "crypto.h"

#define REC_HDR (1 + MM_NODE_ID_LEN + 8 + 8)
#define ENTRY_MIN (8 + 8 + 1 + 2 + 1 + 2 + 2)
#define BATCH_HDR 7 /* version, nheads (0), count */
#define VEC_HDR 5
#define VEC_ELEM (MM_NODE_ID_LEN + 8 + 8)
#define WIRE_VERSION 1
#define BATCH_VERSION 2
#define HASH_LEN MM_SHA256_LEN
#define HEAD_LEN MM_OPLOG_HEAD_LEN
#define HEAD_CTX "murmer-oplog-head-v1"
#define HEAD_CTX_LEN 20
#define HEAD_MSG_LEN (HEAD_CTX_LEN + MM_NODE_ID_LEN + 8 + 8 + HASH_LEN)
/* Offsets in a head. */
#define H_GEN MM_NODE_ID_LEN
#define H_SEQ (H_GEN + 8)
#define H_BASE (H_SEQ + 8)
#define H_HASH (H_BASE + HASH_LEN)
#define H_PUB (H_HASH + HASH_LEN)
#define H_SIG (H_PUB + MM_ED25519_KEY_LEN)

struct oplog_rec {
    uint64_t seq;
    uint8_t *p; /* owned encoded record */
    size_t len;
    uint8_t head[HASH_LEN]; /* the origin's chain hash after this record */
    uint8_t *sig; /* owned: the origin's signature of that head, or NULL */
};

/* A snapshot record with the chain hash at its seq, in one block. */
struct oplog_snap {
    size_t len;
    uint8_t head[HASH_LEN]; /* zero when not known (cannot be sealed) */
    uint8_t rec[];
};

/* Laid out small: one is held per origin that wrote something. */
struct oplog_origin {
    uint8_t id[MM_NODE_ID_LEN];
    uint64_t gen;
    uint64_t seq;            /* last applied */
    uint64_t snap_seq;       /* 0 = no snapshot */
    uint64_t emitted;        /* last seq handed to the applied callback */
    struct oplog_snap *snap; /* owned, or NULL */
    struct oplog_rec *log;   /* owned; seqs snap_seq+1 .. seq */
    struct oplog_rec *pend;  /* owned; early records, ascending seq */
    uint32_t nlog, caplog;
    uint32_t npend, cappend;
    struct mm__oplog_entry *entries; /* owned list of this origin's claims */
    size_t nentries;
    uint8_t pub[MM_ED25519_KEY_LEN]; /* its identity key, once a head came */
    /* mm__oplog_batch_seal's scratch: this origin's run in the batch. */
    uint64_t s_first, s_last, s_end;
    uint32_t pos;  /* its index in mm__oplog.orgs */
    uint8_t state; /* enum mm__oplog_state */
    uint8_t tomb;  /* reaped: records of gen <= |gen| are discarded */
    uint8_t has_pub;
    uint8_t s_on;
};

/*
 * What membership said about an origin that holds nothing (no log, no
 * snapshot, no early records, no entries): a few bytes instead of a whole
 * struct oplog_origin.  With a member lookup (mm__oplog_set_member_lookup)
 * only tombstones are kept: the lookup answers for the others.
 */
struct oplog_fact {
    uint8_t id[MM_NODE_ID_LEN];
    uint64_t gen;
    uint8_t state; /* enum mm__oplog_state */
    uint8_t tomb;  /* reaped: records of gen <= |gen| are discarded */
    uint8_t used;
};

struct oplog_slot {
    size_t label_len;
    uint64_t hash;
    struct oplog_slot *hnext;
    struct mm__oplog_entry *claims; /* borrowed; owned by their origins */
    struct mm__oplog_entry *winner; /* the visible one, or NULL */
    char label[];                   /* NUL-terminated, in the same block */
};

struct mm__oplog {
    uint8_t self[MM_NODE_ID_LEN];
    struct oplog_origin *me; /* borrowed from orgs */
    struct mm__oplog_cbs cbs;
    /*
     * Origins that hold something.  |orgs| (owned) is in id order up to
     * |nosorted|, in creation order after that, with NULL holes where an
     * origin went; org_sort() restores one sorted run for the walks that
     * need id order.  |oidx| indexes them by id (open addressing).
     */
    struct oplog_origin **orgs;
    size_t norgs, caporgs, nosorted, nholes;
    struct oplog_origin **oidx;
    size_t oidx_cap, oidx_n;
    struct oplog_fact *facts; /* owned; open addressing by id */
    size_t facts_cap, nfacts;
    mm__oplog_member_fn member; /* NULL: every member's facts are kept */
    void *member_data;
    struct oplog_slot **buckets; /* owned hash table of labels */
    size_t nbuckets, nslots;
    struct oplog_slot **sorted; /* owned cache of slots in label order */
    size_t nsorted;
    int sorted_ok;
    size_t nwinners;
    const struct mm_sign_key *sign_key; /* borrowed; NULL: heads unsigned */
    uint8_t pub[MM_ED25519_KEY_LEN];
};

/* ---- names --------------------------------------------------------------- */

const char *
mm__oplog_reason_name(int reason)
{
    switch (reason) {
    case MM_OPLOG_REASON_SHADOWED:
        return "shadowed";
    case MM_OPLOG_REASON_GENERATION:
        return "new_generation";
    case MM_OPLOG_REASON_REAPED:
        return "reaped";
    case MM_OPLOG_REASON_REPLACED:
        return "replaced";
    case MM_OPLOG_REASON_COMPACTED:
        return "compacted";
    case MM_REASON_NORMAL:
        return "normal";
    case MM_REASON_CRASH:
        return "crash";
    case MM_REASON_STOPPED:
        return "stopped";
    case MM_REASON_RESTART_LIMIT:
        return "restart_limit";
    case MM_REASON_SHUTDOWN:
        return "shutdown";
    case MM_REASON_NODE_DOWN:
        return "node_down";
    case MM_REASON_DROPPED:
        return "dropped";
    case MM_REASON_START_FAILED:
        return "start_failed";
    default:
        return "unknown";
    }
}

/* ---- decoding ------------------------------------------------------------ */

struct rd {
    const uint8_t *p;
    size_t left;
};

static int
rd_take(struct rd *r, size_t n, const uint8_t **out)
{
    if (r->left < n) return MM_EDECODE;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static int
rd_u8(struct rd *r, uint8_t *v)
{
    const uint8_t *b;
    if (rd_take(r, 1, &b)) return MM_EDECODE;
    *v = b[0];
    return 0;
}

static int
rd_u16(struct rd *r, uint16_t *v)
{
    const uint8_t *b;
    if (rd_take(r, 2, &b)) return MM_EDECODE;
    *v = mm__get_u16(b);
    return 0;
}

static int
rd_u32(struct rd *r, uint32_t *v)
{
    const uint8_t *b;
    if (rd_take(r, 4, &b)) return MM_EDECODE;
    *v = mm__get_u32(b);
    return 0;
}

static int
rd_u64(struct rd *r, uint64_t *v)
{
    const uint8_t *b;
    if (rd_take(r, 8, &b)) return MM_EDECODE;
    *v = mm__get_u64(b);
    return 0;
}

/* A length-prefixed string of min..max bytes without NUL. */
static int
rd_str(struct rd *r, size_t min, size_t max, const char **s, uint16_t *n)
{
    const uint8_t *b;
    if (rd_u16(r, n) || *n < min || *n > max || rd_take(r, *n, &b))
        return MM_EDECODE;
    if (memchr(b, 0, *n)) return MM_EDECODE;
    *s = (const char *)b;
    return 0;
}

static int
rd_entry(struct rd *r, struct mm__oplog_op *op)
{
    if (rd_u64(r, &op->hlc) || rd_u64(r, &op->actor) ||
        rd_u8(r, &op->visibility))
        return MM_EDECODE;
    if (op->visibility != MM_VIS_INTERNAL && op->visibility != MM_VIS_PUBLIC)
        return MM_EDECODE;
    if (rd_str(r, 1, MM_OPLOG_LABEL_MAX, &op->label, &op->label_len) ||
        rd_str(r, 0, MM_OPLOG_TYPE_MAX, &op->type, &op->type_len) ||
        rd_u16(r, &op->nkeys) || op->nkeys > MM_OPLOG_KEYS_MAX)
        return MM_EDECODE;
    op->keys = r->p;
    for (uint16_t i = 0; i < op->nkeys; i++) {
        const char *k;
        uint16_t kl;
        if (rd_str(r, 1, MM_OPLOG_KEY_MAX, &k, &kl)) return MM_EDECODE;
    }
    return 0;
}

int
mm__oplog_op_decode(struct mm__oplog_op *op, const uint8_t *rec, size_t len)
{
    struct rd r = {rec, len};
    memset(op, 0, sizeof(*op));
    if (rec == NULL || rd_u8(&r, &op->kind) ||
        rd_take(&r, MM_NODE_ID_LEN, &op->origin) ||
        rd_u64(&r, &op->generation) || rd_u64(&r, &op->seq) || op->seq == 0)
        return MM_EDECODE;
    switch (op->kind) {
    case MM_OPLOG_REGISTER:
        if (rd_entry(&r, op)) return MM_EDECODE;
        break;
    case MM_OPLOG_CHECK_IN:
        if (rd_str(&r, 1, MM_OPLOG_LABEL_MAX, &op->label, &op->label_len) ||
            rd_str(&r, 1, MM_OPLOG_KEY_MAX, &op->key, &op->key_len))
            return MM_EDECODE;
        break;
    case MM_OPLOG_REMOVE:
        if (rd_str(&r, 1, MM_OPLOG_LABEL_MAX, &op->label, &op->label_len) ||
            rd_u8(&r, &op->reason) || op->reason >= 64)
            return MM_EDECODE;
        break;
    case MM_OPLOG_SNAPSHOT:
        if (rd_u32(&r, &op->nentries) || op->nentries > r.left / ENTRY_MIN)
            return MM_EDECODE;
        op->entries = r.p;
        for (uint32_t i = 0; i < op->nentries; i++) {
            struct mm__oplog_op e;
            if (rd_entry(&r, &e)) return MM_EDECODE;
        }
        op->entries_len = (size_t)(r.p - op->entries);
        break;
    default:
        return MM_EDECODE;
    }
    return r.left == 0 ? 0 : MM_EDECODE;
}

void
mm__oplog_op_key(const struct mm__oplog_op *op, size_t *pos, const char **key,
                 uint16_t *key_len)
{
    const uint8_t *p = op->keys + *pos;
    *key_len = mm__get_u16(p);
    *key = (const char *)p + 2;
    *pos += 2u + *key_len;
}

int
mm__oplog_snap_next(const struct mm__oplog_op *snap, size_t *pos,
                    struct mm__oplog_op *e)
{
    if (*pos >= snap->entries_len) return 0;
    struct rd r = {snap->entries + *pos, snap->entries_len - *pos};
    memset(e, 0, sizeof(*e));
    if (rd_entry(&r, e)) return 0; /* cannot happen for a validated snapshot */
    e->kind = MM_OPLOG_REGISTER;
    e->origin = snap->origin;
    e->generation = snap->generation;
    e->seq = snap->seq;
    *pos = snap->entries_len - r.left;
    return 1;
}

/* ---- encoding ------------------------------------------------------------ */

static uint8_t *
wr_hdr(uint8_t *p, int kind, const uint8_t *origin, uint64_t gen, uint64_t seq)
{
    *p++ = (uint8_t)kind;
    memcpy(p, origin, MM_NODE_ID_LEN);
    p += MM_NODE_ID_LEN;
    mm__put_u64(p, gen);
    mm__put_u64(p + 8, seq);
    return p + 16;
}

static uint8_t *
wr_str(uint8_t *p, const char *s, size_t n)
{
    mm__put_u16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

static size_t
entry_size(const char *label, const char *type, const char *const *keys,
           size_t nkeys)
{
    size_t n = 8 + 8 + 1 + 2 + strlen(label) + 2 + strlen(type) + 2;
    for (size_t i = 0; i < nkeys; i++)
        n += 2 + strlen(keys[i]);
    return n;
}

static uint8_t *
wr_entry(uint8_t *p, uint64_t hlc, uint64_t actor, int vis, const char *label,
         const char *type, const char *const *keys, size_t nkeys)
{
    mm__put_u64(p, hlc);
    mm__put_u64(p + 8, actor);
    p[16] = (uint8_t)vis;
    p = wr_str(p + 17, label, strlen(label));
    p = wr_str(p, type, strlen(type));
    mm__put_u16(p, (uint16_t)nkeys);
    p += 2;
    for (size_t i = 0; i < nkeys; i++)
        p = wr_str(p, keys[i], strlen(keys[i]));
    return p;
}

/* ---- small helpers ------------------------------------------------------- */

static uint64_t
fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
fnv_u64(uint64_t h, uint64_t v)
{
    uint8_t b[8];
    mm__put_u64(b, v);
    return fnv_bytes(h, b, 8);
}

#define FNV_INIT 1469598103934665603ULL

static int
str_ok(const char *s, size_t min, size_t max)
{
    if (s == NULL) return 0;
    size_t n = strlen(s);
    return n >= min && n <= max;
}

static void
emit(mm__oplog *o, int kind, const struct mm__oplog_entry *e, int reason,
     const char *key)
{
    if (o->cbs.event == NULL) return;
    struct mm__oplog_event ev = {kind, e, reason, key};
    o->cbs.event(o->cbs.data, &ev);
}

/* ---- origins ------------------------------------------------------------- */

static size_t
id_hash(const uint8_t *id)
{
    return (size_t)mm__hash_u64(mm__get_u64(id) ^
                                mm__hash_u64(mm__get_u64(id + 8)));
}

/* The index slot of |id|: the one holding it, or the empty one where it
 * would go. */
static size_t
oidx_slot(const mm__oplog *o, const uint8_t *id)
{
    size_t mask = o->oidx_cap - 1, i = id_hash(id) & mask;
    while (o->oidx[i] && memcmp(o->oidx[i]->id, id, MM_NODE_ID_LEN) != 0)
        i = (i + 1) & mask;
    return i;
}

static struct oplog_origin *
org_find(const mm__oplog *o, const uint8_t *id)
{
    if (o->oidx_cap == 0) return NULL;
    return o->oidx[oidx_slot(o, id)];
}

/* The index with |cap| slots (a power of two above its count). */
static int
oidx_resize(mm__oplog *o, size_t cap)
{
    struct oplog_origin **t = mm__calloc(cap, sizeof(*t));
    if (t == NULL) return -ENOMEM;
    struct oplog_origin **old = o->oidx;
    size_t oldcap = o->oidx_cap;
    o->oidx = t;
    o->oidx_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i]) o->oidx[oidx_slot(o, old[i]->id)] = old[i];
    mm__free(old);
    return 0;
}

/* Room for one more origin in the index (kept at most 3/4 full). */
static int
oidx_reserve(mm__oplog *o)
{
    if ((o->oidx_n + 1) * 4 <= o->oidx_cap * 3) return 0;
    return oidx_resize(o, o->oidx_cap ? o->oidx_cap * 2 : 16);
}

/* Removes slot |i| of an open-addressing table of |cap| slots, moving
 * back the entries after it that would no longer be found. */
#define OA_DELETE(tab, cap, i, is_used, key_of, clear)                         \
    do {                                                                       \
        size_t mask_ = (cap)-1, i_ = (i), j_ = (i);                            \
        for (;;) {                                                             \
            j_ = (j_ + 1) & mask_;                                             \
            if (!is_used((tab)[j_])) break;                                    \
            size_t k_ = id_hash(key_of((tab)[j_])) & mask_;                    \
            if (i_ <= j_ ? (i_ < k_ && k_ <= j_) : (i_ < k_ || k_ <= j_))      \
                continue;                                                      \
            (tab)[i_] = (tab)[j_];                                             \
            i_ = j_;                                                           \
        }                                                                      \
        clear((tab)[i_]);                                                      \
    } while (0)

#define ORG_USED(x) ((x) != NULL)
#define ORG_KEY(x) ((x)->id)
#define ORG_CLEAR(x) ((x) = NULL)
#define FACT_USED(x) ((x).used)
#define FACT_KEY(x) ((x).id)
#define FACT_CLEAR(x) memset(&(x), 0, sizeof(x))

/* ---- facts of origins that hold nothing ---------------------------------- */

static size_t
fact_slot(const mm__oplog *o, const uint8_t *id)
{
    size_t mask = o->facts_cap - 1, i = id_hash(id) & mask;
    while (o->facts[i].used && memcmp(o->facts[i].id, id, MM_NODE_ID_LEN) != 0)
        i = (i + 1) & mask;
    return i;
}

static struct oplog_fact *
fact_find(const mm__oplog *o, const uint8_t *id)
{
    if (o->facts_cap == 0) return NULL;
    struct oplog_fact *f = &o->facts[fact_slot(o, id)];
    return f->used ? f : NULL;
}

/* The table with |cap| slots (a power of two above its count). */
static int
facts_resize(mm__oplog *o, size_t cap)
{
    struct oplog_fact *t = mm__calloc(cap, sizeof(*t));
    if (t == NULL) return -ENOMEM;
    struct oplog_fact *old = o->facts;
    size_t oldcap = o->facts_cap;
    o->facts = t;
    o->facts_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].used) o->facts[fact_slot(o, old[i].id)] = old[i];
    mm__free(old);
    return 0;
}

static void
fact_delete(mm__oplog *o, const uint8_t *id)
{
    struct oplog_fact *f = fact_find(o, id);
    if (f == NULL) return;
    OA_DELETE(o->facts, o->facts_cap, (size_t)(f - o->facts), FACT_USED,
              FACT_KEY, FACT_CLEAR);
    o->nfacts--;
    /* Members that wrote records since: give the room back (best effort). */
    if (o->facts_cap > 64 && o->nfacts * 8 < o->facts_cap)
        facts_resize(o, o->facts_cap / 4);
}

/* Sets the facts of |id| (created if need be).  0 or -ENOMEM. */
static int
fact_set(mm__oplog *o, const uint8_t *id, uint64_t gen, int state, int tomb)
{
    struct oplog_fact *f = fact_find(o, id);
    if (f == NULL) {
        if ((o->nfacts + 1) * 4 > o->facts_cap * 3 &&
            facts_resize(o, o->facts_cap ? o->facts_cap * 2 : 16))
            return -ENOMEM;
        f = &o->facts[fact_slot(o, id)];
        memcpy(f->id, id, MM_NODE_ID_LEN);
        f->used = 1;
        o->nfacts++;
    }
    f->gen = gen;
    f->state = (uint8_t)state;
    f->tomb = (uint8_t)tomb;
    return 0;
}

/*
 * What is known of |id|, an origin that holds nothing: its generation,
 * state and whether it is a tombstone; 0 if nothing is.  The newer
 * generation of the kept facts and the member lookup wins; at the same
 * generation a tombstone does.
 */
static int
org_facts(const mm__oplog *o, const uint8_t *id, uint64_t *gen, int *state,
          int *tomb)
{
    const struct oplog_fact *f = fact_find(o, id);
    uint64_t mg;
    int ms, known = 0;
    if (f) {
        *gen = f->gen;
        *state = f->state;
        *tomb = f->tomb;
        known = 1;
    }
    if (o->member && o->member(o->member_data, id, &mg, &ms) == 0 &&
        ms >= MM_OPLOG_ALIVE && ms <= MM_OPLOG_REAPED &&
        (!known || mg > *gen)) {
        *gen = mg;
        *state = ms;
        *tomb = ms == MM_OPLOG_REAPED;
        known = 1;
    }
    return known;
}

static void org_sort(const mm__oplog *co);

static struct oplog_origin *
org_create(mm__oplog *o, const uint8_t *id, uint64_t gen, int state)
{
    if (o->norgs == o->caporgs && o->nholes) org_sort(o); /* reuse holes */
    if (o->norgs == o->caporgs) {
        size_t cap = o->caporgs ? o->caporgs * 2 : 8;
        struct oplog_origin **n = mm__realloc(o->orgs, cap * sizeof(*n));
        if (n == NULL) return NULL;
        o->orgs = n;
        o->caporgs = cap;
    }
    if (oidx_reserve(o)) return NULL;
    struct oplog_origin *g = mm__calloc(1, sizeof(*g));
    if (g == NULL) return NULL;
    memcpy(g->id, id, MM_NODE_ID_LEN);
    g->gen = gen;
    g->state = (uint8_t)state;
    g->pos = (uint32_t)o->norgs;
    o->orgs[o->norgs++] = g;
    o->oidx[oidx_slot(o, id)] = g;
    o->oidx_n++;
    fact_delete(o, id); /* |g| holds them now */
    return g;
}

static void
org_free(struct oplog_origin *g)
{
    mm__free(g->log);
    mm__free(g->pend);
    mm__free(g->snap);
    mm__free(g);
}

static int
org_id_cmp(const void *a, const void *b)
{
    const struct oplog_origin *x = *(struct oplog_origin *const *)a;
    const struct oplog_origin *y = *(struct oplog_origin *const *)b;
    return memcmp(x->id, y->id, MM_NODE_ID_LEN);
}

/*
 * Puts |orgs| in id order without holes: the origins created since the
 * last call are sorted among themselves, then merged into the sorted run
 * (linear, like the walks that ask for it).  Mutates only the cache, so
 * the const queries may call it.
 */
static void
org_sort(const mm__oplog *co)
{
    mm__oplog *o = (mm__oplog *)co;
    if (o->nosorted == o->norgs && o->nholes == 0) return;
    size_t n = 0, ns = 0;
    for (size_t i = 0; i < o->norgs; i++) {
        if (o->orgs[i] == NULL) continue;
        if (i < o->nosorted) ns++;
        o->orgs[n++] = o->orgs[i];
    }
    qsort(o->orgs + ns, n - ns, sizeof(*o->orgs), org_id_cmp);
    if (ns && ns < n && org_id_cmp(&o->orgs[ns - 1], &o->orgs[ns]) > 0) {
        struct oplog_origin **m = mm__malloc(n * sizeof(*m));
        if (m == NULL) {
            qsort(o->orgs, n, sizeof(*o->orgs), org_id_cmp);
        } else {
            size_t i = 0, j = ns, k = 0;
            while (i < ns || j < n)
                m[k++] = j == n || (i < ns &&
                                    org_id_cmp(&o->orgs[i], &o->orgs[j]) < 0)
                             ? o->orgs[i++]
                             : o->orgs[j++];
            memcpy(o->orgs, m, n * sizeof(*m));
            mm__free(m);
        }
    }
    for (size_t i = 0; i < n; i++)
        o->orgs[i]->pos = (uint32_t)i;
    o->norgs = o->nosorted = n;
    o->nholes = 0;
}

static int
org_holds_nothing(const struct oplog_origin *g)
{
    return g->seq == 0 && g->snap == NULL && g->npend == 0 &&
           g->entries == NULL && g->nlog == 0;
}

/*
 * |g| holds nothing any more (reaped, or a new generation that has sent
 * nothing yet): it becomes mere facts, or nothing when the member lookup
 * answers for it.  Best effort: on -ENOMEM it stays a whole origin.
 */
static void
org_shrink(mm__oplog *o, struct oplog_origin *g)
{
    if (g == o->me || !org_holds_nothing(g)) return;
    if ((g->tomb || o->member == NULL) &&
        fact_set(o, g->id, g->gen, g->state, g->tomb) != 0)
        return;
    if (!g->tomb && o->member) fact_delete(o, g->id);
    size_t i = oidx_slot(o, g->id);
    OA_DELETE(o->oidx, o->oidx_cap, i, ORG_USED, ORG_KEY, ORG_CLEAR);
    o->oidx_n--;
    o->orgs[g->pos] = NULL;
    o->nholes++;
    org_free(g);
    if (o->oidx_cap > 64 && o->oidx_n * 8 < o->oidx_cap)
        oidx_resize(o, o->oidx_cap / 4);
}

static int
org_in_view(const struct oplog_origin *g)
{
    return !g->tomb &&
           (g->state == MM_OPLOG_ALIVE || g->state == MM_OPLOG_SUSPECT);
}

static void
org_free_log(struct oplog_origin *g)
{
    for (size_t i = 0; i < g->nlog; i++) {
        mm__free(g->log[i].p);
        mm__free(g->log[i].sig);
    }
    g->nlog = 0;
}

static void
org_free_pend(struct oplog_origin *g)
{
    for (size_t i = 0; i < g->npend; i++) {
        mm__free(g->pend[i].p);
        mm__free(g->pend[i].sig);
    }
    g->npend = 0;
}

/* ---- the chain ------------------------------------------------------------
 */

/* |h| becomes SHA-256(|h| || rec).  0 or -ENOMEM. */
static int
chain_next(uint8_t h[HASH_LEN], const uint8_t *rec, size_t len)
{
    uint8_t small[512], *buf = small;
    if (HASH_LEN + len > sizeof(small) &&
        (buf = mm__malloc(HASH_LEN + len)) == NULL)
        return -ENOMEM;
    memcpy(buf, h, HASH_LEN);
    memcpy(buf + HASH_LEN, rec, len);
    mm__sha256(h, buf, HASH_LEN + len);
    if (buf != small) mm__free(buf);
    return 0;
}

/* The chain hash of |g| after its last applied record. */
static const uint8_t *
org_head(const struct oplog_origin *g)
{
    static const uint8_t zero[HASH_LEN];
    if (g->nlog) return g->log[g->nlog - 1].head;
    if (g->snap) return g->snap->head;
    return zero;
}

/* The bytes a head's signature covers. */
static void
head_msg(uint8_t msg[HEAD_MSG_LEN], const uint8_t *origin, uint64_t gen,
         uint64_t seq, const uint8_t hash[HASH_LEN])
{
    memcpy(msg, HEAD_CTX, HEAD_CTX_LEN);
    memcpy(msg + HEAD_CTX_LEN, origin, MM_NODE_ID_LEN);
    mm__put_u64(msg + HEAD_CTX_LEN + MM_NODE_ID_LEN, gen);
    mm__put_u64(msg + HEAD_CTX_LEN + MM_NODE_ID_LEN + 8, seq);
    memcpy(msg + HEAD_CTX_LEN + MM_NODE_ID_LEN + 16, hash, HASH_LEN);
}

/* ---- labels -------------------------------------------------------------- */

static struct oplog_slot *
slot_find(const mm__oplog *o, const char *label, size_t n)
{
    if (o->nbuckets == 0) return NULL;
    uint64_t h = mm__hash_u64(fnv_bytes(FNV_INIT, label, n));
    for (struct oplog_slot *s = o->buckets[h & (o->nbuckets - 1)]; s;
         s = s->hnext)
        if (s->hash == h && s->label_len == n &&
            memcmp(s->label, label, n) == 0)
            return s;
    return NULL;
}

static int
slot_grow(mm__oplog *o)
{
    size_t nb = o->nbuckets ? o->nbuckets * 2 : 64;
    struct oplog_slot **b = mm__calloc(nb, sizeof(*b));
    if (b == NULL) return -ENOMEM;
    for (size_t i = 0; i < o->nbuckets; i++) {
        struct oplog_slot *s = o->buckets[i], *next;
        for (; s; s = next) {
            next = s->hnext;
            s->hnext = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
        }
    }
    mm__free(o->buckets);
    o->buckets = b;
    o->nbuckets = nb;
    return 0;
}

static struct oplog_slot *
slot_get(mm__oplog *o, const char *label, size_t n)
{
    struct oplog_slot *s = slot_find(o, label, n);
    if (s) return s;
    if (o->nslots >= o->nbuckets && slot_grow(o)) return NULL;
    s = mm__malloc(sizeof(*s) + n + 1);
    if (s == NULL) return NULL;
    memset(s, 0, sizeof(*s));
    memcpy(s->label, label, n);
    s->label[n] = '\0';
    s->label_len = n;
    s->hash = mm__hash_u64(fnv_bytes(FNV_INIT, label, n));
    s->hnext = o->buckets[s->hash & (o->nbuckets - 1)];
    o->buckets[s->hash & (o->nbuckets - 1)] = s;
    o->nslots++;
    o->sorted_ok = 0;
    return s;
}

static void
slot_delete(mm__oplog *o, struct oplog_slot *s)
{
    struct oplog_slot **pp = &o->buckets[s->hash & (o->nbuckets - 1)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    o->nslots--;
    o->sorted_ok = 0;
    mm__free(s);
}

/* Conflict rank: earlier registration HLC first, then lower node id. */
static int
rank_less(const struct mm__oplog_entry *a, const struct mm__oplog_entry *b)
{
    if (a->hlc != b->hlc) return a->hlc < b->hlc;
    int c = memcmp(a->origin, b->origin, MM_NODE_ID_LEN);
    if (c != 0) return c < 0;
    return a->actor < b->actor;
}

/*
 * Re-elects |s|'s winner after |changed| changed (joined, left, entered or
 * left the view).  Emits removed for the old winner (|reason| when it is
 * the changed entry, shadowed otherwise), then added for the new one.
 */
static void
slot_elect(mm__oplog *o, struct oplog_slot *s,
           const struct mm__oplog_entry *changed, int reason)
{
    struct mm__oplog_entry *best = NULL;
    for (struct mm__oplog_entry *c = s->claims; c; c = c->slot_next)
        if (org_in_view(c->org) && (best == NULL || rank_less(c, best)))
            best = c;
    struct mm__oplog_entry *old = s->winner;
    if (old == best) return;
    s->winner = best;
    if (old) {
        o->nwinners--;
        emit(o, MM_OPLOG_REMOVED, old,
             old == changed ? reason : MM_OPLOG_REASON_SHADOWED, NULL);
    }
    if (best) {
        o->nwinners++;
        emit(o, MM_OPLOG_ADDED, best, 0, NULL);
    }
}

/* ---- entries ------------------------------------------------------------- */

static void
entry_free(struct mm__oplog_entry *e)
{
    if (e == NULL) return;
    for (uint16_t i = 0; i < e->nkeys; i++)
        mm__free(e->keys[i]);
    mm__free(e->keys);
    mm__free(e); /* label and type live in the same block */
}

static struct mm__oplog_entry *
entry_from_op(const struct mm__oplog_op *op, struct oplog_origin *g)
{
    /* One block for the entry, its label and its type. */
    size_t ll = op->label_len, tl = op->type_len;
    struct mm__oplog_entry *e = mm__malloc(sizeof(*e) + ll + 1 + tl + 1);
    if (e == NULL) return NULL;
    memset(e, 0, sizeof(*e));
    e->label = (char *)(e + 1);
    memcpy(e->label, op->label, ll);
    e->label[ll] = '\0';
    e->type = e->label + ll + 1;
    memcpy(e->type, op->type, tl);
    e->type[tl] = '\0';
    if (op->nkeys && (e->keys = mm__calloc(op->nkeys, sizeof(char *))) == NULL)
        goto fail;
    size_t pos = 0;
    for (uint16_t i = 0; i < op->nkeys; i++) {
        const char *k;
        uint16_t kl;
        mm__oplog_op_key(op, &pos, &k, &kl);
        /* Duplicate keys collapse (an entry holds a key once). */
        int dup = 0;
        for (uint16_t j = 0; j < e->nkeys; j++)
            if (strlen(e->keys[j]) == kl && memcmp(e->keys[j], k, kl) == 0)
                dup = 1;
        if (dup) continue;
        if ((e->keys[e->nkeys] = mm__strndup(k, kl)) == NULL) goto fail;
        e->nkeys++;
    }
    memcpy(e->origin, g->id, MM_NODE_ID_LEN);
    e->generation = g->gen;
    e->actor = op->actor;
    e->hlc = op->hlc;
    e->visibility = op->visibility;
    e->org = g;
    return e;
fail:
    entry_free(e);
    return NULL;
}

static int
entry_has_key(const struct mm__oplog_entry *e, const char *k, size_t n)
{
    for (uint16_t i = 0; i < e->nkeys; i++)
        if (strlen(e->keys[i]) == n && memcmp(e->keys[i], k, n) == 0) return 1;
    return 0;
}

/* Adds key |k| to |e| (no-op if held); emits key_added for a winner. */
static int
entry_add_key(mm__oplog *o, struct mm__oplog_entry *e, const char *k, size_t n)
{
    if (entry_has_key(e, k, n)) return 0;
    if (e->nkeys >= MM_OPLOG_KEYS_MAX)
        return 0; /* capped: further keys are ignored on every node alike */
    char *dup = mm__strndup(k, n);
    char **keys =
        dup ? mm__realloc(e->keys, (e->nkeys + 1u) * sizeof(char *)) : NULL;
    if (keys == NULL) {
        mm__free(dup);
        return -ENOMEM;
    }
    e->keys = keys;
    e->keys[e->nkeys++] = dup;
    if (e->slot && e->slot->winner == e) emit(o, MM_OPLOG_KEY_ADDED, e, 0, dup);
    return 0;
}

/* The claim of origin |g| on a label, or NULL. */
static struct mm__oplog_entry *
org_entry(const mm__oplog *o, const struct oplog_origin *g, const char *label,
          size_t n)
{
    struct oplog_slot *s = slot_find(o, label, n);
    if (s == NULL) return NULL;
    for (struct mm__oplog_entry *c = s->claims; c; c = c->slot_next)
        if (c->org == g) return c;
    return NULL;
}

/* Links |e| into slot |s| and its origin, then elects. */
static void
entry_attach(mm__oplog *o, struct oplog_slot *s, struct mm__oplog_entry *e)
{
    struct oplog_origin *g = e->org;
    e->slot = s;
    e->slot_next = s->claims;
    s->claims = e;
    e->org_prev = NULL;
    e->org_next = g->entries;
    if (g->entries) g->entries->org_prev = e;
    g->entries = e;
    g->nentries++;
    slot_elect(o, s, e, 0);
}

/* Unlinks and frees |e| (removed event first if it was the winner). */
static void
entry_detach(mm__oplog *o, struct mm__oplog_entry *e, int reason, int keep_slot)
{
    struct oplog_slot *s = e->slot;
    struct mm__oplog_entry **pp = &s->claims;
    while (*pp != e)
        pp = &(*pp)->slot_next;
    *pp = e->slot_next;
    if (s->winner == e) slot_elect(o, s, e, reason);
    struct oplog_origin *g = e->org;
    if (e->org_prev)
        e->org_prev->org_next = e->org_next;
    else
        g->entries = e->org_next;
    if (e->org_next) e->org_next->org_prev = e->org_prev;
    g->nentries--;
    if (s->claims == NULL && !keep_slot) slot_delete(o, s);
    entry_free(e);
}

/* Drops every entry, the log, the snapshot and buffered records of |g|. */
static void
org_reset(mm__oplog *o, struct oplog_origin *g, int reason)
{
    while (g->entries)
        entry_detach(o, g->entries, reason, 0);
    org_free_log(g);
    org_free_pend(g);
    mm__free(g->snap);
    g->snap = NULL;
    g->seq = g->snap_seq = g->emitted = 0;
}

/* Re-elects every label |g| claims after its view membership changed. */
static void
org_reelect(mm__oplog *o, struct oplog_origin *g, int reason)
{
    for (struct mm__oplog_entry *e = g->entries; e; e = e->org_next)
        slot_elect(o, e->slot, e, reason);
}

/* ---- applying ------------------------------------------------------------ */

static int
log_push(struct oplog_origin *g, uint64_t seq, uint8_t *p, size_t len)
{
    if (g->nlog == g->caplog) {
        /* Most origins hold a record or two: start small, then double. */
        size_t cap = g->caplog ? g->caplog * 2 : 2;
        struct oplog_rec *n = mm__realloc(g->log, cap * sizeof(*n));
        if (n == NULL) return -ENOMEM;
        g->log = n;
        g->caplog = cap;
    }
    g->log[g->nlog++] = (struct oplog_rec){.seq = seq, .p = p, .len = len};
    return 0;
}

static uint8_t *
dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = mm__malloc(n);
    if (d) memcpy(d, p, n);
    return d;
}

/* Applies op |op| (encoded |rec|), whose seq is |g|'s next; |sig| (may be
 * NULL) is the origin's signature of the head it ends, |pub| its key. */
static int
apply_op(mm__oplog *o, struct oplog_origin *g, const struct mm__oplog_op *op,
         const uint8_t *rec, size_t len, int local, const uint8_t *sig,
         const uint8_t *pub)
{
    uint8_t head[HASH_LEN];
    memcpy(head, org_head(g), HASH_LEN);
    if (chain_next(head, rec, len)) return -ENOMEM;
    uint8_t *sigc = sig ? dup_bytes(sig, MM_ED25519_SIG_LEN) : NULL;
    if (sig && sigc == NULL) return -ENOMEM;
    uint8_t *copy = dup_bytes(rec, len);
    if (copy == NULL) {
        mm__free(sigc);
        return -ENOMEM;
    }
    if (g->nlog == g->caplog) {
        /* Reserve the log slot first so nothing fails after the change. */
        if (log_push(g, 0, NULL, 0)) {
            mm__free(copy);
            mm__free(sigc);
            return -ENOMEM;
        }
        g->nlog--;
    }
    struct mm__oplog_entry *e, *old;
    struct oplog_slot *s;
    int rc = 0;
    switch (op->kind) {
    case MM_OPLOG_REGISTER:
        e = entry_from_op(op, g);
        s = e ? slot_get(o, op->label, op->label_len) : NULL;
        if (s == NULL) {
            entry_free(e);
            rc = -ENOMEM;
            break;
        }
        old = org_entry(o, g, op->label, op->label_len);
        if (old) entry_detach(o, old, MM_OPLOG_REASON_REPLACED, 1);
        entry_attach(o, s, e);
        break;
    case MM_OPLOG_CHECK_IN:
        e = org_entry(o, g, op->label, op->label_len);
        if (e) rc = entry_add_key(o, e, op->key, op->key_len);
        break;
    case MM_OPLOG_REMOVE:
        e = org_entry(o, g, op->label, op->label_len);
        if (e) entry_detach(o, e, op->reason, 0);
        break;
    }
    if (rc) {
        mm__free(copy);
        mm__free(sigc);
        return rc;
    }
    struct oplog_rec *lr = &g->log[g->nlog++];
    *lr =
        (struct oplog_rec){.seq = op->seq, .p = copy, .len = len, .sig = sigc};
    memcpy(lr->head, head, HASH_LEN);
    if (sigc && pub) {
        memcpy(g->pub, pub, MM_ED25519_KEY_LEN);
        g->has_pub = 1;
    }
    g->seq = op->seq;
    /*
     * Handed over (and so forwarded) once a signature covers it: another
     * origin's records wait for the one that ends their run, so a relay
     * never forwards records it cannot seal.  Our own go at once (we sign
     * them), and so does everything when this node does not sign.
     */
    if (local || sigc || o->sign_key == NULL) {
        size_t i =
            g->emitted > g->snap_seq ? (size_t)(g->emitted - g->snap_seq) : 0;
        for (; i < g->nlog; i++)
            if (o->cbs.applied)
                o->cbs.applied(o->cbs.data, g->log[i].p, g->log[i].len, local);
        g->emitted = op->seq;
    }
    return 0;
}

static int
same_claim(const struct mm__oplog_entry *e, const struct mm__oplog_op *se)
{
    return e->actor == se->actor && e->hlc == se->hlc &&
           e->visibility == se->visibility && strlen(e->type) == se->type_len &&
           memcmp(e->type, se->type, se->type_len) == 0;
}

/* Installs snapshot |op| (same generation, seq beyond ours). */
static int
apply_snapshot(mm__oplog *o, struct oplog_origin *g,
               const struct mm__oplog_op *op, const uint8_t *rec, size_t len)
{
    struct oplog_snap *copy = mm__malloc(sizeof(*copy) + len);
    if (copy == NULL) return -ENOMEM;
    copy->len = len;
    memset(copy->head, 0, HASH_LEN); /* not known: cannot be sealed */
    memcpy(copy->rec, rec, len);
    for (struct mm__oplog_entry *e = g->entries; e; e = e->org_next)
        e->mark = 0;
    size_t pos = 0;
    struct mm__oplog_op se;
    while (mm__oplog_snap_next(op, &pos, &se)) {
        struct mm__oplog_entry *ex = org_entry(o, g, se.label, se.label_len);
        if (ex && same_claim(ex, &se)) {
            size_t kp = 0;
            for (uint16_t i = 0; i < se.nkeys; i++) {
                const char *k;
                uint16_t kl;
                mm__oplog_op_key(&se, &kp, &k, &kl);
                if (entry_add_key(o, ex, k, kl)) goto nomem;
            }
            ex->mark = 1;
            continue;
        }
        struct mm__oplog_entry *e = entry_from_op(&se, g);
        struct oplog_slot *s = e ? slot_get(o, se.label, se.label_len) : NULL;
        if (s == NULL) {
            entry_free(e);
            goto nomem;
        }
        if (ex) entry_detach(o, ex, MM_OPLOG_REASON_REPLACED, 1);
        entry_attach(o, s, e);
        e->mark = 1;
    }
    for (struct mm__oplog_entry *e = g->entries, *next; e; e = next) {
        next = e->org_next;
        if (!e->mark) entry_detach(o, e, MM_OPLOG_REASON_COMPACTED, 0);
    }
    org_free_log(g);
    mm__free(g->snap);
    g->snap = copy;
    g->snap_seq = g->seq = op->seq;
    g->emitted = op->seq;
    if (o->cbs.applied) o->cbs.applied(o->cbs.data, copy->rec, len, 0);
    return 0;
nomem:
    mm__free(copy);
    return -ENOMEM;
}

/* Buffers an early record (bounded; the highest seqs give way), with the
 * signature of the head it ends (|sig| may be NULL). */
static int
pend_add(struct oplog_origin *g, uint64_t seq, const uint8_t *rec, size_t len,
         const uint8_t *sig)
{
    size_t i = 0;
    while (i < g->npend && g->pend[i].seq < seq)
        i++;
    if (i < g->npend && g->pend[i].seq == seq) return 0;
    if (g->npend >= MM_OPLOG_PENDING_MAX) {
        if (i == g->npend) return 0;
        g->npend--;
        mm__free(g->pend[g->npend].p);
        mm__free(g->pend[g->npend].sig);
    }
    if (g->npend == g->cappend) {
        size_t cap = g->cappend ? g->cappend * 2 : 8;
        struct oplog_rec *n = mm__realloc(g->pend, cap * sizeof(*n));
        if (n == NULL) return -ENOMEM;
        g->pend = n;
        g->cappend = cap;
    }
    uint8_t *copy = dup_bytes(rec, len);
    uint8_t *sigc = sig ? dup_bytes(sig, MM_ED25519_SIG_LEN) : NULL;
    if (copy == NULL || (sig && sigc == NULL)) {
        mm__free(copy);
        mm__free(sigc);
        return -ENOMEM;
    }
    memmove(g->pend + i + 1, g->pend + i, (g->npend - i) * sizeof(*g->pend));
    g->pend[i] =
        (struct oplog_rec){.seq = seq, .p = copy, .len = len, .sig = sigc};
    g->npend++;
    return 0;
}

/* Applies buffered records that became next; drops stale ones. */
static int
pend_drain(mm__oplog *o, struct oplog_origin *g, size_t *applied)
{
    while (g->npend && g->pend[0].seq <= g->seq + 1) {
        struct oplog_rec r = g->pend[0];
        int rc = 0;
        struct mm__oplog_op op;
        if (r.seq == g->seq + 1 && mm__oplog_op_decode(&op, r.p, r.len) == 0) {
            if ((rc = apply_op(o, g, &op, r.p, r.len, 0, r.sig,
                               g->has_pub ? g->pub : NULL)))
                return rc;
            (*applied)++;
        }
        mm__free(r.p);
        mm__free(r.sig);
        g->npend--;
        memmove(g->pend, g->pend + 1, g->npend * sizeof(*g->pend));
    }
    return 0;
}

/* Moves |g| to generation |gen|: the old generation is gone for good. */
static void
org_new_generation(mm__oplog *o, struct oplog_origin *g, uint64_t gen)
{
    org_reset(o, g, MM_OPLOG_REASON_GENERATION);
    g->gen = gen;
    g->tomb = 0;
    g->state = MM_OPLOG_ALIVE;
}

/* |sig|, |pub|: the origin's signed head ending at this record, from its
 * batch (NULL when none). */
static int
apply_decoded(mm__oplog *o, const struct mm__oplog_op *op, const uint8_t *rec,
              size_t len, size_t *applied, const uint8_t *sig,
              const uint8_t *pub)
{
    /* Nobody else writes our log: copies of it coming back are ignored. */
    if (memcmp(op->origin, o->self, MM_NODE_ID_LEN) == 0) return 0;
    struct oplog_origin *g = org_find(o, op->origin);
    if (g == NULL) {
        /* Its first record, or its first since it held nothing. */
        uint64_t gen = op->generation;
        int state = MM_OPLOG_ALIVE, tomb = 0;
        org_facts(o, op->origin, &gen, &state, &tomb);
        if (op->generation < gen || (tomb && op->generation == gen)) return 0;
        if (op->generation > gen) state = MM_OPLOG_ALIVE; /* a new process */
        g = org_create(o, op->origin, op->generation, state);
        if (g == NULL) return -ENOMEM;
    }
    if (op->generation < g->gen || (g->tomb && op->generation == g->gen))
        return 0;
    if (op->generation > g->gen) org_new_generation(o, g, op->generation);

    int rc;
    if (op->kind == MM_OPLOG_SNAPSHOT) {
        if (op->seq <= g->seq) return 0;
        if ((rc = apply_snapshot(o, g, op, rec, len))) return rc;
        (*applied)++;
        return pend_drain(o, g, applied);
    }
    if (op->seq <= g->seq) return 0;
    if (sig && pub) {
        /* Kept for the early records it may end as well. */
        memcpy(g->pub, pub, MM_ED25519_KEY_LEN);
        g->has_pub = 1;
    }
    if (op->seq > g->seq + 1) return pend_add(g, op->seq, rec, len, sig);
    if ((rc = apply_op(o, g, op, rec, len, 0, sig, pub))) return rc;
    (*applied)++;
    return pend_drain(o, g, applied);
}

int
mm__oplog_apply_record(mm__oplog *o, const uint8_t *rec, size_t len,
                       size_t *applied)
{
    size_t n = 0;
    struct mm__oplog_op op;
    int rc = mm__oplog_op_decode(&op, rec, len);
    if (rc == 0) rc = apply_decoded(o, &op, rec, len, &n, NULL, NULL);
    if (applied) *applied = n;
    return rc;
}

int
mm__oplog_batch_iter_init(struct mm__oplog_batch_iter *it, const uint8_t *buf,
                          size_t len)
{
    struct rd r = {buf, len};
    uint8_t ver;
    uint16_t nheads;
    uint32_t count;
    const uint8_t *heads;
    memset(it, 0, sizeof(*it));
    if (buf == NULL || rd_u8(&r, &ver) || ver != BATCH_VERSION ||
        rd_u16(&r, &nheads) || rd_take(&r, (size_t)nheads * HEAD_LEN, &heads) ||
        rd_u32(&r, &count) || count > r.left / (4 + REC_HDR) || nheads > count)
        return MM_EDECODE;
    it->heads = heads;
    it->nheads = nheads;
    it->p = r.p;
    it->left = r.left;
    it->count = count;
    return 0;
}

int
mm__oplog_batch_iter_next(struct mm__oplog_batch_iter *it, const uint8_t **rec,
                          size_t *len)
{
    if (it->i == it->count) return it->left == 0 ? 0 : MM_EDECODE;
    struct rd r = {it->p, it->left};
    uint32_t n;
    if (rd_u32(&r, &n) || rd_take(&r, n, rec)) return MM_EDECODE;
    *len = n;
    it->p = r.p;
    it->left = r.left;
    it->i++;
    return 1;
}

const uint8_t *
mm__oplog_batch_head(const struct mm__oplog_batch_iter *it,
                     const uint8_t origin[MM_NODE_ID_LEN])
{
    size_t lo = 0, hi = it->nheads;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *h = it->heads + mid * HEAD_LEN;
        int c = memcmp(h, origin, MM_NODE_ID_LEN);
        if (c == 0) return h;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Applies |op| with the signed head its batch carries when it ends it. */
static int
apply_in_batch(mm__oplog *o, const struct mm__oplog_batch_iter *it,
               const struct mm__oplog_op *op, const uint8_t *rec, size_t n,
               size_t *applied)
{
    const uint8_t *h = mm__oplog_batch_head(it, op->origin);
    if (h && mm__get_u64(h + H_GEN) == op->generation &&
        mm__get_u64(h + H_SEQ) == op->seq)
        return apply_decoded(o, op, rec, n, applied, h + H_SIG, h + H_PUB);
    return apply_decoded(o, op, rec, n, applied, NULL, NULL);
}

/* Walks a batch; with |o| NULL it only validates. */
static int
batch_walk(mm__oplog *o, const uint8_t *buf, size_t len, size_t *applied)
{
    struct mm__oplog_batch_iter it;
    const uint8_t *rec;
    size_t n;
    int rc = mm__oplog_batch_iter_init(&it, buf, len);
    if (rc) return rc;
    while ((rc = mm__oplog_batch_iter_next(&it, &rec, &n)) == 1) {
        struct mm__oplog_op op;
        if (mm__oplog_op_decode(&op, rec, n)) return MM_EDECODE;
        if (o) {
            rc = apply_in_batch(o, &it, &op, rec, n, applied);
            if (rc) return rc;
        }
    }
    return rc;
}

int
mm__oplog_apply_batch(mm__oplog *o, const uint8_t *buf, size_t len,
                      size_t *applied)
{
    size_t n = 0;
    int rc = batch_walk(NULL, buf, len, NULL);
    if (rc == 0) rc = batch_walk(o, buf, len, &n);
    if (applied) *applied = n;
    return rc;
}

/* Up to |max| records of |it|, validated and, with |o|, applied (|*done|
 * counts them). */
static int
batch_step(mm__oplog *o, struct mm__oplog_batch_iter *it, size_t max,
           size_t *done, size_t *applied)
{
    const uint8_t *rec;
    size_t n;
    *done = 0;
    while (*done < max) {
        int rc = mm__oplog_batch_iter_next(it, &rec, &n);
        if (rc != 1) return rc;
        struct mm__oplog_op op;
        if (mm__oplog_op_decode(&op, rec, n)) return MM_EDECODE;
        ++*done;
        if (o) {
            rc = apply_in_batch(o, it, &op, rec, n, applied);
            if (rc) return rc;
        }
    }
    if (it->i < it->count) return 1;
    return it->left == 0 ? 0 : MM_EDECODE;
}

int
mm__oplog_check_some(struct mm__oplog_batch_iter *it, size_t max, size_t *done)
{
    return batch_step(NULL, it, max, done, NULL);
}

int
mm__oplog_apply_some(mm__oplog *o, struct mm__oplog_batch_iter *it, size_t max,
                     size_t *done, size_t *applied)
{
    size_t n = 0;
    int rc = batch_step(o, it, max, done, &n);
    if (applied) *applied += n;
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------
 */

int
mm__oplog_new(mm__oplog **out, const uint8_t self_id[MM_NODE_ID_LEN],
              uint64_t self_gen, const struct mm__oplog_cbs *cbs)
{
    *out = NULL;
    mm__oplog *o = mm__calloc(1, sizeof(*o));
    if (o == NULL) return -ENOMEM;
    memcpy(o->self, self_id, MM_NODE_ID_LEN);
    if (cbs) o->cbs = *cbs;
    o->me = org_create(o, self_id, self_gen, MM_OPLOG_ALIVE);
    if (o->me == NULL) {
        mm__oplog_free(o);
        return -ENOMEM;
    }
    *out = o;
    return 0;
}

void
mm__oplog_free(mm__oplog *o)
{
    if (o == NULL) return;
    for (size_t i = 0; i < o->norgs; i++) {
        struct oplog_origin *g = o->orgs[i];
        if (g == NULL) continue;
        struct mm__oplog_entry *e = g->entries, *next;
        for (; e; e = next) {
            next = e->org_next;
            entry_free(e);
        }
        org_free_log(g);
        org_free_pend(g);
        org_free(g);
    }
    for (size_t i = 0; i < o->nbuckets; i++) {
        struct oplog_slot *s = o->buckets[i], *next;
        for (; s; s = next) {
            next = s->hnext;
            mm__free(s);
        }
    }
    mm__free(o->orgs);
    mm__free(o->oidx);
    mm__free(o->facts);
    mm__free(o->buckets);
    mm__free(o->sorted);
    mm__free(o);
}

/* ---- local appends --------------------------------------------------------
 */

/* Applies a record this node just wrote to its own log. */
static int
append_local(mm__oplog *o, uint8_t *rec, size_t len, uint64_t *seq)
{
    struct mm__oplog_op op;
    int rc = mm__oplog_op_decode(&op, rec, len);
    MM_ASSERT(rc == 0);
    rc = apply_op(o, o->me, &op, rec, len, 1, NULL, NULL);
    mm__free(rec);
    if (rc == 0 && seq) *seq = op.seq;
    return rc;
}

int
mm__oplog_register(mm__oplog *o, const char *label, const char *type,
                   int visibility, uint64_t actor, const char *const *keys,
                   size_t nkeys, uint64_t hlc, uint64_t *seq)
{
    if (visibility != MM_VIS_PUBLIC && visibility != MM_VIS_INTERNAL)
        return MM_EINVAL; /* private never enters the oplog */
    if (!str_ok(label, 1, MM_OPLOG_LABEL_MAX) ||
        !str_ok(type, 0, MM_OPLOG_TYPE_MAX) || nkeys > MM_OPLOG_KEYS_MAX ||
        (nkeys && keys == NULL))
        return MM_EINVAL;
    for (size_t i = 0; i < nkeys; i++)
        if (!str_ok(keys[i], 1, MM_OPLOG_KEY_MAX)) return MM_EINVAL;
    if (org_entry(o, o->me, label, strlen(label))) return MM_EEXISTS;
    size_t len = REC_HDR + entry_size(label, type, keys, nkeys);
    uint8_t *rec = mm__malloc(len);
    if (rec == NULL) return -ENOMEM;
    uint8_t *p =
        wr_hdr(rec, MM_OPLOG_REGISTER, o->self, o->me->gen, o->me->seq + 1);
    wr_entry(p, hlc, actor, visibility, label, type, keys, nkeys);
    return append_local(o, rec, len, seq);
}

int
mm__oplog_check_in(mm__oplog *o, const char *label, const char *key,
                   uint64_t *seq)
{
    if (!str_ok(label, 1, MM_OPLOG_LABEL_MAX) ||
        !str_ok(key, 1, MM_OPLOG_KEY_MAX))
        return MM_EINVAL;
    struct mm__oplog_entry *e = org_entry(o, o->me, label, strlen(label));
    if (e == NULL) return MM_ENOTFOUND;
    if (entry_has_key(e, key, strlen(key))) return MM_EEXISTS;
    if (e->nkeys >= MM_OPLOG_KEYS_MAX) return MM_EINVAL;
    size_t len = REC_HDR + 2 + strlen(label) + 2 + strlen(key);
    uint8_t *rec = mm__malloc(len);
    if (rec == NULL) return -ENOMEM;
    uint8_t *p =
        wr_hdr(rec, MM_OPLOG_CHECK_IN, o->self, o->me->gen, o->me->seq + 1);
    p = wr_str(p, label, strlen(label));
    wr_str(p, key, strlen(key));
    return append_local(o, rec, len, seq);
}

int
mm__oplog_remove(mm__oplog *o, const char *label, int reason, uint64_t *seq)
{
    if (!str_ok(label, 1, MM_OPLOG_LABEL_MAX) || reason < 0 || reason >= 64)
        return MM_EINVAL;
    if (org_entry(o, o->me, label, strlen(label)) == NULL) return MM_ENOTFOUND;
    size_t len = REC_HDR + 2 + strlen(label) + 1;
    uint8_t *rec = mm__malloc(len);
    if (rec == NULL) return -ENOMEM;
    uint8_t *p =
        wr_hdr(rec, MM_OPLOG_REMOVE, o->self, o->me->gen, o->me->seq + 1);
    p = wr_str(p, label, strlen(label));
    *p = (uint8_t)reason;
    return append_local(o, rec, len, seq);
}

/* ---- membership -----------------------------------------------------------
 */

int
mm__oplog_set_origin_state(mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN],
                           uint64_t generation, int state)
{
    if (state < MM_OPLOG_ALIVE || state > MM_OPLOG_REAPED) return MM_EINVAL;
    if (memcmp(id, o->self, MM_NODE_ID_LEN) == 0) return 0;
    struct oplog_origin *g = org_find(o, id);
    if (g == NULL) {
        /* It holds nothing: there is nothing to hide, drop or show, only
         * facts to keep for its first record (none but tombstones when
         * the member lookup answers for it). */
        const struct oplog_fact *f = fact_find(o, id);
        int tomb = state == MM_OPLOG_REAPED;
        if (f && (generation < f->gen || (f->tomb && generation == f->gen)))
            return 0;
        if (o->member && !tomb) {
            fact_delete(o, id);
            return 0;
        }
        return fact_set(o, id, generation, state, tomb);
    }
    if (generation < g->gen || (g->tomb && generation == g->gen)) return 0;
    if (generation > g->gen) org_new_generation(o, g, generation);
    if (state == MM_OPLOG_REAPED) {
        org_reset(o, g, MM_OPLOG_REASON_REAPED);
        g->tomb = 1;
        g->state = state;
        org_shrink(o, g);
        return 0;
    }
    int was = org_in_view(g);
    g->state = state;
    if (was != org_in_view(g)) org_reelect(o, g, MM_REASON_NODE_DOWN);
    org_shrink(o, g);
    return 0;
}

void
mm__oplog_set_member_lookup(mm__oplog *o, mm__oplog_member_fn fn, void *data)
{
    o->member = fn;
    o->member_data = data;
}

size_t
mm__oplog_origins_held(const mm__oplog *o, size_t *facts)
{
    if (facts) *facts = o->nfacts;
    return o->oidx_n;
}

/* ---- queries --------------------------------------------------------------
 */

const struct mm__oplog_entry *
mm__oplog_lookup(const mm__oplog *o, const char *label)
{
    struct oplog_slot *s = slot_find(o, label, strlen(label));
    return s ? s->winner : NULL;
}

size_t
mm__oplog_claimants(const mm__oplog *o, const char *label,
                    mm__oplog_entry_cb cb, void *data)
{
    struct oplog_slot *s = slot_find(o, label, strlen(label));
    if (s == NULL) return 0;
    /* Claimants per label are few: select them in rank order. */
    const struct mm__oplog_entry *prev = NULL;
    size_t n = 0;
    for (;;) {
        const struct mm__oplog_entry *best = NULL;
        for (const struct mm__oplog_entry *c = s->claims; c; c = c->slot_next)
            if (org_in_view(c->org) && (prev == NULL || rank_less(prev, c)) &&
                (best == NULL || rank_less(c, best)))
                best = c;
        if (best == NULL) break;
        n++;
        if (cb && cb(data, best, best == s->winner)) break;
        prev = best;
    }
    return n;
}

static int
slot_cmp(const void *a, const void *b)
{
    const struct oplog_slot *x = *(struct oplog_slot *const *)a;
    const struct oplog_slot *y = *(struct oplog_slot *const *)b;
    size_t n = MM_MIN(x->label_len, y->label_len);
    int c = memcmp(x->label, y->label, n);
    if (c) return c;
    return x->label_len < y->label_len ? -1 : x->label_len > y->label_len;
}

static int
sorted_build(mm__oplog *o)
{
    if (o->sorted_ok) return 0;
    struct oplog_slot **v =
        mm__malloc((o->nslots ? o->nslots : 1) * sizeof(*v));
    if (v == NULL) return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < o->nbuckets; i++)
        for (struct oplog_slot *s = o->buckets[i]; s; s = s->hnext)
            v[n++] = s;
    qsort(v, n, sizeof(*v), slot_cmp);
    mm__free(o->sorted);
    o->sorted = v;
    o->nsorted = n;
    o->sorted_ok = 1;
    return 0;
}

long
mm__oplog_foreach(mm__oplog *o, const char *prefix, const char *key,
                  mm__oplog_entry_cb cb, void *data)
{
    if (sorted_build(o)) return -ENOMEM;
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t lo = 0, hi = o->nsorted;
    while (lo < hi) { /* first label >= prefix */
        size_t mid = lo + (hi - lo) / 2;
        const struct oplog_slot *s = o->sorted[mid];
        int c =
            memcmp(s->label, prefix ? prefix : "", MM_MIN(s->label_len, plen));
        if (c < 0 || (c == 0 && s->label_len < plen))
            lo = mid + 1;
        else
            hi = mid;
    }
    long n = 0;
    for (size_t i = lo; i < o->nsorted; i++) {
        const struct oplog_slot *s = o->sorted[i];
        if (plen && (s->label_len < plen || memcmp(s->label, prefix, plen)))
            break;
        const struct mm__oplog_entry *w = s->winner;
        if (w == NULL || (key && !entry_has_key(w, key, strlen(key)))) continue;
        n++;
        if (cb && cb(data, w, 1)) break;
    }
    return n;
}

size_t
mm__oplog_size(const mm__oplog *o)
{
    return o->nwinners;
}

static int
hash_entry_cb(void *data, const struct mm__oplog_entry *e, int winner)
{
    uint64_t *h = data;
    uint64_t ks = 0;
    for (uint16_t i = 0; i < e->nkeys; i++)
        ks += mm__hash_u64(fnv_bytes(FNV_INIT, e->keys[i], strlen(e->keys[i])));
    size_t ll = strlen(e->label);
    *h = fnv_u64(*h, ll);
    *h = fnv_bytes(*h, e->label, ll);
    *h = fnv_bytes(*h, e->origin, MM_NODE_ID_LEN);
    *h = fnv_u64(*h, e->generation);
    *h = fnv_u64(*h, e->actor);
    *h = fnv_u64(*h, e->nkeys);
    *h = fnv_u64(*h, ks);
    return 0;
}

uint64_t
mm__oplog_registry_hash(mm__oplog *o)
{
    uint64_t h = FNV_INIT;
    mm__oplog_foreach(o, NULL, NULL, hash_entry_cb, &h);
    return fnv_u64(h, o->nwinners);
}

static void
org_info(const struct oplog_origin *g, struct mm__oplog_origin_info *info)
{
    memcpy(info->id, g->id, MM_NODE_ID_LEN);
    info->generation = g->gen;
    info->seq = g->seq;
    info->snap_seq = g->snap_seq;
    info->state = g->state;
    info->nentries = g->nentries;
    info->npending = g->npend;
    info->nlog = g->nlog;
}

int
mm__oplog_origin_info(const mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN],
                      struct mm__oplog_origin_info *info)
{
    const struct oplog_origin *g = org_find(o, id);
    if (g == NULL) {
        uint64_t gen;
        int state, tomb;
        if (!org_facts(o, id, &gen, &state, &tomb) || tomb) return MM_ENOTFOUND;
        memset(info, 0, sizeof(*info));
        memcpy(info->id, id, MM_NODE_ID_LEN);
        info->generation = gen;
        info->state = state;
        return 0;
    }
    if (g->tomb) return MM_ENOTFOUND;
    org_info(g, info);
    return 0;
}

static int
fact_ptr_cmp(const void *a, const void *b)
{
    const struct oplog_fact *x = *(const struct oplog_fact *const *)a;
    const struct oplog_fact *y = *(const struct oplog_fact *const *)b;
    return memcmp(x->id, y->id, MM_NODE_ID_LEN);
}

void
mm__oplog_origins(const mm__oplog *o,
                  int (*cb)(void *data,
                            const struct mm__oplog_origin_info *info),
                  void *data)
{
    /* The origins that hold something, and those known by their facts
     * alone, merged in id order. */
    org_sort(o);
    const struct oplog_fact **fv = NULL;
    size_t nf = 0;
    if (o->nfacts && (fv = mm__malloc(o->nfacts * sizeof(*fv))) != NULL) {
        for (size_t i = 0; i < o->facts_cap; i++)
            if (o->facts[i].used && !o->facts[i].tomb) fv[nf++] = &o->facts[i];
        qsort(fv, nf, sizeof(*fv), fact_ptr_cmp);
    }
    size_t i = 0, j = 0;
    while (i < o->norgs || j < nf) {
        struct mm__oplog_origin_info info;
        if (j == nf || (i < o->norgs && memcmp(o->orgs[i]->id, fv[j]->id,
                                               MM_NODE_ID_LEN) < 0)) {
            const struct oplog_origin *g = o->orgs[i++];
            if (g->tomb) continue;
            org_info(g, &info);
        } else {
            const struct oplog_fact *f = fv[j++];
            memset(&info, 0, sizeof(info));
            memcpy(info.id, f->id, MM_NODE_ID_LEN);
            info.generation = f->gen;
            info.state = f->state;
        }
        if (cb(data, &info)) break;
    }
    mm__free(fv);
}

size_t
mm__oplog_pending(const mm__oplog *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->norgs; i++)
        if (o->orgs[i]) n += o->orgs[i]->npend;
    return n;
}

/* Records of |g| from seq |from|: the snapshot if |from| is behind it. */
static long
org_records(const struct oplog_origin *g, uint64_t from, mm__oplog_rec_cb cb,
            void *data)
{
    long n = 0;
    if (from <= g->snap_seq && g->snap) {
        n++;
        if (cb(data, g->snap->rec, g->snap->len)) return n;
    }
    /* The tail holds seqs snap_seq + 1 .. seq without a gap: start at
     * |from|'s place (a resumed catch-up does not rescan what it sent). */
    size_t start = 0;
    if (from > g->snap_seq + 1 && g->nlog) {
        start = (size_t)(from - g->snap_seq - 1);
        if (start >= g->nlog) return n;
        if (g->log[start].seq != from) start = 0;
    }
    for (size_t i = start; i < g->nlog; i++) {
        if (g->log[i].seq < from) continue;
        n++;
        if (cb(data, g->log[i].p, g->log[i].len)) break;
    }
    return n;
}

int
mm__oplog_ops_from(const mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN],
                   uint64_t from, mm__oplog_rec_cb cb, void *data)
{
    const struct oplog_origin *g = org_find(o, id);
    if (g == NULL) {
        uint64_t gen;
        int state, tomb;
        return org_facts(o, id, &gen, &state, &tomb) && !tomb ? 0
                                                              : MM_ENOTFOUND;
    }
    if (g->tomb) return MM_ENOTFOUND;
    org_records(g, from, cb, data);
    return 0;
}

/* ---- anti-entropy ---------------------------------------------------------
 */

static int
org_in_vector(const struct oplog_origin *g)
{
    return !g->tomb && g->seq > 0;
}

size_t
mm__oplog_vector_size(const mm__oplog *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->norgs; i++)
        n += o->orgs[i] && org_in_vector(o->orgs[i]);
    return VEC_HDR + n * VEC_ELEM;
}

long
mm__oplog_vector_encode(const mm__oplog *o, uint8_t *out, size_t cap)
{
    size_t need = mm__oplog_vector_size(o);
    if (cap < need) return MM_EINVAL;
    uint8_t *p = out + VEC_HDR;
    uint32_t n = 0;
    org_sort(o);
    for (size_t i = 0; i < o->norgs; i++) {
        const struct oplog_origin *g = o->orgs[i];
        if (!org_in_vector(g)) continue;
        memcpy(p, g->id, MM_NODE_ID_LEN);
        mm__put_u64(p + MM_NODE_ID_LEN, g->gen);
        mm__put_u64(p + MM_NODE_ID_LEN + 8, g->seq);
        p += VEC_ELEM;
        n++;
    }
    out[0] = WIRE_VERSION;
    mm__put_u32(out + 1, n);
    return (long)need;
}

uint64_t
mm__oplog_digest(const mm__oplog *o)
{
    /* FNV-1a over exactly the bytes mm__oplog_vector_encode() writes. */
    uint8_t hdr[VEC_HDR];
    hdr[0] = WIRE_VERSION;
    mm__put_u32(hdr + 1,
                (uint32_t)((mm__oplog_vector_size(o) - VEC_HDR) / VEC_ELEM));
    uint64_t h = fnv_bytes(FNV_INIT, hdr, sizeof(hdr));
    org_sort(o);
    for (size_t i = 0; i < o->norgs; i++) {
        const struct oplog_origin *g = o->orgs[i];
        if (!org_in_vector(g)) continue;
        h = fnv_bytes(h, g->id, MM_NODE_ID_LEN);
        h = fnv_u64(h, g->gen);
        h = fnv_u64(h, g->seq);
    }
    return h;
}

int
mm__oplog_vec_decode(struct mm__oplog_vec *v, const uint8_t *buf, size_t len)
{
    if (buf == NULL || len < VEC_HDR || buf[0] != WIRE_VERSION)
        return MM_EDECODE;
    uint32_t n = mm__get_u32(buf + 1);
    if ((len - VEC_HDR) % VEC_ELEM || (len - VEC_HDR) / VEC_ELEM != n)
        return MM_EDECODE;
    const uint8_t *p = buf + VEC_HDR;
    for (uint32_t i = 1; i < n; i++)
        if (memcmp(p + (size_t)(i - 1) * VEC_ELEM, p + (size_t)i * VEC_ELEM,
                   MM_NODE_ID_LEN) >= 0)
            return MM_EDECODE;
    v->p = p;
    v->count = n;
    return 0;
}

int
mm__oplog_vec_get(const struct mm__oplog_vec *v,
                  const uint8_t id[MM_NODE_ID_LEN], uint64_t *generation,
                  uint64_t *seq)
{
    size_t lo = 0, hi = v->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *e = v->p + mid * VEC_ELEM;
        int c = memcmp(e, id, MM_NODE_ID_LEN);
        if (c == 0) {
            *generation = mm__get_u64(e + MM_NODE_ID_LEN);
            *seq = mm__get_u64(e + MM_NODE_ID_LEN + 8);
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return MM_ENOTFOUND;
}

/* The first seq of |g| a peer with vector |v| lacks: 0 if it lacks
 * nothing. */
static uint64_t
peer_from(const struct oplog_origin *g, const struct mm__oplog_vec *v)
{
    if (!org_in_vector(g)) return 0;
    uint64_t rg, rs;
    if (mm__oplog_vec_get(v, g->id, &rg, &rs) != 0) return 1;
    if (rg > g->gen || (rg == g->gen && rs >= g->seq)) return 0;
    return rg == g->gen ? rs + 1 : 1;
}

long
mm__oplog_missing(const mm__oplog *o, const uint8_t *vec, size_t len,
                  mm__oplog_rec_cb cb, void *data)
{
    struct mm__oplog_vec v;
    if (mm__oplog_vec_decode(&v, vec, len)) return MM_EDECODE;
    long n = 0;
    org_sort(o);
    for (size_t i = 0; i < o->norgs; i++) {
        uint64_t from = peer_from(o->orgs[i], &v);
        if (from) n += org_records(o->orgs[i], from, cb, data);
    }
    return n;
}

struct bounded {
    struct mm__oplog_batch *out;
    size_t max;
    long n;
    int full, err;
};

/* Adds a record unless the batch would pass its bound; the first record
 * always goes (a record alone above the bound makes a batch alone). */
static int
bounded_add(void *data, const uint8_t *rec, size_t len)
{
    struct bounded *b = data;
    size_t cur = b->out->count ? b->out->len : BATCH_HDR;
    if (b->out->count && cur + 4 + len > b->max) {
        b->full = 1;
        return 1;
    }
    if ((b->err = mm__oplog_batch_add(b->out, rec, len)) != 0) return 1;
    b->n++;
    if (cur + 4 + len >= b->max) {
        b->full = 1;
        return 1;
    }
    return 0;
}

/*
 * The signed kind: per origin a head (HEAD_LEN bytes) and a run that ends
 * where the seal can sign it: our own records anywhere, another origin's
 * at a record carrying its signature, past |max| if need be (its
 * signatures are at most one of its batches apart).  Records a snapshot
 * holds cannot travel signed: such a peer gets only the tail.
 */
static long
missing_signed(mm__oplog *o, const struct mm__oplog_vec *v, size_t max,
               struct mm__oplog_batch *out)
{
    size_t cur = BATCH_HDR;
    int full = 0, rc = 0;
    org_sort(o);
    for (size_t i = 0; i < o->norgs && !full && !rc; i++) {
        struct oplog_origin *g = o->orgs[i];
        uint64_t from = peer_from(g, v);
        if (from == 0) continue;
        if (from <= g->snap_seq) from = g->snap_seq + 1;
        if (from > g->seq) continue;
        size_t idx = (size_t)(from - g->snap_seq - 1);
        if (idx >= g->nlog) continue;
        if (out->count && cur + HEAD_LEN + 4 + g->log[idx].len > max) break;
        cur += HEAD_LEN;
        int sealable = g == o->me;
        for (size_t k = idx; k < g->nlog; k++) {
            const struct oplog_rec *lr = &g->log[k];
            if (out->count && cur + 4 + lr->len > max && sealable) {
                full = 1;
                break;
            }
            if ((rc = mm__oplog_batch_add(out, lr->p, lr->len)) != 0) break;
            cur += 4 + lr->len;
            if (lr->sig) sealable = 1;
            if (cur >= max && sealable) {
                full = 1;
                break;
            }
        }
    }
    if (rc == 0) rc = mm__oplog_batch_seal(o, out);
    return rc ? rc : (long)out->count;
}

long
mm__oplog_missing_batch(mm__oplog *o, const uint8_t *vec, size_t len,
                        size_t max, struct mm__oplog_batch *out)
{
    struct mm__oplog_vec v;
    if (mm__oplog_vec_decode(&v, vec, len)) return MM_EDECODE;
    if (o->sign_key) return missing_signed(o, &v, max, out);
    struct bounded b = {out, max, 0, 0, 0};
    org_sort(o);
    for (size_t i = 0; i < o->norgs && !b.full && !b.err; i++) {
        uint64_t from = peer_from(o->orgs[i], &v);
        if (from) org_records(o->orgs[i], from, bounded_add, &b);
    }
    return b.err ? b.err : b.n;
}

/* The element for |id| among |n| elements of |e|, the first |sorted| of
 * them in id order; NULL if none. */
static uint8_t *
vec_elem_find(uint8_t *e, size_t sorted, size_t n, const uint8_t *id)
{
    size_t lo = 0, hi = sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(e + mid * VEC_ELEM, id, MM_NODE_ID_LEN);
        if (c == 0) return e + mid * VEC_ELEM;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = sorted; i < n; i++)
        if (memcmp(e + i * VEC_ELEM, id, MM_NODE_ID_LEN) == 0)
            return e + i * VEC_ELEM;
    return NULL;
}

static int
vec_elem_cmp(const void *a, const void *b)
{
    return memcmp(a, b, MM_NODE_ID_LEN);
}

int
mm__oplog_vec_advance(const uint8_t *vec, size_t vlen, const uint8_t *batch,
                      size_t blen, uint8_t **out, size_t *outlen)
{
    struct mm__oplog_vec v;
    struct mm__oplog_batch_iter it;
    *out = NULL;
    *outlen = 0;
    if (mm__oplog_vec_decode(&v, vec, vlen) ||
        mm__oplog_batch_iter_init(&it, batch, blen))
        return MM_EDECODE;
    size_t n = v.count, sorted = v.count, cap = v.count + 4;
    uint8_t *e = mm__malloc(cap * VEC_ELEM);
    if (e == NULL) return -ENOMEM;
    if (n) memcpy(e, v.p, n * VEC_ELEM);
    const uint8_t *rec;
    size_t rl;
    int rc;
    while ((rc = mm__oplog_batch_iter_next(&it, &rec, &rl)) == 1) {
        struct mm__oplog_op op;
        if (mm__oplog_op_decode(&op, rec, rl)) {
            rc = MM_EDECODE;
            break;
        }
        uint8_t *el = vec_elem_find(e, sorted, n, op.origin);
        if (el == NULL) {
            if (n == cap) {
                uint8_t *ne = mm__realloc(e, cap * 2 * VEC_ELEM);
                if (ne == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                e = ne;
                cap *= 2;
            }
            el = e + n++ * VEC_ELEM;
            memcpy(el, op.origin, MM_NODE_ID_LEN);
            mm__put_u64(el + MM_NODE_ID_LEN, 0);
            mm__put_u64(el + MM_NODE_ID_LEN + 8, 0);
        }
        uint64_t g = mm__get_u64(el + MM_NODE_ID_LEN);
        uint64_t s = mm__get_u64(el + MM_NODE_ID_LEN + 8);
        if (op.generation > g || (op.generation == g && op.seq > s)) {
            mm__put_u64(el + MM_NODE_ID_LEN, op.generation);
            mm__put_u64(el + MM_NODE_ID_LEN + 8, op.seq);
        }
    }
    uint8_t *buf = rc == 0 ? mm__malloc(VEC_HDR + n * VEC_ELEM) : NULL;
    if (rc == 0 && buf == NULL) rc = -ENOMEM;
    if (rc) {
        mm__free(e);
        return rc;
    }
    if (n > sorted) qsort(e, n, VEC_ELEM, vec_elem_cmp);
    buf[0] = WIRE_VERSION;
    mm__put_u32(buf + 1, (uint32_t)n);
    if (n) memcpy(buf + VEC_HDR, e, n * VEC_ELEM);
    mm__free(e);
    *out = buf;
    *outlen = VEC_HDR + n * VEC_ELEM;
    return 0;
}

static int
vec_elem_newer(const uint8_t *x, const uint8_t *y)
{
    uint64_t xg = mm__get_u64(x + MM_NODE_ID_LEN);
    uint64_t yg = mm__get_u64(y + MM_NODE_ID_LEN);
    return xg > yg || (xg == yg && mm__get_u64(x + MM_NODE_ID_LEN + 8) >
                                       mm__get_u64(y + MM_NODE_ID_LEN + 8));
}

int
mm__oplog_vec_merge(const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen, uint8_t **out, size_t *outlen)
{
    struct mm__oplog_vec va, vb;
    *out = NULL;
    *outlen = 0;
    if (mm__oplog_vec_decode(&va, a, alen) ||
        mm__oplog_vec_decode(&vb, b, blen))
        return MM_EDECODE;
    uint8_t *buf =
        mm__malloc(VEC_HDR + ((size_t)va.count + vb.count) * VEC_ELEM);
    if (buf == NULL) return -ENOMEM;
    uint8_t *p = buf + VEC_HDR;
    size_t i = 0, j = 0, n = 0;
    while (i < va.count || j < vb.count) {
        const uint8_t *x = i < va.count ? va.p + i * VEC_ELEM : NULL;
        const uint8_t *y = j < vb.count ? vb.p + j * VEC_ELEM : NULL;
        int c = !x ? 1 : !y ? -1 : memcmp(x, y, MM_NODE_ID_LEN);
        const uint8_t *take = c < 0                  ? x
                              : c > 0                ? y
                              : vec_elem_newer(y, x) ? y
                                                     : x;
        if (c <= 0) i++;
        if (c >= 0) j++;
        memcpy(p + n++ * VEC_ELEM, take, VEC_ELEM);
    }
    buf[0] = WIRE_VERSION;
    mm__put_u32(buf + 1, (uint32_t)n);
    *out = buf;
    *outlen = VEC_HDR + n * VEC_ELEM;
    return 0;
}

/* ---- compaction -----------------------------------------------------------
 */

static int
entry_label_cmp(const void *a, const void *b)
{
    const struct mm__oplog_entry *x = *(struct mm__oplog_entry *const *)a;
    const struct mm__oplog_entry *y = *(struct mm__oplog_entry *const *)b;
    return strcmp(x->label, y->label);
}

int
mm__oplog_compact(mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN])
{
    struct oplog_origin *g = org_find(o, id);
    if (g == NULL) return mm__oplog_ops_from(o, id, 1, NULL, NULL);
    if (g->tomb) return MM_ENOTFOUND;
    if (g->seq == 0 || g->seq == g->snap_seq) return 0;
    struct mm__oplog_entry **v =
        mm__malloc((g->nentries ? g->nentries : 1) * sizeof(*v));
    if (v == NULL) return -ENOMEM;
    size_t n = 0, len = REC_HDR + 4;
    for (struct mm__oplog_entry *e = g->entries; e; e = e->org_next) {
        v[n++] = e;
        len += entry_size(e->label, e->type, (const char *const *)e->keys,
                          e->nkeys);
    }
    qsort(v, n, sizeof(*v), entry_label_cmp);
    struct oplog_snap *sn = mm__malloc(sizeof(*sn) + len);
    if (sn == NULL) {
        mm__free(v);
        return -ENOMEM;
    }
    uint8_t *rec = sn->rec;
    uint8_t *p = wr_hdr(rec, MM_OPLOG_SNAPSHOT, g->id, g->gen, g->seq);
    mm__put_u32(p, (uint32_t)n);
    p += 4;
    for (size_t i = 0; i < n; i++)
        p = wr_entry(p, v[i]->hlc, v[i]->actor, v[i]->visibility, v[i]->label,
                     v[i]->type, (const char *const *)v[i]->keys, v[i]->nkeys);
    MM_ASSERT((size_t)(p - rec) == len);
    mm__free(v);
    sn->len = len;
    memcpy(sn->head, org_head(g), HASH_LEN);
    org_free_log(g);
    mm__free(g->snap);
    g->snap = sn;
    g->snap_seq = g->seq;
    return 0;
}

/* ---- batches --------------------------------------------------------------
 */

void
mm__oplog_batch_init(struct mm__oplog_batch *b)
{
    memset(b, 0, sizeof(*b));
}

static int
batch_reserve(struct mm__oplog_batch *b, size_t more)
{
    if (b->len == 0) more += BATCH_HDR;
    if (b->cap - b->len >= more) goto out;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *n = mm__realloc(b->buf, cap);
    if (n == NULL) return -ENOMEM;
    b->buf = n;
    b->cap = cap;
out:
    if (b->len == 0) b->len = BATCH_HDR;
    return 0;
}

int
mm__oplog_batch_add(struct mm__oplog_batch *b, const uint8_t *rec, size_t len)
{
    if (len > UINT32_MAX) return MM_EINVAL;
    if (batch_reserve(b, 4 + len)) return -ENOMEM;
    mm__put_u32(b->buf + b->len, (uint32_t)len);
    memcpy(b->buf + b->len + 4, rec, len);
    b->len += 4 + len;
    b->count++;
    return 0;
}

int
mm__oplog_batch_finish(struct mm__oplog_batch *b)
{
    if (b->sealed) return 0;
    if (batch_reserve(b, 0)) return -ENOMEM;
    b->buf[0] = BATCH_VERSION;
    mm__put_u16(b->buf + 1, 0);
    mm__put_u32(b->buf + 3, b->count);
    return 0;
}

void
mm__oplog_batch_release(struct mm__oplog_batch *b)
{
    mm__free(b->buf);
    memset(b, 0, sizeof(*b));
}

int
mm__oplog_batch_add_cb(void *data, const uint8_t *rec, size_t len)
{
    return mm__oplog_batch_add(data, rec, len) ? 1 : 0;
}

/* ---- signed heads ---------------------------------------------------------
 */

void
mm__oplog_set_signer(mm__oplog *o, const struct mm_sign_key *key,
                     const uint8_t pub[MM_ED25519_KEY_LEN])
{
    o->sign_key = key;
    if (key && pub) memcpy(o->pub, pub, MM_ED25519_KEY_LEN);
}

/* The tail record of |g| holding |seq| (snap_seq < seq <= g->seq). */
static struct oplog_rec *
org_rec(struct oplog_origin *g, uint64_t seq)
{
    if (seq <= g->snap_seq || seq > g->seq) return NULL;
    size_t i = (size_t)(seq - g->snap_seq - 1);
    if (i >= g->nlog || g->log[i].seq != seq) return NULL;
    return &g->log[i];
}

/* The origin (current generation, in the tail) a record of a batch being
 * sealed belongs to, or NULL when it cannot be sealed. */
static struct oplog_origin *
seal_origin(mm__oplog *o, const uint8_t *rec, size_t len, uint64_t *seq)
{
    /* Our own records: the header is enough. */
    if (len < REC_HDR || rec[0] == MM_OPLOG_SNAPSHOT) return NULL;
    uint64_t gen = mm__get_u64(rec + 1 + MM_NODE_ID_LEN);
    uint64_t s = mm__get_u64(rec + 1 + MM_NODE_ID_LEN + 8);
    struct oplog_origin *g = org_find(o, rec + 1);
    if (g == NULL || g->tomb || gen != g->gen || org_rec(g, s) == NULL)
        return NULL;
    if (g != o->me && !g->has_pub) return NULL;
    *seq = s;
    return g;
}

/* The signed point of |g|'s run s_first..s_last in a batch: the newest
 * record in it that carries the origin's signature (ours: signed now). */
static uint64_t
seal_point(mm__oplog *o, struct oplog_origin *g)
{
    struct oplog_rec *r = org_rec(g, g->s_last);
    if (g == o->me) {
        if (r->sig == NULL) {
            uint8_t msg[HEAD_MSG_LEN];
            uint8_t *sig = mm__malloc(MM_ED25519_SIG_LEN);
            head_msg(msg, g->id, g->gen, r->seq, r->head);
            if (sig == NULL ||
                mm__ed25519_sign(o->sign_key, msg, sizeof(msg), sig) != 0) {
                mm__free(sig);
                return 0;
            }
            r->sig = sig;
        }
        return g->s_last;
    }
    for (uint64_t q = g->s_last; q >= g->s_first; q--)
        if (org_rec(g, q)->sig) return q;
    return 0;
}

int
mm__oplog_batch_seal(mm__oplog *o, struct mm__oplog_batch *b)
{
    if (b->sealed) return 0;
    if (o->sign_key == NULL || b->count == 0) return mm__oplog_batch_finish(b);
    struct rd r;
    uint64_t seq;
    /* Each origin's run: the last contiguous run of its records. */
    r = (struct rd){b->buf + BATCH_HDR, b->len - BATCH_HDR};
    for (uint32_t i = 0; i < b->count; i++) {
        uint32_t n;
        const uint8_t *rec;
        if (rd_u32(&r, &n) || rd_take(&r, n, &rec)) return MM_EDECODE;
        struct oplog_origin *g = seal_origin(o, rec, n, &seq);
        if (g == NULL) continue;
        if (!g->s_on || seq != g->s_last + 1) {
            g->s_on = 1;
            g->s_first = seq;
        }
        g->s_last = seq;
    }
    size_t nheads = 0, need = BATCH_HDR;
    org_sort(o); /* heads in origin order */
    for (size_t i = 0; i < o->norgs; i++) {
        struct oplog_origin *g = o->orgs[i];
        if (!g->s_on) continue;
        g->s_end = seal_point(o, g);
        if (g->s_end) nheads++;
        g->s_last = g->s_first; /* the cursor of the copy below */
    }
    need += nheads * HEAD_LEN + (b->len - BATCH_HDR);
    uint8_t *nb = mm__malloc(need);
    int rc = 0;
    if (nb == NULL || nheads > UINT16_MAX) {
        rc = nb ? MM_EINVAL : -ENOMEM;
        goto out;
    }
    uint8_t *p = nb + 3;
    for (size_t i = 0; i < o->norgs; i++) {
        struct oplog_origin *g = o->orgs[i];
        if (!g->s_on || !g->s_end) continue;
        static const uint8_t zero[HASH_LEN];
        const struct oplog_rec *base = org_rec(g, g->s_first - 1);
        const struct oplog_rec *end = org_rec(g, g->s_end);
        memcpy(p, g->id, MM_NODE_ID_LEN);
        mm__put_u64(p + H_GEN, g->gen);
        mm__put_u64(p + H_SEQ, g->s_end);
        memcpy(p + H_BASE,
               base ? base->head
               : g->s_first - 1 == g->snap_seq
                   ? (g->snap ? g->snap->head : zero)
                   : zero,
               HASH_LEN);
        memcpy(p + H_HASH, end->head, HASH_LEN);
        memcpy(p + H_PUB, g == o->me ? o->pub : g->pub, MM_ED25519_KEY_LEN);
        memcpy(p + H_SIG, end->sig, MM_ED25519_SIG_LEN);
        p += HEAD_LEN;
    }
    uint8_t *cnt = p;
    p += 4;
    uint32_t kept = 0;
    r = (struct rd){b->buf + BATCH_HDR, b->len - BATCH_HDR};
    for (uint32_t i = 0; i < b->count; i++) {
        uint32_t n = 0;
        const uint8_t *rec = NULL;
        if (rd_u32(&r, &n) || rd_take(&r, n, &rec)) break;
        struct oplog_origin *g = seal_origin(o, rec, n, &seq);
        if (g == NULL || !g->s_on || seq != g->s_last || seq > g->s_end)
            continue;
        g->s_last++;
        mm__put_u32(p, n);
        memcpy(p + 4, rec, n);
        p += 4 + n;
        kept++;
    }
    nb[0] = BATCH_VERSION;
    mm__put_u16(nb + 1, (uint16_t)nheads);
    mm__put_u32(cnt, kept);
    mm__free(b->buf);
    b->buf = nb;
    b->len = (size_t)(p - nb);
    b->cap = need;
    b->count = kept;
    b->sealed = 1;
    nb = NULL;
out:
    mm__free(nb);
    for (size_t i = 0; i < o->norgs; i++)
        if (o->orgs[i]) o->orgs[i]->s_on = 0;
    return rc;
}

/* Records of this head change nothing here: ours, or of a generation and
 * seq |o| already holds (apply ignores them, now and later). */
static int
head_stale(const mm__oplog *o, const uint8_t *h)
{
    if (o == NULL) return 0;
    if (memcmp(h, o->self, MM_NODE_ID_LEN) == 0) return 1;
    const struct oplog_origin *g = org_find(o, h);
    uint64_t gen = mm__get_u64(h + H_GEN), seq = mm__get_u64(h + H_SEQ);
    if (g == NULL) {
        uint64_t fg;
        int state, tomb;
        if (!org_facts(o, h, &fg, &state, &tomb)) return 0;
        return gen < fg || (gen == fg && (tomb || seq == 0));
    }
    return gen < g->gen || (gen == g->gen && (g->tomb || seq <= g->seq));
}

struct vstate {
    uint8_t h[HASH_LEN];
    uint64_t last;
    int stale;
};

void
mm__oplog_verify_end(struct mm__oplog_verify *v)
{
    mm__free(v->st);
    v->st = NULL;
}

int
mm__oplog_verify_begin(struct mm__oplog_verify *v, const mm__oplog *o,
                       const uint8_t *buf, size_t len)
{
    memset(v, 0, sizeof(*v));
    int rc = mm__oplog_batch_iter_init(&v->it, buf, len);
    if (rc) return rc;
    if (v->it.count == 0) return v->it.nheads ? MM_EDECODE : 0;
    if (v->it.nheads == 0) return MM_EUNAUTHORIZED; /* unsigned */
    struct vstate *st = mm__calloc(v->it.nheads, sizeof(*st));
    if (st == NULL) return -ENOMEM;
    v->st = st;
    for (uint16_t i = 0; i < v->it.nheads; i++) {
        const uint8_t *h = v->it.heads + (size_t)i * HEAD_LEN;
        if (i && memcmp(h - HEAD_LEN, h, MM_NODE_ID_LEN) >= 0) {
            mm__oplog_verify_end(v);
            return MM_EDECODE; /* origins strictly ascending */
        }
        memcpy(st[i].h, h + H_BASE, HASH_LEN);
        st[i].stale = head_stale(o, h);
    }
    return 0;
}

/* The heads, once every record was chained. */
static int
verify_heads(struct mm__oplog_verify *v)
{
    const struct vstate *st = v->st;
    for (uint16_t i = 0; i < v->it.nheads; i++) {
        const uint8_t *h = v->it.heads + (size_t)i * HEAD_LEN;
        uint8_t id[HASH_LEN], msg[HEAD_MSG_LEN];
        if (st[i].last != mm__get_u64(h + H_SEQ)) return MM_EUNAUTHORIZED;
        if (st[i].stale) continue; /* nothing of it will be applied */
        if (memcmp(st[i].h, h + H_HASH, HASH_LEN) != 0) return MM_EUNAUTHORIZED;
        mm__sha256(id, h + H_PUB, MM_ED25519_KEY_LEN);
        if (memcmp(id, h, MM_NODE_ID_LEN) != 0) return MM_EUNAUTHORIZED;
        head_msg(msg, h, mm__get_u64(h + H_GEN), mm__get_u64(h + H_SEQ),
                 h + H_HASH);
        if (mm__ed25519_verify(h + H_PUB, msg, sizeof(msg), h + H_SIG) != 0)
            return MM_EUNAUTHORIZED;
        v->nsigs++;
    }
    return 0;
}

int
mm__oplog_verify_some(struct mm__oplog_verify *v, size_t max, size_t *done)
{
    const uint8_t *rec;
    size_t n;
    int rc;
    *done = 0;
    if (v->it.count == 0) return v->it.left == 0 ? 0 : MM_EDECODE;
    /* Each origin's records: one run of its head's generation, without a
     * gap, chained from the head's base to the head's hash. */
    while (*done < max) {
        if ((rc = mm__oplog_batch_iter_next(&v->it, &rec, &n)) != 1)
            return rc ? rc : verify_heads(v);
        ++*done;
        struct mm__oplog_op op;
        if (mm__oplog_op_decode(&op, rec, n)) return MM_EDECODE;
        const uint8_t *h = mm__oplog_batch_head(&v->it, op.origin);
        if (h == NULL || op.kind == MM_OPLOG_SNAPSHOT ||
            op.generation != mm__get_u64(h + H_GEN) ||
            op.seq > mm__get_u64(h + H_SEQ))
            return MM_EUNAUTHORIZED;
        struct vstate *s =
            &((struct vstate *)v->st)[(size_t)(h - v->it.heads) / HEAD_LEN];
        if (s->last && op.seq != s->last + 1) return MM_EUNAUTHORIZED;
        s->last = op.seq;
        if (!s->stale && (rc = chain_next(s->h, rec, n)) != 0) return rc;
    }
    if (v->it.i < v->it.count) return 1;
    if (v->it.left != 0) return MM_EDECODE;
    return verify_heads(v);
}

int
mm__oplog_batch_verify(const mm__oplog *o, const uint8_t *buf, size_t len,
                       size_t *nsigs)
{
    struct mm__oplog_verify v;
    size_t done;
    if (nsigs) *nsigs = 0;
    int rc = mm__oplog_verify_begin(&v, o, buf, len);
    if (rc == 0) rc = mm__oplog_verify_some(&v, SIZE_MAX, &done);
    if (nsigs) *nsigs = v.nsigs;
    mm__oplog_verify_end(&v);
    return rc;
}
