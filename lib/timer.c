/*
 * timer.c — an actor's timers: mm_send_after, mm_send_every and
 * mm_timer_cancel.  Each timer is a record on its actor's list and on the
 * shard's timer queue (tq.h); it fires on the actor's shard and sends its
 * message as a tell.  The actor owns them: actor.c cancels them all when
 * it stops, crashes or restarts (mm__actor_timers_cancel).
 */
#include "runtime.h"

struct mm_atimer {
    struct mm_tmr tmr;
    struct mm_atimer *prev, *next; /* the owner's list */
    struct mm_actor *owner;
    mm_timer_id id;
    uint64_t period_ns; /* 0 = once */
    mm_endpoint to;
    mm_msg *msg; /* sent (once) or copied (periodic) when it fires */
};

static void
timer_unlink(struct mm_actor *a, struct mm_atimer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        a->timers = t->next;
    if (t->next) t->next->prev = t->prev;
    a->ntimers--;
}

static void
timer_free(struct mm_actor *a, struct mm_atimer *t)
{
    mm__tq_stop(&a->shard->tq, &t->tmr);
    timer_unlink(a, t);
    if (t->msg) mm_msg_free(t->msg);
    mm__free(t);
}

void
mm__actor_timers_cancel(struct mm_actor *a)
{
    while (a->timers)
        timer_free(a, a->timers);
}

static void
timer_fire(struct mm_tmr *tmr)
{
    struct mm_atimer *t = mm__container_of(tmr, struct mm_atimer, tmr);
    struct mm_actor *a = t->owner;
    struct mm_shard *s = a->shard;
    mm_endpoint to = t->to;
    mm_timer_id id = t->id;
    int periodic = t->period_ns != 0;
    mm_msg *m;
    if (periodic) {
        m = mm__msg_clone(t->msg);
        /* Keep the rhythm; after a stall, skip the ticks that were
         * missed rather than sending them in a burst. */
        uint64_t next = t->tmr.deadline_ns + t->period_ns;
        uint64_t now = s->tq.now_ns ? s->tq.now_ns : mm__now_ns();
        if (next <= now) next = now + t->period_ns;
        mm__tq_start(&s->tq, &t->tmr, next);
    } else {
        m = t->msg;
        t->msg = NULL;
        timer_free(a, t);
    }
    if (!m) {
        MM_LOG(MM_LOG_WARN, "actor", "%s: timer %llu: out of memory",
               a->label ? a->label : a->ti->type->name, (unsigned long long)id);
        return;
    }
    int rc = mm_tell(s->node, &to, m);
    if (rc == 0) return;
    MM_LOG(MM_LOG_DEBUG, "actor", "%s: timer %llu: message dropped: %s",
           a->label ? a->label : a->ti->type->name, (unsigned long long)id,
           mm_strerror(rc));
    mm_msg_free(m);
    /* An endpoint never comes back once gone: stop sending to it (|t| is
     * still armed: a send only queues, it runs no handler). */
    if (periodic && rc == MM_ENOTFOUND) timer_free(a, t);
}

/* The checks a send would make now, so that the caller hears of a timer
 * that could never deliver at once rather than never. */
static int
timer_check(mm_node *n, const mm_endpoint *to, mm_msg *msg, int periodic)
{
    if (periodic && msg->content == MM_CONTENT_PTR) return MM_EINVAL;
    if (atomic_load_explicit(&n->stopping, memory_order_relaxed))
        return MM_ECLOSED;
    int named = msg->type_name && *msg->type_name;
    if (!mm__node_is_local(n, to)) {
        if (memcmp(to->node, n->id, MM_NODE_ID_LEN) == 0)
            return MM_ENOTFOUND; /* an earlier generation of this node */
        if (msg->content == MM_CONTENT_PTR) return MM_ENOT_SERIALIZABLE;
        if (!n->cluster) return MM_EUNREACHABLE; /* a local-only node */
        return named ? 0 : MM_EUNKNOWN_MESSAGE;
    }
    if (!msg->type_id) {
        if (!named) return MM_EUNKNOWN_MESSAGE;
        uint32_t tid = 0;
        if (mm__node_intern(n, msg->type_name, 0, &tid) || !tid)
            return MM_EUNKNOWN_MESSAGE;
        msg->type_id = tid;
    }
    int si = mm__actor_id_shard(to->actor);
    if (si >= n->nshards) return MM_ENOTFOUND;
    struct mm_slot *slot =
        mm__slot_get(&n->shards[si], mm__actor_id_slot(to->actor));
    if (!slot ||
        atomic_load_explicit(&slot->id, memory_order_acquire) != to->actor)
        return MM_ENOTFOUND;
    return 0;
}

static int
timer_add(mm_ctx *ctx, const mm_endpoint *to, uint32_t ms, mm_msg *msg,
          mm_timer_id *id, int periodic)
{
    if (!ctx || !msg) return MM_EINVAL;
    if (periodic && ms == 0) return MM_EINVAL;
    struct mm_actor *a = mm__ctx_actor(ctx);
    mm_node *n = a->shard->node;
    if (!to) to = mm_ctx_self(ctx);
    if (a->ntimers >= MM_ACTOR_TIMERS_MAX) return MM_EOVERLOADED;
    int rc = timer_check(n, to, msg, periodic);
    if (rc) return rc;
    struct mm_atimer *t = mm__calloc(1, sizeof(*t));
    if (!t) return UV_ENOMEM;
    t->owner = a;
    t->id = ++a->shard->timer_seq << 8 | (uint64_t)a->shard->index;
    t->period_ns = periodic ? (uint64_t)ms * 1000000ull : 0;
    t->to = *to;
    t->msg = msg;
    t->tmr.fn = timer_fire;
    t->next = a->timers;
    if (a->timers) a->timers->prev = t;
    a->timers = t;
    a->ntimers++;
    /* From the clock now, not the pass's: "at or after its time". */
    mm__tq_start(&a->shard->tq, &t->tmr,
                 mm__now_ns() + (uint64_t)ms * 1000000ull);
    if (id) *id = t->id;
    return 0;
}

int
mm_send_after(mm_ctx *ctx, const mm_endpoint *to, uint32_t ms, mm_msg *msg,
              mm_timer_id *id)
{
    return timer_add(ctx, to, ms, msg, id, 0);
}

int
mm_send_every(mm_ctx *ctx, const mm_endpoint *to, uint32_t ms, mm_msg *msg,
              mm_timer_id *id)
{
    return timer_add(ctx, to, ms, msg, id, 1);
}

int
mm_timer_cancel(mm_ctx *ctx, mm_timer_id id)
{
    if (!ctx) return MM_EINVAL;
    struct mm_actor *a = mm__ctx_actor(ctx);
    for (struct mm_atimer *t = a->timers; t; t = t->next) {
        if (t->id == id) {
            timer_free(a, t);
            return 0;
        }
    }
    return MM_ENOTFOUND;
}
