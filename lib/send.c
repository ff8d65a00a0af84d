/*
 * send.c — sends, calls and replies.
 *
 * A call's record lives on its home shard and is touched only there.  It
 * holds two references: the caller side (the deadline timer, the callback)
 * and the reply, which always arrives exactly once (an actor's reply, an
 * auto-reply, a rejection or a shutdown answer).  A reply that arrives after
 * the deadline fired is dropped safely.
 */
#include "runtime.h"

static MM_TLS struct mm_call *call_cache;

static struct mm_call *
call_new(struct mm_shard *home)
{
    struct mm_call *c;
    if (mm__cur_shard == home && call_cache) {
        c = call_cache;
        call_cache = c->next;
    } else {
        c = mm__malloc(sizeof(*c));
        if (!c) return NULL;
    }
    memset(c, 0, sizeof(*c));
    c->home = home;
    c->refs = 2;
    c->prev = c->next = c;
    return c;
}

static void
call_link(struct mm_shard *s, struct mm_call *c)
{
    c->next = s->calls.next;
    c->prev = &s->calls;
    s->calls.next->prev = c;
    s->calls.next = c;
}

static void
call_free(struct mm_call *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    if (mm__cur_shard == c->home) {
        c->next = call_cache;
        call_cache = c;
    } else {
        mm__free(c);
    }
}

static void
call_unref(struct mm_call *c)
{
    if (--c->refs == 0) call_free(c);
}

static void
call_timeout_cb(struct mm_tmr *t)
{
    struct mm_call *c = mm__container_of(t, struct mm_call, tmr);
    if (!c->done) {
        c->done = 1;
        c->home->ctr.calls[mm__call_st_index(MM_ETIMEOUT)]++;
        c->cb(c->data, MM_ETIMEOUT, NULL);
    }
    /* The record stays until the reply (late or rejected) arrives. */
}

void
mm__call_complete(struct mm_shard *s, mm_msg *reply)
{
    struct mm_call *c = reply->call;
    reply->call = NULL;
    /* Read before the callback: a blocking caller may free |c|'s waiter
     * state and the reply as soon as the callback signals it. */
    int keep = 0;
    if (!c->done) {
        c->done = 1;
        keep = c->blocking;
        mm__tmr_stop(s, &c->tmr);
        /* c->home is |s|; through |c|, which stays in a register across
         * the calls here, |s| need not. */
        if (MM_LIKELY(reply->status == 0))
            c->home->n_calls_ok++;
        else
            c->home->ctr.calls[mm__call_st_index(reply->status)]++;
        c->cb(c->data, reply->status, reply);
    }
    if (!keep) mm_msg_free(reply);
    /* The reply's reference; the caller side's goes with it once done. */
    if (c->refs == 2) c->refs--;
    call_unref(c);
}

void
mm__calls_fail_all(struct mm_shard *s)
{
    while (s->calls.next != &s->calls) {
        struct mm_call *c = s->calls.next;
        mm__tmr_stop(s, &c->tmr);
        if (!c->done) {
            c->done = 1;
            s->ctr.calls[mm__call_st_index(MM_ECLOSED)]++;
            c->cb(c->data, MM_ECLOSED, NULL);
        }
        c->prev->next = c->next;
        c->next->prev = c->prev;
        mm__free(c);
    }
    while (call_cache) {
        struct mm_call *c = call_cache;
        call_cache = c->next;
        mm__free(c);
    }
}

void
mm__call_reply(struct mm_shard *home, struct mm_call *call, int status,
               mm_msg *reply)
{
    reply->kind = MSG_REPLY;
    reply->status = status;
    reply->call = call;
    reply->reply_home = NULL;
    if (mm__shard_post(home, reply) != 0) {
        /* The home shard is closed; it freed its records. */
        reply->call = NULL;
        mm_msg_free(reply);
    }
}

int
mm__node_is_local(const mm_node *n, const mm_endpoint *ep)
{
    return memcmp(ep->node, n->id, MM_NODE_ID_LEN) == 0 &&
           ep->generation == n->generation;
}

static int send_impl(mm_node *n, const mm_endpoint *to, mm_msg *msg,
                     mm_reply_cb cb, void *data, int blocking);

int
mm_send(mm_node *n, const mm_endpoint *to, mm_msg *msg, mm_reply_cb cb,
        void *data)
{
    return send_impl(n, to, msg, cb, data, 0);
}

/*
 * Makes |msg| a call: a record on |home| (the caller's shard, else the
 * target's), its deadline, and the reply's route.  When the caller is a
 * shard thread the record is linked and armed at once; otherwise its home
 * shard adopts it on arrival (mm__call_adopt).
 */
static int
call_attach(mm_node *n, mm_msg *msg, struct mm_shard *cur,
            struct mm_shard *home, mm_reply_cb cb, void *data, int blocking)
{
    struct mm_call *c = call_new(home);
    if (MM_UNLIKELY(!c)) return UV_ENOMEM;
    c->cb = cb;
    c->data = data;
    c->blocking = (uint8_t)blocking;
    c->tmr.fn = call_timeout_cb;
    uint32_t tmo =
        msg->timeout_ms ? msg->timeout_ms : n->cfg.default_timeout_ms;
    /* No call holds its record and its message longer than the node's
     * maximum, whatever the caller asked. */
    if (MM_UNLIKELY(tmo > MM_MAX_CALL_MS)) tmo = MM_MAX_CALL_MS;
    uint64_t now = cur ? mm__shard_now(cur) : mm__now_ms();
    msg->deadline = now + tmo;
    msg->call = c;
    msg->reply_home = home;
    if (cur) {
        call_link(cur, c);
        mm__tmr_start(cur, &c->tmr, msg->deadline);
    }
    return 0;
}

/* Undoes call_attach() after a failed post: the caller keeps |msg|. */
static void
call_detach(mm_msg *msg, struct mm_shard *cur)
{
    struct mm_call *c = msg->call;
    if (!c) return;
    msg->call = NULL;
    if (cur) {
        mm__tmr_stop(cur, &c->tmr);
        c->prev->next = c->next;
        c->next->prev = c->prev;
    }
    mm__free(c);
}

/* A message to another node: checked here, sent by the cluster on shard 0.
 * The call record is made exactly as for a local call. */
static int
send_remote(mm_node *n, const mm_endpoint *to, mm_msg *msg, mm_reply_cb cb,
            void *data, int blocking)
{
    if (!n->cluster) return MM_EUNREACHABLE;
    if (msg->content == MM_CONTENT_PTR) return MM_ENOT_SERIALIZABLE;
    if (!msg->type_name || !*msg->type_name) return MM_EUNKNOWN_MESSAGE;
    if (atomic_load_explicit(&n->stopping, memory_order_relaxed))
        return MM_ECLOSED;
    struct mm_shard *s0 = &n->shards[0];
    struct mm_shard *cur = mm__cur_shard;
    if (cur && cur->node != n) cur = NULL;
    msg->kind = MSG_REMOTE;
    msg->target = to->actor;
    memcpy(msg->rnode, to->node, MM_NODE_ID_LEN);
    msg->rgen = to->generation;
    msg->next = NULL;
    msg->call = NULL;
    if (cb) {
        int rc = call_attach(n, msg, cur, cur ? cur : s0, cb, data, blocking);
        if (rc) return rc;
    } else {
        msg->flags |= MSG_F_TELL;
    }
    int rc = mm__shard_post(s0, msg);
    if (rc) call_detach(msg, cur);
    return rc;
}

static int
send_impl(mm_node *n, const mm_endpoint *to, mm_msg *msg, mm_reply_cb cb,
          void *data, int blocking)
{
    if (MM_UNLIKELY(!mm__node_is_local(n, to))) {
        if (memcmp(to->node, n->id, MM_NODE_ID_LEN) == 0)
            return MM_ENOTFOUND; /* an earlier generation of this node */
        return send_remote(n, to, msg, cb, data, blocking);
    }
    if (MM_UNLIKELY(msg->type_id == 0)) {
        uint32_t id = 0;
        if (!msg->type_name || mm__node_intern(n, msg->type_name, 0, &id) ||
            !id)
            return MM_EUNKNOWN_MESSAGE;
        msg->type_id = id;
    }
    int si = mm__actor_id_shard(to->actor);
    if (MM_UNLIKELY(si >= n->nshards)) return MM_ENOTFOUND;
    if (MM_UNLIKELY(atomic_load_explicit(&n->stopping, memory_order_relaxed)))
        return MM_ECLOSED;
    struct mm_shard *ts = &n->shards[si];
    struct mm_slot *slot = mm__slot_get(ts, mm__actor_id_slot(to->actor));
    if (MM_UNLIKELY(!slot || atomic_load_explicit(
                                 &slot->id, memory_order_acquire) != to->actor))
        return MM_ENOTFOUND;
    /* One atomic add reserves a message and its bytes (runtime.h). */
    uint64_t add = MB_ONE_MSG + mm__msg_cost(msg);
    uint64_t q =
        atomic_fetch_add_explicit(&slot->queued, add, memory_order_relaxed);
    if (MM_UNLIKELY(mm__mb_full(slot, q, add - MB_ONE_MSG))) {
        atomic_fetch_sub_explicit(&slot->queued, add, memory_order_relaxed);
        return MM_EOVERLOADED;
    }
    struct mm_shard *cur = mm__cur_shard;
    if (cur && cur->node != n) cur = NULL;
    msg->kind = MSG_USER;
    msg->target = to->actor;
    msg->next = NULL;
    if (cb) {
        int rc = call_attach(n, msg, cur, cur ? cur : ts, cb, data, blocking);
        if (MM_UNLIKELY(rc)) {
            atomic_fetch_sub(&slot->queued, add);
            return rc;
        }
    } else {
        msg->flags |= MSG_F_TELL;
        msg->call = NULL;
        msg->deadline = 0;
    }
    if (cur == ts) {
        struct mm_actor *a =
            atomic_load_explicit(&slot->actor, memory_order_relaxed);
        if (MM_LIKELY(a && a->status != ACTOR_DEAD)) {
            if (a->mb_tail)
                a->mb_tail->next = msg;
            else
                a->mb_head = msg;
            a->mb_tail = msg;
            if (a->status == ACTOR_RUNNING) mm__shard_schedule(ts, a);
            return 0;
        }
        /* Cannot happen while the slot id matched, but stay safe. */
        mm__actor_deliver(ts, msg);
        return 0;
    }
    int rc = mm__shard_post(ts, msg);
    if (MM_UNLIKELY(rc)) {
        atomic_fetch_sub(&slot->queued, add);
        call_detach(msg, cur);
        return rc;
    }
    return 0;
}

/* A call made from a foreign thread reaches its home shard (the target's)
 * unlinked: link it and arm its deadline there. */
void
mm__call_adopt(struct mm_shard *s, struct mm_call *c, uint64_t deadline)
{
    call_link(s, c);
    if (!c->done && deadline) mm__tmr_start(s, &c->tmr, deadline);
}

int
mm_tell(mm_node *n, const mm_endpoint *to, mm_msg *msg)
{
    return mm_send(n, to, msg, NULL, NULL);
}

struct blocking {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int status;
    mm_msg *reply;
};

static void
blocking_cb(void *data, int status, mm_msg *reply)
{
    struct blocking *b = data;
    pthread_mutex_lock(&b->lock);
    b->status = status;
    b->reply = reply; /* ours: the call is marked blocking */
    b->done = 1;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

int
mm_call(mm_node *n, const mm_endpoint *to, mm_msg *msg, mm_msg **reply)
{
    if (reply) *reply = NULL;
    if (mm__cur_shard) {
        mm_msg_free(msg);
        return MM_EDEADLK;
    }
    struct blocking b;
    memset(&b, 0, sizeof(b));
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    int rc = send_impl(n, to, msg, blocking_cb, &b, 1);
    if (rc) {
        mm_msg_free(msg);
    } else {
        pthread_mutex_lock(&b.lock);
        while (!b.done)
            pthread_cond_wait(&b.cond, &b.lock);
        pthread_mutex_unlock(&b.lock);
        rc = b.status;
        if (b.reply) {
            b.reply->kind = MSG_USER;
            /* Error replies that carry a text (mm_reply_error) go back too. */
            if (reply && (rc == 0 || b.reply->content != MM_CONTENT_NONE))
                *reply = b.reply;
            else
                mm_msg_free(b.reply);
        }
    }
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.lock);
    return rc;
}
