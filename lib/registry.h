/*
 * registry.h — the cluster-wide registry (docs/design.md, Registry).
 *
 * The receptionist (receptionist.c) keeps an OpLog (oplog.c) for every
 * node, cluster or not: its view (the winners of every origin whose member
 * is alive or suspect) plus this node's private registrations is what
 * lookups, listings and watches see.  registry.c disseminates ops between
 * nodes on shard 0: pushes new ops to connected peers at once, forwards ops
 * it applied, digest-first anti-entropy, catch-up of joiners.
 *
 * Every function here is thread-safe (the receptionist lock).
 */
#ifndef MM_REGISTRY_H
#define MM_REGISTRY_H

#include "runtime.h"

struct mm_net;
struct mm_tq;
struct mm_registry;
struct mm__oplog_op;

/* One registry entry as queries see it (borrowed for the callback). */
struct mm_registry_entry {
    const char *label;
    const char *type; /* actor type name; "" if unknown */
    mm_endpoint ep;
    int visibility; /* enum mm_visibility */
    const char *const *keys;
    size_t nkeys;
    int winner; /* 0: shadowed claimant */
    uint64_t hlc;
};
typedef int (*mm_registry_entry_cb)(void *data,
                                    const struct mm_registry_entry *e);

/* Every claimant of |label|, the winner first.  Returns the count. */
size_t mm__registry_claimants(mm_node *n, const char *label,
                              mm_registry_entry_cb cb, void *data);
/* Visible entries (winners and local private ones) in label order,
 * filtered by |prefix| and reception |key| (either may be NULL). */
size_t mm__registry_foreach(mm_node *n, const char *prefix, const char *key,
                            mm_registry_entry_cb cb, void *data);
/*
 * Where a paged walk of the view stands (zeroed: the start).  Opaque to
 * callers but for carrying it between pages.
 */
struct mm_registry_cursor {
    uint64_t nbuckets; /* the table's size when the walk began */
    uint64_t next;     /* the next bucket group */
};
/*
 * One page of the visible entries matching |prefix| and |key|, in table
 * order (not label order): whole bucket groups from |*cur| until
 * |max_entries| entries or about |max_bytes| of them were given or
 * |max_work| slots and entries were walked.  Updates |*cur|; returns 1
 * when the walk is over, 0 when a next page follows, MM_EINVAL for a
 * cursor that is not one.  The work is bounded, whatever the table's size.
 */
int mm__registry_page(mm_node *n, const char *prefix, const char *key,
                      struct mm_registry_cursor *cur, size_t max_entries,
                      size_t max_bytes, size_t max_work,
                      mm_registry_entry_cb cb, void *data);
/*
 * mm_listing_open() for a watch of another node or a client: the node's
 * private registrations never appear in it (backfill and events alike).
 */
int mm__listing_open_shared(mm_listing **out, mm_node *n,
                            const mm_listing_opts *o, mm_listing_cb cb,
                            void *data);
/*
 * For a listing's subscriber that cannot take events now: called from its
 * callback, the event being delivered is not taken and it and those after
 * it stay in the listing's bounded queue (RESYNC on overflow) until
 * mm__listing_release().  Shard-thread of the listing only.
 */
void mm__listing_hold(mm_listing *l);
void mm__listing_release(mm_listing *l);
int mm__listing_held(mm_listing *l);
/*
 * Cancels a waiting mm_lookup_wait(|cb|, |data|) made from this shard:
 * 0 (|cb| will not run) or MM_ENOTFOUND (its answer is already posted).
 */
int mm__lookup_wait_cancel(mm_node *n, mm_lookup_cb cb, void *data);

/* Per-origin facts for `murmer oplog`. */
struct mm_registry_origin {
    uint8_t id[MM_NODE_ID_LEN];
    uint64_t generation;
    uint64_t seq;      /* last applied */
    uint64_t snap_seq; /* ops <= snap_seq are folded into a snapshot */
    int state;         /* enum mm__oplog_state */
    size_t nentries;
};
typedef int (*mm_registry_origin_cb)(void *data,
                                     const struct mm_registry_origin *o);
void mm__registry_origins(mm_node *n, mm_registry_origin_cb cb, void *data);
/* The records of |origin| from seq |from| on (a snapshot record first when
 * |from| is at or below the snapshot), as encoded by oplog.c; decode with
 * mm__oplog_op_decode().  0 or MM_ENOTFOUND. */
int mm__registry_ops(mm_node *n, const uint8_t origin[MM_NODE_ID_LEN],
                     uint64_t from,
                     int (*cb)(void *data, const uint8_t *rec, size_t len),
                     void *data);
/* Calls |cb| on shard 0 for every record newly applied (local or remote)
 * until unfollowed; returns a handle > 0. */
int mm__registry_follow(mm_node *n,
                        void (*cb)(void *data, const uint8_t *rec, size_t len),
                        void *data);
void mm__registry_unfollow(mm_node *n, int handle);
/* 64-bit hash of the view (equal on every converged node). */
uint64_t mm__registry_hash(mm_node *n);

/* ---- the receptionist's oplog, for registry.c (thread-safe) ----------------
 */

struct mm__oplog_batch;
int mm__recep_apply(mm_node *n, const uint8_t *batch, size_t len,
                    size_t *applied);
/* Up to |max| records of a validated batch read by |it|, in order (see
 * mm__oplog_apply_some): 1 while records remain, 0 at the end, or an
 * error. */
struct mm__oplog_batch_iter;
int mm__recep_apply_some(mm_node *n, struct mm__oplog_batch_iter *it,
                         size_t max, size_t *done, size_t *applied);
struct mm_identity;
/* This node signs its registry heads with its identity key |id|.  0 or
 * MM_EKEY. */
int mm__recep_set_identity(mm_node *n, const struct mm_identity *id);
/* Finishes |b| (records of this node's oplog) with their origins' signed
 * heads (mm__oplog_batch_seal). */
int mm__recep_seal(mm_node *n, struct mm__oplog_batch *b);
/* mm__oplog_batch_verify against this node's oplog (duplicates are not
 * hashed or verified). */
int mm__recep_verify(mm_node *n, const uint8_t *batch, size_t len,
                     size_t *nsigs);
/* mm__oplog_verify_begin against this node's oplog. */
struct mm__oplog_verify;
int mm__recep_verify_begin(mm_node *n, struct mm__oplog_verify *v,
                           const uint8_t *batch, size_t len);
/* Whether a peer with vector |vec| lacks records: > 0, 0, or MM_EDECODE
 * (builds and signs nothing). */
long mm__recep_lacks(mm_node *n, const uint8_t *vec, size_t len);
/* The encoded version vector (caller frees with mm__free). */
int mm__recep_vector(mm_node *n, uint8_t **out, size_t *len);
uint64_t mm__recep_digest(mm_node *n);
/* The labels registered in the view (the oplog's winners). */
size_t mm__recep_entries(mm_node *n);
/* Adds to |out| the records a peer with vector |vec| lacks; the count or
 * MM_EDECODE. */
long mm__recep_missing(mm_node *n, const uint8_t *vec, size_t len,
                       struct mm__oplog_batch *out);
/* The first of those records that fit in |max| bytes (see
 * mm__oplog_missing_batch): the count, 0 when the peer lacks nothing,
 * MM_EDECODE or -ENOMEM. */
long mm__recep_missing_batch(mm_node *n, const uint8_t *vec, size_t len,
                             size_t max, struct mm__oplog_batch *out);
/* Calls |cb| on shard 0 with every batch of newly applied records (local
 * or remote; the records mm__registry_follow hands out one by one) until
 * unfollowed with mm__registry_unfollow; returns a handle > 0. */
int mm__recep_follow_batches(mm_node *n,
                             void (*cb)(void *data, const uint8_t *batch,
                                        size_t len),
                             void *data);
/* enum mm__oplog_state */
void mm__recep_origin_state(mm_node *n, const uint8_t id[MM_NODE_ID_LEN],
                            uint64_t gen, int oplog_state);

/* ---- glue (registry.c, shard 0) -------------------------------------------
 */

/* Pushes an encoded batch of newly applied records to connected peers. */
void mm__registry_push(struct mm_registry *r, const uint8_t *batch, size_t len);

/* Registers its frame and connection hooks with |net|; its anti-entropy
 * timer runs on |tq| (shard 0's). */
int mm__registry_new(struct mm_registry **out, mm_node *n, struct mm_net *net,
                     struct mm_tq *tq);
void mm__registry_start(struct mm_registry *r);
void mm__registry_close(struct mm_registry *r);
void mm__registry_free(struct mm_registry *r);
/* What replication sent (shard 0; tests and benchmarks). */
struct mm_registry_stats {
    uint64_t frames_out;    /* frames sent */
    uint64_t batches_out;   /* OPS frames sent (pushes and catch-ups) */
    uint64_t ops_out;       /* records sent by catch-ups */
    uint64_t overloaded;    /* frames the transport refused: MM_EOVERLOADED */
    uint64_t send_failed;   /* frames refused otherwise (MM_EINVAL, ...) */
    uint64_t too_large;     /* records alone above max_frame: unsent */
    uint64_t push_deferred; /* pushes with no room: vector asked for */
    uint64_t catchups;      /* catch-ups started */
    uint64_t catchups_done; /* ... that sent everything the peer lacked */
    size_t catchups_active; /* under way now */
    size_t batch_largest;   /* largest OPS body sent, bytes */
    size_t batch_max;       /* the bound on an OPS body of several
                               records, bytes */
    uint64_t batches_in;    /* OPS frames received */
    uint64_t apply_longest_ns; /* longest apply of one received batch
                                  (all at once) or of one turn's share */
    uint64_t apply_waited;     /* received batches applied over turns or
                                  queued behind another */
    uint64_t apply_turns;      /* turns that applied queued records */
    size_t apply_turn_ops_max; /* most records applied in one such turn */
    size_t apply_queued;       /* bytes of received batches waiting now */
    size_t apply_queued_peak;  /* ... at most */
    uint64_t apply_overflow;   /* connections closed: a peer's waiting
                                  batches would pass the bound */
    uint64_t ops_applied;      /* records of received batches applied */
    uint64_t ae_rounds;        /* anti-entropy rounds */
    uint64_t bytes_out;        /* frames sent, bytes with their headers */
    uint64_t ops_bytes_in;     /* OPS bodies received, bytes */
    uint64_t forged_in;        /* OPS frames refused whole: a record not
                                  covered by its origin's valid signed head
                                  (forged, tampered, unsigned, old version) */
    uint64_t sigs_verified;    /* origins' head signatures checked */
    uint64_t dials;            /* digests to members without a connection
                                  (each dials), at most one per
                                  MM_REGISTRY_DIAL_GAP_MS */
    uint64_t dials_skipped;    /* ... dropped within the gap (a node
                                  without connections catching up) */
    uint64_t dials_deferred;   /* ... put off within the gap (members back
                                  from failed) */
    size_t dials_owed;         /* ... of those, waiting now */
};
void mm__registry_stats(const struct mm_registry *r,
                        struct mm_registry_stats *out);
/* Tests: records applied per turn and bytes a peer may have waiting
 * (default MM_REGISTRY_APPLY_OPS_MAX, MM_REGISTRY_APPLY_QUEUE_MAX; 0 keeps
 * the current value).  Shard 0. */
void mm__registry_set_apply_limits(struct mm_registry *r, size_t ops,
                                   size_t peer_bytes);
/* Tests: sends |body| as an OPS frame to member |peer| as it is (a
 * member that forges or relays).  Shard 0.  0 or an error. */
int mm__registry_send_ops(struct mm_registry *r,
                          const uint8_t peer[MM_NODE_ID_LEN],
                          const uint8_t *body, size_t len);
/* A member changed state (enum mm_swim_state). */
void mm__registry_member_state(struct mm_registry *r,
                               const uint8_t id[MM_NODE_ID_LEN], uint64_t gen,
                               int swim_state);

#endif /* MM_REGISTRY_H */
