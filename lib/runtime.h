/*
 * runtime.h — internal structures of the local actor runtime: messages,
 * calls, actors, shards and the node.  Only lib/ includes this.
 *
 * Threading model:
 *  - A node runs N shards; each shard is one libuv loop on one thread.
 *  - An actor lives on one shard for its whole life; only that shard's thread
 *    touches the actor struct, its mailbox list and its state.
 *  - Cross-thread traffic goes through a shard's inbox (mutex + intrusive
 *    list + one uv_async_send per batch, or one wake datagram while the
 *    transport waits hot: mm__shard_park).
 *  - A slot table per shard maps actor ids to actors.  Slots are never freed
 *    while the node lives, so any thread may read a slot's id and queued
 *    counter to reject a send at once (not_found / overloaded).
 *  - A call's record lives on its home shard (the caller's shard, or the
 *    target's when the caller is not a shard thread) and is touched only
 *    there; the reply is always posted to the home shard, exactly once.
 */
#ifndef MM_RUNTIME_H
#define MM_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "common.h"
#include "supervisor.h"
#include "tq.h"

struct cJSON;
struct mm_shard;
struct mm_actor;
struct mm_call;

/* ---- messages ------------------------------------------------------------ */

enum msg_kind {
    MSG_USER = 0,  /* to an actor (target = actor id) */
    MSG_REPLY = 1, /* to a call record on its home shard */
    MSG_FN = 2,    /* run fn(arg) on the shard */
    MSG_START = 3, /* start a spawned actor */
    MSG_STOP = 4,  /* stop an actor from outside */
    MSG_SHUTDOWN = 5,
    MSG_CLOSE = 6, /* shutdown phase B */
    MSG_REMOTE = 7 /* to a remote actor: handed to the cluster on shard 0 */
};

#define MSG_F_OWN_TYPE 0x01 /* type_name is owned (malloc'd) */
#define MSG_F_TELL 0x02
#define MSG_F_INL_DATA 0x04 /* data points at the message's own inl[] */
/* JSON from another node, not yet checked: checked where it is handled,
 * unless the handler decodes it strictly itself (MM_HANDLER_TYPED). */
#define MSG_F_JSON_UNCHECKED 0x08

/* Type names and payloads up to these sizes (with their NUL) are kept in
 * the message itself: a remote call's request and reply then allocate
 * nothing beyond the cached message (4 mallocs and frees fewer per round
 * trip for the 64-byte payload of W5). */
#define MSG_TNAME_INLINE 16
#define MSG_DATA_INLINE 80

struct mm_msg {
    struct mm_msg *next;
    uint8_t kind;    /* enum msg_kind */
    uint8_t content; /* enum mm_content */
    uint16_t flags;
    uint32_t type_id;    /* interned id; 0 = not interned yet */
    int32_t status;      /* replies */
    uint32_t timeout_ms; /* 0 = node default */
    const char *type_name;
    void *data; /* owned bytes (json/raw) or the pointer payload */
    size_t len;
    void (*dtor)(void *);
    struct cJSON *json;            /* lazily parsed; owned */
    size_t json_err;               /* parse error offset + 1, 0 = none */
    uint64_t target;               /* actor id for MSG_USER/START/STOP/REMOTE */
    uint8_t rnode[MM_NODE_ID_LEN]; /* MSG_REMOTE: the target's node */
    uint64_t rgen;                 /* MSG_REMOTE: the target's generation */
    uint64_t deadline;             /* absolute ms (calls), 0 = none */
    struct mm_call *call; /* the call this message answers or belongs to */
    struct mm_shard *reply_home; /* |call|'s home shard: replies go there.
                                  * Kept here so that no path reads a call
                                  * record owned by another shard. */
    void (*fn)(void *);          /* MSG_FN */
    void *fn_arg;
    /* A call that came over a connection: set once the connection is
     * gone, when nobody can receive the reply; the handler is not run. */
    const _Atomic unsigned char *gone;
    /* Not cleared on reuse (mm__msg_alloc clears up to here). */
    char tname[MSG_TNAME_INLINE];       /* type_name when short */
    unsigned char inl[MSG_DATA_INLINE]; /* data when MSG_F_INL_DATA */
};

/*
 * A mailbox's occupancy is one atomic word: the user messages accepted and
 * not yet handled in the high bits, their bytes (mm__msg_cost) in the low
 * MB_BYTES_BITS, so that a send reserves both with one atomic add.  The
 * bounds are clamped so that neither field can overflow into the other.
 */
#define MB_BYTES_BITS 40
#define MB_ONE_MSG (1ull << MB_BYTES_BITS)
#define MB_BYTES_MASK (MB_ONE_MSG - 1)
#define MB_MAX_CAPACITY (1u << 22)   /* messages */
#define MB_MAX_BYTES (1ull << 38)    /* the cost of one message */
#define MB_MAX_CAP_BYTES 0xffffffffu /* a mailbox's byte bound */

/* What |m| costs in a mailbox's byte bound: the message itself and the
 * payload and type name it owns (pointer payloads count as the message
 * alone).  Constant while |m| is queued. */
static inline uint64_t
mm__msg_cost(const mm_msg *m)
{
    uint64_t c = sizeof(*m) + m->len; /* len is 0 but for bytes */
    if (MM_UNLIKELY(m->flags & MSG_F_OWN_TYPE)) c += strlen(m->type_name);
    return c < MB_MAX_BYTES ? c : MB_MAX_BYTES;
}

/* A message with no payload for internal use. */
mm_msg *mm__msg_alloc(void);
/* Deep copy (JSON/raw bytes copied; pointer payloads refused: NULL). */
mm_msg *mm__msg_clone(const mm_msg *m);
/* A new message holding |src|'s type and payload; |src| is left empty
 * (its payload moved, not copied, when it was allocated).  NULL when out
 * of memory (|src| untouched). */
mm_msg *mm__msg_take(mm_msg *src);
/* Whether |m|'s JSON payload parses, without building a tree when a
 * strict check suffices (jsonv.h); else cJSON decides and *err_offset is
 * its error offset. */
int mm__msg_json_ok(mm_msg *m, size_t *err_offset);
void mm__msg_cache_free(void);
/* Frees this thread's typed-message caches (typed.c); called by
 * mm__msg_cache_free when a shard's thread ends. */
void mm__typed_thread_free(void);
/* JSON |data| decoded as a handler's request is: in the thread's turn
 * chunk when it is free, strings without escapes in place (their closing
 * quotes written over); mm_typed_free puts |data| back as it was.  For
 * the fuzz target. */
struct mm_type_desc;
int mm__typed_decode_turn(const struct mm_type_desc *t, char *data, size_t len,
                          void **val, char *err, size_t errlen);

/* ---- timers (one queue per shard, on a timerfd: tq.h) ------------------ */

/* Timers on a shard's queue (tq.h), deadlines in absolute ms. */
void mm__tmr_start(struct mm_shard *s, struct mm_tmr *t, uint64_t deadline);
void mm__tmr_stop(struct mm_shard *s, struct mm_tmr *t);

/* ---- calls --------------------------------------------------------------- */

struct mm_call {
    struct mm_tmr tmr;           /* deadline */
    struct mm_call *prev, *next; /* home shard's list of live calls */
    struct mm_shard *home;
    mm_reply_cb cb;
    void *data;
    uint8_t refs;     /* the reply + the caller side */
    uint8_t done;     /* cb already called */
    uint8_t blocking; /* mm_call: the callback keeps the reply */
};

void mm__call_adopt(struct mm_shard *s, struct mm_call *c, uint64_t deadline);
void mm__call_complete(struct mm_shard *s, mm_msg *reply);
void mm__calls_fail_all(struct mm_shard *s);
/* Posts |reply| (kind MSG_REPLY, status set) for |call| to |home|. */
void mm__call_reply(struct mm_shard *home, struct mm_call *call, int status,
                    mm_msg *reply);

/* ---- slots and actors ---------------------------------------------------- */

#define SLOT_CHUNK_BITS 12
#define SLOT_CHUNK (1u << SLOT_CHUNK_BITS)
#define SLOT_MAX_CHUNKS 4096u

struct mm_slot {
    _Atomic uint64_t id;     /* 0 = free */
    _Atomic uint64_t queued; /* messages << MB_BYTES_BITS | bytes */
    _Atomic(struct mm_actor *) actor;
    uint32_t capacity;  /* messages */
    uint32_t bytes_cap; /* bytes (at most MB_MAX_CAP_BYTES) */
};

static inline uint32_t
mm__mb_count(uint64_t q)
{
    return (uint32_t)(q >> MB_BYTES_BITS);
}

static inline uint64_t
mm__mb_bytes(uint64_t q)
{
    return q & MB_BYTES_MASK;
}

/* Whether a message of |cost| bytes finds no room in a mailbox that held
 * |q|.  Past the byte bound a message is refused unless the mailbox holds
 * nothing, so that one message of any size always goes. */
static inline int
mm__mb_full(const struct mm_slot *slot, uint64_t q, uint64_t cost)
{
    uint64_t b = mm__mb_bytes(q);
    return mm__mb_count(q) >= slot->capacity ||
           (b != 0 && b + cost > slot->bytes_cap);
}

static inline int
mm__actor_id_shard(uint64_t id)
{
    return (int)(id & 0xff);
}
static inline uint32_t
mm__actor_id_slot(uint64_t id)
{
    return (uint32_t)((id >> 8) & 0xffffff);
}

enum actor_status {
    ACTOR_PREPARED = 0, /* ready handle: registered, not started */
    ACTOR_STARTING,
    ACTOR_RUNNING,
    ACTOR_BACKOFF, /* waiting to restart */
    ACTOR_DEAD
};

struct mm_type_info {
    const mm_actor_type *type;
    /* handler index + 1 by interned message id; 0 = not handled. */
    uint16_t *by_id;
    uint32_t nby_id;
};

struct mm_watch;
struct mm_waiter;
struct mm_atimer;

struct mm_actor {
    struct mm_actor *rq_next;
    uint8_t in_runq;
    uint8_t status;   /* enum actor_status */
    uint8_t stop_req; /* external stop requested */
    uint8_t dying;
    uint32_t ntimers; /* timers set (timer.c), at most MM_ACTOR_TIMERS_MAX */
    uint64_t id;
    struct mm_shard *shard;
    struct mm_slot *slot;
    const struct mm_type_info *ti;
    void *state;
    mm_msg *mb_head, *mb_tail;
    /* Messages a handler ran for (mm__actor_run; `murmer top`), next to
     * the mailbox words each message touches anyway. */
    uint64_t handled;
    char *label;    /* owned; NULL if unlabelled */
    char *arg_json; /* owned */
    void *arg_ptr;
    struct mm_sup sup; /* supervision bookkeeping */
    struct mm_tmr restart_tmr;
    _Atomic int has_waiters;
    struct mm_waiter *waiters; /* guarded by shard->waiters_lock */
    /* Timers set with mm_send_after/every (timer.c); shard thread only. */
    struct mm_atimer *timers; /* doubly linked; NULL = none */
    /* For `murmer top` (lib/metrics.c); shard thread only.  Handler time
     * of the messages the shard's sampling picked (MM_HT_SAMPLE). */
    uint64_t ht_count, ht_sum_ns;
};

/* ---- shards ---------------------------------------------------------------
 */

/*
 * What a shard counts for the metrics endpoint (lib/metrics.c): plain
 * words written by the shard's thread only and read there too (a scrape
 * posts a function to every shard, which reads them with
 * mm__shard_ctr_read).  Calls are counted on their home shard by status:
 * 0 ok, 1..MM_CALL_ST_ERRS the MM_E* codes in order (MM_ENOTFOUND first),
 * the last index any other error.  The two counted on every message (the
 * handled messages and the calls answered ok) live in the shard's hot
 * fields (n_handled, n_calls_ok), not in |ctr|, whose handled and
 * calls[0] stay 0.  The handler time is sampled: the shard's k-th handled
 * message is timed when k is a multiple of MM_HT_SAMPLE (so ht_count is
 * handled / MM_HT_SAMPLE, rounded down), its time put in buckets of
 * MM_HT_BOUNDS nanoseconds (the last bucket: above the last bound).
 */
#define MM_CALL_ST_ERRS 15
#define MM_CALL_ST_N (MM_CALL_ST_ERRS + 2)
#define MM_HT_NBOUNDS 14
#define MM_HT_SAMPLE 128u
#define MM_HT_BOUNDS                                                           \
    {                                                                          \
        1000u, 5000u, 10000u, 50000u, 100000u, 500000u, 1000000u, 5000000u,    \
            10000000u, 50000000u, 100000000u, 500000000u, 1000000000u,         \
            5000000000u                                                        \
    }
struct mm_shard_ctr {
    uint64_t handled;  /* messages a handler ran for */
    uint64_t dropped;  /* dequeued, not run: expired, caller gone, unknown */
    uint64_t crashes;  /* handlers that returned an error (< 0) */
    uint64_t restarts; /* restarts scheduled by supervision */
    uint64_t calls[MM_CALL_ST_N];
    uint64_t ht_count, ht_sum_ns;
    uint64_t ht[MM_HT_NBOUNDS + 1];
};

static inline int
mm__call_st_index(int status)
{
    if (status == 0) return 0;
    if (status <= MM_ENOTFOUND && status > MM_ENOTFOUND - MM_CALL_ST_ERRS)
        return 1 + (MM_ENOTFOUND - status);
    return MM_CALL_ST_N - 1;
}

struct mm_shard {
    mm_node *node;
    int index;
    uv_loop_t loop;
    uv_async_t async;
    uv_idle_t idle;
    uv_check_t check; /* runs work right after I/O, in the same turn */
    struct mm_tq tq;  /* every timer of the loop (tq.h) */
    uv_thread_t thread;
    int has_thread;
    int closing; /* phase B drained the queues: posts refused */
    int idle_active;

    /* Inbox from other threads. */
    pthread_mutex_t inbox_lock;
    mm_msg *inbox_head, *inbox_tail;
    int inbox_closed;
    /* A hot wait (mm__shard_park) is on: a post sends a zero-length
     * datagram from |wake_fd| to |wake_to| (the transport's socket).  Under
     * inbox_lock. */
    int parked, park_woken;
    int wake_fd; /* -1 = none (no hot waits) */
    struct sockaddr_storage wake_to;
    socklen_t wake_len;

    /* Owned by the shard thread. */
    struct mm_actor *rq_head, *rq_tail;
    mm_msg *local_head, *local_tail; /* same-shard replies and items */
    struct mm_call calls;            /* sentinel of live call records */
    uint64_t now_ms;
    /* Counted per message, next to the words the scheduler touches (the
     * rest of the counters, in |ctr|, change only on rarer events). */
    uint64_t n_handled;  /* messages a handler ran for */
    uint64_t n_calls_ok; /* calls completed with status 0 */

    /* Slot table: chunks are allocated under slot_lock and never freed. */
    pthread_mutex_t slot_lock;
    _Atomic(struct mm_slot *) chunks[SLOT_MAX_CHUNKS];
    uint32_t nslots;
    uint32_t *free_slots;
    size_t nfree, free_cap;
    uint32_t *serials; /* per slot reuse counter (under slot_lock) */
    size_t serials_cap;

    pthread_mutex_t waiters_lock;
    size_t nactors;          /* live actors (shard thread) */
    struct mm_shard_ctr ctr; /* shard thread */
    /* The last actor timer id handed out on this shard (timer.c): ids are
     * this << 8 | index, unique in the node. */
    uint64_t timer_seq;
};

/* |s|'s counters (on |s|'s thread): |ctr| with the hot ones folded in. */
static inline void
mm__shard_ctr_read(const struct mm_shard *s, struct mm_shard_ctr *out)
{
    *out = s->ctr;
    out->handled = s->n_handled;
    out->calls[0] = s->n_calls_ok;
}

/* initial-exec: a plain %fs-relative load, no __tls_get_addr call on the
 * hot path (libmurmer is linked at start-up, not dlopen'ed late). */
#define MM_TLS _Thread_local __attribute__((tls_model("initial-exec")))
extern MM_TLS struct mm_shard *mm__cur_shard;

int mm__shard_init(struct mm_shard *s, mm_node *n, int index);
void mm__shard_release(struct mm_shard *s);
/* Closes the inbox and empties it and the local queue (shutdown). */
void mm__shard_drain_closed(struct mm_shard *s);
/* Posts |m| to |s| from any thread (same shard: local queue, no lock).
 * Returns MM_ECLOSED (and leaves |m| to the caller) once |s| is closed. */
int mm__shard_post(struct mm_shard *s, mm_msg *m);
/* Makes |a| runnable (shard thread only). */
void mm__shard_schedule(struct mm_shard *s, struct mm_actor *a);
/*
 * Hot waits of the transport on this shard's loop (mm_quic_ops.park):
 * set_wake opens the socket that wakes |to| (0 or a negative errno);
 * park returns 1 if nothing is runnable or posted, and from then until
 * unpark a post wakes |to|; unpark returns 1 if a post did; run_ready runs
 * what is runnable, as the check phase would.  Shard thread only (but
 * set_wake, before the thread starts or on it).
 */
int mm__shard_set_wake(struct mm_shard *s, const struct sockaddr *to,
                       socklen_t len);
int mm__shard_park(struct mm_shard *s);
int mm__shard_unpark(struct mm_shard *s);
void mm__shard_run_ready(struct mm_shard *s, uint64_t now_ns);
void mm__shard_thread_main(void *arg);
uint64_t mm__shard_now(struct mm_shard *s);
struct mm_slot *mm__slot_get(struct mm_shard *s, uint32_t idx);

/* ---- node ---------------------------------------------------------------- */

struct mm_recep;
struct mm_cluster;
struct mm_metrics;
struct mm_metrics_net;

/* The network half of a node (lib/cluster.c), driven on shard 0. */
struct mm_cluster_ops {
    /* A MSG_REMOTE message (call or tell) to send; takes ownership. */
    void (*send)(struct mm_cluster *c, mm_msg *m);
    /* Shutdown on shard 0, at the start of phase B (every shard's actors
     * stopped, the answers to their queued calls delivered): answer
     * pending calls, stop serving. */
    void (*stop)(struct mm_cluster *c);
    /* Shutdown phase B on shard 0: close handles. */
    void (*close)(struct mm_cluster *c);
    /* The network half's numbers for a scrape (lib/metrics.h), on shard
     * 0. */
    void (*metrics)(struct mm_cluster *c, struct mm_metrics_net *out);
    /* The test kit (lib/testkit.c), before the node runs: a packet filter
     * on the transport's UDP send path (mm__quic_set_filter). */
    void (*set_filter)(struct mm_cluster *c,
                       int (*fn)(void *data, const struct sockaddr *to,
                                 size_t len, uint32_t *delay_ms),
                       void *data, uint32_t hold_max, size_t hold_bytes);
    /* On shard 0: member |id| as this node lists it: its state (enum
     * mm_swim_state; MM_SWIM_NONE when unlisted) and its generation. */
    int (*member)(struct mm_cluster *c, const uint8_t id[MM_NODE_ID_LEN],
                  uint64_t *gen);
};

struct mm_node {
    char *name;
    char id_hex[33];
    uint8_t id[MM_NODE_ID_LEN];
    uint64_t generation;
    char *addr;
    mm_node_config cfg; /* strings below are owned copies */
    char **join;
    char **tags;

    int nshards;
    struct mm_shard *shards;
    _Atomic uint32_t spawn_rr;
    _Atomic int stopping;
    _Atomic int phase_a_done;
    /* Shutdown: when mm_node_stop was called (ms) and, on shard 0, the
     * timer that cuts a graceful leave at MM_SHUTDOWN_MS. */
    uint64_t stop_ms;
    struct mm_tmr leave_tmr;
    int leave_over;
    int running; /* mm_node_run or start_thread called */
    int threaded;

    /* Types and interned message names (rwlock: types may be added late). */
    pthread_rwlock_t types_lock;
    struct mm_type_info **types; /* each owned; pointers are handed out */
    size_t ntypes, types_cap;
    char **names; /* interned names; id = index + 1 */
    size_t nnames, names_cap;

    struct mm_recep *recep;
    struct mm_cluster *cluster; /* NULL for a local-only node */
    const struct mm_cluster_ops *cluster_ops;

    pthread_mutex_t ev_lock;
    mm_event_cb ev_cb;
    void *ev_data;

    struct mm_metrics *metrics; /* the /metrics endpoint; NULL when off */
};

/* The node's tables (nodes.c): types, interned names, the event callback;
 * their locks are made by _init and destroyed by _release. */
void mm__node_tables_init(mm_node *n);
void mm__node_tables_release(mm_node *n);
int mm__node_intern(mm_node *n, const char *name, int create, uint32_t *id);
/* Posts a control message of |kind| (enum msg_kind) to every shard. */
void mm__node_post_all(mm_node *n, int kind);
const struct mm_type_info *mm__node_type(mm_node *n, const char *name);
int mm__node_is_local(const mm_node *n, const mm_endpoint *ep);
void mm__node_emit(mm_node *n, const mm_event *ev);
/* The shard for a new actor: the caller's when on a shard thread, else
 * round robin. */
struct mm_shard *mm__node_pick_shard(mm_node *n, int want);

/* ---- actors (actor.c) ---------------------------------------------------- */

/* Runs up to |budget| messages of |a|; returns 1 if it still has work. */
int mm__actor_run(struct mm_actor *a, unsigned budget);
void mm__actor_start_msg(struct mm_shard *s, mm_msg *m);
void mm__actor_stop_msg(struct mm_shard *s, mm_msg *m);
/* Delivers a user message that arrived through the inbox. */
void mm__actor_deliver(struct mm_shard *s, mm_msg *m);
/* Stops every actor of the shard (shutdown phase A). */
void mm__actor_stop_all(struct mm_shard *s);
/* The actor of a handler context. */
struct mm_actor *mm__ctx_actor(mm_ctx *ctx);
/* Cancels every timer of |a| (timer.c): it stops, crashes or restarts. */
void mm__actor_timers_cancel(struct mm_actor *a);
/* Answers a dropped user message: calls get |status|, tells are freed. */
void mm__msg_reject(mm_node *n, mm_msg *m, int status);
struct mm_actor *mm__actor_lookup(struct mm_shard *s, uint64_t id);

/* ---- receptionist (receptionist.c) --------------------------------------- */

int mm__recep_new(struct mm_recep **out, mm_node *n);
void mm__recep_free(struct mm_recep *r);
int mm__recep_register(mm_node *n, const char *label, const mm_endpoint *ep,
                       int visibility, const char *const *keys, size_t nkeys);
/* Called by the actor's shard when it stops for good. */
void mm__recep_actor_gone(mm_node *n, const mm_endpoint *ep, const char *label,
                          int reason);

#endif /* MM_RUNTIME_H */
