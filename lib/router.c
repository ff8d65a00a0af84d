/*
 * router.c — round-robin, random and broadcast routers (docs/design.md,
 * Reception keys, listings and watches), over a fixed list of endpoints or over
 * the live listing of a reception key (a pool router).
 *
 * Threading.  A router may be used from any thread.  Its member list is
 * guarded by a mutex: sends pick a member under the lock and send outside
 * it; a pool router's listing callback (which runs on one shard, |lshard|)
 * edits the list under the same lock.
 *
 * Pool routers follow the listing: ADDED appends a member (label order for
 * the backfill), REMOVED drops it, RESYNC starts a new epoch, and the SYNCED
 * that ends the fresh backfill drops the members the backfill did not
 * confirm.  Members stay routable during a resync.  A pool router that was
 * just created may still be empty (the backfill runs on its shard soon
 * after): callers that need members wait for mm_router_size() > 0.
 *
 * Broadcast.  mm_router_broadcast() sends a copy of the message to every
 * member at once (the member list is snapshotted when it is called), keeps
 * each reply, and calls |bcb| once when every member answered or failed.
 * |bcb| runs on the thread that completes the last result: a shard thread
 * normally, or the calling thread when every send failed at once.
 *
 * mm_router_send() on a broadcast router:
 *  - with |cb| NULL it tells every member (fire and forget); it returns 0
 *    when at least one member accepted the message, else the first error;
 *  - with |cb| it calls every member and calls |cb| once, after all have
 *    answered: with the first error in member order if any member failed
 *    (reply NULL), else with status 0 and the first member's reply.
 * Pointer payloads cannot be copied: broadcasting one to more than one
 * member fails with MM_EINVAL.
 */
#include <stdatomic.h>

#include "router.h"
#include "runtime.h"

struct router_member {
    mm_endpoint ep;
    char *label;    /* owned; NULL for fixed routers */
    uint32_t epoch; /* last backfill that confirmed it (pool routers) */
};

struct mm_router {
    mm_node *node; /* borrowed; the node outlives the router */
    int kind;      /* enum mm_router_kind */
    pthread_mutex_t lock;
    struct router_member *members; /* owned; guarded by |lock| */
    size_t count, cap;
    uint64_t next; /* round-robin cursor */

    /* Pool routers. */
    mm_listing *listing; /* owned; touched on |lshard| only */
    int lshard;
    uint32_t epoch;
    int resyncing;

    /* mm_router_free() from a foreign thread waits for the close. */
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    int done;
};

struct router_bcast;

struct router_slot {
    struct router_bcast *b;
    size_t i;
};

/* One broadcast in flight; freed after the last result. */
struct router_bcast {
    _Atomic size_t pending; /* results still missing, plus one guard */
    mm_broadcast_cb bcb;    /* mm_router_broadcast() */
    mm_reply_cb cb;         /* mm_router_send() on a broadcast router */
    void *data;
    size_t n;
    mm_broadcast_result *results; /* owned, replies owned */
    struct router_slot *slots;    /* owned */
};

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Construction                                                             */
/* ------------------------------------------------------------------------ */

static int
router_alloc(mm_router **out, mm_node *n, int kind)
{
    mm_router *r;

    *out = NULL;
    if (n == NULL || kind < MM_ROUTER_ROUND_ROBIN || kind > MM_ROUTER_BROADCAST)
        return MM_EINVAL;
    if ((r = mm__calloc(1, sizeof(*r))) == NULL) return UV_ENOMEM;
    r->node = n;
    r->kind = kind;
    r->next = mm__rand64(); /* routers over the same list do not align */
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->done_lock, NULL);
    pthread_cond_init(&r->done_cond, NULL);
    *out = r;
    return 0;
}

static void
router_release(mm_router *r)
{
    for (size_t i = 0; i < r->count; i++)
        mm__free(r->members[i].label);
    mm__free(r->members);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->done_lock);
    pthread_cond_destroy(&r->done_cond);
    mm__free(r);
}

int
mm_router_new(mm_router **out, mm_node *n, int kind, const mm_endpoint *eps,
              size_t count)
{
    mm_router *r;
    int rc;

    if (out == NULL || (count > 0 && eps == NULL)) return MM_EINVAL;
    if ((rc = router_alloc(&r, n, kind)) != 0) return rc;
    if (count > 0) {
        r->members = mm__calloc(count, sizeof(*r->members));
        if (r->members == NULL) {
            router_release(r);
            return UV_ENOMEM;
        }
        for (size_t i = 0; i < count; i++)
            r->members[i].ep = eps[i];
        r->count = r->cap = count;
    }
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Pool routers                                                             */
/* ------------------------------------------------------------------------ */

static ssize_t
router_find(mm_router *r, const mm_endpoint *ep)
{
    for (size_t i = 0; i < r->count; i++)
        if (mm_endpoint_equal(&r->members[i].ep, ep)) return (ssize_t)i;
    return -1;
}

static void
router_remove_at(mm_router *r, size_t i)
{
    mm__free(r->members[i].label);
    memmove(&r->members[i], &r->members[i + 1],
            (r->count - i - 1) * sizeof(*r->members));
    r->count--;
}

static void
router_add(mm_router *r, const mm_listing_event *ev)
{
    ssize_t at = router_find(r, &ev->ep);
    struct router_member *m;

    if (at >= 0) {
        r->members[at].epoch = r->epoch;
        return;
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        m = mm__realloc(r->members, cap * sizeof(*m));
        if (m == NULL) {
            MM_LOG(MM_LOG_WARN, "router", "out of memory: member %s dropped",
                   ev->label ? ev->label : "?");
            return;
        }
        r->members = m;
        r->cap = cap;
    }
    m = &r->members[r->count++];
    m->ep = ev->ep;
    m->label = ev->label ? mm__strdup(ev->label) : NULL;
    m->epoch = r->epoch;
}

void
mm__router_apply(mm_router *r, const mm_listing_event *ev)
{
    ssize_t at;

    pthread_mutex_lock(&r->lock);
    switch (ev->kind) {
    case MM_LISTING_ADDED:
        router_add(r, ev);
        break;
    case MM_LISTING_REMOVED:
        if ((at = router_find(r, &ev->ep)) >= 0)
            router_remove_at(r, (size_t)at);
        break;
    case MM_LISTING_RESYNC:
        r->epoch++;
        r->resyncing = 1;
        break;
    case MM_LISTING_SYNCED:
        if (r->resyncing) {
            for (size_t i = r->count; i-- > 0;)
                if (r->members[i].epoch != r->epoch) router_remove_at(r, i);
            r->resyncing = 0;
        }
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&r->lock);
}

static void
router_listing_cb(void *data, const mm_listing_event *ev)
{
    mm__router_apply(data, ev);
}

/* The shard the calling thread runs, or -1 for a foreign thread. */
static int
router_cur_shard(mm_node *n)
{
    return mm__cur_shard && mm__cur_shard->node == n ? mm__cur_shard->index
                                                     : -1;
}

int
mm_router_new_pool(mm_router **out, mm_node *n, int kind, const char *key)
{
    mm_listing_opts o;
    mm_router *r;
    int rc, cur;

    if (out == NULL || key == NULL || *key == '\0') return MM_EINVAL;
    if ((rc = router_alloc(&r, n, kind)) != 0) return rc;
    /* Listen on the caller's shard when there is one, else on shard 0. */
    cur = router_cur_shard(n);
    r->lshard = cur >= 0 ? cur : 0;
    mm_listing_opts_init(&o);
    o.key = key;
    o.shard = r->lshard;
    if ((rc = mm_listing_open(&r->listing, n, &o, router_listing_cb, r)) != 0) {
        router_release(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* On |lshard|: closes the listing, then frees or wakes mm_router_free(). */
static void
router_close_fn(void *data)
{
    mm_router *r = data;
    int waited;

    mm_listing_close(r->listing);
    r->listing = NULL;
    pthread_mutex_lock(&r->done_lock);
    waited = r->done == -1; /* a foreign thread waits in mm_router_free */
    r->done = 1;
    if (waited) pthread_cond_signal(&r->done_cond);
    pthread_mutex_unlock(&r->done_lock);
    if (!waited) router_release(r);
}

void
mm_router_free(mm_router *r)
{
    int cur;

    if (r == NULL) return;
    if (r->listing == NULL) {
        router_release(r);
        return;
    }
    /*
     * The listing's callback runs on |lshard|, and closing it there is what
     * guarantees that no callback runs afterwards.  From that shard: close
     * now.  From another shard: hand the close (and the free) over, without
     * waiting (shards never block on each other).  From a foreign thread:
     * hand it over and wait.  When the node no longer takes posts, no
     * callback can run any more: close here.
     */
    cur = router_cur_shard(r->node);
    if (cur == r->lshard || !r->node->running) {
        router_close_fn(r);
        return;
    }
    if (cur >= 0) {
        if (mm_node_post(r->node, r->lshard, router_close_fn, r) != 0)
            router_close_fn(r);
        return;
    }
    pthread_mutex_lock(&r->done_lock);
    r->done = -1;
    pthread_mutex_unlock(&r->done_lock);
    if (mm_node_post(r->node, r->lshard, router_close_fn, r) != 0) {
        mm_listing_close(r->listing);
        r->listing = NULL;
        router_release(r);
        return;
    }
    pthread_mutex_lock(&r->done_lock);
    while (r->done != 1)
        pthread_cond_wait(&r->done_cond, &r->done_lock);
    pthread_mutex_unlock(&r->done_lock);
    router_release(r);
}

size_t
mm_router_size(mm_router *r)
{
    size_t n;

    pthread_mutex_lock(&r->lock);
    n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Broadcast                                                                */
/* ------------------------------------------------------------------------ */

static void
router_bcast_free(struct router_bcast *b)
{
    for (size_t i = 0; i < b->n; i++)
        mm_msg_free(b->results[i].reply);
    mm__free(b->results);
    mm__free(b->slots);
    mm__free(b);
}

static void
router_bcast_finish(struct router_bcast *b)
{
    if (b->bcb != NULL) {
        b->bcb(b->data, b->n, b->results);
    } else if (b->cb != NULL) {
        int status = 0;
        mm_msg *reply = NULL;
        for (size_t i = 0; i < b->n && status == 0; i++)
            status = b->results[i].status;
        if (status == 0) reply = b->results[0].reply;
        b->cb(b->data, status, reply);
    }
    router_bcast_free(b);
}

static void
router_bcast_done(struct router_bcast *b)
{
    if (atomic_fetch_sub_explicit(&b->pending, 1, memory_order_acq_rel) == 1)
        router_bcast_finish(b);
}

static void
router_bcast_cb(void *data, int status, mm_msg *reply)
{
    struct router_slot *slot = data;
    struct router_bcast *b = slot->b;
    mm_broadcast_result *res = &b->results[slot->i];

    res->status = status;
    if (status == 0 && reply != NULL) {
        res->reply = mm__msg_take(reply);
        if (res->reply == NULL) res->status = UV_ENOMEM;
    }
    router_bcast_done(b);
}

/*
 * Copies the current members into |*eps| (owned by the caller).  Returns
 * the count; 0 with |*eps| NULL when the router is empty; -1 on OOM.
 */
static ssize_t
router_snapshot(mm_router *r, mm_endpoint **eps)
{
    size_t n;

    *eps = NULL;
    pthread_mutex_lock(&r->lock);
    n = r->count;
    if (n > 0 && (*eps = mm__malloc(n * sizeof(**eps))) != NULL)
        for (size_t i = 0; i < n; i++)
            (*eps)[i] = r->members[i].ep;
    pthread_mutex_unlock(&r->lock);
    if (n > 0 && *eps == NULL) return -1;
    return (ssize_t)n;
}

/*
 * Makes |n| messages for a fan-out: |msg| itself last, copies before it.
 * On error frees the copies and leaves |msg| to the caller.
 */
static int
router_copies(mm_msg *msg, size_t n, mm_msg ***out)
{
    mm_msg **msgs;

    *out = NULL;
    if (n > 1 && mm_msg_content(msg) == MM_CONTENT_PTR) {
        MM_LOG(MM_LOG_WARN, "router",
               "a pointer payload cannot be copied for a broadcast");
        return MM_EINVAL;
    }
    if ((msgs = mm__calloc(n, sizeof(*msgs))) == NULL) return UV_ENOMEM;
    for (size_t i = 0; i + 1 < n; i++) {
        if ((msgs[i] = mm__msg_clone(msg)) == NULL) {
            for (size_t j = 0; j < i; j++)
                mm_msg_free(msgs[j]);
            mm__free(msgs);
            return UV_ENOMEM;
        }
    }
    msgs[n - 1] = msg;
    *out = msgs;
    return 0;
}

/* The common fan-out of mm_router_broadcast() and broadcast sends. */
static int
router_fanout(mm_router *r, mm_msg *msg, mm_broadcast_cb bcb, mm_reply_cb cb,
              void *data)
{
    struct router_bcast *b = NULL;
    mm_endpoint *eps;
    mm_msg **msgs = NULL;
    ssize_t got;
    size_t n;
    int rc;

    if (msg == NULL) return MM_EINVAL;
    if ((got = router_snapshot(r, &eps)) < 0) return UV_ENOMEM;
    if (got == 0) return MM_EEMPTY;
    n = (size_t)got;
    rc = UV_ENOMEM;
    if ((b = mm__calloc(1, sizeof(*b))) == NULL ||
        (b->results = mm__calloc(n, sizeof(*b->results))) == NULL ||
        (b->slots = mm__calloc(n, sizeof(*b->slots))) == NULL ||
        (rc = router_copies(msg, n, &msgs)) != 0) {
        if (b != NULL) {
            mm__free(b->results);
            mm__free(b->slots);
            mm__free(b);
        }
        mm__free(eps);
        return rc;
    }
    b->bcb = bcb;
    b->cb = cb;
    b->data = data;
    b->n = n;
    atomic_init(&b->pending, n + 1); /* + 1: no finish before the loop ends */
    for (size_t i = 0; i < n; i++) {
        b->results[i].ep = eps[i];
        b->slots[i].b = b;
        b->slots[i].i = i;
    }
    mm__free(eps);
    for (size_t i = 0; i < n; i++) {
        rc = mm_send(r->node, &b->results[i].ep, msgs[i], router_bcast_cb,
                     &b->slots[i]);
        if (rc != 0) {
            b->results[i].status = rc;
            mm_msg_free(msgs[i]);
            router_bcast_done(b);
        }
    }
    mm__free(msgs);
    router_bcast_done(b);
    return 0;
}

int
mm_router_broadcast(mm_router *r, mm_msg *msg, mm_broadcast_cb cb, void *data)
{
    if (r == NULL || cb == NULL) return MM_EINVAL;
    return router_fanout(r, msg, cb, NULL, data);
}

/* Broadcast tells: see the file comment. */
static int
router_tell_all(mm_router *r, mm_msg *msg)
{
    mm_endpoint *eps;
    mm_msg **msgs;
    ssize_t got;
    size_t n, ok = 0;
    int rc, first = 0;

    if ((got = router_snapshot(r, &eps)) < 0) return UV_ENOMEM;
    if (got == 0) return MM_EEMPTY;
    n = (size_t)got;
    if ((rc = router_copies(msg, n, &msgs)) != 0) {
        mm__free(eps);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        rc = mm_send(r->node, &eps[i], msgs[i], NULL, NULL);
        if (rc == 0) {
            ok++;
            continue;
        }
        if (first == 0) first = rc;
        /* The original (last) stays the caller's if nothing was sent. */
        if (i + 1 < n || ok > 0) mm_msg_free(msgs[i]);
    }
    mm__free(msgs);
    mm__free(eps);
    return ok > 0 ? 0 : first;
}

/* ------------------------------------------------------------------------ */
/* Round-robin and random                                                   */
/* ------------------------------------------------------------------------ */

int
mm_router_send(mm_router *r, mm_msg *msg, mm_reply_cb cb, void *data)
{
    mm_endpoint ep;
    size_t i;

    if (r == NULL || msg == NULL) return MM_EINVAL;
    if (r->kind == MM_ROUTER_BROADCAST)
        return cb ? router_fanout(r, msg, NULL, cb, data)
                  : router_tell_all(r, msg);
    pthread_mutex_lock(&r->lock);
    if (r->count == 0) {
        pthread_mutex_unlock(&r->lock);
        return MM_EEMPTY;
    }
    if (r->kind == MM_ROUTER_RANDOM)
        i = (size_t)(mm__rand64() % r->count);
    else
        i = (size_t)(r->next++ % r->count);
    ep = r->members[i].ep;
    pthread_mutex_unlock(&r->lock);
    return mm_send(r->node, &ep, msg, cb, data);
}
