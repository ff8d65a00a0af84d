/*
 * receptionist.c — labels, reception keys, lookups (immediate and waiting),
 * listings (backfill in label order, then live events through a bounded
 * queue that overflows into RESYNC), watches and registry events.
 *
 * One mutex guards the whole registry: registrations are rare next to
 * message traffic, and no callback ever runs under the lock.
 */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>

#include "crypto.h"
#include "hlc.h"
#include "oplog.h"
#include "identity.h"
#include "registry.h"

struct entry {
    struct entry *next; /* hash chain */
    char *label;
    char *type;
    mm_endpoint ep;
    int vis;
    int priv; /* a private local registration (not in the oplog) */
    uint64_t hlc;
    char **keys;
    size_t nkeys;
};

struct follower {
    struct follower *next;
    int handle;
    int batch; /* |cb| takes whole batches, not records */
    void (*cb)(void *data, const uint8_t *rec, size_t len);
    void *data;
};

struct lev { /* a queued listing event */
    int kind;
    char *label;
    mm_endpoint ep;
    int reason;
};

struct mm_listing {
    struct mm_listing *next;
    struct mm_recep *r;
    char *key, *prefix;
    mm_listing_cb cb;
    void *data;
    struct mm_shard *home;
    uint32_t limit;
    struct lev *q;
    size_t qlen, qcap;
    uint8_t backfill;  /* deliver a backfill next (initial or resync) */
    uint8_t resync;    /* ... preceded by a RESYNC event */
    uint8_t scheduled; /* a delivery is posted */
    uint8_t busy;      /* callbacks are running */
    uint8_t closed;
    uint8_t held;   /* the subscriber cannot take events now: they stay in
                     * |q| (RESYNC when it overflows) until released */
    uint8_t shared; /* for another node or a client: no private entries */
};

struct watch {
    struct watch *next;
    mm_endpoint ep;
    mm_watch_cb cb;
    void *data;
    struct mm_shard *home;
    int reason;
};

struct lwait {
    struct lwait *next;
    struct mm_recep *r;
    char *label;
    mm_lookup_cb cb;
    void *data;
    struct mm_shard *home;
    struct mm_tmr tmr;
    uint64_t deadline;
    int in_list;
    mm_endpoint ep;
};

struct mm_recep {
    mm_node *node;
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, count;
    struct mm_listing *listings;
    struct mm_listing *zombies; /* closed, a delivery still posted */
    struct watch *watches;
    struct lwait *waiters;
    /* The replicated registry: the table above is its view (winners of
     * origins in view) plus this node's private registrations. */
    mm__oplog *oplog;
    struct mm__hlc hlc;
    uint64_t hlc_ahead_told;       /* r->hlc.ahead when last logged */
    struct mm__oplog_batch outbox; /* records to push, flushed on shard 0 */
    int flush_posted;
    struct follower *followers;
    int next_follow;
    struct mm_sign_key *sign_key; /* signs this node's registry heads */
};

/* ---- the table
 * ------------------------------------------------------------------- */

static void recep_oplog_event(void *data, const struct mm__oplog_event *ev);
static void recep_oplog_applied(void *data, const uint8_t *rec, size_t len,
                                int local);

int
mm__recep_new(struct mm_recep **out, mm_node *n)
{
    struct mm_recep *r = mm__calloc(1, sizeof(*r));
    if (!r) return UV_ENOMEM;
    r->node = n;
    r->nbuckets = 64;
    r->buckets = mm__calloc(r->nbuckets, sizeof(*r->buckets));
    if (!r->buckets) {
        mm__free(r);
        return UV_ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    /* Remote stamps beyond the drift bound are not merged (hlc.h). */
    mm__hlc_init(&r->hlc, MM_HLC_MAX_DRIFT_MS);
    mm__oplog_batch_init(&r->outbox);
    struct mm__oplog_cbs cbs = {recep_oplog_event, recep_oplog_applied, r};
    int rc = mm__oplog_new(&r->oplog, n->id, n->generation, &cbs);
    if (rc) {
        mm__free(r->buckets);
        pthread_mutex_destroy(&r->lock);
        mm__free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static void
entry_free(struct entry *e)
{
    for (size_t i = 0; i < e->nkeys; i++)
        mm__free(e->keys[i]);
    mm__free(e->keys);
    mm__free(e->label);
    mm__free(e->type);
    mm__free(e);
}

static void
listing_free(struct mm_listing *l)
{
    for (size_t i = 0; i < l->qlen; i++)
        mm__free(l->q[i].label);
    mm__free(l->q);
    mm__free(l->key);
    mm__free(l->prefix);
    mm__free(l);
}

void
mm__recep_free(struct mm_recep *r)
{
    if (r->oplog) mm__oplog_free(r->oplog);
    mm__sign_key_free(r->sign_key);
    mm__oplog_batch_release(&r->outbox);
    for (struct follower *f = r->followers, *nx; f; f = nx) {
        nx = f->next;
        mm__free(f);
    }
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct entry *e = r->buckets[i];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    mm__free(r->buckets);
    for (struct mm_listing *l = r->listings, *nx; l; l = nx) {
        nx = l->next;
        listing_free(l);
    }
    for (struct mm_listing *l = r->zombies, *nx; l; l = nx) {
        nx = l->next;
        listing_free(l);
    }
    for (struct watch *w = r->watches, *nx; w; w = nx) {
        nx = w->next;
        mm__free(w);
    }
    for (struct lwait *w = r->waiters, *nx; w; w = nx) {
        nx = w->next;
        mm__free(w->label);
        mm__free(w);
    }
    pthread_mutex_destroy(&r->lock);
    mm__free(r);
}

static size_t
bucket_of(const struct mm_recep *r, const char *label)
{
    return mm__hash_bytes(label, strlen(label)) & (r->nbuckets - 1);
}

static struct entry *
find(struct mm_recep *r, const char *label)
{
    for (struct entry *e = r->buckets[bucket_of(r, label)]; e; e = e->next)
        if (strcmp(e->label, label) == 0) return e;
    return NULL;
}

static void
grow(struct mm_recep *r)
{
    size_t nb = r->nbuckets * 2;
    struct entry **b = mm__calloc(nb, sizeof(*b));
    if (!b) return; /* keep the longer chains */
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct entry *e = r->buckets[i];
        while (e) {
            struct entry *next = e->next;
            size_t k = mm__hash_bytes(e->label, strlen(e->label)) & (nb - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    mm__free(r->buckets);
    r->buckets = b;
    r->nbuckets = nb;
}

static int
has_key(const struct entry *e, const char *key)
{
    for (size_t i = 0; i < e->nkeys; i++)
        if (strcmp(e->keys[i], key) == 0) return 1;
    return 0;
}

static int
matches(const struct mm_listing *l, const struct entry *e)
{
    if (l->shared && e->vis == MM_VIS_PRIVATE) return 0; /* stays home */
    if (l->key && !has_key(e, l->key)) return 0;
    if (l->prefix && strncmp(e->label, l->prefix, strlen(l->prefix)) != 0)
        return 0;
    return 1;
}

static int
label_valid(const char *label)
{
    size_t n = label ? strlen(label) : 0;
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f) return 0;
    return 1;
}

/* ---- listing delivery
 * ------------------------------------------------------------- */

static void listing_deliver(void *arg);

/* Under r->lock. */
static void
listing_schedule(struct mm_listing *l)
{
    if (l->scheduled || l->closed || l->held) return;
    mm_msg *m = mm__msg_alloc();
    if (!m) return;
    m->kind = MSG_FN;
    m->fn = listing_deliver;
    m->fn_arg = l;
    l->scheduled = 1;
    if (mm__shard_post(l->home, m) != 0) {
        l->scheduled = 0;
        mm_msg_free(m);
    }
}

/* Under r->lock: queue one event, or overflow into a resync. */
static void
listing_push(struct mm_listing *l, int kind, const struct entry *e, int reason)
{
    if (l->closed) return;
    if (!l->backfill) {
        if (l->qlen >= l->limit) {
            for (size_t i = 0; i < l->qlen; i++)
                mm__free(l->q[i].label);
            l->qlen = 0;
            l->backfill = l->resync = 1;
        } else {
            if (l->qlen == l->qcap) {
                size_t cap = l->qcap ? l->qcap * 2 : 16;
                struct lev *q = mm__realloc(l->q, cap * sizeof(*q));
                if (!q) {
                    l->backfill = l->resync = 1; /* never lose silently */
                    goto sched;
                }
                l->q = q;
                l->qcap = cap;
            }
            struct lev *v = &l->q[l->qlen];
            v->label = mm__strdup(e->label);
            if (!v->label) {
                l->backfill = l->resync = 1;
                goto sched;
            }
            v->kind = kind;
            v->ep = e->ep;
            v->reason = reason;
            l->qlen++;
        }
    }
sched:
    listing_schedule(l);
}

static void
notify_listings(struct mm_recep *r, int kind, const struct entry *e, int reason)
{
    for (struct mm_listing *l = r->listings; l; l = l->next)
        if (matches(l, e)) listing_push(l, kind, e, reason);
}

static int
lev_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lev *)a)->label,
                  ((const struct lev *)b)->label);
}

/* Under r->lock: a queued marker event (RESYNC, SYNCED) at |q[i]|. */
static void
lev_marker(struct lev *v, int kind)
{
    memset(v, 0, sizeof(*v));
    v->kind = kind;
}

/* Under r->lock: the events of a backfill, RESYNC first when |resync|,
 * SYNCED last, in |*out|; its length, or 0 when out of memory. */
static size_t
listing_backfill(struct mm_recep *r, struct mm_listing *l, int resync,
                 struct lev **out)
{
    struct lev *q = NULL;
    size_t qlen = 0, cap = 0;
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct entry *e = r->buckets[b]; e; e = e->next) {
            if (!matches(l, e)) continue;
            if (qlen + 2 >= cap) {
                cap = cap ? cap * 2 : 16;
                struct lev *nq = mm__realloc(q, cap * sizeof(*nq));
                MM_ASSERT(nq != NULL);
                q = nq;
            }
            q[qlen].kind = MM_LISTING_ADDED;
            q[qlen].label = mm__strdup(e->label);
            MM_ASSERT(q[qlen].label != NULL);
            q[qlen].ep = e->ep;
            q[qlen].reason = 0;
            qlen++;
        }
    }
    if (qlen > 1) qsort(q, qlen, sizeof(*q), lev_cmp);
    if (qlen + 2 > cap) {
        struct lev *nq = mm__realloc(q, (qlen + 2) * sizeof(*nq));
        MM_ASSERT(nq != NULL);
        q = nq;
    }
    if (resync) {
        memmove(q + 1, q, qlen * sizeof(*q));
        lev_marker(&q[0], MM_LISTING_RESYNC);
        qlen++;
    }
    lev_marker(&q[qlen++], MM_LISTING_SYNCED);
    *out = q;
    return qlen;
}

/* Under r->lock: |rest| (not yet taken, the subscriber held the listing)
 * goes back in front of what was queued meanwhile. */
static void
listing_put_back(struct mm_listing *l, struct lev *rest, size_t n)
{
    if (n == 0) return;
    if (l->backfill) { /* overflowed meanwhile: a backfill replaces it */
        for (size_t i = 0; i < n; i++)
            mm__free(rest[i].label);
        return;
    }
    struct lev *q = mm__malloc((n + l->qlen) * sizeof(*q));
    if (!q) {
        for (size_t i = 0; i < n; i++)
            mm__free(rest[i].label);
        for (size_t i = 0; i < l->qlen; i++)
            mm__free(l->q[i].label);
        l->qlen = 0;
        l->backfill = l->resync = 1; /* never lose silently */
        return;
    }
    memcpy(q, rest, n * sizeof(*q));
    if (l->qlen) memcpy(q + n, l->q, l->qlen * sizeof(*q));
    mm__free(l->q);
    l->q = q;
    l->qlen += n;
    l->qcap = l->qlen;
}

static void
listing_deliver(void *arg)
{
    struct mm_listing *l = arg;
    struct mm_recep *r = l->r;
    pthread_mutex_lock(&r->lock);
    if (l->closed) {
        /* Closed while the delivery was posted: free it now. */
        struct mm_listing **pp = &r->zombies;
        while (*pp && *pp != l)
            pp = &(*pp)->next;
        if (*pp) *pp = l->next;
        pthread_mutex_unlock(&r->lock);
        listing_free(l);
        return;
    }
    l->scheduled = 0;
    if (l->held) { /* mm__listing_release schedules the rest */
        pthread_mutex_unlock(&r->lock);
        return;
    }
    struct lev *q = l->q;
    size_t qlen = l->qlen;
    int backfill = l->backfill, resync = l->resync;
    l->q = NULL;
    l->qlen = l->qcap = 0;
    l->backfill = l->resync = 0;
    if (backfill) {
        /* The backfill replaces whatever was queued. */
        for (size_t i = 0; i < qlen; i++)
            mm__free(q[i].label);
        mm__free(q);
        qlen = listing_backfill(r, l, resync, &q);
    }
    l->busy = 1;
    pthread_mutex_unlock(&r->lock);

    size_t i = 0;
    for (; i < qlen && !l->closed; i++) {
        mm_listing_event ev = {q[i].kind, q[i].label, q[i].ep, q[i].reason};
        l->cb(l->data, &ev);
        if (l->held) break; /* q[i] was not taken */
    }
    pthread_mutex_lock(&r->lock);
    l->busy = 0;
    if (l->closed) {
        /* A delivery posted meanwhile frees it (as a zombie). */
        int posted = l->scheduled;
        if (posted) {
            l->next = r->zombies;
            r->zombies = l;
        }
        pthread_mutex_unlock(&r->lock);
        for (size_t j = 0; j < qlen; j++)
            mm__free(q[j].label);
        mm__free(q);
        if (!posted) listing_free(l);
        return;
    }
    for (size_t j = 0; j < i && j < qlen; j++)
        mm__free(q[j].label);
    if (i < qlen) listing_put_back(l, q + i, qlen - i);
    mm__free(q);
    /* Events that arrived meanwhile were scheduled already (unless held). */
    pthread_mutex_unlock(&r->lock);
}

void
mm__listing_hold(mm_listing *l)
{
    struct mm_recep *r = l->r;
    pthread_mutex_lock(&r->lock);
    l->held = 1;
    pthread_mutex_unlock(&r->lock);
}

void
mm__listing_release(mm_listing *l)
{
    struct mm_recep *r = l->r;
    pthread_mutex_lock(&r->lock);
    if (l->held) {
        l->held = 0;
        if (l->qlen || l->backfill) listing_schedule(l);
    }
    pthread_mutex_unlock(&r->lock);
}

int
mm__listing_held(mm_listing *l)
{
    struct mm_recep *r = l->r;
    pthread_mutex_lock(&r->lock);
    int held = l->held;
    pthread_mutex_unlock(&r->lock);
    return held;
}

void
mm_listing_opts_init(mm_listing_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->shard = -1;
}

static int
listing_open(mm_listing **out, mm_node *n, const mm_listing_opts *o,
             mm_listing_cb cb, void *data, int shared)
{
    mm_listing_opts defaults;
    if (!o) {
        mm_listing_opts_init(&defaults);
        o = &defaults;
    }
    if (!cb) return MM_EINVAL;
    struct mm_recep *r = n->recep;
    struct mm_listing *l = mm__calloc(1, sizeof(*l));
    if (!l) return UV_ENOMEM;
    l->r = r;
    l->cb = cb;
    l->data = data;
    l->limit = o->queue_limit ? o->queue_limit : MM_LISTING_QUEUE_LIMIT;
    if ((o->key && !(l->key = mm__strdup(o->key))) ||
        (o->prefix && !(l->prefix = mm__strdup(o->prefix)))) {
        listing_free(l);
        return UV_ENOMEM;
    }
    if (o->shard >= 0 && o->shard < n->nshards)
        l->home = &n->shards[o->shard];
    else if (mm__cur_shard && mm__cur_shard->node == n)
        l->home = mm__cur_shard;
    else
        l->home = &n->shards[0];
    l->backfill = 1;
    l->shared = shared != 0;
    pthread_mutex_lock(&r->lock);
    l->next = r->listings;
    r->listings = l;
    listing_schedule(l);
    pthread_mutex_unlock(&r->lock);
    *out = l;
    return 0;
}

int
mm_listing_open(mm_listing **out, mm_node *n, const mm_listing_opts *o,
                mm_listing_cb cb, void *data)
{
    return listing_open(out, n, o, cb, data, 0);
}

int
mm__listing_open_shared(mm_listing **out, mm_node *n, const mm_listing_opts *o,
                        mm_listing_cb cb, void *data)
{
    return listing_open(out, n, o, cb, data, 1);
}

void
mm_listing_close(mm_listing *l)
{
    if (!l) return;
    struct mm_recep *r = l->r;
    pthread_mutex_lock(&r->lock);
    struct mm_listing **pp = &r->listings;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp) *pp = l->next;
    l->closed = 1;
    int later = l->busy || l->scheduled;
    if (l->scheduled && !l->busy) {
        l->next = r->zombies;
        r->zombies = l;
    }
    pthread_mutex_unlock(&r->lock);
    if (!later) listing_free(l);
}

/* ---- lookups
 * ------------------------------------------------------------------------ */

int
mm_lookup(mm_node *n, const char *label, mm_endpoint *out)
{
    struct mm_recep *r = n->recep;
    if (!label) return MM_EINVAL;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    if (e && out) *out = e->ep;
    pthread_mutex_unlock(&r->lock);
    return e ? 0 : MM_ENOTFOUND;
}

int
mm_lookup_typed(mm_node *n, const char *label, const char *type_name,
                mm_endpoint *out)
{
    struct mm_recep *r = n->recep;
    if (!label) return MM_EINVAL;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    int rc = !e ? MM_ENOTFOUND
             : type_name && strcmp(e->type ? e->type : "", type_name) != 0
                 ? MM_ETYPE_MISMATCH
                 : 0;
    if (rc == 0 && out) *out = e->ep;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void
lwait_fire(void *arg)
{
    struct lwait *w = arg;
    mm__tmr_stop(w->home, &w->tmr);
    w->cb(w->data, 0, &w->ep);
    mm__free(w->label);
    mm__free(w);
}

static void
lwait_timeout(struct mm_tmr *t)
{
    struct lwait *w = mm__container_of(t, struct lwait, tmr);
    struct mm_recep *r = w->r;
    pthread_mutex_lock(&r->lock);
    int mine = w->in_list;
    if (mine) {
        struct lwait **pp = &r->waiters;
        while (*pp && *pp != w)
            pp = &(*pp)->next;
        if (*pp) *pp = w->next;
        w->in_list = 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (!mine) return; /* a fire is already posted */
    w->cb(w->data, MM_ETIMEOUT, NULL);
    mm__free(w->label);
    mm__free(w);
}

static void
lwait_arm(void *arg)
{
    struct lwait *w = arg;
    mm__tmr_start(w->home, &w->tmr, w->deadline);
}

static void
post_fn(struct mm_shard *s, void (*fn)(void *), void *arg)
{
    mm_msg *m = mm__msg_alloc();
    MM_ASSERT(m != NULL);
    m->kind = MSG_FN;
    m->fn = fn;
    m->fn_arg = arg;
    if (mm__shard_post(s, m) != 0)
        mm_msg_free(m); /* shutting down: |arg| is freed with the registry */
}

int
mm_lookup_wait(mm_node *n, const char *label, uint32_t timeout_ms,
               mm_lookup_cb cb, void *data)
{
    struct mm_recep *r = n->recep;
    if (!label || !cb) return MM_EINVAL;
    struct lwait *w = mm__calloc(1, sizeof(*w));
    if (!w || !(w->label = mm__strdup(label))) {
        mm__free(w);
        return UV_ENOMEM;
    }
    w->r = r;
    w->cb = cb;
    w->data = data;
    w->home = mm__cur_shard && mm__cur_shard->node == n ? mm__cur_shard
                                                        : &n->shards[0];
    w->tmr.fn = lwait_timeout;
    w->deadline = mm__now_ms() + timeout_ms;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    if (e) {
        w->ep = e->ep;
        pthread_mutex_unlock(&r->lock);
        post_fn(w->home, lwait_fire, w);
        return 0;
    }
    if (w->home == mm__cur_shard)
        lwait_arm(w);
    else
        post_fn(w->home, lwait_arm, w); /* before any fire: inbox is FIFO */
    w->in_list = 1;
    w->next = r->waiters;
    r->waiters = w;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int
mm__lookup_wait_cancel(mm_node *n, mm_lookup_cb cb, void *data)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    struct lwait **pp = &r->waiters, *w = NULL;
    while (*pp) {
        if ((*pp)->cb == cb && (*pp)->data == data &&
            (*pp)->home == mm__cur_shard) {
            w = *pp;
            *pp = w->next;
            w->in_list = 0;
            break;
        }
        pp = &(*pp)->next;
    }
    pthread_mutex_unlock(&r->lock);
    if (!w) return MM_ENOTFOUND;
    mm__tmr_stop(w->home, &w->tmr);
    mm__free(w->label);
    mm__free(w);
    return 0;
}

/* ---- registration
 * ---------------------------------------------------------------------- */

/* Under r->lock: fires the lookup waiters of |label|. */
static void
waiters_fire_locked(struct mm_recep *r, const char *label,
                    const mm_endpoint *ep)
{
    struct lwait **pp = &r->waiters;
    while (*pp) {
        struct lwait *w = *pp;
        if (strcmp(w->label, label) == 0) {
            *pp = w->next;
            w->in_list = 0;
            w->ep = *ep;
            post_fn(w->home, lwait_fire, w);
        } else {
            pp = &w->next;
        }
    }
}

/* Under r->lock: adds a table entry (a view winner or a private one). */
static struct entry *
table_add(struct mm_recep *r, const char *label, const char *type,
          const mm_endpoint *ep, int vis, uint64_t hlc, const char *const *keys,
          size_t nkeys)
{
    struct entry *e = mm__calloc(1, sizeof(*e));
    if (!e || !(e->label = mm__strdup(label)) ||
        !(e->type = mm__strdup(type ? type : "")) ||
        (nkeys && !(e->keys = mm__calloc(nkeys, sizeof(char *))))) {
        if (e) entry_free(e);
        return NULL;
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (!(e->keys[i] = mm__strdup(keys[i]))) {
            entry_free(e);
            return NULL;
        }
        e->nkeys++;
    }
    e->ep = *ep;
    e->vis = vis;
    e->hlc = hlc;
    if (r->count + 1 > r->nbuckets) grow(r);
    size_t b = bucket_of(r, label);
    e->next = r->buckets[b];
    r->buckets[b] = e;
    r->count++;
    notify_listings(r, MM_LISTING_ADDED, e, 0);
    waiters_fire_locked(r, label, ep);
    return e;
}

static const char *
local_type_name(mm_node *n, const mm_endpoint *ep)
{
    int si = mm__actor_id_shard(ep->actor);
    if (si >= n->nshards) return "";
    struct mm_slot *slot =
        mm__slot_get(&n->shards[si], mm__actor_id_slot(ep->actor));
    if (!slot || atomic_load(&slot->id) != ep->actor) return "";
    struct mm_actor *a = atomic_load(&slot->actor);
    return a ? a->ti->type->name : "";
}

int
mm_register(mm_node *n, const char *label, const mm_endpoint *ep,
            int visibility)
{
    return mm__recep_register(n, label, ep, visibility, NULL, 0);
}

/* A registration with its reception keys: one register op that carries
 * them, not a register and a check_in per key (docs/design.md, Reception keys,
 * listings and watches). */
int
mm__recep_register(mm_node *n, const char *label, const mm_endpoint *ep,
                   int visibility, const char *const *keys, size_t nkeys)
{
    struct mm_recep *r = n->recep;
    if (!label_valid(label) || !ep || visibility < MM_VIS_INTERNAL ||
        visibility > MM_VIS_PRIVATE || !mm__node_is_local(n, ep))
        return MM_EINVAL;
    for (size_t i = 0; i < nkeys; i++)
        if (!keys[i] || !*keys[i]) return MM_EINVAL;
    const char *type = local_type_name(n, ep);
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    if (visibility == MM_VIS_PRIVATE) {
        /* Private: never enters the oplog, never leaves the node. */
        if (e) {
            rc = MM_EEXISTS;
        } else {
            e = table_add(r, label, type, ep, visibility, 0, keys, nkeys);
            if (e)
                e->priv = 1;
            else
                rc = UV_ENOMEM;
        }
    } else if (e && e->priv) {
        rc = MM_EEXISTS;
    } else {
        uint64_t hlc = mm__hlc_now(&r->hlc, mm__wall_ms());
        rc = mm__oplog_register(r->oplog, label, type, visibility, ep->actor,
                                keys, nkeys, hlc, NULL);
    }
    pthread_mutex_unlock(&r->lock);
    if (rc) return rc;
    mm_event ev = {MM_EV_REGISTERED, label, *ep, 0, 0};
    mm__node_emit(n, &ev);
    return 0;
}

/* Under r->lock: unlinks |label| if it names |ep| (or any when NULL). */
static struct entry *
unlink_entry(struct mm_recep *r, const char *label, const mm_endpoint *ep)
{
    struct entry **pp = &r->buckets[bucket_of(r, label)];
    while (*pp) {
        struct entry *e = *pp;
        if (strcmp(e->label, label) == 0) {
            if (ep && !mm_endpoint_equal(&e->ep, ep)) return NULL;
            *pp = e->next;
            r->count--;
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

struct own_claim {
    const uint8_t *self;
    uint64_t gen;
    uint64_t actor;
    int found;
};

static int
own_claim_cb(void *data, const struct mm__oplog_entry *e, int winner)
{
    struct own_claim *o = data;
    (void)winner;
    if (memcmp(e->origin, o->self, MM_NODE_ID_LEN) == 0 &&
        e->generation == o->gen) {
        o->actor = e->actor;
        o->found = 1;
        return 1;
    }
    return 0;
}

static int
deregister(mm_node *n, const char *label, const mm_endpoint *ep, int reason)
{
    struct mm_recep *r = n->recep;
    int rc = 0;
    mm_endpoint gone = {{0}, 0, 0};
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    if (e && e->priv) {
        if (ep && !mm_endpoint_equal(&e->ep, ep)) {
            rc = MM_ENOTFOUND;
        } else {
            unlink_entry(r, label, NULL);
            notify_listings(r, MM_LISTING_REMOVED, e, reason);
            gone = e->ep;
            entry_free(e);
        }
    } else {
        struct own_claim o = {n->id, n->generation, 0, 0};
        mm__oplog_claimants(r->oplog, label, own_claim_cb, &o);
        if (!o.found || (ep && o.actor != ep->actor)) {
            rc = MM_ENOTFOUND;
        } else {
            memcpy(gone.node, n->id, MM_NODE_ID_LEN);
            gone.generation = n->generation;
            gone.actor = o.actor;
            rc = mm__oplog_remove(r->oplog, label,
                                  reason < 64 ? reason : MM_REASON_STOPPED,
                                  NULL);
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (rc) return rc;
    mm_event ev = {MM_EV_DEREGISTERED, label, gone, reason, 0};
    mm__node_emit(n, &ev);
    return 0;
}

int
mm_deregister(mm_node *n, const char *label)
{
    if (!label) return MM_EINVAL;
    return deregister(n, label, NULL, MM_REASON_NORMAL);
}

/* Under r->lock: adds |key| to a table entry and tells key listings. */
static int
entry_add_key(struct mm_recep *r, struct entry *e, const char *key)
{
    if (has_key(e, key)) return 0;
    char *k = mm__strdup(key);
    char **v = k ? mm__realloc(e->keys, (e->nkeys + 1) * sizeof(*v)) : NULL;
    if (!v) {
        mm__free(k);
        return UV_ENOMEM;
    }
    e->keys = v;
    e->keys[e->nkeys++] = k;
    for (struct mm_listing *l = r->listings; l; l = l->next)
        if (l->key && strcmp(l->key, key) == 0 && matches(l, e))
            listing_push(l, MM_LISTING_ADDED, e, 0);
    return 0;
}

int
mm_check_in(mm_node *n, const char *label, const char *key)
{
    struct mm_recep *r = n->recep;
    if (!label || !key || !*key) return MM_EINVAL;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    int rc;
    if (e && e->priv) {
        rc = entry_add_key(r, e, key);
    } else {
        rc = mm__oplog_check_in(r->oplog, label, key, NULL);
        if (rc == MM_EEXISTS) rc = 0; /* already checked in */
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* ---- watches
 * -------------------------------------------------------------------------- */

static void
watch_fire(void *arg)
{
    struct watch *w = arg;
    w->cb(w->data, &w->ep, w->reason);
    mm__free(w);
}

static int
local_alive(mm_node *n, const mm_endpoint *ep)
{
    if (!mm__node_is_local(n, ep)) return 0;
    int si = mm__actor_id_shard(ep->actor);
    if (si >= n->nshards) return 0;
    struct mm_slot *slot =
        mm__slot_get(&n->shards[si], mm__actor_id_slot(ep->actor));
    return slot && atomic_load(&slot->id) == ep->actor;
}

static int
ep_in_view(struct mm_recep *r, const mm_endpoint *ep)
{
    for (size_t b = 0; b < r->nbuckets; b++)
        for (struct entry *e = r->buckets[b]; e; e = e->next)
            if (mm_endpoint_equal(&e->ep, ep)) return 1;
    return 0;
}

/* Under r->lock: fires (posts) the watches of |ep|. */
static void
watches_fire_locked(struct mm_recep *r, const mm_endpoint *ep, int reason)
{
    struct watch **pp = &r->watches;
    while (*pp) {
        struct watch *w = *pp;
        if (mm_endpoint_equal(&w->ep, ep)) {
            *pp = w->next;
            w->reason = reason;
            post_fn(w->home, watch_fire, w);
        } else {
            pp = &w->next;
        }
    }
}

int
mm_watch(mm_node *n, const char *label, const mm_endpoint *ep, mm_watch_cb cb,
         void *data)
{
    struct mm_recep *r = n->recep;
    if (!cb || (!label && !ep)) return MM_EINVAL;
    struct watch *w = mm__calloc(1, sizeof(*w));
    if (!w) return UV_ENOMEM;
    w->cb = cb;
    w->data = data;
    w->home = mm__cur_shard && mm__cur_shard->node == n ? mm__cur_shard
                                                        : &n->shards[0];
    pthread_mutex_lock(&r->lock);
    int found = 0;
    if (label) {
        struct entry *e = find(r, label);
        if (e) {
            w->ep = e->ep;
            found = 1;
        }
    } else {
        w->ep = *ep;
        found = 1;
    }
    /* Remote actors are watched through the registry view: the watch
     * fires when their entry leaves it (stopped, node failed or left). */
    if (found && (mm__node_is_local(n, &w->ep) ? local_alive(n, &w->ep)
                                               : ep_in_view(r, &w->ep))) {
        w->next = r->watches;
        r->watches = w;
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    pthread_mutex_unlock(&r->lock);
    w->reason = MM_REASON_NOT_FOUND;
    post_fn(w->home, watch_fire, w);
    return 0;
}

void
mm__recep_actor_gone(mm_node *n, const mm_endpoint *ep, const char *label,
                     int reason)
{
    struct mm_recep *r = n->recep;
    if (label) deregister(n, label, ep, reason);
    pthread_mutex_lock(&r->lock);
    struct watch *fire = NULL, **pp = &r->watches;
    while (*pp) {
        struct watch *w = *pp;
        if (mm_endpoint_equal(&w->ep, ep)) {
            *pp = w->next;
            w->reason = reason;
            w->next = fire;
            fire = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&r->lock);
    while (fire) {
        struct watch *next = fire->next;
        post_fn(fire->home, watch_fire, fire);
        fire = next;
    }
}

/* ---- the replicated registry (oplog)
 * ------------------------------------------------ */

/* Under r->lock (called from inside oplog mutations). */
static void
recep_oplog_event(void *data, const struct mm__oplog_event *ev)
{
    struct mm_recep *r = data;
    const struct mm__oplog_entry *oe = ev->entry;
    mm_endpoint ep;
    memcpy(ep.node, oe->origin, MM_NODE_ID_LEN);
    ep.generation = oe->generation;
    ep.actor = oe->actor;
    struct entry *e = find(r, oe->label);
    switch (ev->kind) {
    case MM_OPLOG_ADDED:
        if (e && e->priv)
            return; /* a private local registration hides it here */
        if (e) {    /* cannot happen: the oplog removes before it adds */
            unlink_entry(r, oe->label, NULL);
            notify_listings(r, MM_LISTING_REMOVED, e, MM_REASON_STOPPED);
            entry_free(e);
        }
        table_add(r, oe->label, oe->type, &ep, oe->visibility, oe->hlc,
                  (const char *const *)oe->keys, oe->nkeys);
        return;
    case MM_OPLOG_REMOVED: {
        if (!e || e->priv || !mm_endpoint_equal(&e->ep, &ep)) return;
        int reason = ev->reason < 64 ? ev->reason : MM_REASON_NODE_DOWN;
        if (ev->reason == MM_OPLOG_REASON_SHADOWED) reason = MM_REASON_STOPPED;
        unlink_entry(r, oe->label, NULL);
        notify_listings(r, MM_LISTING_REMOVED, e, reason);
        /* A remote actor left the view: its watches fire (local actors'
         * fire when they stop; being shadowed is not stopping). */
        if (!mm__node_is_local(r->node, &ep) &&
            ev->reason != MM_OPLOG_REASON_SHADOWED)
            watches_fire_locked(r, &ep, reason);
        entry_free(e);
        return;
    }
    case MM_OPLOG_KEY_ADDED:
        if (e && !e->priv && mm_endpoint_equal(&e->ep, &ep) && ev->key)
            entry_add_key(r, e, ev->key);
        return;
    default:
        return;
    }
}

static void recep_flush(void *arg);

/* Under r->lock: a record was newly applied; queue it for dissemination. */
static void
recep_oplog_applied(void *data, const uint8_t *rec, size_t len, int local)
{
    struct mm_recep *r = data;
    if (!local) {
        struct mm__oplog_op op;
        if (mm__oplog_op_decode(&op, rec, len) == 0 &&
            op.kind == MM_OPLOG_REGISTER)
            mm__hlc_update(&r->hlc, op.hlc, mm__wall_ms());
    }
    if (!r->followers) return;
    if (mm__oplog_batch_add(&r->outbox, rec, len) != 0)
        return; /* out of memory: anti-entropy repairs it */
    if (!r->flush_posted) {
        r->flush_posted = 1;
        post_fn(&r->node->shards[0], recep_flush, r);
    }
}

/* Shard 0: hands what was applied since the last flush (one batch a turn)
 * to the followers: the registry's replication takes the batch, `oplog
 * --follow` subscribers take its records one by one. */
static void
recep_flush(void *arg)
{
    struct mm_recep *r = arg;
    struct mm__oplog_batch b;
    pthread_mutex_lock(&r->lock);
    b = r->outbox;
    mm__oplog_batch_init(&r->outbox);
    r->flush_posted = 0;
    pthread_mutex_unlock(&r->lock);
    if (b.count && mm__oplog_batch_finish(&b) == 0) {
        for (struct follower *f = r->followers; f; f = f->next)
            if (f->batch) f->cb(f->data, b.buf, b.len);
        struct mm__oplog_batch_iter it;
        const uint8_t *rec;
        size_t rl;
        if (mm__oplog_batch_iter_init(&it, b.buf, b.len) == 0) {
            while (mm__oplog_batch_iter_next(&it, &rec, &rl) == 1)
                for (struct follower *f = r->followers; f; f = f->next)
                    if (!f->batch) f->cb(f->data, rec, rl);
        }
    }
    mm__oplog_batch_release(&b);
}

/* ---- registry.h: queries
 * ----------------------------------------------------------- */

static void
reg_entry_of(struct mm_registry_entry *out, const struct mm__oplog_entry *oe,
             int winner)
{
    out->label = oe->label;
    out->type = oe->type ? oe->type : "";
    memcpy(out->ep.node, oe->origin, MM_NODE_ID_LEN);
    out->ep.generation = oe->generation;
    out->ep.actor = oe->actor;
    out->visibility = oe->visibility;
    out->keys = (const char *const *)oe->keys;
    out->nkeys = oe->nkeys;
    out->winner = winner;
    out->hlc = oe->hlc;
}

struct claim_adapter {
    mm_registry_entry_cb cb;
    void *data;
};

static int
claim_adapter_cb(void *data, const struct mm__oplog_entry *oe, int winner)
{
    struct claim_adapter *a = data;
    struct mm_registry_entry re;
    reg_entry_of(&re, oe, winner);
    return a->cb(a->data, &re);
}

static void
reg_entry_of_table(struct mm_registry_entry *out, const struct entry *e)
{
    out->label = e->label;
    out->type = e->type ? e->type : "";
    out->ep = e->ep;
    out->visibility = e->vis;
    out->keys = (const char *const *)e->keys;
    out->nkeys = e->nkeys;
    out->winner = 1;
    out->hlc = e->hlc;
}

size_t
mm__registry_claimants(mm_node *n, const char *label, mm_registry_entry_cb cb,
                       void *data)
{
    struct mm_recep *r = n->recep;
    size_t count;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    if (e && e->priv) {
        struct mm_registry_entry re;
        reg_entry_of_table(&re, e);
        cb(data, &re);
        count = 1;
    } else {
        struct claim_adapter a = {cb, data};
        count = mm__oplog_claimants(r->oplog, label, claim_adapter_cb, &a);
    }
    pthread_mutex_unlock(&r->lock);
    return count;
}

static int
entry_ptr_cmp(const void *a, const void *b)
{
    const struct entry *const *x = a, *const *y = b;
    return strcmp((*x)->label, (*y)->label);
}

size_t
mm__registry_foreach(mm_node *n, const char *prefix, const char *key,
                     mm_registry_entry_cb cb, void *data)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    struct entry **v = mm__malloc((r->count ? r->count : 1) * sizeof(*v));
    size_t nv = 0;
    if (v) {
        for (size_t b = 0; b < r->nbuckets; b++) {
            for (struct entry *e = r->buckets[b]; e; e = e->next) {
                if (key && !has_key(e, key)) continue;
                if (prefix && strncmp(e->label, prefix, strlen(prefix)) != 0)
                    continue;
                v[nv++] = e;
            }
        }
        qsort(v, nv, sizeof(*v), entry_ptr_cmp);
        for (size_t i = 0; i < nv; i++) {
            struct mm_registry_entry re;
            reg_entry_of_table(&re, v[i]);
            if (cb(data, &re)) {
                nv = i + 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&r->lock);
    mm__free(v);
    return nv;
}

int
mm__registry_page(mm_node *n, const char *prefix, const char *key,
                  struct mm_registry_cursor *cur, size_t max_entries,
                  size_t max_bytes, size_t max_work, mm_registry_entry_cb cb,
                  void *data)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    size_t nb = r->nbuckets;
    if (cur->nbuckets == 0) { /* the start */
        cur->nbuckets = nb;
        cur->next = 0;
    }
    /* The table only grows, doubling: bucket b of a table of nbuckets
     * holds the entries of the buckets b, b + nbuckets, ... of a bigger
     * one.  Walking whole groups keeps a page boundary valid across a
     * growth: nothing is missed, nothing given twice. */
    size_t base = (size_t)cur->nbuckets;
    if (base > nb || (base & (base - 1)) != 0 || nb % base != 0 ||
        cur->next > base) {
        pthread_mutex_unlock(&r->lock);
        return MM_EINVAL;
    }
    size_t given = 0, bytes = 0, work = 0, g = (size_t)cur->next;
    size_t plen = prefix ? strlen(prefix) : 0;
    for (; g < base; g++) {
        if (given >= max_entries || bytes >= max_bytes || work >= max_work)
            break;
        for (size_t b = g; b < nb; b += base) {
            work++;
            for (struct entry *e = r->buckets[b]; e; e = e->next) {
                work++;
                if (key && !has_key(e, key)) continue;
                if (prefix && strncmp(e->label, prefix, plen) != 0) continue;
                struct mm_registry_entry re;
                reg_entry_of_table(&re, e);
                bytes += strlen(e->label) + strlen(e->type) + 128;
                for (size_t k = 0; k < e->nkeys; k++)
                    bytes += strlen(e->keys[k]) + 4;
                given++;
                cb(data, &re);
            }
        }
    }
    cur->next = g;
    pthread_mutex_unlock(&r->lock);
    return g >= base; /* 1: the walk is over */
}

struct origin_adapter {
    mm_registry_origin_cb cb;
    void *data;
};

static int
origin_adapter_cb(void *data, const struct mm__oplog_origin_info *oi)
{
    struct origin_adapter *a = data;
    struct mm_registry_origin o;
    memcpy(o.id, oi->id, MM_NODE_ID_LEN);
    o.generation = oi->generation;
    o.seq = oi->seq;
    o.snap_seq = oi->snap_seq;
    o.state = oi->state;
    o.nentries = oi->nentries;
    return a->cb(a->data, &o);
}

void
mm__registry_origins(mm_node *n, mm_registry_origin_cb cb, void *data)
{
    struct mm_recep *r = n->recep;
    struct origin_adapter a = {cb, data};
    pthread_mutex_lock(&r->lock);
    mm__oplog_origins(r->oplog, origin_adapter_cb, &a);
    pthread_mutex_unlock(&r->lock);
}

int
mm__registry_ops(mm_node *n, const uint8_t origin[MM_NODE_ID_LEN],
                 uint64_t from,
                 int (*cb)(void *data, const uint8_t *rec, size_t len),
                 void *data)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    int rc = mm__oplog_ops_from(r->oplog, origin, from, cb, data);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static int
follow(mm_node *n, int batch,
       void (*cb)(void *data, const uint8_t *rec, size_t len), void *data)
{
    struct mm_recep *r = n->recep;
    struct follower *f = mm__calloc(1, sizeof(*f));
    if (!f) return UV_ENOMEM;
    f->batch = batch;
    f->cb = cb;
    f->data = data;
    pthread_mutex_lock(&r->lock);
    f->handle = ++r->next_follow;
    f->next = r->followers;
    r->followers = f;
    pthread_mutex_unlock(&r->lock);
    return f->handle;
}

int
mm__registry_follow(mm_node *n,
                    void (*cb)(void *data, const uint8_t *rec, size_t len),
                    void *data)
{
    return follow(n, 0, cb, data);
}

int
mm__recep_follow_batches(mm_node *n,
                         void (*cb)(void *data, const uint8_t *batch,
                                    size_t len),
                         void *data)
{
    return follow(n, 1, cb, data);
}

void
mm__registry_unfollow(mm_node *n, int handle)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    struct follower **pp = &r->followers;
    while (*pp) {
        if ((*pp)->handle == handle) {
            struct follower *f = *pp;
            *pp = f->next;
            mm__free(f);
            break;
        }
        pp = &(*pp)->next;
    }
    pthread_mutex_unlock(&r->lock);
}

uint64_t
mm__registry_hash(mm_node *n)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    uint64_t h = mm__oplog_registry_hash(r->oplog);
    pthread_mutex_unlock(&r->lock);
    return h;
}

/* ---- registry.h: glue for registry.c
 * ---------------------------------------------- */

int
mm__recep_apply(mm_node *n, const uint8_t *batch, size_t len, size_t *applied)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    int rc = mm__oplog_apply_batch(r->oplog, batch, len, applied);
    /* Stamps too far ahead were applied but not merged into the clock:
     * told once, then at every power of two (not under the lock). */
    uint64_t ahead = r->hlc.ahead, told = r->hlc_ahead_told;
    int tell = ahead != told && (told == 0 || (ahead & (ahead - 1)) == 0);
    if (tell) r->hlc_ahead_told = ahead;
    pthread_mutex_unlock(&r->lock);
    if (tell)
        MM_LOG(MM_LOG_WARN, "registry",
               "%" PRIu64 " registration stamp(s) more than %u ms ahead of "
               "this node's clock were not merged into it (clock skew?)",
               ahead, (unsigned)MM_HLC_MAX_DRIFT_MS);
    return rc;
}

int
mm__recep_apply_some(mm_node *n, struct mm__oplog_batch_iter *it, size_t max,
                     size_t *done, size_t *applied)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    int rc = mm__oplog_apply_some(r->oplog, it, max, done, applied);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int
mm__recep_set_identity(mm_node *n, const struct mm_identity *id)
{
    struct mm_recep *r = n->recep;
    struct mm_sign_key *k = NULL;
    const uint8_t *pub = id->pub;
    int rc = id->has_seed ? mm__sign_key_from_seed(&k, id->seed)
                          : mm__sign_key_from_pem(&k, id->key_pem);
    if (rc) return rc;
    pthread_mutex_lock(&r->lock);
    mm__oplog_set_signer(r->oplog, k, pub);
    mm__sign_key_free(r->sign_key);
    r->sign_key = k;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int
mm__recep_seal(mm_node *n, struct mm__oplog_batch *b)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    int rc = mm__oplog_batch_seal(r->oplog, b);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int
mm__recep_verify(mm_node *n, const uint8_t *batch, size_t len, size_t *nsigs)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    int rc = mm__oplog_batch_verify(r->oplog, batch, len, nsigs);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int
mm__recep_verify_begin(mm_node *n, struct mm__oplog_verify *v,
                       const uint8_t *batch, size_t len)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    int rc = mm__oplog_verify_begin(v, r->oplog, batch, len);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static int
stop_cb(void *data, const uint8_t *rec, size_t len)
{
    (void)data;
    (void)rec;
    (void)len;
    return 1;
}

long
mm__recep_lacks(mm_node *n, const uint8_t *vec, size_t len)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    long count = mm__oplog_missing(r->oplog, vec, len, stop_cb, NULL);
    pthread_mutex_unlock(&r->lock);
    return count;
}

int
mm__recep_vector(mm_node *n, uint8_t **out, size_t *len)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    size_t need = mm__oplog_vector_size(r->oplog);
    uint8_t *buf = mm__malloc(need ? need : 1);
    long got = buf ? mm__oplog_vector_encode(r->oplog, buf, need) : -1;
    pthread_mutex_unlock(&r->lock);
    if (got < 0) {
        mm__free(buf);
        return UV_ENOMEM;
    }
    *out = buf;
    *len = (size_t)got;
    return 0;
}

uint64_t
mm__recep_digest(mm_node *n)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    uint64_t d = mm__oplog_digest(r->oplog);
    pthread_mutex_unlock(&r->lock);
    return d;
}

size_t
mm__recep_entries(mm_node *n)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    size_t e = mm__oplog_size(r->oplog);
    pthread_mutex_unlock(&r->lock);
    return e;
}

long
mm__recep_missing(mm_node *n, const uint8_t *vec, size_t len,
                  struct mm__oplog_batch *out)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    long count =
        mm__oplog_missing(r->oplog, vec, len, mm__oplog_batch_add_cb, out);
    pthread_mutex_unlock(&r->lock);
    return count;
}

long
mm__recep_missing_batch(mm_node *n, const uint8_t *vec, size_t len, size_t max,
                        struct mm__oplog_batch *out)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    long count = mm__oplog_missing_batch(r->oplog, vec, len, max, out);
    pthread_mutex_unlock(&r->lock);
    return count;
}

void
mm__recep_origin_state(mm_node *n, const uint8_t id[MM_NODE_ID_LEN],
                       uint64_t gen, int oplog_state)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    mm__oplog_set_origin_state(r->oplog, id, gen, oplog_state);
    pthread_mutex_unlock(&r->lock);
}
