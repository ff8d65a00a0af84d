/*
 * shard.c — one libuv loop: the cross-thread inbox, the run queue and its
 * scheduler, the timers (a tq.h queue on a timerfd), and the two-phase
 * shutdown (stop actors everywhere, then drain and close handles).
 *
 * Scheduling: while work exists an idle handle keeps the loop from
 * blocking, and a check handle runs it right after the I/O phase (a message
 * that arrived from the network is handled in the same loop turn, saving an
 * epoll_wait per message); each drains the run queue in repeated passes
 * until it is empty or about MM_SCHED_BUDGET_NS is spent.  Each ready actor
 * handles at most MM_SCHED_MSG_BUDGET messages per pass.
 */
#include "runtime.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

MM_TLS struct mm_shard *mm__cur_shard;

void mm__shard_idle_cb(uv_idle_t *h);
static void shard_check_cb(uv_check_t *h);

/* ---- timers
 * ------------------------------------------------------------------ */

void
mm__tmr_start(struct mm_shard *s, struct mm_tmr *t, uint64_t deadline)
{
    mm__tq_start(&s->tq, t, deadline * 1000000ull);
}

void
mm__tmr_stop(struct mm_shard *s, struct mm_tmr *t)
{
    mm__tq_stop(&s->tq, t);
}

/*
 * The shard's clock in ms, without a syscall: the pass clock, or libuv's
 * loop time when that is newer (a shard that sat idle for a while has an
 * old pass clock: deadlines computed from it would already be past).
 * Shard thread only.
 */
uint64_t
mm__shard_now(struct mm_shard *s)
{
    uint64_t loop = uv_now(&s->loop), tq = s->tq.now_ns / 1000000ull;
    uint64_t now = s->now_ms > loop ? s->now_ms : loop;
    return tq > now ? tq : now;
}

/* ---- slots -----------------------------------------------------------------
 */

struct mm_slot *
mm__slot_get(struct mm_shard *s, uint32_t idx)
{
    uint32_t c = idx >> SLOT_CHUNK_BITS;
    if (c >= SLOT_MAX_CHUNKS) return NULL;
    struct mm_slot *chunk =
        atomic_load_explicit(&s->chunks[c], memory_order_acquire);
    return chunk ? &chunk[idx & (SLOT_CHUNK - 1)] : NULL;
}

/* ---- posting
 * ----------------------------------------------------------------- */

static void
local_push(struct mm_shard *s, mm_msg *m)
{
    m->next = NULL;
    if (s->local_tail)
        s->local_tail->next = m;
    else
        s->local_head = m;
    s->local_tail = m;
    if (!s->idle_active && !s->closing) {
        uv_idle_start(&s->idle, mm__shard_idle_cb);
        uv_check_start(&s->check, shard_check_cb);
        s->idle_active = 1;
    }
}

int
mm__shard_post(struct mm_shard *s, mm_msg *m)
{
    if (mm__cur_shard == s) {
        if (s->inbox_closed && s->closing) return MM_ECLOSED;
        local_push(s, m);
        return 0;
    }
    m->next = NULL;
    pthread_mutex_lock(&s->inbox_lock);
    if (s->inbox_closed) {
        pthread_mutex_unlock(&s->inbox_lock);
        return MM_ECLOSED;
    }
    int was_empty = s->inbox_head == NULL;
    if (s->inbox_tail)
        s->inbox_tail->next = m;
    else
        s->inbox_head = m;
    s->inbox_tail = m;
    /* Under the lock, so that the handle cannot be closed meanwhile. */
    if (was_empty) uv_async_send(&s->async);
    if (s->parked && !s->park_woken) {
        /* The loop sleeps in the transport's receive (mm__shard_park). */
        static const char none[1];
        s->park_woken = 1;
        (void)sendto(s->wake_fd, none, 0, MSG_DONTWAIT,
                     (const struct sockaddr *)&s->wake_to, s->wake_len);
    }
    pthread_mutex_unlock(&s->inbox_lock);
    return 0;
}

int
mm__shard_set_wake(struct mm_shard *s, const struct sockaddr *to, socklen_t len)
{
    if (len > sizeof(s->wake_to)) return -EINVAL;
    int fd =
        socket(to->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    pthread_mutex_lock(&s->inbox_lock);
    if (s->wake_fd >= 0) close(s->wake_fd);
    s->wake_fd = fd;
    memcpy(&s->wake_to, to, len);
    s->wake_len = len;
    pthread_mutex_unlock(&s->inbox_lock);
    return 0;
}

int
mm__shard_park(struct mm_shard *s)
{
    if (s->wake_fd < 0 || s->closing || s->rq_head || s->local_head) return 0;
    pthread_mutex_lock(&s->inbox_lock);
    int ok = s->inbox_head == NULL && !s->inbox_closed;
    s->parked = ok;
    s->park_woken = 0;
    pthread_mutex_unlock(&s->inbox_lock);
    return ok;
}

int
mm__shard_unpark(struct mm_shard *s)
{
    pthread_mutex_lock(&s->inbox_lock);
    int woken = s->park_woken;
    s->parked = s->park_woken = 0;
    pthread_mutex_unlock(&s->inbox_lock);
    return woken;
}

void
mm__shard_schedule(struct mm_shard *s, struct mm_actor *a)
{
    if (a->in_runq) return;
    a->in_runq = 1;
    a->rq_next = NULL;
    if (s->rq_tail)
        s->rq_tail->rq_next = a;
    else
        s->rq_head = a;
    s->rq_tail = a;
    if (!s->idle_active && !s->closing) {
        uv_idle_start(&s->idle, mm__shard_idle_cb);
        uv_check_start(&s->check, shard_check_cb);
        s->idle_active = 1;
    }
}

/* ---- processing
 * ---------------------------------------------------------------- */

static void shard_phase_a(struct mm_shard *s);
static void shard_phase_b(struct mm_shard *s);

static void
shard_process(struct mm_shard *s, mm_msg *m)
{
    switch (m->kind) {
    case MSG_USER:
        mm__actor_deliver(s, m);
        break;
    case MSG_REPLY:
        mm__call_complete(s, m);
        break;
    case MSG_FN: {
        void (*fn)(void *) = m->fn;
        void *arg = m->fn_arg;
        mm_msg_free(m);
        fn(arg);
        break;
    }
    case MSG_START:
        mm__actor_start_msg(s, m);
        break;
    case MSG_STOP:
        mm__actor_stop_msg(s, m);
        break;
    case MSG_REMOTE: {
        mm_node *n = s->node;
        if (m->call && m->reply_home == s && m->call->next == m->call)
            mm__call_adopt(s, m->call, m->deadline);
        if (n->cluster && !s->closing)
            n->cluster_ops->send(n->cluster, m);
        else
            mm__msg_reject(n, m, MM_ECLOSED);
        break;
    }
    case MSG_SHUTDOWN:
        mm_msg_free(m);
        shard_phase_a(s);
        break;
    case MSG_CLOSE:
        mm_msg_free(m);
        shard_phase_b(s);
        break;
    default:
        mm_msg_free(m);
        break;
    }
}

static int
shard_drain_inbox(struct mm_shard *s)
{
    pthread_mutex_lock(&s->inbox_lock);
    mm_msg *m = s->inbox_head;
    s->inbox_head = s->inbox_tail = NULL;
    pthread_mutex_unlock(&s->inbox_lock);
    int any = m != NULL;
    while (m) {
        mm_msg *next = m->next;
        shard_process(s, m);
        m = next;
    }
    return any;
}

static void
shard_async_cb(uv_async_t *h)
{
    shard_drain_inbox(h->data);
}

/*
 * Runs local items and actors in passes for at most the time budget.  The
 * clock is read every few passes only (a read costs ~20 ns here, a light
 * pass not much more); a pass that ran past MM_SLOW_TURN_MS is logged.
 */
static void
shard_run(struct mm_shard *s, uint64_t now_ns)
{
    uint64_t start = now_ns ? now_ns : mm__now_ns(), last = start;
    s->now_ms = start / 1000000u;
    for (unsigned pass = 1;; pass++) {
        while (s->local_head) {
            mm_msg *m = s->local_head;
            s->local_head = m->next;
            if (!s->local_head) s->local_tail = NULL;
            shard_process(s, m);
        }
        struct mm_actor *a = s->rq_head;
        if (!a) break;
        s->rq_head = s->rq_tail = NULL;
        unsigned ran = 0;
        while (a) {
            struct mm_actor *next = a->rq_next;
            a->in_runq = 0;
            if (mm__actor_run(a, MM_SCHED_MSG_BUDGET)) mm__shard_schedule(s, a);
            a = next;
            ran++;
        }
        if (ran > 8 || (pass & 7) == 0) {
            uint64_t now = mm__now_ns();
            s->now_ms = now / 1000000u;
            if (MM_UNLIKELY(now - last > MM_SLOW_TURN_MS * 1000000ull))
                MM_LOG(MM_LOG_WARN, "sched",
                       "shard %d: a pass over %u actors took %llu ms "
                       "(handlers must not block)",
                       s->index, ran,
                       (unsigned long long)((now - last) / 1000000u));
            last = now;
            if (now - start > MM_SCHED_BUDGET_NS) break;
        }
    }
}

static void
shard_work(struct mm_shard *s, uint64_t now_ns)
{
    shard_run(s, now_ns);
    if (!s->rq_head && !s->local_head && s->idle_active) {
        uv_idle_stop(&s->idle);
        uv_check_stop(&s->check);
        s->idle_active = 0;
    }
}

void
mm__shard_idle_cb(uv_idle_t *h)
{
    shard_work(h->data, 0);
}

static void
shard_check_cb(uv_check_t *h)
{
    shard_work(h->data, 0);
}

/* |now_ns|: a CLOCK_MONOTONIC reading the caller just took, or 0. */
void
mm__shard_run_ready(struct mm_shard *s, uint64_t now_ns)
{
    if (s->rq_head || s->local_head) shard_work(s, now_ns);
}

/* ---- shutdown
 * ----------------------------------------------------------------- */

static void
shard_phase_a(struct mm_shard *s)
{
    mm_node *n = s->node;
    mm__actor_stop_all(s);
    /* The last shard to stop its actors closes them all. */
    if (atomic_fetch_add(&n->phase_a_done, 1) + 1 == n->nshards)
        mm__node_post_all(n, MSG_CLOSE);
}

static void
shard_close_cb(uv_handle_t *h)
{
    (void)h;
}

/*
 * Closes |s|'s inbox (nothing more enters it) and empties it and the local
 * queue: replies complete and posted functions run, user and remote
 * messages are refused with MM_ECLOSED (so that every call still gets its
 * one answer), start, stop and shutdown items are dropped.  Runs on |s|'s
 * thread, or for a node that never ran on the thread that frees it.
 */
void
mm__shard_drain_closed(struct mm_shard *s)
{
    pthread_mutex_lock(&s->inbox_lock);
    s->inbox_closed = 1;
    mm_msg *m = s->inbox_head;
    s->inbox_head = s->inbox_tail = NULL;
    pthread_mutex_unlock(&s->inbox_lock);
    while (m) {
        mm_msg *next = m->next;
        if (m->kind == MSG_USER || m->kind == MSG_REMOTE)
            mm__msg_reject(s->node, m, MM_ECLOSED);
        else if (m->kind == MSG_START || m->kind == MSG_STOP ||
                 m->kind == MSG_SHUTDOWN || m->kind == MSG_CLOSE)
            mm_msg_free(m);
        else
            shard_process(s, m);
        m = next;
        if (!m && s->local_head) {
            m = s->local_head;
            s->local_head = s->local_tail = NULL;
        }
    }
}

/*
 * Phase B, once every shard has stopped its actors.  The network half
 * stops only now, after the answers that the other shards posted while
 * they stopped (queued calls answered closed) reached the network and went
 * out to their callers.
 */
static void
shard_phase_b(struct mm_shard *s)
{
    mm__shard_drain_closed(s);
    if (s->index == 0 && s->node->cluster)
        s->node->cluster_ops->stop(s->node->cluster);
    s->closing = 1;
    mm__calls_fail_all(s);
    if (s->index == 0 && s->node->cluster)
        s->node->cluster_ops->close(s->node->cluster);
    while (s->local_head) { /* replies to ourselves produced above */
        mm_msg *x = s->local_head;
        s->local_head = x->next;
        mm_msg_free(x);
    }
    s->local_tail = NULL;
    if (s->idle_active) {
        uv_idle_stop(&s->idle);
        uv_check_stop(&s->check);
        s->idle_active = 0;
    }
    uv_close((uv_handle_t *)&s->async, shard_close_cb);
    uv_close((uv_handle_t *)&s->idle, shard_close_cb);
    uv_close((uv_handle_t *)&s->check, shard_close_cb);
    mm__tq_close(&s->tq);
}

/* ---- lifecycle
 * ------------------------------------------------------------------ */

int
mm__shard_init(struct mm_shard *s, mm_node *n, int index)
{
    memset(s, 0, sizeof(*s));
    s->node = n;
    s->index = index;
    s->calls.next = s->calls.prev = &s->calls;
    s->wake_fd = -1;
    int rc = uv_loop_init(&s->loop);
    if (rc) return rc;
    s->loop.data = s;
    uv_async_init(&s->loop, &s->async, shard_async_cb);
    s->async.data = s;
    uv_idle_init(&s->loop, &s->idle);
    s->idle.data = s;
    uv_check_init(&s->loop, &s->check);
    s->check.data = s;
    rc = mm__tq_init(&s->tq, &s->loop);
    if (rc) {
        uv_close((uv_handle_t *)&s->async, NULL);
        uv_close((uv_handle_t *)&s->idle, NULL);
        uv_close((uv_handle_t *)&s->check, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        return rc;
    }
    pthread_mutex_init(&s->inbox_lock, NULL);
    pthread_mutex_init(&s->slot_lock, NULL);
    pthread_mutex_init(&s->waiters_lock, NULL);
    return 0;
}

void
mm__shard_release(struct mm_shard *s)
{
    /* Handles were closed in phase B; a node that never ran closes here. */
    if (!s->closing) {
        s->closing = 1;
        uv_close((uv_handle_t *)&s->async, shard_close_cb);
        uv_close((uv_handle_t *)&s->idle, shard_close_cb);
        uv_close((uv_handle_t *)&s->check, shard_close_cb);
        mm__tq_close(&s->tq);
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    int rc = uv_loop_close(&s->loop);
    if (rc)
        MM_LOG(MM_LOG_WARN, "node", "shard %d: loop close: %s", s->index,
               uv_strerror(rc));
    mm_msg *m = s->inbox_head;
    while (m) {
        mm_msg *next = m->next;
        mm_msg_free(m);
        m = next;
    }
    for (uint32_t c = 0; c < SLOT_MAX_CHUNKS; c++) {
        struct mm_slot *chunk = atomic_load(&s->chunks[c]);
        if (!chunk) break;
        mm__free(chunk);
    }
    if (s->wake_fd >= 0) close(s->wake_fd);
    s->wake_fd = -1;
    mm__free(s->free_slots);
    mm__free(s->serials);
    pthread_mutex_destroy(&s->inbox_lock);
    pthread_mutex_destroy(&s->slot_lock);
    pthread_mutex_destroy(&s->waiters_lock);
}

void
mm__shard_thread_main(void *arg)
{
    struct mm_shard *s = arg;
    mm__cur_shard = s;
    /* Items posted before the loop ran (spawns, shutdown) are in the inbox. */
    uv_async_send(&s->async);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    mm__msg_cache_free();
    mm__cur_shard = NULL;
}
