/*
 * receptionist.c — labels, reception keys, lookups (immediate and waiting),
 * listings (backfill in label order, then live events through a bounded
 * queue that overflows into RESYNC), watches and registry events.
 *
 * One mutex guards the whole registry: registrations are rare next to
 * message traffic, and no callback ever runs under the lock.
 */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>

struct entry {
    struct entry *next; /* hash chain */
    char *label;
    mm_endpoint ep;
    int vis;
    char **keys;
    size_t nkeys;
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
};

/* ---- the table ------------------------------------------------------------------- */

int
mm__recep_new(struct mm_recep **out, mm_node *n)
{
    struct mm_recep *r = mm__calloc(1, sizeof(*r));
    if (!r)
        return UV_ENOMEM;
    r->node = n;
    r->nbuckets = 64;
    r->buckets = mm__calloc(r->nbuckets, sizeof(*r->buckets));
    if (!r->buckets) {
        mm__free(r);
        return UV_ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
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
        if (strcmp(e->label, label) == 0)
            return e;
    return NULL;
}

static void
grow(struct mm_recep *r)
{
    size_t nb = r->nbuckets * 2;
    struct entry **b = mm__calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
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
        if (strcmp(e->keys[i], key) == 0)
            return 1;
    return 0;
}

static int
matches(const struct mm_listing *l, const struct entry *e)
{
    if (l->key && !has_key(e, l->key))
        return 0;
    if (l->prefix && strncmp(e->label, l->prefix, strlen(l->prefix)) != 0)
        return 0;
    return 1;
}

static int
label_valid(const char *label)
{
    size_t n = label ? strlen(label) : 0;
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
            return 0;
    return 1;
}

/* ---- listing delivery ------------------------------------------------------------- */

static void listing_deliver(void *arg);

/* Under r->lock. */
static void
listing_schedule(struct mm_listing *l)
{
    if (l->scheduled || l->closed)
        return;
    mm_msg *m = mm__msg_alloc();
    if (!m)
        return;
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
listing_push(struct mm_listing *l, int kind, const struct entry *e,
             int reason)
{
    if (l->closed)
        return;
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
notify_listings(struct mm_recep *r, int kind, const struct entry *e,
                int reason)
{
    for (struct mm_listing *l = r->listings; l; l = l->next)
        if (matches(l, e))
            listing_push(l, kind, e, reason);
}

static int
lev_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lev *)a)->label,
                  ((const struct lev *)b)->label);
}

static void
listing_deliver(void *arg)
{
    struct mm_listing *l = arg;
    struct mm_recep *r = l->r;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        if (l->closed) {
            /* Closed while the delivery was posted: free it now. */
            struct mm_listing **pp = &r->zombies;
            while (*pp && *pp != l)
                pp = &(*pp)->next;
            if (*pp)
                *pp = l->next;
            pthread_mutex_unlock(&r->lock);
            listing_free(l);
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
            q = NULL;
            qlen = 0;
            size_t cap = 0;
            for (size_t b = 0; b < r->nbuckets; b++) {
                for (struct entry *e = r->buckets[b]; e; e = e->next) {
                    if (!matches(l, e))
                        continue;
                    if (qlen == cap) {
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
            if (qlen > 1)
                qsort(q, qlen, sizeof(*q), lev_cmp);
        }
        l->scheduled = 0;
        l->busy = 1;
        pthread_mutex_unlock(&r->lock);

        if (resync) {
            mm_listing_event ev = {MM_LISTING_RESYNC, NULL, {{0}, 0, 0}, 0};
            l->cb(l->data, &ev);
        }
        size_t i = 0;
        for (; i < qlen && !l->closed; i++) {
            mm_listing_event ev = {q[i].kind, q[i].label, q[i].ep,
                                   q[i].reason};
            l->cb(l->data, &ev);
        }
        if (backfill && !l->closed) {
            mm_listing_event ev = {MM_LISTING_SYNCED, NULL, {{0}, 0, 0}, 0};
            l->cb(l->data, &ev);
        }
        for (size_t j = 0; j < qlen; j++)
            mm__free(q[j].label);
        mm__free(q);

        pthread_mutex_lock(&r->lock);
        l->busy = 0;
        if (l->closed) {
            pthread_mutex_unlock(&r->lock);
            listing_free(l);
            return;
        }
        /* Events that arrived meanwhile were scheduled already. */
        pthread_mutex_unlock(&r->lock);
        return;
    }
}

void
mm_listing_opts_init(mm_listing_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->shard = -1;
}

int
mm_listing_open(mm_listing **out, mm_node *n, const mm_listing_opts *o,
                mm_listing_cb cb, void *data)
{
    mm_listing_opts defaults;
    if (!o) {
        mm_listing_opts_init(&defaults);
        o = &defaults;
    }
    if (!cb)
        return MM_EINVAL;
    struct mm_recep *r = n->recep;
    struct mm_listing *l = mm__calloc(1, sizeof(*l));
    if (!l)
        return UV_ENOMEM;
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
    pthread_mutex_lock(&r->lock);
    l->next = r->listings;
    r->listings = l;
    listing_schedule(l);
    pthread_mutex_unlock(&r->lock);
    *out = l;
    return 0;
}

void
mm_listing_close(mm_listing *l)
{
    if (!l)
        return;
    struct mm_recep *r = l->r;
    pthread_mutex_lock(&r->lock);
    struct mm_listing **pp = &r->listings;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp)
        *pp = l->next;
    l->closed = 1;
    int later = l->busy || l->scheduled;
    if (l->scheduled && !l->busy) {
        l->next = r->zombies;
        r->zombies = l;
    }
    pthread_mutex_unlock(&r->lock);
    if (!later)
        listing_free(l);
}

/* ---- lookups ------------------------------------------------------------------------ */

int
mm_lookup(mm_node *n, const char *label, mm_endpoint *out)
{
    struct mm_recep *r = n->recep;
    if (!label)
        return MM_EINVAL;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    if (e && out)
        *out = e->ep;
    pthread_mutex_unlock(&r->lock);
    return e ? 0 : MM_ENOTFOUND;
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
        if (*pp)
            *pp = w->next;
        w->in_list = 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (!mine)
        return; /* a fire is already posted */
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
    if (!label || !cb)
        return MM_EINVAL;
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

/* ---- registration ---------------------------------------------------------------------- */

int
mm_register(mm_node *n, const char *label, const mm_endpoint *ep,
            int visibility)
{
    struct mm_recep *r = n->recep;
    if (!label_valid(label) || !ep || visibility < MM_VIS_INTERNAL ||
        visibility > MM_VIS_PRIVATE)
        return MM_EINVAL;
    struct entry *e = mm__calloc(1, sizeof(*e));
    if (!e || !(e->label = mm__strdup(label))) {
        mm__free(e);
        return UV_ENOMEM;
    }
    e->ep = *ep;
    e->vis = visibility;
    pthread_mutex_lock(&r->lock);
    if (find(r, label)) {
        pthread_mutex_unlock(&r->lock);
        entry_free(e);
        return MM_EEXISTS;
    }
    if (r->count + 1 > r->nbuckets)
        grow(r);
    size_t b = bucket_of(r, label);
    e->next = r->buckets[b];
    r->buckets[b] = e;
    r->count++;
    notify_listings(r, MM_LISTING_ADDED, e, 0);
    struct lwait *fire = NULL, **pp = &r->waiters;
    while (*pp) {
        struct lwait *w = *pp;
        if (strcmp(w->label, label) == 0) {
            *pp = w->next;
            w->in_list = 0;
            w->ep = *ep;
            w->next = fire;
            fire = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&r->lock);
    while (fire) {
        struct lwait *next = fire->next;
        post_fn(fire->home, lwait_fire, fire);
        fire = next;
    }
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
            if (ep && !mm_endpoint_equal(&e->ep, ep))
                return NULL;
            *pp = e->next;
            r->count--;
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

static int
deregister(mm_node *n, const char *label, const mm_endpoint *ep, int reason)
{
    struct mm_recep *r = n->recep;
    pthread_mutex_lock(&r->lock);
    struct entry *e = unlink_entry(r, label, ep);
    if (e)
        notify_listings(r, MM_LISTING_REMOVED, e, reason);
    pthread_mutex_unlock(&r->lock);
    if (!e)
        return MM_ENOTFOUND;
    mm_event ev = {MM_EV_DEREGISTERED, label, e->ep, reason, 0};
    mm__node_emit(n, &ev);
    entry_free(e);
    return 0;
}

int
mm_deregister(mm_node *n, const char *label)
{
    if (!label)
        return MM_EINVAL;
    return deregister(n, label, NULL, MM_REASON_NORMAL);
}

int
mm_check_in(mm_node *n, const char *label, const char *key)
{
    struct mm_recep *r = n->recep;
    if (!label || !key || !*key)
        return MM_EINVAL;
    char *k = mm__strdup(key);
    if (!k)
        return UV_ENOMEM;
    pthread_mutex_lock(&r->lock);
    struct entry *e = find(r, label);
    int rc = 0;
    if (!e) {
        rc = MM_ENOTFOUND;
    } else if (!has_key(e, key)) {
        char **v = mm__realloc(e->keys, (e->nkeys + 1) * sizeof(*v));
        if (!v) {
            rc = UV_ENOMEM;
        } else {
            e->keys = v;
            e->keys[e->nkeys++] = k;
            k = NULL;
            /* Listings of this key see the actor arrive. */
            for (struct mm_listing *l = r->listings; l; l = l->next)
                if (l->key && strcmp(l->key, key) == 0 && matches(l, e))
                    listing_push(l, MM_LISTING_ADDED, e, 0);
        }
    }
    pthread_mutex_unlock(&r->lock);
    mm__free(k);
    return rc;
}

/* ---- watches -------------------------------------------------------------------------- */

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
    if (!mm__node_is_local(n, ep))
        return 0;
    int si = mm__actor_id_shard(ep->actor);
    if (si >= n->nshards)
        return 0;
    struct mm_slot *slot =
        mm__slot_get(&n->shards[si], mm__actor_id_slot(ep->actor));
    return slot && atomic_load(&slot->id) == ep->actor;
}

int
mm_watch(mm_node *n, const char *label, const mm_endpoint *ep,
         mm_watch_cb cb, void *data)
{
    struct mm_recep *r = n->recep;
    if (!cb || (!label && !ep))
        return MM_EINVAL;
    struct watch *w = mm__calloc(1, sizeof(*w));
    if (!w)
        return UV_ENOMEM;
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
    /* NEEDSWORK: remote actors are watched through the registry. */
    if (found && local_alive(n, &w->ep)) {
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
    if (label)
        deregister(n, label, ep, reason);
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

void
mm__recep_shutdown(mm_node *n)
{
    (void)n;
}

/* ---- endpoints --------------------------------------------------------------------------- */

int
mm_endpoint_equal(const mm_endpoint *a, const mm_endpoint *b)
{
    return a->actor == b->actor && a->generation == b->generation &&
           memcmp(a->node, b->node, MM_NODE_ID_LEN) == 0;
}

char *
mm_endpoint_format(const mm_endpoint *ep, char *buf, size_t len)
{
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, ep->node, MM_NODE_ID_LEN);
    snprintf(buf, len, "%s/%llu/%llu", hex,
             (unsigned long long)ep->generation,
             (unsigned long long)ep->actor);
    return buf;
}

int
mm_endpoint_parse(mm_endpoint *out, const char *s)
{
    if (!s || strlen(s) < 2 * MM_NODE_ID_LEN + 4 ||
        s[2 * MM_NODE_ID_LEN] != '/')
        return MM_EINVAL;
    mm_endpoint ep;
    if (mm__unhex(ep.node, MM_NODE_ID_LEN, s) != 0)
        return MM_EINVAL;
    const char *p = s + 2 * MM_NODE_ID_LEN + 1;
    char *end;
    errno = 0;
    unsigned long long g = strtoull(p, &end, 10);
    if (end == p || *end != '/' || errno)
        return MM_EINVAL;
    p = end + 1;
    unsigned long long a = strtoull(p, &end, 10);
    if (end == p || *end != '\0' || errno)
        return MM_EINVAL;
    ep.generation = g;
    ep.actor = a;
    *out = ep;
    return 0;
}
