/*
 * actor.c — spawning, the slot table, dispatch, the handler context and
 * replies, supervision glue (restart with backoff), stops and ready handles.
 */
#include "runtime.h"

#include <stdarg.h>
#include <stdio.h>

#include <cJSON.h>

struct mm_ctx {
    mm_node *node;
    struct mm_actor *actor;
    mm_msg *msg; /* NULL in start/stop hooks */
    mm_endpoint self;
    uint8_t replied;
    uint8_t deferred;
    uint8_t failed;
    char fail_text[200];
};

struct mm_defer {
    struct mm_shard *home;
    struct mm_call *call;
};

struct mm_ready {
    mm_node *node;
    mm_endpoint ep;
};

struct mm_waiter {
    struct mm_waiter *next;
    void (*cb)(void *);
    void *data;
    struct mm_shard *home;
};

static void actor_terminate(struct mm_actor *a, int reason);
static void actor_end(struct mm_actor *a, int crashed);

/* ---- helpers
 * ------------------------------------------------------------------ */

static void
ep_of(const struct mm_actor *a, mm_endpoint *ep)
{
    mm_node *n = a->shard->node;
    memcpy(ep->node, n->id, MM_NODE_ID_LEN);
    ep->generation = n->generation;
    ep->actor = a->id;
}

struct mm_actor *
mm__actor_lookup(struct mm_shard *s, uint64_t id)
{
    struct mm_slot *slot = mm__slot_get(s, mm__actor_id_slot(id));
    if (!slot || atomic_load_explicit(&slot->id, memory_order_acquire) != id)
        return NULL;
    return atomic_load_explicit(&slot->actor, memory_order_acquire);
}

void
mm__msg_reject(mm_node *n, mm_msg *m, int status)
{
    if (m->call) {
        struct mm_call *call = m->call;
        m->call = NULL;
        mm_msg *r = mm__msg_alloc();
        if (r) mm__call_reply(m->reply_home, call, status, r);
    }
    mm_msg_free(m);
}

static void
waiter_fire(void *arg)
{
    struct mm_waiter *w = arg;
    w->cb(w->data);
    mm__free(w);
}

static void
waiters_post(struct mm_waiter *w)
{
    while (w) {
        struct mm_waiter *next = w->next;
        mm_msg *m = mm__msg_alloc();
        if (m) {
            m->kind = MSG_FN;
            m->fn = waiter_fire;
            m->fn_arg = w;
            if (mm__shard_post(w->home, m) != 0) {
                mm_msg_free(m);
                mm__free(w);
            }
        } else {
            mm__free(w);
        }
        w = next;
    }
}

static void
waiters_wake(struct mm_shard *s, struct mm_actor *a)
{
    pthread_mutex_lock(&s->waiters_lock);
    struct mm_waiter *w = a->waiters;
    a->waiters = NULL;
    atomic_store(&a->has_waiters, 0);
    pthread_mutex_unlock(&s->waiters_lock);
    waiters_post(w);
}

/* Whether a mailbox that holds |q| has room again for a waiting sender
 * (mm_endpoint_when_writable): at most half full, in messages and bytes. */
static int
slot_writable(const struct mm_slot *slot, uint64_t q)
{
    return mm__mb_count(q) <= slot->capacity / 2 &&
           mm__mb_bytes(q) <= slot->bytes_cap / 2;
}

/* Gives |m|'s reservation back (it left the mailbox). */
static void
slot_dequeued(struct mm_actor *a, const mm_msg *m)
{
    uint64_t sub = MB_ONE_MSG + mm__msg_cost(m);
    uint64_t q =
        atomic_fetch_sub_explicit(&a->slot->queued, sub, memory_order_relaxed) -
        sub;
    if (MM_UNLIKELY(
            atomic_load_explicit(&a->has_waiters, memory_order_relaxed)) &&
        slot_writable(a->slot, q))
        waiters_wake(a->shard, a);
}

/* ---- spawning
 * -------------------------------------------------------------------- */

static int
slot_alloc(struct mm_shard *s, struct mm_actor *a, uint32_t capacity,
           uint64_t bytes_cap, uint64_t *id_out)
{
    pthread_mutex_lock(&s->slot_lock);
    uint32_t idx;
    if (s->nfree) {
        idx = s->free_slots[--s->nfree];
    } else {
        idx = s->nslots;
        if (idx >= SLOT_CHUNK * SLOT_MAX_CHUNKS) {
            pthread_mutex_unlock(&s->slot_lock);
            return UV_ENOMEM;
        }
        uint32_t c = idx >> SLOT_CHUNK_BITS;
        if (!atomic_load(&s->chunks[c])) {
            struct mm_slot *chunk = mm__calloc(SLOT_CHUNK, sizeof(*chunk));
            if (!chunk) {
                pthread_mutex_unlock(&s->slot_lock);
                return UV_ENOMEM;
            }
            atomic_store_explicit(&s->chunks[c], chunk, memory_order_release);
        }
        if (idx >= s->serials_cap) {
            size_t cap = s->serials_cap ? s->serials_cap * 2 : 1024;
            uint32_t *ser = mm__realloc(s->serials, cap * sizeof(*ser));
            if (!ser) {
                pthread_mutex_unlock(&s->slot_lock);
                return UV_ENOMEM;
            }
            memset(ser + s->serials_cap, 0,
                   (cap - s->serials_cap) * sizeof(*ser));
            s->serials = ser;
            s->serials_cap = cap;
        }
        s->nslots++;
    }
    uint32_t serial = ++s->serials[idx];
    uint64_t id =
        (uint64_t)serial << 32 | (uint64_t)idx << 8 | (uint64_t)s->index;
    struct mm_slot *slot = mm__slot_get(s, idx);
    slot->capacity = capacity < MB_MAX_CAPACITY ? capacity : MB_MAX_CAPACITY;
    slot->bytes_cap =
        bytes_cap < MB_MAX_CAP_BYTES ? (uint32_t)bytes_cap : MB_MAX_CAP_BYTES;
    a->id = id;
    a->slot = slot;
    atomic_store_explicit(&slot->actor, a, memory_order_release);
    atomic_store_explicit(&slot->id, id, memory_order_release);
    pthread_mutex_unlock(&s->slot_lock);
    *id_out = id;
    return 0;
}

static void
slot_free(struct mm_shard *s, struct mm_actor *a)
{
    pthread_mutex_lock(&s->waiters_lock);
    pthread_mutex_lock(&s->slot_lock);
    atomic_store(&a->slot->id, 0);
    atomic_store(&a->slot->actor, NULL);
    if (s->nfree == s->free_cap) {
        size_t cap = s->free_cap ? s->free_cap * 2 : 256;
        uint32_t *f = mm__realloc(s->free_slots, cap * sizeof(*f));
        if (f) {
            s->free_slots = f;
            s->free_cap = cap;
        }
    }
    if (s->nfree < s->free_cap) /* else the slot is simply never reused */
        s->free_slots[s->nfree++] = mm__actor_id_slot(a->id);
    pthread_mutex_unlock(&s->slot_lock);
    pthread_mutex_unlock(&s->waiters_lock);
}

void
mm_spawn_opts_init(mm_spawn_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_restarts = -1;
    o->shard = -1;
}

static void actor_free(struct mm_actor *a);

static int
spawn_common(mm_node *n, const char *type_name, const mm_spawn_opts *opts,
             mm_endpoint *out, int start)
{
    mm_spawn_opts defaults;
    if (!opts) {
        mm_spawn_opts_init(&defaults);
        opts = &defaults;
    }
    if (atomic_load(&n->stopping)) return MM_ECLOSED;
    const struct mm_type_info *ti = mm__node_type(n, type_name);
    if (!ti) return MM_ENOTFOUND;
    if (opts->visibility < MM_VIS_INTERNAL || opts->visibility > MM_VIS_PRIVATE)
        return MM_EINVAL;
    struct mm_shard *s = mm__node_pick_shard(n, opts->shard);
    struct mm_actor *a = mm__calloc(1, sizeof(*a));
    if (!a) return UV_ENOMEM;
    a->shard = s;
    a->ti = ti;
    a->status = ACTOR_PREPARED;
    int rc = UV_ENOMEM;
    a->state = mm__calloc(1, ti->type->state_size ? ti->type->state_size : 1);
    if (!a->state) goto fail;
    if (opts->label && !(a->label = mm__strdup(opts->label))) goto fail;
    if (opts->arg_json && !(a->arg_json = mm__strdup(opts->arg_json)))
        goto fail;
    a->arg_ptr = opts->arg_ptr;
    rc = mm__sup_init(&a->sup, opts->policy, opts->max_restarts,
                      opts->restart_window_ms, opts->backoff_initial_ms,
                      opts->backoff_max_ms, 0);
    if (rc) goto fail;
    uint32_t cap = opts->mailbox_capacity ? opts->mailbox_capacity
                                          : n->cfg.mailbox_capacity;
    uint64_t id;
    rc = slot_alloc(s, a, cap, n->cfg.mailbox_bytes, &id);
    if (rc) goto fail;
    mm_endpoint ep;
    ep_of(a, &ep);
    if (a->label) {
        rc = mm__recep_register(n, a->label, &ep, opts->visibility, opts->keys,
                                opts->nkeys);
        if (rc) {
            slot_free(s, a);
            goto fail;
        }
    }
    if (start) {
        mm_msg *m = mm__msg_alloc();
        if (!m) {
            rc = UV_ENOMEM;
            goto fail_registered;
        }
        m->kind = MSG_START;
        m->target = id;
        rc = mm__shard_post(s, m);
        if (rc) {
            mm_msg_free(m);
            goto fail_registered;
        }
    }
    if (out) *out = ep;
    return 0;
fail_registered:
    if (a->label) mm_deregister(n, a->label);
    slot_free(s, a);
fail:
    actor_free(a);
    return rc;
}

int
mm_spawn(mm_node *n, const char *type_name, const mm_spawn_opts *opts,
         mm_endpoint *out)
{
    return spawn_common(n, type_name, opts, out, 1);
}

int
mm_spawn_ready(mm_ready **out, mm_node *n, const char *type_name,
               const mm_spawn_opts *opts)
{
    mm_ready *r = mm__calloc(1, sizeof(*r));
    if (!r) return UV_ENOMEM;
    int rc = spawn_common(n, type_name, opts, &r->ep, 0);
    if (rc) {
        mm__free(r);
        return rc;
    }
    r->node = n;
    *out = r;
    return 0;
}

const mm_endpoint *
mm_ready_endpoint(const mm_ready *r)
{
    return &r->ep;
}

static int
post_ctl(mm_node *n, const mm_endpoint *ep, int kind, int reason)
{
    if (!mm__node_is_local(n, ep)) return MM_ENOTFOUND;
    int si = mm__actor_id_shard(ep->actor);
    if (si >= n->nshards) return MM_ENOTFOUND;
    struct mm_shard *s = &n->shards[si];
    struct mm_slot *slot = mm__slot_get(s, mm__actor_id_slot(ep->actor));
    if (!slot || atomic_load(&slot->id) != ep->actor) return MM_ENOTFOUND;
    mm_msg *m = mm__msg_alloc();
    if (!m) return UV_ENOMEM;
    m->kind = (uint8_t)kind;
    m->target = ep->actor;
    m->status = reason;
    int rc = mm__shard_post(s, m);
    if (rc) mm_msg_free(m);
    return rc;
}

int
mm_ready_start(mm_ready *r)
{
    int rc = post_ctl(r->node, &r->ep, MSG_START, 0);
    mm__free(r);
    return rc;
}

void
mm_ready_drop(mm_ready *r)
{
    post_ctl(r->node, &r->ep, MSG_STOP, MM_REASON_DROPPED);
    mm__free(r);
}

int
mm_actor_stop(mm_node *n, const mm_endpoint *ep)
{
    return post_ctl(n, ep, MSG_STOP, MM_REASON_STOPPED);
}

/* ---- lifecycle on the shard
 * ----------------------------------------------------- */

static void
ctx_init(struct mm_ctx *c, struct mm_actor *a, mm_msg *m)
{
    c->node = a->shard->node;
    c->actor = a;
    c->msg = m;
    ep_of(a, &c->self);
    c->replied = c->deferred = c->failed = 0;
    c->fail_text[0] = '\0';
}

/* Runs the start hook; returns 0 or nonzero when it failed. */
static int
actor_run_start(struct mm_actor *a)
{
    a->status = ACTOR_STARTING;
    if (a->ti->type->start) {
        struct mm_ctx c;
        ctx_init(&c, a, NULL);
        int rc = a->ti->type->start(&c, a->state);
        if (rc != 0 || c.failed) {
            MM_LOG(MM_LOG_WARN, "actor", "%s (%s): start failed%s%s",
                   a->label ? a->label : "-", a->ti->type->name,
                   c.fail_text[0] ? ": " : "", c.fail_text);
            return 1;
        }
    }
    a->status = ACTOR_RUNNING;
    if (a->mb_head) mm__shard_schedule(a->shard, a);
    return 0;
}

void
mm__actor_start_msg(struct mm_shard *s, mm_msg *m)
{
    struct mm_actor *a = mm__actor_lookup(s, m->target);
    mm_msg_free(m);
    if (!a || a->status != ACTOR_PREPARED) return;
    s->nactors++;
    if (actor_run_start(a) != 0) actor_end(a, 2);
}

static void
actor_restart_cb(struct mm_tmr *t)
{
    struct mm_actor *a = mm__container_of(t, struct mm_actor, restart_tmr);
    memset(a->state, 0, a->ti->type->state_size ? a->ti->type->state_size : 1);
    mm_endpoint ep;
    ep_of(a, &ep);
    mm_event ev = {MM_EV_RESTARTED, a->label, ep, MM_REASON_CRASH,
                   a->sup.restarts};
    mm__node_emit(a->shard->node, &ev);
    if (actor_run_start(a) != 0) actor_end(a, 2);
}

/*
 * After a crash (|crashed| 1), a failed start (2) or a normal stop (0):
 * restart per policy, or terminate.
 */
static void
actor_end(struct mm_actor *a, int crashed)
{
    struct mm_shard *s = a->shard;
    if (a->ti->type->stop && a->status == ACTOR_RUNNING) {
        struct mm_ctx c;
        ctx_init(&c, a, NULL);
        a->ti->type->stop(&c, a->state,
                          crashed ? MM_REASON_CRASH : MM_REASON_NORMAL);
    }
    mm__actor_timers_cancel(a); /* a restart starts with none */
    if (a->status == ACTOR_RUNNING || a->status == ACTOR_STARTING)
        a->status = ACTOR_BACKOFF; /* not running; the stop hook has run */
    if (a->stop_req || atomic_load(&s->node->stopping)) {
        actor_terminate(a, MM_REASON_STOPPED);
        return;
    }
    uint32_t delay;
    int v = mm__sup_decide(&a->sup, crashed != 0, mm__shard_now(s), &delay);
    if (v == MM_SUP_RESTART) {
        s->ctr.restarts++;
        a->status = ACTOR_BACKOFF;
        a->restart_tmr.fn = actor_restart_cb;
        MM_LOG(MM_LOG_INFO, "actor", "%s (%s): restart %u in %u ms",
               a->label ? a->label : "-", a->ti->type->name, a->sup.restarts,
               delay);
        mm__tmr_start(s, &a->restart_tmr, mm__now_ms() + delay);
        return;
    }
    int reason = v == MM_SUP_LIMIT ? MM_REASON_RESTART_LIMIT
                 : crashed == 2    ? MM_REASON_START_FAILED
                 : crashed         ? MM_REASON_CRASH
                                   : MM_REASON_NORMAL;
    if (v == MM_SUP_LIMIT)
        MM_LOG(MM_LOG_WARN, "actor", "%s (%s): restart limit reached",
               a->label ? a->label : "-", a->ti->type->name);
    actor_terminate(a, reason);
}

static void
actor_free(struct mm_actor *a)
{
    mm__sup_release(&a->sup);
    mm__free(a->state);
    mm__free(a->label);
    mm__free(a->arg_json);
    mm__free(a);
}

/* Empties |a|'s mailbox: calls are answered |status|, tells dropped. */
static void
mailbox_reject_all(struct mm_actor *a, int status)
{
    mm_node *n = a->shard->node;
    while (a->mb_head) {
        mm_msg *m = a->mb_head;
        a->mb_head = m->next;
        atomic_fetch_sub(&a->slot->queued, MB_ONE_MSG + mm__msg_cost(m));
        mm__msg_reject(n, m, status);
    }
    a->mb_tail = NULL;
}

static void
actor_terminate(struct mm_actor *a, int reason)
{
    struct mm_shard *s = a->shard;
    mm_node *n = s->node;
    int was_started = a->status != ACTOR_PREPARED;
    if (a->status == ACTOR_RUNNING && a->ti->type->stop &&
        reason != MM_REASON_CRASH && reason != MM_REASON_NORMAL &&
        reason != MM_REASON_RESTART_LIMIT && reason != MM_REASON_START_FAILED) {
        struct mm_ctx c;
        ctx_init(&c, a, NULL);
        a->ti->type->stop(&c, a->state, reason);
    }
    mm__tmr_stop(s, &a->restart_tmr);
    mm__actor_timers_cancel(a);
    a->status = ACTOR_DEAD;
    mm_endpoint ep;
    ep_of(a, &ep);
    /* New sends fail at once from here on. */
    slot_free(s, a);
    mailbox_reject_all(a, reason == MM_REASON_SHUTDOWN ? MM_ECLOSED
                                                       : MM_ENOTFOUND);
    waiters_wake(s, a);
    mm__recep_actor_gone(n, &ep, a->label, reason);
    mm_event ev = {MM_EV_STOPPED, a->label, ep, reason, a->sup.restarts};
    mm__node_emit(n, &ev);
    if (was_started && s->nactors) s->nactors--;
    if (!a->in_runq) actor_free(a);
    /* else the scheduler frees it when it reaches it (mm__actor_run). */
}

void
mm__actor_stop_msg(struct mm_shard *s, mm_msg *m)
{
    struct mm_actor *a = mm__actor_lookup(s, m->target);
    int reason = m->status ? m->status : MM_REASON_STOPPED;
    mm_msg_free(m);
    if (!a || a->status == ACTOR_DEAD) return;
    a->stop_req = 1;
    actor_terminate(a, reason);
}

void
mm__actor_stop_all(struct mm_shard *s)
{
    /* Detach the run queue first: terminated actors are freed at once. */
    struct mm_actor *r = s->rq_head;
    s->rq_head = s->rq_tail = NULL;
    while (r) {
        struct mm_actor *next = r->rq_next;
        r->in_runq = 0;
        if (r->status == ACTOR_DEAD) actor_free(r);
        r = next;
    }
    for (uint32_t i = 0; i < s->nslots; i++) {
        struct mm_slot *slot = mm__slot_get(s, i);
        struct mm_actor *a = slot ? atomic_load(&slot->actor) : NULL;
        if (a && a->status != ACTOR_DEAD) {
            a->stop_req = 1;
            actor_terminate(a, MM_REASON_SHUTDOWN);
        }
    }
}

/* ---- delivery and dispatch
 * ---------------------------------------------------------- */

void
mm__actor_deliver(struct mm_shard *s, mm_msg *m)
{
    struct mm_actor *a = mm__actor_lookup(s, m->target);
    struct mm_call *call = m->call;
    if (call && m->reply_home == s && call->next == call)
        mm__call_adopt(s, call, m->deadline); /* from a foreign thread */
    if (!a || a->status == ACTOR_DEAD) {
        /* The sender counted it against the slot: give it back. */
        struct mm_slot *slot = mm__slot_get(s, mm__actor_id_slot(m->target));
        if (slot) atomic_fetch_sub(&slot->queued, MB_ONE_MSG + mm__msg_cost(m));
        mm__msg_reject(s->node, m, MM_ENOTFOUND);
        return;
    }
    m->next = NULL;
    if (a->mb_tail)
        a->mb_tail->next = m;
    else
        a->mb_head = m;
    a->mb_tail = m;
    if (a->status == ACTOR_RUNNING) mm__shard_schedule(s, a);
}

static void
reply_auto(struct mm_ctx *c, int rc)
{
    mm_msg *m = c->msg;
    if (!m->call || c->replied || c->deferred) return;
    struct mm_call *call = m->call;
    m->call = NULL;
    c->replied = 1;
    mm_msg *r;
    if (rc < 0) {
        const char *text = c->fail_text[0] ? c->fail_text : "actor crashed";
        cJSON *s = cJSON_CreateString(text);
        char *js = s ? cJSON_PrintUnformatted(s) : NULL;
        r = js ? mm_msg_new_json(NULL, js, strlen(js)) : mm__msg_alloc();
        cJSON_free(js);
        cJSON_Delete(s);
        if (r) mm__call_reply(m->reply_home, call, MM_EHANDLER, r);
        return;
    }
    r = mm__msg_alloc();
    if (r) mm__call_reply(m->reply_home, call, 0, r);
}

/* Runs one handler between two clock reads and counts its time: the
 * sampled message's path, out of line, so that the others keep no clock
 * value across the handler call. */
static __attribute__((noinline)) int
handler_timed(struct mm_shard *s, struct mm_actor *a, mm_handler_fn fn,
              struct mm_ctx *c, mm_msg *m)
{
    static const uint64_t bounds[MM_HT_NBOUNDS] = MM_HT_BOUNDS;
    uint64_t t0 = uv_hrtime();
    int rc = fn(c, a->state, m);
    uint64_t ns = uv_hrtime() - t0;
    unsigned i = 0;
    while (i < MM_HT_NBOUNDS && ns > bounds[i])
        i++;
    s->ctr.ht[i]++;
    s->ctr.ht_count++;
    s->ctr.ht_sum_ns += ns;
    a->ht_count++;
    a->ht_sum_ns += ns;
    return rc;
}

/* Checks |m|'s JSON from another node before an untyped handler reads
 * it; a malformed one is answered MM_EDECODE at the byte where it breaks
 * (a tell is dropped, counted) and freed: 1.  Well-formed: 0. */
static int
json_refused(struct mm_shard *s, struct mm_ctx *c, mm_msg *m)
{
    size_t off = 0;
    m->flags &= (uint16_t)~MSG_F_JSON_UNCHECKED;
    if (mm__msg_json_ok(m, &off)) return 0;
    if (m->call)
        mm_reply_error(c, MM_EDECODE, "malformed JSON at byte %zu", off);
    else
        s->ctr.dropped++;
    mm_msg_free(m);
    return 1;
}

int
mm__actor_run(struct mm_actor *a, unsigned budget)
{
    if (a->status != ACTOR_RUNNING) {
        if (a->status == ACTOR_DEAD) actor_free(a);
        return 0;
    }
    struct mm_shard *s = a->shard;
    const struct mm_type_info *ti = a->ti;
    uint64_t now_ms = mm__shard_now(s); /* the pass's clock */
    _Atomic int *stopping = &s->node->stopping;
    struct mm_ctx c;
    ctx_init(&c, a, NULL);
    for (unsigned i = 0; i < budget && a->mb_head; i++) {
        if (MM_UNLIKELY(atomic_load_explicit(stopping, memory_order_relaxed))) {
            /* The node stops (mm_node_stop, from any thread): the handler
             * that ran has finished, what is still queued is not run but
             * answered closed at once, so that a long queue cannot hold
             * the shutdown. */
            mailbox_reject_all(a, MM_ECLOSED);
            return 0;
        }
        mm_msg *m = a->mb_head;
        a->mb_head = m->next;
        if (!a->mb_head) a->mb_tail = NULL;
        slot_dequeued(a, m);
        if (m->call && m->deadline && m->deadline <= now_ms) {
            /* Expired before it ran: the callee drops it. */
            s->ctr.dropped++;
            mm__msg_reject(s->node, m, MM_ETIMEOUT);
            continue;
        }
        if (MM_UNLIKELY(m->gone != NULL) &&
            atomic_load_explicit(m->gone, memory_order_relaxed)) {
            /* Its caller's connection closed: nobody gets the reply. */
            s->ctr.dropped++;
            mm__msg_reject(s->node, m, MM_ECLOSED);
            continue;
        }
        uint16_t h = m->type_id < ti->nby_id ? ti->by_id[m->type_id] : 0;
        if (!h) {
            MM_LOG(MM_LOG_DEBUG, "actor", "%s: unknown message '%s'",
                   a->label ? a->label : a->ti->type->name, mm_msg_type(m));
            s->ctr.dropped++;
            mm__msg_reject(s->node, m, MM_EUNKNOWN_MESSAGE);
            continue;
        }
        c.msg = m;
        c.replied = c.deferred = c.failed = 0;
        c.fail_text[0] = '\0';
        const mm_handler *hd = &ti->type->handlers[h - 1];
        if (MM_UNLIKELY(m->flags & MSG_F_JSON_UNCHECKED) &&
            !(hd->flags & MM_HANDLER_TYPED) && json_refused(s, &c, m))
            continue;
        /* The shard's k-th handled message is timed when k is a multiple
         * of MM_HT_SAMPLE (two clock reads, handler_timed). */
        mm_handler_fn fn = hd->fn;
        a->handled++;
        int rc = MM_LIKELY(++s->n_handled % MM_HT_SAMPLE)
                     ? fn(&c, a->state, m)
                     : handler_timed(s, a, fn, &c, m);
        if (c.failed && rc >= 0) rc = MM_EHANDLER;
        reply_auto(&c, rc);
        mm_msg_free(m);
        if (MM_UNLIKELY(rc != 0)) {
            if (rc < 0) {
                s->ctr.crashes++;
                MM_LOG(MM_LOG_INFO, "actor", "%s (%s): crashed: %s",
                       a->label ? a->label : "-", ti->type->name,
                       c.fail_text[0] ? c.fail_text : mm_strerror(rc));
                actor_end(a, 1);
                return 0;
            }
            if (rc == MM_STOP) {
                actor_end(a, 0);
                return 0;
            }
        }
        if (MM_UNLIKELY(a->status != ACTOR_RUNNING)) return 0;
    }
    return a->mb_head != NULL;
}

/* ---- the handler context
 * ------------------------------------------------------------- */

struct mm_actor *
mm__ctx_actor(mm_ctx *ctx)
{
    return ctx->actor;
}

mm_node *
mm_ctx_node(mm_ctx *ctx)
{
    return ctx->node;
}

const mm_endpoint *
mm_ctx_self(mm_ctx *ctx)
{
    return &ctx->self;
}

const char *
mm_ctx_label(mm_ctx *ctx)
{
    return ctx->actor->label;
}

const char *
mm_ctx_arg_json(mm_ctx *ctx)
{
    return ctx->actor->arg_json;
}

void *
mm_ctx_arg_ptr(mm_ctx *ctx)
{
    return ctx->actor->arg_ptr;
}

int
mm_ctx_is_call(mm_ctx *ctx)
{
    return ctx->msg && ctx->msg->call && !ctx->replied && !ctx->deferred;
}

int
mm_reply(mm_ctx *ctx, mm_msg *reply)
{
    if (!ctx->msg || !ctx->msg->call) {
        mm_msg_free(reply);
        return ctx->msg ? 0 : MM_EINVAL; /* a tell: nothing to answer */
    }
    if (ctx->replied || ctx->deferred) {
        mm_msg_free(reply);
        return MM_EEXISTS;
    }
    struct mm_call *call = ctx->msg->call;
    ctx->msg->call = NULL;
    ctx->replied = 1;
    mm__call_reply(ctx->msg->reply_home, call, 0, reply);
    return 0;
}

int
mm_reply_json(mm_ctx *ctx, const char *json)
{
    mm_msg *r = mm_msg_new_json(NULL, json, strlen(json));
    return r ? mm_reply(ctx, r) : UV_ENOMEM;
}

int
mm_reply_jsonf(mm_ctx *ctx, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (len < 0) return MM_EINVAL;
    if ((size_t)len < sizeof(small)) return mm_reply_json(ctx, small);
    char *big = mm__malloc((size_t)len + 1);
    if (!big) return UV_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)len + 1, fmt, ap);
    va_end(ap);
    int rc = mm_reply_json(ctx, big);
    mm__free(big);
    return rc;
}

int
mm_reply_ptr(mm_ctx *ctx, void *ptr, void (*dtor)(void *))
{
    mm_msg *r = mm_msg_new_ptr(NULL, ptr, dtor);
    return r ? mm_reply(ctx, r) : UV_ENOMEM;
}

int
mm_reply_error(mm_ctx *ctx, int err, const char *fmt, ...)
{
    if (!ctx->msg || !ctx->msg->call || ctx->replied || ctx->deferred)
        return ctx->msg && ctx->msg->call ? MM_EEXISTS : 0;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    cJSON *s = cJSON_CreateString(text);
    char *js = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    mm_msg *r = js ? mm_msg_new_json(NULL, js, strlen(js)) : NULL;
    cJSON_free(js);
    if (!r) return UV_ENOMEM;
    struct mm_call *call = ctx->msg->call;
    ctx->msg->call = NULL;
    ctx->replied = 1;
    mm__call_reply(ctx->msg->reply_home, call, err < 0 ? err : MM_EHANDLER, r);
    return 0;
}

mm_defer *
mm_ctx_defer(mm_ctx *ctx)
{
    if (!ctx->msg || !ctx->msg->call || ctx->replied || ctx->deferred)
        return NULL;
    mm_defer *d = mm__malloc(sizeof(*d));
    if (!d) return NULL;
    d->home = ctx->msg->reply_home;
    d->call = ctx->msg->call;
    ctx->msg->call = NULL;
    ctx->deferred = 1;
    return d;
}

int
mm_defer_reply(mm_defer *d, int status, mm_msg *reply)
{
    if (!reply && !(reply = mm__msg_alloc())) return UV_ENOMEM;
    mm__call_reply(d->home, d->call, status, reply);
    mm__free(d);
    return 0;
}

int
mm_fail(mm_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->fail_text, sizeof(ctx->fail_text), fmt, ap);
    va_end(ap);
    ctx->failed = 1;
    return MM_EHANDLER;
}

/* ---- backpressure
 * ------------------------------------------------------------------ */

int
mm_endpoint_when_writable(mm_node *n, const mm_endpoint *to,
                          void (*cb)(void *data), void *data)
{
    if (!mm__node_is_local(n, to)) return MM_ENOTFOUND;
    int si = mm__actor_id_shard(to->actor);
    if (si >= n->nshards) return MM_ENOTFOUND;
    struct mm_shard *s = &n->shards[si];
    struct mm_waiter *w = mm__malloc(sizeof(*w));
    if (!w) return UV_ENOMEM;
    w->cb = cb;
    w->data = data;
    w->home = mm__cur_shard && mm__cur_shard->node == n ? mm__cur_shard : s;
    w->next = NULL;
    pthread_mutex_lock(&s->waiters_lock);
    struct mm_slot *slot = mm__slot_get(s, mm__actor_id_slot(to->actor));
    struct mm_actor *a = slot && atomic_load(&slot->id) == to->actor
                             ? atomic_load(&slot->actor)
                             : NULL;
    if (!a) {
        pthread_mutex_unlock(&s->waiters_lock);
        mm__free(w);
        return MM_ENOTFOUND;
    }
    /* Full in messages, or past half its bytes: a message that did not
     * fit may fit once half the bytes are free again. */
    uint64_t q = atomic_load(&slot->queued);
    int full = mm__mb_count(q) >= slot->capacity ||
               mm__mb_bytes(q) > slot->bytes_cap / 2;
    struct mm_waiter *wake = NULL;
    if (full) {
        w->next = a->waiters;
        a->waiters = w;
        atomic_store(&a->has_waiters, 1);
        /* Re-check: the mailbox may have drained while we registered. */
        if (slot_writable(slot, atomic_load(&slot->queued))) {
            wake = a->waiters;
            a->waiters = NULL;
            atomic_store(&a->has_waiters, 0);
        }
    }
    pthread_mutex_unlock(&s->waiters_lock);
    waiters_post(wake);
    if (!full) {
        mm_msg *m = mm__msg_alloc();
        if (!m) {
            mm__free(w);
            return UV_ENOMEM;
        }
        m->kind = MSG_FN;
        m->fn = waiter_fire;
        m->fn_arg = w;
        int rc = mm__shard_post(w->home, m);
        if (rc) {
            mm_msg_free(m);
            mm__free(w);
        }
        return rc;
    }
    return 0;
}
