/*
 * oplog.h — registry replication core (docs/design.md, The oplog).  Pure: no
 * libuv, no sockets, no threads, no clock.  Events leave through callbacks;
 * bytes come in and go out as buffers the glue moves over QUIC.
 *
 * Model.
 *  - Every node is an *origin*.  It appends ops about its own replicated
 *    (public or internal) actors to its own log: register, check_in, remove.
 *    Seqs run 1, 2, 3... without gaps per (origin, generation).  Private
 *    registrations never produce ops: mm__oplog_register() refuses them with
 *    MM_EINVAL and appends nothing, so the next replicated op takes the next
 *    seq and no peer ever waits for a seq that will never come.
 *  - Every node keeps, per origin, the log of the newest generation it knows
 *    (as snapshot + tail once compacted) and a version vector
 *    {origin -> (generation, seq)}.  A record is applied exactly once and only
 *    when its seq is the next one; records that arrive early are buffered (at
 *    most MM_OPLOG_PENDING_MAX per origin; beyond that they are dropped and
 *    anti-entropy refills them).  Records of an older generation are
 *    discarded; a record of a newer generation drops the old generation's log
 *    and entries (removed events, reason MM_OPLOG_REASON_GENERATION).
 *    Removes and check-ins are owner-scoped by construction: a record only
 *    ever touches the entries of the origin whose log it belongs to.
 *  - The *view* holds the entries of origins whose member state is alive or
 *    suspect.  failed/left hide an origin's entries (removed events, reason
 *    MM_REASON_NODE_DOWN) but keep its log and vector entry; alive/suspect
 *    again brings them back (added events) without any resend.  reaped drops
 *    everything and leaves a tombstone (origin, generation) so that late
 *    copies of that generation's records are discarded.
 *  - Label conflicts: among the in-view claimants of a label the winner is
 *    the smallest (registration HLC, origin node id).  Others are shadowed:
 *    listed by mm__oplog_claimants(), never by lookup.  Events describe the
 *    winners only: added when an entry becomes the winner, removed (with the
 *    reason, or MM_OPLOG_REASON_SHADOWED) when it stops being the winner.
 *
 * Events are emitted synchronously from inside the mutating call, in the
 * order the changes happen, one per change.  Callbacks must not call back
 * into the oplog to mutate it (queries are fine).  mm__oplog_free() emits
 * nothing.  Queries on a const oplog may still reorder a private cache
 * (the origins in id order): serialize every call, queries included.
 *
 * The local node's own private registrations never reach this module: the
 * receptionist answers for them itself.
 *
 * Glue obligations.
 *  - Call mm__oplog_set_origin_state() on every membership change, including
 *    a member seen with a new generation: that drops the old generation's
 *    entries even when the new process has not registered anything yet.  An
 *    origin first learnt through its records starts alive; a newer
 *    generation learnt through records also starts alive (a new process).
 *  - Take the registration HLC from mm__hlc_now() and keep it across
 *    supervised restarts (a restart appends nothing).  Merge remote HLCs in
 *    the applied callback (decode the record, mm__hlc_update(op.hlc)).
 *  - Forward exactly the records handed to the applied callback; use
 *    mm__oplog_digest() first and mm__oplog_missing() on a mismatch.
 *  - A node that replicates sets its signer (mm__oplog_set_signer), seals
 *    what it sends (mm__oplog_batch_seal, mm__oplog_missing_batch) and
 *    applies a received batch only once mm__oplog_batch_verify (or the
 *    same in steps) accepted it: the apply functions do not verify.  The
 *    chain and signatures use crypto.h (nettle), nothing else.
 *  - Optionally answer for members whose origins hold nothing
 *    (mm__oplog_set_member_lookup): the oplog then keeps nothing per member
 *    that never wrote a record.
 *  - NEEDSWORK: tombstones of reaped origins are kept for the oplog's life
 *    (one small record each); compaction is on demand, never automatic.
 */
#ifndef MM_OPLOG_H
#define MM_OPLOG_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* Limits enforced on append and on decode (network input). */
#ifndef MM_OPLOG_LABEL_MAX
#define MM_OPLOG_LABEL_MAX 1024u /* bytes, no NUL, not empty */
#endif
#ifndef MM_OPLOG_TYPE_MAX
#define MM_OPLOG_TYPE_MAX 256u
#endif
#ifndef MM_OPLOG_KEY_MAX
#define MM_OPLOG_KEY_MAX 256u
#endif
#ifndef MM_OPLOG_KEYS_MAX
#define MM_OPLOG_KEYS_MAX 64u /* reception keys per entry */
#endif
#ifndef MM_OPLOG_PENDING_MAX
#define MM_OPLOG_PENDING_MAX 256u /* early records buffered per origin */
#endif

/* Record kinds: the first byte of every record (see oplog.c). */
enum mm__oplog_kind {
    MM_OPLOG_REGISTER = 1,
    MM_OPLOG_CHECK_IN = 2,
    MM_OPLOG_REMOVE = 3,
    MM_OPLOG_SNAPSHOT = 4
};

/* Member state of an origin as told by membership. */
enum mm__oplog_state {
    MM_OPLOG_ALIVE = 0,
    MM_OPLOG_SUSPECT = 1,
    MM_OPLOG_FAILED = 2,
    MM_OPLOG_LEFT = 3,
    MM_OPLOG_REAPED = 4
};

/*
 * Removal reasons.  A remove op carries an enum mm_reason (murmer.h) chosen
 * by its origin; the oplog itself adds these (values >= 64 never travel).
 * Origin failed/left uses MM_REASON_NODE_DOWN.
 */
enum mm__oplog_reason {
    MM_OPLOG_REASON_SHADOWED = 64,   /* another claimant won the label */
    MM_OPLOG_REASON_GENERATION = 65, /* the origin restarted (new generation) */
    MM_OPLOG_REASON_REAPED = 66,     /* the origin was reaped */
    MM_OPLOG_REASON_REPLACED = 67,   /* the same origin registered it again */
    MM_OPLOG_REASON_COMPACTED = 68   /* gone in a snapshot (reason lost) */
};
const char *mm__oplog_reason_name(int reason);

/*
 * One registry entry: an origin's claim on a label.  Owned by the oplog;
 * pointers are valid until the entry is removed (do not keep them across
 * mutating calls).  Only the public fields are for readers.
 */
struct mm__oplog_entry {
    char *label; /* owned, NUL-terminated */
    char *type;  /* owned, actor type name */
    uint8_t origin[MM_NODE_ID_LEN];
    uint64_t generation;
    uint64_t actor;     /* actor id within (origin, generation) */
    uint64_t hlc;       /* registration timestamp: the conflict rank */
    uint8_t visibility; /* MM_VIS_PUBLIC or MM_VIS_INTERNAL */
    uint16_t nkeys;
    char **keys; /* owned; reception keys in check-in order (NULL: none) */

    /* private */
    struct oplog_origin *org;
    struct oplog_slot *slot;
    struct mm__oplog_entry *slot_next;
    struct mm__oplog_entry *org_prev, *org_next;
    int mark;
};

enum mm__oplog_event_kind {
    MM_OPLOG_ADDED = 1,    /* entry became the visible winner of its label */
    MM_OPLOG_REMOVED = 2,  /* entry stopped being the visible winner */
    MM_OPLOG_KEY_ADDED = 3 /* the visible winner gained reception key |key| */
};

/* Borrowed for the duration of the callback. */
struct mm__oplog_event {
    int kind;
    const struct mm__oplog_entry *entry; /* entry->label is the label */
    int reason;      /* REMOVED: enum mm_reason or mm__oplog_reason */
    const char *key; /* KEY_ADDED: the new key */
};

struct mm__oplog_cbs {
    /* View changes (may be NULL). */
    void (*event)(void *data, const struct mm__oplog_event *ev);
    /*
     * A record was newly applied (local append or remote), |rec| the encoded
     * record (op or snapshot), borrowed.  The glue forwards exactly these,
     * and merges op HLCs into its clock here.  With a signer (below),
     * another origin's records come once the record its signature covers
     * is applied, in seq order, so what is forwarded can be sealed.  May
     * be NULL.
     */
    void (*applied)(void *data, const uint8_t *rec, size_t len, int local);
    void *data;
};

typedef struct mm__oplog mm__oplog;

/*
 * Creates an oplog for the local node |self_id| in generation |self_gen|.
 * |cbs| is copied (may be NULL).  0 or -ENOMEM.
 */
int mm__oplog_new(mm__oplog **out, const uint8_t self_id[MM_NODE_ID_LEN],
                  uint64_t self_gen, const struct mm__oplog_cbs *cbs);
void mm__oplog_free(mm__oplog *o);

/* ---- local appends (the node's own actors) ---------------------------- */

/*
 * Appends register{label, type, visibility, actor, keys, hlc} for a local
 * actor and applies it.  |visibility| must be MM_VIS_PUBLIC or
 * MM_VIS_INTERNAL: MM_VIS_PRIVATE returns MM_EINVAL and appends nothing (the
 * caller need not filter).  MM_EEXISTS if this node already holds |label|,
 * MM_EINVAL for bad lengths.  |*seq| (may be NULL) gets the op's seq.
 */
int mm__oplog_register(mm__oplog *o, const char *label, const char *type,
                       int visibility, uint64_t actor, const char *const *keys,
                       size_t nkeys, uint64_t hlc, uint64_t *seq);
/* check_in{label, key}: MM_ENOTFOUND if this node holds no |label|,
 * MM_EEXISTS if the key is already there (no op). */
int mm__oplog_check_in(mm__oplog *o, const char *label, const char *key,
                       uint64_t *seq);
/* remove{label, reason}: MM_ENOTFOUND if this node holds no |label|. */
int mm__oplog_remove(mm__oplog *o, const char *label, int reason,
                     uint64_t *seq);

/* ---- membership ------------------------------------------------------- */

/*
 * Tells the oplog the member state of origin |id| in |generation|.  Stale
 * (older generation) news is ignored; a newer generation drops the old one.
 * The local node's own origin is always alive (calls about it are ignored).
 * Returns 0 or -ENOMEM.
 */
int mm__oplog_set_origin_state(mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN],
                               uint64_t generation, int state);

/*
 * The membership facts of member |id|: 0 with its newest |*generation| and
 * its |*state| (enum mm__oplog_state), or nonzero when membership does not
 * know it.  Queries only: it must not call into the oplog.
 */
typedef int (*mm__oplog_member_fn)(void *data, const uint8_t id[MM_NODE_ID_LEN],
                                   uint64_t *generation, int *state);
/*
 * Optional, set right after mm__oplog_new(): membership answers for the
 * origins that hold nothing (no record, early record or entry).  Without
 * it the oplog keeps a small record (about 32 bytes) of every member it
 * is told about; with it only the tombstones of reaped ones, and it asks
 * |fn| when such an origin's first record arrives.  Either way what the
 * oplog does is the same, as long as |fn| reports what the
 * mm__oplog_set_origin_state() calls said: the newest generation and its
 * state.  Origins that hold nothing are then not listed by
 * mm__oplog_origins() (mm__oplog_origin_info() still finds them).
 */
void mm__oplog_set_member_lookup(mm__oplog *o, mm__oplog_member_fn fn,
                                 void *data);
/*
 * For tests and the simulator: the origins held whole (those with
 * records, the local node included); |*facts| (may be NULL) gets the
 * small records of origins that hold nothing.
 */
size_t mm__oplog_origins_held(const mm__oplog *o, size_t *facts);

/* ---- queries ---------------------------------------------------------- */

/* The visible winner of |label|, or NULL. */
const struct mm__oplog_entry *mm__oplog_lookup(const mm__oplog *o,
                                               const char *label);
/*
 * Calls |cb| for every in-view claimant of |label|, winner first, then by
 * rank.  |cb| returns nonzero to stop.  Returns the number of calls.
 */
typedef int (*mm__oplog_entry_cb)(void *data, const struct mm__oplog_entry *e,
                                  int winner);
size_t mm__oplog_claimants(const mm__oplog *o, const char *label,
                           mm__oplog_entry_cb cb, void *data);
/*
 * Calls |cb| for every visible winner in label order (bytewise), keeping
 * those whose label starts with |prefix| and that hold |key| (either NULL =
 * any).  |cb| returns nonzero to stop.  Returns the number of calls, or
 * -ENOMEM.  (Listing backfills.)
 */
long mm__oplog_foreach(mm__oplog *o, const char *prefix, const char *key,
                       mm__oplog_entry_cb cb, void *data);
/* Number of visible winners. */
size_t mm__oplog_size(const mm__oplog *o);
/*
 * A 64-bit hash over the sorted view: (label, origin, generation, actor,
 * keys) of every visible winner.  Equal on nodes that converged.
 */
uint64_t mm__oplog_registry_hash(mm__oplog *o);

/* What this node knows about one origin (for `murmer oplog`). */
struct mm__oplog_origin_info {
    uint8_t id[MM_NODE_ID_LEN];
    uint64_t generation;
    uint64_t seq;      /* last applied seq */
    uint64_t snap_seq; /* records <= snap_seq are held as a snapshot */
    int state;         /* enum mm__oplog_state */
    size_t nentries;   /* claims of this origin (in view or not) */
    size_t npending;   /* early records waiting for a gap to fill */
    size_t nlog;       /* records held in the tail */
};
/* 0, or MM_ENOTFOUND (unknown or reaped origin). */
int mm__oplog_origin_info(const mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN],
                          struct mm__oplog_origin_info *info);
/* Every known (non-reaped) origin, in id order; |cb| returns nonzero to stop.
 */
void mm__oplog_origins(const mm__oplog *o,
                       int (*cb)(void *data,
                                 const struct mm__oplog_origin_info *info),
                       void *data);
/* Early records buffered over all origins (nonzero: a gap to refill). */
size_t mm__oplog_pending(const mm__oplog *o);

/*
 * Calls |cb| with the encoded records of origin |id| from seq |from| on:
 * when |from| <= the origin's snapshot seq, the snapshot record comes first
 * (so the caller can print "snapshot at S + tail"), then every tail op in
 * seq order.  |cb| returns nonzero to stop.  0 or MM_ENOTFOUND.
 */
typedef int (*mm__oplog_rec_cb)(void *data, const uint8_t *rec, size_t len);
int mm__oplog_ops_from(const mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN],
                       uint64_t from, mm__oplog_rec_cb cb, void *data);

/* ---- anti-entropy ----------------------------------------------------- */

/* Bytes mm__oplog_vector_encode() needs. */
size_t mm__oplog_vector_size(const mm__oplog *o);
/* Writes the version vector; returns bytes written or MM_EINVAL if |cap|
 * is too small. */
long mm__oplog_vector_encode(const mm__oplog *o, uint8_t *out, size_t cap);
/* 64-bit hash of the encoded vector (digest-first anti-entropy). */
uint64_t mm__oplog_digest(const mm__oplog *o);

/* A decoded vector, borrowing the input buffer (zero-alloc). */
struct mm__oplog_vec {
    const uint8_t *p; /* first element */
    uint32_t count;
};
/* Validates |buf| (ids strictly ascending).  0 or MM_EDECODE. */
int mm__oplog_vec_decode(struct mm__oplog_vec *v, const uint8_t *buf,
                         size_t len);
/* The (generation, seq) of |id| in |v|; 0 if found, MM_ENOTFOUND if not. */
int mm__oplog_vec_get(const struct mm__oplog_vec *v,
                      const uint8_t id[MM_NODE_ID_LEN], uint64_t *generation,
                      uint64_t *seq);

/*
 * Calls |cb| with every record a peer whose encoded vector is |vec| lacks:
 * per origin either the ops after its seq, or (when it is behind the
 * snapshot or on an older generation) the snapshot then the tail.  Returns
 * the number of records, or MM_EDECODE for a bad vector.  Nothing for a peer
 * that is up to date.
 */
long mm__oplog_missing(const mm__oplog *o, const uint8_t *vec, size_t len,
                       mm__oplog_rec_cb cb, void *data);

struct mm__oplog_batch;
/*
 * The same records in bounded pieces.  Adds to the empty batch |out| the
 * first of them, in the same order, that fit in |max| bytes (the finished
 * batch, header included): a batch never passes |max| unless it holds a
 * single record larger than that alone.  Returns the number of records
 * added (0: the peer lacks nothing), MM_EDECODE for a bad vector, or
 * -ENOMEM.  The rest follows from the vector mm__oplog_vec_advance() gives
 * for |vec| and the batch; each record comes exactly once over the pieces
 * (while the log does not change: records appended meanwhile come too).
 */
long mm__oplog_missing_batch(mm__oplog *o, const uint8_t *vec, size_t len,
                             size_t max, struct mm__oplog_batch *out);
/*
 * The vector of a peer whose vector was |vec| once it has applied the
 * finished batch |batch| built for it by mm__oplog_missing_batch(): per
 * origin of the batch's records, the (generation, seq) of its newest
 * record when newer than the peer's.  |*out| (|*outlen| bytes) is
 * allocated (mm__free).  0, MM_EDECODE or -ENOMEM.
 */
int mm__oplog_vec_advance(const uint8_t *vec, size_t vlen, const uint8_t *batch,
                          size_t blen, uint8_t **out, size_t *outlen);
/*
 * The union of vectors |a| and |b|, each origin at the newer (generation,
 * seq) of the two: where a catch-up stands when the peer reports a vector
 * while batches are still on their way.  |*out| (|*outlen| bytes) is
 * allocated (mm__free).  0, MM_EDECODE or -ENOMEM.
 */
int mm__oplog_vec_merge(const uint8_t *a, size_t alen, const uint8_t *b,
                        size_t blen, uint8_t **out, size_t *outlen);

/*
 * Applies a batch received from a peer.  The whole batch is validated
 * before anything is applied (MM_EDECODE and no change on bad input).
 * |*applied| (may be NULL) gets the number of records newly applied
 * (including buffered ones it unblocked); the glue forwards only those (the
 * applied callback hands them over one by one).  0, MM_EDECODE or -ENOMEM
 * (the records applied so far stay applied; anti-entropy resends the rest).
 */
int mm__oplog_apply_batch(mm__oplog *o, const uint8_t *buf, size_t len,
                          size_t *applied);
/*
 * The same in steps, for a caller that spreads a large batch over several
 * turns.  |it| reads the batch (mm__oplog_batch_iter_init); records are
 * taken in order, at most |max| a call, |*done| of them this call.
 * mm__oplog_check_some() only validates: run over the whole batch first
 * (with a second iterator) to keep "nothing applied from a bad batch".
 * mm__oplog_apply_some() applies them, adding the newly applied ones to
 * |*applied|.  Both return 1 while records remain, 0 at the end of a
 * well-formed batch, MM_EDECODE (or -ENOMEM) otherwise.  Applying a batch
 * in steps leaves the log exactly as mm__oplog_apply_batch() does.
 */
struct mm__oplog_batch_iter;
int mm__oplog_check_some(struct mm__oplog_batch_iter *it, size_t max,
                         size_t *done);
int mm__oplog_apply_some(mm__oplog *o, struct mm__oplog_batch_iter *it,
                         size_t max, size_t *done, size_t *applied);

/* Applies one encoded record (op or snapshot); same rules, |*applied| 0..n. */
int mm__oplog_apply_record(mm__oplog *o, const uint8_t *rec, size_t len,
                           size_t *applied);

/*
 * Folds origin |id|'s ops up to its current seq S into a snapshot
 * (origin, generation, S, live entries).  0 or MM_ENOTFOUND / -ENOMEM.
 */
int mm__oplog_compact(mm__oplog *o, const uint8_t id[MM_NODE_ID_LEN]);

/* ---- signed heads ------------------------------------------------------ */

/*
 * Each origin's log (per generation) is a hash chain: h_0 is 32 zero
 * bytes, h_n = SHA-256(h_{n-1} || record n).  Its origin signs heads
 * (origin, generation, seq, h_seq) with its Ed25519 identity key, not
 * every op: a batch carries, per origin of its records, one signed head
 * (oplog.c, Byte format) that the origin's records in it chain up to.
 * mm__oplog_batch_verify() checks that without any state, so a record that
 * passes is its origin's own record at that seq; relays store the
 * signatures that came with the records they applied and pass them on,
 * never signing for anyone else.
 */
#define MM_OPLOG_HEAD_LEN 192 /* origin, gen, seq, base, hash, pub, sig */
struct mm_sign_key;
/*
 * This node signs its own heads with |key| (borrowed, outliving |o|),
 * whose public key is |pub|, and its batches are sealed
 * (mm__oplog_batch_seal, mm__oplog_missing_batch).  Without a signer
 * batches go without heads (a node that does not replicate; tests of the
 * core).
 */
void mm__oplog_set_signer(mm__oplog *o, const struct mm_sign_key *key,
                          const uint8_t pub[32]);
/*
 * Finishes |b| (records of this oplog, unfinished or finished unsealed)
 * with the signed head of each origin it holds records of.  Records no
 * signed head of ours covers are left out: another origin's records past
 * the newest of its signatures we hold, of an older generation, gone from
 * the log, or folded into a snapshot.  Our own run is signed now if its
 * last record is not yet.  Without a signer it is mm__oplog_batch_finish.
 * 0, MM_EDECODE (not a batch of records) or -ENOMEM.
 */
struct mm__oplog_batch;
int mm__oplog_batch_seal(mm__oplog *o, struct mm__oplog_batch *b);
/*
 * 0 when every record of the encoded batch is covered by a valid signed
 * head of its origin: heads in origin order, one per origin of the
 * records, each origin's records one gap-free run of the head's generation
 * that chains from the head's base to its hash and ends at its seq, the
 * key hashing to the origin's id, the signature valid.  MM_EUNAUTHORIZED
 * otherwise (an unsigned batch included), MM_EDECODE for a bad layout,
 * -ENOMEM.  |*nsigs| (may be NULL) gets the signatures checked.  With
 * |o| (may be NULL), an origin whose records |o| would ignore anyway (its
 * own, or a generation and seq it holds: an echo, a duplicate) is checked
 * for layout only, without hashing or signature.
 */
int mm__oplog_batch_verify(const mm__oplog *o, const uint8_t *buf, size_t len,
                           size_t *nsigs);

/* ---- batches (encoding helpers for the glue) --------------------------- */

/* A growable batch being written; caller-provided struct, owned buffer. */
struct mm__oplog_batch {
    uint8_t *buf; /* owned; header + items */
    size_t len, cap;
    uint32_t count;
    int sealed; /* mm__oplog_batch_seal() wrote it: finished, add nothing */
};
void mm__oplog_batch_init(struct mm__oplog_batch *b);
/* Appends one encoded record.  0 or -ENOMEM. */
int mm__oplog_batch_add(struct mm__oplog_batch *b, const uint8_t *rec,
                        size_t len);
/* Writes the header; buf/len then hold the finished batch (empty batch ok). */
int mm__oplog_batch_finish(struct mm__oplog_batch *b);
void mm__oplog_batch_release(struct mm__oplog_batch *b);
/* A mm__oplog_rec_cb that adds to the mm__oplog_batch in |data|. */
int mm__oplog_batch_add_cb(void *data, const uint8_t *rec, size_t len);

/* Reads an encoded batch record by record; nobody else parses the layout. */
struct mm__oplog_batch_iter {
    const uint8_t *p;
    size_t left;
    uint32_t count, i;
    const uint8_t *heads; /* nheads x MM_OPLOG_HEAD_LEN, origins ascending */
    uint16_t nheads;
};
/* The signed head of |origin| the batch |it| reads carries, or NULL. */
const uint8_t *mm__oplog_batch_head(const struct mm__oplog_batch_iter *it,
                                    const uint8_t origin[MM_NODE_ID_LEN]);
/*
 * mm__oplog_batch_verify in steps, for a batch checked over several turns:
 * begin (0, or the error for a bad header or heads; |o| only read here), then
 * some (at most |max| records a call, |*done| of them: 1 while records remain,
 * 0 when the whole batch verified, or the error), then end (frees; always,
 * after a successful begin).  |nsigs| counts the signatures checked.
 */
struct mm__oplog_verify {
    struct mm__oplog_batch_iter it;
    void *st; /* owned: per-head state */
    size_t nsigs;
};
int mm__oplog_verify_begin(struct mm__oplog_verify *v, const mm__oplog *o,
                           const uint8_t *buf, size_t len);
int mm__oplog_verify_some(struct mm__oplog_verify *v, size_t max, size_t *done);
void mm__oplog_verify_end(struct mm__oplog_verify *v);
/* Starts reading |buf|: 0, or MM_EDECODE for a bad header (version, or a
 * count the bytes cannot hold). */
int mm__oplog_batch_iter_init(struct mm__oplog_batch_iter *it,
                              const uint8_t *buf, size_t len);
/* The next record, not decoded (see mm__oplog_op_decode): 1 with |*rec| and
 * |*len| set; 0 at the end of a well-formed batch; MM_EDECODE when the
 * batch is truncated or has bytes after its last record. */
int mm__oplog_batch_iter_next(struct mm__oplog_batch_iter *it,
                              const uint8_t **rec, size_t *len);

/* ---- record decoding (zero-alloc views into the input) ----------------- */

/* Strings are NOT NUL-terminated: use the lengths. */
struct mm__oplog_op {
    uint8_t kind;          /* enum mm__oplog_kind */
    const uint8_t *origin; /* MM_NODE_ID_LEN bytes */
    uint64_t generation, seq;
    /* REGISTER (and each snapshot entry) */
    uint64_t hlc, actor;
    uint8_t visibility;
    const char *type;
    uint16_t type_len;
    uint16_t nkeys;
    const uint8_t *keys; /* nkeys x (u16 len | bytes) */
    /* REGISTER, CHECK_IN, REMOVE */
    const char *label;
    uint16_t label_len;
    /* CHECK_IN */
    const char *key;
    uint16_t key_len;
    /* REMOVE */
    uint8_t reason;
    /* SNAPSHOT */
    uint32_t nentries;
    const uint8_t *entries; /* nentries x register body */
    size_t entries_len;
};
/* Validates and decodes one record.  0 or MM_EDECODE. */
int mm__oplog_op_decode(struct mm__oplog_op *op, const uint8_t *rec,
                        size_t len);
/* Key |*pos| (start at 0) of a decoded REGISTER/snapshot entry; advances. */
void mm__oplog_op_key(const struct mm__oplog_op *op, size_t *pos,
                      const char **key, uint16_t *key_len);
/* Snapshot entry iteration: |*pos| starts at 0; fills |e| (REGISTER fields,
 * origin/generation from the snapshot).  Returns 1 while there are entries,
 * 0 at the end.  Only for a record mm__oplog_op_decode() accepted. */
int mm__oplog_snap_next(const struct mm__oplog_op *snap, size_t *pos,
                        struct mm__oplog_op *e);

#endif /* MM_OPLOG_H */
