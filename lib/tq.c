/*
 * tq.c — a binary heap of deadlines behind one timerfd (see tq.h).
 */
#include "tq.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common.h"

static void
heap_swap(struct mm_tq *q, size_t i, size_t j)
{
    struct mm_tmr *t = q->heap[i];
    q->heap[i] = q->heap[j];
    q->heap[j] = t;
    q->heap[i]->idx = i + 1;
    q->heap[j]->idx = j + 1;
}

static void
heap_up(struct mm_tq *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (q->heap[p]->deadline_ns <= q->heap[i]->deadline_ns) break;
        heap_swap(q, i, p);
        i = p;
    }
}

static void
heap_down(struct mm_tq *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->len && q->heap[l]->deadline_ns < q->heap[m]->deadline_ns)
            m = l;
        if (r < q->len && q->heap[r]->deadline_ns < q->heap[m]->deadline_ns)
            m = r;
        if (m == i) break;
        heap_swap(q, i, m);
        i = m;
    }
}

static void
tq_program(struct mm_tq *q, uint64_t due)
{
    /* 0 would disarm: a deadline at the epoch is simply "now". */
    if (due == 0) due = 1;
    struct itimerspec its = {
        .it_interval = {0, 0},
        .it_value = {(time_t)(due / 1000000000ull),
                     (long)(due % 1000000000ull)},
    };
    if (timerfd_settime(q->fd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        MM_LOG(MM_LOG_ERR, "tq", "timerfd_settime: %s", strerror(errno));
        return;
    }
    q->armed = due;
}

/* Arms the timerfd when the earliest deadline comes before the armed one
 * (a later one is found when the armed deadline wakes us). */
static void
tq_arm(struct mm_tq *q)
{
    if (q->len == 0 || q->closing) return;
    uint64_t due = q->heap[0]->deadline_ns;
    if (q->armed && q->armed <= due) return;
    tq_program(q, due);
}

static void
tq_poll_cb(uv_poll_t *h, int status, int events)
{
    struct mm_tq *q = h->data;
    uint64_t n;
    (void)status;
    (void)events;
    /* Clear the expiry count (nothing to read after a re-arm: EAGAIN). */
    while (read(q->fd, &n, sizeof(n)) < 0 && errno == EINTR) {
    }
    q->armed = 0;
    uint64_t now = mm__now_ns();
    q->now_ns = now;
    q->running = 1;
    while (q->len && q->heap[0]->deadline_ns <= now && !q->closing) {
        struct mm_tmr *t = q->heap[0];
        mm__tq_stop(q, t);
        t->fn(t);
    }
    q->running = 0;
    tq_arm(q);
}

int
mm__tq_init(struct mm_tq *q, uv_loop_t *loop)
{
    memset(q, 0, sizeof(*q));
    q->loop = loop;
    q->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (q->fd < 0) return uv_translate_sys_error(errno);
    int rc = uv_poll_init(loop, &q->poll, q->fd);
    if (rc == 0) rc = uv_poll_start(&q->poll, UV_READABLE, tq_poll_cb);
    if (rc != 0) {
        close(q->fd);
        q->fd = -1;
        return rc;
    }
    q->poll.data = q;
    uv_unref((uv_handle_t *)&q->poll);
    return 0;
}

static void
tq_closed_cb(uv_handle_t *h)
{
    struct mm_tq *q = h->data;
    close(q->fd);
    q->fd = -1;
    mm__free(q->heap);
    q->heap = NULL;
    q->len = q->cap = 0;
}

void
mm__tq_close(struct mm_tq *q)
{
    if (q->closing || q->fd < 0) return;
    /* Timers still queued are dropped without touching them (their
     * owners may be gone already); stopping one later is a no-op. */
    q->closing = 1;
    q->len = 0;
    uv_close((uv_handle_t *)&q->poll, tq_closed_cb);
}

void
mm__tq_start(struct mm_tq *q, struct mm_tmr *t, uint64_t deadline_ns)
{
    mm__tq_stop(q, t);
    if (q->closing) return;
    /* Started by a callback for a time already due: it runs on the next
     * wake-up, not in this run (as a 0 ms uv_timer runs on the next loop
     * turn), so a timer that keeps re-arming for "now" cannot starve the
     * loop. */
    if (q->running && deadline_ns <= q->now_ns) deadline_ns = q->now_ns + 1;
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct mm_tmr **h = mm__realloc(q->heap, cap * sizeof(*h));
        MM_ASSERT(h != NULL);
        q->heap = h;
        q->cap = cap;
    }
    t->deadline_ns = deadline_ns;
    q->heap[q->len] = t;
    t->idx = ++q->len;
    heap_up(q, q->len - 1);
    if (q->heap[0] == t) tq_arm(q);
}

void
mm__tq_start_in(struct mm_tq *q, struct mm_tmr *t, uint64_t ms)
{
    mm__tq_start(q, t, mm__now_ns() + ms * 1000000ull);
}

void
mm__tq_stop(struct mm_tq *q, struct mm_tmr *t)
{
    if (!t->idx) return;
    if (q->closing) {
        t->idx = 0;
        return;
    }
    size_t i = t->idx - 1;
    size_t last = --q->len;
    if (i != last) {
        q->heap[i] = q->heap[last];
        q->heap[i]->idx = i + 1;
        heap_down(q, i);
        heap_up(q, i);
    }
    t->idx = 0;
}
